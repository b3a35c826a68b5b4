//! `baal predict` (score one shard of a pool with a zoo model) and `baal merge` (check the
//! shards and select).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baal::active::{Classifier, ModelPredictor};
use baal::bayesian::McSamplerConfig;
use baal::data::{DataSource, FolderShape, ImageDataset, ImageFolder, Normalization};
use baal::heuristics::{HeuristicKind, HeuristicParams};
use baal::shard::{
    MergedSelection, Shard, ShardPlan, ShardScores, file_sha256, merge_shards, score_shard,
};
use baal_zoo::images::{NormalizedImages, normalized_batcher};
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Tensor};

use crate::score::ScoreError;

/// Options of `baal predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The pool: `fashion-mnist`, `mnist` or `cifar10` (their training split), a `.npy`
    /// array of images `[N, H, W]` or `[N, C, H, W]` (bytes, or floats in [0, 1]), or a
    /// folder of PNG/JPEG files (its top-level files, in name order, are the pool; class
    /// sub-folders give the class names and are not scored).
    pub data: String,
    /// A folder's images are resized to this square side.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// A folder's images as 1 (grey) or 3 (RGB) channels.
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// Folder of a named dataset's files (default: Debian's for Fashion-MNIST and MNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Classes of a `.npy` pool or of a folder without class sub-folders (the named datasets
    /// have 10).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// The model.
    #[arg(long, value_enum)]
    pub model: ModelKind,
    /// Its trained weights (Burn's burnpack, as `Trainer::save_weights` writes them).
    #[arg(long)]
    pub weights: PathBuf,
    /// Acquisition heuristic (not epig: shards take no target set).
    #[arg(long, value_enum, default_value_t = HeuristicKind::Bald)]
    pub heuristic: HeuristicKind,
    /// Items the merge selects.
    #[arg(long, default_value_t = 10)]
    pub query_size: usize,
    /// BatchBALD's candidates per shard (default 50 × the query size).
    #[arg(long, value_name = "M")]
    pub candidates: Option<usize>,
    /// MC iterations T.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Seed of the MC masks and of the heuristic's draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Temperature of the sampled heuristics.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Items per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Which shard: `I/N` (shard I of N, from 0), or `auto` to read it from the scheduler
    /// (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT; JOB_COMPLETION_INDEX and
    /// BAAL_SHARD_COUNT on Kubernetes).
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// The shard's result folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Device: cpu (flex), wgpu, vulkan, metal, cuda[:N], tch-cpu, tch-cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Options of `baal merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard folders written by `baal predict`, or one folder holding them.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Write the JSON here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Device for BatchBALD's selection over the candidates.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

fn input(e: impl std::fmt::Display) -> ScoreError {
    ScoreError::Input(e.to_string())
}

/// The pool's images (normalised), the number of classes and what identifies the data.
fn load_pool(args: &PredictArgs) -> Result<(NormalizedImages, usize, String), ScoreError> {
    match args.data.parse::<DataSource>().map_err(input)? {
        DataSource::Named(named) => {
            let classes = named.classes().len();
            if let Some(n) = args.num_classes.filter(|&n| n != classes) {
                return Err(input(format!(
                    "--num-classes {n}: {} has {classes} classes",
                    args.data
                )));
            }
            let train = named.load(args.data_dir.as_deref()).map_err(input)?.train;
            let id = format!("{} train split, {} items", args.data, train.len());
            let images = NormalizedImages::all(&train, &named.normalization()).map_err(input)?;
            Ok((images, classes, id))
        }
        DataSource::Folder(path) => load_folder_pool(args, &path),
        DataSource::Npy(path) => {
            let classes = args.num_classes.filter(|&n| n >= 2).ok_or_else(|| {
                input(format!(
                    "{}: give --num-classes (at least 2)",
                    path.display()
                ))
            })?;
            let images = ImageDataset::from_npy_images(&path, classes).map_err(input)?;
            let id = format!("npy sha256 {}", file_sha256(&path).map_err(input)?);
            let normalization = Normalization::of_images(&images).map_err(input)?;
            let images = NormalizedImages::all(&images, &normalization).map_err(input)?;
            Ok((images, classes, id))
        }
    }
}

