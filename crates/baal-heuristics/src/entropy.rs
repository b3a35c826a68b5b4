//! Predictive entropy.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::Result;
use crate::kernels;
use crate::ops::{entropy_over_classes, mean_over_iterations, per_position};
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Predictive entropy (Shannon 1948; as an acquisition function, e.g. Settles 2009,
/// "Active Learning Literature Survey"): the entropy of the MC-averaged prediction,
///
/// ```text
/// Entropy(x) = H[ mean_t p_t(y|x) ] = -sum_c pbar_c ln pbar_c
/// ```
///
/// in `[0, ln C]`, `ln C` for a uniform prediction; higher is more informative.
#[derive(Clone, Copy, Debug, Default)]
pub struct Entropy;

impl Entropy {
    pub(crate) const NAME: &'static str = "entropy";
}

impl Heuristic for Entropy {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn orientation(&self) -> Orientation {
        Orientation::HigherIsMoreInformative
    }

    fn score_tensor(
        &self,
        predictions: &Predictions,
        _: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        predictions.require_probabilities(Self::NAME)?;
        Ok(predictions.score_items(2, |probs| {
            per_position(entropy_over_classes(mean_over_iterations(probs)))
        }))
    }

    fn scores(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Vec<f32>> {
        predictions.require_probabilities(Self::NAME)?;
        predictions.host_or_tensor_scores(kernels::Kernel::Entropy, || {
            self.score_tensor(predictions, target)
        })
    }
}
