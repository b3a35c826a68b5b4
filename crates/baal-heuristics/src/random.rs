//! Uniformly random acquisition, the baseline every heuristic is compared with.

use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::base::Heuristic;
use crate::error::Result;
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Random acquisition: every item gets an independent uniform score in [0, 1), and the
/// lowest scores come first (as in baal), i.e. a uniformly random order.
///
/// Seeded: the n-th call of a `Random::new(seed)` gives the same scores on every run and
/// backend; successive calls give fresh draws, as one random generator would.
#[derive(Debug)]
pub struct Random {
    seed: u64,
    draws: AtomicU64,
}

impl Random {
    pub(crate) const NAME: &'static str = "random";

    /// A random heuristic whose draws derive from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            draws: AtomicU64::new(0),
        }
    }

    /// The seed given at construction.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn draw(&self, n: usize) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(self.draws.fetch_add(1, Ordering::Relaxed));
        (0..n).map(|_| rng.random::<f32>()).collect()
    }
}

impl Clone for Random {
    fn clone(&self) -> Self {
        Self {
            seed: self.seed,
            draws: AtomicU64::new(self.draws.load(Ordering::Relaxed)),
        }
    }
}

impl Heuristic for Random {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn orientation(&self) -> Orientation {
        Orientation::LowerIsMoreInformative
    }

    /// Random reads only the number of pool items.
    fn needs_predictions(&self) -> bool {
        false
    }

    fn score_tensor(
        &self,
        predictions: &Predictions,
        _: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        let n = predictions.len();
        Ok(Tensor::from_data(
            TensorData::new(self.draw(n), [n]),
            &predictions.device(),
        ))
    }

    fn scores(&self, predictions: &Predictions, _: Option<&Predictions>) -> Result<Vec<f32>> {
        Ok(self.draw(predictions.len()))
    }

    fn scores_without_predictions(&self, pool_len: usize) -> Result<Vec<f32>> {
        Ok(self.draw(pool_len))
    }

    fn draws(&self) -> u64 {
        self.draws.load(Ordering::Relaxed)
    }

    fn set_draws(&self, draws: u64) {
        self.draws.store(draws, Ordering::Relaxed);
    }
}
