//! The command line's changes to a default profile: typed choices (clap `ValueEnum`s, not
//! strings), applied and checked in one place, so that a profile that exists is one that runs.

use baal::active::{
    DirichletCalibratorConfig, EarlyStoppingConfig, HeuristicKind, LrSchedule, OptimizerConfig,
    Posterior, ValidationMetric,
};
use clap::{Args, ValueEnum};

use crate::Error;
use crate::profile::{DatasetName, Imbalance, ModelKind, Profile, SummaryMetric};

/// The validation metric of early stopping, as a command-line choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetricChoice {
    /// Accuracy, ties broken by the lower NLL.
    Accuracy,
    /// Negative log-likelihood.
    Nll,
}

impl From<MetricChoice> for ValidationMetric {
    fn from(choice: MetricChoice) -> Self {
        match choice {
            MetricChoice::Accuracy => Self::Accuracy,
            MetricChoice::Nll => Self::Nll,
        }
    }
}

/// The optimizer, as a command-line choice: the Adam family, whose settings carry over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerChoice {
    /// Adam, its weight decay an L2 penalty.
    Adam,
    /// AdamW: Adam with decoupled weight decay (PyTorch's `AdamW`).
    Adamw,
}

/// Reads `--lr-schedule`: `constant`, `cosine` (down to 0), `cosine:MIN_LR`, or
/// `step:N:GAMMA` (the rate times GAMMA every N gradient steps). The values are checked with
/// the profile.
///
/// # Errors
/// Another form, or a number that does not parse.
pub fn parse_lr_schedule(text: &str) -> Result<LrSchedule, String> {
    let number = |part: &str| -> Result<f64, String> {
        part.parse()
            .map_err(|_| format!("{part:?} in --lr-schedule {text} is not a number"))
    };
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        ["constant"] => Ok(LrSchedule::Constant),
        ["cosine"] => Ok(LrSchedule::Cosine { min_lr: 0.0 }),
        ["cosine", min_lr] => Ok(LrSchedule::Cosine {
            min_lr: number(min_lr)?,
        }),
        ["step", every, gamma] => Ok(LrSchedule::Step {
            every_steps: every
                .parse()
                .map_err(|_| format!("{every:?} in --lr-schedule {text} is not a step count"))?,
            gamma: number(gamma)?,
        }),
        _ => Err(format!(
            "expected constant, cosine, cosine:MIN_LR or step:N:GAMMA, got {text:?}"
        )),
    }
}

