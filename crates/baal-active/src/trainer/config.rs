//! The trainer's configuration: a Burn `Config` with a checked `init`, like the layers'.

use burn::config::Config;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::Trainer;
use super::schedule::{LearningRates, LrSchedule};
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
    /// Adam with decoupled weight decay (Loshchilov & Hutter, PyTorch's `AdamW`): each step
    /// first multiplies the weights by `1 − lr · weight_decay` (`lr` the step's scheduled
    /// rate), then takes Adam's step on the gradient of the loss alone, so the decay is not
    /// rescaled by Adam's second moment as [`OptimizerConfig::Adam`]'s L2 penalty is.
    AdamW {
        /// Learning rate.
        learning_rate: f64,
        /// Decoupled weight decay (0 for none; PyTorch's default is 1e-2);
        /// `learning_rate × weight_decay` must be below 1.
        weight_decay: f32,
        /// Added to the root of the second moment, as [`OptimizerConfig::Adam`]'s (Burn's
        /// 1e-5 by default, PyTorch's is 1e-8).
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

    /// AdamW with `learning_rate`, decoupled weight decay `weight_decay` and Burn's epsilon.
    pub fn adamw(learning_rate: f64, weight_decay: f32) -> Self {
        Self::AdamW {
            learning_rate,
            weight_decay,
            epsilon: Self::BURN_ADAM_EPSILON,
        }
    }

    /// The learning rate (before any schedule).
    pub fn learning_rate(&self) -> f64 {
        match self {
            Self::Sgd { learning_rate, .. }
            | Self::Adam { learning_rate, .. }
            | Self::AdamW { learning_rate, .. } => *learning_rate,
        }
    }

    /// The optimizer, its weight decay (L2 penalty, or AdamW's decoupled decay) divided by
    /// `decay_divisor`.
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
            } => baal_bayesian::FusedAdam::optimizer(
                *epsilon,
                decay(*weight_decay).map(|config| config.penalty),
            ),
            Self::AdamW {
                weight_decay,
                epsilon,
                ..
            } => AdamWConfig::new()
                .with_epsilon(*epsilon)
                .with_weight_decay(*weight_decay / decay_divisor)
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
            Self::Adam { weight_decay, .. } | Self::AdamW { weight_decay, .. } => {
                (0.0, *weight_decay)
            }
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
        if let Self::AdamW { epsilon, .. } = self {
            check_adamw(lr, decay, *epsilon)?;
        }
        Ok(())
    }
}

