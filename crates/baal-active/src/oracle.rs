//! Oracles: who labels the items the loop queries.

use std::collections::HashSet;

use baal_data::{ActiveLearningDataset, DatasetIndex};

use crate::error::{ActiveError, Result};
use crate::traits::{Oracle, OracleOutcome};

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
/// labelling service); an `Err(reason)` aborts the step with [`ActiveError::Oracle`]. It may
/// answer for part of the query (the rest stays in the pool), but a label for an item it was
/// not asked about, or two labels for one item, is an error and labels nothing.
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
        check_answers(query, &labels)
            .map_err(|reason| ActiveError::Oracle(format!("the callback: {reason}")))?;
        let n = labels.len();
        dataset.label_many_with(labels)?;
        Ok(OracleOutcome::Labelled(n))
    }
}

/// Checks that `labels` answer only items of `query`, each once; returns the items answered,
/// or why not.
pub(crate) fn check_answers<L>(
    query: &[DatasetIndex],
    labels: &[(DatasetIndex, L)],
) -> std::result::Result<HashSet<DatasetIndex>, String> {
    let mut answered = HashSet::with_capacity(labels.len());
    for (index, _) in labels {
        if !query.contains(index) {
            return Err(format!(
                "item {index} was labelled, but the query {query:?} does not hold it"
            ));
        }
        if !answered.insert(*index) {
            return Err(format!("item {index} was labelled twice"));
        }
    }
    Ok(answered)
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataset::InMemDataset;

    fn pool() -> ActiveLearningDataset<u8, u8> {
        ActiveLearningDataset::new(InMemDataset::new((0..6u8).collect()))
    }

    fn ask(
        answer: Vec<(DatasetIndex, u8)>,
        dataset: &mut ActiveLearningDataset<u8, u8>,
    ) -> Result<OracleOutcome> {
        let query = [DatasetIndex::new(1), DatasetIndex::new(4)];
        let mut oracle = CallbackOracle(move |_: &[DatasetIndex]| Ok(answer.clone()));
        Oracle::<u8, u8>::label(&mut oracle, dataset, &query)
    }

    #[test]
    fn a_callback_answering_for_items_it_was_not_asked_about_is_an_error() {
        let mut dataset = pool();
        let foreign = vec![(DatasetIndex::new(1), 3), (DatasetIndex::new(2), 5)];
        let err = ask(foreign, &mut dataset).expect_err("item 2 was not queried");
        assert!(err.to_string().contains("item 2"), "{err}");
        assert_eq!(dataset.n_labelled(), 0, "nothing is labelled");
        let twice = vec![(DatasetIndex::new(4), 3), (DatasetIndex::new(4), 5)];
        let err = ask(twice, &mut dataset).expect_err("item 4 twice");
        assert!(err.to_string().contains("twice"), "{err}");
        assert_eq!(dataset.n_labelled(), 0);
        // Part of the query is fine: the rest stays in the pool.
        let part = vec![(DatasetIndex::new(4), 3)];
        assert_eq!(
            ask(part, &mut dataset).expect("labels"),
            OracleOutcome::Labelled(1)
        );
        assert_eq!(dataset.n_labelled(), 1);
    }
}
