//! What a reproduction runs: the dataset, the model, and the profile of settings.

use std::path::PathBuf;

use baal::active::{
    ClassificationReport, DirichletCalibratorConfig, EarlyStoppingConfig, HeuristicKind,
    HeuristicParams, OptimizerConfig, Posterior, StepRecord, TrainerConfig,
};
use baal::data::NamedDataset;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The datasets of the reproductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// Fashion-MNIST, balanced (the baseline: random acquisition is strong on it).
    FashionMnist,
    /// The BatchBALD paper's Repeated-MNIST construction on Fashion-MNIST: every pool image
    /// three times, each copy with its own Gaussian noise (σ = 0.1 on normalised pixels); the
    /// test set clean.
    RepeatedFashionMnist,
    /// Fashion-MNIST with an imbalanced pool, as real pools are (the README's main job): a
    /// few rare classes (by default pullovers, sandals and bags at 1/50 of a common class), a
    /// couple of labelled examples of each class to start from, a stratified test set and
    /// balanced accuracy as the summary's metric.
    FashionMnistImbalanced,
    /// MNIST.
    Mnist,
    /// CIFAR-10.
    #[value(alias = "cifar-10")]
    Cifar10,
}

impl DatasetName {
    /// The number of classes (10 for every dataset here).
    #[must_use]
    pub fn classes(self) -> usize {
        10
    }

    /// The dataset its images come from.
    pub fn source(self) -> NamedDataset {
        match self {
            Self::FashionMnist | Self::RepeatedFashionMnist | Self::FashionMnistImbalanced => {
                NamedDataset::FashionMnist
            }
            Self::Mnist => NamedDataset::Mnist,
            Self::Cifar10 => NamedDataset::Cifar10,
        }
    }

    /// The command-line name (and results folder).
    pub fn name(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::RepeatedFashionMnist => "repeated-fashion-mnist",
            Self::FashionMnistImbalanced => "fashion-mnist-imbalanced",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
        }
    }
}

pub use baal_zoo::models::ModelKind;

/// Everything a reproduction's runs share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Profile name (`quick` or `full`); runs live under `runs/<name>/`.
    pub name: String,
    /// The model.
    pub model: ModelKind,
    /// Initial labels, balanced over the classes.
    pub initial_labels: usize,
    /// Labels per step.
    pub query_size: usize,
    /// MC iterations T of the pool predictions.
    pub iterations: usize,
    /// Pool items scored per step (a random subset, baal's `max_sample`); `None` scores the
    /// whole pool.
    pub pool_subset: Option<usize>,
    /// The pool: a fixed random subset of this many training images (for
    /// Repeated-Fashion-MNIST, the images that are then repeated); `None`: every training
    /// image not held out for validation.
    pub pool_size: Option<usize>,
    /// Training images held out of the pool for early stopping (a fixed random subset, the
    /// same for every run); 0 for none.
    pub validation_size: usize,
    /// Test items evaluated (a fixed random subset; 0 for the whole test set).
    pub test_subset: usize,
    /// Labelling budget: runs stop once trained on this many labels.
    pub max_labelled: usize,
    /// Heuristics compared.
    pub heuristics: Vec<HeuristicKind>,
    /// Number of seeds.
    pub seeds: usize,
    /// Target accuracies of the summary.
    pub targets: Vec<f64>,
    /// The target the summary's ratios of labels are taken at (one of `targets`).
    pub main_target: f64,
    /// Sample every heuristic's predictions consistently (one network per MC iteration for
    /// every pool item), not only those that need it (BatchBALD, EPIG).
    pub consistent_samples: bool,
    /// The approximate posterior: the model's MC layers (`mc`, the default) or a deep
    /// ensemble (`ensemble:E`, `ensemble:E+mc`).
    #[serde(default, skip_serializing_if = "is_mc")]
    pub posterior: Posterior,
    /// Fit a Dirichlet calibration map on the validation images after every fit and predict
    /// through it (needs a validation set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<DirichletCalibratorConfig>,
    /// Training settings (a constant learning rate and no warm-up are left out of the JSON,
    /// as before schedules existed).
    #[serde(with = "crate::trainer_json")]
    pub trainer: TrainerConfig,
    /// torchvision VGG16 weights (`.pth`) loaded into [`ModelKind::Vgg16`] before training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// An imbalanced pool, as real pools are: the listed classes keep 1 / ratio of a common
    /// class's items (and the test subset is stratified, every class the same count); `None`
    /// keeps the dataset's own balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imbalance: Option<Imbalance>,
    /// The initial labels as a user starts: this many labelled examples of every class (0:
    /// none), plus [`initial_labels`](Self::initial_labels) drawn at random from the pool;
    /// `None`: `initial_labels` balanced over the classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_per_class: Option<usize>,
    /// What the summary measures: its targets, curves, areas and paired differences.
    #[serde(default, skip_serializing_if = "SummaryMetric::is_accuracy")]
    pub metric: SummaryMetric,
    /// Train on the labels of the last this-many labelling steps only (baal's
    /// `last_active_steps`; the initial labels are step 1); `None`: every label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_steps: Option<usize>,
    /// Training images held out of the pool, unlabelled, as the stopping set of
    /// [`Experiment::with_stopping_set`](baal::active::Experiment::with_stopping_set): each
    /// step logs the agreement of successive models on them, and the summary says where
    /// stopping on it would have stopped (needs a pool size); `None`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_set: Option<usize>,
}

