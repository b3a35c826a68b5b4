//! Stochastic batch acquisition: sample the batch instead of taking the top k.

use burn::tensor::Tensor;
use rand::Rng;

use crate::base::Heuristic;
use crate::draws::DrawCounter;
use crate::error::{HeuristicError, Result};
use crate::predictions::Predictions;
use crate::ranking::{Orientation, Ranking};

/// How scores become sampling weights (Kirsch et al. 2023, "Stochastic Batch Acquisition: A
/// Simple Baseline for Deep Active Learning", TMLR), with temperature `τ` and `u` the score
/// oriented so that higher is more informative:
///
/// ```text
/// Power:   w_i = u_i^(1/τ)           (u_i >= 0; baal's PowerSampling, best in the paper)
/// Softmax: w_i = exp(u_i / τ)        (baal's GibbsSampling)
/// Rank:    w_i = rank_i^(-1/τ)       (rank 1 = most informative; baal's RankBasedSampling)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplingRule {
    /// Power sampling: weights proportional to a power of the scores.
    Power,
    /// Softmax (Gibbs) sampling: weights proportional to the exponential of the scores.
    Softmax,
    /// Rank-based sampling: weights proportional to a power of the inverse rank.
    Rank,
}

/// Wraps any heuristic so that the batch is *sampled*, without replacement, with probability
/// proportional to a weight of each score ([`SamplingRule`]), instead of taking the top k:
/// cheap diversity for batch acquisition.
///
/// [`Heuristic::rank`] draws a whole order with the Gumbel-top-k trick (Kool et al. 2019):
/// its first k items are a sample of k items without replacement, distributed as successive
/// draws with probabilities `w_i / sum w`. Items of zero weight come after all others, in
/// uniformly random order. Its scores are the sampling probabilities `w_i / sum w` (as
/// baal's). Seeded: the n-th call draws the same order on every run and backend.
#[derive(Debug)]
pub struct StochasticSampling<H> {
    base: H,
    rule: SamplingRule,
    temperature: f64,
    draws: DrawCounter,
}

/// Scores slightly below zero that float rounding gives to BALD-like heuristics are treated
/// as zero by power sampling; more negative ones are an error.
const NEGATIVE_SCORE_TOLERANCE: f32 = 1e-4;

impl<H: Heuristic> StochasticSampling<H> {
    /// Samples the batch from `base`'s scores with `rule` at `temperature`, seeded by `seed`.
    ///
    /// # Errors
    /// A temperature that is not finite and positive; power sampling of a heuristic whose
    /// lower scores are the informative ones (use softmax or rank sampling for those).
    pub fn new(base: H, rule: SamplingRule, temperature: f64, seed: u64) -> Result<Self> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(HeuristicError::InvalidParameter {
                name: "temperature",
                reason: format!("{temperature} is not a finite positive number"),
            });
        }
        if rule == SamplingRule::Power && base.orientation() == Orientation::LowerIsMoreInformative
        {
            return Err(HeuristicError::InvalidParameter {
                name: "rule",
                reason: format!(
                    "power sampling needs scores where higher is more informative; {} is the \
                     other way round: use softmax or rank sampling",
                    base.name()
                ),
            });
        }
        Ok(Self {
            base,
            rule,
            temperature,
            draws: DrawCounter::new(seed),
        })
    }

    /// Power sampling (`PowerBALD` when `base` is [`crate::Bald`]).
    pub fn power(base: H, temperature: f64, seed: u64) -> Result<Self> {
        Self::new(base, SamplingRule::Power, temperature, seed)
    }

    /// Softmax sampling.
    pub fn softmax(base: H, temperature: f64, seed: u64) -> Result<Self> {
        Self::new(base, SamplingRule::Softmax, temperature, seed)
    }

    /// Rank-based sampling.
    pub fn rank_based(base: H, temperature: f64, seed: u64) -> Result<Self> {
        Self::new(base, SamplingRule::Rank, temperature, seed)
    }

    /// The wrapped heuristic.
    pub fn base(&self) -> &H {
        &self.base
    }

    /// Log-weights `ln w_i` of the scores (`-inf` for weight zero).
    fn log_weights(&self, scores: &[f32]) -> Result<Vec<f64>> {
        let orientation = self.base.orientation();
        let informativeness = |s: f32| match orientation {
            Orientation::HigherIsMoreInformative => f64::from(s),
            Orientation::LowerIsMoreInformative => -f64::from(s),
        };
        let inv_t = 1.0 / self.temperature;
        match self.rule {
            SamplingRule::Power => scores
                .iter()
                .enumerate()
                .map(|(item, &s)| {
                    if s < -NEGATIVE_SCORE_TOLERANCE {
                        return Err(HeuristicError::InvalidParameter {
                            name: "scores",
                            reason: format!(
                                "power sampling needs non-negative scores; item {item} scores {s}"
                            ),
                        });
                    }
                    Ok(informativeness(s.max(0.0)).ln() * inv_t)
                })
                .collect(),
            SamplingRule::Softmax => {
                Ok(scores.iter().map(|&s| informativeness(s) * inv_t).collect())
            }
            SamplingRule::Rank => {
                let ranking = Ranking::from_scores(scores.to_vec(), orientation)?;
                let mut log_w = vec![0.0; scores.len()];
                for (rank, &i) in ranking.positions().iter().enumerate() {
                    log_w[i] = -((rank + 1) as f64).ln() * inv_t;
                }
                Ok(log_w)
            }
        }
    }
}

