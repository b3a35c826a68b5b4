//! BatchBALD: greedy batch selection by joint mutual information.

use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::bald::Bald;
use crate::base::Heuristic;
use crate::draws::DrawCounter;
use crate::error::{HeuristicError, Result};
use crate::kernels;
use crate::ops::xlogx;
use crate::predictions::Predictions;
use crate::ranking::{Orientation, Ranking, Selection, check_query_size};
use crate::reduction::Reduction;

/// BatchBALD (Kirsch, van Amersfoort & Gal 2019, "BatchBALD: Efficient and Diverse Batch
/// Acquisition for Deep Bayesian Active Learning"): selects a batch `A` greedily, each pick
/// maximising the mutual information of the whole batch with the model parameters,
///
/// ```text
/// a_n = argmax_i  I(y_{a_1..a_{n-1}}, y_i ; ω)
///     = argmax_i  H(y_{a_1..a_{n-1}}, y_i) - sum_{j in batch ∪ {i}} mean_t H(p_t(y_j))
/// ```
///
/// The joint entropy is computed exactly, over every configuration of the labels picked so
/// far, while their number `C^(n-1)` stays within `max_exact_configurations`; after that it is
/// estimated from `num_samples` label configurations drawn from the MC posterior (seeded),
/// importance-weighted per MC iteration. The pool is streamed in chunks bounded by the
/// predictions' memory budget, so memory does not grow with `N · samples`.
///
/// The first pick is BALD's argmax. [`Heuristic::select`] returns the picks in selection
/// order with, for each, the batch's mutual information once it was added.
/// [`Heuristic::rank`] puts the `query_size` picks first, in selection order, then the rest
/// of the pool by BALD; its scores are each pick's batch mutual information and 0 for items
/// not picked (as baal's). [`Heuristic::score_tensor`] is plain BALD (a batch of one).
#[derive(Clone, Debug)]
pub struct BatchBald {
    query_size: usize,
    num_samples: usize,
    max_exact_configurations: usize,
    /// Selection `n` samples configurations from stream `n` of the seed.
    draws: DrawCounter,
}

impl BatchBald {
    pub(crate) const NAME: &'static str = "batch-bald";

    /// Default number of sampled label configurations once exact enumeration stops (baal's
    /// `num_draw` default).
    pub const DEFAULT_NUM_SAMPLES: usize = 500;

    /// BatchBALD selecting `query_size` items when used through [`Heuristic::rank`].
    pub fn new(query_size: usize) -> Self {
        Self {
            query_size,
            num_samples: Self::DEFAULT_NUM_SAMPLES,
            max_exact_configurations: Self::DEFAULT_NUM_SAMPLES,
            draws: DrawCounter::new(0),
        }
    }

    /// Number of label configurations sampled to estimate the joint entropy (default 500).
    pub fn with_num_samples(mut self, num_samples: usize) -> Self {
        self.num_samples = num_samples;
        self
    }

    /// Largest number of label configurations enumerated exactly (default 500, so that an
    /// exact step never costs more than a sampled one); 0 samples from the second pick on.
    pub fn with_max_exact_configurations(mut self, configurations: usize) -> Self {
        self.max_exact_configurations = configurations;
        self
    }

