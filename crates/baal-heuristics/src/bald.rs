//! BALD: Bayesian Active Learning by Disagreement.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::Result;
use crate::kernels;
use crate::ops::{entropy_over_classes, mean_over_iterations, per_position, xlogx};
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// BALD (Houlsby et al. 2011, "Bayesian Active Learning for Classification and Preference
/// Learning"; used with MC dropout by Gal et al. 2017, "Deep Bayesian Active Learning with
/// Image Data"): the mutual information between an item's label and the model parameters,
///
/// ```text
/// BALD(x) = H[ mean_t p_t(y|x) ] - mean_t H[ p_t(y|x) ],   H[p] = -sum_c p_c ln p_c
/// ```
///
/// with 0·ln 0 = 0. It is high where the MC samples are individually confident but disagree.
/// Always in `[0, ln C]`; higher is more informative.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bald;

impl Bald {
    pub(crate) const NAME: &'static str = "bald";

    /// BALD of a chunk `[n, C, P, T]` of probabilities, per position: `[n, P]`.
    pub(crate) fn per_position(probs: Tensor<4>) -> Tensor<2> {
        let t = probs.dims()[3] as f32;
        let entropy_of_mean = entropy_over_classes(mean_over_iterations(probs.clone()));
        let mean_entropy = xlogx(probs).sum_dim(3).sum_dim(1).div_scalar(-t);
        per_position(entropy_of_mean - mean_entropy)
    }
}

impl Heuristic for Bald {
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
        Ok(predictions.score_items(3, Self::per_position))
    }

    fn scores(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Vec<f32>> {
        predictions.require_probabilities(Self::NAME)?;
        predictions.host_or_tensor_scores(kernels::Kernel::Bald, || {
            self.score_tensor(predictions, target)
        })
    }
}
