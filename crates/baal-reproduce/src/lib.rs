//! The reproductions of baal's active-learning experiments, behind `cargo xtask reproduce`:
//! the same seeds, initial labels and initial weights for every heuristic, one resumable
//! [`Experiment`](baal::active::Experiment) per (heuristic, seed), then `curves.csv`,
//! `curves.svg`, `curves-vs-random.svg` and `summary.md`.
//!
//! One concern a module: [`profile`] (what runs), [`overrides`] (the command line's changes
//! to a profile, checked), [`seeds`] (every random stream),
//! [`data`] (finding the files, the pool, the validation and test splits, Repeated-Fashion-MNIST),
//! [`run`] (one experiment), [`stats`] (first crossings, intervals, paired differences) and
//! [`report`] (the files written). The `reproduce` binary (`src/bin/reproduce.rs`) is its
//! command line; the models come from `baal-zoo`.

pub mod data;
pub mod overrides;
pub mod profile;
pub mod report;
pub mod run;
pub mod seeds;
pub mod stats;
mod trainer_json;

use std::path::Path;
use std::time::Instant;

use baal::bayesian::on_flex_workers;

pub use data::{LoadedData, initial_labels, load_data};
pub use overrides::{MetricChoice, ProfileOverrides};
pub use profile::{DatasetName, Imbalance, ModelKind, Profile, SummaryMetric};
pub use report::{Results, mean_labels_to_reach, write_results};
pub use run::{CostEstimate, RunSettings, run_one};
pub use seeds::SeedPlan;
pub use stats::{labels_to_reach, mean_over_run};

/// Errors of a reproduction.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs every (heuristic, seed) of `profile` on `dataset`, resuming finished or interrupted
/// runs found under `out/runs/<profile>/`, and writes the results into `out`.
///
/// # Errors
/// An invalid profile, seeds past `u64::MAX`, data, training or file errors.
pub fn reproduce(
    dataset: DatasetName,
    profile: &Profile,
    data_dir: Option<&Path>,
    out: &Path,
    base_seed: u64,
    device_name: &str,
    show_progress: bool,
) -> Result<String, Error> {
    profile.check()?;
    let plans = seeds::run_plans(base_seed, profile.seeds)?;
    let started = Instant::now();
    let device = baal::device::parse_device(device_name)?;
    let data = load_data(dataset, profile, data_dir)?;
    let runs_dir = out.join("runs").join(&profile.name);
    std::fs::create_dir_all(&runs_dir).map_err(|e| format!("{}: {e}", runs_dir.display()))?;
    let profile_path = runs_dir.join("profile.json");
    let profile_json = serde_json::to_string_pretty(&profile.run_settings())?;
    match std::fs::read_to_string(&profile_path) {
        Ok(saved) if saved != profile_json => {
            return Err(format!(
                "{} holds runs of another profile: remove {} or pass another --out",
                runs_dir.display(),
                runs_dir.display()
            )
            .into());
        }
        _ => std::fs::write(&profile_path, &profile_json)?,
    }
    let estimate = CostEstimate::new(profile, dataset.classes());
    eprintln!("{}", estimate.plan());
    let mut results = Results { runs: Vec::new() };
    for seeds in plans {
        let seed = seeds.seed();
        for &heuristic in &profile.heuristics {
            let settings = RunSettings {
                profile,
                heuristic,
                seeds,
                dir: runs_dir.join(format!("{heuristic}-seed{seed}")),
                device: device.clone(),
                show_progress,
                estimate: Some(&estimate),
            };
            // On flex's own threads: each step 10-17% faster on 2 cores, the same values.
            let records = on_flex_workers(&device, || run_one(&data, &settings))?;
            results.runs.push((heuristic, seed, records));
        }
    }
    write_results(
        out,
        dataset,
        profile,
        &results,
        started.elapsed().as_secs_f64(),
        device_name,
    )
}