    /// Seed of the configuration sampler (the n-th selection draws from stream n of it).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.draws = DrawCounter::new(seed);
        self
    }

    /// The batch size used by [`Heuristic::rank`].
    pub fn query_size(&self) -> usize {
        self.query_size
    }

    fn check(&self, predictions: &Predictions) -> Result<()> {
        predictions.require_probabilities(Self::NAME)?;
        predictions.require_no_positions(Self::NAME)?;
        if self.num_samples == 0 {
            return Err(HeuristicError::InvalidParameter {
                name: "num_samples",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

impl Heuristic for BatchBald {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Its name, batch, sampled configurations, exact-enumeration bound and seed.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "name": Self::NAME,
            "query_size": self.query_size,
            "num_samples": self.num_samples,
            "max_exact_configurations": self.max_exact_configurations,
            "seed": self.draws.seed(),
        })
    }

    fn orientation(&self) -> Orientation {
        Orientation::HigherIsMoreInformative
    }

    /// The joint entropy multiplies `p(y_i | ω_t) p(y_j | ω_t)` over a shared `ω_t`: with
    /// per-item samples two copies of an item look independent and BatchBALD degrades into
    /// noisy top-k BALD.
    fn needs_consistent_samples(&self) -> bool {
        true
    }

    fn score_tensor(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        Bald.score_tensor(predictions, target)
    }

    /// BALD's scores, through its fused CPU kernels where they apply (the same values its
    /// first pick and its ranking of the rest use).
    fn scores(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Vec<f32>> {
        Bald.scores(predictions, target)
    }

    fn rank(&self, predictions: &Predictions, _: Option<&Predictions>) -> Result<Ranking> {
        let k = self.query_size.min(predictions.len());
        let selection = self.select(predictions, None, k)?;
        Ranking::picks_first(
            selection.positions,
            selection.scores,
            selection.pool_scores,
            self.orientation(),
        )
    }

    fn joint_batch(&self) -> Option<usize> {
        Some(self.query_size)
    }

    fn select(
        &self,
        predictions: &Predictions,
        _: Option<&Predictions>,
        k: usize,
    ) -> Result<Selection> {
        self.check(predictions)?;
        check_query_size(k, predictions.len())?;
        Greedy::new(self, predictions)?.run(k)
    }

    fn draws(&self) -> u64 {
        self.draws.get()
    }

    fn set_draws(&self, draws: u64) {
        self.draws.set(draws);
    }
}

/// State of one greedy selection.
struct Greedy<'a> {
    config: &'a BatchBald,
    predictions: &'a Predictions,
    /// Probabilities laid out `[T, N·C]`, the right operand of the joint-probability product.
    probs_t_nc: Tensor<2>,
    /// Expected conditional entropy `mean_t H(p_t(y_i))` of every item, on the device `[N]`.
    conditional: Tensor<1>,
    /// The same, on the host.
    conditional_host: Vec<f32>,
    history: JointHistory,
    picked: Vec<usize>,
    /// 0 for items still selectable, -inf for picked ones.
    penalty: Vec<f32>,
}

impl<'a> Greedy<'a> {
    fn new(config: &'a BatchBald, predictions: &'a Predictions) -> Result<Self> {
        let [n, c, _, t] = predictions.values().dims();
        let probs = predictions.values().clone().reshape([n, c, t]);
        let probs_t_nc = probs.permute([2, 0, 1]).reshape([t, n * c]);
        let conditional_host = match predictions.host() {
            Some((values, layout)) => kernels::score_items(
                values,
                layout,
                Reduction::None,
                kernels::Kernel::ExpectedEntropy,
            ),
            None => predictions
                .score_items(2, |p| {
                    let [m, ..] = p.dims();
                    xlogx(p)
                        .sum_dim(3)
                        .sum_dim(1)
                        .div_scalar(-(t as f32))
                        .reshape([m, 1])
                })
                .try_into_vec_as::<f32>()?,
        };
        let conditional = Tensor::from_data(
            TensorData::new(conditional_host.clone(), [n]),
            &predictions.device(),
        );
        Ok(Self {
            config,
            predictions,
            probs_t_nc,
            conditional,
            conditional_host,
            history: JointHistory::new(t, config.draws.next_rng()),
            picked: Vec::new(),
            penalty: vec![0.0; n],
        })
    }

    fn run(mut self, k: usize) -> Result<Selection> {
        let mut scores = Vec::with_capacity(k);
        // First pick: BALD.
        let bald = Bald.scores(self.predictions, None)?;
        let (first, first_score) = host_argmax(&bald, &self.penalty);
        self.pick(first)?;
        scores.push(first_score);
        while self.picked.len() < k {
            let (item, score) = self.next_pick()?;
            self.pick(item)?;
            scores.push(score as f32);
        }
        Ok(Selection {
            positions: self.picked,
            scores,
            pool_scores: bald,
        })
    }

    fn pick(&mut self, item: usize) -> Result<()> {
        self.picked.push(item);
        self.penalty[item] = f32::NEG_INFINITY;
        let [_, c, _, t] = self.predictions.values().dims();
        let p: Vec<f64> = self
            .predictions
            .values()
            .clone()
            .narrow(0, item, 1)
            .try_into_vec_as::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect();
        self.history.add(&p, c, t, self.config);
        Ok(())
    }

    /// The next pick and the batch's mutual information once it is added.
    fn next_pick(&self) -> Result<(usize, f64)> {
        let [n, c, _, t] = self.predictions.values().dims();
        let device = self.predictions.device();
        let rows = self.history.rows();
        let q = Tensor::<2>::from_data(TensorData::new(self.history.q_f32(), [rows, t]), &device)
            .div_scalar(t as f32);
        let v = Tensor::<2>::from_data(
            TensorData::new(self.history.weights_f32(), [1, rows]),
            &device,
        );
        // Σ_m v_m Σ_c J ln J per item, J[m, i, c] = p(y_i = c | ŷ_m).
        let chunk = (self.predictions.memory_budget() / (rows * c * 4 * 3)).clamp(1, n);
        let picked_conditional: f64 = self
            .picked
            .iter()
            .map(|&i| f64::from(self.conditional_host[i]))
            .sum();
        if let Some((values, layout)) = self.predictions.host() {
            // CPU: one fused pass per item, its joint probabilities kept in cache.
            let history_t_m = self.history.q_transposed_over_t();
            let weights = self.history.weights_f32();
            let neg_entropy = kernels::joint_neg_entropies(values, layout, &history_t_m, &weights);
            let gain: Vec<f32> = neg_entropy
                .iter()
                .zip(&self.conditional_host)
                .map(|(h, cond)| -h - cond)
                .collect();
            let (item, gain) = host_argmax(&gain, &self.penalty);
            return Ok((
                item,
                f64::from(gain) + self.history.entropy_offset() - picked_conditional,
            ));
        }
        let parts: Vec<Tensor<1>> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let len = chunk.min(n - start);
                let cols = self.probs_t_nc.clone().narrow(1, start * c, len * c);
                let joint = q.clone().matmul(cols);
                let per_row = xlogx(joint)
                    .reshape([rows, len, c])
                    .sum_dim(2)
                    .reshape([rows, len]);
                v.clone().matmul(per_row).reshape([len])
            })
            .collect();
        let penalty = Tensor::<1>::from_data(TensorData::new(self.penalty.clone(), [n]), &device);
        // Joint entropy minus the item's own conditional entropy, up to terms equal for all.
        let gain = Tensor::cat(parts, 0).neg() - self.conditional.clone() + penalty;
        let (item, gain) = argmax(gain)?;
        let picked_conditional: f64 = self
            .picked
            .iter()
            .map(|&i| f64::from(self.conditional_host[i]))
            .sum();
        Ok((
            item,
            f64::from(gain) + self.history.entropy_offset() - picked_conditional,
        ))
    }
}

