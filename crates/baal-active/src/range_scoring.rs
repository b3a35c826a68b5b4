//! Scoring of a contiguous range of a pool, its MC masks keyed by the items' dataset indices:
//! what one shard of a sharded pool computes (the shard files, their manifest and the merge
//! are the tool's, in the facade's `baal::shard`).

use std::ops::Range;

use baal_bayesian::McSampler;
use baal_heuristics::{Heuristic, PoolScores};
use burn::data::dataset::Dataset;

use crate::active_loop::score_pool;
use crate::error::{ActiveError, Result};
use crate::traits::Predictor;

/// Scores the items `range` of `pool` (whose item `i` has dataset index `dataset_indices[i]`)
/// with `predictor` under `sampler`, streamed through a
/// [`PoolScorer`](baal_heuristics::PoolScorer) for `heuristic`, which keeps at most
/// `candidates` candidates when it selects jointly (`None`: its default).
///
/// Each item's MC masks are keyed by its dataset index
/// ([`McSampler::with_item_keys`]), so its scores do not depend on the range it falls in:
/// scoring the ranges of a split pool and concatenating them
/// ([`PoolScores::concat`]) gives the scores of the whole pool. Heuristics that need no
/// predictions (random) get a zero score per item and no MC pass.
///
/// The scores' pool positions are relative to `range.start` (position 0 is pool item
/// `range.start`); a heuristic error names the item by its position in the whole `pool`.
///
/// # Errors
/// A pool and index list of different lengths, a range past the end of the pool, a heuristic
/// that needs target predictions (none is taken here), or a prediction or scoring error.
pub fn score_pool_range<I>(
    predictor: &dyn Predictor<I>,
    sampler: &McSampler,
    pool: &dyn Dataset<I>,
    dataset_indices: &[usize],
    range: Range<usize>,
    heuristic: &dyn Heuristic,
    candidates: Option<usize>,
) -> Result<PoolScores> {
    if pool.len() != dataset_indices.len() {
        return Err(ActiveError::ShapeMismatch {
            what: "dataset indices of the pool",
            expected: format!("one per pool item ({})", pool.len()),
            got: vec![dataset_indices.len()],
        });
    }
    if range.start > range.end || range.end > pool.len() {
        return Err(ActiveError::InvalidConfig {
            what: "pool range",
            reason: format!(
                "{range:?} is not a range of pool positions of a pool of {}",
                pool.len()
            ),
        });
    }
    if !heuristic.needs_predictions() {
        return Ok(PoolScores::new(
            vec![0.0; range.len()],
            None,
            0,
            heuristic.orientation(),
        )?);
    }
    let keys = dataset_indices[range.clone()].to_vec();
    let keyed = sampler.clone().with_item_keys(Some(keys.into()));
    let part = Part {
        pool,
        range: range.clone(),
    };
    score_pool(predictor, &keyed, &part, heuristic, None, candidates).map_err(|error| match error {
        ActiveError::Heuristic(e) => ActiveError::Heuristic(e.offset_item(range.start)),
        other => other,
    })
}

/// The items `range` of a pool, as a dataset.
struct Part<'a, I> {
    pool: &'a dyn Dataset<I>,
    range: Range<usize>,
}

impl<I> Dataset<I> for Part<'_, I> {
    fn get(&self, index: usize) -> std::result::Result<I, burn::data::dataset::DatasetError> {
        self.pool.get(self.range.start + index)
    }

    fn len(&self) -> usize {
        self.range.len()
    }
}
