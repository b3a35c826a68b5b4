//! The trainer: fits a classifier on the labelled view on an autodiff device, evaluates it on a
//! test set, and MC-predicts datasets for the loop (baal's `ModelWrapper`, the Burn way).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use baal_bayesian::{McSampler, McSamplerConfig, StochasticModel};
use baal_data::LabelledItem;
use burn::data::dataset::Dataset;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};
use crate::metrics::{EvalMetrics, classification_metrics};
use crate::traits::{ClassLabel, Classifier, InputBatcher, Predictor};

/// The optimizer and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OptimizerConfig {
    /// Stochastic gradient descent with momentum (baal's default for its experiments).
    Sgd {
        /// Learning rate.
        learning_rate: f64,
        /// Momentum factor (0 for none).
        momentum: f64,
        /// L2 penalty (0 for none).
        weight_decay: f32,
    },
    /// Adam.
    Adam {
        /// Learning rate.
        learning_rate: f64,
        /// L2 penalty (0 for none).
        weight_decay: f32,
        /// Added to the root of the second moment. Burn's default, 1e-5
        /// ([`OptimizerConfig::BURN_ADAM_EPSILON`]), is the default here; PyTorch's is 1e-8
        /// ([`OptimizerConfig::TORCH_ADAM_EPSILON`]), and with it our training follows
        /// PyTorch's step for step (`cargo xtask parity-torch`).
        #[serde(default = "burn_adam_epsilon")]
        epsilon: f32,
    },
}

fn burn_adam_epsilon() -> f32 {
    OptimizerConfig::BURN_ADAM_EPSILON
}

impl OptimizerConfig {
    /// Burn's default Adam epsilon.
    pub const BURN_ADAM_EPSILON: f32 = 1e-5;
    /// PyTorch's default Adam epsilon.
    pub const TORCH_ADAM_EPSILON: f32 = 1e-8;

    /// Adam with `learning_rate`, no weight decay and Burn's epsilon.
    pub fn adam(learning_rate: f64) -> Self {
        Self::Adam {
            learning_rate,
            weight_decay: 0.0,
            epsilon: Self::BURN_ADAM_EPSILON,
        }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        match self {
            Self::Sgd { learning_rate, .. } | Self::Adam { learning_rate, .. } => *learning_rate,
        }
    }

    /// The optimizer, its L2 penalty divided by `decay_divisor`.
    fn init(&self, decay_divisor: f32) -> ModuleOptimizer {
        let decay =
            |penalty: f32| (penalty > 0.0).then(|| WeightDecayConfig::new(penalty / decay_divisor));
        match self {
            Self::Sgd {
                momentum,
                weight_decay,
                ..
            } => SgdConfig::new()
                .with_momentum((*momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(*momentum)
                        .with_dampening(0.0)
                }))
                .with_weight_decay(decay(*weight_decay))
                .init(),
            Self::Adam {
                weight_decay,
                epsilon,
                ..
            } => AdamConfig::new()
                .with_epsilon(*epsilon)
                .with_weight_decay(decay(*weight_decay))
                .init(),
        }
    }

    fn check(&self) -> Result<()> {
        let lr = self.learning_rate();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(ActiveError::InvalidConfig {
                what: "learning rate",
                reason: format!("must be a positive number, got {lr}"),
            });
        }
        let (momentum, decay) = match self {
            Self::Sgd {
                momentum,
                weight_decay,
                ..
            } => (*momentum, *weight_decay),
            Self::Adam { weight_decay, .. } => (0.0, *weight_decay),
        };
        if !(0.0..1.0).contains(&momentum) {
            return Err(ActiveError::InvalidConfig {
                what: "momentum",
                reason: format!("must be in [0, 1), got {momentum}"),
            });
        }
        if !(decay.is_finite() && decay >= 0.0) {
            return Err(ActiveError::InvalidConfig {
                what: "weight decay",
                reason: format!("must be a non-negative number, got {decay}"),
            });
        }
        Ok(())
    }
}