/// Changes to a dataset's default profile; `None` keeps the profile's value. The flags of the
/// `reproduce` binary.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct ProfileOverrides {
    /// Number of seeds (default: the profile's).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Heuristics, comma-separated (default: the profile's).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub heuristics: Option<Vec<HeuristicKind>>,
    /// Model (default: the profile's).
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// torchvision VGG16 weights (`.pth` state dict, e.g. ImageNet's `vgg16-397923af.pth`)
    /// loaded into the vgg16 model before training; its 1000-class head is left out.
    #[arg(long)]
    pub weights: Option<std::path::PathBuf>,
    /// Labelling budget (default: the profile's).
    #[arg(long)]
    pub max_labelled: Option<usize>,
    /// Initial labels: balanced over the classes, or with --seed-per-class the random ones
    /// beside the per-class examples (default: the profile's).
    #[arg(long)]
    pub initial_labels: Option<usize>,
    /// Start from this many labelled examples of every class plus --initial-labels random
    /// ones from the pool, as a user who brings a couple of examples of each class (0: the
    /// random ones only) (default: the profile's).
    #[arg(long, conflicts_with = "balanced_initial")]
    pub seed_per_class: Option<usize>,
    /// Start from --initial-labels balanced over the classes (the balanced profiles' start).
    #[arg(long)]
    pub balanced_initial: bool,
    /// Make these classes rare in the pool (class indices, comma-separated; Fashion-MNIST:
    /// 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker,
    /// 8 bag, 9 ankle boot). With a profile that has no rare classes, --imbalance sets how rare
    /// (default 50).
    #[arg(long, value_delimiter = ',')]
    pub rare_classes: Option<Vec<usize>>,
    /// How rare: each rare class keeps 1/R of a common class's items in the pool; 1 gives
    /// the dataset's own balance back (default: the profile's, else 50).
    #[arg(long)]
    pub imbalance: Option<f64>,
    /// The summary's metric: accuracy or balanced-accuracy (the mean of the classes'
    /// recalls) (default: the profile's).
    #[arg(long, value_enum)]
    pub metric: Option<SummaryMetric>,
    /// MC iterations T of the pool predictions (default: the profile's).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Labels per step (default: the profile's).
    #[arg(long)]
    pub query_size: Option<usize>,
    /// Test items evaluated, a fixed random subset; 0 for the whole test set (default: the
    /// profile's).
    #[arg(long)]
    pub test_subset: Option<usize>,
    /// Pool items scored per step, a random subset; 0 scores the whole pool (default: the
    /// profile's).
    #[arg(long)]
    pub pool_subset: Option<usize>,
    /// The pool: a fixed random subset of this many training images; 0 for all of them
    /// (default: the profile's).
    #[arg(long)]
    pub pool_size: Option<usize>,
    /// Training images held out of the pool for early stopping (default: the profile's).
    #[arg(long)]
    pub validation_size: Option<usize>,
    /// Sample every heuristic's predictions consistently (default: the profile's).
    #[arg(long)]
    pub consistent_samples: Option<bool>,
    /// The posterior: `mc` (the model's MC layers, T samples), `ensemble:E` (E models
    /// trained from different weights, each predicting once), `ensemble:E+mc` (E × T
    /// samples), `snapshots:K` (the K snapshots of one training, each predicting once; the
    /// learning-rate schedule restarts in each part) or `snapshots:K+mc` (default: the
    /// profile's, `mc`).
    #[arg(long)]
    pub posterior: Option<Posterior>,
    /// Calibrate every model with a Dirichlet map fitted on the validation images
    /// (`--validation-size` above 0) and predict through it (default: off).
    #[arg(long)]
    pub calibrate: bool,
    /// Items per gradient step (default: the profile's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate (default: the profile's).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Weight decay (L2 penalty; with --weight-decay-per-label, c in λ = c / N).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Adam's (or AdamW's) epsilon (the profiles use Burn's 1e-5; PyTorch's is 1e-8). An
    /// error with SGD.
    #[arg(long)]
    pub adam_epsilon: Option<f32>,
    /// The optimizer: adam, or adamw (decoupled weight decay: each step multiplies the
    /// weights by 1 − lr × --weight-decay); the profile's learning rate, weight decay and
    /// epsilon carry over (default: the profile's).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerChoice>,
    /// The learning rate over each fit's gradient steps: constant, cosine (PyTorch's
    /// CosineAnnealingLR down to 0 over the fit), cosine:MIN_LR, or step:N:GAMMA (the rate
    /// times GAMMA every N steps) (default: the profile's, constant).
    #[arg(long, value_parser = parse_lr_schedule)]
    pub lr_schedule: Option<LrSchedule>,
    /// Gradient steps at the start of each fit over which the rate climbs linearly to the
    /// learning rate, before the schedule (default: the profile's, 0).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Train on the labels of the last K labelling steps only (baal's last_active_steps; the
    /// initial labels are step 1, each query the next); 0: every label (default: the
    /// profile's, every label). Pair it with --reset-weights false to fine-tune.
    #[arg(long)]
    pub last_active_steps: Option<usize>,
    /// Hold out this many more training images, unlabelled, as a stopping set: each step
    /// logs how far successive models agree on them (Cohen's kappa), and the summary says
    /// where stopping on that agreement would have stopped; 0: none (default: the
    /// profile's, none). Needs a pool size.
    #[arg(long)]
    pub stopping_set: Option<usize>,
    /// Reset the weights before each fit (default: the profile's, true); false keeps
    /// training the previous step's model.
    #[arg(long)]
    pub reset_weights: Option<bool>,
    /// Divide the weight decay by the number of labelled items (default: the profile's).
    #[arg(long)]
    pub weight_decay_per_label: Option<bool>,
    /// Epochs per training (default: the profile's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Minimum gradient steps per training (default: the profile's).
    #[arg(long)]
    pub min_steps: Option<usize>,
    /// Train on this many samples per fit instead of epochs; 0 goes back to epochs (default:
    /// the profile's).
    #[arg(long)]
    pub samples_per_fit: Option<usize>,
    /// Early stopping: validation checks without improvement before training stops; 0 turns
    /// it off (default: the profile's).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Early stopping: gradient steps between validation checks, 0 for one per pass.
    #[arg(long)]
    pub check_every: Option<usize>,
    /// Early stopping: the validation metric.
    #[arg(long, value_enum)]
    pub validation_metric: Option<MetricChoice>,
}

