//! The service's labelling state: the lease queue, the labels, the journal behind them, each
//! annotator's undo stack and the model rounds so far. Every method is quick (no training, no
//! scoring); the HTTP handlers call them under one lock. Label Studio's annotations, checked
//! as a batch before any is applied, are in [`annotations`]; what each journalled event does to
//! the labels, and a read-only replay of a state folder, in [`replay`]; labels imported from a
//! file in [`imported`].

mod annotations;
mod imported;
mod replay;

pub use annotations::{Annotation, AnnotationOutcome};
pub use imported::{ImportConflict, ImportSummary, ImportedLabel};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baal_data::{Checkpoint, DatasetIndex};
use serde::{Deserialize, Serialize};

use crate::error::ServeError;
use crate::journal::{Event, LabelJournal, Source};
use crate::queue::{Lease, LeaseId, LeaseQueue};

/// A label as the service holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelInfo {
    /// The class.
    pub class: usize,
    /// Who gave it (`seed` for the labels the data came with).
    pub annotator: String,
    /// Where it came from (`None` for the seed labels).
    pub source: Option<Source>,
    /// When it was given, milliseconds since the Unix epoch (`None` for the seed labels).
    pub at_ms: Option<u64>,
    /// The Label Studio annotation that gave it, if any: only that annotation's deletion (or
    /// change into a skip) takes the label back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation: Option<u64>,
}

/// One retrain of the model: what it was trained on and how good it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// The model version it produced (1 for the first model).
    pub version: u64,
    /// Labels it was trained on.
    pub n_labelled: usize,
    /// Test accuracy, when the data has a test split.
    pub accuracy: Option<f64>,
    /// Mean training loss over the last epoch.
    pub train_loss: f64,
    /// Seconds to train, evaluate and score the pool.
    pub seconds: f64,
    /// When it finished, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// What a retrain hands back: the new ranking of the pool and the model's guess per item.
#[derive(Clone, Debug, Default)]
pub struct Round {
    /// Pool items, most informative first, with their scores.
    pub ranking: Vec<(DatasetIndex, f32)>,
    /// The model's most probable class and the heuristic's score for each pool item.
    pub predictions: HashMap<DatasetIndex, (usize, f32)>,
    /// Test accuracy, when the data has a test split.
    pub accuracy: Option<f64>,
    /// Mean training loss over the last epoch.
    pub train_loss: f64,
    /// Labels it was trained on.
    pub n_labelled: usize,
    /// Seconds it took.
    pub seconds: f64,
}

/// The outcome of a label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Labelled {
    /// The item.
    pub item: usize,
    /// Its class.
    pub class: usize,
    /// Labels held now.
    pub n_labelled: usize,
    /// Whether this label started a retrain.
    pub retrain: bool,
}

/// The service's state. See the module docs.
#[derive(Debug)]
pub struct LabelStore {
    classes: Vec<String>,
    n_items: usize,
    queue: LeaseQueue,
    labels: HashMap<DatasetIndex, LabelInfo>,
    undo: HashMap<String, Vec<DatasetIndex>>,
    annotations: HashMap<u64, annotations::AnnotationState>,
    journal: LabelJournal,
    history_path: PathBuf,
    history: Vec<RoundRecord>,
    predictions: Arc<HashMap<DatasetIndex, (usize, f32)>>,
    retrain_every: usize,
    since_train: usize,
    training: bool,
}