/// How the [`Trainer`] trains and evaluates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// Optimizer and learning rate.
    pub optimizer: OptimizerConfig,
    /// Items per gradient step.
    pub batch_size: usize,
    /// Passes over the labelled set.
    pub epochs: usize,
    /// At least this many gradient steps per fit: with few labels an epoch is one or two
    /// steps, so more epochs run until this count is reached (0: exactly `epochs`).
    pub min_gradient_steps: usize,
    /// Reset the weights to their initial values before each fit (baal's default); `false`
    /// keeps training the previous step's model.
    pub reset_weights: bool,
    /// MC iterations averaged when evaluating on the test set.
    pub eval_iterations: usize,
    /// Items per forward pass when evaluating and predicting.
    pub eval_batch_size: usize,
    /// Seed of the shuffling and of the device generator (dropout masks in training).
    pub seed: u64,
    /// Show progress bars (indicatif).
    pub show_progress: bool,
    /// Divide the optimizer's weight decay by the number of labelled items, `λ = c / N`
    /// (Gal et al.'s recipe: the prior's weight shrinks as the data grows), instead of using
    /// it as it is.
    #[serde(default)]
    pub weight_decay_per_label: bool,
    /// Train on a fixed number of samples per fit (`⌈samples / batch_size⌉` gradient steps,
    /// over reshuffled passes) instead of `epochs` and `min_gradient_steps`: the same training
    /// budget whatever the number of labels (BatchBALD's recipe).
    #[serde(default)]
    pub samples_per_fit: Option<usize>,
    /// Stop training when the validation metric stops improving and keep the best weights;
    /// needs a validation set ([`Trainer::with_validation`]).
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingConfig>,
}

/// What early stopping watches on the validation set (MC-averaged predictions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationMetric {
    /// Accuracy, ties broken by the lower NLL (a small validation set ties often).
    Accuracy,
    /// Negative log-likelihood.
    Nll,
}

/// Early stopping on a validation set held out of the pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingConfig {
    /// Validation checks without improvement after which training stops (at least 1).
    pub patience: usize,
    /// Gradient steps between checks; 0 checks at the end of every pass over the labelled
    /// set.
    pub check_every: usize,
    /// What counts as better.
    pub metric: ValidationMetric,
}

impl EarlyStoppingConfig {
    /// Stops after `patience` checks without improvement of the validation accuracy, checking
    /// at the end of every pass.
    pub fn new(patience: usize) -> Self {
        Self {
            patience,
            check_every: 0,
            metric: ValidationMetric::Accuracy,
        }
    }

    /// Checks every `steps` gradient steps (0: at the end of every pass).
    pub fn with_check_every(mut self, steps: usize) -> Self {
        self.check_every = steps;
        self
    }

    /// Watches `metric`.
    pub fn with_metric(mut self, metric: ValidationMetric) -> Self {
        self.metric = metric;
        self
    }

    /// Whether `candidate` is better than `best`.
    fn improves(&self, candidate: &EvalMetrics, best: &EvalMetrics) -> bool {
        match self.metric {
            ValidationMetric::Accuracy => {
                candidate.accuracy > best.accuracy
                    || (candidate.accuracy == best.accuracy && candidate.nll < best.nll)
            }
            ValidationMetric::Nll => candidate.nll < best.nll,
        }
    }
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerConfig::adam(1e-3),
            batch_size: 32,
            epochs: 10,
            min_gradient_steps: 0,
            reset_weights: true,
            eval_iterations: 5,
            eval_batch_size: 256,
            seed: 0,
            show_progress: false,
            weight_decay_per_label: false,
            samples_per_fit: None,
            early_stopping: None,
        }
    }
}

