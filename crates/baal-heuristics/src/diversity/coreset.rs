//! Coreset: k-center greedy selection on the model's embeddings.

use rand::Rng;
use rayon::prelude::*;

use crate::base::Heuristic;
use crate::draws::DrawCounter;
use crate::error::{HeuristicError, Result};
use crate::ranking::{Orientation, Selection, check_query_size};

use super::distance::squared_distance;
use super::source::{EmbeddingInput, EmbeddingSource, chunk_ranges, embedding_row, embedding_rows};
use super::{default_chunk_len, embeddings_only, farthest_unpicked};

/// Rows a rayon task takes at least: a few rows of `D = 128` are too little work to split.
const MIN_ROWS_PER_TASK: usize = 64;

/// Coreset (Sener & Savarese 2018, "Active Learning for Convolutional Neural Networks: A
/// Core-Set Approach"): k-center greedy on the model's embeddings. The labelled items are the
/// first centres; each pick is the pool item farthest from its nearest centre,
///
/// ```text
/// a_n = argmax_{i unpicked}  min_{c ∈ labelled ∪ {a_1..a_{n-1}}}  ‖h_i - h_c‖₂
/// ```
///
/// with Euclidean distances between embeddings `h` (compared squared, in `f32`). Ties go to
/// the lowest position. Without labelled items (none given, or an empty set) the first centre
/// is a pool item drawn uniformly from ChaCha8 stream `n` of the seed at the `n`-th selection
/// (as [`crate::Random`] draws), so it is the same for a seed and resumes with
/// [`Heuristic::set_draws`]; with labelled items the selection draws nothing and the seed
/// does not matter.
///
/// [`Heuristic::select_with_embeddings`] returns the picks in selection order, each with its
/// distance to its nearest centre when picked (`f32::INFINITY` for a drawn first centre: there
/// is no centre yet), and as `pool_scores` every pool item's distance to its nearest centre
/// once the batch is chosen (0 for the picks; their maximum is the covering radius the batch
/// reached).
///
/// Streaming: the pool is read in chunks of [`chunk_len`](Self::with_chunk_len) rows, once
/// for the labelled set (each pool chunk against every labelled chunk) and once after each
/// pick (`k + 1` passes with labelled items, `k` without), keeping `N` floats (each item's
/// squared distance to its nearest centre) and `N` flags besides the current chunk. The cost is
/// `O((L + k) · N · D)` for `L` labelled items.
#[derive(Clone, Debug)]
pub struct CoreSet {
    /// Draws the first centre when there is no labelled item.
    draws: DrawCounter,
    chunk_len: Option<usize>,
}

impl CoreSet {
    pub(crate) const NAME: &'static str = "coreset";

