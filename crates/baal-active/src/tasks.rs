//! Models that are not classifiers of whole items: segmentation (a class per position) and
//! regression (real outputs). Their losses, for the [`Trainer`](crate::Trainer) through
//! [`Trainable`](crate::Trainable), and their predictors, for the loop, `score_pool` and
//! shards.

use std::ops::Range;

use baal_bayesian::{McSampler, OutputActivation, StochasticModel};
use baal_heuristics::{Predictions, Reduction};
use burn::data::dataset::Dataset;
use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction as LossReduction};
use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{ActiveError, Result};
use crate::trainer::ModelPredictor;
use crate::traits::Predictor;

/// A segmentation model (head output `[rows, C, P]`: class logits at `P` positions, e.g. the
/// pixels flattened), as a [`Predictor`]: the loop scores its `[N, C, P, T]` softmax
/// predictions, each item's per-position scores folded by `reduction` (mean, sum, max or min;
/// baal's `reduction`).
///
/// Its [`predict`](Predictor::predict) is an error: segmentation predictions have no
/// `[N, C, T]` form. [`SegmentationPredictor::predict_segmentation`] gives them whole.
pub struct SegmentationPredictor<M: StochasticModel, I> {
    /// The model, its batcher, device and batch size.
    pub predictor: ModelPredictor<M, I>,
    /// How an item's per-position scores fold into one.
    pub reduction: Reduction,
}

impl<M, I> SegmentationPredictor<M, I>
where
    M: StochasticModel<Output = Tensor<3>>,
{
    /// MC probabilities `[N, C, P, T]` of `items`.
    ///
    /// # Errors
    /// As [`McSampler::predict_dataset`].
    pub fn predict_segmentation(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
    ) -> Result<Tensor<4>> {
        self.predictor.sample(&softmax(sampler), items)
    }
}

/// `sampler` with a softmax over the classes.
fn softmax(sampler: &McSampler) -> McSampler {
    sampler.clone().with_activation(OutputActivation::Softmax)
}

/// `sampler` without an output activation.
fn identity(sampler: &McSampler) -> McSampler {
    sampler.clone().with_activation(OutputActivation::Identity)
}

impl<M, I> Predictor<I> for SegmentationPredictor<M, I>
where
    M: StochasticModel<Output = Tensor<3>>,
{
    fn predict(&self, _: &McSampler, _: &dyn Dataset<I>) -> Result<Tensor<3>> {
        Err(ActiveError::InvalidConfig {
            what: "segmentation predictions",
            reason: "they are [N, C, P, T], not [N, C, T]: use predict_segmentation, or \
                     predict_pool_chunks for scoring"
                .into(),
        })
    }

    fn predict_pool_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Predictions) -> Result<()>,
    ) -> Result<()> {
        self.predictor
            .sample_chunks(&softmax(sampler), items, |range, probs: Tensor<4>| {
                let chunk = Predictions::from_segmentation_probs(probs, self.reduction)
                    .map_err(|error| error.offset_item(range.start))?;
                on_chunk(range, chunk)
            })
    }

    fn classifies(&self) -> bool {
        false
    }
}

/// A regression model (head output `[rows, O]`: `O` real outputs), as a [`Predictor`]: the
/// sampler runs it with the identity activation, and the loop scores the raw `[N, O, T]`
/// outputs with [`Variance`](baal_heuristics::Variance) (baal's `Variance` heuristic for
/// regression). [`predict`](Predictor::predict) gives those outputs.
pub struct RegressionPredictor<M: StochasticModel, I>(pub ModelPredictor<M, I>);

impl<M, I> Predictor<I> for RegressionPredictor<M, I>
where
    M: StochasticModel<Output = Tensor<2>>,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        self.0.sample(&identity(sampler), items)
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        self.0.sample_chunks(&identity(sampler), items, on_chunk)
    }

    fn predict_pool_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Predictions) -> Result<()>,
    ) -> Result<()> {
        self.predict_chunks(sampler, items, &mut |range, outputs| {
            let chunk = Predictions::from_regression(outputs)
                .map_err(|error| error.offset_item(range.start))?;
            on_chunk(range, chunk)
        })
    }

    fn classifies(&self) -> bool {
        false
    }
}

/// Per-position cross-entropy of segmentation logits `[B, C, P]` against each item's class
/// at each of the `P` positions, averaged over the `B × P` positions: the
/// [`Trainable::training_loss`](crate::Trainable::training_loss) of a segmentation model.
///
/// # Panics
/// If `targets` does not hold `B` masks of `P` classes (check them in
/// [`Trainable::check_target`](crate::Trainable::check_target), which the trainer calls on
/// every label first).
pub fn segmentation_loss(logits: Tensor<3>, targets: &[Vec<usize>]) -> Tensor<1> {
    let [batch, classes, positions] = logits.dims();
    assert!(
        targets.len() == batch && targets.iter().all(|t| t.len() == positions),
        "segmentation_loss: expected {batch} masks of {positions} positions"
    );
    let device = logits.device();
    let rows = logits.swap_dims(1, 2).reshape([batch * positions, classes]);
    let targets: Vec<i64> = targets
        .iter()
        .flat_map(|mask| mask.iter().map(|&class| class as i64))
        .collect();
    let targets =
        Tensor::<1, Int>::from_data(TensorData::new(targets, [batch * positions]), &device);
    CrossEntropyLossConfig::new()
        .init(&device)
        .forward(rows, targets)
}

/// Mean squared error of regression outputs `[B, O]` against each item's `O` values: the
/// [`Trainable::training_loss`](crate::Trainable::training_loss) of a regression model.
///
/// # Panics
/// If `targets` does not hold `B` vectors of `O` values.
pub fn regression_loss(outputs: Tensor<2>, targets: &[Vec<f32>]) -> Tensor<1> {
    let [batch, width] = outputs.dims();
    assert!(
        targets.len() == batch && targets.iter().all(|t| t.len() == width),
        "regression_loss: expected {batch} targets of {width} values"
    );
    let device = outputs.device();
    let targets =
        Tensor::<2>::from_data(TensorData::new(targets.concat(), [batch, width]), &device);
    MseLoss::new()
        .forward(outputs, targets, LossReduction::Mean)
        .reshape([1])
}
