//! Stopping criteria: when an experiment stops labelling.

use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};
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

    #[test]
    fn cohens_kappa_by_hand() {
        let kappa = |a: &[usize], b: &[usize]| cohens_kappa(a, b).expect("valid");
        assert_eq!(kappa(&[0, 1, 2, 1], &[0, 1, 2, 1]), 1.0);
        // Opposite on two balanced classes: p_o = 0, p_e = 0.5.
        assert_eq!(kappa(&[0, 1], &[1, 0]), -1.0);
        // 4 of 6 agree; class counts a = (3, 3), b = (5, 1): p_e = (15 + 3) / 36 = 0.5,
        // kappa (2/3 − 1/2) / (1/2) = 1/3.
        let k = kappa(&[0, 0, 0, 1, 1, 1], &[0, 0, 0, 1, 0, 0]);
        assert!((k - 1.0 / 3.0).abs() < 1e-12, "{k}");
        // 3 of 6 agree against b = (4, 2): as often as chance, kappa 0.
        let k = kappa(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 0, 0]);
        assert!(k.abs() < 1e-12, "{k}");
        // One class on both sides, the same: full agreement, not 0/0.
        assert_eq!(kappa(&[3, 3, 3], &[3, 3, 3]), 1.0);
        assert!(cohens_kappa(&[0, 1], &[0]).is_err());
        assert!(cohens_kappa(&[], &[]).is_err());
    }

    fn with_agreements(values: &[Option<f64>]) -> Vec<StepRecord> {
        values
            .iter()
            .map(|&prediction_agreement| StepRecord {
                prediction_agreement,
                ..StepRecord::default()
            })
            .collect()
    }

    #[test]
    fn prediction_stability_averages_the_last_window() {
        let criterion = PredictionStability::DEFAULT;
        let steps = [None, Some(0.5), Some(0.995), Some(0.99), Some(0.999)];
        // Fewer than 3 agreements, or a mean of 0.828: go on.
        for end in 1..=4 {
            assert_eq!(criterion.should_stop(&with_agreements(&steps[..end])), None);
        }
        // 0.995, 0.99, 0.999: mean 0.9947 >= 0.99.
        let why = criterion
            .should_stop(&with_agreements(&steps))
            .expect("stable");
        assert!(why.contains("0.9947"), "{why}");
        // A step without an agreement in the window never counts.
        let gap = [Some(1.0), None, Some(1.0), Some(1.0)];
        assert!(criterion.should_stop(&with_agreements(&gap[..3])).is_none());
        assert!(criterion.should_stop(&with_agreements(&gap)).is_none());
        assert!(PredictionStability::new(0, 0.9).is_err());
        assert!(PredictionStability::new(3, 1.5).is_err());
        assert!(PredictionStability::new(3, f64::NAN).is_err());
        assert_eq!(PredictionStability::new(3, 0.99).expect("valid"), criterion);
    }

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

/// Cohen's kappa between two labellings of the same items: `(p_o − p_e) / (1 − p_e)`, with
/// `p_o` the share of items given the same class and `p_e` the share expected by chance from
/// each labelling's class frequencies. 1 when they agree on every item; 0 when they agree as
/// often as chance. Two identical labellings of a single class (`p_e = 1`) have kappa 1.
///
/// ```
/// use baal_active::cohens_kappa;
///
/// // 3 of 4 agree; chance agreement 0.5: (0.75 − 0.5) / (1 − 0.5).
/// assert_eq!(cohens_kappa(&[0, 0, 1, 1], &[0, 1, 1, 1])?, 0.5);
/// # Ok::<(), baal_active::ActiveError>(())
/// ```
///
/// # Errors
/// Labellings of different lengths, or of no item.
pub fn cohens_kappa(a: &[usize], b: &[usize]) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(ActiveError::InvalidConfig {
            what: "labellings compared by Cohen's kappa",
            reason: format!(
                "need the same, non-zero number of items, got {} and {}",
                a.len(),
                b.len()
            ),
        });
    }
    let n = a.len() as f64;
    let classes = a.iter().chain(b).max().map_or(0, |&c| c + 1);
    let (mut count_a, mut count_b) = (vec![0usize; classes], vec![0usize; classes]);
    let mut same = 0usize;
    for (&x, &y) in a.iter().zip(b) {
        count_a[x] += 1;
        count_b[y] += 1;
        same += usize::from(x == y);
    }
    let observed = same as f64 / n;
    let chance: f64 = count_a
        .iter()
        .zip(&count_b)
        .map(|(&x, &y)| (x as f64 / n) * (y as f64 / n))
        .sum();
    if chance >= 1.0 {
        // Both labellings give every item the same single class.
        return Ok(1.0);
    }
    Ok((observed - chance) / (1.0 - chance))
}

/// Stops labelling without labels when successive models agree (small-text's
/// `KappaAverage`, Bloodgood & Vijay-Shanker 2009, "stabilizing predictions"): the mean of
/// the last `window` steps' [`prediction_agreement`](StepRecord::prediction_agreement)
/// (Cohen's kappa between each step's model's predicted classes on a held-out unlabelled
/// stopping set and the previous step's) is at least `threshold`. It needs an experiment with
/// a stopping set ([`Experiment::with_stopping_set`](crate::Experiment::with_stopping_set));
/// steps without an agreement (the first, or without a set) never count.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionStability {
    window: usize,
    threshold: f64,
}

impl PredictionStability {
    /// Small-text's and the paper's defaults: 3 steps, kappa 0.99.
    pub const DEFAULT: Self = Self {
        window: 3,
        threshold: 0.99,
    };

    /// Stops when the mean agreement of the last `window` steps reaches `threshold`.
    ///
    /// # Errors
    /// A window of 0, or a threshold outside [-1, 1] (kappa's range).
    pub fn new(window: usize, threshold: f64) -> Result<Self> {
        if window == 0 {
            return Err(ActiveError::InvalidConfig {
                what: "prediction stability window",
                reason: "must be at least 1 step, got 0".into(),
            });
        }
        if !(-1.0..=1.0).contains(&threshold) {
            return Err(ActiveError::InvalidConfig {
                what: "prediction stability threshold",
                reason: format!("must be a kappa in [-1, 1], got {threshold}"),
            });
        }
        Ok(Self { window, threshold })
    }

    /// The number of last steps averaged.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The mean kappa at which labelling stops.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl StoppingCriterion for PredictionStability {
    fn should_stop(&self, records: &[StepRecord]) -> Option<String> {
        let last = records.get(records.len().checked_sub(self.window)?..)?;
        let agreements: Vec<f64> = last
            .iter()
            .map(|r| r.prediction_agreement)
            .collect::<Option<_>>()?;
        let mean = agreements.iter().sum::<f64>() / agreements.len() as f64;
        (mean >= self.threshold).then(|| {
            format!(
                "predictions are stable: mean agreement (Cohen's kappa) of successive models on \
                 the stopping set over the last {} steps is {mean:.4}, at least {}",
                self.window, self.threshold
            )
        })
    }
}