/// A rare class's share of a common class's items when --rare-classes is given without
/// --imbalance to a profile that has none.
pub const DEFAULT_IMBALANCE: f64 = 50.0;

impl Profile {
    /// The default profile of `dataset` (quick or full) with `overrides` applied, checked.
    /// An override that changes what a run does (anything but the number of seeds) sends the
    /// runs to `runs/<profile>-custom/`.
    ///
    /// # Errors
    /// The resulting profile fails [`Profile::check`], or `--adam-epsilon` was given for a
    /// profile trained with SGD.
    pub fn build(
        dataset: DatasetName,
        quick: bool,
        overrides: &ProfileOverrides,
    ) -> Result<Self, Error> {
        let mut profile = Self::for_dataset(dataset, quick);
        if let Some(seeds) = overrides.seeds {
            profile.seeds = seeds;
        }
        let defaults = profile.run_settings();
        overrides.apply_run(&mut profile);
        overrides.apply_optimizer(&mut profile.trainer.optimizer)?;
        overrides.apply_early_stopping(&mut profile.trainer.early_stopping);
        if profile.run_settings() != defaults {
            profile.name.push_str("-custom");
        }
        profile.check()?;
        Ok(profile)
    }
}

/// `value` into `field` when given.
fn set<T: Clone>(field: &mut T, value: Option<&T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}

/// `Some(value)`, or `None` for 0, into `field` when given.
fn set_nonzero(field: &mut Option<usize>, value: Option<usize>) {
    if let Some(v) = value {
        *field = (v > 0).then_some(v);
    }
}

impl ProfileOverrides {
    /// The run's settings and the trainer's counts (all but the optimizer and early stopping).
    fn apply_run(&self, profile: &mut Profile) {
        set(&mut profile.heuristics, self.heuristics.as_ref());
        set(&mut profile.model, self.model.as_ref());
        if let Some(path) = &self.weights {
            profile.weights = Some(path.clone());
        }
        set(&mut profile.max_labelled, self.max_labelled.as_ref());
        set(&mut profile.initial_labels, self.initial_labels.as_ref());
        if let Some(per_class) = self.seed_per_class {
            profile.seed_per_class = Some(per_class);
        }
        if self.balanced_initial {
            profile.seed_per_class = None;
        }
        self.apply_imbalance(profile);
        set(&mut profile.metric, self.metric.as_ref());
        set(&mut profile.iterations, self.iterations.as_ref());
        set(&mut profile.query_size, self.query_size.as_ref());
        set(&mut profile.test_subset, self.test_subset.as_ref());
        set(&mut profile.validation_size, self.validation_size.as_ref());
        let trainer = &mut profile.trainer;
        set(&mut trainer.batch_size, self.batch_size.as_ref());
        set(&mut trainer.epochs, self.epochs.as_ref());
        set(&mut trainer.min_gradient_steps, self.min_steps.as_ref());
        set_nonzero(&mut profile.pool_subset, self.pool_subset);
        set_nonzero(&mut profile.pool_size, self.pool_size);
        set_nonzero(&mut trainer.samples_per_fit, self.samples_per_fit);
        set(&mut trainer.lr_schedule, self.lr_schedule.as_ref());
        set(&mut trainer.warmup_steps, self.warmup_steps.as_ref());
        set(&mut trainer.reset_weights, self.reset_weights.as_ref());
        set_nonzero(&mut profile.last_active_steps, self.last_active_steps);
        set_nonzero(&mut profile.stopping_set, self.stopping_set);
        set(
            &mut profile.consistent_samples,
            self.consistent_samples.as_ref(),
        );
        set(&mut profile.posterior, self.posterior.as_ref());
        if self.calibrate {
            profile.calibration = Some(DirichletCalibratorConfig::default());
        }
        set(
            &mut trainer.weight_decay_per_label,
            self.weight_decay_per_label.as_ref(),
        );
    }

