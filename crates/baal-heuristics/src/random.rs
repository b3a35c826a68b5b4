//! Uniformly random acquisition, the baseline every heuristic is compared with.

use burn::tensor::{Tensor, TensorData};
use rand::Rng;

use crate::base::Heuristic;
use crate::draws::DrawCounter;
use crate::error::Result;
use crate::predictions::Predictions;
use crate::ranking::Orientation;

/// Random acquisition: every item gets an independent uniform score in [0, 1), and the
/// lowest scores come first (as in baal), i.e. a uniformly random order.
///
/// Seeded: the n-th call of a `Random::new(seed)` gives the same scores on every run and
/// backend; successive calls give fresh draws, as one random generator would.
#[derive(Clone, Debug)]
pub struct Random {
    draws: DrawCounter,
}

impl Random {
    pub(crate) const NAME: &'static str = "random";

    /// A random heuristic whose draws derive from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            draws: DrawCounter::new(seed),
        }
    }

    /// The seed given at construction.
    pub fn seed(&self) -> u64 {
        self.draws.seed()
    }

    fn draw(&self, n: usize) -> Vec<f32> {
        let mut rng = self.draws.next_rng();
        (0..n).map(|_| rng.random::<f32>()).collect()
    }
}

impl Heuristic for Random {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Its name and seed: another seed draws another order.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({ "name": Self::NAME, "seed": self.seed() })
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
        self.draws.get()
    }

    fn set_draws(&self, draws: u64) {
        self.draws.set(draws);
    }
}
