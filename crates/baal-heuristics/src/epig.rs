//! EPIG: expected predictive information gain on a target distribution.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::{HeuristicError, Result};
use crate::ops::{entropy_over_classes, mean_over_iterations, xlogx};
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// EPIG (Bickford Smith, Kirsch, Farquhar, Gal, Foster & Rainforth 2023, "Prediction-Oriented
/// Bayesian Active Learning", AISTATS): how much labelling pool item x would tell about the
/// predictions on target inputs x* drawn from the distribution the model will be used on,
///
/// ```text
/// EPIG(x) = mean_{x*} I(y; y* | x, x*)
///         = H[y] + mean_{x*} H[y*] - mean_{x*} H[y, y*],
/// p(y, y*) = mean_t p_t(y|x) p_t(y*|x*)
/// ```
///
/// from MC predictions on the pool `[N, C, T]` and on the target set `[M, C, T]` (the same
/// MC iterations, so the same T, drawn as consistent samples: iteration `t` of every pool and
/// target item from one network). Higher is more informative. The `[n, C, M, C]` joint
/// probabilities are computed chunk by chunk within the predictions' memory budget.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epig;

impl Epig {
    pub(crate) const NAME: &'static str = "epig";
}

impl Heuristic for Epig {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn orientation(&self) -> Orientation {
        Orientation::HigherIsMoreInformative
    }

    fn needs_target(&self) -> bool {
        true
    }

    /// The joint `p(y, y*) = mean_t p_t(y|x) p_t(y*|x*)` pairs pool and target samples of the
    /// same network.
    fn needs_consistent_samples(&self) -> bool {
        true
    }

    fn score_tensor(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        let target = target.ok_or(HeuristicError::MissingTarget {
            heuristic: Self::NAME,
        })?;
        for p in [predictions, target] {
            p.require_probabilities(Self::NAME)?;
            p.require_no_positions(Self::NAME)?;
        }
        let [_, c, _, t] = predictions.values().dims();
        let [m, c_target, _, t_target] = target.values().dims();
        if (c_target, t_target) != (c, t) {
            return Err(HeuristicError::ShapeMismatch {
                what: "EPIG target predictions",
                expected: format!("[M, {c}, {t}] (the pool's classes and MC iterations)"),
                got: vec![m, c_target, t_target],
            });
        }
        let target_values = target.values().clone();
        let target_entropy = entropy_over_classes(mean_over_iterations(target_values.clone()))
            .mean()
            .reshape([1, 1]);
        // [T, M·C]: the right operand of the joint product.
        let target_t_mc = target_values.reshape([m * c, t]).transpose();
        // Joint probabilities take C·M·C floats per pool item (M·C/T times its C·T inputs),
        // a few times over.
        let temporaries = 3 * (m * c).div_ceil(t) + 1;
        Ok(predictions.score_items(temporaries, |probs| {
            let [n, ..] = probs.dims();
            let pool_entropy =
                entropy_over_classes(mean_over_iterations(probs.clone())).reshape([n, 1]);
            let joint = probs
                .reshape([n * c, t])
                .matmul(target_t_mc.clone())
                .div_scalar(t as f32);
            // Σ_{y,y*} p ln p per (item, target): [n, M], then the mean over targets.
            let neg_joint_entropy = xlogx(joint)
                .reshape([n, c, m, c])
                .sum_dim(3)
                .sum_dim(1)
                .reshape([n, m])
                .mean_dim(1);
            pool_entropy + target_entropy.clone() + neg_joint_entropy
        }))
    }
}