    /// The rare classes and their ratio; a ratio of 1 turns the imbalance off.
    fn apply_imbalance(&self, profile: &mut Profile) {
        if self.rare_classes.is_none() && self.imbalance.is_none() {
            return;
        }
        if self.imbalance == Some(1.0) {
            profile.imbalance = None;
            return;
        }
        let mut imbalance = profile.imbalance.clone().unwrap_or(Imbalance {
            rare_classes: Vec::new(),
            ratio: DEFAULT_IMBALANCE,
        });
        if let Some(classes) = &self.rare_classes {
            imbalance.rare_classes = classes.clone();
        }
        if let Some(ratio) = self.imbalance {
            imbalance.ratio = ratio;
        }
        profile.imbalance = Some(imbalance);
    }

    /// The optimizer, its learning rate, weight decay and epsilon.
    fn apply_optimizer(&self, optimizer: &mut OptimizerConfig) -> Result<(), Error> {
        let stays_sgd =
            self.optimizer.is_none() && matches!(optimizer, OptimizerConfig::Sgd { .. });
        if stays_sgd && self.adam_epsilon.is_some() {
            return Err(
                "--adam-epsilon needs a profile trained with Adam (or --optimizer), this one uses \
                 SGD"
                .into(),
            );
        }
        let learning_rate = self.learning_rate.unwrap_or(optimizer.learning_rate());
        *optimizer = match (optimizer.clone(), self.optimizer) {
            (
                OptimizerConfig::Sgd {
                    momentum,
                    weight_decay,
                    ..
                },
                None,
            ) => OptimizerConfig::Sgd {
                learning_rate,
                momentum,
                weight_decay: self.weight_decay.unwrap_or(weight_decay),
            },
            (current, choice) => {
                let (weight_decay, epsilon, decoupled) = match current {
                    OptimizerConfig::Sgd { weight_decay, .. } => {
                        (weight_decay, OptimizerConfig::BURN_ADAM_EPSILON, false)
                    }
                    OptimizerConfig::Adam {
                        weight_decay,
                        epsilon,
                        ..
                    } => (weight_decay, epsilon, false),
                    OptimizerConfig::AdamW {
                        weight_decay,
                        epsilon,
                        ..
                    } => (weight_decay, epsilon, true),
                };
                let weight_decay = self.weight_decay.unwrap_or(weight_decay);
                let epsilon = self.adam_epsilon.unwrap_or(epsilon);
                let decoupled = choice.map_or(decoupled, |c| c == OptimizerChoice::Adamw);
                if decoupled {
                    OptimizerConfig::AdamW {
                        learning_rate,
                        weight_decay,
                        epsilon,
                    }
                } else {
                    OptimizerConfig::Adam {
                        learning_rate,
                        weight_decay,
                        epsilon,
                    }
                }
            }
        };
        Ok(())
    }

    /// Early stopping: off with a patience of 0; else the profile's (or patience 3, checking
    /// accuracy every pass) with the given changes.
    fn apply_early_stopping(&self, early_stopping: &mut Option<EarlyStoppingConfig>) {
        if self.patience == Some(0) {
            *early_stopping = None;
            return;
        }
        if self.patience.is_none() && self.check_every.is_none() && self.validation_metric.is_none()
        {
            return;
        }
        let mut early = early_stopping
            .clone()
            .unwrap_or_else(|| EarlyStoppingConfig::new(3));
        set(&mut early.patience, self.patience.as_ref());
        set(&mut early.check_every, self.check_every.as_ref());
        if let Some(metric) = self.validation_metric {
            early.metric = metric.into();
        }
        *early_stopping = Some(early);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The overrides as the `reproduce` binary parses them.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        overrides: ProfileOverrides,
    }

