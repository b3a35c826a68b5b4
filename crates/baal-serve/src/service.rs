//! The running service: the labelling state behind one lock, the items, the access token, and
//! the background thread that retrains and swaps in new rankings.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::ServeError;
use crate::items::Items;
use crate::queue::LeaseId;
use crate::scorer::Scorer;
use crate::store::{Annotation, AnnotationOutcome, LabelStore, Labelled, Status};

/// A labelling service: what the HTTP routes call. Every call takes the state's lock only for
/// in-memory work and, for labels, one synced journal append; training and scoring run on a
/// background thread and swap in their ranking under the lock at the end.
pub struct Service {
    store: Mutex<LabelStore>,
    items: Items,
    token: String,
    retrain: SyncSender<()>,
}

impl Service {
    /// Starts the service on `store` and `items` with `scorer` on its own thread, and asks for
    /// a first model when the store holds labels already (seed labels, or a resumed state).
    /// The thread ends when the last handle to the service is dropped.
    ///
    /// # Errors
    /// The items and the store disagree on the number of items.
    pub fn start(
        store: LabelStore,
        items: Items,
        scorer: Box<dyn Scorer>,
        token: String,
    ) -> Result<(Arc<Self>, JoinHandle<()>), ServeError> {
        if store.n_items() != items.len() {
            return Err(ServeError::Config(format!(
                "the state has {} items, the data {}",
                store.n_items(),
                items.len()
            )));
        }
        let has_labels = store.n_labelled() > 0;
        let (retrain, wake) = sync_channel(1);
        let service = Arc::new(Self {
            store: Mutex::new(store),
            items,
            token,
            retrain,
        });
        let weak = Arc::downgrade(&service);
        let worker = std::thread::Builder::new()
            .name("baal-retrain".into())
            .spawn(move || retrain_loop(&weak, scorer, &wake))
            .map_err(|e| ServeError::Model(format!("cannot start the retrain thread: {e}")))?;
        if has_labels {
            service.request_retrain();
        }
        Ok((service, worker))
    }

    /// The state, locked. A panic under the lock leaves the state consistent (every change is
    /// made after the checks and the journal write), so a poisoned lock is taken over.
    pub fn store(&self) -> MutexGuard<'_, LabelStore> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The items.
    pub fn items(&self) -> &Items {
        &self.items
    }

    /// Whether `token` is the service's access token (compared in constant time).
    pub fn authorized(&self, token: &str) -> bool {
        let (a, b) = (token.as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Asks the background thread for a retrain (coalesced with one already asked for).
    pub fn request_retrain(&self) {
        let _ = self.retrain.try_send(());
    }

    /// Labels the item of `lease` (see [`LabelStore::label`]); starts a retrain when due.
    ///
    /// # Errors
    /// As [`LabelStore::label`].
    pub fn label(
        &self,
        annotator: &str,
        lease: LeaseId,
        class: usize,
    ) -> Result<Labelled, ServeError> {
        let mut store = self.store();
        let labelled = store.label(annotator, lease, class, Instant::now())?;
        self.retrain_if_due(&store);
        Ok(labelled)
    }

    /// Skips `lease`.
    ///
    /// # Errors
    /// As [`LabelStore::skip`].
    pub fn skip(&self, annotator: &str, lease: LeaseId) -> Result<(), ServeError> {
        self.store().skip(annotator, lease, Instant::now())
    }

    /// Undoes `annotator`'s last label.
    ///
    /// # Errors
    /// As [`LabelStore::undo`].
    pub fn undo(&self, annotator: &str) -> Result<Labelled, ServeError> {
        self.store().undo(annotator)
    }

    /// Applies Label Studio annotations, all or none (see
    /// [`LabelStore::apply_annotations`]); starts a retrain when due.
    ///
    /// # Errors
    /// As [`LabelStore::apply_annotations`].
    pub fn apply_annotations(
        &self,
        batch: &[Annotation],
    ) -> Result<Vec<AnnotationOutcome>, ServeError> {
        let mut store = self.store();
        let (outcomes, _) = store.apply_annotations(batch)?;
        self.retrain_if_due(&store);
        Ok(outcomes)
    }

    /// Deletes Label Studio annotations (see [`LabelStore::delete_annotations`]); returns the
    /// items unlabelled.
    ///
    /// # Errors
    /// As [`LabelStore::delete_annotations`].
    pub fn delete_annotations(
        &self,
        ids: &[u64],
        annotator: &str,
    ) -> Result<Vec<usize>, ServeError> {
        Ok(self
            .store()
            .delete_annotations(ids, annotator)?
            .into_iter()
            .map(|item| item.get())
            .collect())
    }

    /// The state in brief.
    pub fn status(&self) -> Status {
        self.store().status()
    }

    fn retrain_if_due(&self, store: &LabelStore) {
        if store.retrain_due() {
            self.request_retrain();
        }
    }
}

/// The background thread: waits for a request, trains and scores without the lock, swaps the
/// result in under it; again while labels arrived fast enough to make another round due.
fn retrain_loop(
    service: &Weak<Service>,
    mut scorer: Box<dyn Scorer>,
    wake: &std::sync::mpsc::Receiver<()>,
) {
    lower_priority();
    // Training runs on threads of the lowest priority (idle class on Linux), as many as there are cores: it uses
    // every idle cycle, and the request threads (normal priority) pre-empt it.
    let threads = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("baal-train-{i}"))
        .start_handler(|_| lower_priority())
        .build()
        .ok();
    while wake.recv().is_ok() {
        loop {
            let Some(service) = service.upgrade() else {
                return;
            };
            let (labels, pool) = {
                let mut store = service.store();
                if store.n_labelled() == 0 || !store.start_training() {
                    break;
                }
                (store.labels(), store.pool())
            };
            tracing::info!(labels = labels.len(), pool = pool.len(), "retraining");
            let result = match &threads {
                Some(threads) => threads.install(|| scorer.round(&labels, &pool)),
                None => scorer.round(&labels, &pool),
            };
            let mut store = service.store();
            match result.and_then(|round| store.finish_round(round)) {
                Ok(version) => tracing::info!(version, "new model"),
                Err(error) => {
                    tracing::error!(%error, "retrain failed; keeping the current ranking");
                    store.training_failed();
                }
            }
            if !store.retrain_due() {
                break;
            }
        }
    }
}

/// Lowers the calling thread's scheduling priority: on Linux to `SCHED_IDLE` (any runnable
/// thread of normal priority, a request's, pre-empts it at once; nice 19 alone still lets it
/// finish its time slice first), elsewhere to the lowest priority; a failure leaves the
/// priority as it is.
fn lower_priority() {
    use thread_priority::ThreadPriority;
    #[cfg(target_os = "linux")]
    let result = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        ThreadPriority::Min,
        thread_priority::ThreadSchedulePolicy::Normal(
            thread_priority::NormalThreadSchedulePolicy::Idle,
        ),
    );
    #[cfg(not(target_os = "linux"))]
    let result = thread_priority::set_current_thread_priority(ThreadPriority::Min);
    if let Err(error) = result {
        tracing::debug!(?error, "cannot lower the training thread's priority");
    }
}