/// The classes an imbalanced pool makes rare, and how rare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Imbalance {
    /// The rare classes (class indices, ascending).
    pub rare_classes: Vec<usize>,
    /// A rare class has 1 / ratio of a common class's items in the pool (a common class's
    /// mean count in the pool, divided by the ratio and rounded, at least 1).
    pub ratio: f64,
}

impl Imbalance {
    /// Checks the classes and the ratio (the classes' range is checked against the data).
    ///
    /// # Errors
    /// No rare class, a class named twice, or a ratio below 1 or not finite.
    pub fn check(&self) -> Result<(), Error> {
        if self.rare_classes.is_empty() {
            return Err("--rare-classes names no class".into());
        }
        let mut sorted = self.rare_classes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.rare_classes.len() {
            return Err(format!(
                "--rare-classes names a class twice: {:?}",
                self.rare_classes
            )
            .into());
        }
        if !(self.ratio.is_finite() && self.ratio >= 1.0) {
            return Err(format!(
                "--imbalance must be a number of at least 1 (a rare class has 1/R of a common \
                 class's items), got {}",
                self.ratio
            )
            .into());
        }
        Ok(())
    }

    /// Whether `class` is rare.
    #[must_use]
    pub fn is_rare(&self, class: usize) -> bool {
        self.rare_classes.contains(&class)
    }
}

/// The test metric of a reproduction's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SummaryMetric {
    /// Accuracy of the MC-averaged prediction.
    #[default]
    Accuracy,
    /// Balanced accuracy: the mean of the classes' recalls (every class counts the same).
    BalancedAccuracy,
}

impl SummaryMetric {
    /// Whether this is the default, [`SummaryMetric::Accuracy`].
    #[must_use]
    pub fn is_accuracy(&self) -> bool {
        *self == Self::Accuracy
    }

    /// The metric of one step's test evaluation (balanced accuracy needs the step's
    /// classification report: NaN without one).
    #[must_use]
    pub fn of(self, record: &StepRecord) -> f64 {
        match self {
            Self::Accuracy => record.test_accuracy,
            Self::BalancedAccuracy => record
                .test_report
                .as_ref()
                .map_or(f64::NAN, ClassificationReport::balanced_accuracy),
        }
    }

    /// Its name in the summary's prose.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "test accuracy",
            Self::BalancedAccuracy => "balanced accuracy",
        }
    }
}

/// Whether `posterior` is the default, which profiles from before ensembles did not write.
fn is_mc(posterior: &Posterior) -> bool {
    *posterior == Posterior::Mc
}