    fn parse(args: &[&str]) -> Result<ProfileOverrides, clap::Error> {
        Cli::try_parse_from(std::iter::once("reproduce").chain(args.iter().copied()))
            .map(|cli| cli.overrides)
    }

    #[test]
    fn no_override_is_the_default_profile_under_its_own_name() {
        for dataset in DatasetName::value_variants() {
            let built = Profile::build(*dataset, true, &ProfileOverrides::default())
                .expect("defaults are valid");
            assert_eq!(built, Profile::for_dataset(*dataset, true));
        }
        // More seeds are the same runs: the name stays.
        let more = parse(&["--seeds", "5"]).expect("parses");
        let built = Profile::build(DatasetName::FashionMnist, true, &more).expect("valid");
        assert_eq!((built.name.as_str(), built.seeds), ("quick", 5));
    }

    #[test]
    fn choices_are_typed_and_unknown_names_are_refused_by_the_parser() {
        let overrides = parse(&[
            "--heuristics",
            "bald,batch-bald,random",
            "--model",
            "mlp",
            "--validation-metric",
            "nll",
            "--validation-size",
            "100",
        ])
        .expect("parses");
        let profile = Profile::build(DatasetName::FashionMnist, true, &overrides).expect("valid");
        assert_eq!(
            profile.heuristics,
            [
                HeuristicKind::Bald,
                HeuristicKind::BatchBald,
                HeuristicKind::Random
            ]
        );
        assert_eq!(profile.model, ModelKind::Mlp);
        assert_eq!(profile.name, "quick-custom");
        let early = profile.trainer.early_stopping.expect("turned on");
        assert_eq!((early.patience, early.metric), (3, ValidationMetric::Nll));
        for bad in [
            ["--heuristics", "bold"],
            ["--model", "resnet"],
            ["--validation-metric", "f1"],
            ["--posterior", "ensemble:1"],
            ["--posterior", "dropout"],
        ] {
            let err = parse(&bad).expect_err("unknown choice");
            assert!(
                matches!(
                    err.kind(),
                    clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::ValueValidation
                ),
                "{bad:?}: {err}"
            );
        }
        // An ensemble is another run: its own folder, and its setting in profile.json; the
        // default posterior is not written, so folders of earlier runs still match.
        let ensemble = parse(&["--posterior", "ensemble:5"]).expect("parses");
        let profile = Profile::build(DatasetName::FashionMnist, true, &ensemble).expect("valid");
        assert_eq!(profile.posterior.to_string(), "ensemble:5");
        assert_eq!(profile.name, "quick-custom");
        let written = serde_json::to_string(&profile.run_settings()).expect("json");
        assert!(written.contains("\"posterior\""), "{written}");
        let default = Profile::for_dataset(DatasetName::FashionMnist, true);
        let written = serde_json::to_string(&default.run_settings()).expect("json");
        assert!(!written.contains("posterior"), "{written}");
        let read: Profile = serde_json::from_str(&written).expect("reads back");
        assert_eq!(read, default.run_settings());
    }

    #[test]
    fn bad_combinations_are_refused_when_the_profile_is_built() {
        let refused = |args: &[&str], dataset: DatasetName| {
            let overrides = parse(args).expect("parses");
            Profile::build(dataset, true, &overrides)
                .expect_err("invalid profile")
                .to_string()
        };
        let fashion = DatasetName::FashionMnist;
        assert!(refused(&["--query-size", "0"], fashion).contains("--query-size"));
        assert!(refused(&["--heuristics", "epig"], fashion).contains("target set"));
        assert!(refused(&["--weights", "vgg16.pth"], fashion).contains("vgg16"));
        assert!(refused(&["--patience", "2"], fashion).contains("validation"));
        assert!(refused(&["--calibrate"], fashion).contains("validation"));
        let calibrated = parse(&["--calibrate", "--validation-size", "500"]).expect("parses");
        let profile = Profile::build(fashion, true, &calibrated).expect("valid");
        assert!(profile.calibration.is_some() && profile.name.ends_with("-custom"));
        let sgd = DatasetName::Cifar10;
        let err = Profile::build(
            sgd,
            false,
            &parse(&["--adam-epsilon", "1e-8"]).expect("parses"),
        )
        .expect_err("SGD has no epsilon");
        assert!(err.to_string().contains("SGD"), "{err}");
    }

