//! BADGE: k-means++ seeding on gradient embeddings of the last layer.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::base::Heuristic;
use crate::draws::DrawCounter;
use crate::error::{HeuristicError, Result};
use crate::ranking::{Orientation, Selection, check_query_size};

use super::default_chunk_len;
use super::distance::dot;
use super::embeddings::{ClassProbabilities, Embeddings};
use super::embeddings_only;
use super::farthest_unpicked;
use super::source::{
    EmbeddingInput, EmbeddingSource, ProbabilitySource, chunk_ranges, embedding_row,
    embedding_rows, probability_rows,
};

/// Rows a rayon task takes at least.
const MIN_ROWS_PER_TASK: usize = 64;

/// BADGE (Ash, Zhang, Krishnamurthy, Langford & Agarwal 2020, "Deep Batch Active Learning by
/// Diverse, Uncertain Gradient Lower Bounds"): k-means++ seeding on the gradient embeddings of
/// the last linear layer.
///
/// For an item with class probabilities `p` (the MC-averaged prediction) and last-layer input
/// `h` (`D` features), the gradient of the cross-entropy at the predicted label
/// `ŷ = argmax_c p_c` (ties to the lowest class) with respect to the last layer's weights is
///
/// ```text
/// g = (p - onehot(ŷ)) ⊗ h,   g[c·D + d] = (p_c - [c = ŷ]) · h_d        (C·D values)
/// ```
///
/// (the reference code uses `-g`; distances and norms are the same). The bias is left out by
/// default, as in the reference; [`with_bias`](Self::with_bias) appends a constant-1 feature
/// to `h`, which adds the bias gradient `p - onehot(ŷ)` (`C·(D + 1)` values).
///
/// The first pick is the item of largest `‖g‖` (as the reference code does; ties to the lowest
/// position); each next pick is drawn with probability `∝ D(x)²`, the squared distance from
/// `g_x` to the nearest pick, from a ChaCha8 generator (stream `n` of the seed at the `n`-th
/// selection). An item is never picked twice: picks are out of the draw, and when every
/// unpicked item has `D² = 0` (duplicates of picks, or zero gradients) the pick is the
/// lowest-position unpicked item.
///
/// [`Heuristic::select_with_embeddings`] returns the picks in selection order, each with its
/// distance `D` when picked (`‖g‖` for the first), and as `pool_scores` every item's `‖g‖`.
///
/// Streaming: `g` is never built. With `a = p - onehot(ŷ)`,
/// `‖g_i - g_j‖² = ‖a_i‖²‖h_i‖² + ‖a_j‖²‖h_j‖² - 2 (a_i·a_j)(h_i·h_j)`, so a distance costs
/// `O(C + D)` instead of `O(C·D)`. The features and probabilities are read in chunks of
/// [`chunk_len`](Self::with_chunk_len) rows, `k` passes in all (the norms, then one after each
/// pick but the last), keeping `2N` doubles (`‖g‖²`, `D²`), `N` predicted classes and `N`
/// flags besides the current chunk: `O(k · N · (C + D))` time.
#[derive(Clone, Debug)]
pub struct Badge {
    /// Selection `n` draws from stream `n` of the seed.
    draws: DrawCounter,
    bias: bool,
    chunk_len: Option<usize>,
}

/// What the first pass keeps of every item: `‖g‖²` and the predicted class `ŷ` (which each
/// later pass would otherwise recompute from `p`, at about the cost of the rest of a distance).
struct PoolNorms {
    squared: Vec<f64>,
    classes: Vec<u32>,
}

/// A pick's factors: its residual `a = p - onehot(ŷ)` and features `h`.
struct Pick {
    residual: Vec<f32>,
    features: Vec<f32>,
    squared_norm: f64,
}

impl Badge {
    pub(crate) const NAME: &'static str = "badge";