/// The training recipe of the MNIST-like quick profiles, chosen on random-acquisition runs
/// only (docs/reproductions.md has the table): Adam 2e-3, batches of 32, a fixed 6400 samples
/// (200 gradient steps) per fit. Weight decay `c / N` and early stopping were measured too
/// and did not beat it beyond seed noise; longer training did, by 0.005, at 50% more time.
fn mnist_quick_trainer() -> TrainerConfig {
    TrainerConfig::default()
        .with_optimizer(OptimizerConfig::adam(2e-3))
        .with_batch_size(32)
        .with_samples_per_fit(Some(6400))
        .with_eval_iterations(5)
}

/// The training recipe of the MNIST-like full profiles: the quick recipe's steps as an upper
/// bound, with early stopping on the held-out validation images (at 20 labels most of the
/// 300 steps only overfit).
fn mnist_full_trainer() -> TrainerConfig {
    mnist_quick_trainer()
        .with_samples_per_fit(Some(32 * 300))
        .with_early_stopping(Some(EarlyStoppingConfig::new(3).with_check_every(25)))
}

impl Profile {
    /// The part of the profile that decides what one (heuristic, seed) run does: all but the
    /// seeds, the heuristics and the summary's targets. Runs of profiles that agree on it are
    /// the same, so more seeds or another choice of heuristics reuse finished runs.
    #[must_use]
    pub fn run_settings(&self) -> Self {
        Self {
            heuristics: Vec::new(),
            seeds: 0,
            targets: Vec::new(),
            main_target: 0.0,
            metric: SummaryMetric::Accuracy,
            ..self.clone()
        }
    }

    /// The initial labels of a run on data of `classes` classes: the per-class examples and
    /// the random ones, or the balanced ones.
    #[must_use]
    pub fn initial_total(&self, classes: usize) -> usize {
        self.seed_per_class.unwrap_or(0) * classes + self.initial_labels
    }

    /// Steps of one run on data of `classes` classes: the first on the initial labels, then
    /// one per query until the labelling budget is reached.
    #[must_use]
    pub fn steps_per_run(&self, classes: usize) -> usize {
        1 + self
            .max_labelled
            .saturating_sub(self.initial_total(classes))
            .div_ceil(self.query_size.max(1))
    }

    /// Checks what the type system cannot.
    ///
    /// # Errors
    /// A zero query size, iteration count, pool subset, pool size or seed count, no
    /// heuristic, a heuristic the reproductions cannot run (one that needs a target set:
    /// EPIG), a main target that is not one of the targets, VGG16 weights for another model,
    /// or an invalid trainer configuration.
    pub fn check(&self) -> Result<(), Error> {
        if self.initial_labels == 0 && self.seed_per_class.unwrap_or(0) == 0 {
            return Err(
                "no initial labels: set --initial-labels or --seed-per-class above 0".into(),
            );
        }
        if let Some(imbalance) = &self.imbalance {
            imbalance.check()?;
        }
        for (flag, value) in [
            ("query-size", self.query_size),
            ("iterations", self.iterations),
            ("seeds", self.seeds),
            ("pool-subset", self.pool_subset.unwrap_or(1)),
            ("pool-size", self.pool_size.unwrap_or(1)),
        ] {
            if value == 0 {
                return Err(format!("--{flag} must be at least 1").into());
            }
        }
        if self.heuristics.is_empty() {
            return Err("no heuristic to run".into());
        }
        // What a heuristic needs is the built heuristic's to say, as baal serve asks it.
        let params = HeuristicParams::new().with_query_size(self.query_size);
        for &kind in &self.heuristics {
            let heuristic = kind
                .build(&params)
                .map_err(|e| format!("--heuristic {kind}: {e}"))?;
            if heuristic.needs_target() {
                return Err(
                    format!("{kind} needs a target set: the reproductions do not run it").into(),
                );
            }
        }
        if !self.targets.contains(&self.main_target) {
            return Err(format!(
                "the main target {} is not one of the targets {:?}",
                self.main_target, self.targets
            )
            .into());
        }
        if self.weights.is_some() && self.model != ModelKind::Vgg16 {
            return Err(format!(
                "weights are torchvision VGG16 weights: they need the vgg16 model, not {:?}",
                self.model
            )
            .into());
        }
        if self.trainer.early_stopping.is_some() && self.validation_size == 0 {
            return Err(
                "early stopping needs a validation set: set --validation-size above 0".into(),
            );
        }
        if self.stopping_set.is_some() && self.pool_size.is_none() {
            return Err(
                "a stopping set is held out of the training images the pool leaves: set \
                 --pool-size"
                    .into(),
            );
        }
        if self.last_active_steps == Some(0) {
            return Err("--last-active-steps must be at least 1 (or left out: every label)".into());
        }
        if self.calibration.is_some() && self.validation_size == 0 {
            return Err("calibration needs a validation set: set --validation-size above 0".into());
        }
        self.trainer.check()?;
        Ok(())
    }

