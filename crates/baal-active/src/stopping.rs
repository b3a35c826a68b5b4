//! Stopping criteria: when an experiment stops labelling.

use serde::{Deserialize, Serialize};

use crate::record::StepRecord;
use crate::traits::StoppingCriterion;

/// Stops once the model was trained on at least `max_labelled` labels: a labelling budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabellingBudget {
    /// The budget, in labelled items (initial labels included).
    pub max_labelled: usize,
}

impl StoppingCriterion for LabellingBudget {
    fn should_stop(&self, records: &[StepRecord]) -> Option<String> {
        let current = records.last()?;
        (current.n_labelled >= self.max_labelled).then(|| {
            format!(
                "labelling budget reached: {} labelled, budget {}",
                current.n_labelled, self.max_labelled
            )
        })
    }
}

/// Stops when the previous query's mean uncertainty over the scored pool fell below
/// `threshold`: the model is sure about what is left (heuristics without a score, such as
/// random, never trigger it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LowAverageUncertainty {
    /// The threshold, in the heuristic's units (nats for BALD and entropy).
    pub threshold: f64,
}

impl StoppingCriterion for LowAverageUncertainty {
    fn should_stop(&self, records: &[StepRecord]) -> Option<String> {
        let last = records.iter().rev().find_map(|r| r.mean_uncertainty)?;
        (last < self.threshold).then(|| {
            format!(
                "average uncertainty {last:.4} of the last query is below {}",
                self.threshold
            )
        })
    }
}

/// A test metric watched by [`EarlyStopping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Test accuracy (higher is better).
    TestAccuracy,
    /// Test loss (lower is better).
    TestLoss,
    /// Test NLL (lower is better).
    TestNll,
    /// Test ECE (lower is better).
    TestEce,
}

impl Metric {
    /// The metric's value in a record.
    pub fn value(self, record: &StepRecord) -> f64 {
        match self {
            Self::TestAccuracy => record.test_accuracy,
            Self::TestLoss => record.test_loss,
            Self::TestNll => record.test_nll,
            Self::TestEce => record.test_ece,
        }
    }

    /// Whether higher values are better.
    pub fn higher_is_better(self) -> bool {
        self == Self::TestAccuracy
    }
}

/// Stops when `metric` has not improved by more than `min_delta` on its best value for
/// `patience` steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// The watched metric.
    pub metric: Metric,
    /// Steps without improvement tolerated.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
}

impl StoppingCriterion for EarlyStopping {
    fn should_stop(&self, records: &[StepRecord]) -> Option<String> {
        if records.len() <= self.patience {
            return None;
        }
        let sign = if self.metric.higher_is_better() {
            1.0
        } else {
            -1.0
        };
        let split = records.len() - self.patience;
        let best_before = records[..split]
            .iter()
            .map(|r| sign * self.metric.value(r))
            .fold(f64::NEG_INFINITY, f64::max);
        let improved = records[split..]
            .iter()
            .any(|r| sign * self.metric.value(r) > best_before + self.min_delta);
        (!improved).then(|| {
            format!(
                "early stopping: {:?} did not improve by more than {} in {} steps",
                self.metric, self.min_delta, self.patience
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n_labelled: usize, accuracy: f64, uncertainty: Option<f64>) -> StepRecord {
        StepRecord {
            n_labelled,
            test_accuracy: accuracy,
            test_loss: 1.0 - accuracy,
            mean_uncertainty: uncertainty,
            ..StepRecord::default()
        }
    }

    #[test]
    fn budget_stops_once_reached() {
        let budget = LabellingBudget { max_labelled: 30 };
        assert!(budget.should_stop(&[record(20, 0.5, None)]).is_none());
        assert!(budget.should_stop(&[record(30, 0.5, None)]).is_some());
        assert!(budget.should_stop(&[]).is_none());
    }

    #[test]
    fn low_uncertainty_reads_the_last_query() {
        let low = LowAverageUncertainty { threshold: 0.1 };
        let records = [record(20, 0.5, Some(0.5)), record(30, 0.6, None)];
        assert!(low.should_stop(&records).is_none());
        let records = [record(20, 0.5, Some(0.05)), record(30, 0.6, None)];
        assert!(low.should_stop(&records).is_some());
        assert!(low.should_stop(&[record(20, 0.5, None)]).is_none());
    }

    #[test]
    fn early_stopping_waits_for_patience() {
        let stop = EarlyStopping {
            metric: Metric::TestAccuracy,
            patience: 2,
            min_delta: 0.01,
        };
        let mut records = vec![record(10, 0.5, None), record(20, 0.7, None)];
        assert!(stop.should_stop(&records).is_none());
        records.push(record(30, 0.705, None));
        assert!(
            stop.should_stop(&records).is_none(),
            "one step without gain"
        );
        records.push(record(40, 0.69, None));
        assert!(
            stop.should_stop(&records).is_some(),
            "two steps without gain"
        );
        records.push(record(50, 0.8, None));
        assert!(stop.should_stop(&records).is_none(), "improved again");
        let loss = EarlyStopping {
            metric: Metric::TestLoss,
            patience: 1,
            min_delta: 0.0,
        };
        // Loss is 1 - accuracy here: 0.2 then 0.2 is no improvement.
        let records = [record(10, 0.8, None), record(20, 0.8, None)];
        assert!(loss.should_stop(&records).is_some());
    }
}
