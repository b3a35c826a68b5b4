//! The running service: the labelling state behind one lock, the items, the access token, the
//! latest kept model, and the background thread that retrains, swaps in new rankings and
//! writes the models it keeps.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::ServeError;
use crate::items::Items;
use crate::models::{KeptModel, ModelKeeper};
use crate::queue::LeaseId;
use crate::scorer::Scorer;
use crate::store::{Annotation, AnnotationOutcome, LabelStore, Labelled, Status};

/// A labelling service: what the HTTP routes call. Every call takes the state's lock only for
/// in-memory work and, for labels, one synced journal append; training and scoring run on a
/// background thread and swap in their ranking under the lock at the end; the model folders
/// it keeps are written there too, after the lock is let go.
pub struct Service {
    store: Mutex<LabelStore>,
    items: Items,
    token: String,
    retrain: SyncSender<()>,
    models: Option<ModelKeeper>,
    /// The latest kept model, behind a lock of its own (never held with the store's).
    latest_model: Mutex<Option<Arc<KeptModel>>>,
}

impl Service {
    /// Starts the service on `store` and `items` with `scorer` on its own thread, and asks for
    /// a first model when the store holds labels already (seed labels, or a resumed state).
    /// The thread ends when the last handle to the service is dropped. No model is kept (see
    /// [`start_keeping_models`](Self::start_keeping_models)).
    ///
    /// # Errors
    /// The items and the store disagree on the number of items.
    pub fn start(
        store: LabelStore,
        items: Items,
        scorer: Box<dyn Scorer>,
        token: String,
    ) -> Result<(Arc<Self>, JoinHandle<()>), ServeError> {
        Self::start_with(store, items, scorer, token, None)
    }

    /// As [`start`](Self::start), and keeps the model of each round in `models` (written on
    /// the background thread after the round's ranking is swapped in); the latest model found
    /// there is the service's [`model`](Self::model) until the next round. The scorer's
    /// [`initial_round`](Scorer::initial_round), if it has one, runs first on that thread.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_keeping_models(
        store: LabelStore,
        items: Items,
        scorer: Box<dyn Scorer>,
        token: String,
        models: ModelKeeper,
    ) -> Result<(Arc<Self>, JoinHandle<()>), ServeError> {
        Self::start_with(store, items, scorer, token, Some(models))
    }

    fn start_with(
        store: LabelStore,
        items: Items,
        scorer: Box<dyn Scorer>,
        token: String,
        models: Option<ModelKeeper>,
    ) -> Result<(Arc<Self>, JoinHandle<()>), ServeError> {
        if store.n_items() != items.len() {
            return Err(ServeError::Config(format!(
                "the state has {} items, the data {}",
                store.n_items(),
                items.len()
            )));
        }
        let has_labels = store.n_labelled() > 0;
        let latest = models
            .as_ref()
            .and_then(|keeper| keeper.latest(store.model_version()))
            .map(Arc::new);
        let (retrain, wake) = sync_channel(1);
        let service = Arc::new(Self {
            store: Mutex::new(store),
            items,
            token,
            retrain,
            models,
            latest_model: Mutex::new(latest),
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

    /// The latest model kept (see [`start_keeping_models`](Self::start_keeping_models)), if
    /// any: what `GET /api/model` names.
    pub fn model(&self) -> Option<Arc<KeptModel>> {
        self.latest_model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Writes the model of the round swapped in as `version`, if the scorer has one to keep
    /// and models are kept; a failure is logged and changes nothing else. Called on the
    /// background thread without the store's lock.
    fn keep_model(&self, scorer: &mut dyn Scorer, version: u64) {
        let Some(model) = scorer.take_model() else {
            return;
        };
        let Some(keeper) = &self.models else {
            return;
        };
        match keeper.keep_model(version, model) {
            Ok(Some(kept)) => {
                tracing::info!(version, path = %kept.path.display(), "model kept");
                *self
                    .latest_model
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(kept));
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(version, %error, "cannot keep the model; serving on"),
        }
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

/// The background thread: ranks the pool with the scorer's initial model if it has one, then
/// waits for a request, trains and scores without the lock, swaps the result in under it,
/// keeps the model after letting the lock go; again while labels arrived fast enough to make
/// another round due.
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
    initial_round(service, scorer.as_mut(), threads.as_ref());
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
            let result = on_threads(threads.as_ref(), || scorer.round(&labels, &pool));
            let mut store = service.store();
            let finished = result.and_then(|round| store.finish_round(round));
            match &finished {
                Ok(version) => tracing::info!(version, "new model"),
                Err(error) => {
                    tracing::error!(%error, "retrain failed; keeping the current ranking");
                    store.training_failed();
                }
            }
            let due = store.retrain_due();
            drop(store);
            match finished {
                Ok(version) => service.keep_model(scorer.as_mut(), version),
                Err(_) => drop(scorer.take_model()),
            }
            if !due {
                break;
            }
        }
    }
}

/// Round 0: the scorer's initial model (if it has one) ranks the pool before any retrain;
/// until its ranking is swapped in, the queue serves the initial order.
fn initial_round(
    service: &Weak<Service>,
    scorer: &mut dyn Scorer,
    threads: Option<&rayon::ThreadPool>,
) {
    let Some(pool) = service.upgrade().map(|s| s.store().pool()) else {
        return;
    };
    let Some(result) = on_threads(threads, || scorer.initial_round(&pool)) else {
        return;
    };
    let Some(service) = service.upgrade() else {
        return;
    };
    let finished = result.and_then(|round| service.store().finish_round(round));
    match finished {
        Ok(version) => {
            tracing::info!(version, "ranking of the initial model");
            service.keep_model(scorer, version);
        }
        Err(error) => {
            tracing::error!(%error, "the initial model could not rank the pool");
            drop(scorer.take_model());
        }
    }
}

/// Runs `f` on the training threads, or on this thread when there are none.
fn on_threads<R: Send>(threads: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match threads {
        Some(threads) => threads.install(f),
        None => f(),
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
