//! What an [`Experiment`](crate::Experiment) does differently for each kind of model: how it
//! measures the trained model on the test set, which predictor the loop queries with, how a
//! saved label is compared with a given one on resume, and what it records of a labelled
//! query. Classification is [`Experiment::new`](crate::Experiment::new)'s; segmentation is
//! [`Experiment::segmentation`](crate::Experiment::segmentation)'s.

use std::sync::Arc;

use baal_bayesian::StochasticModel;
use baal_data::ActiveLearningDataset;
use baal_heuristics::Reduction;
use burn::data::dataset::Dataset;
use burn::tensor::Tensor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::active_loop::{ActiveLearningLoop, StepOutcome, predicted_classes};
use crate::error::{ActiveError, Result};
use crate::metrics::{classification_metrics, classification_report, mean_iou};
use crate::record::StepRecord;
use crate::tasks::{RegressionPredictor, SegmentationPredictor};
use crate::trainer::Trainer;
use crate::traits::{ClassLabel, Classifier, Label, Predictor, Trainable};

/// What a test item's target is, read from the item: a segmentation's class per position
/// ([`Experiment::segmentation`](crate::Experiment::segmentation)) or a regression's outputs
/// ([`Experiment::regression`](crate::Experiment::regression)).
pub type TestTarget<I, T> = Arc<dyn Fn(&I) -> T + Send + Sync>;

/// A user's test metric: MC probabilities `[N, C, T]` (host values), their dims, the classes.
pub(crate) type TestMetric = Arc<dyn Fn(&[f32], [usize; 3], &[usize]) -> f64 + Send + Sync>;

/// The `k` of the top-k accuracies each step's [`ClassificationReport`](crate::ClassificationReport)
/// logs.
pub const REPORT_TOP_K: [usize; 2] = [2, 5];

/// The part of an experiment's step that depends on the kind of model.
pub(crate) trait ExperimentTask<M: Trainable, I, L>: Send {
    /// Measures the trained model on `test` into `record`'s test fields (and `metrics`).
    fn evaluate(
        &self,
        trainer: &Trainer<M, I>,
        test: &dyn Dataset<I>,
        user_metrics: &[(String, TestMetric)],
        record: &mut StepRecord,
    ) -> Result<()>;

    /// One step of the loop with the trained model.
    fn query(
        &self,
        active: &mut ActiveLearningLoop<I, L>,
        dataset: &mut ActiveLearningDataset<I, L>,
        trainer: &Trainer<M, I>,
    ) -> Result<StepOutcome>;

    /// Whether a label saved in the run's state and one given with the dataset agree.
    fn same_label(&self, saved: &L, given: &L) -> bool;

    /// What the record keeps of a labelled query beyond the loop's own fields (nothing by
    /// default: a segmentation or regression query has no class per item).
    fn record_query(
        &self,
        trainer: &Trainer<M, I>,
        dataset: &ActiveLearningDataset<I, L>,
        outcome: &StepOutcome,
        record: &mut StepRecord,
    ) -> Result<()> {
        let _ = (trainer, dataset, outcome, record);
        Ok(())
    }

    /// The trained model's class of each item of `set` (a stopping set's); an error for a
    /// model without a class per item (the default).
    fn predicted_classes(
        &self,
        trainer: &Trainer<M, I>,
        set: &dyn Dataset<I>,
    ) -> Result<Vec<usize>> {
        let _ = (trainer, set);
        Err(ActiveError::InvalidConfig {
            what: "stopping set",
            reason: "only a classifier has a class per item to compare".into(),
        })
    }

    /// Whether users' metrics of `[N, C, T]` probabilities and classes apply (not to a
    /// regression).
    fn takes_metrics(&self) -> bool {
        true
    }

    /// What `curve.svg` plots: its title, the y axis and the value of a record.
    fn curve(&self) -> (&'static str, &'static str, fn(&StepRecord) -> f64) {
        ("test accuracy", "accuracy", |record| record.test_accuracy)
    }
}

