//! The [`Heuristic`] trait: one entry point for every acquisition function.

use burn::tensor::Tensor;

use crate::error::Result;
use crate::predictions::Predictions;
use crate::ranking::{Orientation, Ranking, Selection};

/// An acquisition function: scores pool items by how informative their labels would be.
///
/// Implementors provide [`Heuristic::score_tensor`]; ranking and selection follow from the
/// orientation. Batch-aware heuristics (BatchBALD, stochastic sampling) override
/// [`Heuristic::rank`] and [`Heuristic::select`].
pub trait Heuristic: Send + Sync {
    /// Short name, as used on the command line (`bald`, `batch-bald`, ...).
    fn name(&self) -> &'static str;

    /// Which end of the scores is informative.
    fn orientation(&self) -> Orientation;

    /// Whether it reads the model's predictions at all (random does not: a caller may skip
    /// the MC sampling and hand it predictions of any content with one row per pool item).
    fn needs_predictions(&self) -> bool {
        true
    }

    /// Whether it needs predictions on a target set (EPIG).
    fn needs_target(&self) -> bool {
        false
    }

    /// Whether it needs *consistent* MC samples: iteration `t` of every pool item (and target
    /// item) drawn from one network `ω_t`. Heuristics with joint terms over several items
    /// (BatchBALD, EPIG) do; per-item scores (BALD, entropy, ...) do not. A caller that
    /// samples the predictions asks the sampler for consistent samples when this is true.
    fn needs_consistent_samples(&self) -> bool {
        false
    }

    /// One score per pool item, `[N]`, left on the predictions' device.
    ///
    /// `target` holds predictions on a target set for heuristics that need one (EPIG);
    /// the others ignore it.
    fn score_tensor(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Tensor<1>>;

    /// One score per pool item, read back to the host, indexed by pool index.
    fn scores(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Vec<f32>> {
        Ok(self
            .score_tensor(predictions, target)?
            .try_into_vec_as::<f32>()?)
    }

    /// The whole pool ordered from the most to the least informative item.
    fn rank(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Ranking> {
        Ranking::from_scores(self.scores(predictions, target)?, self.orientation())
    }

    /// The `k` items to label next, in selection order.
    ///
    /// # Errors
    /// `k` is zero or larger than the pool, or scoring fails.
    fn select(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
        k: usize,
    ) -> Result<Selection> {
        crate::ranking::check_query_size(k, predictions.len())?;
        Selection::from_ranking(&self.rank(predictions, target)?, k)
    }
}

impl<H: Heuristic + ?Sized> Heuristic for Box<H> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn orientation(&self) -> Orientation {
        (**self).orientation()
    }
    fn needs_predictions(&self) -> bool {
        (**self).needs_predictions()
    }
    fn needs_target(&self) -> bool {
        (**self).needs_target()
    }
    fn needs_consistent_samples(&self) -> bool {
        (**self).needs_consistent_samples()
    }
    fn score_tensor(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        (**self).score_tensor(predictions, target)
    }
    fn scores(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Vec<f32>> {
        (**self).scores(predictions, target)
    }
    fn rank(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Ranking> {
        (**self).rank(predictions, target)
    }
    fn select(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
        k: usize,
    ) -> Result<Selection> {
        (**self).select(predictions, target, k)
    }
}
