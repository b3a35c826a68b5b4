//! Experiments: steps until a criterion stops them, with JSONL/CSV logs, a learning-curve plot
//! and resumption after a crash.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use baal_bayesian::StochasticModel;
use baal_data::{ActiveLearningDataset, DatasetIndex};
use baal_heuristics::Reduction;
use burn::data::dataset::Dataset;
use burn::tensor::Tensor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::active_loop::ActiveLearningLoop;
use crate::error::{ActiveError, Result};
use crate::experiment_task::{
    ClassificationTask, ExperimentTask, RegressionTask, SegmentationTask, TestMetric, TestTarget,
};
use crate::plot::{Curve, plot_learning_curves};
use crate::record::StepRecord;
use crate::run_state::{ExperimentProgress, RunState};
use crate::stopping::cohens_kappa;
use crate::trainer::Trainer;
use crate::traits::{ClassLabel, Classifier, Label, StoppingCriterion, Trainable};

/// Why an experiment stops while its query waits for a person.
const WAITS_FOR_LABELS: &str = "the query waits for labels";

/// How an experiment run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct ExperimentSummary {
    /// Every step, including those of earlier (resumed) runs.
    pub records: Vec<StepRecord>,
    /// Why it stopped; `None` when [`Experiment::run_steps`] returned before the end.
    pub stop_reason: Option<String>,
    /// Whether it continued a run found in its folder.
    pub resumed: bool,
}

/// Train, evaluate, query, label, log — step after step until a [`StoppingCriterion`], the
/// step limit, an exhausted pool or pending labels stop it.
///
/// Its folder holds `state.json` (the [`RunState`]: the dataset state, the loop's state with
/// any query that waits for labels, the step records and, when the trainer keeps its weights
/// between steps, the name of the weights file), `log.jsonl` and `log.csv`
/// (one line per step) and `curve.svg`. The state is saved atomically after each step; a new
/// `Experiment` on the same folder resumes after the last finished step.
///
/// [`Experiment::new`] runs a classifier; [`Experiment::segmentation`] a segmentation model,
/// measured per position with mean IoU.
pub struct Experiment<M: Trainable, I, L> {
    dir: PathBuf,
    trainer: Trainer<M, I>,
    active: ActiveLearningLoop<I, L>,
    dataset: ActiveLearningDataset<I, L>,
    test: Arc<dyn Dataset<I>>,
    /// What depends on the kind of model: the test metrics, the loop's predictor, ...
    task: Box<dyn ExperimentTask<M, I, L>>,
    criteria: Vec<Box<dyn StoppingCriterion>>,
    metrics: Vec<(String, TestMetric)>,
    stopping_set: Option<Arc<dyn Dataset<I>>>,
    /// The last step's predicted classes on the stopping set.
    stopping_predictions: Option<Vec<usize>>,
    max_steps: Option<usize>,
    records: Vec<StepRecord>,
    weights: Option<String>,
    pending_removal: Option<String>,
    finished: Option<String>,
    resumed: bool,
}

impl<M, I, L> Experiment<M, I, L>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
    L: ClassLabel + Serialize + DeserializeOwned,
{
    /// An experiment in folder `dir` (created if needed), resuming the run saved there if any.
    ///
    /// `dataset` holds the initial labels; on resume its state is replaced by the saved one.
    /// `test_label` reads the class of a test item.
    ///
    /// # Errors
    /// The loop has a checkpoint of its own (the experiment saves the run state in its
    /// folder), the folder cannot be created, or it holds a run of another heuristic, query
    /// size or dataset, or an unreadable state.
    pub fn new(
        dir: impl Into<PathBuf>,
        trainer: Trainer<M, I>,
        active: ActiveLearningLoop<I, L>,
        dataset: ActiveLearningDataset<I, L>,
        test: Arc<dyn Dataset<I>>,
        test_label: Arc<dyn Fn(&I) -> usize + Send + Sync>,
    ) -> Result<Self> {
        Self::with_task(
            dir.into(),
            trainer,
            active,
            dataset,
            test,
            Box::new(ClassificationTask { test_label }),
        )
    }

    /// Measures, after each step's training, how much the model's predictions on `set` (held-out
    /// items, no labels needed) agree with the previous step's model's: Cohen's kappa between
    /// their MC-averaged predicted classes (the evaluation's samples), logged as
    /// [`StepRecord::prediction_agreement`] and read by
    /// [`PredictionStability`](crate::PredictionStability) to stop labelling without labels.
    /// The last predictions are saved with the run, so a resumed run compares as the original
    /// would have; resume with the same set.
    pub fn with_stopping_set(mut self, set: Arc<dyn Dataset<I>>) -> Self {
        self.stopping_set = Some(set);
        self
    }
}

