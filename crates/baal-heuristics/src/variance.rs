//! Variance of the MC samples.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::Result;
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Variance over MC iterations (e.g. Gal et al. 2017's "Mean STD" family; for regression,
/// the epistemic variance of MC dropout), averaged over classes or outputs:
///
/// ```text
/// Variance(x) = mean_c var_t p_t(c|x),   var_t z = mean_t (z_t - mean_t z)^2
/// ```
///
/// (population variance, as numpy's default). Works on probabilities and on regression
/// outputs; higher is more informative.
#[derive(Clone, Copy, Debug, Default)]
pub struct Variance;

impl Variance {
    pub(crate) const NAME: &'static str = "variance";
}

impl Heuristic for Variance {
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
        Ok(predictions.score_items(3, |values| {
            let [n, _, p, _] = values.dims();
            values.var_bias(3).mean_dim(1).reshape([n, p])
        }))
    }
}
