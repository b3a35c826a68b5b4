//! Scores computed outside this crate.

use burn::tensor::{Tensor, TensorData};

use crate::base::Heuristic;
use crate::error::{HeuristicError, Result};
use crate::predictions::Predictions;
use crate::ranking::{Orientation, Ranking};

/// Scores the user computed elsewhere (one per pool item), ranked in the given orientation.
#[derive(Clone, Debug)]
pub struct Precomputed {
    scores: Vec<f32>,
    orientation: Orientation,
}

impl Precomputed {
    pub(crate) const NAME: &'static str = "precomputed";

    /// Wraps `scores`, indexed by pool index.
    ///
    /// # Errors
    /// No scores, or a non-finite score.
    pub fn new(scores: Vec<f32>, orientation: Orientation) -> Result<Self> {
        if scores.is_empty() {
            return Err(HeuristicError::InvalidParameter {
                name: "scores",
                reason: "no scores given".into(),
            });
        }
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore { item, value });
        }
        Ok(Self {
            scores,
            orientation,
        })
    }

    /// The ranking of the scores, without predictions.
    pub fn ranking(&self) -> Result<Ranking> {
        Ranking::from_scores(self.scores.clone(), self.orientation)
    }

    fn check_len(&self, predictions: &Predictions) -> Result<()> {
        self.check_pool_len(predictions.len())
    }

    fn check_pool_len(&self, pool_len: usize) -> Result<()> {
        if pool_len == self.scores.len() {
            Ok(())
        } else {
            Err(HeuristicError::ShapeMismatch {
                what: "precomputed scores",
                expected: format!("one score per pool item ({pool_len})"),
                got: vec![self.scores.len()],
            })
        }
    }
}

impl Heuristic for Precomputed {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Its name and orientation; the scores themselves are the run's data, as predictions
    /// are, not a parameter.
    fn identity(&self) -> serde_json::Value {
        let orientation = match self.orientation {
            Orientation::HigherIsMoreInformative => "higher-is-more-informative",
            Orientation::LowerIsMoreInformative => "lower-is-more-informative",
        };
        serde_json::json!({ "name": Self::NAME, "orientation": orientation })
    }

    fn orientation(&self) -> Orientation {
        self.orientation
    }

    /// The scores are given; only the number of pool items is checked.
    fn needs_predictions(&self) -> bool {
        false
    }

    fn score_tensor(
        &self,
        predictions: &Predictions,
        _: Option<&Predictions>,
    ) -> Result<Tensor<1>> {
        self.check_len(predictions)?;
        Ok(Tensor::from_data(
            TensorData::new(self.scores.clone(), [self.scores.len()]),
            &predictions.device(),
        ))
    }

    fn scores(&self, predictions: &Predictions, _: Option<&Predictions>) -> Result<Vec<f32>> {
        self.check_len(predictions)?;
        Ok(self.scores.clone())
    }

    fn scores_without_predictions(&self, pool_len: usize) -> Result<Vec<f32>> {
        self.check_pool_len(pool_len)?;
        Ok(self.scores.clone())
    }
}
