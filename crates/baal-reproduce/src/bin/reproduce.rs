//! `reproduce <dataset> [--quick] [--seed S] [--seeds N] [--out DIR] ...`: runs the profile's
//! heuristics with the same seeds on the same initial labels and weights and writes
//! `curves.csv`, `curves.svg`, `curves-vs-random.svg` and `summary.md` into
//! `<out>/<dataset>/`. `cargo xtask reproduce` runs it in release mode.

use std::path::PathBuf;
use std::process::ExitCode;

use baal::active::{EarlyStoppingConfig, HeuristicKind, OptimizerConfig, ValidationMetric};
use baal_reproduce::{DatasetName, ModelKind, Profile, reproduce};
use clap::Parser;

/// Reproduce baal's active-learning experiments.
#[derive(Parser, Debug)]
#[command(name = "reproduce")]
struct Args {
    /// The dataset.
    #[arg(value_enum)]
    dataset: DatasetName,
    /// The quick profile (CPU, minutes) instead of the full one.
    #[arg(long)]
    quick: bool,
    /// Base seed: runs use seed, seed + 1, ...
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of seeds (default: the profile's).
    #[arg(long)]
    seeds: Option<usize>,
    /// Results folder; results go to `<out>/<dataset>/`.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Folder of the dataset files (default: found by itself; see docs/reproductions.md).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Device: `cpu`, `wgpu`, `vulkan`, `metal`, `cuda[:N]`, `tch-cpu`, `tch-cuda[:N]` (if compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Heuristics, comma-separated (default: the profile's).
    #[arg(long, value_delimiter = ',')]
    heuristics: Option<Vec<String>>,
    /// Model (default: the profile's).
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// torchvision VGG16 weights (`.pth` state dict, e.g. ImageNet's `vgg16-397923af.pth`)
    /// loaded into the vgg16 model before training; its 1000-class head is left out.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Labelling budget (default: the profile's).
    #[arg(long)]
    max_labelled: Option<usize>,
    /// Initial labels, balanced over the classes (default: the profile's).
    #[arg(long)]
    initial_labels: Option<usize>,
    /// MC iterations T of the pool predictions (default: the profile's).
    #[arg(long)]
    iterations: Option<usize>,
    /// Labels per step (default: the profile's).
    #[arg(long)]
    query_size: Option<usize>,
    /// Test items evaluated, a fixed random subset; 0 for the whole test set (default: the
    /// profile's).
    #[arg(long)]
    test_subset: Option<usize>,
    /// Pool items scored per step, a random subset; 0 scores the whole pool (default: the
    /// profile's).
    #[arg(long)]
    pool_subset: Option<usize>,
    /// The pool: a fixed random subset of this many training images; 0 for all of them
    /// (default: the profile's).
    #[arg(long)]
    pool_size: Option<usize>,
    /// Training images held out of the pool for early stopping (default: the profile's).
    #[arg(long)]
    validation_size: Option<usize>,
    /// Sample every heuristic's predictions consistently (default: the profile's).
    #[arg(long)]
    consistent_samples: Option<bool>,
    /// Items per gradient step (default: the profile's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate (default: the profile's).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Weight decay (L2 penalty; with --weight-decay-per-label, c in λ = c / N).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Adam's epsilon (the profiles use Burn's 1e-5; PyTorch's is 1e-8). An error with SGD.
    #[arg(long)]
    adam_epsilon: Option<f32>,
    /// Divide the weight decay by the number of labelled items (default: the profile's).
    #[arg(long)]
    weight_decay_per_label: Option<bool>,
    /// Epochs per training (default: the profile's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Minimum gradient steps per training (default: the profile's).
    #[arg(long)]
    min_steps: Option<usize>,
    /// Train on this many samples per fit instead of epochs; 0 goes back to epochs (default:
    /// the profile's).
    #[arg(long)]
    samples_per_fit: Option<usize>,
    /// Early stopping: validation checks without improvement before training stops; 0 turns
    /// it off (default: the profile's).
    #[arg(long)]
    patience: Option<usize>,
    /// Early stopping: gradient steps between validation checks, 0 for one per pass.
    #[arg(long)]
    check_every: Option<usize>,
    /// Early stopping: the validation metric, accuracy or nll.
    #[arg(long)]
    validation_metric: Option<String>,
    /// Show progress bars.
    #[arg(long)]
    progress: bool,
}

type Error = baal_reproduce::Error;

/// The profile with the command line's overrides.
fn profile(args: &Args) -> Result<Profile, Error> {
    let mut profile = Profile::for_dataset(args.dataset, args.quick);
    if let Some(seeds) = args.seeds {
        profile.seeds = seeds;
    }
    // An override that changes what a run does sends the runs to `runs/<profile>-custom/`.
    let defaults = profile.clone();
    if let Some(list) = &args.heuristics {
        profile.heuristics = list
            .iter()
            .map(|h| h.parse::<HeuristicKind>())
            .collect::<Result<_, _>>()?;
    }
    if let Some(model) = args.model {
        profile.model = model;
    }
    if let Some(path) = &args.weights {
        profile.weights = Some(path.clone());
    }
    let set = |field: &mut usize, value: Option<usize>| {
        if let Some(v) = value {
            *field = v;
        }
    };
    set(&mut profile.max_labelled, args.max_labelled);
    set(&mut profile.initial_labels, args.initial_labels);
    set(&mut profile.iterations, args.iterations);
    set(&mut profile.query_size, args.query_size);
    set(&mut profile.test_subset, args.test_subset);
    set(&mut profile.validation_size, args.validation_size);
    set(&mut profile.trainer.batch_size, args.batch_size);
    set(&mut profile.trainer.epochs, args.epochs);
    set(&mut profile.trainer.min_gradient_steps, args.min_steps);
    if let Some(v) = args.pool_subset {
        profile.pool_subset = (v > 0).then_some(v);
    }
    if let Some(v) = args.pool_size {
        profile.pool_size = (v > 0).then_some(v);
    }
    if let Some(v) = args.samples_per_fit {
        profile.trainer.samples_per_fit = (v > 0).then_some(v);
    }
    if let Some(v) = args.consistent_samples {
        profile.consistent_samples = v;
    }
    if let Some(v) = args.weight_decay_per_label {
        profile.trainer.weight_decay_per_label = v;
    }
    if args.learning_rate.is_some() || args.weight_decay.is_some() || args.adam_epsilon.is_some() {
        profile.trainer.optimizer = match profile.trainer.optimizer.clone() {
            OptimizerConfig::Adam {
                learning_rate,
                weight_decay,
                epsilon,
            } => OptimizerConfig::Adam {
                learning_rate: args.learning_rate.unwrap_or(learning_rate),
                weight_decay: args.weight_decay.unwrap_or(weight_decay),
                epsilon: args.adam_epsilon.unwrap_or(epsilon),
            },
            OptimizerConfig::Sgd { .. } if args.adam_epsilon.is_some() => {
                return Err(
                    "--adam-epsilon needs a profile trained with Adam, this one uses SGD".into(),
                );
            }
            OptimizerConfig::Sgd {
                learning_rate,
                momentum,
                weight_decay,
            } => OptimizerConfig::Sgd {
                learning_rate: args.learning_rate.unwrap_or(learning_rate),
                momentum,
                weight_decay: args.weight_decay.unwrap_or(weight_decay),
            },
        };
    }
    if args.patience == Some(0) {
        profile.trainer.early_stopping = None;
    } else if args.patience.is_some()
        || args.check_every.is_some()
        || args.validation_metric.is_some()
    {
        let mut early = profile
            .trainer
            .early_stopping
            .clone()
            .unwrap_or_else(|| EarlyStoppingConfig::new(3));
        if let Some(patience) = args.patience {
            early.patience = patience;
        }
        if let Some(every) = args.check_every {
            early.check_every = every;
        }
        if let Some(metric) = &args.validation_metric {
            early.metric = match metric.as_str() {
                "accuracy" => ValidationMetric::Accuracy,
                "nll" => ValidationMetric::Nll,
                other => {
                    return Err(format!(
                        "unknown validation metric '{other}': use accuracy or nll"
                    )
                    .into());
                }
            };
        }
        profile.trainer.early_stopping = Some(early);
    }
    if profile.run_settings() != defaults.run_settings() {
        profile.name.push_str("-custom");
    }
    Ok(profile)
}

fn run(args: Args) -> Result<(), Error> {
    let profile = profile(&args)?;
    let out = args.out.join(args.dataset.name());
    let summary = reproduce(
        args.dataset,
        &profile,
        args.data_dir.as_deref(),
        &out,
        args.seed,
        &args.device,
        args.progress,
    )?;
    println!("{summary}");
    eprintln!(
        "wrote {0}/summary.md, {0}/curves.csv, {0}/curves.svg and {0}/curves-vs-random.svg",
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reproduce: {e}");
            ExitCode::from(2)
        }
    }
}
