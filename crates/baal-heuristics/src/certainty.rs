//! Least-confidence sampling.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::Result;
use crate::ops::mean_over_iterations;
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Least confidence (Lewis & Gale 1994, "A Sequential Algorithm for Training Text
/// Classifiers"; Culotta & McCallum 2005): the probability of the most likely class of the
/// MC-averaged prediction,
///
/// ```text
/// Certainty(x) = max_c pbar_c
/// ```
///
/// in `[1/C, 1]`; **lower** is more informative.
#[derive(Clone, Copy, Debug, Default)]
pub struct Certainty;

impl Certainty {
    pub(crate) const NAME: &'static str = "certainty";
}

impl Heuristic for Certainty {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn orientation(&self) -> Orientation {
        Orientation::LowerIsMoreInformative
    }

    fn score_tensor(
        &self,
        predictions: &Predictions,
        _: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        predictions.require_probabilities(Self::NAME)?;
        Ok(predictions.score_items(2, |probs| {
            let [n, _, p, _] = probs.dims();
            mean_over_iterations(probs).max_dim(1).reshape([n, p])
        }))
    }
}