/// The settings of a [`LabelStore`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// Number of items in the dataset.
    pub n_items: usize,
    /// Labels the data came with (e.g. sub-folders of an image folder), not undoable.
    pub seed_labels: Vec<(DatasetIndex, usize)>,
    /// How long a lease lasts.
    pub lease_ttl: Duration,
    /// A retrain is due after this many new labels.
    pub retrain_every: usize,
    /// The order items are served in before the first model (e.g. a shuffle).
    pub initial_order: Vec<DatasetIndex>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl LabelStore {
    /// Opens the state in `dir` (created if missing): replays the label journal over the seed
    /// labels and reads the model rounds so far.
    ///
    /// # Errors
    /// The folder or its files cannot be read or written, a file is corrupt, or the journal
    /// names an item or class this data does not have (the state of other data).
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Self, ServeError> {
        if config.classes.len() < 2 {
            return Err(ServeError::Config(format!(
                "{} class(es): labelling needs at least 2",
                config.classes.len()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| ServeError::io(dir, e))?;
        let (journal, events) = LabelJournal::open(dir.join(replay::JOURNAL))?;
        let history_path = dir.join("history.json");
        let history: Vec<RoundRecord> = if history_path.exists() {
            Checkpoint::load(&history_path)?
        } else {
            Vec::new()
        };
        // Lease numbers from the clock (milliseconds × 1000, below 2^53 for JavaScript).
        let mut queue = LeaseQueue::new(config.lease_ttl).with_first_id(now_ms() * 1000);
        let version = history.last().map_or(0, |r| r.version);
        queue.set_ranking(
            config.initial_order.iter().map(|&i| (i, 0.0)).collect(),
            version,
        )?;
        let mut store = Self {
            classes: config.classes,
            n_items: config.n_items,
            queue,
            labels: HashMap::new(),
            undo: HashMap::new(),
            annotations: HashMap::new(),
            journal,
            history_path,
            history,
            predictions: Arc::new(HashMap::new()),
            retrain_every: config.retrain_every.max(1),
            since_train: 0,
            training: false,
        };
        for (item, class) in config.seed_labels {
            store.check_item(item.get())?;
            store.check_class(class)?;
            store.labels.insert(item, LabelInfo::seed(class));
            store.after_label(item);
        }
        for event in events {
            replay::check_event(&event, store.n_items, &store.classes).map_err(|e| {
                ServeError::Corrupt {
                    path: store.journal.path().to_path_buf(),
                    reason: format!("{e} (is this the state of other data?)"),
                }
            })?;
            store.apply_event(&event);
        }
        Ok(store)
    }

    /// Applies a journalled event in memory: at open (the journal replayed) and after a batch
    /// of annotations was journalled, by the same code ([`replay::apply_to_labels`], which a
    /// read-only replay uses too); then the queue and the undo stacks follow.
    fn apply_event(&mut self, event: &Event) {
        match replay::apply_to_labels(&mut self.labels, &mut self.annotations, event) {
            Some(replay::Change::Labelled(item)) => self.after_label(item),
            Some(replay::Change::Unlabelled(item)) => self.after_unlabel(item),
            None => {}
        }
    }

    /// Sets the label of `item` (served or not) and updates the undo stacks (see
    /// [`track_undo`](Self::track_undo)); the queue is the caller's.
    fn set_label(&mut self, item: DatasetIndex, info: LabelInfo) {
        self.labels.insert(item, info);
        self.track_undo(item);
    }

    /// After `item` got a label: no undo stack holds it any more (a label given since replaced
    /// the one that could be undone), and a label from the page goes on its annotator's stack.
    fn track_undo(&mut self, item: DatasetIndex) {
        for stack in self.undo.values_mut() {
            stack.retain(|&i| i != item);
        }
        if let Some(info) = self.labels.get(&item)
            && info.source == Some(Source::Web)
        {
            self.undo
                .entry(info.annotator.clone())
                .or_default()
                .push(item);
        }
    }

    /// After `item` got a label other than by answering its lease: the queue forgets the item,
    /// and the undo stacks follow.
    fn after_label(&mut self, item: DatasetIndex) {
        self.queue.revoke(item);
        self.queue.mark_labelled([item]);
        self.track_undo(item);
    }

    /// Journals the unlabelling of `item` by `annotator`, then applies it; on a journal error
    /// nothing changed.
    fn unlabel_durably(&mut self, item: DatasetIndex, annotator: &str) -> Result<(), ServeError> {
        self.journal.append(&Event::Unlabel {
            item,
            annotator: annotator.to_string(),
            at_ms: now_ms(),
            annotation: None,
            annotation_updated_at: None,
        })?;
        self.apply_unlabel(item);
        Ok(())
    }

    fn apply_unlabel(&mut self, item: DatasetIndex) {
        self.labels.remove(&item);
        self.after_unlabel(item);
    }

    /// After `item` lost its label: it returns to the queue, and no undo stack holds it.
    fn after_unlabel(&mut self, item: DatasetIndex) {
        // The queue may not know it (a seed label): then there is nothing to return.
        let _ = self.queue.unlabel(item);
        for stack in self.undo.values_mut() {
            stack.retain(|&i| i != item);
        }
    }

    fn check_item(&self, item: usize) -> Result<DatasetIndex, ServeError> {
        replay::check_item(item, self.n_items)
    }

    fn check_class(&self, class: usize) -> Result<(), ServeError> {
        replay::check_class(class, &self.classes)
    }

    /// The class called `name`, or numbered `name`.
    ///
    /// # Errors
    /// No class has this name or number.
    pub fn class_named(&self, name: &str) -> Result<usize, ServeError> {
        self.classes
            .iter()
            .position(|c| c == name)
            .or_else(|| crate::http::plain_index(name).filter(|&i| i < self.classes.len()))
            .ok_or_else(|| ServeError::UnknownClass {
                class: name.to_string(),
                names: self.classes.clone(),
            })
    }

    /// The next item for `annotator` other than lease `except` (see
    /// [`LeaseQueue::next_except`]).
    pub fn next(
        &mut self,
        annotator: &str,
        except: Option<LeaseId>,
        now: Instant,
    ) -> Option<Lease> {
        self.queue.next_except(annotator, except, now)
    }

    /// Labels the item of lease `lease` of `annotator` as `class`, durably: the journal holds
    /// it when this returns. The same lease and class again returns the same answer and writes
    /// nothing.
    ///
    /// # Errors
    /// A class out of range, an unknown, expired or foreign lease, a lease answered with
    /// another class; or the journal cannot be written (then nothing changed).
    pub fn label(
        &mut self,
        annotator: &str,
        lease: LeaseId,
        class: usize,
        now: Instant,
    ) -> Result<Labelled, ServeError> {
        self.check_class(class)?;
        let (held, answered) = self.queue.check(lease, annotator, now)?;
        if answered {
            return match self.labels.get(&held.item) {
                Some(info) if info.class == class => Ok(self.labelled(held.item, class, false)),
                Some(info) => Err(ServeError::AlreadyAnswered {
                    lease: lease.0,
                    item: held.item.get(),
                    class: info.class,
                }),
                // Answered, then undone: the lease is spent.
                None => Err(crate::queue::QueueError::Expired(lease).into()),
            };
        }
        let at_ms = now_ms();
        self.journal.append(&Event::Label {
            item: held.item,
            class,
            annotator: annotator.to_string(),
            at_ms,
            model_version: held.model_version,
            score: Some(held.score),
            lease: Some(lease.0),
            source: Source::Web,
            annotation: None,
            annotation_updated_at: None,
        })?;
        self.queue.complete(lease, annotator, now)?;
        self.set_label(
            held.item,
            LabelInfo {
                class,
                annotator: annotator.to_string(),
                source: Some(Source::Web),
                at_ms: Some(at_ms),
                annotation: None,
            },
        );
        let retrain = self.count_new_label();
        Ok(self.labelled(held.item, class, retrain))
    }

    fn labelled(&self, item: DatasetIndex, class: usize, retrain: bool) -> Labelled {
        Labelled {
            item: item.get(),
            class,
            n_labelled: self.labels.len(),
            retrain,
        }
    }

    /// Counts a new label; true when a retrain is due now.
    fn count_new_label(&mut self) -> bool {
        self.since_train += 1;
        self.since_train >= self.retrain_every
    }

    /// Gives lease `lease` back unlabelled (see [`LeaseQueue::skip`]).
    ///
    /// # Errors
    /// An unknown, expired or foreign lease.
    pub fn skip(
        &mut self,
        annotator: &str,
        lease: LeaseId,
        now: Instant,
    ) -> Result<(), ServeError> {
        Ok(self.queue.skip(lease, annotator, now)?)
    }

    /// Takes back `annotator`'s last label that still stands, durably; its item returns to the
    /// queue.
    ///
    /// # Errors
    /// Nothing to undo, or the journal cannot be written (then nothing changed).
    pub fn undo(&mut self, annotator: &str) -> Result<Labelled, ServeError> {
        let item = self
            .undo
            .get(annotator)
            .and_then(|stack| stack.last().copied())
            .ok_or_else(|| ServeError::NothingToUndo(annotator.to_string()))?;
        // The stacks hold only labels that still stand as their annotator gave them on the
        // page (set_label takes an item off every stack when it is labelled again).
        let class = match self.labels.get(&item) {
            Some(info) if info.source == Some(Source::Web) && info.annotator == annotator => {
                info.class
            }
            _ => return Err(ServeError::NothingToUndo(annotator.to_string())),
        };
        self.unlabel_durably(item, annotator)?;
        self.since_train = self.since_train.saturating_sub(1);
        Ok(self.labelled(item, class, false))
    }

    /// Every label, in item order: what a retrain trains on.
    pub fn labels(&self) -> Vec<(DatasetIndex, usize)> {
        let mut labels: Vec<_> = self.labels.iter().map(|(&i, l)| (i, l.class)).collect();
        labels.sort_unstable_by_key(|&(i, _)| i);
        labels
    }

    /// Every label with who gave it, in item order: what `GET /api/labels` exports.
    pub fn label_list(&self) -> Vec<(DatasetIndex, LabelInfo)> {
        let mut labels: Vec<_> = self.labels.iter().map(|(&i, l)| (i, l.clone())).collect();
        labels.sort_unstable_by_key(|&(i, _)| i);
        labels
    }

    /// The label of `item`, if any.
    pub fn label_of(&self, item: DatasetIndex) -> Option<&LabelInfo> {
        self.labels.get(&item)
    }

    /// The items without a label, in item order: what a retrain scores.
    pub fn pool(&self) -> Vec<DatasetIndex> {
        (0..self.n_items)
            .map(DatasetIndex::new)
            .filter(|i| !self.labels.contains_key(i))
            .collect()
    }

    /// Marks a retrain started; false when one runs already.
    pub fn start_training(&mut self) -> bool {
        if self.training {
            return false;
        }
        self.training = true;
        self.since_train = 0;
        true
    }

    /// Whether a retrain runs now.
    pub fn training(&self) -> bool {
        self.training
    }

    /// Marks a retrain ended without a new model (it failed).
    pub fn training_failed(&mut self) {
        self.training = false;
    }

    /// Swaps in a retrain's ranking as the next model version, records the round (atomically,
    /// in `history.json`) and returns the new version. Items labelled while it trained stay
    /// labelled; leases given from the old ranking stay valid.
    ///
    /// # Errors
    /// The ranking lists an item twice, or the history cannot be written.
    pub fn finish_round(&mut self, round: Round) -> Result<u64, ServeError> {
        self.training = false;
        let version = self.queue.model_version() + 1;
        let record = RoundRecord {
            version,
            n_labelled: round.n_labelled,
            accuracy: round.accuracy,
            train_loss: round.train_loss,
            seconds: round.seconds,
            at_ms: now_ms(),
        };
        let mut history = self.history.clone();
        history.push(record);
        Checkpoint::save(&self.history_path, &history)?;
        self.queue.set_ranking(round.ranking, version)?;
        self.history = history;
        self.predictions = Arc::new(round.predictions);
        Ok(version)
    }

    /// Whether a retrain is due: enough new labels since the last, none running.
    pub fn retrain_due(&self) -> bool {
        !self.training && self.since_train >= self.retrain_every
    }

    /// The model's guess and score per pool item, from the last round.
    pub fn predictions(&self) -> Arc<HashMap<DatasetIndex, (usize, f32)>> {
        Arc::clone(&self.predictions)
    }

    /// The model version of the current ranking (0: no model yet).
    pub fn model_version(&self) -> u64 {
        self.queue.model_version()
    }

    /// Number of labels held.
    pub fn n_labelled(&self) -> usize {
        self.labels.len()
    }

    /// The state in brief.
    pub fn status(&self) -> Status {
        Status {
            classes: self.classes.clone(),
            n_items: self.n_items,
            n_labelled: self.labels.len(),
            n_pool: self.n_items - self.labels.len(),
            leased: self.queue.leased(),
            model_version: self.queue.model_version(),
            training: self.training,
            history: self.history.clone(),
        }
    }

    /// The class names.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.n_items
    }
}

/// The service's state in brief, as `GET /api/status` answers it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// Items in the dataset.
    pub n_items: usize,
    /// Items labelled.
    pub n_labelled: usize,
    /// Items not labelled.
    pub n_pool: usize,
    /// Items leased to annotators now.
    pub leased: usize,
    /// The model version of the current ranking (0: no model yet).
    pub model_version: u64,
    /// Whether a retrain runs now.
    pub training: bool,
    /// Every model round so far: labels, accuracy, time.
    pub history: Vec<RoundRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueError;

    fn open(dir: &Path, seed: Vec<(DatasetIndex, usize)>) -> LabelStore {
        LabelStore::open(
            dir,
            StoreConfig {
                classes: vec!["a".into(), "b".into(), "c".into()],
                n_items: 6,
                seed_labels: seed,
                lease_ttl: Duration::from_secs(60),
                retrain_every: 2,
                initial_order: (0..6).map(DatasetIndex::new).collect(),
            },
        )
        .expect("opens")
    }

    #[test]
    fn a_spent_lease_cannot_relabel_and_seed_labels_cannot_be_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(dir.path(), vec![(DatasetIndex::new(0), 2)]);
        let now = Instant::now();
        assert!(matches!(
            store.undo("ann"),
            Err(ServeError::NothingToUndo(_))
        ));
        let lease = store.next("ann", None, now).expect("an item");
        assert_eq!(lease.item.get(), 1, "the seed item is never served");
        store.label("ann", lease.id, 1, now).expect("labels");
        assert!(matches!(
            store.label("ann", lease.id, 2, now),
            Err(ServeError::AlreadyAnswered { class: 1, .. })
        ));
        store.undo("ann").expect("undo");
        assert!(matches!(
            store.label("ann", lease.id, 1, now),
            Err(ServeError::Lease(QueueError::Expired(_)))
        ));
        assert_eq!(store.labels(), vec![(DatasetIndex::new(0), 2)]);
        assert!(matches!(
            store.undo("ann"),
            Err(ServeError::NothingToUndo(_))
        ));
    }

    #[test]
    fn an_external_label_ends_the_lease_on_its_item_and_counts_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(dir.path(), Vec::new());
        let now = Instant::now();
        let lease = store.next("ann", None, now).expect("an item");
        let first = store
            .label_external(lease.item.get(), 2, "ls", Some(7))
            .expect("labels");
        assert!(!first.retrain);
        assert!(matches!(
            store.label("ann", lease.id, 0, now),
            Err(ServeError::Lease(QueueError::Expired(_)))
        ));
        // The same annotation again: nothing new, nothing written.
        let journal = std::fs::read_to_string(dir.path().join("labels.journal")).expect("reads");
        store
            .label_external(lease.item.get(), 2, "ls", Some(7))
            .expect("again");
        let after = std::fs::read_to_string(dir.path().join("labels.journal")).expect("reads");
        assert_eq!(journal, after);
        // An update changes the class without counting a new label.
        let updated = store
            .label_external(lease.item.get(), 1, "ls", Some(7))
            .expect("updates");
        assert_eq!((updated.n_labelled, updated.retrain), (1, false));
        assert_eq!(store.annotation_item(7), Some(lease.item));
        assert!(!store.retrain_due());
        store
            .label_external(5, 0, "ls", Some(8))
            .expect("a second label");
        assert!(store.retrain_due(), "two new labels");
        assert!(matches!(
            store.label_external(6, 0, "ls", None),
            Err(ServeError::UnknownItem { item: 6, len: 6 })
        ));
        drop(store);
        let store = open(dir.path(), Vec::new());
        assert_eq!(
            store.labels(),
            vec![(lease.item, 1), (DatasetIndex::new(5), 0)]
        );
        assert_eq!(store.annotation_item(8), Some(DatasetIndex::new(5)));
    }

    #[test]
    fn a_lease_from_before_a_restart_is_expired_not_another_items() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(dir.path(), Vec::new());
        let old = store.next("ann", None, Instant::now()).expect("an item");
        drop(store);
        // Lease numbers come from the clock's milliseconds; a real restart takes longer.
        std::thread::sleep(Duration::from_millis(2));
        let mut store = open(dir.path(), Vec::new());
        let new = store.next("ann", None, Instant::now()).expect("an item");
        assert_ne!(old.id, new.id);
        assert!(matches!(
            store.label("ann", old.id, 0, Instant::now()),
            Err(ServeError::Lease(QueueError::Expired(_)))
        ));
    }

    #[test]
    fn a_journal_of_other_data_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(dir.path(), Vec::new());
        store.label_external(5, 2, "ls", None).expect("labels");
        drop(store);
        let err = LabelStore::open(
            dir.path(),
            StoreConfig {
                classes: vec!["a".into(), "b".into()],
                n_items: 6,
                seed_labels: Vec::new(),
                lease_ttl: Duration::from_secs(60),
                retrain_every: 2,
                initial_order: Vec::new(),
            },
        )
        .expect_err("class 2 does not exist");
        assert!(err.to_string().contains("other data"), "{err}");
    }
}
