//! Weighted combination of heuristics.

use burn::tensor::Tensor;

use crate::base::Heuristic;
use crate::error::{HeuristicError, Result};
use crate::predictions::Predictions;
use crate::ranking::{Orientation, Ranking};
use crate::reduction::Reduction;

/// Combines heuristics of the same orientation: each heuristic's scores are multiplied by its
/// weight (weights are normalised to sum to one) and the weighted scores are folded by a
/// [`Reduction`] over heuristics (default [`Reduction::Mean`], as baal's `CombineHeuristics`).
///
/// Either all heuristics score the same predictions ([`Heuristic::rank`]), or each scores its
/// own model output ([`CombineHeuristics::rank_outputs`]), e.g. class and box predictions of
/// a detector.
pub struct CombineHeuristics {
    heuristics: Vec<Box<dyn Heuristic>>,
    weights: Vec<f32>,
    reduction: Reduction,
    orientation: Orientation,
}

impl std::fmt::Debug for CombineHeuristics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CombineHeuristics")
            .field(
                "heuristics",
                &self.heuristics.iter().map(|h| h.name()).collect::<Vec<_>>(),
            )
            .field("weights", &self.weights)
            .field("reduction", &self.reduction)
            .finish()
    }
}

impl CombineHeuristics {
    pub(crate) const NAME: &'static str = "combine";

    /// Combines `heuristics` with `weights` (one each, non-negative, not all zero).
    ///
    /// # Errors
    /// No heuristics, a weight count that differs, a negative or non-finite weight, weights
    /// summing to zero, or heuristics of different orientations.
    pub fn new(heuristics: Vec<Box<dyn Heuristic>>, weights: Vec<f32>) -> Result<Self> {
        let invalid = |reason: String| HeuristicError::InvalidParameter {
            name: "weights",
            reason,
        };
        let Some(first) = heuristics.first() else {
            return Err(HeuristicError::InvalidParameter {
                name: "heuristics",
                reason: "no heuristic to combine".into(),
            });
        };
        if weights.len() != heuristics.len() {
            return Err(invalid(format!(
                "{} weights for {} heuristics",
                weights.len(),
                heuristics.len()
            )));
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(invalid(format!("{w} is not a finite non-negative weight")));
        }
        let total: f32 = weights.iter().sum();
        if total <= 0.0 {
            return Err(invalid("weights sum to zero".into()));
        }
        let orientation = first.orientation();
        if let Some(h) = heuristics.iter().find(|h| h.orientation() != orientation) {
            return Err(HeuristicError::InvalidParameter {
                name: "heuristics",
                reason: format!(
                    "{} ranks in the other direction than {}; combine heuristics of one orientation",
                    h.name(),
                    first.name()
                ),
            });
        }
        Ok(Self {
            heuristics,
            weights: weights.iter().map(|w| w / total).collect(),
            reduction: Reduction::Mean,
            orientation,
        })
    }

    /// Folds the weighted scores with `reduction` instead of the mean.
    ///
    /// # Errors
    /// [`Reduction::None`], which cannot fold several heuristics into one score.
    pub fn with_reduction(mut self, reduction: Reduction) -> Result<Self> {
        if reduction == Reduction::None {
            return Err(HeuristicError::InvalidParameter {
                name: "reduction",
                reason: "choose Mean, Sum or Max to fold the heuristics' scores".into(),
            });
        }
        self.reduction = reduction;
        Ok(self)
    }

    /// The normalised weights.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Scores each model output with its own heuristic (in order) and combines them: `[N]`.
    ///
    /// # Errors
    /// A number of outputs that differs from the number of heuristics, outputs with different
    /// pool sizes, or any heuristic's error.
    pub fn score_outputs(&self, outputs: &[&Predictions]) -> Result<Tensor<1>> {
        if outputs.len() != self.heuristics.len() {
            return Err(HeuristicError::InvalidParameter {
                name: "outputs",
                reason: format!(
                    "{} outputs for {} heuristics",
                    outputs.len(),
                    self.heuristics.len()
                ),
            });
        }
        let n = outputs[0].len();
        if let Some(other) = outputs.iter().find(|o| o.len() != n) {
            return Err(HeuristicError::ShapeMismatch {
                what: "combined outputs",
                expected: format!("{n} pool items in every output"),
                got: vec![other.len()],
            });
        }
        self.fold(n, |i, h| h.score_tensor(outputs[i], None))
    }

    /// Weights the `[n]` scores of each heuristic (`score(i, heuristic i)`) and folds them.
    fn fold(
        &self,
        n: usize,
        score: impl Fn(usize, &dyn Heuristic) -> Result<Tensor<1>>,
    ) -> Result<Tensor<1>> {
        let weighted = self
            .heuristics
            .iter()
            .zip(&self.weights)
            .enumerate()
            .map(|(i, (h, &w))| Ok(score(i, h.as_ref())?.mul_scalar(w).reshape([n, 1])))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.reduction.apply(Tensor::cat(weighted, 1)))
    }

    /// Ranks the pool from one prediction per heuristic (see [`Self::score_outputs`]).
    pub fn rank_outputs(&self, outputs: &[&Predictions]) -> Result<Ranking> {
        Ranking::from_scores(
            self.score_outputs(outputs)?.try_into_vec_as::<f32>()?,
            self.orientation,
        )
    }
}

impl Heuristic for CombineHeuristics {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Its name, the identities of its heuristics in order, their normalised weights and the
    /// reduction that folds them.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "name": Self::NAME,
            "heuristics": self.heuristics.iter().map(|h| h.identity()).collect::<Vec<_>>(),
            "weights": self.weights,
            "reduction": format!("{:?}", self.reduction).to_lowercase(),
        })
    }

    fn orientation(&self) -> Orientation {
        self.orientation
    }

    fn needs_predictions(&self) -> bool {
        self.heuristics.iter().any(|h| h.needs_predictions())
    }

    fn needs_target(&self) -> bool {
        self.heuristics.iter().any(|h| h.needs_target())
    }

    fn needs_consistent_samples(&self) -> bool {
        self.heuristics.iter().any(|h| h.needs_consistent_samples())
    }

    /// The largest draw counter of its heuristics (each draws once per scoring).
    fn draws(&self) -> u64 {
        self.heuristics.iter().map(|h| h.draws()).max().unwrap_or(0)
    }

    fn set_draws(&self, draws: u64) {
        for heuristic in &self.heuristics {
            heuristic.set_draws(draws);
        }
    }

    /// Every heuristic scores `predictions` (with `target`, for those that need one).
    fn score_tensor(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        self.fold(predictions.len(), |_, h| {
            h.score_tensor(predictions, target)
        })
    }
}
