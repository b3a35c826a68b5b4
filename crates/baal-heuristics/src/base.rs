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