    /// The default profile of `dataset` (`quick` or full).
    pub fn for_dataset(dataset: DatasetName, quick: bool) -> Self {
        match dataset {
            DatasetName::FashionMnist | DatasetName::Mnist => Self::mnist_like(quick),
            DatasetName::RepeatedFashionMnist => Self::repeated_fashion_mnist(quick),
            DatasetName::FashionMnistImbalanced => Self::fashion_mnist_imbalanced(quick),
            DatasetName::Cifar10 => Self::cifar10(quick),
        }
    }

    /// Fashion-MNIST's and MNIST's profiles: BALD, entropy, BatchBALD and random on a small
    /// CNN.
    fn mnist_like(quick: bool) -> Self {
        if quick {
            Self {
                name: "quick".into(),
                model: ModelKind::SmallCnn,
                initial_labels: 100,
                query_size: 20,
                iterations: 20,
                pool_subset: Some(2000),
                pool_size: None,
                validation_size: 0,
                test_subset: 2000,
                max_labelled: 400,
                heuristics: bald_entropy_batchbald_random(),
                seeds: 3,
                targets: vec![0.70, 0.75, 0.80],
                main_target: 0.75,
                consistent_samples: false,
                posterior: Posterior::Mc,
                calibration: None,
                trainer: mnist_quick_trainer(),
                weights: None,
                imbalance: None,
                seed_per_class: None,
                metric: SummaryMetric::Accuracy,
                last_active_steps: None,
                stopping_set: None,
            }
        } else {
            Self {
                name: "full".into(),
                model: ModelKind::SmallCnn,
                initial_labels: 20,
                query_size: 10,
                iterations: 50,
                pool_subset: Some(2000),
                pool_size: None,
                validation_size: 200,
                test_subset: 5000,
                max_labelled: 500,
                heuristics: bald_entropy_batchbald_random(),
                seeds: 3,
                targets: vec![0.70, 0.75, 0.80],
                main_target: 0.75,
                consistent_samples: false,
                posterior: Posterior::Mc,
                calibration: None,
                trainer: mnist_full_trainer(),
                weights: None,
                imbalance: None,
                seed_per_class: None,
                metric: SummaryMetric::Accuracy,
                last_active_steps: None,
                stopping_set: None,
            }
        }
    }

