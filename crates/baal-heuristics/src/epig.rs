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
/// target item from one network). Higher is more informative. The `[n, C, m, C]` joint
/// probabilities are computed in chunks of pool items and of target items within the
/// predictions' memory budget (one pool item and one target at least).
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
        let plan = JointPlan::new(predictions.memory_budget(), m, c, t);
        // [T, m·C] per chunk of targets: the right operands of the joint product.
        let target_chunks: Vec<(usize, Tensor<2>)> = (0..m)
            .step_by(plan.targets_per_chunk)
            .map(|start| {
                let len = plan.targets_per_chunk.min(m - start);
                let chunk = target_values.clone().narrow(0, start, len);
                (len, chunk.reshape([len * c, t]).transpose())
            })
            .collect();
        Ok(predictions.score_items(plan.temporaries, |probs| {
            let [n, ..] = probs.dims();
            let pool_entropy =
                entropy_over_classes(mean_over_iterations(probs.clone())).reshape([n, 1]);
            let pool_nc_t = probs.reshape([n * c, t]);
            // Σ_{x*} Σ_{y,y*} p ln p per pool item, one chunk of targets at a time.
            let neg_joint_entropy = target_chunks
                .iter()
                .map(|(len, target_t_mc)| {
                    let joint = pool_nc_t
                        .clone()
                        .matmul(target_t_mc.clone())
                        .div_scalar(t as f32);
                    xlogx(joint)
                        .reshape([n, c, *len, c])
                        .sum_dim(3)
                        .sum_dim(1)
                        .reshape([n, *len])
                        .sum_dim(1)
                })
                .reduce(|a, b| a + b)
                .expect("at least one target")
                .div_scalar(m as f32);
            pool_entropy + target_entropy.clone() + neg_joint_entropy
        }))
    }
}

/// How EPIG splits the joint `[n, C, m, C]` probabilities to keep within a memory budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct JointPlan {
    /// Target items per chunk.
    targets_per_chunk: usize,
    /// Copies of a pool chunk `[n, C, T]` that the joint and its temporaries take, for
    /// `Predictions::score_items`'s choice of `n`.
    temporaries: usize,
}

impl JointPlan {
    /// The joint takes `C · m · C` floats per pool item, a few (`COPIES`) times over.
    const COPIES: usize = 3;

    fn new(budget: usize, targets: usize, classes: usize, iterations: usize) -> Self {
        let bytes_per_target = Self::COPIES * classes * classes * 4;
        let targets_per_chunk = (budget / bytes_per_target.max(1)).clamp(1, targets.max(1));
        Self {
            targets_per_chunk,
            temporaries: Self::COPIES * (targets_per_chunk * classes).div_ceil(iterations) + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JointPlan;

    /// Bytes of one chunk's joint probabilities and their temporaries for `n` pool items.
    fn joint_bytes(plan: JointPlan, n: usize, classes: usize) -> usize {
        JointPlan::COPIES * n * classes * plan.targets_per_chunk * classes * 4
    }

    #[test]
    fn a_large_target_set_is_split_to_keep_the_budget() {
        let (budget, classes, iterations) = (64 << 20, 10, 20);
        // A million targets: the joint of a single pool item against all of them would take
        // 1.2 GB, which the old code allocated whatever the budget.
        let plan = JointPlan::new(budget, 1_000_000, classes, iterations);
        assert!(plan.targets_per_chunk < 1_000_000);
        assert!(joint_bytes(plan, 1, classes) <= budget);
        // score_items picks n so that `temporaries` pool chunks fit: the joint fits with it.
        let pool_item_bytes = classes * iterations * 4;
        let n = (budget / (pool_item_bytes * plan.temporaries)).max(1);
        assert!(joint_bytes(plan, n, classes) <= budget, "{plan:?} n = {n}");
        // A small target set stays one chunk.
        assert_eq!(
            JointPlan::new(budget, 500, classes, iterations).targets_per_chunk,
            500
        );
        // A budget below one pair still makes progress, one target at a time.
        assert_eq!(
            JointPlan::new(1, 50, classes, iterations).targets_per_chunk,
            1
        );
    }
}
