//! One (heuristic, seed) run: a resumable experiment from the seed's initial labels and
//! weights to the labelling budget.

use std::path::PathBuf;
use std::sync::Arc;

use baal::active::{
    ActiveLearningLoop, Classifier, Experiment, HeuristicKind, LabellingBudget, Posterior,
    StepRecord, Trainer, initialised,
};
use baal::burn;
use baal::data::ActiveLearningDataset;
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Tensor};

use crate::Error;
use crate::data::{LoadedData, initial_labels};
use crate::profile::{ModelKind, Profile};
use crate::seeds::SeedPlan;
use baal::bayesian::seeds;
use baal_zoo::images::{NormalizedImage, normalized_batcher};
use baal_zoo::models::{GalCnnConfig, MlpConfig, SmallCnnConfig, Vgg16Config, VggSmallConfig};

/// One run of a reproduction.
pub struct RunSettings<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// The heuristic.
    pub heuristic: HeuristicKind,
    /// The seed plan (initial labels, weights, training, MC masks, acquisition).
    pub seeds: SeedPlan,
    /// The run's folder (resumed when it holds a run).
    pub dir: PathBuf,
    /// The device.
    pub device: Device,
    /// Show progress bars.
    pub show_progress: bool,
    /// Told of the first step trained, to say what the whole reproduction will cost.
    pub estimate: Option<&'a CostEstimate>,
}

/// What a reproduction costs: its steps before it starts, and minutes on this machine once
/// the first step has run.
pub struct CostEstimate {
    heuristics: usize,
    seeds: usize,
    steps_per_run: usize,
    first_step_told: std::sync::atomic::AtomicBool,
}

