//! The reproductions behind `cargo xtask reproduce`: the same seeds and initial labels for
//! every heuristic, one resumable [`Experiment`] per (heuristic, seed), then
//! `curves.csv`, `curves.svg` and `summary.md` with the labels each heuristic needed to reach
//! target accuracies.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use baal::active::{
    ActiveError, ActiveLearningLoop, Classifier, Curve, Experiment, HeuristicKind, LabellingBudget,
    OptimizerConfig, StepRecord, Trainer, TrainerConfig, plot_learning_curves,
};
use baal::burn;
use baal::data::{ActiveLearningDataset, Cifar10, DatasetIndex, FashionMnist, ImageItem, Mnist};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::images::{Normalization, image_batcher};
use crate::models::{GalCnnConfig, MlpConfig, SmallCnnConfig, Vgg16Config, VggSmallConfig};

/// Errors of a reproduction.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The datasets of the reproductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatasetName {
    /// Fashion-MNIST (the README's main job).
    FashionMnist,
    /// MNIST.
    Mnist,
    /// CIFAR-10.
    Cifar10,
}

impl DatasetName {
    /// The command-line name (and results folder).
    pub fn name(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
        }
    }

    /// Parses a command-line name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "fashion-mnist" => Ok(Self::FashionMnist),
            "mnist" => Ok(Self::Mnist),
            "cifar10" | "cifar-10" => Ok(Self::Cifar10),
            other => Err(
                format!("unknown dataset '{other}': use fashion-mnist, mnist or cifar10").into(),
            ),
        }
    }
}

/// The model of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// [`GalCnn`](crate::models::GalCnn).
    GalCnn,
    /// [`SmallCnn`](crate::models::SmallCnn).
    SmallCnn,
    /// [`VggSmall`](crate::models::VggSmall).
    VggSmall,
    /// [`Vgg16`](crate::models::Vgg16).
    Vgg16,
    /// [`Mlp`](crate::models::Mlp).
    Mlp,
}

