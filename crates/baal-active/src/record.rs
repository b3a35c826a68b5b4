//! One step of an experiment, as logged (`log.jsonl`, `log.csv`) and read by the stopping
//! criteria.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of an experiment: the model trained on `n_labelled` labels, its test metrics, and
/// the query that followed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step number, from 0.
    pub step: usize,
    /// Labelled items when the model was trained: all of them trained it, unless
    /// [`n_trained`](Self::n_trained) says otherwise.
    pub n_labelled: usize,
    /// With the loop's [last active steps](crate::ActiveLearningLoop::with_last_active_steps):
    /// the labelled items of those steps, which the model was trained on; `None` (and absent
    /// from the logs): all `n_labelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_trained: Option<usize>,
    /// The heuristic's name.
    pub heuristic: String,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Gradient steps of the fit.
    #[serde(default)]
    pub train_steps: usize,
    /// With early stopping: the validation accuracy of the weights kept.
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    /// Test loss (mean cross-entropy of single MC samples; a regression experiment's: the
    /// mean squared error of the MC-averaged outputs).
    pub test_loss: f64,
    /// Test accuracy of the MC-averaged prediction (NaN for regression, `null` in the logs).
    #[serde(with = "nan_as_null")]
    pub test_accuracy: f64,
    /// Test NLL of the MC-averaged prediction (regression: the Gaussian NLL of the MC mean and
    /// variance).
    pub test_nll: f64,
    /// Test expected calibration error (NaN for regression, `null` in the logs).
    #[serde(with = "nan_as_null")]
    pub test_ece: f64,
    /// Items queried after the evaluation (0 on the last step).
    pub n_queried: usize,
    /// Mean uncertainty of the scored pool (see [`StepOutcome`](crate::StepOutcome)).
    pub mean_uncertainty: Option<f64>,
    /// Seconds training.
    pub train_seconds: f64,
    /// Seconds evaluating on the test set.
    pub eval_seconds: f64,
    /// Seconds MC-predicting the pool.
    pub predict_seconds: f64,
    /// Seconds ranking.
    pub rank_seconds: f64,
    /// Seconds labelling.
    pub label_seconds: f64,
    /// How many of the items queried after this step's evaluation fell in each class (by
    /// the labels they were given); empty when nothing was labelled.
    #[serde(default)]
    pub acquired_class_counts: Vec<usize>,
    /// The model's accuracy on the queried items before they were labelled (MC-averaged
    /// prediction against the label given); `None` when nothing was labelled. An informative
    /// heuristic picks items the model gets wrong far more often than test items; random
    /// picks match the test accuracy.
    #[serde(default)]
    pub acquired_accuracy: Option<f64>,
    /// The test set's classification report: per-class precision, recall, F1, PR-AUC and ECE,
    /// macro averages, top-2 and top-5 accuracy (`None` in logs written before it existed).
    #[serde(default)]
    pub test_report: Option<crate::ClassificationReport>,
    /// With calibration: the validation metrics before and after the Dirichlet map fitted
    /// for this step's model (the test metrics above are the calibrated model's).
    #[serde(default)]
    pub calibration: Option<crate::CalibrationReport>,
    /// With a stopping set ([`Experiment::with_stopping_set`](crate::Experiment::with_stopping_set)):
    /// Cohen's kappa between this step's model's predicted classes on it and the previous
    /// step's ([`cohens_kappa`](crate::cohens_kappa)), which
    /// [`PredictionStability`](crate::PredictionStability) reads; `None` at the first step
    /// and without a set (and then absent from `log.jsonl`; not in `log.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_agreement: Option<f64>,
    /// The users' own test metrics ([`Experiment::with_metric`](crate::Experiment::with_metric)),
    /// by name (in `log.jsonl`; absent when there are none; not in `log.csv`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl StepRecord {
    /// The header of `log.csv` (and of any table of [`StepRecord::csv_row`]s).
    pub const CSV_HEADER: &str = "step,n_labelled,heuristic,train_loss,test_loss,test_accuracy,test_nll,test_ece,n_queried,mean_uncertainty,train_seconds,eval_seconds,predict_seconds,rank_seconds,label_seconds,acquired_accuracy,acquired_class_counts,train_steps,validation_accuracy,test_macro_f1,test_macro_pr_auc,validation_ece_uncalibrated,validation_ece_calibrated,test_balanced_accuracy";

    /// The record as one CSV row, in the columns of [`StepRecord::CSV_HEADER`].
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{},{},{},{},{}",
            self.step,
            self.n_labelled,
            self.heuristic,
            self.train_loss,
            self.test_loss,
            self.test_accuracy,
            self.test_nll,
            self.test_ece,
            self.n_queried,
            self.mean_uncertainty
                .map(|u| format!("{u:.6}"))
                .unwrap_or_default(),
            self.train_seconds,
            self.eval_seconds,
            self.predict_seconds,
            self.rank_seconds,
            self.label_seconds,
            self.acquired_accuracy
                .map(|a| format!("{a:.4}"))
                .unwrap_or_default(),
            // Space-separated, so the column stays one CSV field.
            self.acquired_class_counts
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            self.train_steps,
            self.validation_accuracy
                .map(|a| format!("{a:.4}"))
                .unwrap_or_default(),
            self.test_report
                .as_ref()
                .map(|r| format!("{:.4}", r.macro_f1))
                .unwrap_or_default(),
            self.test_report
                .as_ref()
                .map(|r| format!("{:.4}", r.macro_pr_auc))
                .unwrap_or_default(),
            self.calibration
                .map(|c| format!("{:.4}", c.before.ece))
                .unwrap_or_default(),
            self.calibration
                .map(|c| format!("{:.4}", c.after.ece))
                .unwrap_or_default(),
            self.test_report
                .as_ref()
                .map(|r| format!("{:.4}", r.balanced_accuracy()))
                .unwrap_or_default(),
        )
    }
}

/// A metric a kind of model does not have (a regression's accuracy) is NaN in memory and `null`
/// in JSON, and reads back as NaN (JSON has no NaN, and serde refuses `null` for a number).
mod nan_as_null {
    use super::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_nan() {
            serializer.serialize_none()
        } else {
            serializer.serialize_f64(*value)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_a_model_does_not_have_is_null_in_json_and_nan_again() {
        let record = StepRecord {
            test_loss: 0.25,
            test_accuracy: f64::NAN,
            test_ece: f64::NAN,
            ..StepRecord::default()
        };
        let json = serde_json::to_string(&record).expect("json");
        assert!(
            json.contains(r#""test_accuracy":null"#) && json.contains(r#""test_ece":null"#),
            "{json}"
        );
        let read: StepRecord = serde_json::from_str(&json).expect("reads back");
        assert!(read.test_accuracy.is_nan() && read.test_ece.is_nan());
        assert_eq!(read.test_loss, 0.25);
        // Numbers stay numbers.
        let json = serde_json::to_string(&StepRecord::default()).expect("json");
        assert!(json.contains(r#""test_accuracy":0.0"#), "{json}");
    }
}
