//! Margin sampling.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::{HeuristicError, Result};
use crate::ops::mean_over_iterations;
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Margin sampling (Scheffer et al. 2001, "Active Hidden Markov Models for Information
/// Extraction"): the gap between the two most probable classes of the MC-averaged prediction,
///
/// ```text
/// Margin(x) = pbar_(1) - pbar_(2)
/// ```
///
/// in `[0, 1]`; **lower** is more informative (the model hesitates between two classes).
#[derive(Clone, Copy, Debug, Default)]
pub struct Margin;

impl Margin {
    pub(crate) const NAME: &'static str = "margin";
}

impl Heuristic for Margin {
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
        if predictions.n_classes() < 2 {
            return Err(HeuristicError::ShapeMismatch {
                what: "margin predictions",
                expected: "at least 2 classes".into(),
                got: vec![predictions.len(), predictions.n_classes()],
            });
        }
        Ok(predictions.score_items(2, |probs| {
            let [n, _, p, _] = probs.dims();
            let top2 = mean_over_iterations(probs).topk(2, 1);
            let margin = top2.clone().narrow(1, 0, 1) - top2.narrow(1, 1, 1);
            margin.reshape([n, p])
        }))
    }
}