    #[test]
    fn any_profile_can_be_made_imbalanced_and_back() {
        let imbalanced = parse(&[
            "--rare-classes",
            "0,9",
            "--seed-per-class",
            "3",
            "--metric",
            "balanced-accuracy",
        ])
        .expect("parses");
        let profile = Profile::build(DatasetName::FashionMnist, true, &imbalanced).expect("valid");
        let imbalance = profile.imbalance.clone().expect("imbalanced");
        assert_eq!(imbalance.rare_classes, [0, 9]);
        assert_eq!(imbalance.ratio, DEFAULT_IMBALANCE);
        assert_eq!(profile.seed_per_class, Some(3));
        assert_eq!(profile.metric, SummaryMetric::BalancedAccuracy);
        assert_eq!(profile.name, "quick-custom");

        let default = Profile::for_dataset(DatasetName::FashionMnistImbalanced, true);
        let ratio = parse(&["--imbalance", "20"]).expect("parses");
        let profile =
            Profile::build(DatasetName::FashionMnistImbalanced, true, &ratio).expect("valid");
        let imbalance = profile.imbalance.expect("imbalanced");
        assert_eq!(imbalance.ratio, 20.0);
        assert_eq!(
            imbalance.rare_classes,
            default.imbalance.expect("rare").rare_classes
        );

        let balanced = parse(&["--imbalance", "1", "--balanced-initial"]).expect("parses");
        let profile =
            Profile::build(DatasetName::FashionMnistImbalanced, true, &balanced).expect("valid");
        assert_eq!((profile.imbalance, profile.seed_per_class), (None, None));
        // No examples per class: random initial labels only.
        let random = parse(&["--seed-per-class", "0", "--initial-labels", "40"]).expect("parses");
        let profile =
            Profile::build(DatasetName::FashionMnistImbalanced, true, &random).expect("valid");
        assert_eq!(
            (profile.seed_per_class, profile.initial_labels),
            (Some(0), 40)
        );
        assert!(parse(&["--seed-per-class", "2", "--balanced-initial"]).is_err());
        // The metric changes the summary, not the runs: the same folder.
        let metric = parse(&["--metric", "accuracy"]).expect("parses");
        let profile =
            Profile::build(DatasetName::FashionMnistImbalanced, true, &metric).expect("valid");
        assert_eq!(profile.name, "quick");
    }

    #[test]
    fn bad_imbalances_are_refused_with_the_flag_to_fix() {
        let refused = |args: &[&str]| {
            Profile::build(
                DatasetName::FashionMnist,
                true,
                &parse(args).expect("parses"),
            )
            .expect_err("invalid")
            .to_string()
        };
        assert!(refused(&["--rare-classes", "2,2"]).contains("twice"));
        assert!(refused(&["--rare-classes", "2", "--imbalance", "0.5"]).contains("--imbalance"));
        assert!(refused(&["--imbalance", "NaN"]).contains("--rare-classes"));
        assert!(
            refused(&["--initial-labels", "0", "--seed-per-class", "0"]).contains("initial labels")
        );
    }

    #[test]
    fn zero_turns_subsets_and_early_stopping_off() {
        let overrides = parse(&[
            "--pool-subset",
            "0",
            "--samples-per-fit",
            "0",
            "--patience",
            "0",
            "--learning-rate",
            "0.01",
        ])
        .expect("parses");
        let profile = Profile::build(DatasetName::Mnist, false, &overrides).expect("valid");
        assert_eq!(profile.pool_subset, None);
        assert_eq!(profile.trainer.samples_per_fit, None);
        assert_eq!(profile.trainer.early_stopping, None);
        assert_eq!(profile.trainer.optimizer.learning_rate(), 0.01);
        assert_eq!(profile.name, "full-custom");
    }