    /// Coreset whose first centre, when there is no labelled item, derives from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            draws: DrawCounter::new(seed),
            chunk_len: None,
        }
    }

    /// Reads the pool in chunks of `rows` rows (at least 1); by default, as many rows as fit
    /// the default scoring memory budget (64 MiB: 131072 rows of `D = 128`). The selection
    /// is the same for every chunk length.
    #[must_use]
    pub fn with_chunk_len(mut self, rows: usize) -> Self {
        self.chunk_len = Some(rows.max(1));
        self
    }

    /// The seed given at construction.
    pub fn seed(&self) -> u64 {
        self.draws.seed()
    }

    fn needs_embeddings_error(&self) -> HeuristicError {
        HeuristicError::NeedsEmbeddings {
            heuristic: Self::NAME,
            inputs: "the pool's embeddings (and the labelled items', if any)",
        }
    }

    /// Selects `k` items by k-center greedy (see the type's documentation).
    fn select_centres(
        &self,
        pool: &dyn EmbeddingSource,
        labelled: Option<&dyn EmbeddingSource>,
        k: usize,
    ) -> Result<Selection> {
        check_query_size(k, pool.len())?;
        let (n, d) = (pool.len(), pool.dim());
        if let Some(labelled) = labelled.filter(|l| l.dim() != d) {
            return Err(HeuristicError::ShapeMismatch {
                what: "labelled embeddings",
                expected: format!("[L, {d}]: the pool's dimension"),
                got: vec![labelled.len(), labelled.dim()],
            });
        }
        let chunk_len = self.chunk_len.unwrap_or_else(|| default_chunk_len(d * 4));
        // Squared distance of every pool item to its nearest centre.
        let mut nearest = vec![f32::INFINITY; n];
        let mut picked = vec![false; n];
        let mut next = match labelled.filter(|l| !l.is_empty()) {
            Some(labelled) => {
                nearest_labelled(pool, labelled, &mut nearest, chunk_len)?;
                farthest_unpicked(&nearest, &picked)
            }
            None => Some(self.draws.next_rng().random_range(0..n)),
        };
        let mut positions = Vec::with_capacity(k);
        let mut scores = Vec::with_capacity(k);
        while positions.len() < k {
            let pick = next.expect("k ≤ N leaves an unpicked item");
            positions.push(pick);
            scores.push(nearest[pick].sqrt());
            picked[pick] = true;
            let centre = embedding_row(pool, pick)?;
            for (start, end) in chunk_ranges(n, chunk_len) {
                let rows = embedding_rows(pool, start, end)?;
                update_nearest(&mut nearest[start..end], &rows, &centre, d);
            }
            next = farthest_unpicked(&nearest, &picked);
        }
        Ok(Selection {
            positions,
            scores,
            pool_scores: nearest.iter().map(|s| s.sqrt()).collect(),
        })
    }
}

/// Sets `nearest` to every pool item's squared distance to its nearest labelled item: one pass
/// over the pool, each chunk against every chunk of the labelled set.
fn nearest_labelled(
    pool: &dyn EmbeddingSource,
    labelled: &dyn EmbeddingSource,
    nearest: &mut [f32],
    chunk_len: usize,
) -> Result<()> {
    let d = pool.dim();
    for (start, end) in chunk_ranges(pool.len(), chunk_len) {
        let rows = embedding_rows(pool, start, end)?;
        for (first, last) in chunk_ranges(labelled.len(), chunk_len) {
            let centres = embedding_rows(labelled, first, last)?;
            update_nearest(&mut nearest[start..end], &rows, &centres, d);
        }
    }
    Ok(())
}

/// Lowers each `nearest[i]` to the squared distance between row `i` of `rows` and the closest
/// of `centres` (both row-major in `d` dimensions), in parallel over rows.
fn update_nearest(nearest: &mut [f32], rows: &[f32], centres: &[f32], d: usize) {
    nearest
        .par_iter_mut()
        .zip(rows.par_chunks(d))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(nearest, row)| {
            for centre in centres.chunks_exact(d) {
                let distance = squared_distance(row, centre);
                if distance < *nearest {
                    *nearest = distance;
                }
            }
        });
}

impl Heuristic for CoreSet {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Its name and seed (the seed draws the first centre when nothing is labelled).
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({ "name": Self::NAME, "seed": self.seed() })
    }

    /// The farther from the centres, the more informative.
    fn orientation(&self) -> Orientation {
        Orientation::HigherIsMoreInformative
    }

    /// It reads embeddings, not predictions.
    fn needs_predictions(&self) -> bool {
        false
    }

    /// The labelled items are its first centres.
    fn needs_labelled_embeddings(&self) -> bool {
        true
    }

    embeddings_only!();

    /// k-center greedy over `input.pool()`, with `input.labelled()` as the first centres
    /// (class probabilities, if given, are not read).
    ///
    /// # Errors
    /// `k` is zero or larger than the pool, labelled embeddings of another dimension than the
    /// pool's, or a chunk that cannot be read or has the wrong shape.
    fn select_with_embeddings(&self, input: &EmbeddingInput<'_>, k: usize) -> Result<Selection> {
        self.select_centres(input.pool(), input.labelled(), k)
    }

    fn draws(&self) -> u64 {
        self.draws.get()
    }

    fn set_draws(&self, draws: u64) {
        self.draws.set(draws);
    }
}
