//! The active-learning dataset: a wrapped Burn dataset split into labelled items and a pool
//! (whose views are in [`crate::views`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::Dataset;
use rand::Rng;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DataError, Result};
use crate::index::{DatasetIndex, PoolIndex};
use crate::state::{Checkpoint, DatasetState, LabelRecord, STATE_FORMAT_VERSION};
use crate::views::{LabelledView, PoolTransform, PoolView};

/// The function that gives an item's true label, for simulated labelling.
type KnownLabelFn<I, L> = Arc<dyn Fn(&I) -> L + Send + Sync>;
type LabelCheck<L> = Arc<dyn Fn(&L) -> std::result::Result<(), String> + Send + Sync>;

/// The label of one labelled item and when it was given.
#[derive(Clone, Debug)]
struct Entry<L> {
    label: L,
    /// The labelling step that labelled it (1 for the first).
    step: usize,
    /// Rank in labelling order, to keep that order in the state.
    order: u64,
}

/// A Burn dataset split into labelled items and a pool of unlabelled ones.
///
/// Items are addressed by [`DatasetIndex`] (position in the wrapped dataset, stable) or
/// [`PoolIndex`] (position in the current pool, which changes at each labelling). The pool holds
/// the unlabelled items in dataset order.
///
/// Labels come either from the items themselves (simulation: build with
/// [`with_known_labels`](Self::with_known_labels), then [`label`](Self::label)) or from a person
/// ([`label_with`](Self::label_with)). Each labelling call is one *step*; the state
/// ([`state`](Self::state)) records, for every labelled item, its label and its step, in labelling
/// order, together with the random generator, so that a run resumes exactly
/// ([`restore`](Self::restore), [`save_checkpoint`](Self::save_checkpoint)).
///
/// ```
/// use baal_data::{ActiveLearningDataset, DatasetIndex, PoolIndex};
/// use burn::data::dataset::{Dataset, InMemDataset};
///
/// // Items are (features, class) pairs whose class is known: a simulation.
/// let items: Vec<(f32, u8)> = (0..10).map(|i| (i as f32, (i % 3) as u8)).collect();
/// let mut dataset = ActiveLearningDataset::new(InMemDataset::new(items))
///     .with_known_labels(|item: &(f32, u8)| item.1)
///     .with_seed(42);
/// dataset.label(&[PoolIndex::new(0), PoolIndex::new(4)])?;
/// assert_eq!(dataset.n_labelled(), 2);
/// // Pool index 0 is now dataset item 1: item 0 left the pool.
/// assert_eq!(dataset.pool_to_dataset_index(PoolIndex::new(0))?, DatasetIndex::new(1));
/// assert_eq!(dataset.labelled().len(), 2);
/// assert_eq!(dataset.pool().len(), 8);
/// # Ok::<(), baal_data::DataError>(())
/// ```
pub struct ActiveLearningDataset<I, L> {
    dataset: Arc<dyn Dataset<I>>,
    known_labels: Option<KnownLabelFn<I, L>>,
    label_check: Option<LabelCheck<L>>,
    pool_transform: Option<PoolTransform<I>>,
    entries: Vec<Option<Entry<L>>>,
    n_labelled: usize,
    current_step: usize,
    next_order: u64,
    rng: ChaCha8Rng,
}