/// The first index of the largest score among those not penalised.
fn host_argmax(scores: &[f32], penalty: &[f32]) -> (usize, f32) {
    scores
        .iter()
        .zip(penalty)
        .map(|(s, p)| s + p)
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, s)| {
            if s > best.1 { (i, s) } else { best }
        })
}

fn argmax(scores: Tensor<1>) -> Result<(usize, f32)> {
    let (value, index) = scores.max_dim_with_indices(0);
    let index = index.try_into_vec_as::<i64>()?[0];
    let value = value.try_into_vec_as::<f32>()?[0];
    Ok((index as usize, value))
}

/// Joint distribution of the labels picked so far, as rows `m` of label configurations ŷ_m:
/// `q[m, t] = p(ŷ_m | ω_t) / p(ŷ_m)` (normalised so that `mean_t q[m, t] = 1`) and
/// `ln p(ŷ_m)`. Rows enumerate every configuration (exact) or are samples of p(ŷ) (sampled).
struct JointHistory {
    t: usize,
    q: Vec<f64>,
    log_w: Vec<f64>,
    /// For sampled rows: the MC iteration each sample was drawn under.
    sampled_under: Option<Vec<usize>>,
    /// Probabilities `[C, T]` of every picked item, kept to draw samples when switching.
    picked: Vec<Vec<f64>>,
    rng: ChaCha8Rng,
}

impl JointHistory {
    fn new(t: usize, rng: ChaCha8Rng) -> Self {
        Self {
            t,
            q: vec![1.0; t],
            log_w: vec![0.0],
            sampled_under: None,
            picked: Vec::new(),
            rng,
        }
    }

    fn rows(&self) -> usize {
        self.log_w.len()
    }

    /// `q[m, t] / T` laid out `[T, M]`, for the CPU kernel.
    fn q_transposed_over_t(&self) -> Vec<f32> {
        let (rows, t) = (self.rows(), self.t);
        let mut out = vec![0f32; rows * t];
        for (m, row) in self.q.chunks_exact(t).enumerate() {
            for (it, &q) in row.iter().enumerate() {
                out[it * rows + m] = (q / t as f64) as f32;
            }
        }
        out
    }

    fn q_f32(&self) -> Vec<f32> {
        self.q.iter().map(|&x| x as f32).collect()
    }

