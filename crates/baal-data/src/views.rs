//! Views of an [`ActiveLearningDataset`](crate::ActiveLearningDataset): the labelled items and
//! the pool, each a Burn dataset again.

use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use crate::error::{DataError, Result};
use crate::index::{DatasetIndex, PoolIndex};

/// The transform applied to pool items as the pool views return them.
pub(crate) type PoolTransform<I> = Arc<dyn Fn(I) -> I + Send + Sync>;

/// A labelled item with the label it was given.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledItem<I, L> {
    /// The item as the wrapped dataset returns it.
    pub item: I,
    /// Its label.
    pub label: L,
}

/// The labelled items, in dataset order, as a Burn [`Dataset`] of [`LabelledItem`]s.
pub struct LabelledView<I, L> {
    dataset: Arc<dyn Dataset<I>>,
    entries: Arc<Vec<(DatasetIndex, L)>>,
}

impl<I, L> Clone for LabelledView<I, L> {
    fn clone(&self) -> Self {
        Self {
            dataset: Arc::clone(&self.dataset),
            entries: Arc::clone(&self.entries),
        }
    }
}

impl<I, L> LabelledView<I, L> {
    /// The view of `entries`, items of `dataset` with their labels, in that order.
    pub(crate) fn new(dataset: Arc<dyn Dataset<I>>, entries: Vec<(DatasetIndex, L)>) -> Self {
        Self {
            dataset,
            entries: Arc::new(entries),
        }
    }

    /// The dataset index of the item at `position` in this view.
    ///
    /// # Errors
    /// `position` is past the end of the view.
    pub fn dataset_index(&self, position: usize) -> Result<DatasetIndex> {
        self.entries
            .get(position)
            .map(|(index, _)| *index)
            .ok_or(DataError::IndexOutOfRange {
                kind: "view",
                index: position,
                len: self.entries.len(),
            })
    }
}

