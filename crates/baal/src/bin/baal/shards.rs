//! `baal predict` (score one shard of a pool with a zoo model) and `baal merge` (check the
//! shards and select).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baal::active::{Classifier, ModelPredictor};
use baal::bayesian::{McSamplerConfig, on_flex_workers};
use baal::data::{DataSource, FolderShape, ImageDataset, ImageFolder, Normalization};
use baal::heuristics::{HeuristicKind, HeuristicParams};
use baal::shard::{
    MergedSelection, Shard, ShardPlan, ShardScores, file_sha256, merge_shards, score_shard,
};
use baal_zoo::folder::ModelFolder;
use baal_zoo::images::{NormalizedImage, NormalizedImages, normalized_batcher};
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::SelectionDataset;
use burn::tensor::{Device, Tensor};

use crate::score::ScoreError;

/// The pool and the model that reads it: what `baal predict` and `baal embed` share.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which_model").required(true).args(["model", "model_dir"]))]
pub struct PoolSourceArgs {
    /// The pool: `fashion-mnist`, `mnist` or `cifar10` (their training split), a `.npy`
    /// array of images `[N, H, W]` or `[N, C, H, W]` (bytes, or floats in [0, 1]), or a
    /// folder of PNG/JPEG files (its top-level files, in name order, are the pool; class
    /// sub-folders give the class names and are not scored).
    pub data: String,
    /// A folder's images are resized to this square side [default: 32, or the model
    /// folder's].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// A folder's images as 1 (grey) or 3 (RGB) channels [default: 3, or the model folder's].
    #[arg(long)]
    pub channels: Option<usize>,
    /// Folder of a named dataset's files (default: Debian's for Fashion-MNIST and MNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Classes of a `.npy` pool or of a folder without class sub-folders (the named datasets
    /// have 10).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// The model (or `--model-dir`).
    #[arg(long, value_enum, requires = "weights")]
    pub model: Option<ModelKind>,
    /// Its trained weights (Burn's burnpack, as `Trainer::save_weights` writes them).
    #[arg(long, requires = "model")]
    pub weights: Option<PathBuf>,
    /// A model folder written by `baal train`: its model, weights, classes, image shape and
    /// normalisation (instead of the pool's own statistics).
    #[arg(long, conflicts_with_all = ["model", "weights"])]
    pub model_dir: Option<PathBuf>,
}

/// Options of `baal predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub source: PoolSourceArgs,
    /// Acquisition heuristic (not epig: shards take no target set; not coreset or badge:
    /// they select by embeddings of the whole pool).
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
    /// Leave out the items a label file labels (`baal export`'s CSV or JSON, e.g. a folders
    /// export's `labels.csv`): a folder pool's files by name, other pools' items by index.
    /// The merge then never selects them; every shard must be given the same file.
    #[cfg(feature = "serve")]
    #[arg(long)]
    pub labelled: Option<PathBuf>,
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

pub(crate) fn input(e: impl std::fmt::Display) -> ScoreError {
    ScoreError::Input(e.to_string())
}

/// The model that scores the pool: a zoo model and its weights, named on the command line or
/// read from a model folder with its card.
pub(crate) struct PredictModel {
    pub(crate) kind: ModelKind,
    pub(crate) weights: PathBuf,
    folder: Option<ModelFolder>,
}

impl PredictModel {
    pub(crate) fn from_args(args: &PoolSourceArgs) -> Result<Self, ScoreError> {
        match (&args.model_dir, args.model, &args.weights) {
            (Some(dir), _, _) => {
                let folder = ModelFolder::read(dir)?;
                Ok(Self {
                    kind: folder.card.model,
                    weights: folder.weights.clone(),
                    folder: Some(folder),
                })
            }
            (None, Some(kind), Some(weights)) => Ok(Self {
                kind,
                weights: weights.clone(),
                folder: None,
            }),
            _ => Err(input("give --model and --weights, or --model-dir")),
        }
    }