impl ModelKind {
    /// Parses `gal-cnn`, `small-cnn`, `vgg-small`, `vgg16` or `mlp`.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "gal-cnn" => Self::GalCnn,
            "small-cnn" => Self::SmallCnn,
            "vgg-small" => Self::VggSmall,
            "vgg16" => Self::Vgg16,
            "mlp" => Self::Mlp,
            other => {
                return Err(format!(
                    "unknown model '{other}': use gal-cnn, small-cnn, vgg-small, vgg16 or mlp"
                )
                .into());
            }
        })
    }
}

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
    /// Pool items scored per step (a random subset, baal's `max_sample`).
    pub pool_subset: usize,
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
    /// Training settings.
    pub trainer: TrainerConfig,
    /// torchvision VGG16 weights (`.pth`) loaded into [`ModelKind::Vgg16`] before training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
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
            ..self.clone()
        }
    }

    /// The default profile of `dataset` (`quick` or full).
    pub fn for_dataset(dataset: DatasetName, quick: bool) -> Self {
        match (dataset, quick) {
            (DatasetName::FashionMnist | DatasetName::Mnist, true) => Self {
                name: "quick".into(),
                model: ModelKind::SmallCnn,
                // A warm start: from 20 labels the uncertainty of a barely trained net is
                // noise, and entropy then did worse than random (cold-start sampling bias).
                initial_labels: 100,
                query_size: 20,
                iterations: 20,
                pool_subset: 500,
                test_subset: 2000,
                max_labelled: 400,
                heuristics: vec![
                    HeuristicKind::Bald,
                    HeuristicKind::Entropy,
                    HeuristicKind::BatchBald,
                    HeuristicKind::Random,
                ],
                seeds: 3,
                targets: vec![0.70, 0.75, 0.80],
                trainer: TrainerConfig::default()
                    .with_optimizer(OptimizerConfig::Adam {
                        learning_rate: 1e-3,
                        weight_decay: 0.0,
                    })
                    .with_batch_size(32)
                    .with_epochs(30)
                    .with_min_gradient_steps(200)
                    .with_eval_iterations(5),
                weights: None,
            },
            (DatasetName::FashionMnist | DatasetName::Mnist, false) => Self {
                name: "full".into(),
                model: ModelKind::GalCnn,
                initial_labels: 20,
                query_size: 10,
                iterations: 20,
                pool_subset: 2000,
                test_subset: 0,
                max_labelled: 500,
                heuristics: vec![
                    HeuristicKind::Bald,
                    HeuristicKind::Entropy,
                    HeuristicKind::BatchBald,
                    HeuristicKind::Random,
                ],
                seeds: 3,
                targets: vec![0.70, 0.75, 0.80, 0.85],
                trainer: TrainerConfig::default()
                    .with_optimizer(OptimizerConfig::Adam {
                        learning_rate: 1e-3,
                        weight_decay: 0.0,
                    })
                    .with_batch_size(64)
                    .with_epochs(10)
                    .with_min_gradient_steps(300)
                    .with_eval_iterations(10),
                weights: None,
            },
            (DatasetName::Cifar10, true) => Self {
                name: "quick".into(),
                model: ModelKind::VggSmall,
                initial_labels: 100,
                query_size: 50,
                iterations: 10,
                pool_subset: 500,
                test_subset: 1000,
                max_labelled: 300,
                heuristics: vec![HeuristicKind::Bald, HeuristicKind::Random],
                seeds: 1,
                targets: vec![0.25, 0.30],
                // Adam: with SGD (lr 0.01, momentum 0.9) the six unnormalised convolutions
                // stayed on the initial plateau (loss 2.30) for all of the quick budget.
                trainer: TrainerConfig::default()
                    .with_optimizer(OptimizerConfig::Adam {
                        learning_rate: 1e-3,
                        weight_decay: 5e-4,
                    })
                    .with_batch_size(32)
                    .with_epochs(5)
                    .with_min_gradient_steps(100)
                    .with_eval_iterations(5),
                weights: None,
            },
            (DatasetName::Cifar10, false) => Self {
                name: "full".into(),
                model: ModelKind::Vgg16,
                initial_labels: 1000,
                query_size: 100,
                iterations: 20,
                pool_subset: 10_000,
                test_subset: 0,
                max_labelled: 10_000,
                heuristics: vec![HeuristicKind::Bald, HeuristicKind::Random],
                seeds: 3,
                targets: vec![0.50, 0.60, 0.70],
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
            },
        }
    }
}

/// Loaded data: the training pool and the (subset of the) test set.
pub struct LoadedData {
    /// Training images: the pool.
    pub train: baal::data::ImageDataset,
    /// Test images.
    pub test: Arc<InMemDataset<ImageItem>>,
    /// Pixel statistics.
    pub normalization: Normalization,
}

