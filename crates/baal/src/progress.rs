//! A terminal progress bar for long operations (MC sampling, training), behind the `progress`
//! feature (on by default). The library crates report progress through
//! [`Progress`]; this is the receiver that draws it.

use std::sync::Mutex;

use crate::bayesian::Progress;

/// Draws each operation as an indicatif bar on standard error (hidden when it is not a
/// terminal). Give it to [`McSampler::with_progress`](crate::bayesian::McSampler::with_progress),
/// [`Trainer::with_progress`](crate::active::Trainer::with_progress) or
/// [`ActiveLearningLoop::with_progress`](crate::active::ActiveLearningLoop::with_progress) in
/// an `Arc`.
#[derive(Debug, Default)]
pub struct TerminalProgress {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl TerminalProgress {
    /// A receiver that draws nothing until an operation starts.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<indicatif::ProgressBar>)) {
        // A poisoned lock only means a bar was being drawn when a thread panicked.
        let mut bar = match self.bar.lock() {
            Ok(bar) => bar,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut bar);
    }
}

impl Progress for TerminalProgress {
    fn start(&self, label: &str, total: usize, unit: &str) {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{label} {{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed_precise}} < {{eta_precise}}]"
        )) {
            bar.set_style(style);
        }
        self.with_bar(|slot| {
            if let Some(old) = slot.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, n: usize) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(n as u64);
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_lives_from_start_to_finish() {
        let progress = TerminalProgress::new();
        progress.advance(3); // before any start: nothing to move
        progress.start("work", 10, "items");
        progress.advance(4);
        progress.with_bar(|slot| {
            assert_eq!(slot.as_ref().map(indicatif::ProgressBar::position), Some(4));
        });
        progress.finish();
        progress.with_bar(|slot| assert!(slot.is_none()));
    }
}
