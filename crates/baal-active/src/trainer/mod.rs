//! The trainer: fits a classifier on the labelled view on an autodiff device, evaluates it on a
//! test set, and MC-predicts datasets for the loop (baal's `ModelWrapper`, the Burn way).

use std::sync::Arc;

use baal_bayesian::{Progress, ProgressSink};
use burn::data::dataset::Dataset;
use burn::tensor::Device;

use crate::calibration::{CalibrationReport, DirichletCalibrator, DirichletCalibratorConfig};
use crate::error::{ActiveError, Result};
use crate::metrics::EvalMetrics;
use crate::traits::{InputBatcher, Trainable};

mod best_weights;
mod classifier;
mod config;
mod fit;
mod predictor;
mod schedule;
#[cfg(test)]
pub(crate) mod test_model;
mod weights_file;

pub use config::{EarlyStoppingConfig, OptimizerConfig, TrainerConfig, ValidationMetric};
pub use fit::FitReport;
pub use predictor::ModelPredictor;
pub use schedule::{LearningRates, LrSchedule};

/// Trains a [`Classifier`](crate::Classifier) on the labelled items and evaluates it.
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
    /// A snapshot ensemble's snapshots per fit ([`Trainer::snapshot_ensemble`]); 0 otherwise.
    snapshots: usize,
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
            snapshots: 0,
        })
    }

    /// A snapshot ensemble of `model` (Huang et al. 2017; baal's `add_checkpoint` called along
    /// one training, in one call): each fit trains one model and keeps it at the ends of
    /// `snapshots` equal parts of the fit's gradient steps, the last being the trained model;
    /// the learning-rate schedule (and warm-up) starts again in each part, so with
    /// [`LrSchedule::Cosine`] every part anneals the rate and restarts it (the paper's cyclic
    /// cosine), and with a constant rate the snapshots are plain checkpoints. The optimizer's
    /// state carries over. The snapshots then predict as an ensemble's members do (see
    /// [`Trainer::with_ensemble_mc`]), at the cost of one training; [`model`](Self::model)
    /// is the trained model and [`members`](Self::members) lists it first, then the earlier
    /// snapshots in order.
    ///
    /// # Errors
    /// Fewer than 2 snapshots, early stopping (which would keep other weights than the
    /// snapshots'), or an invalid configuration. A fit of fewer gradient steps than snapshots
    /// is an error when it runs.
    pub fn snapshot_ensemble(
        model: M,
        snapshots: usize,
        device: &Device,
        batcher: InputBatcher<I, M::Input>,
        config: TrainerConfig,
    ) -> Result<Self> {
        if snapshots < 2 {
            return Err(ActiveError::InvalidConfig {
                what: "snapshots",
                reason: format!("a snapshot ensemble needs at least 2 snapshots, got {snapshots}"),
            });
        }
        if config.early_stopping.is_some() {
            return Err(ActiveError::InvalidConfig {
                what: "snapshots",
                reason: "early stopping keeps the best weights, not the snapshots': use one or \
                         the other"
                    .into(),
            });
        }
        let mut trainer = Self::ensemble(vec![model; snapshots], device, batcher, config)?;
        trainer.snapshots = snapshots;
        Ok(trainer)
    }

    /// The snapshots a fit keeps (a [snapshot ensemble](Self::snapshot_ensemble)'s), or 0.
    pub fn snapshots(&self) -> usize {
        self.snapshots
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

    /// The sampler of evaluations: `eval_iterations` samples with fixed masks, so that
    /// evaluations compare weights, not mask draws.
    pub(crate) fn eval_sampler(&self) -> Result<baal_bayesian::McSampler> {
        Ok(
            baal_bayesian::McSamplerConfig::new(self.config.eval_iterations)
                .with_seed(self.config.seed)
                .init()?,
        )
    }

    /// `model`'s inference form (without autodiff) with the trainer's batcher, inference
    /// device and evaluation batch size.
    pub(crate) fn inference_predictor(&self, model: &M) -> ModelPredictor<M, I> {
        ModelPredictor {
            model: model.valid(),
            batcher: self.batcher.clone(),
            device: self.inference_device(),
            batch_size: self.config.eval_batch_size,
        }
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
}
