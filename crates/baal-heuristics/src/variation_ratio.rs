//! Variation ratio: disagreement among the MC samples' votes.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::Result;
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Variation ratio (Freeman 1965; one of the acquisition functions of Gal, Islam & Ghahramani
/// 2017, "Deep Bayesian Active Learning with Image Data"): the share of MC samples that do
/// not vote for the modal class,
///
/// ```text
/// VR(x) = 1 - f_m / T,   f_m = #{t : argmax_c p_t(c | x) = the modal class}
/// ```
///
/// in `[0, 1 - 1/C]`; higher is more informative. It reads only each sample's vote, not how
/// sure the sample is. Classes tied for a sample's maximum each get its vote.
#[derive(Clone, Copy, Debug, Default)]
pub struct VariationRatio;

impl VariationRatio {
    pub(crate) const NAME: &'static str = "variation-ratio";
}

impl Heuristic for VariationRatio {
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
        Ok(predictions.score_items(3, |probs| {
            let [n, c, p, t] = probs.dims();
            let best = probs.clone().max_dim(1).repeat_dim(1, c);
            // [n, C, p]: how many samples vote for each class.
            let votes = probs.greater_equal(best).float().sum_dim(3);
            let modal = votes.max_dim(1).reshape([n, p]);
            modal.mul_scalar(-1.0 / t as f64).add_scalar(1.0)
        }))
    }
}