impl<M, I, L> Experiment<M, I, L>
where
    M: Trainable<Target = Vec<usize>> + StochasticModel<Output = Tensor<3>>,
    I: Clone + Send + Sync + 'static,
    L: Label<Vec<usize>> + PartialEq + Serialize + DeserializeOwned,
{
    /// An experiment of a segmentation model (head output `[rows, C, P]`: a class at each of
    /// `P` positions) in folder `dir`, resuming the run saved there if any. `test_target`
    /// reads the class of each position of a test item. Each step's record holds the test
    /// loss, accuracy, NLL and ECE over every position of every test item and
    /// `metrics["mean_iou"]` (mean over the classes present of `TP / (TP + FP + FN)`); the
    /// loop scores the model's per-position predictions folded by `reduction` (baal's
    /// `reduction`). Stopping criteria, the step limit, pending queries and resume work as
    /// for a classifier; a query records no class histogram.
    ///
    /// # Errors
    /// As [`Experiment::new`].
    pub fn segmentation(
        dir: impl Into<PathBuf>,
        trainer: Trainer<M, I>,
        active: ActiveLearningLoop<I, L>,
        dataset: ActiveLearningDataset<I, L>,
        test: Arc<dyn Dataset<I>>,
        test_target: TestTarget<I, Vec<usize>>,
        reduction: Reduction,
    ) -> Result<Self> {
        Self::with_task(
            dir.into(),
            trainer,
            active,
            dataset,
            test,
            Box::new(SegmentationTask {
                test_target,
                reduction,
            }),
        )
    }
}

impl<M, I, L> Experiment<M, I, L>
where
    M: Trainable<Target = Vec<f32>> + StochasticModel<Output = Tensor<2>>,
    I: Clone + Send + Sync + 'static,
    L: Label<Vec<f32>> + PartialEq + Serialize + DeserializeOwned,
{
    /// An experiment of a regression model (head output `[rows, O]`) in folder `dir`, resuming
    /// the run saved there if any. `test_target` reads the `O` true outputs of a test item.
    /// Each step's record holds the test mean squared error of the MC-averaged outputs as
    /// `test_loss` (and `metrics["mse"]`) and the Gaussian NLL of the MC mean and variance as
    /// `test_nll`; `test_accuracy` and `test_ece` are NaN (`null` in the logs), and
    /// `curve.svg` plots the MSE. The loop scores the MC outputs (the variance heuristic).
    /// Stopping criteria (e.g. [`EarlyStopping`](crate::EarlyStopping) on
    /// [`Metric::TestLoss`](crate::Metric::TestLoss)), the step limit, pending queries and
    /// resume work as for a classifier.
    ///
    /// # Errors
    /// As [`Experiment::new`].
    pub fn regression(
        dir: impl Into<PathBuf>,
        trainer: Trainer<M, I>,
        active: ActiveLearningLoop<I, L>,
        dataset: ActiveLearningDataset<I, L>,
        test: Arc<dyn Dataset<I>>,
        test_target: TestTarget<I, Vec<f32>>,
    ) -> Result<Self> {
        Self::with_task(
            dir.into(),
            trainer,
            active,
            dataset,
            test,
            Box::new(RegressionTask { test_target }),
        )
    }
}