    /// Repeated-Fashion-MNIST's profiles: BALD, BatchBALD and random, the paper's consistent
    /// samples.
    fn repeated_fashion_mnist(quick: bool) -> Self {
        if quick {
            Self {
                name: "quick".into(),
                model: ModelKind::SmallCnn,
                initial_labels: 20,
                query_size: 10,
                iterations: 20,
                pool_subset: None,
                pool_size: Some(1000),
                validation_size: 0,
                test_subset: 2000,
                max_labelled: 200,
                heuristics: vec![
                    HeuristicKind::Bald,
                    HeuristicKind::BatchBald,
                    HeuristicKind::Random,
                ],
                seeds: 3,
                targets: vec![0.60, 0.65, 0.70],
                main_target: 0.65,
                // The paper's setup: batchbald_redux samples every heuristic consistently
                // (docs/reproductions.md has the per-item variant too).
                consistent_samples: true,
                posterior: Posterior::Mc,
                calibration: None,
                trainer: mnist_quick_trainer(),
                weights: None,
                imbalance: None,
                seed_per_class: None,
                metric: SummaryMetric::Accuracy,
                last_active_steps: None,
                stopping_set: None,
            }
        } else {
            Self {
                name: "full".into(),
                model: ModelKind::SmallCnn,
                initial_labels: 20,
                query_size: 10,
                iterations: 50,
                pool_subset: None,
                pool_size: Some(2000),
                validation_size: 200,
                test_subset: 5000,
                max_labelled: 300,
                heuristics: vec![
                    HeuristicKind::Bald,
                    HeuristicKind::BatchBald,
                    HeuristicKind::Random,
                ],
                seeds: 3,
                targets: vec![0.65, 0.70, 0.75],
                main_target: 0.70,
                // The paper's setup: batchbald_redux samples every heuristic consistently
                // (docs/reproductions.md has the per-item variant too).
                consistent_samples: true,
                posterior: Posterior::Mc,
                calibration: None,
                trainer: mnist_full_trainer(),
                weights: None,
                imbalance: None,
                seed_per_class: None,
                metric: SummaryMetric::Accuracy,
                last_active_steps: None,
                stopping_set: None,
            }
        }
    }

    /// The imbalanced Fashion-MNIST profiles: three rare classes at 1/50 of a common class,
    /// two labelled examples of every class plus random ones to start, the whole pool scored
    /// every step, balanced accuracy; BALD, entropy, margin, BatchBALD, power-BALD and random.
    fn fashion_mnist_imbalanced(quick: bool) -> Self {
        let mut profile = Self::mnist_like(quick);
        profile.name = if quick { "quick" } else { "full" }.into();
        profile.imbalance = Some(Imbalance {
            rare_classes: DEFAULT_RARE_CLASSES.to_vec(),
            ratio: 50.0,
        });
        profile.seed_per_class = Some(2);
        profile.initial_labels = 20;
        profile.pool_subset = None;
        profile.metric = SummaryMetric::BalancedAccuracy;
        profile.heuristics = vec![
            HeuristicKind::Bald,
            HeuristicKind::Entropy,
            HeuristicKind::Margin,
            HeuristicKind::BatchBald,
            HeuristicKind::PowerBald,
            HeuristicKind::Random,
        ];
        profile.targets = vec![0.60, 0.65, 0.70];
        profile.main_target = 0.65;
        if quick {
            profile.pool_size = Some(10_000);
            profile.max_labelled = 340;
        } else {
            profile.pool_size = None;
            profile.query_size = 10;
            profile.max_labelled = 400;
        }
        profile
    }