impl<I, L> ActiveLearningDataset<I, L>
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + 'static,
{
    /// Wraps `dataset` with every item in the pool; the random generator is seeded with 0.
    pub fn new(dataset: impl Dataset<I> + 'static) -> Self {
        let len = dataset.len();
        Self {
            dataset: Arc::new(dataset),
            known_labels: None,
            label_check: None,
            pool_transform: None,
            entries: vec![None; len],
            n_labelled: 0,
            current_step: 0,
            next_order: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }

    /// Seeds the generator used by [`label_randomly`](Self::label_randomly) and
    /// [`pool_subset`](Self::pool_subset).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self
    }

    /// Declares that each item carries its true label, read by `label_of` (simulation); this
    /// enables [`label`](Self::label) and [`label_randomly`](Self::label_randomly).
    pub fn with_known_labels(mut self, label_of: impl Fn(&I) -> L + Send + Sync + 'static) -> Self {
        self.known_labels = Some(Arc::new(label_of));
        self
    }

    /// Checks every label before it is stored (e.g. a class below the number of classes); a
    /// refused label is a [`DataError::InvalidLabel`] with the returned reason.
    pub fn with_label_check(
        mut self,
        check: impl Fn(&L) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.label_check = Some(Arc::new(check));
        self
    }

    /// Transforms items read through the [`pool`](Self::pool) view only (baal's
    /// `pool_specifics`: e.g. no augmentation when scoring the pool).
    pub fn with_pool_transform(
        mut self,
        transform: impl Fn(I) -> I + Send + Sync + 'static,
    ) -> Self {
        self.pool_transform = Some(Arc::new(transform));
        self
    }

    /// Number of items in the wrapped dataset.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the wrapped dataset has no item.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of labelled items.
    pub fn n_labelled(&self) -> usize {
        self.n_labelled
    }

    /// Number of items in the pool.
    pub fn n_unlabelled(&self) -> usize {
        self.len() - self.n_labelled
    }

    /// Number of labelling steps so far (0 before the first labelling).
    pub fn current_step(&self) -> usize {
        self.current_step
    }

    /// Whether the item is labelled.
    ///
    /// # Errors
    /// The index is out of range.
    pub fn is_labelled(&self, index: DatasetIndex) -> Result<bool> {
        Ok(self.entry(index)?.is_some())
    }

    /// The label of the item, if it is labelled.
    ///
    /// # Errors
    /// The index is out of range.
    pub fn label_of(&self, index: DatasetIndex) -> Result<Option<&L>> {
        Ok(self.entry(index)?.as_ref().map(|entry| &entry.label))
    }

    /// The dataset indices of the pool, in pool order (`result[p]` is pool item `p`).
    pub fn pool_dataset_indices(&self) -> Vec<DatasetIndex> {
        self.indices_where(false)
    }

    /// The dataset indices of the labelled items, in dataset order.
    pub fn labelled_dataset_indices(&self) -> Vec<DatasetIndex> {
        self.indices_where(true)
    }

    /// The dataset index of pool item `index`.
    ///
    /// # Errors
    /// The index is past the end of the pool.
    pub fn pool_to_dataset_index(&self, index: PoolIndex) -> Result<DatasetIndex> {
        self.indices_where(false)
            .get(index.get())
            .copied()
            .ok_or(DataError::IndexOutOfRange {
                kind: "pool",
                index: index.get(),
                len: self.n_unlabelled(),
            })
    }

    /// The pool index of dataset item `index`.
    ///
    /// # Errors
    /// The index is out of range or the item is labelled (not in the pool).
    pub fn dataset_to_pool_index(&self, index: DatasetIndex) -> Result<PoolIndex> {
        if self.entry(index)?.is_some() {
            return Err(DataError::AlreadyLabelled(index));
        }
        let before = self.entries[..index.get()]
            .iter()
            .filter(|e| e.is_none())
            .count();
        Ok(PoolIndex::new(before))
    }

    /// Labels pool items with their known labels (simulation), as one step; returns their
    /// dataset indices in the order given.
    ///
    /// Nothing is labelled unless every index is valid.
    ///
    /// # Errors
    /// No known labels ([`with_known_labels`](Self::with_known_labels)), an index past the end of
    /// the pool or given twice, an item that cannot be read, a label the check refuses.
    pub fn label(&mut self, pool_indices: &[PoolIndex]) -> Result<Vec<DatasetIndex>> {
        let pool = self.indices_where(false);
        let mut seen = HashSet::with_capacity(pool_indices.len());
        let mut dataset_indices = Vec::with_capacity(pool_indices.len());
        for &pool_index in pool_indices {
            let dataset_index = *pool
                .get(pool_index.get())
                .ok_or(DataError::IndexOutOfRange {
                    kind: "pool",
                    index: pool_index.get(),
                    len: pool.len(),
                })?;
            if !seen.insert(pool_index) {
                return Err(DataError::DuplicateIndex {
                    kind: "pool",
                    index: pool_index.get(),
                });
            }
            dataset_indices.push(dataset_index);
        }
        self.label_dataset_indices(&dataset_indices)?;
        Ok(dataset_indices)
    }

    /// Labels items given by dataset index with their known labels (simulation), as one step.
    /// This is the safe way to label what a [`PoolView`] selected
    /// ([`PoolView::dataset_index`]), as pool indices change after each labelling.
    ///
    /// # Errors
    /// As [`label`](Self::label); also an item already labelled.
    pub fn label_dataset_indices(&mut self, dataset_indices: &[DatasetIndex]) -> Result<()> {
        let known = self.known_labels.clone().ok_or(DataError::NoKnownLabels)?;
        let mut labels = Vec::with_capacity(dataset_indices.len());
        for &index in dataset_indices {
            self.entry(index)?;
            let item = self
                .dataset
                .get(index.get())
                .map_err(|source| DataError::Item {
                    index: index.get(),
                    source,
                })?;
            labels.push((index, known(&item)));
        }
        self.label_many_with(labels)
    }

    /// Records the label a person gave to dataset item `index`, as one step.
    ///
    /// # Errors
    /// The index is out of range, the item is already labelled, or the label check refuses it.
    pub fn label_with(&mut self, index: DatasetIndex, label: L) -> Result<()> {
        self.label_many_with([(index, label)])
    }

    /// Records several labels given by a person, as one step; nothing is recorded unless all
    /// are valid.
    ///
    /// # Errors
    /// An index out of range or given twice, an item already labelled, a label the check refuses.
    pub fn label_many_with(
        &mut self,
        labels: impl IntoIterator<Item = (DatasetIndex, L)>,
    ) -> Result<()> {
        let labels: Vec<(DatasetIndex, L)> = labels.into_iter().collect();
        let mut seen = HashSet::with_capacity(labels.len());
        for (index, label) in &labels {
            if self.entry(*index)?.is_some() {
                return Err(DataError::AlreadyLabelled(*index));
            }
            if !seen.insert(*index) {
                return Err(DataError::DuplicateIndex {
                    kind: "dataset",
                    index: index.get(),
                });
            }
            self.check_label(*index, label)?;
        }
        if labels.is_empty() {
            return Ok(());
        }
        self.current_step += 1;
        for (index, label) in labels {
            self.entries[index.get()] = Some(Entry {
                label,
                step: self.current_step,
                order: self.next_order,
            });
            self.next_order += 1;
            self.n_labelled += 1;
        }
        Ok(())
    }

    /// Labels `n` pool items drawn at random with the dataset's own seeded generator (so that the
    /// draw is part of the saved state), as one step; returns their dataset indices.
    ///
    /// # Errors
    /// The pool is empty or holds fewer than `n` items, no known labels, an unreadable item.
    pub fn label_randomly(&mut self, n: usize) -> Result<Vec<DatasetIndex>> {
        let mut rng = self.rng.clone();
        let picked = self.label_randomly_with_rng(n, &mut rng)?;
        self.rng = rng;
        Ok(picked)
    }

    /// [`label_randomly`](Self::label_randomly) drawing from `rng`.
    ///
    /// # Errors
    /// As [`label_randomly`](Self::label_randomly).
    pub fn label_randomly_with_rng<R: Rng + ?Sized>(
        &mut self,
        n: usize,
        rng: &mut R,
    ) -> Result<Vec<DatasetIndex>> {
        if self.known_labels.is_none() {
            return Err(DataError::NoKnownLabels);
        }
        let picked = self.draw_pool(n, rng)?;
        let dataset_indices: Vec<DatasetIndex> = picked.iter().map(|&(_, d)| d).collect();
        self.label_dataset_indices(&dataset_indices)?;
        Ok(dataset_indices)
    }

    /// Returns a labelled item to the pool. The step counter is unchanged.
    ///
    /// # Errors
    /// The index is out of range or the item is not labelled.
    pub fn unlabel(&mut self, index: DatasetIndex) -> Result<()> {
        if self.entry(index)?.is_none() {
            return Err(DataError::NotLabelled(index));
        }
        self.entries[index.get()] = None;
        self.n_labelled -= 1;
        Ok(())
    }

    /// Returns every item to the pool and the step counter to 0 (the generator is kept).
    pub fn reset(&mut self) {
        self.entries.iter_mut().for_each(|entry| *entry = None);
        self.n_labelled = 0;
        self.current_step = 0;
        self.next_order = 0;
    }

    /// A snapshot view of the labelled items, in dataset order, each with its label.
    ///
    /// The view does not follow later labelling: take a new one after each step.
    pub fn labelled(&self) -> LabelledView<I, L> {
        self.labelled_from_step(0)
    }

    /// A snapshot view of the items labelled at step `first_step` or later, in dataset order.
    pub(crate) fn labelled_from_step(&self, first_step: usize) -> LabelledView<I, L> {
        let entries = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let entry = entry.as_ref().filter(|entry| entry.step >= first_step)?;
                Some((DatasetIndex::new(i), entry.label.clone()))
            })
            .collect();
        LabelledView::new(Arc::clone(&self.dataset), entries)
    }

    /// A snapshot view of the whole pool, items passed through the pool transform.
    pub fn pool(&self) -> PoolView<I> {
        let indices = self
            .indices_where(false)
            .into_iter()
            .enumerate()
            .map(|(p, d)| (PoolIndex::new(p), d))
            .collect();
        self.pool_view(indices)
    }

    /// The labelled items read as the pool reads its items (through the pool transform), in
    /// dataset order: what a model embeds to compare the labelled items with the pool (the
    /// first centres of Coreset). The view's positions count the labelled items; as they are
    /// not in the pool, its `pool_index` of a position is that position.
    pub fn labelled_as_pool(&self) -> PoolView<I> {
        let indices = self
            .indices_where(true)
            .into_iter()
            .enumerate()
            .map(|(p, d)| (PoolIndex::new(p), d))
            .collect();
        self.pool_view(indices)
    }

    /// A snapshot view of at most `max_sample` pool items drawn at random (without replacement,
    /// in pool order) with the dataset's own generator; the whole pool when it is smaller.
    ///
    /// # Errors
    /// The pool is empty.
    pub fn pool_subset(&mut self, max_sample: usize) -> Result<PoolView<I>> {
        let mut rng = self.rng.clone();
        let view = self.pool_subset_with_rng(max_sample, &mut rng)?;
        self.rng = rng;
        Ok(view)
    }

    /// [`pool_subset`](Self::pool_subset) drawing from `rng`.
    ///
    /// # Errors
    /// The pool is empty.
    pub fn pool_subset_with_rng<R: Rng + ?Sized>(
        &self,
        max_sample: usize,
        rng: &mut R,
    ) -> Result<PoolView<I>> {
        let n = max_sample.min(self.n_unlabelled());
        let picked = self.draw_pool(n, rng)?;
        Ok(self.pool_view(picked))
    }

    /// The labelling state: labelled items with label and step, in labelling order, and the
    /// generator.
    pub fn state(&self) -> DatasetState<L> {
        let mut records: Vec<(u64, LabelRecord<L>)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let entry = entry.as_ref()?;
                Some((
                    entry.order,
                    LabelRecord {
                        dataset_index: DatasetIndex::new(i),
                        label: entry.label.clone(),
                        step: entry.step,
                    },
                ))
            })
            .collect();
        records.sort_by_key(|(order, _)| *order);
        DatasetState {
            format_version: STATE_FORMAT_VERSION,
            dataset_len: self.len(),
            current_step: self.current_step,
            labelled: records.into_iter().map(|(_, record)| record).collect(),
            rng: self.rng.clone(),
        }
    }

    /// Replaces the labelling state by `state`; on error nothing changes.
    ///
    /// # Errors
    /// A different format version or dataset length, an index out of range or repeated, a step
    /// after the current step, a label the check refuses.
    pub fn restore(&mut self, state: DatasetState<L>) -> Result<()> {
        if state.format_version != STATE_FORMAT_VERSION {
            return Err(DataError::State(format!(
                "format version {} is not the supported version {STATE_FORMAT_VERSION}",
                state.format_version
            )));
        }
        if state.dataset_len != self.len() {
            return Err(DataError::State(format!(
                "it was saved for a dataset of {} items, this one has {}",
                state.dataset_len,
                self.len()
            )));
        }
        let mut entries: Vec<Option<Entry<L>>> = vec![None; self.len()];
        for (order, record) in state.labelled.into_iter().enumerate() {
            let index = record.dataset_index;
            let slot = entries
                .get_mut(index.get())
                .ok_or(DataError::IndexOutOfRange {
                    kind: "dataset",
                    index: index.get(),
                    len: state.dataset_len,
                })?;
            if slot.is_some() {
                return Err(DataError::DuplicateIndex {
                    kind: "dataset",
                    index: index.get(),
                });
            }
            if record.step == 0 || record.step > state.current_step {
                return Err(DataError::State(format!(
                    "item {index} is labelled at step {} but the state is at step {}",
                    record.step, state.current_step
                )));
            }
            self.check_label(index, &record.label)?;
            *slot = Some(Entry {
                label: record.label,
                step: record.step,
                order: order as u64,
            });
        }
        self.n_labelled = entries.iter().filter(|e| e.is_some()).count();
        self.next_order = self.n_labelled as u64;
        self.entries = entries;
        self.current_step = state.current_step;
        self.rng = state.rng;
        Ok(())
    }

    fn entry(&self, index: DatasetIndex) -> Result<&Option<Entry<L>>> {
        self.entries
            .get(index.get())
            .ok_or(DataError::IndexOutOfRange {
                kind: "dataset",
                index: index.get(),
                len: self.len(),
            })
    }

    fn check_label(&self, index: DatasetIndex, label: &L) -> Result<()> {
        match &self.label_check {
            Some(check) => check(label).map_err(|reason| DataError::InvalidLabel {
                dataset_index: index,
                reason,
            }),
            None => Ok(()),
        }
    }

    fn indices_where(&self, labelled: bool) -> Vec<DatasetIndex> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.is_some() == labelled)
            .map(|(i, _)| DatasetIndex::new(i))
            .collect()
    }

    /// `n` distinct pool items at random, in pool order.
    fn draw_pool<R: Rng + ?Sized>(
        &self,
        n: usize,
        rng: &mut R,
    ) -> Result<Vec<(PoolIndex, DatasetIndex)>> {
        let pool = self.indices_where(false);
        if pool.is_empty() {
            return Err(DataError::EmptyPool);
        }
        if n > pool.len() {
            return Err(DataError::NotEnoughUnlabelled {
                requested: n,
                available: pool.len(),
            });
        }
        let mut picked = sample(rng, pool.len(), n).into_vec();
        picked.sort_unstable();
        Ok(picked
            .into_iter()
            .map(|p| (PoolIndex::new(p), pool[p]))
            .collect())
    }

    fn pool_view(&self, indices: Vec<(PoolIndex, DatasetIndex)>) -> PoolView<I> {
        PoolView::new(
            Arc::clone(&self.dataset),
            indices,
            self.pool_transform.clone(),
        )
    }
}

