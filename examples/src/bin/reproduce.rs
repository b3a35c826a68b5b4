//! `reproduce <fashion-mnist|mnist|cifar10> [--quick] [--seed S] [--seeds N] [--out DIR] ...`:
//! runs BALD, Entropy, (BatchBALD) and Random with the same seeds on the same initial labels
//! and writes `curves.csv`, `curves.svg` and `summary.md` into `<out>/<dataset>/`.
//! `cargo xtask reproduce` runs it in release mode.

use std::path::PathBuf;
use std::process::ExitCode;

use baal::active::HeuristicKind;
use baal_examples::reproduce::{DatasetName, ModelKind, Profile, reproduce};
use clap::Parser;

/// Reproduce baal's active-learning experiments.
#[derive(Parser, Debug)]
#[command(name = "reproduce")]
struct Args {
    /// fashion-mnist, mnist or cifar10.
    dataset: String,
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
    /// Folder of the dataset files (default: `/usr/share/datasets/<dataset>`, `data/cifar10`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Device: `cpu`, `wgpu`, `vulkan`, `metal`, `cuda[:N]`, `tch-cpu`, `tch-cuda[:N]` (if compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Heuristics, comma-separated (default: the profile's).
    #[arg(long, value_delimiter = ',')]
    heuristics: Option<Vec<String>>,
    /// Model: gal-cnn, small-cnn, vgg-small, vgg16, mlp (default: the profile's).
    #[arg(long)]
    model: Option<String>,
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
    /// Epochs per training (default: the profile's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Minimum gradient steps per training (default: the profile's).
    #[arg(long)]
    min_steps: Option<usize>,
    /// Test items evaluated, a fixed random subset; 0 for the whole test set (default: the
    /// profile's).
    #[arg(long)]
    test_subset: Option<usize>,
    /// Pool items scored per step (default: the profile's).
    #[arg(long)]
    pool_subset: Option<usize>,
    /// Show progress bars.
    #[arg(long)]
    progress: bool,
}

fn run(args: Args) -> Result<(), baal_examples::reproduce::Error> {
    let dataset = DatasetName::parse(&args.dataset)?;
    let mut profile = Profile::for_dataset(dataset, args.quick);
    let positive = |flag: &str, value: usize| -> Result<usize, baal_examples::reproduce::Error> {
        if value == 0 {
            Err(format!("--{flag} must be at least 1").into())
        } else {
            Ok(value)
        }
    };
    if let Some(seeds) = args.seeds {
        profile.seeds = positive("seeds", seeds)?;
    }
    // An override that changes what a run does sends the runs to `runs/<profile>-custom/`.
    let defaults = profile.clone();
    if let Some(list) = &args.heuristics {
        profile.heuristics = list
            .iter()
            .map(|h| h.parse::<HeuristicKind>())
            .collect::<Result<_, _>>()?;
        if profile.heuristics.contains(&HeuristicKind::Epig) {
            return Err("epig needs a target set: the reproductions do not run it".into());
        }
    }
    if let Some(model) = &args.model {
        profile.model = ModelKind::parse(model)?;
    }
    if let Some(path) = args.weights {
        profile.weights = Some(path);
    }
    if let Some(v) = args.max_labelled {
        profile.max_labelled = v;
    }
    if let Some(v) = args.initial_labels {
        profile.initial_labels = positive("initial-labels", v)?;
    }
    if let Some(v) = args.iterations {
        profile.iterations = positive("iterations", v)?;
    }
    if let Some(v) = args.query_size {
        profile.query_size = positive("query-size", v)?;
    }
    if let Some(v) = args.epochs {
        profile.trainer.epochs = v;
    }
    if let Some(v) = args.min_steps {
        profile.trainer.min_gradient_steps = v;
    }
    if let Some(v) = args.test_subset {
        profile.test_subset = v;
    }
    if let Some(v) = args.pool_subset {
        profile.pool_subset = positive("pool-subset", v)?;
    }
    if profile.run_settings() != defaults.run_settings() {
        profile.name.push_str("-custom");
    }
    let out = args.out.join(dataset.name());
    let summary = reproduce(
        dataset,
        &profile,
        args.data_dir.as_deref(),
        &out,
        args.seed,
        &args.device,
        args.progress,
    )?;
    println!("{summary}");
    eprintln!(
        "wrote {0}/summary.md, {0}/curves.csv and {0}/curves.svg",
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