impl<I, L> Dataset<LabelledItem<I, L>> for LabelledView<I, L>
where
    I: Send + Sync,
    L: Clone + Send + Sync,
{
    fn get(&self, position: usize) -> std::result::Result<LabelledItem<I, L>, DatasetError> {
        let (index, label) = self.entries.get(position).ok_or_else(|| {
            DatasetError::new(DataError::IndexOutOfRange {
                kind: "view",
                index: position,
                len: self.entries.len(),
            })
        })?;
        let item = self.dataset.get(index.get())?;
        Ok(LabelledItem {
            item,
            label: label.clone(),
        })
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Pool items (all, or a random subset), as a Burn [`Dataset`] whose items went through the pool
/// transform.
///
/// Positions in this view are neither pool nor dataset indices when it is a subset: convert them
/// with [`pool_index`](Self::pool_index) or [`dataset_index`](Self::dataset_index).
pub struct PoolView<I> {
    dataset: Arc<dyn Dataset<I>>,
    indices: Arc<Vec<(PoolIndex, DatasetIndex)>>,
    transform: Option<PoolTransform<I>>,
}

impl<I> Clone for PoolView<I> {
    fn clone(&self) -> Self {
        Self {
            dataset: Arc::clone(&self.dataset),
            indices: Arc::clone(&self.indices),
            transform: self.transform.clone(),
        }
    }
}

impl<I> PoolView<I> {
    /// The view of the items of `dataset` at `indices`, passed through `transform`.
    pub(crate) fn new(
        dataset: Arc<dyn Dataset<I>>,
        indices: Vec<(PoolIndex, DatasetIndex)>,
        transform: Option<PoolTransform<I>>,
    ) -> Self {
        Self {
            dataset,
            indices: Arc::new(indices),
            transform,
        }
    }

    /// The pool index (at the time the view was taken) of the item at `position`.
    ///
    /// # Errors
    /// `position` is past the end of the view.
    pub fn pool_index(&self, position: usize) -> Result<PoolIndex> {
        self.pair(position).map(|(pool, _)| pool)
    }

    /// The dataset index of the item at `position`.
    ///
    /// # Errors
    /// `position` is past the end of the view.
    pub fn dataset_index(&self, position: usize) -> Result<DatasetIndex> {
        self.pair(position).map(|(_, dataset)| dataset)
    }

    /// The dataset indices of the view's items, in view order.
    pub fn dataset_indices(&self) -> Vec<DatasetIndex> {
        self.indices.iter().map(|&(_, d)| d).collect()
    }

    /// The pool indices of the view's items, in view order.
    pub fn pool_indices(&self) -> Vec<PoolIndex> {
        self.indices.iter().map(|&(p, _)| p).collect()
    }

    fn pair(&self, position: usize) -> Result<(PoolIndex, DatasetIndex)> {
        self.indices
            .get(position)
            .copied()
            .ok_or(DataError::IndexOutOfRange {
                kind: "view",
                index: position,
                len: self.indices.len(),
            })
    }
}

impl<I: Send + Sync> Dataset<I> for PoolView<I> {
    fn get(&self, position: usize) -> std::result::Result<I, DatasetError> {
        let (_, index) = self.pair(position).map_err(DatasetError::new)?;
        let item = self.dataset.get(index.get())?;
        Ok(match &self.transform {
            Some(transform) => transform(item),
            None => item,
        })
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataloader::batcher::Batcher;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::dataset::tests::{dataset, pool, simulated};

    #[test]
    fn pool_transform_applies_to_the_pool_view_only() {
        let mut data = simulated(10).with_pool_transform(|(value, class)| (-value, class));
        data.label(&pool(&[2])).expect("labels");
        let labelled = data.labelled();
        let item = labelled.get(0).expect("item");
        assert_eq!(
            item,
            LabelledItem {
                item: (2.0, 2),
                label: 2
            }
        );
        let pool_view = data.pool();
        assert_eq!(pool_view.get(2).expect("item"), (-3.0, 3));
        assert_eq!(
            pool_view.dataset_index(2).expect("in view"),
            DatasetIndex::new(3)
        );
        assert!(pool_view.get(9).is_err());
        assert!(labelled.get(1).is_err());
    }

    #[test]
    fn labelled_items_read_as_the_pool_reads_its_own() {
        let mut data = simulated(10).with_pool_transform(|(value, class)| (-value, class));
        data.label(&pool(&[7, 2])).expect("labels");
        let view = data.labelled_as_pool();
        assert_eq!(view.len(), 2);
        // Dataset order, through the pool transform.
        assert_eq!(view.get(0).expect("item"), (-2.0, 2));
        assert_eq!(view.get(1).expect("item"), (-7.0, 7));
        assert_eq!(
            view.dataset_indices(),
            [DatasetIndex::new(2), DatasetIndex::new(7)]
        );
        assert!(view.get(2).is_err());
    }

    #[derive(Clone)]
    struct SumBatcher;

    impl Batcher<LabelledItem<(f32, u8), u8>, (Tensor<1>, Vec<u8>)> for SumBatcher {
        fn batch(
            &self,
            items: Vec<LabelledItem<(f32, u8), u8>>,
            device: &Device,
        ) -> (Tensor<1>, Vec<u8>) {
            let values: Vec<f32> = items.iter().map(|i| i.item.0).collect();
            let n = values.len();
            let labels = items.iter().map(|i| i.label).collect();
            (
                Tensor::from_data(TensorData::new(values, [n]), device),
                labels,
            )
        }
    }

    #[test]
    fn labelled_view_feeds_a_burn_data_loader() {
        let mut data = simulated(30);
        data.label_dataset_indices(&dataset(&[2, 5, 11, 12, 29]))
            .expect("labels");
        let loader = DataLoaderBuilder::new(SumBatcher)
            .batch_size(2)
            .set_device(Device::default())
            .build(data.labelled());
        let mut total = 0.0;
        let mut labels = Vec::new();
        for batch in loader.iter() {
            let (values, batch_labels) = batch.expect("batch");
            total += values.sum().into_scalar::<f32>();
            labels.extend(batch_labels);
        }
        assert_eq!(total, 2.0 + 5.0 + 11.0 + 12.0 + 29.0);
        assert_eq!(labels, vec![2, 5, 1, 2, 9]);
    }
}