    /// The number of classes: the model folder's, else `--num-classes`; a `--num-classes`
    /// that differs from the model folder's is refused.
    fn num_classes(&self, args: &PoolSourceArgs) -> Result<Option<usize>, ScoreError> {
        let Some(folder) = &self.folder else {
            return Ok(args.num_classes);
        };
        let classes = folder.card.classes.len();
        match args.num_classes {
            Some(n) if n != classes => Err(self.mismatch(format!(
                "the model has {classes} classes, --num-classes says {n}"
            ))),
            _ => Ok(Some(classes)),
        }
    }

    /// The shape a folder's images are read at: the model folder's, else the options'.
    fn folder_shape(&self, args: &PoolSourceArgs) -> Result<FolderShape, ScoreError> {
        let Some(folder) = &self.folder else {
            return Ok(FolderShape {
                channels: args.channels.unwrap_or(3),
                size: args.image_size.unwrap_or(32),
            });
        };
        let [channels, size, _] = folder.card.image_shape;
        for (option, given, model) in [
            ("--channels", args.channels, channels),
            ("--image-size", args.image_size, size),
        ] {
            if let Some(given) = given.filter(|&g| g != model) {
                return Err(self.mismatch(format!(
                    "the model was trained at {option} {model}, the command line says {given}"
                )));
            }
        }
        Ok(FolderShape { channels, size })
    }

    /// The model folder's normalisation, else `own` (the pool's statistics or a named
    /// dataset's).
    fn normalization(
        &self,
        own: impl FnOnce() -> Result<Normalization, ScoreError>,
    ) -> Result<Normalization, ScoreError> {
        match &self.folder {
            Some(folder) => Ok(folder.card.normalization.clone()),
            None => own(),
        }
    }

    /// Refuses a pool of another image shape than the model folder's.
    fn check_shape(&self, pool: &NormalizedImages, data: &str) -> Result<(), ScoreError> {
        match &self.folder {
            Some(folder) if folder.card.image_shape != pool.shape() => Err(self.mismatch(format!(
                "the model takes images of {:?}, {data} has {:?}",
                folder.card.image_shape,
                pool.shape()
            ))),
            _ => Ok(()),
        }
    }

    /// A one-line input error that names the model card.
    fn mismatch(&self, what: String) -> ScoreError {
        let card = self
            .folder
            .as_ref()
            .map_or_else(String::new, |f| format!("{}: ", f.card_path.display()));
        input(format!("{card}{what}"))
    }
}

/// The pool to score: its images (normalised), the number of classes, what identifies the
/// data, and a folder pool's files (their paths, in pool order) inside the folder.
pub(crate) struct Pool {
    pub(crate) images: NormalizedImages,
    pub(crate) classes: usize,
    id: String,
    /// The images as loaded, the pool's first (a folder's class sub-folders' after them): what
    /// a label file's items and files are matched against.
    loaded: ImageDataset,
    /// A folder pool's folder and the file of each of `loaded`'s images.
    files: Option<(PathBuf, Vec<PathBuf>)>,
    /// Class names: the model folder's, a named dataset's or a folder's, else the indices.
    class_names: Vec<String>,
}