/// Loads `dataset` from `data_dir` (or its default place) and keeps a fixed random subset of
/// `test_subset` test images (all when 0).
///
/// # Errors
/// The files are missing or corrupt; the message says where to put them or how to get them.
pub fn load_data(
    dataset: DatasetName,
    data_dir: Option<&Path>,
    test_subset: usize,
) -> Result<LoadedData, Error> {
    let (train, test, normalization) = match dataset {
        DatasetName::FashionMnist => {
            let dir = data_dir.map_or_else(
                || PathBuf::from(FashionMnist::DEFAULT_DIR),
                Path::to_path_buf,
            );
            let data = FashionMnist::from_dir(&dir).map_err(|e| {
                format!(
                    "cannot load Fashion-MNIST from {}: {e}\n  Install it with `apt-get install dataset-fashion-mnist` \
                     (Debian/Ubuntu, into {}), or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                     t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from \
                     https://github.com/zalandoresearch/fashion-mnist (data/fashion) into a folder and pass --data-dir <folder>",
                    dir.display(),
                    FashionMnist::DEFAULT_DIR
                )
            })?;
            (data.train, data.test, Normalization::fashion_mnist())
        }
        DatasetName::Mnist => {
            let dir = data_dir.map_or_else(|| PathBuf::from(Mnist::DEFAULT_DIR), Path::to_path_buf);
            let data = load_mnist(&dir)?;
            (data.train, data.test, Normalization::mnist())
        }
        DatasetName::Cifar10 => {
            let dir = data_dir.map_or_else(|| PathBuf::from("data/cifar10"), Path::to_path_buf);
            let data = load_cifar10(&dir)?;
            (data.train, data.test, Normalization::cifar10())
        }
    };
    let mut positions: Vec<usize> = (0..test.len()).collect();
    if test_subset > positions.len() {
        return Err(format!(
            "a test subset of {test_subset} images asked for, but the test set has {}: \
             use at most that, or 0 for all of it",
            positions.len()
        )
        .into());
    }
    if test_subset > 0 && test_subset < positions.len() {
        // Fixed across seeds and heuristics: every run is scored on the same images.
        positions.shuffle(&mut ChaCha8Rng::seed_from_u64(0x7e57));
        positions.truncate(test_subset);
        positions.sort_unstable();
    }
    let items = positions
        .iter()
        .map(|&i| test.get(i).map_err(|e| format!("test image {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LoadedData {
        train,
        test: Arc::new(InMemDataset::new(items)),
        normalization,
    })
}

fn load_mnist(dir: &Path) -> Result<Mnist, Error> {
    let hint = |e: &dyn std::fmt::Display| {
        format!(
            "cannot load MNIST from {}: {e}\n  Install it with `apt-get install dataset-mnist` (Debian/Ubuntu), \
             or put the four IDX files (train-images-idx3-ubyte.gz, ...) from https://ossci-datasets.s3.amazonaws.com/mnist/ \
             into a folder and pass --data-dir <folder>, or build with `--features download`",
            dir.display()
        )
    };
    match Mnist::from_dir(dir) {
        Ok(data) => Ok(data),
        #[cfg(feature = "download")]
        Err(_) => Mnist::download(dir).map_err(|e| hint(&e).into()),
        #[cfg(not(feature = "download"))]
        Err(e) => Err(hint(&e).into()),
    }
}

fn load_cifar10(dir: &Path) -> Result<Cifar10, Error> {
    let hint = |e: &dyn std::fmt::Display| {
        format!(
            "cannot load CIFAR-10 from {}: {e}\n  Download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, \
             unpack it (tar xzf) and pass --data-dir <folder holding cifar-10-batches-bin>, or build with \
             `--features download` to fetch it into --data-dir (default data/cifar10)",
            dir.display()
        )
    };
    match Cifar10::from_dir(dir) {
        Ok(data) => Ok(data),
        #[cfg(feature = "download")]
        Err(_) => Cifar10::download(dir).map_err(|e| hint(&e).into()),
        #[cfg(not(feature = "download"))]
        Err(e) => Err(hint(&e).into()),
    }
}

/// `n` dataset indices balanced over the classes (`n / classes` each, the remainder to the
/// first classes), drawn with `seed`: the same initial set for every heuristic of a seed.
pub fn balanced_initial(labels: &[u8], n: usize, seed: u64) -> Vec<DatasetIndex> {
    let classes = labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x1ab3_15ed));
    let mut quota: Vec<usize> = (0..classes)
        .map(|c| n / classes.max(1) + usize::from(c < n % classes.max(1)))
        .collect();
    let mut picked = Vec::with_capacity(n);
    for i in order {
        let class = usize::from(labels[i]);
        if quota[class] > 0 {
            quota[class] -= 1;
            picked.push(DatasetIndex::new(i));
            if picked.len() == n {
                break;
            }
        }
    }
    picked
}

/// One run of a reproduction.
pub struct RunSettings<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// The heuristic.
    pub heuristic: HeuristicKind,
    /// The seed (initial labels, weights, training, MC masks).
    pub seed: u64,
    /// The run's folder (resumed when it holds a run).
    pub dir: PathBuf,
    /// The device.
    pub device: Device,
    /// Show progress bars.
    pub show_progress: bool,
}