impl<M, I, L> Experiment<M, I, L>
where
    M: Trainable,
    I: Clone + Send + Sync + 'static,
    L: Label<M::Target> + Serialize + DeserializeOwned,
{
    /// An experiment of `task` in `dir`, resumed if a run is saved there.
    fn with_task(
        dir: PathBuf,
        trainer: Trainer<M, I>,
        active: ActiveLearningLoop<I, L>,
        dataset: ActiveLearningDataset<I, L>,
        test: Arc<dyn Dataset<I>>,
        task: Box<dyn ExperimentTask<M, I, L>>,
    ) -> Result<Self> {
        if active.has_checkpoint() {
            return Err(ActiveError::InvalidConfig {
                what: "checkpoint",
                reason: "the experiment saves the run state in its folder: build the loop \
                         without with_checkpoint"
                    .into(),
            });
        }
        fs::create_dir_all(&dir).map_err(|e| ActiveError::io(&dir, e))?;
        let mut experiment = Self {
            dir,
            trainer,
            active,
            dataset,
            test,
            task,
            criteria: Vec::new(),
            metrics: Vec::new(),
            stopping_set: None,
            stopping_predictions: None,
            max_steps: None,
            records: Vec::new(),
            weights: None,
            pending_removal: None,
            finished: None,
            resumed: false,
        };
        experiment.resume()?;
        Ok(experiment)
    }

    /// Computes `metric` on the test set after each step's training and logs it under `name` in
    /// the step's record ([`StepRecord::metrics`]), beside the built-in ones (baal's
    /// `add_metric`). It gets what the built-in metrics get: the test set's MC probabilities
    /// `[N, C, T]` on the host, their dims, and each item's class (a segmentation
    /// experiment's: every position of every item as one, `N` the positions); so
    /// [`classification_metrics`](crate::classification_metrics) and
    /// [`classification_report`](crate::classification_report) are metrics of this form too.
    /// Stopping criteria see the record, metrics included.
    ///
    /// For example the share of test items whose MC-averaged top class is class 0:
    /// `experiment.with_metric("predicted_class0", |probs, [n, c, t], _| { ... })?`.
    ///
    /// # Errors
    /// An empty name, or one already given; a regression experiment (its outputs have no
    /// classes).
    pub fn with_metric(
        mut self,
        name: impl Into<String>,
        metric: impl Fn(&[f32], [usize; 3], &[usize]) -> f64 + Send + Sync + 'static,
    ) -> Result<Self> {
        let name = name.into();
        if !self.task.takes_metrics() {
            return Err(ActiveError::InvalidConfig {
                what: "metric",
                reason: format!(
                    "{name:?} would read class probabilities and classes, which a regression \
                     experiment does not have (its record holds the MSE and the Gaussian NLL)"
                ),
            });
        }
        if name.is_empty() || self.metrics.iter().any(|(known, _)| *known == name) {
            return Err(ActiveError::InvalidConfig {
                what: "metric name",
                reason: format!("must be non-empty and unique, got {name:?}"),
            });
        }
        self.metrics.push((name, Arc::new(metric)));
        Ok(self)
    }

    /// Adds a stopping criterion.
    pub fn with_criterion(mut self, criterion: impl StoppingCriterion + 'static) -> Self {
        self.criteria.push(Box::new(criterion));
        self
    }

    /// Stops after `max_steps` steps (trainings) in all.
    pub fn with_max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = Some(max_steps);
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The steps so far.
    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    /// The dataset.
    pub fn dataset(&self) -> &ActiveLearningDataset<I, L> {
        &self.dataset
    }

    /// Whether this experiment continued a run found in its folder.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The query that waits for a person's labels (empty unless the loop's oracle left it
    /// pending, e.g. [`PendingQueue`](crate::PendingQueue)).
    pub fn pending(&self) -> &[DatasetIndex] {
        self.active.pending()
    }

    /// Records a person's labels for pending items, and returns once they are saved (the
    /// experiment's state is written atomically). When the whole query is labelled, the next
    /// [`run`](Self::run) goes on with the next step. Labels may also be given to the dataset
    /// passed to [`Experiment::new`] while the experiment is not running: resuming keeps them.
    ///
    /// # Errors
    /// A label for an item that is not pending, two labels for one item (nothing is labelled
    /// then), a label the dataset refuses, or the state cannot be saved.
    pub fn label(&mut self, labels: impl IntoIterator<Item = (DatasetIndex, L)>) -> Result<()> {
        self.active.label(&mut self.dataset, labels)?;
        if self.active.pending().is_empty() && self.finished.as_deref() == Some(WAITS_FOR_LABELS) {
            self.finished = None;
        }
        self.save_state()
    }

    /// Every label the dataset holds, with its item.
    fn given_labels(&self) -> Result<Vec<(DatasetIndex, L)>> {
        let mut given = Vec::new();
        for index in self.dataset.labelled_dataset_indices() {
            if let Some(label) = self.dataset.label_of(index)? {
                given.push((index, label.clone()));
            }
        }
        Ok(given)
    }

    /// Of the labels `given` with the dataset, those that answer the restored pending query;
    /// a label the saved state contradicts, or one for an item nobody queried, is the reason
    /// to refuse the resume.
    fn answers_among(
        &self,
        given: Vec<(DatasetIndex, L)>,
    ) -> std::result::Result<Vec<(DatasetIndex, L)>, String> {
        let mut answers = Vec::new();
        for (index, label) in given {
            match self.dataset.label_of(index).map_err(|e| e.to_string())? {
                Some(saved) if self.task.same_label(saved, &label) => {}
                Some(saved) => {
                    let text = |label: &L| serde_json::to_string(label).unwrap_or_default();
                    return Err(format!(
                        "item {index} is labelled {} in the saved state but {} in the dataset \
                         given",
                        text(saved),
                        text(&label)
                    ));
                }
                None if self.active.pending().contains(&index) => answers.push((index, label)),
                None => {
                    return Err(format!(
                        "item {index} is labelled in the dataset given but neither in the saved \
                         state nor in its pending query; label pending items only \
                         (Experiment::pending)"
                    ));
                }
            }
        }
        Ok(answers)
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn resume(&mut self) -> Result<()> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(());
        }
        let state = RunState::<L>::load(&path)?;
        let refuse = |reason: String| ActiveError::Resume {
            path: self.dir.clone(),
            reason,
        };
        let Some(progress) = state.experiment else {
            return Err(refuse(
                "it holds the state of a loop run on its own, not of an experiment".into(),
            ));
        };
        self.active.restore(state.active).map_err(refuse)?;
        // Labels the caller's dataset holds (the initial ones, and any a person gave while
        // the query waited): the saved state replaces the dataset, then they are checked
        // against it so that none is lost.
        let given = self.given_labels()?;
        self.dataset.restore(state.dataset)?;
        let answers = self.answers_among(given).map_err(refuse)?;
        if let Some(name) = &progress.weights {
            self.trainer.load_weights(&self.dir.join(name))?;
        }
        self.trainer.set_fit_count(progress.records.len() as u64);
        self.records = progress.records;
        self.weights = progress.weights;
        self.finished = progress.finished;
        self.stopping_predictions = progress.stopping_predictions;
        self.resumed = true;
        if !answers.is_empty() {
            self.label(answers)?;
        }
        // Lines of a step that crashed before its state was saved go away.
        self.write_logs()?;
        tracing::info!(
            dir = %self.dir.display(),
            steps = self.records.len(),
            "resumed experiment"
        );
        Ok(())
    }

    /// Runs steps until the experiment stops.
    ///
    /// # Errors
    /// Training, prediction, labelling or file errors; finished steps stay saved.
    pub fn run(&mut self) -> Result<ExperimentSummary> {
        self.run_steps(usize::MAX)
    }

    /// Runs at most `steps` more steps (then returns, as after an interruption).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_steps(&mut self, steps: usize) -> Result<ExperimentSummary> {
        let mut done = 0;
        while self.finished.is_none() && done < steps {
            self.step()?;
            done += 1;
        }
        Ok(ExperimentSummary {
            records: self.records.clone(),
            stop_reason: self.finished.clone(),
            resumed: self.resumed,
        })
    }

    fn step(&mut self) -> Result<()> {
        let step = self.records.len();
        let labelled = self.active.training_set(&self.dataset)?;
        let fit = self.trainer.fit(&labelled)?;
        if !self.trainer.config().reset_weights {
            let name = format!("model-step{step}.bpk");
            self.trainer.save_weights(&self.dir.join(&name))?;
            if let Some(old) = self.weights.replace(name) {
                // The new state names the new file; the old one is removed after saving.
                self.pending_removal = Some(old);
            }
        }
        let started = Instant::now();
        let mut record = StepRecord {
            step,
            n_labelled: self.dataset.n_labelled(),
            n_trained: self.active.last_active_steps().map(|_| labelled.len()),
            heuristic: self.active.heuristic_name().to_string(),
            train_loss: fit.train_loss,
            train_steps: fit.gradient_steps,
            validation_accuracy: fit.validation.map(|(metrics, _)| metrics.accuracy),
            calibration: fit.calibration,
            train_seconds: fit.seconds,
            ..StepRecord::default()
        };
        self.task.evaluate(
            &self.trainer,
            self.test.as_ref(),
            &self.metrics,
            &mut record,
        )?;
        record.eval_seconds = started.elapsed().as_secs_f64();
        record.prediction_agreement = self.prediction_agreement()?;
        self.records.push(record.clone());
        let mut stop = self
            .criteria
            .iter()
            .find_map(|c| c.should_stop(&self.records));
        if stop.is_none() && self.max_steps.is_some_and(|max| self.records.len() >= max) {
            stop = Some(format!("step limit reached ({} steps)", self.records.len()));
        }
        if stop.is_none() {
            let outcome = self
                .task
                .query(&mut self.active, &mut self.dataset, &self.trainer)?;
            record.n_queried = outcome.query.len();
            record.mean_uncertainty = outcome.mean_uncertainty;
            record.predict_seconds = outcome.predict_seconds;
            record.rank_seconds = outcome.rank_seconds;
            record.label_seconds = outcome.label_seconds;
            // A labelled query that emptied the pool still gets its training step; the next
            // step finds the pool empty and stops.
            if outcome.labelled {
                self.task
                    .record_query(&self.trainer, &self.dataset, &outcome, &mut record)?;
            }
            if outcome.query.is_empty() {
                stop = Some("the pool is exhausted".into());
            } else if !outcome.labelled {
                stop = Some(WAITS_FOR_LABELS.into());
            }
        }
        tracing::info!(
            step,
            n_labelled = record.n_labelled,
            accuracy = record.test_accuracy,
            heuristic = %record.heuristic,
            "experiment step"
        );
        *self.records.last_mut().expect("pushed above") = record.clone();
        self.finished = stop;
        self.save_state()?;
        if let Some(old) = self.pending_removal.take() {
            let _ = fs::remove_file(self.dir.join(old));
        }
        self.append_logs(&record)?;
        self.plot()?;
        Ok(())
    }

    /// The agreement of this step's model with the previous one's on the stopping set (and
    /// this step's predictions kept for the next); `None` without a set or at its first step.
    fn prediction_agreement(&mut self) -> Result<Option<f64>> {
        let Some(set) = &self.stopping_set else {
            return Ok(None);
        };
        let classes = self.task.predicted_classes(&self.trainer, set.as_ref())?;
        let agreement = match &self.stopping_predictions {
            Some(previous) if previous.len() != classes.len() => {
                return Err(ActiveError::InvalidConfig {
                    what: "stopping set",
                    reason: format!(
                        "it has {} items, the run's saved predictions {}: resume with the same set",
                        classes.len(),
                        previous.len()
                    ),
                });
            }
            Some(previous) => Some(cohens_kappa(previous, &classes)?),
            None => None,
        };
        self.stopping_predictions = Some(classes);
        Ok(agreement)
    }

    fn save_state(&self) -> Result<()> {
        let progress = ExperimentProgress {
            records: self.records.clone(),
            weights: self.weights.clone(),
            finished: self.finished.clone(),
            stopping_predictions: self.stopping_predictions.clone(),
        };
        RunState::new(self.active.state(), self.dataset.state(), Some(progress))
            .save(&self.state_path())
    }

    fn write_logs(&self) -> Result<()> {
        let jsonl: String = self
            .records
            .iter()
            .map(|r| serde_json::to_string(r).map(|line| line + "\n"))
            .collect::<std::result::Result<_, _>>()?;
        write_file(&self.dir.join("log.jsonl"), &jsonl)?;
        let mut csv = format!("{}\n", StepRecord::CSV_HEADER);
        for record in &self.records {
            csv.push_str(&record.csv_row());
            csv.push('\n');
        }
        write_file(&self.dir.join("log.csv"), &csv)?;
        if !self.records.is_empty() {
            self.plot()?;
        }
        Ok(())
    }

    fn append_logs(&self, record: &StepRecord) -> Result<()> {
        let csv = self.dir.join("log.csv");
        if !csv.exists() {
            append_line(&csv, StepRecord::CSV_HEADER)?;
        }
        append_line(&csv, &record.csv_row())?;
        append_line(&self.dir.join("log.jsonl"), &serde_json::to_string(record)?)
    }

    fn plot(&self) -> Result<()> {
        let (title, axis, value) = self.task.curve();
        let curve = Curve {
            name: self.active.heuristic_name().to_string(),
            points: self
                .records
                .iter()
                .map(|r| (r.n_labelled as f64, value(r), 0.0))
                .collect(),
        };
        plot_learning_curves(&self.dir.join("curve.svg"), title, axis, &[curve])
    }
}

/// Writes a log file whole or not at all: a crash while writing leaves the previous one.
fn write_file(path: &Path, text: &str) -> Result<()> {
    Ok(baal_data::write_file_atomically(path, text.as_bytes())?)
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ActiveError::io(path, e))?;
    writeln!(file, "{line}").map_err(|e| ActiveError::io(path, e))
}