/// The pool's images (normalised), the number of classes and what identifies the data.
pub(crate) fn load_pool(args: &PoolSourceArgs, model: &PredictModel) -> Result<Pool, ScoreError> {
    let num_classes = model.num_classes(args)?;
    let mut files = None;
    let mut class_names = model.folder.as_ref().map(|f| f.card.classes.clone());
    let loaded;
    let (pool, classes, id) = match args.data.parse::<DataSource>().map_err(input)? {
        DataSource::Named(named) => {
            let classes = named.classes().len();
            if let Some(n) = num_classes.filter(|&n| n != classes) {
                let what = format!("{n} classes: {} has {classes}", args.data);
                return Err(match model.folder {
                    Some(_) => model.mismatch(format!("the model has {what}")),
                    None => input(format!("--num-classes {what}")),
                });
            }
            let train = named.load(args.data_dir.as_deref()).map_err(input)?.train;
            let id = format!("{} train split, {} items", args.data, train.len());
            let normalization = model.normalization(|| Ok(named.normalization()))?;
            let images = NormalizedImages::all(&train, &normalization).map_err(input)?;
            loaded = train;
            class_names
                .get_or_insert_with(|| named.classes().iter().map(|c| (*c).to_string()).collect());
            (images, classes, id)
        }
        DataSource::Folder(path) => {
            let (images, classes, id, folder) = load_folder_pool(args, model, num_classes, &path)?;
            loaded = folder.images;
            class_names.get_or_insert(folder.classes);
            files = Some((path, folder.files));
            (images, classes, id)
        }
        DataSource::Npy(path) => {
            let classes = num_classes.filter(|&n| n >= 2).ok_or_else(|| {
                input(format!(
                    "{}: give --num-classes (at least 2)",
                    path.display()
                ))
            })?;
            let images = ImageDataset::from_npy_images(&path, classes).map_err(input)?;
            let id = format!("npy sha256 {}", file_sha256(&path).map_err(input)?);
            let normalization =
                model.normalization(|| Normalization::of_images(&images).map_err(input))?;
            let normalized = NormalizedImages::all(&images, &normalization).map_err(input)?;
            loaded = images;
            (normalized, classes, id)
        }
    };
    model.check_shape(&pool, &args.data)?;
    Ok(Pool {
        images: pool,
        classes,
        id,
        loaded,
        files,
        class_names: class_names.unwrap_or_else(|| (0..classes).map(|c| c.to_string()).collect()),
    })
}

/// A folder's top-level files as the pool (its class sub-folders give the class names).
fn load_folder_pool(
    args: &PoolSourceArgs,
    model: &PredictModel,
    num_classes: Option<usize>,
    path: &Path,
) -> Result<(NormalizedImages, usize, String, ImageFolder), ScoreError> {
    let names: Vec<String> = match &model.folder {
        Some(folder) => {
            check_class_folders(path, model, &folder.card.classes)?;
            folder.card.classes.clone()
        }
        None => num_classes
            .map(|n| (0..n).map(|c| c.to_string()).collect())
            .unwrap_or_default(),
    };
    let shape = model.folder_shape(args)?;
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
        shape.channels,
        shape.size,
        shape.size
    );
    let normalization =
        model.normalization(|| Normalization::of_images(&folder.images).map_err(input))?;
    let pool: Vec<usize> = (0..folder.pool).collect();
    let images = NormalizedImages::select(&folder.images, &pool, &normalization).map_err(input)?;
    Ok((images, folder.classes.len(), id, folder))
}