impl TrainerConfig {
    /// Sets the optimizer.
    pub fn with_optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.optimizer = optimizer;
        self
    }
    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets the number of epochs.
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Sets the minimum number of gradient steps per fit.
    pub fn with_min_gradient_steps(mut self, steps: usize) -> Self {
        self.min_gradient_steps = steps;
        self
    }
    /// Resets the weights before each fit (`true`, default) or keeps training.
    pub fn with_reset_weights(mut self, reset: bool) -> Self {
        self.reset_weights = reset;
        self
    }
    /// Sets the MC iterations of the evaluation.
    pub fn with_eval_iterations(mut self, iterations: usize) -> Self {
        self.eval_iterations = iterations;
        self
    }
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Shows or hides progress bars.
    pub fn with_show_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }
    /// Divides the optimizer's weight decay by the number of labelled items (`λ = c / N`).
    pub fn with_weight_decay_per_label(mut self, per_label: bool) -> Self {
        self.weight_decay_per_label = per_label;
        self
    }
    /// Trains on a fixed number of samples per fit instead of epochs (`None`: epochs).
    pub fn with_samples_per_fit(mut self, samples: Option<usize>) -> Self {
        self.samples_per_fit = samples;
        self
    }
    /// Stops early on a validation set (`None`: trains the whole budget).
    pub fn with_early_stopping(mut self, early_stopping: Option<EarlyStoppingConfig>) -> Self {
        self.early_stopping = early_stopping;
        self
    }

    /// Gradient steps of a fit on `n` labelled items.
    fn gradient_steps(&self, n: usize) -> usize {
        let batch_size = self.batch_size.min(n).max(1);
        match self.samples_per_fit {
            Some(samples) => samples.div_ceil(batch_size),
            None => {
                let per_epoch = n.div_ceil(batch_size);
                self.epochs
                    .max(self.min_gradient_steps.div_ceil(per_epoch))
                    .saturating_mul(per_epoch)
            }
        }
    }

    /// Checks every value.
    ///
    /// # Errors
    /// A zero batch size, epoch count (without a sample budget), sample budget, patience or
    /// evaluation iteration count, a bad learning rate, momentum or weight decay.
    pub fn check(&self) -> Result<()> {
        self.optimizer.check()?;
        for (what, value) in [
            ("batch size", self.batch_size),
            ("eval batch size", self.eval_batch_size),
            ("eval iterations", self.eval_iterations),
        ] {
            if value == 0 {
                return Err(ActiveError::InvalidConfig {
                    what,
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        match self.samples_per_fit {
            Some(0) => {
                return Err(ActiveError::InvalidConfig {
                    what: "samples per fit",
                    reason: "training needs at least one sample, got 0".into(),
                });
            }
            None if self.epochs == 0 && self.min_gradient_steps == 0 => {
                return Err(ActiveError::InvalidConfig {
                    what: "epochs",
                    reason: "training needs at least one epoch or one gradient step".into(),
                });
            }
            _ => {}
        }
        if let Some(early) = &self.early_stopping
            && early.patience == 0
        {
            return Err(ActiveError::InvalidConfig {
                what: "early stopping patience",
                reason: "must be at least 1 check, got 0".into(),
            });
        }
        Ok(())
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

impl<M, I> Predictor<I> for ModelPredictor<M, I>
where
    M: StochasticModel<Output = Tensor<2>>,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        Ok(
            sampler.predict_dataset(&self.model, items, self.batch_size, |batch| {
                (self.batcher)(batch, &self.device)
            })?,
        )
    }
}

/// Trains a [`Classifier`] on the labelled items and evaluates it.
///
/// The model lives on the autodiff form of the given device; predictions and evaluation use
/// its `valid()` copy, without autodiff.
pub struct Trainer<M: Classifier, I> {
    initial: M,
    model: M,
    device: Device,
    batcher: InputBatcher<I, M::Input>,
    config: TrainerConfig,
    fits: u64,
    validation: Option<Validation<I>>,
}

/// Labelled items held out of the pool, for early stopping.
struct Validation<I> {
    items: Arc<dyn Dataset<I>>,
    labels: Vec<usize>,
}

impl<M, I> Trainer<M, I>
where
    M: Classifier,
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
        config.check()?;
        let device = device.clone().autodiff();
        // `train()` tracks every parameter on the autodiff device, whatever the model was built on.
        let model = model.fork(&device).train();
        Ok(Self {
            initial: model.clone(),
            model,
            device,
            batcher,
            config,
            fits: 0,
            validation: None,
        })
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
            self.model.num_classes(),
        )?;
        self.validation = Some(Validation { items, labels });
        Ok(self)
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// The current model (on the autodiff device).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The current model without autodiff, for inference.
    pub fn inference_model(&self) -> M {
        self.model.valid()
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

    /// Puts the initial weights back.
    pub fn reset_weights(&mut self) {
        self.model = self.initial.clone();
    }

    /// Every labelled item with its class index, checked against the model's classes.
    fn read_labelled<L: ClassLabel>(
        &self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
    ) -> Result<Vec<(I, usize)>> {
        let classes = self.model.num_classes();
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
            let label = entry.label.class_index();
            if label >= classes {
                return Err(ActiveError::LabelOutOfRange {
                    what: "labelled",
                    index,
                    label,
                    classes,
                });
            }
            items.push((entry.item, label));
        }
        Ok(items)
    }

    /// One gradient step of `model` on the items at `batch`; returns the updated model and
    /// the batch's mean loss (still on the device).
    fn train_step(
        &self,
        model: M,
        optimizer: &mut ModuleOptimizer,
        loss_fn: &CrossEntropyLoss,
        items: &[(I, usize)],
        batch: &[usize],
    ) -> (M, Tensor<1>) {
        let inputs: Vec<I> = batch.iter().map(|&i| items[i].0.clone()).collect();
        let targets: Vec<i64> = batch.iter().map(|&i| items[i].1 as i64).collect();
        let input = (self.batcher)(inputs, &self.device);
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(targets, [batch.len()]), &self.device);
        let logits = model.forward_train(input);
        let loss = loss_fn.forward(logits, targets);
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
    pub fn fit_batches<L: ClassLabel>(
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
        let (_, loss_fn, mut optimizer) = self.start_fit(n);
        let mut model = self.model.clone();
        let mut losses = Vec::with_capacity(batches.len());
        for batch in batches {
            let (next, loss) = self.train_step(model, &mut optimizer, &loss_fn, &items, batch);
            model = next;
            losses.push(loss);
        }
        let (values, train_loss) = read_losses(losses, 1)?;
        self.model = model;
        let report = FitReport {
            train_loss,
            epochs: 1,
            gradient_steps: batches.len(),
            seconds: started.elapsed().as_secs_f64(),
            validation: None,
        };
        Ok((report, values))
    }

    /// What every fit on `n` labelled items starts with: the weights reset (when the config
    /// says so), the device seeded with this fit's seed (returned), the loss, and a fresh
    /// optimizer whose L2 penalty is divided by `n` with weight decay per label.
    fn start_fit(&mut self, n: usize) -> (u64, CrossEntropyLoss, ModuleOptimizer) {
        if self.config.reset_weights {
            self.reset_weights();
        }
        let seed = self.config.seed.wrapping_add(self.fits);
        self.fits += 1;
        self.device.seed(seed);
        let decay_divisor = if self.config.weight_decay_per_label {
            n as f32
        } else {
            1.0
        };
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        (seed, loss_fn, self.config.optimizer.init(decay_divisor))
    }

    /// Trains on `labelled` (after resetting the weights when the config says so).
    ///
    /// # Errors
    /// The labelled set is empty, an item cannot be read, a label is not below the model's
    /// number of classes, the loss is not finite.
    pub fn fit<L: ClassLabel>(
        &mut self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
    ) -> Result<FitReport> {
        let started = Instant::now();
        let items = self.read_labelled(labelled)?;
        let n = items.len();
        if self.config.early_stopping.is_some() && self.validation.is_none() {
            return Err(ActiveError::InvalidConfig {
                what: "early stopping",
                reason: "it needs a validation set: give one with Trainer::with_validation".into(),
            });
        }
        let (seed, loss_fn, mut optimizer) = self.start_fit(n);
        let early_stopping = self
            .config
            .early_stopping
            .as_ref()
            .zip(self.validation.as_ref());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let batch_size = self.config.batch_size.min(n);
        let steps_per_pass = n.div_ceil(batch_size);
        let total_steps = self.config.gradient_steps(n);
        let check_every = early_stopping.map(|(early, _)| match early.check_every {
            0 => steps_per_pass,
            every => every,
        });
        let progress = baal_bayesian::progress::ProgressBar::new(
            "training",
            total_steps,
            "steps",
            self.config.show_progress,
        );
        let mut order: Vec<usize> = (0..n).collect();
        let mut model = self.model.clone();
        let mut train_loss = f64::NAN;
        let mut step = 0;
        let mut passes = 0;
        // The best weights so far, their metrics and step; checks since they improved.
        let mut best: Option<(EvalMetrics, usize, M)> = None;
        let mut since_best = 0;
        let mut checked_at = 0;
        let mut stopped = false;
        while step < total_steps && !stopped {
            order.shuffle(&mut rng);
            passes += 1;
            let mut losses = Vec::with_capacity(steps_per_pass);
            for batch in order.chunks(batch_size) {
                if step == total_steps {
                    break;
                }
                let (next, loss) = self.train_step(model, &mut optimizer, &loss_fn, &items, batch);
                model = next;
                losses.push(loss);
                step += 1;
                if let (Some((early, validation)), Some(every)) = (early_stopping, check_every)
                    && step % every == 0
                {
                    checked_at = step;
                    let metrics = self.validate(&model, validation)?;
                    if best
                        .as_ref()
                        .is_none_or(|(best, ..)| early.improves(&metrics, best))
                    {
                        best = Some((metrics, step, model.clone()));
                        since_best = 0;
                    } else {
                        since_best += 1;
                        if since_best >= early.patience {
                            stopped = true;
                            break;
                        }
                    }
                }
            }
            progress.advance(losses.len());
            // One read back per pass.
            train_loss = read_losses(losses, passes)?.1;
        }
        progress.finish();
        // The weights after the last step compete too when no check saw them.
        if let Some((early, validation)) = early_stopping
            && !stopped
            && checked_at != step
        {
            let metrics = self.validate(&model, validation)?;
            if best
                .as_ref()
                .is_none_or(|(best, ..)| early.improves(&metrics, best))
            {
                best = Some((metrics, step, model.clone()));
            }
        }
        let validation = match best {
            Some((metrics, best_step, best_model)) => {
                model = best_model;
                Some((metrics, best_step))
            }
            None => None,
        };
        self.model = model;
        let report = FitReport {
            train_loss,
            epochs: passes,
            gradient_steps: step,
            seconds: started.elapsed().as_secs_f64(),
            validation,
        };
        tracing::debug!(?report, labelled = n, "fit");
        Ok(report)
    }

    /// Metrics of `model`'s MC-averaged predictions on the validation set (fixed masks, so
    /// that checks compare weights, not mask draws).
    fn validate(&self, model: &M, validation: &Validation<I>) -> Result<EvalMetrics> {
        let sampler = McSamplerConfig::new(self.config.eval_iterations)
            .with_seed(self.config.seed)
            .with_show_progress(false)
            .init()?;
        let probs = self.predict_with(&model.valid(), &sampler, validation.items.as_ref())?;
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
        let labels = read_labels(test, label_of, "test set", self.model.num_classes())?;
        let sampler = McSamplerConfig::new(self.config.eval_iterations)
            .with_seed(self.config.seed)
            .with_show_progress(false)
            .init()?;
        metrics_of(self.predict(&sampler, test)?, &labels)
    }

    /// MC predictions of `model` (without autodiff) on `items`.
    fn predict_with(
        &self,
        model: &M,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
    ) -> Result<Tensor<3>> {
        let device = self.inference_device();
        Ok(
            sampler.predict_dataset(model, items, self.config.eval_batch_size, |batch| {
                (self.batcher)(batch, &device)
            })?,
        )
    }

    /// Saves the current weights to `path` (burnpack), atomically (temporary file, rename).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_weights(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        self.model
            .clone()
            .save_file(&tmp)
            .map_err(|e| ActiveError::Weights {
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
        self.model = self
            .model
            .clone()
            .try_load_file(path)
            .map_err(|e| ActiveError::Weights {
                path: path.to_path_buf(),
                message: format!("{e:?}"),
            })?;
        Ok(())
    }
}

impl<M, I> Predictor<I> for Trainer<M, I>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        self.predict_with(&self.inference_model(), sampler, items)
    }
}

/// The class of every item of `set`, each checked against the number of classes.
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
    let dims = probs.dims();
    let values = probs
        .try_into_vec_as::<f32>()
        .map_err(|e| ActiveError::InvalidConfig {
            what: "evaluation predictions",
            reason: format!("cannot read them back from the device: {e:?}"),
        })?;
    classification_metrics(&values, dims, labels)
}
