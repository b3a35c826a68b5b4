//! The trainer's configuration: a Burn `Config` with a checked `init`, like the layers'.

use burn::config::Config;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::Trainer;
use crate::error::ActiveError;
use crate::metrics::EvalMetrics;
use crate::traits::{InputBatcher, Trainable};

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
    pub(super) fn init(&self, decay_divisor: f32) -> ModuleOptimizer {
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

    pub(super) fn check(&self) -> crate::error::Result<()> {
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

/// How the [`Trainer`] trains and evaluates: a Burn [`Config`] like the layers' configs
/// (`TrainerConfig::new().with_batch_size(64)`, saved and loaded as JSON), checked and turned
/// into a trainer by [`init`](Self::init).
#[derive(Config, Debug, PartialEq)]
pub struct TrainerConfig {
    /// Optimizer and learning rate.
    #[config(default = "OptimizerConfig::adam(1e-3)")]
    pub optimizer: OptimizerConfig,
    /// Items per gradient step.
    #[config(default = 32)]
    pub batch_size: usize,
    /// Passes over the labelled set.
    #[config(default = 10)]
    pub epochs: usize,
    /// At least this many gradient steps per fit: with few labels an epoch is one or two
    /// steps, so more epochs run until this count is reached (0: exactly `epochs`).
    #[config(default = 0)]
    pub min_gradient_steps: usize,
    /// Reset the weights to their initial values before each fit (baal's default); `false`
    /// keeps training the previous step's model.
    #[config(default = true)]
    pub reset_weights: bool,
    /// MC iterations averaged when evaluating on the test set.
    #[config(default = 5)]
    pub eval_iterations: usize,
    /// Items per forward pass when evaluating and predicting.
    #[config(default = 256)]
    pub eval_batch_size: usize,
    /// Seed of the shuffling and of the device generator (dropout masks in training).
    #[config(default = 0)]
    pub seed: u64,
    /// Divide the optimizer's weight decay by the number of labelled items, `λ = c / N`
    /// (Gal et al.'s recipe: the prior's weight shrinks as the data grows), instead of using
    /// it as it is.
    #[config(default = false)]
    pub weight_decay_per_label: bool,
    /// Train on a fixed number of samples per fit (`⌈samples / batch_size⌉` gradient steps,
    /// over reshuffled passes) instead of `epochs` and `min_gradient_steps`: the same training
    /// budget whatever the number of labels (BatchBALD's recipe).
    pub samples_per_fit: Option<usize>,
    /// Stop training when the validation metric stops improving and keep the best weights;
    /// needs a validation set ([`Trainer::with_validation`]).
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
    pub(super) fn improves(&self, candidate: &EvalMetrics, best: &EvalMetrics) -> bool {
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
    /// [`TrainerConfig::new`]: Adam at 1e-3, batches of 32, 10 epochs, weights reset.
    fn default() -> Self {
        Self::new()
    }
}

impl TrainerConfig {
    /// Checks the configuration ([`check`](Self::check)) and builds a trainer for `model`
    /// (moved to the autodiff form of `device`), whose inputs `batcher` builds.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn init<M, I>(
        self,
        model: M,
        device: &Device,
        batcher: InputBatcher<I, M::Input>,
    ) -> crate::error::Result<Trainer<M, I>>
    where
        M: Trainable,
        I: Clone + Send + Sync + 'static,
    {
        Trainer::new(model, device, batcher, self)
    }

    /// Gradient steps of a fit on `n` labelled items.
    pub(super) fn gradient_steps(&self, n: usize) -> usize {
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
    pub fn check(&self) -> crate::error::Result<()> {
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