    /// BADGE without the bias gradient, drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            draws: DrawCounter::new(seed),
            bias: false,
            chunk_len: None,
        }
    }

    /// With the last layer's bias gradient: `h` gets a constant-1 feature.
    #[must_use]
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Reads the pool in chunks of `rows` rows (at least 1); by default, as many as fit the
    /// default scoring memory budget. The selection is the same for every chunk length.
    #[must_use]
    pub fn with_chunk_len(mut self, rows: usize) -> Self {
        self.chunk_len = Some(rows.max(1));
        self
    }

    /// The seed given at construction.
    pub fn seed(&self) -> u64 {
        self.draws.seed()
    }

    /// Whether the bias gradient is included.
    pub fn bias(&self) -> bool {
        self.bias
    }

    /// The gradient embeddings `[N, C·D]` (`[N, C·(D + 1)]` with the bias), class-major as in
    /// the type's documentation: `N · C · D` floats, for inspection of small pools (the
    /// selection never builds them).
    ///
    /// # Errors
    /// Features and probabilities with different numbers of rows.
    pub fn gradient_embeddings(
        &self,
        features: &Embeddings,
        probabilities: &ClassProbabilities,
    ) -> Result<Embeddings> {
        check_rows(features.len(), probabilities)?;
        let width = features.dim() + usize::from(self.bias);
        let classes = probabilities.classes();
        let mut values = Vec::with_capacity(features.len() * classes * width);
        for item in 0..features.len() {
            let residual = residual(probabilities.row(item));
            let h = features.row(item);
            for a in residual {
                values.extend(h.iter().map(|x| a * x));
                if self.bias {
                    values.push(a);
                }
            }
        }
        Embeddings::new(values, [features.len(), classes * width])
    }

    fn needs_embeddings_error(&self) -> HeuristicError {
        HeuristicError::NeedsEmbeddings {
            heuristic: Self::NAME,
            inputs: "the pool's last-layer inputs and class probabilities \
                     (`EmbeddingInput::with_probabilities`)",
        }
    }

    /// `‖h‖²`, with the constant-1 feature when the bias is included.
    fn feature_norm(&self, h: &[f32]) -> f32 {
        self.feature_dot(h, h)
    }

    /// `h_i · h_j`, with the constant-1 feature when the bias is included.
    fn feature_dot(&self, a: &[f32], b: &[f32]) -> f32 {
        dot(a, b) + if self.bias { 1.0 } else { 0.0 }
    }

    fn chunk_len(&self, features: &dyn EmbeddingSource, classes: usize) -> usize {
        self.chunk_len
            .unwrap_or_else(|| default_chunk_len((features.dim() + classes) * 4))
    }

    /// Selects `k` items by k-means++ seeding (see the type's documentation).
    fn seed_centres(
        &self,
        features: &dyn EmbeddingSource,
        probabilities: &dyn ProbabilitySource,
        k: usize,
    ) -> Result<Selection> {
        check_query_size(k, features.len())?;
        if probabilities.len() != features.len() {
            return Err(rows_mismatch(features.len(), probabilities));
        }
        let n = features.len();
        let chunk_len = self.chunk_len(features, probabilities.classes());
        let norms = self.squared_norms(features, probabilities, chunk_len)?;
        let squared_norms = &norms.squared;
        let mut nearest = vec![f64::INFINITY; n];
        let mut picked = vec![false; n];
        let mut rng = self.draws.next_rng();
        let mut positions = Vec::with_capacity(k);
        let mut scores = Vec::with_capacity(k);
        let mut pick = farthest_unpicked(squared_norms, &picked).expect("N ≥ k ≥ 1");
        scores.push(squared_norms[pick].sqrt() as f32);
        loop {
            positions.push(pick);
            picked[pick] = true;
            if positions.len() == k {
                break;
            }
            let centre = self.pick(features, probabilities, pick, squared_norms[pick])?;
            self.update_nearest(
                features,
                probabilities,
                &centre,
                &norms,
                &mut nearest,
                chunk_len,
            )?;
            pick = draw_by_squared_distance(&nearest, &picked, &mut rng);
            scores.push(nearest[pick].sqrt() as f32);
        }
        Ok(Selection {
            positions,
            scores,
            pool_scores: squared_norms.iter().map(|&s| s.sqrt() as f32).collect(),
        })
    }

    /// `‖g_i‖² = ‖a_i‖² ‖h_i‖²` and `ŷ_i` of every item: one pass.
    fn squared_norms(
        &self,
        features: &dyn EmbeddingSource,
        probabilities: &dyn ProbabilitySource,
        chunk_len: usize,
    ) -> Result<PoolNorms> {
        let (d, c) = (features.dim(), probabilities.classes());
        let mut squared = vec![0.0f64; features.len()];
        let mut classes = vec![0u32; features.len()];
        for (start, end) in chunk_ranges(features.len(), chunk_len) {
            let h = embedding_rows(features, start, end)?;
            let p = probability_rows(probabilities, start, end)?;
            squared[start..end]
                .par_iter_mut()
                .zip(classes[start..end].par_iter_mut())
                .zip(h.par_chunks(d).zip(p.par_chunks(c)))
                .with_min_len(MIN_ROWS_PER_TASK)
                .for_each(|((norm, class), (h, p))| {
                    let predicted = predicted_class(p);
                    *class = predicted as u32;
                    // ‖a‖² ≥ 0; rounding may leave a near-one-hot item a hair below.
                    let a_norm = residual_dot(p, predicted, &residual(p)).max(0.0);
                    *norm = f64::from(a_norm) * f64::from(self.feature_norm(h));
                });
        }
        Ok(PoolNorms { squared, classes })
    }

    /// The factors of item `item`, read from the sources.
    fn pick(
        &self,
        features: &dyn EmbeddingSource,
        probabilities: &dyn ProbabilitySource,
        item: usize,
        squared_norm: f64,
    ) -> Result<Pick> {
        let p = probability_rows(probabilities, item, item + 1)?;
        Ok(Pick {
            residual: residual(&p),
            features: embedding_row(features, item)?,
            squared_norm,
        })
    }

    /// Lowers every `nearest[i]` to `‖g_i - g_centre‖²`: one pass.
    fn update_nearest(
        &self,
        features: &dyn EmbeddingSource,
        probabilities: &dyn ProbabilitySource,
        centre: &Pick,
        norms: &PoolNorms,
        nearest: &mut [f64],
        chunk_len: usize,
    ) -> Result<()> {
        let (d, c) = (features.dim(), probabilities.classes());
        for (start, end) in chunk_ranges(features.len(), chunk_len) {
            let h = embedding_rows(features, start, end)?;
            let p = probability_rows(probabilities, start, end)?;
            nearest[start..end]
                .par_iter_mut()
                .zip(norms.squared[start..end].par_iter())
                .zip(norms.classes[start..end].par_iter())
                .zip(h.par_chunks(d).zip(p.par_chunks(c)))
                .with_min_len(MIN_ROWS_PER_TASK)
                .for_each(|(((nearest, &norm), &class), (h, p))| {
                    let a = residual_dot(p, class as usize, &centre.residual);
                    let inner = f64::from(a) * f64::from(self.feature_dot(h, &centre.features));
                    let distance = (norm + centre.squared_norm - 2.0 * inner).max(0.0);
                    if distance < *nearest {
                        *nearest = distance;
                    }
                });
        }
        Ok(())
    }
}

