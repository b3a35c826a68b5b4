//! The [`Heuristic`] trait: one entry point for every acquisition function.

use burn::tensor::Tensor;

use crate::error::{HeuristicError, Result};
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

    /// What makes it rank as it does, serialised: its name and every parameter that changes
    /// its ranking (temperature, seed, BatchBALD's batch and samples, the combined heuristics
    /// and their weights, ...), as a JSON object `{"name": ..., parameters...}`.
    ///
    /// A run saves it, and a resume with a heuristic of another identity is refused: the
    /// name alone does not tell power sampling of BALD from that of entropy, nor one
    /// temperature from another. The default, `{"name": name}`, fits heuristics without
    /// parameters; a heuristic with parameters overrides it.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name() })
    }

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

    /// Whether it selects by the model's embeddings of the pool ([`crate::CoreSet`],
    /// [`crate::Badge`]) rather than by per-item scores of its predictions. Such a heuristic
    /// selects only through [`select_with_embeddings`](Self::select_with_embeddings); its
    /// other entry points (`score_tensor`, `scores`, `rank`, `select`, `rank_scores`,
    /// `select_scores`, `*_without_predictions`) are [`HeuristicError::NeedsEmbeddings`]. It may
    /// still need predictions ([`needs_predictions`](Self::needs_predictions): BADGE reads the
    /// MC-averaged class probabilities, Coreset does not).
    fn needs_embeddings(&self) -> bool {
        false
    }

    /// Whether [`select_with_embeddings`](Self::select_with_embeddings) reads the labelled
    /// items' embeddings ([`crate::CoreSet`]: they are its first centres), so that a caller
    /// embeds the labelled set only for a heuristic that reads it. False by default.
    fn needs_labelled_embeddings(&self) -> bool {
        false
    }

    /// The `k` items to label next from the pool's embeddings (and, as the heuristic needs
    /// them, the labelled items' embeddings or the pool's class probabilities), in selection
    /// order, for heuristics that [`need embeddings`](Self::needs_embeddings).
    ///
    /// # Errors
    /// [`HeuristicError::NoEmbeddingSelection`] for heuristics that score predictions (the
    /// default); for the others, what their input lacks or gets wrong.
    fn select_with_embeddings(
        &self,
        input: &crate::EmbeddingInput<'_>,
        k: usize,
    ) -> Result<Selection> {
        let _ = (input, k);
        Err(HeuristicError::NoEmbeddingSelection {
            heuristic: self.name(),
        })
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
        self.rank_scores(self.scores(predictions, target)?)
    }

    /// The pool ordered from its per-item scores (indexed by pool index), as
    /// [`rank`](Self::rank) orders it once scored: by the orientation, or by a draw for the
    /// sampling heuristics. Pools scored chunk by chunk ([`crate::PoolScorer`]) rank through
    /// it. Joint heuristics ([`joint_batch`](Self::joint_batch)) rank by their per-item score.
    ///
    /// # Errors
    /// A non-finite score.
    fn rank_scores(&self, scores: Vec<f32>) -> Result<Ranking> {
        Ranking::from_scores(scores, self.orientation())
    }

    /// The `k` items to label next from per-item scores (see
    /// [`rank_scores`](Self::rank_scores)), with `scores` kept as the selection's pool scores.
    ///
    /// # Errors
    /// `k` is zero or larger than the pool, or a non-finite score.
    fn select_scores(&self, scores: Vec<f32>, k: usize) -> Result<Selection> {
        crate::ranking::check_query_size(k, scores.len())?;
        let mut selection = Selection::from_ranking(&self.rank_scores(scores.clone())?, k)?;
        selection.pool_scores = scores;
        Ok(selection)
    }

    /// The batch size of a heuristic whose picks depend on each other (BatchBALD: `Some` of
    /// its query size); `None` for heuristics whose ranking follows from per-item scores.
    /// Scoring a pool chunk by chunk keeps the predictions of a bounded candidate set for
    /// the joint ones ([`crate::PoolScorer`]).
    fn joint_batch(&self) -> Option<usize> {
        None
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
        self.select_scores(self.scores(predictions, target)?, k)
    }

    /// One score per item of a pool of `pool_len` items, for heuristics that do not read
    /// predictions ([`needs_predictions`](Self::needs_predictions) is false: random,
    /// precomputed scores).
    ///
    /// # Errors
    /// [`HeuristicError::NeedsPredictions`] for every heuristic that reads them (the
    /// default), or a pool size the heuristic cannot score.
    fn scores_without_predictions(&self, pool_len: usize) -> Result<Vec<f32>> {
        let _ = pool_len;
        Err(HeuristicError::NeedsPredictions {
            heuristic: self.name(),
        })
    }

    /// The `k` items to label next from a pool of `pool_len` items without the model's
    /// predictions, for heuristics that do not read them: a caller skips the MC sampling
    /// instead of handing over a placeholder tensor.
    ///
    /// # Errors
    /// As [`scores_without_predictions`](Self::scores_without_predictions), or `k` is zero or
    /// larger than the pool.
    fn select_without_predictions(&self, pool_len: usize, k: usize) -> Result<Selection> {
        crate::ranking::check_query_size(k, pool_len)?;
        self.select_scores(self.scores_without_predictions(pool_len)?, k)
    }

    /// How many times it has drawn from its random generator: `0` for deterministic
    /// heuristics. Part of a run's state: [`set_draws`](Self::set_draws) on a heuristic
    /// rebuilt with the same seed makes a resumed run draw what the original run would have.
    fn draws(&self) -> u64 {
        0
    }

    /// Restores the draw counter saved from [`draws`](Self::draws); nothing for deterministic
    /// heuristics.
    fn set_draws(&self, draws: u64) {
        let _ = draws;
    }
}

impl<H: Heuristic + ?Sized> Heuristic for Box<H> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn identity(&self) -> serde_json::Value {
        (**self).identity()
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
    fn needs_embeddings(&self) -> bool {
        (**self).needs_embeddings()
    }
    fn needs_labelled_embeddings(&self) -> bool {
        (**self).needs_labelled_embeddings()
    }
    fn select_with_embeddings(
        &self,
        input: &crate::EmbeddingInput<'_>,
        k: usize,
    ) -> Result<Selection> {
        (**self).select_with_embeddings(input, k)
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
    fn rank_scores(&self, scores: Vec<f32>) -> Result<Ranking> {
        (**self).rank_scores(scores)
    }
    fn select_scores(&self, scores: Vec<f32>, k: usize) -> Result<Selection> {
        (**self).select_scores(scores, k)
    }
    fn joint_batch(&self) -> Option<usize> {
        (**self).joint_batch()
    }
    fn scores_without_predictions(&self, pool_len: usize) -> Result<Vec<f32>> {
        (**self).scores_without_predictions(pool_len)
    }
    fn select_without_predictions(&self, pool_len: usize, k: usize) -> Result<Selection> {
        (**self).select_without_predictions(pool_len, k)
    }
    fn draws(&self) -> u64 {
        (**self).draws()
    }
    fn set_draws(&self, draws: u64) {
        (**self).set_draws(draws)
    }
}
