//! Shared helpers: the test device, random predictions and host-side reference formulas.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas
#![allow(dead_code, missing_docs)]

use baal_heuristics::Predictions;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The device tests run on: the first compiled backend (wgpu when built with it, else flex).
pub fn device() -> Device {
    Device::default()
}

/// Random probabilities `[n][c][t]` from a seeded softmax of scaled normal-ish logits.
pub fn random_probs(n: usize, c: usize, t: usize, sharpness: f64, seed: u64) -> Vec<Vec<Vec<f64>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut item = vec![vec![0.0; t]; c];
            for it in 0..t {
                let logits: Vec<f64> = (0..c)
                    .map(|_| (rng.random::<f64>() - 0.5) * 2.0 * sharpness)
                    .collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                for (class, l) in logits.iter().enumerate() {
                    item[class][it] = (l - max).exp() / total;
                }
            }
            item
        })
        .collect()
}

pub fn tensor3(values: &[Vec<Vec<f64>>]) -> Tensor<3> {
    let (n, c, t) = (values.len(), values[0].len(), values[0][0].len());
    let flat: Vec<f32> = values
        .iter()
        .flatten()
        .flatten()
        .map(|&v| v as f32)
        .collect();
    Tensor::from_data(TensorData::new(flat, [n, c, t]), &device())
}

pub fn predictions(values: &[Vec<Vec<f64>>]) -> Predictions {
    Predictions::from_probs(tensor3(values)).expect("valid probabilities")
}

pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&x| x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
}

pub fn mean_over_t(item: &[Vec<f64>]) -> Vec<f64> {
    item.iter()
        .map(|row| row.iter().sum::<f64>() / row.len() as f64)
        .collect()
}

pub fn column(item: &[Vec<f64>], t: usize) -> Vec<f64> {
    item.iter().map(|row| row[t]).collect()
}

pub fn reference_bald(item: &[Vec<f64>]) -> f64 {
    let t = item[0].len();
    let expected: f64 = (0..t).map(|it| entropy(&column(item, it))).sum::<f64>() / t as f64;
    entropy(&mean_over_t(item)) - expected
}

/// Exact mutual information I(y_batch; ω) by enumerating every label configuration.
pub fn reference_batch_mi(items: &[&Vec<Vec<f64>>]) -> f64 {
    let c = items[0].len();
    let t = items[0][0].len();
    let configurations = c.pow(items.len() as u32);
    let mut joint_entropy = 0.0;
    for config in 0..configurations {
        let mut labels = config;
        let mut p = 0.0;
        let mut per_t = vec![1.0; t];
        for item in items {
            let y = labels % c;
            labels /= c;
            for (it, v) in per_t.iter_mut().enumerate() {
                *v *= item[y][it];
            }
        }
        p += per_t.iter().sum::<f64>() / t as f64;
        if p > 0.0 {
            joint_entropy -= p * p.ln();
        }
    }
    let conditional: f64 = items
        .iter()
        .map(|item| (0..t).map(|it| entropy(&column(item, it))).sum::<f64>() / t as f64)
        .sum();
    joint_entropy - conditional
}

pub fn assert_close(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!(
        (a - b).abs() <= tolerance,
        "{what}: {a} vs {b} (tolerance {tolerance})"
    );
}

/// Embeddings served chunk by chunk, as from a file or a model (no in-memory fast path),
/// counting the rows read.
pub struct StreamedEmbeddings<'a> {
    pub inner: &'a baal_heuristics::Embeddings,
    pub rows_read: std::cell::Cell<usize>,
}

impl<'a> StreamedEmbeddings<'a> {
    pub fn new(inner: &'a baal_heuristics::Embeddings) -> Self {
        Self {
            inner,
            rows_read: std::cell::Cell::new(0),
        }
    }
}

impl baal_heuristics::EmbeddingSource for StreamedEmbeddings<'_> {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn chunk(
        &self,
        start: usize,
        end: usize,
    ) -> baal_heuristics::Result<baal_heuristics::Embeddings> {
        self.rows_read.set(self.rows_read.get() + end - start);
        baal_heuristics::EmbeddingSource::chunk(self.inner, start, end)
    }
}

/// Class probabilities served chunk by chunk, counting the rows read.
pub struct StreamedProbabilities<'a> {
    pub inner: &'a baal_heuristics::ClassProbabilities,
    pub rows_read: std::cell::Cell<usize>,
}

impl<'a> StreamedProbabilities<'a> {
    pub fn new(inner: &'a baal_heuristics::ClassProbabilities) -> Self {
        Self {
            inner,
            rows_read: std::cell::Cell::new(0),
        }
    }
}

impl baal_heuristics::ProbabilitySource for StreamedProbabilities<'_> {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn classes(&self) -> usize {
        self.inner.classes()
    }
    fn chunk(
        &self,
        start: usize,
        end: usize,
    ) -> baal_heuristics::Result<baal_heuristics::ClassProbabilities> {
        self.rows_read.set(self.rows_read.get() + end - start);
        baal_heuristics::ProbabilitySource::chunk(self.inner, start, end)
    }
}

/// Seeded uniform values in [-1, 1), `n` rows of `d`.
pub fn random_embeddings(n: usize, d: usize, seed: u64) -> baal_heuristics::Embeddings {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values = (0..n * d)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    baal_heuristics::Embeddings::new(values, [n, d]).expect("finite")
}

/// Seeded class probabilities `[n, c]`: a softmax of logits in [-2, 2).
pub fn random_class_probabilities(
    n: usize,
    c: usize,
    seed: u64,
) -> baal_heuristics::ClassProbabilities {
    let probs = random_probs(n, c, 1, 2.0, seed);
    let values = probs
        .iter()
        .flat_map(|item| item.iter().map(|class| class[0] as f32))
        .collect();
    baal_heuristics::ClassProbabilities::new(values, [n, c]).expect("normalised")
}