/// Classifiers of whole items: the test metrics and report, the users' metrics, the query's
/// class histogram and the model's accuracy on it.
pub(crate) struct ClassificationTask<I> {
    /// The class of a test item.
    pub(crate) test_label: Arc<dyn Fn(&I) -> usize + Send + Sync>,
}

impl<M, I, L> ExperimentTask<M, I, L> for ClassificationTask<I>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
    L: ClassLabel + Serialize + DeserializeOwned,
{
    fn evaluate(
        &self,
        trainer: &Trainer<M, I>,
        test: &dyn Dataset<I>,
        user_metrics: &[(String, TestMetric)],
        record: &mut StepRecord,
    ) -> Result<()> {
        // One prediction of the test set for every metric, built in or the users'.
        let (values, dims, labels) = trainer.test_predictions(test, self.test_label.as_ref())?;
        let metrics = classification_metrics(&values, dims, &labels)?;
        record.test_report = Some(classification_report(
            &values,
            dims,
            &labels,
            &REPORT_TOP_K,
        )?);
        record.metrics = user_metrics
            .iter()
            .map(|(name, metric)| (name.clone(), metric(&values, dims, &labels)))
            .collect();
        record.test_loss = metrics.loss;
        record.test_accuracy = metrics.accuracy;
        record.test_nll = metrics.nll;
        record.test_ece = metrics.ece;
        Ok(())
    }

    fn query(
        &self,
        active: &mut ActiveLearningLoop<I, L>,
        dataset: &mut ActiveLearningDataset<I, L>,
        trainer: &Trainer<M, I>,
    ) -> Result<StepOutcome> {
        active.step(dataset, trainer)
    }

    fn same_label(&self, saved: &L, given: &L) -> bool {
        saved.class_index() == given.class_index()
    }

    fn record_query(
        &self,
        trainer: &Trainer<M, I>,
        dataset: &ActiveLearningDataset<I, L>,
        outcome: &StepOutcome,
        record: &mut StepRecord,
    ) -> Result<()> {
        let mut counts = vec![0; trainer.model().num_classes()];
        let mut correct = 0;
        for (&index, predicted) in outcome
            .query
            .iter()
            .zip(outcome.query_predicted_classes.iter().copied())
        {
            let Some(label) = dataset.label_of(index)? else {
                continue;
            };
            let class = label.class_index();
            if let Some(count) = counts.get_mut(class) {
                *count += 1;
            }
            correct += usize::from(class == predicted);
        }
        let labelled: usize = counts.iter().sum();
        record.acquired_class_counts = counts;
        record.acquired_accuracy = (labelled > 0).then(|| correct as f64 / labelled as f64);
        Ok(())
    }

    fn predicted_classes(
        &self,
        trainer: &Trainer<M, I>,
        set: &dyn Dataset<I>,
    ) -> Result<Vec<usize>> {
        predicted_classes(trainer.predict(&trainer.eval_sampler()?, set)?)
    }
}

/// Segmentation models (head output `[rows, C, P]`, a class at each of `P` positions): the
/// test metrics of every position, mean IoU, and the loop scoring the model's per-position
/// predictions folded by `reduction`.
pub(crate) struct SegmentationTask<I> {
    /// The class of each position of a test item.
    pub(crate) test_target: TestTarget<I, Vec<usize>>,
    /// How the loop folds an item's per-position scores into one.
    pub(crate) reduction: Reduction,
}

impl<I> SegmentationTask<I> {
    /// The trainer's model as the loop's segmentation predictor.
    fn predictor<M>(&self, trainer: &Trainer<M, I>) -> SegmentationPredictor<M, I>
    where
        M: Trainable + StochasticModel<Output = Tensor<3>>,
        I: Clone + Send + Sync + 'static,
    {
        SegmentationPredictor {
            predictor: trainer.inference_predictor(trainer.model()),
            reduction: self.reduction,
        }
    }
}

