//! A dataset's embeddings, batch by batch: what the diversity heuristics (Coreset, BADGE) read.

use std::ops::Range;

use burn::data::dataset::Dataset;
use burn::tensor::Tensor;

use crate::error::BayesianError;
use crate::model::StochasticModel;
use crate::sampler::{check_batching, read_batch};

/// Embeds every item of `dataset` with `model` ([`StochasticModel::embed`]: the input of its
/// last linear layer, every stochastic layer off), `batch_size` items per forward pass, and
/// hands each batch's embeddings `[rows, D]` to `on_chunk` with the batch's range of dataset
/// indices. Nothing is kept between batches, so the caller decides what stays in memory.
///
/// ```
/// use baal_bayesian::{McContext, StochasticModel, embed_dataset_chunks};
/// use burn::data::dataset::InMemDataset;
/// use burn::tensor::{Device, Tensor};
///
/// struct Doubler;
/// impl StochasticModel for Doubler {
///     type Input = Tensor<2>;
///     type Features = Tensor<2>;
///     type Output = Tensor<2>;
///     fn trunk(&self, x: Tensor<2>) -> Tensor<2> { x }
///     fn head(&self, x: Tensor<2>, _: &McContext) -> Tensor<2> { x }
///     fn embed(&self, x: Tensor<2>) -> Option<Tensor<2>> { Some(x * 2.0) }
/// }
///
/// let device = Device::default();
/// let items = InMemDataset::new(vec![1.0f32, 2.0, 3.0]);
/// let mut rows = Vec::new();
/// embed_dataset_chunks(&Doubler, &items, 2, |batch: Vec<f32>| {
///     Tensor::<1>::from_floats(batch.as_slice(), &device).reshape([-1, 1])
/// }, |range, embeddings: Tensor<2>| -> baal_bayesian::Result<()> {
///     rows.push((range, embeddings.to_data().to_vec::<f32>().unwrap()));
///     Ok(())
/// })?;
/// assert_eq!(rows, vec![(0..2, vec![2.0, 4.0]), (2..3, vec![6.0])]);
/// # Ok::<(), baal_bayesian::BayesianError>(())
/// ```
///
/// # Errors
/// A batch size of 0, an empty dataset, an item that cannot be read, a batcher output of
/// another number of items, a model that gives no embeddings ([`BayesianError::NoEmbeddings`]),
/// embeddings with another number of rows than the batch, and whatever `on_chunk` returns.
pub fn embed_dataset_chunks<M, I, E, D, Err>(
    model: &M,
    dataset: &D,
    batch_size: usize,
    mut batcher: impl FnMut(Vec<I>) -> M::Input,
    mut on_chunk: impl FnMut(Range<usize>, Tensor<2>) -> Result<(), Err>,
) -> Result<(), Err>
where
    M: StochasticModel,
    D: Dataset<I, E> + ?Sized,
    E: std::error::Error + Send + Sync + 'static,
    Err: From<BayesianError>,
{
    let len = check_batching(batch_size, dataset.len())?;
    for start in (0..len).step_by(batch_size) {
        let end = (start + batch_size).min(len);
        let input = read_batch(dataset, start..end, &mut batcher)?;
        let embeddings = model.embed(input).ok_or(BayesianError::NoEmbeddings)?;
        if embeddings.dims()[0] != end - start {
            return Err(BayesianError::ShapeMismatch {
                what: "model embeddings",
                expected: format!("[{}, D] (dataset {start}..{end})", end - start),
                got: embeddings.dims().to_vec(),
            }
            .into());
        }
        on_chunk(start..end, embeddings)?;
    }
    Ok(())
}
