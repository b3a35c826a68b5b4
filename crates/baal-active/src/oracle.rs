//! Oracles: who labels the items the loop queries.

use baal_data::{ActiveLearningDataset, DatasetIndex};

use crate::error::{ActiveError, Result};

/// What an oracle did with a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OracleOutcome {
    /// The query is labelled (this many items).
    Labelled(usize),
    /// The query waits for a person; label it with
    /// [`ActiveLearningDataset::label_with`] or `label_many_with`, then step again.
    Pending,
}

/// Labels the items a step queried.
pub trait Oracle<I, L>: Send {
    /// Labels `query` (dataset indices, most informative first) in `dataset`, or leaves it
    /// pending.
    ///
    /// # Errors
    /// The labels cannot be obtained or are refused by the dataset.
    fn label(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        query: &[DatasetIndex],
    ) -> Result<OracleOutcome>;
}

/// Simulation: the items carry their labels (the dataset was built with
/// [`ActiveLearningDataset::with_known_labels`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownLabels;

impl<I, L> Oracle<I, L> for KnownLabels
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + 'static,
{
    fn label(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        query: &[DatasetIndex],
    ) -> Result<OracleOutcome> {
        dataset.label_dataset_indices(query)?;
        Ok(OracleOutcome::Labelled(query.len()))
    }
}

/// A callback that returns the labels of a query (e.g. asks a person in a terminal or calls a
/// labelling service); an `Err(reason)` aborts the step with [`ActiveError::Oracle`].
pub struct CallbackOracle<F>(pub F);

impl<I, L, F> Oracle<I, L> for CallbackOracle<F>
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + 'static,
    F: FnMut(&[DatasetIndex]) -> std::result::Result<Vec<(DatasetIndex, L)>, String> + Send,
{
    fn label(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        query: &[DatasetIndex],
    ) -> Result<OracleOutcome> {
        let labels = (self.0)(query).map_err(ActiveError::Oracle)?;
        let n = labels.len();
        dataset.label_many_with(labels)?;
        Ok(OracleOutcome::Labelled(n))
    }
}

/// Human labelling out of band: the loop returns the query unlabelled and stops
/// ([`StepOutcome::can_continue`](crate::StepOutcome::can_continue) is false) until the labels
/// are recorded.
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingQueue;

impl<I, L> Oracle<I, L> for PendingQueue {
    fn label(
        &mut self,
        _dataset: &mut ActiveLearningDataset<I, L>,
        _query: &[DatasetIndex],
    ) -> Result<OracleOutcome> {
        Ok(OracleOutcome::Pending)
    }
}