impl<M, I, L> ExperimentTask<M, I, L> for SegmentationTask<I>
where
    M: Trainable<Target = Vec<usize>> + StochasticModel<Output = Tensor<3>>,
    I: Clone + Send + Sync + 'static,
    L: Label<Vec<usize>> + PartialEq + Serialize + DeserializeOwned,
{
    /// Every position of every test item is one prediction: loss, accuracy, NLL and ECE over
    /// the positions (the record's test fields), and `metrics["mean_iou"]`, the mean over the
    /// classes present in the truth or the prediction of `TP / (TP + FP + FN)` of the
    /// MC-averaged per-position classes.
    fn evaluate(
        &self,
        trainer: &Trainer<M, I>,
        test: &dyn Dataset<I>,
        user_metrics: &[(String, TestMetric)],
        record: &mut StepRecord,
    ) -> Result<()> {
        let probs = self
            .predictor(trainer)
            .predict_segmentation(&trainer.eval_sampler()?, test)?;
        let [n, classes, positions, iterations] = probs.dims();
        let labels = read_targets(test, n, &self.test_target, |target: &Vec<usize>| {
            (target.len() != positions || target.iter().any(|&c| c >= classes)).then(|| {
                format!(
                    "{} target positions (classes up to {:?}) where the model predicts \
                     {positions} positions of {classes} classes",
                    target.len(),
                    target.iter().max()
                )
            })
        })?
        .concat();
        // [N, C, P, T] → [N·P, C, T]: each position one prediction.
        let values = probs
            .permute([0, 2, 1, 3])
            .reshape([n * positions, classes, iterations])
            .try_into_vec_as::<f32>()
            .map_err(|e| ActiveError::InvalidConfig {
                what: "test predictions",
                reason: format!("cannot read them back from the device: {e:?}"),
            })?;
        let dims = [n * positions, classes, iterations];
        let metrics = classification_metrics(&values, dims, &labels)?;
        record.metrics = user_metrics
            .iter()
            .map(|(name, metric)| (name.clone(), metric(&values, dims, &labels)))
            .collect();
        let predicted: Vec<usize> = values
            .chunks(classes * iterations)
            .map(|block| {
                (0..classes)
                    .map(|c| {
                        block[c * iterations..(c + 1) * iterations]
                            .iter()
                            .sum::<f32>()
                    })
                    .enumerate()
                    .fold(
                        (0, f32::MIN),
                        |best, (c, p)| if p > best.1 { (c, p) } else { best },
                    )
                    .0
            })
            .collect();
        record.test_loss = metrics.loss;
        record.test_accuracy = metrics.accuracy;
        record.test_nll = metrics.nll;
        record.test_ece = metrics.ece;
        record
            .metrics
            .insert("mean_iou".into(), mean_iou(&predicted, &labels, classes));
        Ok(())
    }

    fn query(
        &self,
        active: &mut ActiveLearningLoop<I, L>,
        dataset: &mut ActiveLearningDataset<I, L>,
        trainer: &Trainer<M, I>,
    ) -> Result<StepOutcome> {
        active.step(dataset, &self.predictor(trainer))
    }

    fn same_label(&self, saved: &L, given: &L) -> bool {
        saved == given
    }
}

/// The target of each of the `n` items of `test`, each checked by `invalid` (a reason, or
/// `None` for a good one).
///
/// # Errors
/// An item that cannot be read, or a target `invalid` refuses (naming the item).
fn read_targets<I, T>(
    test: &dyn Dataset<I>,
    n: usize,
    target_of: &TestTarget<I, T>,
    invalid: impl Fn(&T) -> Option<String>,
) -> Result<Vec<T>> {
    (0..n)
        .map(|item| {
            let input = test.get(item).map_err(|e| ActiveError::InvalidConfig {
                what: "test set",
                reason: format!("item {item} of {n} cannot be read: {e}"),
            })?;
            let target = target_of(&input);
            match invalid(&target) {
                Some(reason) => Err(ActiveError::InvalidConfig {
                    what: "test targets",
                    reason: format!("test item {item} has {reason}"),
                }),
                None => Ok(target),
            }
        })
        .collect()
}