    #[test]
    fn adamw_a_schedule_a_warmup_and_the_last_steps_make_a_custom_profile() {
        let overrides = parse(&[
            "--optimizer",
            "adamw",
            "--weight-decay",
            "0.01",
            "--lr-schedule",
            "cosine",
            "--warmup-steps",
            "20",
            "--last-active-steps",
            "2",
            "--reset-weights",
            "false",
        ])
        .expect("parses");
        let profile = Profile::build(DatasetName::FashionMnist, true, &overrides).expect("valid");
        // The profile's Adam at 2e-3 and its epsilon, now with decoupled decay.
        assert_eq!(
            profile.trainer.optimizer,
            OptimizerConfig::AdamW {
                learning_rate: 2e-3,
                weight_decay: 0.01,
                epsilon: OptimizerConfig::BURN_ADAM_EPSILON,
            }
        );
        assert_eq!(
            profile.trainer.lr_schedule,
            LrSchedule::Cosine { min_lr: 0.0 }
        );
        assert_eq!(profile.trainer.warmup_steps, 20);
        assert!(!profile.trainer.reset_weights);
        assert_eq!(profile.last_active_steps, Some(2));
        assert_eq!(profile.name, "quick-custom");
        let written = serde_json::to_string(&profile.run_settings()).expect("json");
        for key in ["AdamW", "lr_schedule", "warmup_steps", "last_active_steps"] {
            assert!(written.contains(key), "{key}: {written}");
        }
        let read: Profile = serde_json::from_str(&written).expect("reads back");
        assert_eq!(read, profile.run_settings());
        // The other schedules' forms; SGD's profile turns into AdamW with Burn's epsilon.
        let step =
            parse(&["--lr-schedule", "step:50:0.5", "--optimizer", "adamw"]).expect("parses");
        let profile = Profile::build(DatasetName::Cifar10, false, &step).expect("valid");
        assert_eq!(
            profile.trainer.lr_schedule,
            LrSchedule::Step {
                every_steps: 50,
                gamma: 0.5
            }
        );
        assert!(matches!(
            profile.trainer.optimizer,
            OptimizerConfig::AdamW { .. }
        ));
        let floor = parse(&["--lr-schedule", "cosine:1e-4"]).expect("parses");
        assert_eq!(floor.lr_schedule, Some(LrSchedule::Cosine { min_lr: 1e-4 }));
        // Defaults and zeros change nothing: the same runs, the same folder.
        let same = parse(&[
            "--lr-schedule",
            "constant",
            "--warmup-steps",
            "0",
            "--last-active-steps",
            "0",
        ])
        .expect("parses");
        let profile = Profile::build(DatasetName::FashionMnist, true, &same).expect("valid");
        assert_eq!(
            profile,
            Profile::for_dataset(DatasetName::FashionMnist, true)
        );
        let written = serde_json::to_string(&profile.run_settings()).expect("json");
        for key in ["lr_schedule", "warmup_steps", "last_active_steps"] {
            assert!(!written.contains(key), "{key}: {written}");
        }
    }

    #[test]
    fn bad_schedules_and_optimizers_are_refused_with_the_reason() {
        for bad in ["linear", "step:10", "step:x:0.5", "cosine:low"] {
            let err = parse(&["--lr-schedule", bad]).expect_err("refused by the parser");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad}: {err}"
            );
        }
        assert!(parse(&["--optimizer", "lion"]).is_err());
        let refused = |args: &[&str]| {
            Profile::build(
                DatasetName::FashionMnist,
                true,
                &parse(args).expect("parses"),
            )
            .expect_err("invalid")
            .to_string()
        };
        assert!(refused(&["--lr-schedule", "step:0:0.5"]).contains("every_steps"));
        assert!(refused(&["--lr-schedule", "step:10:1.5"]).contains("gamma"));
        assert!(refused(&["--lr-schedule", "cosine:0.1"]).contains("min_lr"));
        // The quick profile trains 6400 samples in batches of 32: 200 steps at least.
        assert!(refused(&["--warmup-steps", "200"]).contains("warm-up"));
        let err = refused(&[
            "--optimizer",
            "adamw",
            "--learning-rate",
            "1",
            "--weight-decay",
            "2",
        ]);
        assert!(err.contains("weight decay"), "{err}");
    }
}