    /// Weight of each row in the expectation over ŷ: p(ŷ_m) exactly, or 1/M for samples.
    fn weights(&self) -> Vec<f64> {
        match self.sampled_under {
            None => self.log_w.iter().map(|lw| lw.exp()).collect(),
            Some(_) => vec![1.0 / self.rows() as f64; self.rows()],
        }
    }

    fn weights_f32(&self) -> Vec<f32> {
        self.weights().into_iter().map(|w| w as f32).collect()
    }

    /// `-E_ŷ ln p(ŷ)`: the joint entropy of the picked labels (estimated when sampled).
    fn entropy_offset(&self) -> f64 {
        -self
            .weights()
            .iter()
            .zip(&self.log_w)
            .map(|(w, lw)| w * lw)
            .sum::<f64>()
    }

    /// Adds a picked item with probabilities `p[c * t + t']`.
    fn add(&mut self, p: &[f64], c: usize, t: usize, config: &BatchBald) {
        self.picked.push(p.to_vec());
        match self.sampled_under {
            None if self.rows() * c <= config.max_exact_configurations => self.extend_exact(p, c),
            None => self.resample(c, config.num_samples),
            Some(_) => self.extend_sampled(p, c),
        }
        debug_assert_eq!(self.q.len(), self.rows() * t);
    }

    fn extend_exact(&mut self, p: &[f64], c: usize) {
        let t = self.t;
        let mut q = Vec::with_capacity(self.q.len() * c);
        let mut log_w = Vec::with_capacity(self.rows() * c);
        for (row, &lw) in self.q.chunks_exact(t).zip(&self.log_w) {
            for class in 0..c {
                let p_class = &p[class * t..(class + 1) * t];
                let mean = row.iter().zip(p_class).map(|(a, b)| a * b).sum::<f64>() / t as f64;
                if mean > 0.0 {
                    q.extend(row.iter().zip(p_class).map(|(a, b)| a * b / mean));
                    log_w.push(lw + mean.ln());
                }
            }
        }
        self.q = q;
        self.log_w = log_w;
    }

    /// Switches to sampling: draws `m` configurations of every picked label from p(ŷ).
    fn resample(&mut self, c: usize, m: usize) {
        let t = self.t;
        let mut q = Vec::with_capacity(m * t);
        let mut log_w = Vec::with_capacity(m);
        let mut under = Vec::with_capacity(m);
        for _ in 0..m {
            let t_m = self.rng.random_range(0..t);
            let mut log_q = vec![0.0; t];
            for p in &self.picked {
                let y = draw_class(&mut self.rng, p, c, t, t_m);
                for (lq, &py) in log_q.iter_mut().zip(&p[y * t..(y + 1) * t]) {
                    *lq += py.ln();
                }
            }
            let max = log_q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = log_q.iter().map(|lq| (lq - max).exp()).sum::<f64>() / t as f64;
            q.extend(log_q.iter().map(|lq| (lq - max).exp() / mean));
            log_w.push(max + mean.ln());
            under.push(t_m);
        }
        self.q = q;
        self.log_w = log_w;
        self.sampled_under = Some(under);
    }

    fn extend_sampled(&mut self, p: &[f64], c: usize) {
        let t = self.t;
        let under = self
            .sampled_under
            .as_ref()
            .expect("sampled history")
            .clone();
        for ((row, lw), &t_m) in self.q.chunks_exact_mut(t).zip(&mut self.log_w).zip(&under) {
            let y = draw_class(&mut self.rng, p, c, t, t_m);
            let p_y = &p[y * t..(y + 1) * t];
            let mean = row.iter().zip(p_y).map(|(a, b)| a * b).sum::<f64>() / t as f64;
            for (a, b) in row.iter_mut().zip(p_y) {
                *a = *a * b / mean;
            }
            *lw += mean.ln();
        }
    }
}

/// Draws a class from `p[·, t_m]` (probabilities `[C, T]`, row-major).
fn draw_class(rng: &mut ChaCha8Rng, p: &[f64], c: usize, t: usize, t_m: usize) -> usize {
    let total: f64 = (0..c).map(|y| p[y * t + t_m]).sum();
    let mut u = rng.random::<f64>() * total;
    for y in 0..c {
        u -= p[y * t + t_m];
        if u < 0.0 {
            return y;
        }
    }
    // Rounding left u at or just above zero: the last class with mass.
    (0..c).rev().find(|&y| p[y * t + t_m] > 0.0).unwrap_or(0)
}