impl CostEstimate {
    /// The runs of `profile` on data of `classes` classes: every heuristic, every seed, from
    /// the initial labels to the budget.
    #[must_use]
    pub fn new(profile: &Profile, classes: usize) -> Self {
        Self {
            heuristics: profile.heuristics.len(),
            seeds: profile.seeds,
            steps_per_run: profile.steps_per_run(classes),
            first_step_told: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Steps in all the runs.
    #[must_use]
    pub fn total_steps(&self) -> usize {
        self.heuristics * self.seeds * self.steps_per_run
    }

    /// One line: heuristics × seeds × steps.
    #[must_use]
    pub fn plan(&self) -> String {
        format!(
            "{} heuristics × {} seeds × {} steps = {} steps (each: train, evaluate, MC-predict \
             the pool, rank); minutes estimated after the first step",
            self.heuristics,
            self.seeds,
            self.steps_per_run,
            self.total_steps()
        )
    }

    /// The estimate from a step that took `seconds`, the first time it is asked for; `None`
    /// after (resumed or finished runs tell nothing: only a step trained here does).
    pub fn after_first_step(&self, seconds: f64) -> Option<String> {
        if self
            .first_step_told
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        let minutes = seconds * self.total_steps() as f64 / 60.0;
        Some(format!(
            "the first step took {seconds:.1} s: about {minutes:.0} minutes for all {} steps on \
             this machine (runs already finished here are read back, not rerun)",
            self.total_steps()
        ))
    }
}

/// Runs (or resumes, or reads back when finished) one experiment and returns its records.
///
/// # Errors
/// Data, training or file errors.
pub fn run_one(data: &LoadedData, settings: &RunSettings<'_>) -> Result<Vec<StepRecord>, Error> {
    let classes = 10;
    let [channels, size, _] = data.pool.shape();
    match settings.profile.model {
        ModelKind::GalCnn => run_model(
            |device| {
                Ok(GalCnnConfig::new()
                    .with_channels(channels)
                    .with_size(size)
                    .init(device)?)
            },
            data,
            settings,
        ),
        ModelKind::SmallCnn => run_model(
            |device| {
                Ok(SmallCnnConfig::new()
                    .with_channels(channels)
                    .with_size(size)
                    .init(device)?)
            },
            data,
            settings,
        ),
        ModelKind::VggSmall => run_model(
            |device| {
                Ok(VggSmallConfig::new()
                    .with_channels(channels)
                    .with_size(size)
                    .init(device)?)
            },
            data,
            settings,
        ),
        ModelKind::Vgg16 => run_model(
            |device| {
                let mut model = Vgg16Config::new().with_channels(channels).init(device)?;
                if let Some(path) = &settings.profile.weights {
                    let loaded = model.load_torchvision_weights(path)?;
                    eprintln!(
                        "loaded {} tensors of {} (left out: {})",
                        loaded.loaded.len(),
                        path.display(),
                        loaded.left_out.join(", ")
                    );
                }
                Ok(model)
            },
            data,
            settings,
        ),
        ModelKind::Mlp => run_model(
            |device| Ok(MlpConfig::new(channels * size * size, classes).init(device)?),
            data,
            settings,
        ),
    }
}

/// The run's model, or an ensemble's members: the same initial weights for every heuristic
/// of a seed, member `e` built after `Device::seed(weights + e)` and initialised at once
/// (Burn would otherwise draw every member's weights later, in one go).
fn build_members<M: Classifier>(
    build: impl Fn(&Device) -> Result<M, Error>,
    settings: &RunSettings<'_>,
) -> Result<Vec<M>, Error> {
    let device = &settings.device;
    let weights = settings.seeds.weights();
    // One model (MC dropout, or the snapshots of one training) starts from the weights of
    // the seed itself, so that its runs pair with MC dropout's.
    if settings.profile.posterior.members() == 1 {
        device.seed(weights);
        return Ok(vec![build(device)?]);
    }
    (0..settings.profile.posterior.members())
        .map(|member| {
            device.seed(seeds::nth(weights, member as u64));
            Ok(initialised(build(device)?))
        })
        .collect()
}

fn label_of(item: &NormalizedImage) -> usize {
    usize::from(item.label)
}

fn run_model<M: Classifier<Input = Tensor<4>>>(
    build: impl Fn(&Device) -> Result<M, Error>,
    data: &LoadedData,
    settings: &RunSettings<'_>,
) -> Result<Vec<StepRecord>, Error> {
    let profile = settings.profile;
    let seeds = settings.seeds;
    let progress = settings
        .show_progress
        .then(|| Arc::new(baal::progress::TerminalProgress::new()));
    let trainer = run_trainer(build, data, settings, progress.clone())?;
    let mut dataset = ActiveLearningDataset::new(data.pool.clone())
        .with_known_labels(|item: &NormalizedImage| item.label)
        .with_seed(seeds.pool_subsets());
    dataset.label_dataset_indices(&initial_labels(
        data.pool.labels(),
        profile.seed_per_class,
        profile.initial_labels,
        seeds.initial_labels(),
    )?)?;
    let active = run_loop(settings, progress)?;
    let test: Arc<dyn Dataset<NormalizedImage>> = Arc::new(data.test.clone());
    let mut experiment = Experiment::new(
        &settings.dir,
        trainer,
        active,
        dataset,
        test,
        Arc::new(label_of),
    )?
    .with_criterion(LabellingBudget {
        max_labelled: profile.max_labelled,
    });
    if !data.stopping.is_empty() {
        experiment = experiment.with_stopping_set(Arc::new(data.stopping.clone()));
    }
    run_steps(experiment, settings)
}

/// The run's trainer: a model, an ensemble or a snapshot ensemble (the profile's posterior),
/// with its calibration, progress and validation set.
fn run_trainer<M: Classifier<Input = Tensor<4>>>(
    build: impl Fn(&Device) -> Result<M, Error>,
    data: &LoadedData,
    settings: &RunSettings<'_>,
    progress: Option<Arc<baal::progress::TerminalProgress>>,
) -> Result<Trainer<M, NormalizedImage>, Error> {
    let profile = settings.profile;
    let trainer_config = profile.trainer.clone().with_seed(settings.seeds.training());
    let members = build_members(build, settings)?;
    let trainer = match profile.posterior {
        Posterior::Snapshots { snapshots, .. } => Trainer::snapshot_ensemble(
            members.into_iter().next().ok_or("no model was built")?,
            snapshots,
            &settings.device,
            normalized_batcher(),
            trainer_config,
        )?,
        _ => Trainer::ensemble(
            members,
            &settings.device,
            normalized_batcher(),
            trainer_config,
        )?,
    };
    let mut trainer = trainer.with_ensemble_mc(profile.posterior.samples_members());
    if let Some(calibration) = &profile.calibration {
        trainer = trainer.with_calibration(calibration.clone())?;
    }
    if let Some(progress) = progress {
        trainer = trainer.with_progress(progress);
    }
    if !data.validation.is_empty() {
        trainer = trainer.with_validation(Arc::new(data.validation.clone()), &label_of)?;
    }
    Ok(trainer)
}

/// The run's active-learning loop, as the profile sets it.
fn run_loop(
    settings: &RunSettings<'_>,
    progress: Option<Arc<baal::progress::TerminalProgress>>,
) -> Result<ActiveLearningLoop<NormalizedImage, u8>, Error> {
    let (profile, seeds) = (settings.profile, settings.seeds);
    let mut active =
        ActiveLearningLoop::from_kind(settings.heuristic, profile.query_size, seeds.acquisition())?
            .with_iterations(profile.iterations)
            .with_seed(seeds.mc_masks())
            .with_consistent_samples(profile.consistent_samples);
    if let Some(progress) = progress {
        active = active.with_progress(progress);
    }
    if let Some(subset) = profile.pool_subset {
        active = active.with_max_sample(subset);
    }
    if let Some(steps) = profile.last_active_steps {
        active = active.with_last_active_steps(steps)?;
    }
    Ok(active)
}

/// Runs `experiment` a step at a time, logging each step (and the time estimate after the
/// first), until it stops.
fn run_steps<M: Classifier<Input = Tensor<4>>>(
    mut experiment: Experiment<M, NormalizedImage, u8>,
    settings: &RunSettings<'_>,
) -> Result<Vec<StepRecord>, Error> {
    let tag = format!("[{} seed {}]", settings.heuristic, settings.seeds.seed());
    if experiment.resumed() {
        eprintln!("{tag} resuming after step {}", experiment.records().len());
    }
    loop {
        let (done_before, started) = (experiment.records().len(), std::time::Instant::now());
        let summary = experiment.run_steps(1)?;
        if let Some(record) = summary.records.last() {
            log_step(&tag, record);
        }
        if summary.records.len() > done_before {
            let seconds = started.elapsed().as_secs_f64();
            if let Some(line) = settings.estimate.and_then(|e| e.after_first_step(seconds)) {
                eprintln!("{line}");
            }
        }
        if summary.stop_reason.is_some() {
            return Ok(summary.records);
        }
    }
}

/// One line on standard error per step: labels, accuracies and where the time went.
fn log_step(tag: &str, r: &StepRecord) {
    eprintln!(
        "{tag} step {:>2}: {:>4} labels, test accuracy {:.3}{}{} (train {:.1}s / {} steps, eval {:.1}s, predict {:.1}s, rank {:.2}s)",
        r.step,
        r.n_labelled,
        r.test_accuracy,
        r.validation_accuracy
            .map(|a| format!(", validation {a:.3}"))
            .unwrap_or_default(),
        r.acquired_accuracy
            .map(|a| format!(", on its picks {a:.2}"))
            .unwrap_or_default(),
        r.train_seconds,
        r.train_steps,
        r.eval_seconds,
        r.predict_seconds,
        r.rank_seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::DatasetName;

    #[test]
    fn the_cost_is_planned_then_estimated_once_from_the_first_step() {
        let estimate =
            CostEstimate::new(&Profile::for_dataset(DatasetName::FashionMnist, true), 10);
        assert!(
            estimate
                .plan()
                .starts_with("4 heuristics × 3 seeds × 16 steps = 192 steps"),
            "{}",
            estimate.plan()
        );
        let first = estimate.after_first_step(2.5).expect("the first step");
        // 2.5 s × 192 steps = 8 minutes.
        assert!(
            first.contains("about 8 minutes for all 192 steps"),
            "{first}"
        );
        assert_eq!(estimate.after_first_step(2.5), None);
    }
}