impl<I, L> ActiveLearningDataset<I, L>
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// Saves [`state`](Self::state) atomically to `path` (see [`Checkpoint::save`]).
    ///
    /// # Errors
    /// The file cannot be written; the previous checkpoint is then left as it was.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        Checkpoint::save(path, &self.state())
    }

    /// Restores the state saved at `path` (see [`Checkpoint::load`] and [`restore`](Self::restore)).
    ///
    /// # Errors
    /// The file cannot be read, is not a checkpoint, is truncated or corrupt, holds labels of
    /// another type, or does not fit this dataset.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let state = Checkpoint::load(path)?;
        self.restore(state)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::data::dataset::InMemDataset;

    use super::*;

    /// Items `(value, class)` with `value = index` and `class = index % 10`.
    pub(crate) fn simulated(n: usize) -> ActiveLearningDataset<(f32, u8), u8> {
        let items = (0..n).map(|i| (i as f32, (i % 10) as u8)).collect();
        ActiveLearningDataset::new(InMemDataset::new(items))
            .with_known_labels(|item: &(f32, u8)| item.1)
            .with_label_check(|&class| {
                if class < 10 {
                    Ok(())
                } else {
                    Err(format!("class {class} is not below 10"))
                }
            })
            .with_seed(7)
    }

    pub(crate) fn pool(indices: &[usize]) -> Vec<PoolIndex> {
        indices.iter().copied().map(PoolIndex::new).collect()
    }

    pub(crate) fn dataset(indices: &[usize]) -> Vec<DatasetIndex> {
        indices.iter().copied().map(DatasetIndex::new).collect()
    }

    #[test]
    fn labelling_moves_items_from_pool_to_labelled() {
        let mut data = simulated(100);
        assert_eq!(
            (data.n_labelled(), data.n_unlabelled(), data.current_step()),
            (0, 100, 0)
        );
        assert_eq!(data.label(&pool(&[0])).expect("labels"), dataset(&[0]));
        // Pool index 0 now is dataset item 1; labelling pool 0 and 5 labels items 1 and 6.
        assert_eq!(
            data.label(&pool(&[5, 0])).expect("labels"),
            dataset(&[6, 1])
        );
        assert_eq!(
            (data.n_labelled(), data.n_unlabelled(), data.current_step()),
            (3, 97, 2)
        );
        assert_eq!(data.labelled().len(), 3);
        assert_eq!(data.pool().len(), 97);
        assert_eq!(data.labelled_dataset_indices(), dataset(&[0, 1, 6]));
        assert_eq!(
            data.label_of(DatasetIndex::new(6)).expect("in range"),
            Some(&6)
        );
        assert_eq!(data.label_of(DatasetIndex::new(7)).expect("in range"), None);
        let state = data.state();
        let steps: Vec<(usize, usize)> = state
            .labelled
            .iter()
            .map(|r| (r.dataset_index.get(), r.step))
            .collect();
        assert_eq!(steps, vec![(0, 1), (6, 2), (1, 2)]);
    }

    #[test]
    fn index_conversions_are_inverse() {
        let mut data = simulated(20);
        data.label_dataset_indices(&dataset(&[0, 3, 4, 10]))
            .expect("labels");
        for p in 0..data.n_unlabelled() {
            let d = data
                .pool_to_dataset_index(PoolIndex::new(p))
                .expect("in pool");
            assert!(!data.is_labelled(d).expect("in range"));
            assert_eq!(
                data.dataset_to_pool_index(d).expect("in pool"),
                PoolIndex::new(p)
            );
        }
        assert_eq!(
            data.pool_to_dataset_index(PoolIndex::new(0))
                .expect("in pool")
                .get(),
            1
        );
        assert_eq!(
            data.pool_to_dataset_index(PoolIndex::new(2))
                .expect("in pool")
                .get(),
            5
        );
        assert!(matches!(
            data.dataset_to_pool_index(DatasetIndex::new(3)),
            Err(DataError::AlreadyLabelled(_))
        ));
        assert!(matches!(
            data.pool_to_dataset_index(PoolIndex::new(16)),
            Err(DataError::IndexOutOfRange {
                kind: "pool",
                index: 16,
                len: 16
            })
        ));
    }

    #[test]
    fn label_randomly_is_seeded_and_labels_pool_items() {
        let mut a = simulated(100);
        let mut b = simulated(100);
        let picked = a.label_randomly(10).expect("labels");
        assert_eq!(picked, b.label_randomly(10).expect("labels"));
        assert_eq!(a.n_labelled(), 10);
        let mut unique = picked.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let mut c = simulated(100).with_seed(8);
        assert_ne!(c.label_randomly(10).expect("labels"), picked);
        // Each call continues the generator: the next draw avoids labelled items.
        let next = a.label_randomly(90).expect("labels the rest");
        assert!(next.iter().all(|d| !picked.contains(d)));
        assert!(matches!(a.label_randomly(1), Err(DataError::EmptyPool)));
    }

    #[test]
    fn pool_subset_draws_distinct_pool_items() {
        let mut data = simulated(50);
        data.label(&pool(&[0, 1, 2])).expect("labels");
        let subset = data.pool_subset(10).expect("subset");
        assert_eq!(subset.len(), 10);
        let pool_indices = subset.pool_indices();
        assert!(
            pool_indices.windows(2).all(|w| w[0] < w[1]),
            "sorted and distinct"
        );
        for (position, pool_index) in pool_indices.iter().enumerate() {
            let from_dataset = data.pool_to_dataset_index(*pool_index).expect("in pool");
            assert_eq!(
                subset.dataset_index(position).expect("in view"),
                from_dataset
            );
            let item = subset.get(position).expect("item");
            assert_eq!(item.0 as usize, from_dataset.get());
        }
        // The generator moves on: the next subset differs; a large max gives the whole pool.
        assert_ne!(
            data.pool_subset(10).expect("subset").pool_indices(),
            pool_indices
        );
        assert_eq!(data.pool_subset(1000).expect("subset").len(), 47);
        data.label_dataset_indices(&data.pool_dataset_indices())
            .expect("labels all");
        assert!(matches!(data.pool_subset(10), Err(DataError::EmptyPool)));
        assert_eq!(data.pool().len(), 0);
    }

    #[test]
    fn bad_requests_are_errors_and_change_nothing() {
        let mut data = simulated(10);
        data.label(&pool(&[0])).expect("labels");
        let before = data.state();
        assert!(matches!(
            data.label(&pool(&[1, 9])),
            Err(DataError::IndexOutOfRange {
                kind: "pool",
                index: 9,
                len: 9
            })
        ));
        assert!(matches!(
            data.label(&pool(&[1, 1])),
            Err(DataError::DuplicateIndex {
                kind: "pool",
                index: 1
            })
        ));
        assert!(matches!(
            data.label_with(DatasetIndex::new(0), 3),
            Err(DataError::AlreadyLabelled(index)) if index.get() == 0
        ));
        assert!(matches!(
            data.label_with(DatasetIndex::new(10), 3),
            Err(DataError::IndexOutOfRange {
                kind: "dataset",
                index: 10,
                len: 10
            })
        ));
        assert!(matches!(
            data.label_many_with([(DatasetIndex::new(4), 1), (DatasetIndex::new(5), 11)]),
            Err(DataError::InvalidLabel { dataset_index, .. }) if dataset_index.get() == 5
        ));
        assert!(matches!(
            data.unlabel(DatasetIndex::new(3)),
            Err(DataError::NotLabelled(_))
        ));
        assert!(matches!(
            data.label_randomly(10),
            Err(DataError::NotEnoughUnlabelled {
                requested: 10,
                available: 9
            })
        ));
        assert_eq!(data.state(), before);

        let mut human: ActiveLearningDataset<(f32, u8), u8> =
            ActiveLearningDataset::new(InMemDataset::new(vec![(0.0, 0)]));
        assert!(matches!(
            human.label(&pool(&[0])),
            Err(DataError::NoKnownLabels)
        ));
        assert!(matches!(
            human.label_randomly(1),
            Err(DataError::NoKnownLabels)
        ));
    }

    #[test]
    fn unlabel_and_reset_return_items_to_the_pool() {
        let mut data = simulated(10);
        data.label(&pool(&[0, 1, 2])).expect("labels");
        data.unlabel(DatasetIndex::new(1)).expect("unlabels");
        assert_eq!((data.n_labelled(), data.current_step()), (2, 1));
        assert_eq!(
            data.pool_to_dataset_index(PoolIndex::new(0))
                .expect("in pool")
                .get(),
            1
        );
        data.reset();
        assert_eq!(
            (data.n_labelled(), data.n_unlabelled(), data.current_step()),
            (0, 10, 0)
        );
    }

    #[test]
    fn state_round_trips_through_json_and_continues_identically() {
        let mut original = simulated(100);
        original.label_randomly(5).expect("labels");
        original.label(&pool(&[3, 4])).expect("labels");
        let json = serde_json::to_string(&original.state()).expect("serialises");
        assert!(json.contains("\"format_version\":1"));
        let state: DatasetState<u8> = serde_json::from_str(&json).expect("parses");

        let mut resumed = simulated(100).with_seed(12345);
        resumed.restore(state).expect("restores");
        assert_eq!(resumed.state(), original.state());
        assert_eq!(
            resumed.labelled_dataset_indices(),
            original.labelled_dataset_indices()
        );
        assert_eq!(
            resumed.label_randomly(7).expect("labels"),
            original.label_randomly(7).expect("labels")
        );
        assert_eq!(
            resumed.pool_subset(5).expect("subset").dataset_indices(),
            original.pool_subset(5).expect("subset").dataset_indices()
        );
    }

    #[test]
    fn restore_rejects_states_that_do_not_fit() {
        let mut data = simulated(10);
        data.label(&pool(&[1])).expect("labels");
        let good = data.state();
        let before = data.state();
        let mut wrong = good.clone();
        wrong.format_version = 99;
        assert!(matches!(data.restore(wrong), Err(DataError::State(m)) if m.contains("version")));
        let mut wrong = good.clone();
        wrong.dataset_len = 11;
        assert!(matches!(data.restore(wrong), Err(DataError::State(m)) if m.contains("11 items")));
        let mut wrong = good.clone();
        wrong.labelled.push(wrong.labelled[0].clone());
        assert!(matches!(
            data.restore(wrong),
            Err(DataError::DuplicateIndex { .. })
        ));
        let mut wrong = good.clone();
        wrong.labelled[0].dataset_index = DatasetIndex::new(10);
        assert!(matches!(
            data.restore(wrong),
            Err(DataError::IndexOutOfRange { .. })
        ));
        let mut wrong = good.clone();
        wrong.labelled[0].label = 200;
        assert!(matches!(
            data.restore(wrong),
            Err(DataError::InvalidLabel { .. })
        ));
        let mut wrong = good;
        wrong.labelled[0].step = 5;
        assert!(matches!(data.restore(wrong), Err(DataError::State(m)) if m.contains("step")));
        assert_eq!(data.state(), before);
    }

    #[test]
    fn human_labels_of_any_serde_type_survive_a_checkpoint() {
        let items: Vec<Vec<u8>> = (0..5).map(|i| vec![i; 3]).collect();
        let mut data: ActiveLearningDataset<Vec<u8>, String> =
            ActiveLearningDataset::new(InMemDataset::new(items.clone()));
        data.label_with(DatasetIndex::new(3), "cat".into())
            .expect("labels");
        data.label_many_with([
            (DatasetIndex::new(0), "dog".to_string()),
            (DatasetIndex::new(4), "cat".to_string()),
        ])
        .expect("labels");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("labels.ckpt");
        data.save_checkpoint(&path).expect("saves");

        let mut resumed: ActiveLearningDataset<Vec<u8>, String> =
            ActiveLearningDataset::new(InMemDataset::new(items.clone()));
        resumed.load_checkpoint(&path).expect("loads");
        assert_eq!(resumed.state(), data.state());
        let labelled: Vec<(Vec<u8>, String)> = resumed
            .labelled()
            .iter()
            .map(|item| item.map(|i| (i.item, i.label)).expect("item"))
            .collect();
        assert_eq!(
            labelled,
            vec![
                (vec![0; 3], "dog".to_string()),
                (vec![3; 3], "cat".to_string()),
                (vec![4; 3], "cat".to_string())
            ]
        );

        // A label of the wrong kind: this checkpoint holds strings, not classes.
        let mut classes: ActiveLearningDataset<Vec<u8>, u8> =
            ActiveLearningDataset::new(InMemDataset::new(items));
        let error = classes
            .load_checkpoint(&path)
            .expect_err("wrong label type");
        assert!(error.to_string().contains("labels.ckpt"), "{error}");
        assert_eq!(classes.n_labelled(), 0);
    }
}
