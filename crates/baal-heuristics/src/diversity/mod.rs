//! Diversity-aware acquisition: batches chosen by the model's own embeddings of the pool.
//!
//! [`CoreSet`] (k-center greedy, Sener & Savarese 2018) covers the pool's embeddings with the
//! labelled items and the picks; [`Badge`] (Ash et al. 2020) seeds k-means++ on gradient
//! embeddings of the last layer, which weighs diversity by the model's uncertainty. Both read
//! their input through [`EmbeddingInput`]: the pool as an [`EmbeddingSource`] read in chunks,
//! once per pick, keeping `O(N)` floats (every item's distance to its nearest centre) plus the
//! picks' embeddings, whatever the pool's size; [`Embeddings`] and [`ClassProbabilities`] are
//! the in-memory sources, read in place.
//!
//! They select through [`Heuristic::select_with_embeddings`](crate::Heuristic::select_with_embeddings)
//! ([`Heuristic::needs_embeddings`](crate::Heuristic::needs_embeddings) is true); their
//! predictions-only entry points (`score_tensor`, `scores`, `rank`, `select`, ...) are errors
//! that say so.
//!
//! ```
//! use baal_heuristics::{CoreSet, EmbeddingInput, Embeddings, Heuristic};
//!
//! # fn main() -> Result<(), baal_heuristics::HeuristicError> {
//! // 1-D points 0, 1, 10, 11 in the pool, one labelled item at 0.
//! let pool = Embeddings::new(vec![0.0, 1.0, 10.0, 11.0], [4, 1])?;
//! let labelled = Embeddings::new(vec![0.0], [1, 1])?;
//! let input = EmbeddingInput::new(&pool).with_labelled(&labelled);
//! let selection = CoreSet::new(0).select_with_embeddings(&input, 2)?;
//! assert_eq!(selection.positions, vec![3, 1]); // 11 (farthest), then 1 (a tie with 10)
//! # Ok(())
//! # }
//! ```

mod badge;
mod coreset;
mod distance;
mod embeddings;
mod source;

pub use badge::Badge;
pub use coreset::CoreSet;
pub use embeddings::{ClassProbabilities, Embeddings};
pub use source::{EmbeddingInput, EmbeddingSource, ProbabilitySource};

use crate::DEFAULT_SCORING_MEMORY_BUDGET;

/// Rows per chunk when none is set: chunks of `bytes_per_row` bytes within the default
/// scoring memory budget.
fn default_chunk_len(bytes_per_row: usize) -> usize {
    (DEFAULT_SCORING_MEMORY_BUDGET / bytes_per_row.max(1)).max(1)
}

/// The unpicked item with the largest `value`, ties to the lowest position; `None` when every
/// item is picked.
fn farthest_unpicked<T: PartialOrd + Copy>(values: &[T], picked: &[bool]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, (&value, &done)) in values.iter().zip(picked).enumerate() {
        if !done && best.is_none_or(|b| value > values[b]) {
            best = Some(i);
        }
    }
    best
}

/// The entry points of [`Heuristic`](crate::Heuristic) that have only predictions, per-item
/// scores or a pool size: errors naming what an embedding heuristic needs (its
/// `needs_embeddings_error`).
macro_rules! embeddings_only {
    () => {
        fn needs_embeddings(&self) -> bool {
            true
        }

        fn score_tensor(
            &self,
            _: &$crate::Predictions,
            _: Option<&$crate::Predictions>,
        ) -> $crate::Result<burn::tensor::Tensor<1>> {
            Err(self.needs_embeddings_error())
        }

        fn scores(
            &self,
            _: &$crate::Predictions,
            _: Option<&$crate::Predictions>,
        ) -> $crate::Result<Vec<f32>> {
            Err(self.needs_embeddings_error())
        }

        fn rank(
            &self,
            _: &$crate::Predictions,
            _: Option<&$crate::Predictions>,
        ) -> $crate::Result<$crate::Ranking> {
            Err(self.needs_embeddings_error())
        }

        fn select(
            &self,
            _: &$crate::Predictions,
            _: Option<&$crate::Predictions>,
            _: usize,
        ) -> $crate::Result<$crate::Selection> {
            Err(self.needs_embeddings_error())
        }

        fn rank_scores(&self, _: Vec<f32>) -> $crate::Result<$crate::Ranking> {
            Err(self.needs_embeddings_error())
        }

        fn select_scores(&self, _: Vec<f32>, _: usize) -> $crate::Result<$crate::Selection> {
            Err(self.needs_embeddings_error())
        }

        fn scores_without_predictions(&self, _: usize) -> $crate::Result<Vec<f32>> {
            Err(self.needs_embeddings_error())
        }

        fn select_without_predictions(
            &self,
            _: usize,
            _: usize,
        ) -> $crate::Result<$crate::Selection> {
            Err(self.needs_embeddings_error())
        }
    };
}
use embeddings_only;
