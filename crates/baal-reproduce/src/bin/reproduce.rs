//! `reproduce <dataset> [--quick] [--seed S] [--seeds N] [--out DIR] ...`: runs the profile's
//! heuristics with the same seeds on the same initial labels and weights and writes
//! `curves.csv`, `curves.svg`, `curves-vs-random.svg` and `summary.md` into
//! `<out>/<dataset>/`. `cargo xtask reproduce` runs it in release mode.

use std::path::PathBuf;
use std::process::ExitCode;

use baal_reproduce::{DatasetName, Error, Profile, ProfileOverrides, reproduce};
use clap::Parser;

/// mimalloc serves training's megabyte-sized, short-lived buffers from memory it keeps, where
/// glibc's malloc returns them to the kernel and faults them in again (docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Results folder; results go to `<out>/<dataset>/`.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Folder of the dataset files (default: found by itself; see docs/reproductions.md).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Device: `cpu`, `wgpu`, `vulkan`, `metal`, `cuda[:N]`, `tch-cpu`, `tch-cuda[:N]` (if compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Show progress bars.
    #[arg(long)]
    progress: bool,
    /// Changes to the profile.
    #[command(flatten)]
    overrides: ProfileOverrides,
}

fn run(args: Args) -> Result<(), Error> {
    let profile = Profile::build(args.dataset, args.quick, &args.overrides)?;
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