/// A folder's top-level files as the pool (its class sub-folders give the class names).
fn load_folder_pool(
    args: &PredictArgs,
    path: &Path,
) -> Result<(NormalizedImages, usize, String), ScoreError> {
    let names: Vec<String> = args
        .num_classes
        .map(|n| (0..n).map(|c| c.to_string()).collect())
        .unwrap_or_default();
    let shape = FolderShape {
        channels: args.channels,
        size: args.image_size,
    };
    let folder = ImageFolder::load(path, &names, shape).map_err(input)?;
    if folder.pool == 0 {
        return Err(input(format!(
            "{}: no image at its top level to score (class sub-folders are not scored)",
            path.display()
        )));
    }
    let bytes: u64 = folder
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let id = format!(
        "folder {} of {} files, {bytes} bytes, {}×{}×{}",
        path.display(),
        folder.files.len(),
        args.channels,
        args.image_size,
        args.image_size
    );
    let normalization = Normalization::of_images(&folder.images).map_err(input)?;
    let pool: Vec<usize> = (0..folder.pool).collect();
    let images = NormalizedImages::select(&folder.images, &pool, &normalization).map_err(input)?;
    Ok((images, folder.classes.len(), id))
}

/// Runs `baal predict`: scores the shard and writes its folder.
pub fn predict(args: &PredictArgs) -> Result<(), ScoreError> {
    let device = baal::device::parse_device(&args.device).map_err(input)?;
    let shard = Shard::parse(&args.shard).map_err(input)?;
    if args.query_size == 0 || args.batch_size == 0 || args.iterations == 0 {
        return Err(input(
            "--query-size, --batch-size and --iterations must be at least 1",
        ));
    }
    let (pool, classes, data_id) = load_pool(args)?;
    let weights_sha256 = file_sha256(&args.weights).map_err(input)?;
    let params = HeuristicParams::new()
        .with_query_size(args.query_size)
        .with_seed(args.seed)
        .with_temperature(args.temperature);
    let heuristic = args.heuristic.build(&params).map_err(input)?;
    let consistent = heuristic.needs_consistent_samples();
    let settings: BTreeMap<String, String> = [
        ("model", format!("{:?}", args.model)),
        ("weights sha256", weights_sha256),
        ("data", data_id),
        ("classes", classes.to_string()),
        ("MC iterations", args.iterations.to_string()),
        ("mask seed", args.seed.to_string()),
        ("consistent samples", consistent.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let plan = ShardPlan {
        shard,
        heuristic: args.heuristic,
        params,
        candidates: args.candidates,
        settings,
    };
    let sampler = McSamplerConfig::new(args.iterations)
        .with_seed(args.seed)
        .with_consistent(consistent)
        .init()
        .map_err(input)?;
    let visitor = ShardVisitor {
        args,
        pool: &pool,
        plan: &plan,
        sampler: &sampler,
        device: &device,
    };
    let mut scores = args
        .model
        .build(pool.shape(), classes, &device, visitor)
        .map_err(input)??;
    scores
        .write(&args.output)
        .map_err(|e| ScoreError::Failed(e.to_string()))?;
    eprintln!(
        "baal predict: shard {}/{} scored pool items {:?} of {} into {}",
        shard.index,
        shard.count,
        scores.manifest.range,
        scores.manifest.pool_len,
        args.output.display()
    );
    Ok(())
}

/// Loads the weights into the zoo model and scores the shard.
struct ShardVisitor<'a> {
    args: &'a PredictArgs,
    pool: &'a NormalizedImages,
    plan: &'a ShardPlan,
    sampler: &'a baal::bayesian::McSampler,
    device: &'a Device,
}

impl ModelVisitor for ShardVisitor<'_> {
    type Output = Result<ShardScores, ScoreError>;

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        let model = model.try_load_file(&self.args.weights).map_err(|e| {
            input(format!(
                "{}: not weights of {:?} for this data: {e:?}",
                self.args.weights.display(),
                self.args.model
            ))
        })?;
        let predictor = ModelPredictor {
            model,
            batcher: normalized_batcher(),
            device: self.device.clone(),
            batch_size: self.args.batch_size,
        };
        let indices: Vec<usize> = (0..self.pool.len()).collect();
        score_shard(&predictor, self.sampler, self.pool, &indices, self.plan).map_err(input)
    }
}

/// The shard folders named on the command line: each, or each sub-folder of a folder that
/// holds no manifest itself.
fn shard_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScoreError> {
    let mut dirs = Vec::new();
    for path in paths {
        if path.join("manifest.json").is_file() {
            dirs.push(path.clone());
            continue;
        }
        let mut inner: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| input(format!("{}: {e}", path.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        if inner.is_empty() {
            return Err(input(format!(
                "{}: no shard here (no manifest.json in it or its sub-folders)",
                path.display()
            )));
        }
        inner.sort();
        dirs.extend(inner);
    }
    Ok(dirs)
}

/// Runs `baal merge`.
pub fn merge(args: &MergeArgs) -> Result<MergedSelection, ScoreError> {
    let device = baal::device::parse_device(&args.device).map_err(input)?;
    let shards = shard_dirs(&args.shards)?
        .iter()
        .map(|dir| ShardScores::read(dir, &device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(input)?;
    merge_shards(shards).map_err(input)
}