/// Regression models (head output `[rows, O]`, `O` real outputs): the mean squared error and
/// the Gaussian NLL of the MC outputs on the test set, the loop scoring them with the
/// variance heuristic.
pub(crate) struct RegressionTask<I> {
    /// The `O` true outputs of a test item.
    pub(crate) test_target: TestTarget<I, Vec<f32>>,
}

/// The smallest MC variance the Gaussian NLL divides by (a deterministic model's is 0).
const MIN_VARIANCE: f64 = 1e-6;

impl<M, I, L> ExperimentTask<M, I, L> for RegressionTask<I>
where
    M: Trainable<Target = Vec<f32>> + StochasticModel<Output = Tensor<2>>,
    I: Clone + Send + Sync + 'static,
    L: Label<Vec<f32>> + PartialEq + Serialize + DeserializeOwned,
{
    /// `test_loss` and `metrics["mse"]`: the mean over items and outputs of `(y − μ)²`, `μ`
    /// the mean of the `T` MC outputs; `test_nll`: the mean of
    /// `½ ln(2π σ²) + (y − μ)² / (2 σ²)`, `σ²` their variance (at least 1e-6);
    /// `test_accuracy` and `test_ece`: NaN (`null` in the logs).
    fn evaluate(
        &self,
        trainer: &Trainer<M, I>,
        test: &dyn Dataset<I>,
        _: &[(String, TestMetric)],
        record: &mut StepRecord,
    ) -> Result<()> {
        let predictor = RegressionPredictor(trainer.inference_predictor(trainer.model()));
        let outputs = predictor.predict(&trainer.eval_sampler()?, test)?;
        let [n, width, iterations] = outputs.dims();
        let values = outputs
            .try_into_vec_as::<f32>()
            .map_err(|e| ActiveError::InvalidConfig {
                what: "test predictions",
                reason: format!("cannot read them back from the device: {e:?}"),
            })?;
        let targets = read_targets(test, n, &self.test_target, |target: &Vec<f32>| {
            (target.len() != width || target.iter().any(|y| !y.is_finite()))
                .then(|| format!("the targets {target:?} where the model gives {width} outputs"))
        })?;
        let (mut squared, mut nll) = (0.0f64, 0.0f64);
        for (item, target) in targets.iter().enumerate() {
            for (output, &y) in target.iter().enumerate() {
                let start = (item * width + output) * iterations;
                let samples = &values[start..start + iterations];
                let mean = samples.iter().map(|&v| f64::from(v)).sum::<f64>() / iterations as f64;
                let variance = (samples
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / iterations as f64)
                    .max(MIN_VARIANCE);
                let error = (f64::from(y) - mean).powi(2);
                squared += error;
                nll +=
                    0.5 * (2.0 * std::f64::consts::PI * variance).ln() + error / (2.0 * variance);
            }
        }
        let count = (n * width) as f64;
        record.test_loss = squared / count;
        record.test_nll = nll / count;
        record.test_accuracy = f64::NAN;
        record.test_ece = f64::NAN;
        record.metrics.insert("mse".into(), record.test_loss);
        Ok(())
    }

    fn query(
        &self,
        active: &mut ActiveLearningLoop<I, L>,
        dataset: &mut ActiveLearningDataset<I, L>,
        trainer: &Trainer<M, I>,
    ) -> Result<StepOutcome> {
        active.step(
            dataset,
            &RegressionPredictor(trainer.inference_predictor(trainer.model())),
        )
    }

    fn same_label(&self, saved: &L, given: &L) -> bool {
        saved == given
    }

    fn takes_metrics(&self) -> bool {
        false
    }

    fn curve(&self) -> (&'static str, &'static str, fn(&StepRecord) -> f64) {
        ("test mean squared error", "MSE", |record| record.test_loss)
    }
}