/// Runs (or resumes, or reads back when finished) one experiment and returns its records.
///
/// # Errors
/// Data, training or file errors.
pub fn run_one(data: &LoadedData, settings: &RunSettings<'_>) -> Result<Vec<StepRecord>, Error> {
    let device = &settings.device;
    // Same initial weights for every heuristic of a seed.
    device.seed(settings.seed);
    let classes = 10;
    let [channels, size, _] = data.train.shape();
    match settings.profile.model {
        ModelKind::GalCnn => run_model(
            GalCnnConfig::new()
                .with_channels(channels)
                .with_size(size)
                .init(device)?,
            data,
            settings,
        ),
        ModelKind::SmallCnn => run_model(
            SmallCnnConfig::new()
                .with_channels(channels)
                .with_size(size)
                .init(device)?,
            data,
            settings,
        ),
        ModelKind::VggSmall => run_model(
            VggSmallConfig::new()
                .with_channels(channels)
                .with_size(size)
                .init(device)?,
            data,
            settings,
        ),
        ModelKind::Vgg16 => {
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
            run_model(model, data, settings)
        }
        ModelKind::Mlp => run_model(
            MlpConfig::new(channels * size * size, classes).init(device)?,
            data,
            settings,
        ),
    }
}

fn run_model<M: Classifier<Input = Tensor<4>>>(
    model: M,
    data: &LoadedData,
    settings: &RunSettings<'_>,
) -> Result<Vec<StepRecord>, Error> {
    let profile = settings.profile;
    let batcher = image_batcher(data.normalization.clone());
    let trainer_config = profile
        .trainer
        .clone()
        .with_seed(settings.seed.wrapping_mul(1000))
        .with_show_progress(settings.show_progress);
    let trainer = Trainer::new(model, &settings.device, batcher, trainer_config)?;
    let mut dataset = ActiveLearningDataset::new(data.train.clone())
        .with_known_labels(|item: &ImageItem| item.label)
        .with_seed(settings.seed);
    dataset.label_dataset_indices(&balanced_initial(
        data.train.labels(),
        profile.initial_labels,
        settings.seed,
    ))?;
    let active =
        ActiveLearningLoop::from_kind(settings.heuristic, profile.query_size, settings.seed)
            .with_iterations(profile.iterations)
            .with_max_sample(profile.pool_subset)
            .with_seed(settings.seed.wrapping_mul(7919))
            .with_show_progress(settings.show_progress);
    let test: Arc<dyn Dataset<ImageItem>> = data.test.clone();
    let mut experiment = Experiment::new(
        &settings.dir,
        trainer,
        active,
        dataset,
        test,
        Arc::new(|item: &ImageItem| usize::from(item.label)),
    )?
    .with_criterion(LabellingBudget {
        max_labelled: profile.max_labelled,
    });
    if experiment.resumed() {
        eprintln!(
            "[{} seed {}] resuming after step {}",
            settings.heuristic,
            settings.seed,
            experiment.records().len()
        );
    }
    loop {
        let summary = experiment.run_steps(1)?;
        if let Some(record) = summary.records.last() {
            eprintln!(
                "[{} seed {}] step {:>2}: {:>4} labels, test accuracy {:.3} (train {:.1}s, eval {:.1}s, predict {:.1}s, rank {:.2}s)",
                settings.heuristic,
                settings.seed,
                record.step,
                record.n_labelled,
                record.test_accuracy,
                record.train_seconds,
                record.eval_seconds,
                record.predict_seconds,
                record.rank_seconds
            );
        }
        if summary.stop_reason.is_some() {
            return Ok(summary.records);
        }
    }
}

/// The records of every run, by heuristic and seed.
pub struct Results {
    /// `(heuristic, seed, records)`.
    pub runs: Vec<(HeuristicKind, u64, Vec<StepRecord>)>,
}

