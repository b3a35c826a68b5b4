//! Progress of long operations, reported through a callback. The libraries draw nothing: a
//! terminal bar (`baal::progress::TerminalProgress`, behind the facade's `progress` feature),
//! a log line or a web page's status lives where the output is.

use std::fmt;
use std::sync::Arc;

/// Receives the progress of a long operation: the MC sampling of a dataset, a training run.
pub trait Progress: Send + Sync {
    /// An operation over `total` units (`unit`: "items", "steps") starts; `label` names it.
    fn start(&self, label: &str, total: usize, unit: &str);
    /// `n` more units are done.
    fn advance(&self, n: usize);
    /// The operation ended, finished or not (also after an error).
    fn finish(&self);
}

/// Where progress goes: nowhere, or to a shared [`Progress`] receiver.
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Arc<dyn Progress>>);

impl ProgressSink {
    /// Progress to `receiver`.
    pub fn new(receiver: Arc<dyn Progress>) -> Self {
        Self(Some(receiver))
    }

    /// No progress reported.
    pub fn none() -> Self {
        Self(None)
    }

    /// Starts an operation; the returned guard reports [`Progress::finish`] when dropped, so
    /// that an early return on an error ends it too.
    pub fn start(&self, label: &str, total: usize, unit: &str) -> ProgressGuard<'_> {
        if let Some(receiver) = &self.0 {
            receiver.start(label, total, unit);
        }
        ProgressGuard(self.0.as_deref())
    }
}

impl fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(receiver)"
        } else {
            "ProgressSink(none)"
        })
    }
}

/// A running operation of a [`ProgressSink`]; finishes it when dropped.
pub struct ProgressGuard<'a>(Option<&'a dyn Progress>);

impl ProgressGuard<'_> {
    /// `n` more units are done.
    pub fn advance(&self, n: usize) {
        if let Some(receiver) = self.0 {
            receiver.advance(n);
        }
    }
}

impl Drop for ProgressGuard<'_> {
    fn drop(&mut self) {
        if let Some(receiver) = self.0 {
            receiver.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Progress for Log {
        fn start(&self, label: &str, total: usize, unit: &str) {
            self.0
                .lock()
                .expect("lock")
                .push(format!("start {label} {total} {unit}"));
        }
        fn advance(&self, n: usize) {
            self.0.lock().expect("lock").push(format!("advance {n}"));
        }
        fn finish(&self) {
            self.0.lock().expect("lock").push("finish".into());
        }
    }

    #[test]
    fn an_operation_is_finished_even_when_it_returns_early() {
        let log = Arc::new(Log::default());
        let sink = ProgressSink::new(log.clone());
        let run = |fail: bool| -> Result<(), ()> {
            let guard = sink.start("work", 4, "items");
            guard.advance(2);
            if fail {
                return Err(());
            }
            guard.advance(2);
            Ok(())
        };
        assert!(run(true).is_err());
        assert!(run(false).is_ok());
        let events = log.0.lock().expect("lock").clone();
        assert_eq!(
            events,
            [
                "start work 4 items",
                "advance 2",
                "finish",
                "start work 4 items",
                "advance 2",
                "advance 2",
                "finish"
            ]
        );
        // No receiver: nothing to do, nothing to fail.
        ProgressSink::none().start("quiet", 1, "items").advance(1);
    }
}