/// The predicted class `argmax_c p_c`, ties to the lowest class.
fn predicted_class(p: &[f32]) -> usize {
    let mut best = 0;
    for (c, &value) in p.iter().enumerate() {
        if value > p[best] {
            best = c;
        }
    }
    best
}

/// `a = p - onehot(argmax p)`.
fn residual(p: &[f32]) -> Vec<f32> {
    let class = predicted_class(p);
    p.iter()
        .enumerate()
        .map(|(c, &value)| value - if c == class { 1.0 } else { 0.0 })
        .collect()
}

/// `(p - onehot(class)) · other = p · other - other[class]`, one vectorised inner product.
/// An item's own `‖a‖²` is computed by this same function (with `other = a`), so that it
/// equals, to the bit, its inner product with itself as a pick: its distance to itself (and
/// to a copy of itself) is exactly 0.
fn residual_dot(p: &[f32], class: usize, other: &[f32]) -> f32 {
    dot(p, other) - other[class]
}

/// A k-means++ draw: an unpicked item with probability `∝ nearest` (its `D²`), summed in
/// position order; the lowest-position unpicked item when every unpicked `D²` is 0.
fn draw_by_squared_distance(nearest: &[f64], picked: &[bool], rng: &mut ChaCha8Rng) -> usize {
    let unpicked = || {
        nearest
            .iter()
            .zip(picked)
            .enumerate()
            .filter(|(_, (_, done))| !**done)
            .map(|(i, (&weight, _))| (i, weight))
    };
    let total: f64 = unpicked().map(|(_, w)| w).sum();
    let first_unpicked = || unpicked().next().map(|(i, _)| i).expect("k ≤ N");
    if total <= 0.0 {
        return first_unpicked();
    }
    let target = rng.random::<f64>() * total;
    let mut cumulative = 0.0;
    let mut last = None;
    for (i, weight) in unpicked().filter(|&(_, w)| w > 0.0) {
        cumulative += weight;
        last = Some(i);
        if target < cumulative {
            return i;
        }
    }
    // Rounding left the target at the very end of the cumulative sum.
    last.unwrap_or_else(first_unpicked)
}

fn check_rows(n: usize, probabilities: &dyn ProbabilitySource) -> Result<()> {
    if probabilities.len() == n {
        Ok(())
    } else {
        Err(rows_mismatch(n, probabilities))
    }
}

fn rows_mismatch(n: usize, probabilities: &dyn ProbabilitySource) -> HeuristicError {
    HeuristicError::ShapeMismatch {
        what: "class probabilities",
        expected: format!("[N, C] with one row per pool item (N = {n})"),
        got: vec![probabilities.len(), probabilities.classes()],
    }
}

impl Heuristic for Badge {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Its name, seed and whether the bias gradient is included.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({ "name": Self::NAME, "seed": self.seed(), "bias": self.bias })
    }

    /// Larger gradients and distances are more informative.
    fn orientation(&self) -> Orientation {
        Orientation::HigherIsMoreInformative
    }

    embeddings_only!();

    /// k-means++ seeding over the gradient embeddings of `input.pool()` (the last layer's
    /// inputs) and `input.probabilities()` (labelled embeddings, if given, are not read).
    ///
    /// # Errors
    /// No probabilities, probabilities with another number of rows than the pool, `k` zero
    /// or larger than the pool, or a chunk that cannot be read or has the wrong shape.
    fn select_with_embeddings(&self, input: &EmbeddingInput<'_>, k: usize) -> Result<Selection> {
        let probabilities = input
            .probabilities()
            .ok_or(HeuristicError::MissingProbabilities {
                heuristic: Self::NAME,
            })?;
        self.seed_centres(input.pool(), probabilities, k)
    }

    fn draws(&self) -> u64 {
        self.draws.get()
    }

    fn set_draws(&self, draws: u64) {
        self.draws.set(draws);
    }
}