/// First number of labels at which `records` reach `target` accuracy.
pub fn labels_to_reach(records: &[StepRecord], target: f64) -> Option<usize> {
    records
        .iter()
        .find(|r| r.test_accuracy >= target)
        .map(|r| r.n_labelled)
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Mean labels needed to reach `target` over the seeds, counting a seed that never reached
/// it as the budget plus one query (a lower bound on what it would need); with how many
/// seeds reached it.
pub fn mean_labels_to_reach(
    results: &Results,
    heuristic: HeuristicKind,
    target: f64,
    profile: &Profile,
) -> Option<(f64, f64, usize, usize)> {
    let needed: Vec<Option<usize>> = results
        .runs
        .iter()
        .filter(|(h, ..)| *h == heuristic)
        .map(|(_, _, records)| labels_to_reach(records, target))
        .collect();
    if needed.is_empty() {
        return None;
    }
    let reached = needed.iter().flatten().count();
    let values: Vec<f64> = needed
        .iter()
        .map(|n| {
            n.map_or((profile.max_labelled + profile.query_size) as f64, |n| {
                n as f64
            })
        })
        .collect();
    let (mean, std) = mean_std(&values);
    Some((mean, std, reached, needed.len()))
}

/// Writes `curves.csv`, `curves.svg` and `summary.md` into `out`; returns the summary text.
///
/// # Errors
/// A file cannot be written or the plot drawn.
pub fn write_results(
    out: &Path,
    dataset: DatasetName,
    profile: &Profile,
    results: &Results,
    seconds: f64,
    device_name: &str,
) -> Result<String, Error> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut csv = String::from(
        "heuristic,seed,step,n_labelled,test_accuracy,test_nll,test_ece,test_loss,train_loss,train_seconds,eval_seconds,predict_seconds,rank_seconds\n",
    );
    for (heuristic, seed, records) in &results.runs {
        for r in records {
            writeln!(
                csv,
                "{heuristic},{seed},{},{},{:.5},{:.5},{:.5},{:.5},{:.5},{:.3},{:.3},{:.3},{:.4}",
                r.step,
                r.n_labelled,
                r.test_accuracy,
                r.test_nll,
                r.test_ece,
                r.test_loss,
                r.train_loss,
                r.train_seconds,
                r.eval_seconds,
                r.predict_seconds,
                r.rank_seconds
            )?;
        }
    }
    std::fs::write(out.join("curves.csv"), csv)?;

    let mut curves = Vec::new();
    for &heuristic in &profile.heuristics {
        let runs: Vec<&Vec<StepRecord>> = results
            .runs
            .iter()
            .filter(|(h, ..)| *h == heuristic)
            .map(|(_, _, r)| r)
            .collect();
        let steps = runs.iter().map(|r| r.len()).min().unwrap_or(0);
        let points = (0..steps)
            .map(|s| {
                let accuracies: Vec<f64> = runs.iter().map(|r| r[s].test_accuracy).collect();
                let (mean, std) = mean_std(&accuracies);
                (runs[0][s].n_labelled as f64, mean, std)
            })
            .collect();
        curves.push(Curve {
            name: heuristic.name().to_string(),
            points,
        });
    }
    plot_learning_curves(
        &out.join("curves.svg"),
        &format!(
            "{}: test accuracy, mean ± std over {} seed(s)",
            dataset.name(),
            profile.seeds
        ),
        "test accuracy",
        &curves,
    )
    .map_err(|e: ActiveError| e.to_string())?;

    let mut md = String::new();
    writeln!(
        md,
        "# Reproduction: {} ({} profile)\n",
        dataset.name(),
        profile.name
    )?;
    writeln!(
        md,
        "Model {:?}, {} initial labels (balanced), +{} per step, T = {}, pool subset {}, test set {}, \
         budget {} labels, seeds {}; trainer: {:?}, batch {}, {} epochs (at least {} gradient steps), weights reset each step. \
         Device `{device_name}`, {:.1} minutes in all.\n",
        profile.model,
        profile.initial_labels,
        profile.query_size,
        profile.iterations,
        profile.pool_subset,
        if profile.test_subset == 0 {
            "whole".to_string()
        } else {
            format!("subset of {}", profile.test_subset)
        },
        profile.max_labelled,
        profile.seeds,
        profile.trainer.optimizer,
        profile.trainer.batch_size,
        profile.trainer.epochs,
        profile.trainer.min_gradient_steps,
        seconds / 60.0
    )?;
    writeln!(
        md,
        "## Labels needed to reach a test accuracy (mean ± std over seeds)\n"
    )?;
    write!(md, "| heuristic |")?;
    for t in &profile.targets {
        write!(md, " {:.0}% |", t * 100.0)?;
    }
    writeln!(md, " mean accuracy over the run | final accuracy |")?;
    write!(md, "|---|")?;
    for _ in &profile.targets {
        write!(md, "---|")?;
    }
    writeln!(md, "---|---|")?;
    for &heuristic in &profile.heuristics {
        write!(md, "| {heuristic} |")?;
        for &target in &profile.targets {
            match mean_labels_to_reach(results, heuristic, target, profile) {
                Some((mean, std, reached, total)) if reached == total => {
                    write!(md, " {mean:.0} ± {std:.0} |")?
                }
                Some((mean, _, reached, total)) => {
                    write!(md, " ≥ {mean:.0} ({reached}/{total} seeds reached) |")?
                }
                None => write!(md, " - |")?,
            }
        }
        let runs = || {
            results
                .runs
                .iter()
                .filter(move |(h, ..)| *h == heuristic)
                .map(|(_, _, r)| r)
                .filter(|r| !r.is_empty())
        };
        // The area under the learning curve over its steps: less noisy than a first crossing.
        let areas: Vec<f64> = runs()
            .map(|r| r.iter().map(|r| r.test_accuracy).sum::<f64>() / r.len() as f64)
            .collect();
        let finals: Vec<f64> = runs()
            .filter_map(|r| r.last().map(|r| r.test_accuracy))
            .collect();
        let (area, area_std) = mean_std(&areas);
        let (last, last_std) = mean_std(&finals);
        writeln!(
            md,
            " {area:.3} ± {area_std:.3} | {last:.3} ± {last_std:.3} |"
        )?;
    }
    writeln!(
        md,
        "\nA seed that never reaches a target counts as budget + one query ({} labels), so `≥` marks a lower bound.\n",
        profile.max_labelled + profile.query_size
    )?;
    writeln!(md, "## Time per step (mean seconds)\n")?;
    writeln!(
        md,
        "| heuristic | train | evaluate | MC-predict pool | rank |"
    )?;
    writeln!(md, "|---|---|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        let records: Vec<&StepRecord> = results
            .runs
            .iter()
            .filter(|(h, ..)| *h == heuristic)
            .flat_map(|(_, _, r)| r.iter())
            .collect();
        let mean = |f: fn(&StepRecord) -> f64| {
            records.iter().map(|r| f(r)).sum::<f64>() / records.len().max(1) as f64
        };
        writeln!(
            md,
            "| {heuristic} | {:.2} | {:.2} | {:.2} | {:.3} |",
            mean(|r| r.train_seconds),
            mean(|r| r.eval_seconds),
            mean(|r| r.predict_seconds),
            mean(|r| r.rank_seconds)
        )?;
    }
    writeln!(
        md,
        "\nCurves: `curves.csv`, `curves.svg`; per-run logs and resumable state: `runs/{}/`.",
        profile.name
    )?;
    std::fs::write(out.join("summary.md"), &md)?;
    Ok(md)
}

/// Runs every (heuristic, seed) of `profile` on `dataset`, resuming finished or interrupted
/// runs found under `out/runs/<profile>/`, and writes the results into `out`.
///
/// # Errors
/// Data, training or file errors.
pub fn reproduce(
    dataset: DatasetName,
    profile: &Profile,
    data_dir: Option<&Path>,
    out: &Path,
    base_seed: u64,
    device_name: &str,
    show_progress: bool,
) -> Result<String, Error> {
    if profile.weights.is_some() && profile.model != ModelKind::Vgg16 {
        return Err(format!(
            "weights are torchvision VGG16 weights: they need the vgg16 model, not {:?}",
            profile.model
        )
        .into());
    }
    let started = Instant::now();
    let device = baal::device::parse_device(device_name)?;
    let data = load_data(dataset, data_dir, profile.test_subset)?;
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
    let mut results = Results { runs: Vec::new() };
    for s in 0..profile.seeds as u64 {
        let seed = base_seed + s;
        for &heuristic in &profile.heuristics {
            let settings = RunSettings {
                profile,
                heuristic,
                seed,
                dir: runs_dir.join(format!("{heuristic}-seed{seed}")),
                device: device.clone(),
                show_progress,
            };
            let records = run_one(&data, &settings)?;
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
