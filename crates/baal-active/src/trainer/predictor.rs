//! [`ModelPredictor`]: a model trained elsewhere, as a [`Predictor`].

use std::ops::Range;

use baal_bayesian::{McPredictions, McSampler, StochasticModel};
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::traits::{InputBatcher, Predictor};

/// A model trained elsewhere, its batcher and its inference device, as a [`Predictor`].
pub struct ModelPredictor<M: StochasticModel, I> {
    /// The model (its inference form: call `valid()` on an autodiff-trained module).
    pub model: M,
    /// Items to input batch.
    pub batcher: InputBatcher<I, M::Input>,
    /// Where the inputs go.
    pub device: Device,
    /// Items per forward pass.
    pub batch_size: usize,
}

impl<M: StochasticModel, I> ModelPredictor<M, I> {
    /// `sampler`'s predictions of every item of `items` (`[N, C, T]`, or `[N, C, P, T]` for
    /// a model with `[rows, C, P]` outputs).
    ///
    /// # Errors
    /// As [`McSampler::predict_dataset`].
    pub fn sample(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<McPredictions<M>> {
        Ok(
            sampler.predict_dataset(&self.model, items, self.batch_size, |batch| {
                (self.batcher)(batch, &self.device)
            })?,
        )
    }

    /// The same predictions, handed to `on_chunk` batch by batch with each batch's range of
    /// positions in `items`.
    ///
    /// # Errors
    /// As [`McSampler::predict_dataset_chunks`], and whatever `on_chunk` returns.
    pub fn sample_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: impl FnMut(Range<usize>, McPredictions<M>) -> Result<()>,
    ) -> Result<()> {
        sampler.predict_dataset_chunks(
            &self.model,
            items,
            self.batch_size,
            |batch| (self.batcher)(batch, &self.device),
            on_chunk,
        )
    }
}

impl<M, I> Predictor<I> for ModelPredictor<M, I>
where
    M: StochasticModel<Output = Tensor<2>>,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        self.sample(sampler, items)
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        self.sample_chunks(sampler, items, on_chunk)
    }

    fn embed_chunks(
        &self,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<2>) -> Result<()>,
    ) -> Result<()> {
        baal_bayesian::embed_dataset_chunks(
            &self.model,
            items,
            self.batch_size,
            |batch| (self.batcher)(batch, &self.device),
            on_chunk,
        )
    }
}