    /// CIFAR-10's profiles: BALD and random, a small VGG (quick) or VGG16 (full).
    fn cifar10(quick: bool) -> Self {
        if quick {
            Self {
                name: "quick".into(),
                model: ModelKind::VggSmall,
                initial_labels: 100,
                query_size: 50,
                iterations: 10,
                pool_subset: Some(500),
                pool_size: None,
                validation_size: 0,
                test_subset: 1000,
                max_labelled: 300,
                heuristics: vec![HeuristicKind::Bald, HeuristicKind::Random],
                seeds: 1,
                targets: vec![0.25, 0.30],
                main_target: 0.30,
                consistent_samples: false,
                posterior: Posterior::Mc,
                calibration: None,
                // Adam: with SGD (lr 0.01, momentum 0.9) the six unnormalised convolutions
                // stayed on the initial plateau (loss 2.30) for all of the quick budget.
                trainer: TrainerConfig::default()
                    .with_optimizer(OptimizerConfig::Adam {
                        learning_rate: 1e-3,
                        weight_decay: 5e-4,
                        epsilon: OptimizerConfig::BURN_ADAM_EPSILON,
                    })
                    .with_batch_size(32)
                    .with_epochs(5)
                    .with_min_gradient_steps(100)
                    .with_eval_iterations(5),
                weights: None,
                imbalance: None,
                seed_per_class: None,
                metric: SummaryMetric::Accuracy,
                last_active_steps: None,
                stopping_set: None,
            }
        } else {
            Self {
                name: "full".into(),
                model: ModelKind::Vgg16,
                initial_labels: 1000,
                query_size: 100,
                iterations: 20,
                pool_subset: Some(10_000),
                pool_size: None,
                validation_size: 0,
                test_subset: 0,
                max_labelled: 10_000,
                heuristics: vec![HeuristicKind::Bald, HeuristicKind::Random],
                seeds: 3,
                targets: vec![0.50, 0.60, 0.70],
                main_target: 0.60,
                consistent_samples: false,
                posterior: Posterior::Mc,
                calibration: None,
                trainer: TrainerConfig::default()
                    .with_optimizer(OptimizerConfig::Sgd {
                        learning_rate: 0.001,
                        momentum: 0.9,
                        weight_decay: 5e-4,
                    })
                    .with_batch_size(32)
                    .with_epochs(20)
                    .with_eval_iterations(20),
                weights: None,
                imbalance: None,
                seed_per_class: None,
                metric: SummaryMetric::Accuracy,
                last_active_steps: None,
                stopping_set: None,
            }
        }
    }
}

/// The imbalanced profiles' rare classes: one of each of Fashion-MNIST's three groups of
/// look-alikes (tops: pullover 2; footwear: sandal 5; the rest: bag 8), picked before any run.
pub const DEFAULT_RARE_CLASSES: [usize; 3] = [2, 5, 8];

/// BALD, entropy, BatchBALD and random: the MNIST-like profiles' heuristics.
fn bald_entropy_batchbald_random() -> Vec<HeuristicKind> {
    vec![
        HeuristicKind::Bald,
        HeuristicKind::Entropy,
        HeuristicKind::BatchBald,
        HeuristicKind::Random,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_profile_passes_its_checks() {
        for dataset in DatasetName::value_variants() {
            for quick in [true, false] {
                let profile = Profile::for_dataset(*dataset, quick);
                profile
                    .check()
                    .unwrap_or_else(|e| panic!("{dataset:?} quick={quick}: {e}"));
            }
        }
    }

    #[test]
    fn steps_per_run_count_the_initial_step_and_a_last_partial_query() {
        let quick = Profile::for_dataset(DatasetName::FashionMnist, true);
        // 100 labels, +20 to 400: 100, 120, ..., 400.
        assert_eq!(quick.steps_per_run(10), 16);
        let mut partial = quick;
        partial.max_labelled = 410;
        assert_eq!(partial.steps_per_run(10), 17);
        // 2 of each of 10 classes and 20 random: 40, then +20 to 340.
        let imbalanced = Profile::for_dataset(DatasetName::FashionMnistImbalanced, true);
        assert_eq!(imbalanced.initial_total(10), 40);
        assert_eq!(imbalanced.steps_per_run(10), 16);
    }

    #[test]
    fn bad_profiles_are_refused_with_the_flag_to_fix() {
        let good = Profile::for_dataset(DatasetName::FashionMnist, true);
        let mut zero_query = good.clone();
        zero_query.query_size = 0;
        assert!(
            zero_query
                .check()
                .expect_err("zero")
                .to_string()
                .contains("--query-size")
        );
        let mut epig = good.clone();
        epig.heuristics.push(HeuristicKind::Epig);
        assert!(
            epig.check()
                .expect_err("epig")
                .to_string()
                .contains("target set")
        );
        let mut target = good.clone();
        target.main_target = 0.9;
        assert!(target.check().is_err());
        let mut early = good;
        early.validation_size = 0;
        early.trainer.early_stopping = Some(EarlyStoppingConfig::new(2));
        assert!(
            early
                .check()
                .expect_err("no validation")
                .to_string()
                .contains("validation")
        );
    }
}
