//! The trainer: fits a classifier on the labelled view on an autodiff device, evaluates it on a
//! test set, and MC-predicts datasets for the loop (baal's `ModelWrapper`, the Burn way).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use baal_bayesian::{
    McPredictions, McSampler, McSamplerConfig, Progress, ProgressSink, StochasticModel,
};
use baal_data::LabelledItem;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::calibration::{CalibrationReport, DirichletCalibrator, DirichletCalibratorConfig};
use crate::ensemble::{EnsemblePredictor, member_sampler};
use crate::error::{ActiveError, Result};
use crate::metrics::{EvalMetrics, classification_metrics};
use crate::traits::{Classifier, InputBatcher, Label, Predictor, Trainable};

mod config;

pub use config::{EarlyStoppingConfig, OptimizerConfig, TrainerConfig, ValidationMetric};

/// Early stopping's bookkeeping during one fit: the best weights so far, their metrics and
/// step, and how many checks have passed since they improved.
struct BestWeights<'a, M> {
    config: Option<&'a EarlyStoppingConfig>,
    /// Gradient steps between checks.
    every: usize,
    best: Option<(EvalMetrics, usize, M)>,
    since_best: usize,
    checked_at: usize,
    stopped: bool,
}

impl<'a, M: Clone> BestWeights<'a, M> {
    fn new(config: Option<&'a EarlyStoppingConfig>, steps_per_pass: usize) -> Self {
        let every = match config.map(|c| c.check_every) {
            Some(0) | None => steps_per_pass,
            Some(every) => every,
        };
        Self {
            config,
            every: every.max(1),
            best: None,
            since_best: 0,
            checked_at: 0,
            stopped: false,
        }
    }

    /// Whether early stopping is on.
    fn watching(&self) -> bool {
        self.config.is_some()
    }

    /// Whether a check is due after gradient step `step`.
    fn due(&self, step: usize) -> bool {
        self.watching() && step.is_multiple_of(self.every)
    }

    /// Validates `model` after gradient step `step`; keeps it if it is the best so far, and
    /// stops once `patience` checks in a row brought no improvement.
    fn check<I>(&mut self, trainer: &Trainer<M, I>, model: &M, step: usize) -> Result<()>
    where
        M: Trainable,
        I: Clone + Send + Sync + 'static,
    {
        let (Some(config), Some(validation)) = (self.config, trainer.validation.as_ref()) else {
            return Ok(());
        };
        self.checked_at = step;
        let metrics = (validation.metrics)(trainer, model, validation)?;
        if self
            .best
            .as_ref()
            .is_none_or(|(best, ..)| config.improves(&metrics, best))
        {
            self.best = Some((metrics, step, model.clone()));
            self.since_best = 0;
        } else {
            self.since_best += 1;
            self.stopped = self.since_best >= config.patience;
        }
        Ok(())
    }

    /// Puts the best weights into `model`; their metrics and step, if any check ran.
    fn take_into(self, model: &mut M) -> Option<(EvalMetrics, usize)> {
        let (metrics, step, best) = self.best?;
        *model = best;
        Some((metrics, step))
    }
}

/// What one [`Trainer::fit`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Mean training loss (cross-entropy) over the last epoch.
    pub train_loss: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Gradient steps run.
    pub gradient_steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// With early stopping: the validation metrics of the weights kept, and the gradient step
    /// after which they were taken.
    #[serde(default)]
    pub validation: Option<(EvalMetrics, usize)>,
    /// With calibration ([`Trainer::with_calibration`]): the validation metrics before and
    /// after the map fitted after this fit.
    #[serde(default)]
    pub calibration: Option<CalibrationReport>,
}