/// AdamW's own limits: a positive epsilon, and a decay that shrinks the weights without
/// zeroing or flipping them (`1 − lr · weight_decay > 0`; no schedule raises the rate).
fn check_adamw(learning_rate: f64, weight_decay: f32, epsilon: f32) -> crate::error::Result<()> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(ActiveError::InvalidConfig {
            what: "AdamW epsilon",
            reason: format!("must be a positive number, got {epsilon}"),
        });
    }
    let shrink = learning_rate * f64::from(weight_decay);
    if shrink >= 1.0 {
        return Err(ActiveError::InvalidConfig {
            what: "AdamW weight decay",
            reason: format!(
                "each step multiplies the weights by 1 − learning rate × weight decay = \
                 1 − {learning_rate} × {weight_decay}, which is not positive: lower either"
            ),
        });
    }
    Ok(())
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
    /// How the learning rate changes over each fit's gradient steps, after the warm-up
    /// ([`LearningRates`] has the formulas); constant by default.
    #[config(default = "LrSchedule::Constant")]
    pub lr_schedule: LrSchedule,
    /// Gradient steps at the start of each fit over which the rate climbs linearly from 0 to
    /// the optimizer's rate before the schedule starts (0: none). Fewer than the shortest fit
    /// this configuration runs ([`fewest_gradient_steps`](Self::fewest_gradient_steps)).
    #[config(default = 0)]
    pub warmup_steps: usize,
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

    /// Gradient steps of a fit on `n` labelled items (at most, with early stopping).
    pub fn gradient_steps(&self, n: usize) -> usize {
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

    /// The fewest gradient steps a fit of this configuration runs, whatever the number of
    /// labels (more labels, more steps): `max(epochs, min_gradient_steps)` (one label, one
    /// step a pass), or `⌈samples_per_fit / batch_size⌉` with a sample budget. Early stopping
    /// may stop a fit sooner; the schedule still spans the full count.
    pub fn fewest_gradient_steps(&self) -> usize {
        match self.samples_per_fit {
            Some(samples) => samples.div_ceil(self.batch_size.max(1)),
            None => self.epochs.max(self.min_gradient_steps),
        }
    }

    /// The learning rate of every gradient step of a fit on `labelled` items
    /// ([`gradient_steps`](Self::gradient_steps) of them, the cap when early stopping ends the
    /// fit sooner): the warm-up, then the schedule.
    ///
    /// # Errors
    /// An invalid configuration ([`check`](Self::check)).
    pub fn learning_rates(&self, labelled: usize) -> crate::error::Result<LearningRates> {
        self.check()?;
        self.learning_rates_over(self.gradient_steps(labelled))
    }

    /// The learning rates of a fit of `total_steps` gradient steps.
    pub(super) fn learning_rates_over(
        &self,
        total_steps: usize,
    ) -> crate::error::Result<LearningRates> {
        LearningRates::new(
            self.optimizer.learning_rate(),
            self.lr_schedule.clone(),
            self.warmup_steps,
            total_steps,
        )
    }

    /// Checks every value.
    ///
    /// # Errors
    /// A zero batch size, epoch count (without a sample budget), sample budget, patience or
    /// evaluation iteration count, a bad learning rate, momentum or weight decay, a schedule
    /// [`LrSchedule::check`] refuses, or a warm-up as long as the shortest fit
    /// ([`fewest_gradient_steps`](Self::fewest_gradient_steps)).
    pub fn check(&self) -> crate::error::Result<()> {
        self.optimizer.check()?;
        self.lr_schedule.check(self.optimizer.learning_rate())?;
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
        let fewest = self.fewest_gradient_steps();
        if self.warmup_steps > 0 && self.warmup_steps >= fewest {
            return Err(ActiveError::InvalidConfig {
                what: "warm-up",
                reason: format!(
                    "{} warm-up steps are not fewer than the {fewest} gradient steps of the \
                     shortest fit this configuration runs (max(epochs, min gradient steps), or \
                     the sample budget over the batch size): raise min_gradient_steps or warm \
                     up over fewer steps",
                    self.warmup_steps
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(config: &TrainerConfig) -> String {
        config.check().expect_err("invalid").to_string()
    }

    #[test]
    fn a_warmup_must_be_shorter_than_the_shortest_fit() {
        // 10 epochs, no minimum: one label trains 10 steps.
        let config = TrainerConfig::new().with_epochs(10);
        assert_eq!(config.fewest_gradient_steps(), 10);
        assert!(config.clone().with_warmup_steps(9).check().is_ok());
        let err = refused(&config.clone().with_warmup_steps(10));
        assert!(
            err.contains("warm-up") && err.contains("min_gradient_steps"),
            "{err}"
        );
        // A minimum of gradient steps makes room for a longer one.
        let longer = config.with_min_gradient_steps(200).with_warmup_steps(150);
        assert!(longer.check().is_ok());
        assert_eq!(longer.learning_rates(1).expect("valid").total_steps(), 200);
        // A sample budget of 100 in batches of 32: 4 steps at least.
        let budget = TrainerConfig::new().with_samples_per_fit(Some(100));
        assert_eq!(budget.fewest_gradient_steps(), 4);
        assert!(refused(&budget.with_warmup_steps(4)).contains("warm-up"));
    }

    #[test]
    fn bad_schedules_and_adamw_settings_are_errors_from_check() {
        let base = TrainerConfig::new().with_optimizer(OptimizerConfig::adamw(1e-2, 1e-2));
        assert!(base.check().is_ok());
        let step = |every_steps, gamma| LrSchedule::Step { every_steps, gamma };
        for (schedule, word) in [
            (step(0, 0.5), "every_steps"),
            (step(5, 0.0), "gamma"),
            (step(5, -1.0), "gamma"),
            (LrSchedule::Cosine { min_lr: 0.1 }, "min_lr"),
            (LrSchedule::Cosine { min_lr: -1e-4 }, "min_lr"),
        ] {
            let err = refused(&base.clone().with_lr_schedule(schedule.clone()));
            assert!(err.contains(word), "{schedule:?}: {err}");
        }
        for (optimizer, word) in [
            (OptimizerConfig::adamw(-1e-3, 0.0), "learning rate"),
            (OptimizerConfig::adamw(1e-3, -0.1), "weight decay"),
            (
                OptimizerConfig::adamw(0.5, 2.0),
                "1 − learning rate × weight decay",
            ),
            (
                OptimizerConfig::AdamW {
                    learning_rate: 1e-3,
                    weight_decay: 0.0,
                    epsilon: 0.0,
                },
                "epsilon",
            ),
        ] {
            let err = refused(&base.clone().with_optimizer(optimizer.clone()));
            assert!(err.contains(word), "{optimizer:?}: {err}");
        }
    }

    #[test]
    fn adamw_and_schedules_save_and_load() {
        let config = TrainerConfig::new()
            .with_optimizer(OptimizerConfig::adamw(3e-4, 0.05))
            .with_lr_schedule(LrSchedule::Step {
                every_steps: 100,
                gamma: 0.5,
            })
            .with_warmup_steps(5);
        let json = serde_json::to_string(&config).expect("json");
        assert!(
            json.contains(r#""AdamW":{"learning_rate":0.0003,"weight_decay":0.05"#),
            "{json}"
        );
        let read: TrainerConfig = serde_json::from_str(&json).expect("reads");
        assert_eq!(read, config);
        // AdamW's epsilon defaults to Burn's, as Adam's.
        let short = r#"{"AdamW":{"learning_rate":0.001,"weight_decay":0.01}}"#;
        let read: OptimizerConfig = serde_json::from_str(short).expect("reads");
        assert_eq!(read, OptimizerConfig::adamw(1e-3, 1e-2));
    }
}