impl<H: Heuristic> Heuristic for StochasticSampling<H> {
    fn name(&self) -> &'static str {
        match self.rule {
            SamplingRule::Power => "power-sampling",
            SamplingRule::Softmax => "softmax-sampling",
            SamplingRule::Rank => "rank-sampling",
        }
    }

    /// Its name (the rule), the base heuristic's identity, the temperature and the seed.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name(),
            "base": self.base.identity(),
            "temperature": self.temperature,
            "seed": self.draws.seed(),
        })
    }

    fn orientation(&self) -> Orientation {
        self.base.orientation()
    }

    fn needs_predictions(&self) -> bool {
        self.base.needs_predictions()
    }

    fn needs_target(&self) -> bool {
        self.base.needs_target()
    }

    fn needs_consistent_samples(&self) -> bool {
        self.base.needs_consistent_samples()
    }

    /// The base heuristic's scores.
    fn score_tensor(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        self.base.score_tensor(predictions, target)
    }

    /// The base heuristic's scores, read back its own way (fused CPU kernels where it has them).
    fn scores(&self, predictions: &Predictions, target: Option<&Predictions>) -> Result<Vec<f32>> {
        self.base.scores(predictions, target)
    }

    /// A whole order drawn from the base heuristic's `scores`, with the sampling
    /// probabilities as the ranking's scores; a selection (the first `k` of the order) keeps
    /// the base heuristic's scores as its pool scores.
    fn rank_scores(&self, scores: Vec<f32>) -> Result<Ranking> {
        self.sample(&scores)
    }

    fn scores_without_predictions(&self, pool_len: usize) -> Result<Vec<f32>> {
        self.base.scores_without_predictions(pool_len)
    }

    /// Its own draws; the base heuristic's (if random) advance with them, one per sample.
    fn draws(&self) -> u64 {
        self.draws.get()
    }

    fn set_draws(&self, draws: u64) {
        self.draws.set(draws);
        self.base.set_draws(draws);
    }
}

impl<H: Heuristic> StochasticSampling<H> {
    /// A whole order drawn with Gumbel-top-k from the base heuristic's `scores`, with the
    /// sampling probabilities as the ranking's scores.
    fn sample(&self, scores: &[f32]) -> Result<Ranking> {
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore { item, value });
        }
        let log_w = self.log_weights(scores)?;
        let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut rng = self.draws.next_rng();
        // Gumbel-top-k: sort by ln w + Gumbel noise. Zero weights sort after every positive
        // weight, among themselves by the noise alone.
        let mut keyed: Vec<(bool, f64, usize)> = log_w
            .iter()
            .enumerate()
            .map(|(i, &lw)| {
                let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                let gumbel = -(-u.ln()).ln();
                let positive = lw > f64::NEG_INFINITY;
                (
                    positive,
                    if positive { lw - max + gumbel } else { gumbel },
                    i,
                )
            })
            .collect();
        keyed.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
        let order = keyed.into_iter().map(|(_, _, i)| i).collect();
        let total: f64 = if max == f64::NEG_INFINITY {
            0.0
        } else {
            log_w.iter().map(|lw| (lw - max).exp()).sum()
        };
        let probabilities = log_w
            .iter()
            .map(|lw| {
                if total > 0.0 {
                    ((lw - max).exp() / total) as f32
                } else {
                    1.0 / scores.len() as f32
                }
            })
            .collect();
        Ranking::from_order(order, probabilities)
    }
}