impl FitReport {
    /// The report of an ensemble's fit from its members': the mean of their losses, the most
    /// epochs any ran, the gradient steps of all, the first member's validation (one member:
    /// its report).
    fn of_members(mut reports: Vec<FitReport>, seconds: f64) -> Self {
        if reports.len() == 1 {
            let mut report = reports.pop().expect("one report");
            report.seconds = seconds;
            return report;
        }
        let members = reports.len() as f64;
        Self {
            train_loss: reports.iter().map(|r| r.train_loss).sum::<f64>() / members,
            epochs: reports.iter().map(|r| r.epochs).max().unwrap_or(0),
            gradient_steps: reports.iter().map(|r| r.gradient_steps).sum(),
            seconds,
            validation: reports.swap_remove(0).validation,
            calibration: None,
        }
    }
}

/// The seed of member `member` in a fit seeded `fit_seed`: the fit's seed for the first
/// member, far-apart seeds for the others.
fn member_seed(fit_seed: u64, member: usize) -> u64 {
    fit_seed.wrapping_add((member as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A model trained elsewhere, its batcher and its inference device, as a [`Predictor`].
pub struct ModelPredictor<M: StochasticModel, I> {
    /// The model (its inference form: call `valid()` on an autodiff-trained module).
    pub model: M,
    /// Items to input batch.
    pub batcher: InputBatcher<I, M::Input>,
    /// Where the inputs go.
    pub device: Device,
    /// Items per forward pass.
    pub batch_size: usize,
}

impl<M: StochasticModel, I> ModelPredictor<M, I> {
    /// `sampler`'s predictions of every item of `items` (`[N, C, T]`, or `[N, C, P, T]` for
    /// a model with `[rows, C, P]` outputs).
    ///
    /// # Errors
    /// As [`McSampler::predict_dataset`].
    pub fn sample(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<McPredictions<M>> {
        Ok(
            sampler.predict_dataset(&self.model, items, self.batch_size, |batch| {
                (self.batcher)(batch, &self.device)
            })?,
        )
    }

    /// The same predictions, handed to `on_chunk` batch by batch with each batch's range of
    /// positions in `items`.
    ///
    /// # Errors
    /// As [`McSampler::predict_dataset_chunks`], and whatever `on_chunk` returns.
    pub fn sample_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: impl FnMut(Range<usize>, McPredictions<M>) -> Result<()>,
    ) -> Result<()> {
        sampler.predict_dataset_chunks(
            &self.model,
            items,
            self.batch_size,
            |batch| (self.batcher)(batch, &self.device),
            on_chunk,
        )
    }
}

impl<M, I> Predictor<I> for ModelPredictor<M, I>
where
    M: StochasticModel<Output = Tensor<2>>,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        self.sample(sampler, items)
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        self.sample_chunks(sampler, items, on_chunk)
    }
}

/// Trains a [`Classifier`] on the labelled items and evaluates it.
///
/// The model lives on the autodiff form of the given device; predictions and evaluation use
/// its `valid()` copy, without autodiff.
///
/// A trainer built by [`Trainer::ensemble`] holds `E` members (a deep ensemble, baal's
/// `EnsembleModelWrapper`): each fit trains every member, one after the other, from its own
/// initial weights with its own seed; predictions stack the members along the MC axis (see
/// [`Trainer::with_ensemble_mc`]).
pub struct Trainer<M: Trainable, I> {
    initial: Vec<M>,
    /// The members; one for a single model.
    models: Vec<M>,
    device: Device,
    batcher: InputBatcher<I, M::Input>,
    config: TrainerConfig,
    /// The members of an ensemble draw MC samples (see [`Trainer::with_ensemble_mc`]).
    ensemble_mc: bool,
    /// Fit a Dirichlet calibration map on the validation set after each fit.
    calibration: Option<DirichletCalibratorConfig>,
    /// The map fitted after the last fit; predictions pass through it.
    calibrator: Option<DirichletCalibrator>,
    /// What runs after every fit (a classifier's calibration, set by
    /// [`Trainer::with_calibration`]).
    after_fit: Option<AfterFit<M, I>>,
    fits: u64,
    validation: Option<Validation<M, I>>,
    progress: ProgressSink,
}

/// Fits a classifier's calibration map after a fit; returns its report.
type AfterFit<M, I> = fn(&mut Trainer<M, I>) -> Result<Option<CalibrationReport>>;

/// A classifier's metrics of a model on the validation items.
type ValidationMetrics<M, I> = fn(&Trainer<M, I>, &M, &Validation<M, I>) -> Result<EvalMetrics>;

/// Labelled items held out of the pool, for early stopping and calibration.
struct Validation<M: Trainable, I> {
    items: Arc<dyn Dataset<I>>,
    labels: Vec<usize>,
    /// The metrics of a model on these items ([`Trainer::validate`], a classifier's).
    metrics: ValidationMetrics<M, I>,
}

impl<M, I> Trainer<M, I>
where
    M: Trainable,
    I: Clone + Send + Sync + 'static,
{
    /// A trainer for `model` (moved to the autodiff form of `device`), whose inputs `batcher`
    /// builds.
    ///
    /// # Errors
    /// The configuration is invalid ([`TrainerConfig::check`]).
    pub fn new(
        model: M,
        device: &Device,
        batcher: InputBatcher<I, M::Input>,
        config: TrainerConfig,
    ) -> Result<Self> {
        Self::ensemble(vec![model], device, batcher, config)
    }

    /// A trainer for a deep ensemble of `models` (each moved to the autodiff form of
    /// `device`): give each member its own initial weights (build them after different
    /// `Device::seed`s). One model is [`Trainer::new`].
    ///
    /// # Errors
    /// No model, or an invalid configuration ([`TrainerConfig::check`]).
    pub fn ensemble(
        models: Vec<M>,
        device: &Device,
        batcher: InputBatcher<I, M::Input>,
        config: TrainerConfig,
    ) -> Result<Self> {
        config.check()?;
        if models.is_empty() {
            return Err(ActiveError::InvalidConfig {
                what: "ensemble",
                reason: "an ensemble needs at least one member, got none".into(),
            });
        }
        let device = device.clone().autodiff();
        // `train()` tracks every parameter on the autodiff device, whatever the model was built on.
        let models: Vec<M> = models
            .into_iter()
            .map(|model| model.fork(&device).train())
            .collect();
        Ok(Self {
            initial: models.clone(),
            models,
            device,
            batcher,
            config,
            ensemble_mc: false,
            calibration: None,
            calibrator: None,
            after_fit: None,
            fits: 0,
            validation: None,
            progress: ProgressSink::none(),
        })
    }

    /// How the members of an ensemble predict: `false` (the default, baal's
    /// `EnsembleModelWrapper`), each once with its MC layers off, so that the `E` members are
    /// the posterior's `E` samples; `true`, each `T` times with its MC layers on, `E × T`
    /// samples. A single model always samples.
    pub fn with_ensemble_mc(mut self, mc: bool) -> Self {
        self.ensemble_mc = mc;
        self
    }

    /// Reports the progress of each fit (gradient steps) to `receiver` (e.g. the facade's
    /// terminal bar, `baal::progress::TerminalProgress`); nothing is reported by default.
    pub fn with_progress(mut self, receiver: Arc<dyn Progress>) -> Self {
        self.progress = ProgressSink::new(receiver);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// The current model (on the autodiff device); an ensemble's first member.
    pub fn model(&self) -> &M {
        &self.models[0]
    }

    /// Every member of the ensemble (one for a single model), on the autodiff device.
    pub fn members(&self) -> &[M] {
        &self.models
    }

    /// The current model without autodiff, for inference; an ensemble's first member.
    pub fn inference_model(&self) -> M {
        self.models[0].valid()
    }

    /// The device inputs go to for inference (without autodiff).
    pub fn inference_device(&self) -> Device {
        self.device.clone().without_autodiff()
    }

    /// Number of fits done (it seeds the next one).
    pub fn fit_count(&self) -> u64 {
        self.fits
    }

    /// Sets the fit counter, so that a resumed run seeds its fits as the original run did.
    pub fn set_fit_count(&mut self, fits: u64) {
        self.fits = fits;
    }

    /// Puts the initial weights back (every member's); the calibration map goes with the
    /// weights it was fitted for.
    pub fn reset_weights(&mut self) {
        self.models = self.initial.clone();
        self.calibrator = None;
    }

    /// Every labelled item with its class index, checked against the model's classes.
    fn read_labelled<L: Label<M::Target>>(
        &self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
    ) -> Result<Vec<(I, M::Target)>> {
        let n = labelled.len();
        if n == 0 {
            return Err(ActiveError::Empty {
                what: "labelled set",
            });
        }
        let mut items = Vec::with_capacity(n);
        for index in 0..n {
            let entry = labelled.get(index).map_err(|e| ActiveError::Item {
                what: "labelled set",
                index,
                message: e.to_string(),
            })?;
            let target = entry.label.target();
            self.model()
                .check_target(&target)
                .map_err(|reason| ActiveError::BadTarget {
                    what: "labelled",
                    index,
                    reason,
                })?;
            items.push((entry.item, target));
        }
        Ok(items)
    }

    /// One gradient step of `model` on the items at `batch`; returns the updated model and
    /// the batch's mean loss (still on the device).
    fn train_step(
        &self,
        model: M,
        optimizer: &mut ModuleOptimizer,
        items: &[(I, M::Target)],
        batch: &[usize],
    ) -> (M, Tensor<1>) {
        let inputs: Vec<I> = batch.iter().map(|&i| items[i].0.clone()).collect();
        let targets: Vec<M::Target> = batch.iter().map(|&i| items[i].1.clone()).collect();
        let input = (self.batcher)(inputs, &self.device);
        let loss = model.training_loss(input, &targets);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optimizer.step(self.config.optimizer.learning_rate(), model, grads);
        (model, loss)
    }

    /// Trains on the given batches of `labelled`, in order (indices into the labelled view;
    /// any size, repeats allowed) instead of the configured shuffled passes, and returns
    /// every step's loss. Weights are reset first when the config says so; weight decay per
    /// label, the device seed and the fit count behave as in [`Trainer::fit`]; epochs, the
    /// sample budget and early stopping do not apply. For checks against another framework
    /// fed the same batches (`cargo xtask parity-torch`) and for users who plan their own
    /// batches.
    ///
    /// # Errors
    /// As [`Trainer::fit`], plus an empty batch list, an empty batch or an index outside the
    /// labelled set.
    pub fn fit_batches<L: Label<M::Target>>(
        &mut self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
        batches: &[Vec<usize>],
    ) -> Result<(FitReport, Vec<f32>)> {
        let started = Instant::now();
        let items = self.read_labelled(labelled)?;
        let n = items.len();
        if batches.is_empty() {
            return Err(ActiveError::InvalidConfig {
                what: "batches",
                reason: "no batch to train on".into(),
            });
        }
        if let Some(step) = batches.iter().position(Vec::is_empty) {
            return Err(ActiveError::InvalidConfig {
                what: "batches",
                reason: format!("batch {step} is empty"),
            });
        }
        if let Some((step, &index)) = batches
            .iter()
            .enumerate()
            .find_map(|(step, b)| b.iter().find(|&&i| i >= n).map(|i| (step, i)))
        {
            return Err(ActiveError::InvalidConfig {
                what: "batches",
                reason: format!(
                    "batch {step} holds item {index}, but the labelled set has {n} items"
                ),
            });
        }
        let seed = self.start_fit();
        let mut models = Vec::with_capacity(self.models.len());
        let mut values = Vec::with_capacity(batches.len() * self.models.len());
        let mut train_loss = 0.0;
        for (member, model) in self.models.iter().enumerate() {
            let mut optimizer = self.start_member(seed, member, n);
            let mut model = model.clone();
            let mut losses = Vec::with_capacity(batches.len());
            for batch in batches {
                let (next, loss) = self.train_step(model, &mut optimizer, &items, batch);
                model = next;
                losses.push(loss);
            }
            let (member_values, member_loss) = read_losses(losses, 1)?;
            values.extend(member_values);
            train_loss += member_loss / self.models.len() as f64;
            models.push(model);
        }
        self.models = models;
        let report = FitReport {
            train_loss,
            epochs: 1,
            gradient_steps: batches.len() * self.models.len(),
            seconds: started.elapsed().as_secs_f64(),
            validation: None,
            calibration: None,
        };
        Ok((report, values))
    }

    /// What every fit starts with: the weights reset (when the config says so) and the fit
    /// counted; returns this fit's seed.
    fn start_fit(&mut self) -> u64 {
        if self.config.reset_weights {
            self.reset_weights();
        }
        // A fit changes the weights the calibration map was fitted for.
        self.calibrator = None;
        let seed = self.config.seed.wrapping_add(self.fits);
        self.fits += 1;
        seed
    }

    /// What training member `member` on `n` labelled items starts with: the device seeded
    /// with the member's seed (the fit's seed for the first member, so that a single model
    /// trains as it always did) and a fresh optimizer whose L2 penalty is divided by `n` with
    /// weight decay per label.
    fn start_member(&self, fit_seed: u64, member: usize, n: usize) -> ModuleOptimizer {
        self.device.seed(member_seed(fit_seed, member));
        let decay_divisor = if self.config.weight_decay_per_label {
            n as f32
        } else {
            1.0
        };
        self.config.optimizer.init(decay_divisor)
    }

    /// Trains on `labelled` (after resetting the weights when the config says so).
    ///
    /// # Errors
    /// The labelled set is empty, an item cannot be read, a label is not below the model's
    /// number of classes, the loss is not finite.
    pub fn fit<L: Label<M::Target>>(
        &mut self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
    ) -> Result<FitReport> {
        let started = Instant::now();
        let items = self.read_labelled(labelled)?;
        let n = items.len();
        for (on, what) in [
            (self.config.early_stopping.is_some(), "early stopping"),
            (self.calibration.is_some(), "calibration"),
        ] {
            if on && self.validation.is_none() {
                return Err(ActiveError::InvalidConfig {
                    what,
                    reason: "it needs a validation set: give one with Trainer::with_validation"
                        .into(),
                });
            }
        }
        let seed = self.start_fit();
        let mut models = Vec::with_capacity(self.models.len());
        let mut reports = Vec::with_capacity(self.models.len());
        for (member, model) in self.models.iter().enumerate() {
            let (model, report) = self.fit_member(model.clone(), &items, seed, member)?;
            models.push(model);
            reports.push(report);
        }
        self.models = models;
        let mut report = FitReport::of_members(reports, started.elapsed().as_secs_f64());
        if let Some(after_fit) = self.after_fit {
            report.calibration = after_fit(self)?;
        }
        tracing::debug!(?report, labelled = n, "fit");
        Ok(report)
    }

    /// Trains member `member` (starting from `model`) on `items` in fit `fit_seed`: shuffled
    /// passes, early stopping when configured.
    fn fit_member(
        &self,
        mut model: M,
        items: &[(I, M::Target)],
        fit_seed: u64,
        member: usize,
    ) -> Result<(M, FitReport)> {
        let started = Instant::now();
        let n = items.len();
        let mut optimizer = self.start_member(fit_seed, member, n);
        let mut rng = ChaCha8Rng::seed_from_u64(member_seed(fit_seed, member));
        let batch_size = self.config.batch_size.min(n);
        let steps_per_pass = n.div_ceil(batch_size);
        let total_steps = self.config.gradient_steps(n);
        let mut best = BestWeights::new(self.config.early_stopping.as_ref(), steps_per_pass);
        let progress = self.progress.start("training", total_steps, "steps");
        let mut order: Vec<usize> = (0..n).collect();
        let (mut train_loss, mut step, mut passes) = (f64::NAN, 0, 0);
        while step < total_steps && !best.stopped {
            order.shuffle(&mut rng);
            passes += 1;
            let mut losses = Vec::with_capacity(steps_per_pass);
            for batch in order.chunks(batch_size) {
                if step == total_steps || best.stopped {
                    break;
                }
                let (next, loss) = self.train_step(model, &mut optimizer, items, batch);
                model = next;
                losses.push(loss);
                step += 1;
                if best.due(step) {
                    best.check(self, &model, step)?;
                }
            }
            progress.advance(losses.len());
            // One read back per pass.
            train_loss = read_losses(losses, passes)?.1;
        }
        drop(progress);
        // The weights after the last step compete too when no check saw them.
        if best.watching() && !best.stopped && best.checked_at != step {
            best.check(self, &model, step)?;
        }
        let validation = best.take_into(&mut model);
        let report = FitReport {
            train_loss,
            epochs: passes,
            gradient_steps: step,
            seconds: started.elapsed().as_secs_f64(),
            validation,
            calibration: None,
        };
        Ok((model, report))
    }

    /// Saves the current weights to `path` (burnpack), atomically (temporary file, rename).
    ///
    /// # Errors
    /// The file cannot be written.
    /// An ensemble's members are saved together, as one module.
    pub fn save_weights(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let saved = match self.models.as_slice() {
            [model] => model.clone().save_file(&tmp),
            members => members.to_vec().save_file(&tmp),
        };
        saved.map_err(|e| ActiveError::Weights {
            path: tmp.clone(),
            message: format!("{e:?}"),
        })?;
        // burn may add its extension to the name it was given.
        let written = if tmp.exists() {
            tmp
        } else {
            tmp.with_extension("tmp.bpk")
        };
        std::fs::rename(&written, path).map_err(|e| ActiveError::io(path, e))
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) into the current model.
    ///
    /// # Errors
    /// The file is missing, corrupt or of another model.
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let error = |e| ActiveError::Weights {
            path: path.to_path_buf(),
            message: format!("{e:?}"),
        };
        self.models = match self.models.as_slice() {
            [model] => vec![model.clone().try_load_file(path).map_err(error)?],
            members => members.to_vec().try_load_file(path).map_err(error)?,
        };
        self.calibrator = None;
        Ok(())
    }
}

/// What only a classifier's trainer does: validation metrics (early stopping), calibration,
/// evaluation on a test set, and MC predictions as a [`Predictor`].
impl<M, I> Trainer<M, I>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
{
    /// After each fit, fits a Dirichlet calibration map ([`DirichletCalibratorConfig`]) on
    /// the validation set ([`Trainer::with_validation`], which fits then need) and passes
    /// every prediction through it: the pool's MC samples before the heuristic, the test
    /// set's before its metrics. The fit's report holds the validation metrics before and
    /// after ([`FitReport::calibration`]).
    ///
    /// # Errors
    /// Invalid settings.
    pub fn with_calibration(mut self, config: DirichletCalibratorConfig) -> Result<Self> {
        config.check()?;
        self.calibration = Some(config);
        self.after_fit = Some(Self::calibrate);
        Ok(self)
    }

    /// The calibration map fitted after the last fit, if calibration is on.
    pub fn calibrator(&self) -> Option<&DirichletCalibrator> {
        self.calibrator.as_ref()
    }

    /// Holds out `items` (labelled, never in the pool) for early stopping; `label_of` reads
    /// each item's class.
    ///
    /// # Errors
    /// The set is empty, an item cannot be read, or a label is not below the model's number
    /// of classes.
    pub fn with_validation(
        mut self,
        items: Arc<dyn Dataset<I>>,
        label_of: &dyn Fn(&I) -> usize,
    ) -> Result<Self> {
        let labels = read_labels(
            items.as_ref(),
            label_of,
            "validation set",
            self.model().num_classes(),
        )?;
        self.validation = Some(Validation {
            items,
            labels,
            metrics: Self::validate,
        });
        Ok(self)
    }

    /// Fits the calibration map on the validation set's predictions, when calibration is on.
    fn calibrate(&mut self) -> Result<Option<CalibrationReport>> {
        self.calibrator = None;
        let (Some(config), Some(validation)) = (&self.calibration, &self.validation) else {
            return Ok(None);
        };
        let (values, dims) =
            host_values(self.predict(&self.eval_sampler()?, validation.items.as_ref())?)?;
        let (calibrator, report) = config.fit(&values, dims, &validation.labels)?;
        self.calibrator = Some(calibrator);
        Ok(Some(report))
    }

    /// Metrics of `model`'s MC-averaged predictions on the validation set (fixed masks, so
    /// that checks compare weights, not mask draws).
    fn validate(&self, model: &M, validation: &Validation<M, I>) -> Result<EvalMetrics> {
        let sampler = member_sampler(
            &self.eval_sampler()?,
            self.models.len() == 1 || self.ensemble_mc,
        );
        let probs = self
            .inference_predictor(model)
            .sample(&sampler, validation.items.as_ref())?;
        metrics_of(probs, &validation.labels)
    }

    /// Loss, accuracy, NLL and ECE on `test`, averaging `eval_iterations` MC samples;
    /// `label_of` reads each item's class.
    ///
    /// # Errors
    /// The test set is empty, an item cannot be read, a label is out of range.
    pub fn evaluate(
        &self,
        test: &dyn Dataset<I>,
        label_of: &dyn Fn(&I) -> usize,
    ) -> Result<EvalMetrics> {
        let (values, dims, labels) = self.test_predictions(test, label_of)?;
        classification_metrics(&values, dims, &labels)
    }

    /// [`evaluate`](Self::evaluate)'s metrics and, from the same predictions, the
    /// [`ClassificationReport`](crate::ClassificationReport): per-class precision, recall,
    /// F1, PR-AUC and ECE, and top-k accuracy for each of `top_k`.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate), and a `k` of 0.
    pub fn evaluate_report(
        &self,
        test: &dyn Dataset<I>,
        label_of: &dyn Fn(&I) -> usize,
        top_k: &[usize],
    ) -> Result<(EvalMetrics, crate::ClassificationReport)> {
        let (values, dims, labels) = self.test_predictions(test, label_of)?;
        Ok((
            classification_metrics(&values, dims, &labels)?,
            crate::metrics::classification_report(&values, dims, &labels, top_k)?,
        ))
    }

    /// The MC predictions `[N, C, T]` that [`evaluate`](Self::evaluate) scores, on the host,
    /// with the test labels.
    fn test_predictions(
        &self,
        test: &dyn Dataset<I>,
        label_of: &dyn Fn(&I) -> usize,
    ) -> Result<(Vec<f32>, [usize; 3], Vec<usize>)> {
        let labels = read_labels(test, label_of, "test set", self.model().num_classes())?;
        let (values, dims) = host_values(self.predict(&self.eval_sampler()?, test)?)?;
        Ok((values, dims, labels))
    }

    /// The sampler of evaluations: `eval_iterations` samples with fixed masks, so that
    /// evaluations compare weights, not mask draws.
    fn eval_sampler(&self) -> Result<McSampler> {
        Ok(McSamplerConfig::new(self.config.eval_iterations)
            .with_seed(self.config.seed)
            .init()?)
    }

    /// `model`'s inference form (without autodiff) with the trainer's batcher, inference
    /// device and evaluation batch size.
    fn inference_predictor(&self, model: &M) -> ModelPredictor<M, I> {
        ModelPredictor {
            model: model.valid(),
            batcher: self.batcher.clone(),
            device: self.inference_device(),
            batch_size: self.config.eval_batch_size,
        }
    }

    /// The members as an [`EnsemblePredictor`] of their inference forms.
    fn ensemble_predictor(&self) -> EnsemblePredictor<ModelPredictor<M, I>> {
        let members = self
            .models
            .iter()
            .map(|model| self.inference_predictor(model))
            .collect();
        EnsemblePredictor::from_members(members, self.ensemble_mc)
            .with_window(self.config.eval_batch_size)
    }
}

/// An ensemble's predictions stack its members along the MC axis: `[N, C, E × T]` with
/// [`Trainer::with_ensemble_mc`], `[N, C, E]` without (each member's deterministic
/// prediction); column `e × T + t` is member `e`'s sample `t`.
impl<M, I> Predictor<I> for Trainer<M, I>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        let probs = if self.models.len() == 1 {
            self.inference_predictor(self.model())
                .sample(sampler, items)?
        } else {
            self.ensemble_predictor().predict(sampler, items)?
        };
        match &self.calibrator {
            Some(calibrator) => calibrator.apply(probs),
            None => Ok(probs),
        }
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        let mut calibrated = |range: Range<usize>, probs: Tensor<3>| match &self.calibrator {
            Some(calibrator) => on_chunk(range, calibrator.apply(probs)?),
            None => on_chunk(range, probs),
        };
        if self.models.len() > 1 {
            return self
                .ensemble_predictor()
                .predict_chunks(sampler, items, &mut calibrated);
        }
        self.inference_predictor(self.model())
            .sample_chunks(sampler, items, &mut calibrated)
    }
}

