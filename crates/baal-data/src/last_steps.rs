//! The labels of the last few labelling steps only (baal's `last_active_steps`, PR #174):
//! training on the newest labels, e.g. to fine-tune the previous step's model on them.

use crate::dataset::ActiveLearningDataset;
use crate::error::{DataError, Result};
use crate::views::LabelledView;

impl<I, L> ActiveLearningDataset<I, L>
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + 'static,
{
    /// A snapshot view of the items labelled in the last `steps` labelling steps, in dataset
    /// order: those whose step is above `current_step() − steps`.
    ///
    /// Steps are numbered from 1: every call that labels at least one item (`label`,
    /// `label_randomly`, `label_dataset_indices`, `label_with`, `label_many_with`) is the next
    /// step, and [`current_step`](Self::current_step) is the last one. The initial labels are
    /// step 1 (those of one call; baal also puts its initial labels in step 1) and count like
    /// any step, so they leave the view once `steps` later steps have labelled items. With
    /// `steps` at least `current_step()` the view is [`labelled`](Self::labelled).
    ///
    /// ```
    /// use baal_data::{ActiveLearningDataset, DatasetIndex};
    /// use burn::data::dataset::{Dataset, InMemDataset};
    ///
    /// let mut dataset = ActiveLearningDataset::new(InMemDataset::new((0..10u8).collect()))
    ///     .with_known_labels(|&x: &u8| x % 2);
    /// let initial = [DatasetIndex::new(0), DatasetIndex::new(1), DatasetIndex::new(2)];
    /// dataset.label_dataset_indices(&initial)?; // step 1: the initial labels
    /// dataset.label_dataset_indices(&[DatasetIndex::new(9)])?; // step 2
    /// assert_eq!(dataset.current_step(), 2);
    /// assert_eq!(dataset.labelled_last_steps(1)?.len(), 1);
    /// assert_eq!(dataset.labelled_last_steps(2)?.len(), 4);
    /// # Ok::<(), baal_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// `steps` is 0 (baal refuses it too: a view of no step holds nothing to train on).
    pub fn labelled_last_steps(&self, steps: usize) -> Result<LabelledView<I, L>> {
        if steps == 0 {
            return Err(DataError::InvalidArgument {
                what: "last active steps",
                reason: "the view needs at least the last step, got 0".into(),
            });
        }
        let first_step = self.current_step().saturating_sub(steps) + 1;
        Ok(self.labelled_from_step(first_step))
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataset::Dataset;

    use crate::dataset::tests::{dataset, simulated};
    use crate::index::DatasetIndex;

    /// Items 0–3 at step 1, 10–11 at step 2, 20 at step 3, 30–32 at step 4.
    fn four_steps() -> crate::ActiveLearningDataset<(f32, u8), u8> {
        let mut data = simulated(40);
        for step in [&[0, 1, 2, 3][..], &[10, 11], &[20], &[30, 31, 32]] {
            data.label_dataset_indices(&dataset(step)).expect("labels");
        }
        assert_eq!(data.current_step(), 4);
        data
    }

    /// The dataset indices of a view.
    fn indices(view: &crate::LabelledView<(f32, u8), u8>) -> Vec<usize> {
        (0..view.len())
            .map(|p| view.dataset_index(p).expect("in range").get())
            .collect()
    }

    #[test]
    fn the_last_k_steps_keep_only_their_labels() {
        let data = four_steps();
        let last = |k| indices(&data.labelled_last_steps(k).expect("k > 0"));
        assert_eq!(last(1), [30, 31, 32]);
        assert_eq!(last(2), [20, 30, 31, 32]);
        assert_eq!(last(3), [10, 11, 20, 30, 31, 32]);
        // The initial labels are step 1, a step like the others: in from k = 4 on.
        let all = indices(&data.labelled());
        assert_eq!(all, [0, 1, 2, 3, 10, 11, 20, 30, 31, 32]);
        for k in [4, 5, 100, usize::MAX] {
            assert_eq!(last(k), all, "k = {k}");
        }
        // The view carries the labels, as the full one does.
        let view = data.labelled_last_steps(1).expect("k > 0");
        let item = view.get(0).expect("item");
        assert_eq!((item.item, item.label), ((30.0, 0), 0));
    }

    #[test]
    fn k_zero_is_an_error_and_an_unlabelled_dataset_gives_an_empty_view() {
        let data = four_steps();
        let err = data.labelled_last_steps(0).err().expect("k = 0");
        assert!(err.to_string().contains("last active steps"), "{err}");
        let fresh = simulated(10);
        assert_eq!(fresh.labelled_last_steps(1).expect("k > 0").len(), 0);
    }

    #[test]
    fn the_window_follows_steps_through_unlabelling_and_restore() {
        let mut data = four_steps();
        // Unlabelling leaves the step counter: step 4 is still the last.
        for index in [30, 31, 32] {
            data.unlabel(DatasetIndex::new(index)).expect("labelled");
        }
        assert!(data.labelled_last_steps(1).expect("k > 0").is_empty());
        assert_eq!(indices(&data.labelled_last_steps(2).expect("k > 0")), [20]);
        // A restored state keeps each label's step.
        let mut restored = simulated(40);
        restored.restore(four_steps().state()).expect("restores");
        assert_eq!(
            indices(&restored.labelled_last_steps(2).expect("k > 0")),
            [20, 30, 31, 32]
        );
        // A person's label is a step of its own.
        restored
            .label_with(DatasetIndex::new(5), 5)
            .expect("labels");
        assert_eq!(
            indices(&restored.labelled_last_steps(1).expect("k > 0")),
            [5]
        );
    }
}