/// Refuses a folder with a class sub-folder the model does not know.
fn check_class_folders(
    path: &Path,
    model: &PredictModel,
    classes: &[String],
) -> Result<(), ScoreError> {
    let entries = std::fs::read_dir(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
    let mut unknown: Vec<String> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .filter(|name| !classes.contains(name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(model.mismatch(format!(
        "classes {} but {} has class sub-folders {} that are not among them",
        classes.join(", "),
        path.display(),
        unknown.join(", ")
    )))
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
    let model = PredictModel::from_args(&args.source)?;
    let pool = load_pool(&args.source, &model)?;
    let (positions, labelled_id) = unlabelled_positions(args, &pool)?;
    let params = HeuristicParams::new()
        .with_query_size(args.query_size)
        .with_seed(args.seed)
        .with_temperature(args.temperature);
    let heuristic = args.heuristic.build(&params).map_err(input)?;
    if heuristic.needs_embeddings() {
        return Err(input(format!(
            "--heuristic {}: baal predict --shard does not support heuristics that select by \
             embeddings (their picks depend on the whole pool's embeddings, which shards do not \
             merge); use baal score --embeddings",
            args.heuristic
        )));
    }
    let consistent = heuristic.needs_consistent_samples();
    let settings = shard_settings(args, &model, &pool, consistent, labelled_id)?;
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
    let images = SelectionDataset::from_indices_checked(pool.images.clone(), positions.clone());
    let visitor = ShardVisitor {
        args,
        weights: &model.weights,
        kind: model.kind,
        pool: &images,
        positions: &positions,
        plan: &plan,
        sampler: &sampler,
        device: &device,
    };
    let mut scores = on_flex_workers(&device, || {
        model
            .kind
            .build(pool.images.shape(), pool.classes, &device, visitor)
    })
    .map_err(input)??;
    scores
        .write(&args.output)
        .map_err(|e| ScoreError::Failed(e.to_string()))?;
    write_pool_files(&pool, &args.output)?;
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

/// What a shard records so that only shards of the same settings merge: the model, its
/// weights' (and card's) checksums, the data, the classes, the MC iterations and mask seed,
/// whether the samples are consistent, and which labelled items were left out.
///
/// # Errors
/// A weights or card file that cannot be read.
fn shard_settings(
    args: &PredictArgs,
    model: &PredictModel,
    pool: &Pool,
    consistent: bool,
    labelled_id: Option<String>,
) -> Result<BTreeMap<String, String>, ScoreError> {
    let weights_sha256 = file_sha256(&model.weights).map_err(input)?;
    let mut settings: BTreeMap<String, String> = [
        ("model", format!("{:?}", model.kind)),
        ("weights sha256", weights_sha256),
        ("data", pool.id.clone()),
        ("classes", pool.classes.to_string()),
        ("MC iterations", args.iterations.to_string()),
        ("mask seed", args.seed.to_string()),
        ("consistent samples", consistent.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(folder) = &model.folder {
        // The card holds the normalisation: shards scored with different cards differ.
        let card_sha256 = file_sha256(&folder.card_path).map_err(input)?;
        settings.insert("model card sha256".to_string(), card_sha256);
    }
    if let Some(labelled) = labelled_id {
        settings.insert("labelled items left out".to_string(), labelled);
    }
    Ok(settings)
}

/// The pool positions to score: all, or those a `--labelled` file does not label; with the
/// file's checksum and count for the shard's settings (shards that left out other items
/// differ).
fn unlabelled_positions(
    args: &PredictArgs,
    pool: &Pool,
) -> Result<(Vec<usize>, Option<String>), ScoreError> {
    let all: Vec<usize> = (0..pool.images.len()).collect();
    #[cfg(feature = "serve")]
    if let Some(file) = &args.labelled {
        let (data, files) = match &pool.files {
            Some((dir, files)) => (dir.clone(), Some(files.clone())),
            None => (PathBuf::from(&args.source.data), None),
        };
        let items = baal_serve::Items {
            images: pool.loaded.clone(),
            files,
            classes: pool.class_names.clone(),
            seed_labels: Vec::new(),
            test: None,
        };
        let served = baal_serve::ServedPool {
            items: &items,
            data: &data,
        };
        let labels = baal_serve::read_label_file(file, served).map_err(input)?;
        let labelled: std::collections::HashSet<usize> =
            labels.iter().map(|label| label.item.get()).collect();
        let kept: Vec<usize> = all.into_iter().filter(|p| !labelled.contains(p)).collect();
        if kept.is_empty() {
            return Err(input(format!(
                "{}: labels every item of the pool: nothing left to score",
                file.display()
            )));
        }
        let id = format!(
            "{} of {} items, file sha256 {}",
            pool.images.len() - kept.len(),
            pool.images.len(),
            file_sha256(file).map_err(input)?
        );
        return Ok((kept, Some(id)));
    }
    #[cfg(not(feature = "serve"))]
    let _ = args;
    Ok((all, None))
}

/// The file name of each pool position, relative to the folder (`pool-files.json` beside the
/// shard's scores), so that `baal merge` names the selected files; nothing for other pools.
const POOL_FILES: &str = "pool-files.json";

fn write_pool_files(pool: &Pool, output: &Path) -> Result<(), ScoreError> {
    let Some((dir, files)) = &pool.files else {
        return Ok(());
    };
    let names: Vec<String> = files[..pool.images.len()]
        .iter()
        .map(|file| {
            let relative = file.strip_prefix(dir).unwrap_or(file);
            relative.to_string_lossy().replace('\\', "/")
        })
        .collect();
    let json = serde_json::to_vec(&names).map_err(|e| ScoreError::Failed(e.to_string()))?;
    baal::data::write_file_atomically(&output.join(POOL_FILES), &json)
        .map_err(|e| ScoreError::Failed(e.to_string()))
}

/// `model` with the `weights` of a `kind` model, as a predictor of normalised images.
///
/// # Errors
/// Weights that are not `kind`'s for this data (exit 2, naming the file).
pub(crate) fn zoo_predictor<M: Classifier<Input = Tensor<4>>>(
    model: M,
    weights: &Path,
    kind: ModelKind,
    device: &Device,
    batch_size: usize,
) -> Result<ModelPredictor<M, NormalizedImage>, ScoreError> {
    let model = model.try_load_file(weights).map_err(|e| {
        input(format!(
            "{}: not weights of {kind:?} for this data: {e:?}",
            weights.display()
        ))
    })?;
    Ok(ModelPredictor {
        model,
        batcher: normalized_batcher(),
        device: device.clone(),
        batch_size,
    })
}

/// Loads the weights into the zoo model and scores the shard.
struct ShardVisitor<'a> {
    args: &'a PredictArgs,
    weights: &'a Path,
    kind: ModelKind,
    pool: &'a SelectionDataset<NormalizedImages, NormalizedImage>,
    /// The pool position of each of `pool`'s items.
    positions: &'a [usize],
    plan: &'a ShardPlan,
    sampler: &'a baal::bayesian::McSampler,
    device: &'a Device,
}

impl ModelVisitor for ShardVisitor<'_> {
    type Output = Result<ShardScores, ScoreError>;

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        let predictor = zoo_predictor(
            model,
            self.weights,
            self.kind,
            self.device,
            self.args.batch_size,
        )?;
        score_shard(
            &predictor,
            self.sampler,
            self.pool,
            self.positions,
            self.plan,
        )
        .map_err(input)
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

/// What `baal merge` prints: the selection, and the selected files of a folder pool.
#[derive(Debug, serde::Serialize)]
pub struct MergedQuery {
    /// The selection.
    #[serde(flatten)]
    pub selection: MergedSelection,
    /// The file of each selected item, relative to the pool's folder (folder pools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

/// Runs `baal merge`.
pub fn merge(args: &MergeArgs) -> Result<MergedQuery, ScoreError> {
    let device = baal::device::parse_device(&args.device).map_err(input)?;
    let dirs = shard_dirs(&args.shards)?;
    let shards = dirs
        .iter()
        .map(|dir| ShardScores::read(dir, &device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(input)?;
    let selection = merge_shards(shards).map_err(input)?;
    let files = match dirs.first().map(|dir| dir.join(POOL_FILES)) {
        Some(path) if path.is_file() => Some(selected_files(&path, &selection)?),
        _ => None,
    };
    Ok(MergedQuery { selection, files })
}

/// The names in `path` (a shard's [`POOL_FILES`]) of the selected items.
fn selected_files(path: &Path, selection: &MergedSelection) -> Result<Vec<String>, ScoreError> {
    let bad = |what: String| input(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let names: Vec<String> =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a list of file names: {e}")))?;
    selection
        .query
        .iter()
        .map(|&item| {
            names.get(item).cloned().ok_or_else(|| {
                bad(format!(
                    "names {} files; the selection holds item {item}",
                    names.len()
                ))
            })
        })
        .collect()
}