/// Reads the batch losses of pass `pass` back from the device (one read for all of them):
/// each loss and their mean.
///
/// # Errors
/// The losses cannot be read, or their mean is not finite (training diverged).
fn read_losses(losses: Vec<Tensor<1>>, pass: usize) -> Result<(Vec<f32>, f64)> {
    let values = Tensor::cat(losses, 0)
        .try_into_vec_as::<f32>()
        .map_err(|e| ActiveError::InvalidConfig {
            what: "training loss",
            reason: format!("cannot read it back from the device: {e:?}"),
        })?;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    if !mean.is_finite() {
        return Err(ActiveError::Diverged {
            loss: mean,
            epoch: pass,
        });
    }
    Ok((values, mean))
}

/// The class of every item of `set`, each checked against the number of classes.
fn read_labels<I>(
    set: &dyn Dataset<I>,
    label_of: &dyn Fn(&I) -> usize,
    what: &'static str,
    classes: usize,
) -> Result<Vec<usize>> {
    if set.is_empty() {
        return Err(ActiveError::Empty { what });
    }
    (0..set.len())
        .map(|index| {
            let item = set.get(index).map_err(|e| ActiveError::Item {
                what,
                index,
                message: e.to_string(),
            })?;
            let label = label_of(&item);
            if label >= classes {
                return Err(ActiveError::LabelOutOfRange {
                    what,
                    index,
                    label,
                    classes,
                });
            }
            Ok(label)
        })
        .collect()
}

/// Metrics of MC probabilities `[N, C, T]` against `labels`.
fn metrics_of(probs: Tensor<3>, labels: &[usize]) -> Result<EvalMetrics> {
    let (values, dims) = host_values(probs)?;
    classification_metrics(&values, dims, labels)
}

/// MC probabilities `[N, C, T]` read back to the host, with their shape.
fn host_values(probs: Tensor<3>) -> Result<(Vec<f32>, [usize; 3])> {
    let dims = probs.dims();
    let values = probs
        .try_into_vec_as::<f32>()
        .map_err(|e| ActiveError::InvalidConfig {
            what: "evaluation predictions",
            reason: format!("cannot read them back from the device: {e:?}"),
        })?;
    Ok((values, dims))
}
