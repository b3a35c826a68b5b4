//! `baal score`: rank a pool from MC predictions saved by numpy or PyTorch.

use std::path::{Path, PathBuf};

use baal_data::{NpyArray, NpyRows};
use baal_heuristics::{
    Heuristic, HeuristicError, HeuristicKind, HeuristicParams, PoolScorer, Predictions, Reduction,
};
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

/// What went wrong, split by exit code: bad input (2) or a failure while scoring (1).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The user's files, arrays or options are wrong: exit code 2.
    #[error("{0}")]
    Input(String),
    /// Something failed while scoring or writing: exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl From<baal_zoo::folder::FolderError> for ScoreError {
    /// A model folder that is missing, corrupt or made for other data is bad input (exit 2);
    /// one that cannot be written, a failure (exit 1).
    fn from(error: baal_zoo::folder::FolderError) -> Self {
        if error.is_bad_input() {
            Self::Input(error.to_string())
        } else {
            Self::Failed(error.to_string())
        }
    }
}

impl ScoreError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Input(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

/// Options of `baal score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Acquisition heuristic.
    #[arg(long, value_enum)]
    pub heuristic: HeuristicKind,
    /// Number of items to select (required for batch-bald and the sampled heuristics
    /// power-bald, softmax-bald and rank-bald; for the others, `ranks` is cut to the first K).
    #[arg(long)]
    pub query_size: Option<usize>,
    /// Seed for random, batch-bald's sampling and the sampled heuristics.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Temperature of the sampled heuristics (power-bald, softmax-bald, rank-bald).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// BatchBALD's sampled label configurations per pick (default 500).
    #[arg(long)]
    pub batch_bald_samples: Option<usize>,
    /// BatchBALD's candidates: the best M items by BALD, whose predictions it selects from
    /// (default 50 × the query size; at least the pool size selects from the whole pool).
    #[arg(long, value_name = "M")]
    pub candidates: Option<usize>,
    /// Items read and scored at a time (default: as many as fit in 64 MiB).
    #[arg(long, value_name = "N")]
    pub chunk_items: Option<usize>,
    /// The array holds logits: apply a softmax over classes first.
    #[arg(long)]
    pub logits: bool,
    /// Segmentation: the array is `[N, C, P, T]` (P positions, e.g. pixels flattened) and
    /// each item's P per-position scores fold into one by this reduction.
    #[arg(long, value_enum)]
    pub reduction: Option<ReductionArg>,
    /// Regression: the array holds raw outputs `[N, O, T]` (O outputs), scored by the
    /// variance heuristic.
    #[arg(long, conflicts_with_all = ["logits", "reduction"])]
    pub regression: bool,
    /// Target-set predictions `[M, C, T]` for EPIG.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// The model's embeddings of the pool, a float `.npy` array `[N, D]` (the input of its
    /// last linear layer), for coreset and badge; badge also reads the predictions' MC
    /// average. Read whole into memory.
    #[arg(long, value_name = "POOL.npy")]
    pub embeddings: Option<PathBuf>,
    /// The labelled items' embeddings `[L, D]`, coreset's first centres (without them its
    /// first pick is drawn with --seed).
    #[arg(long, value_name = "LABELLED.npy")]
    pub labelled_embeddings: Option<PathBuf>,
    /// Device: `cpu`, `wgpu`, `vulkan`, `metal`, `cuda[:N]`, `tch-cpu`, `tch-cuda[:N]`,
    /// `remote:ws://HOST:PORT`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write the JSON here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Pool predictions: a little-endian f32 or f64 `.npy` array `[N, C, T]` (`[N, C, P, T]`
    /// with `--reduction`). It is read and scored a chunk of items at a time, so it may be
    /// larger than memory. Coreset with `--embeddings` reads none.
    #[arg(required_unless_present = "embeddings")]
    pub predictions: Option<PathBuf>,
}

/// How a segmentation item's per-position scores fold into one (`--reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReductionArg {
    /// The mean over positions.
    Mean,
    /// The sum over positions.
    Sum,
    /// The largest position's score.
    Max,
    /// The smallest position's score.
    Min,
}

impl From<ReductionArg> for Reduction {
    fn from(arg: ReductionArg) -> Self {
        match arg {
            ReductionArg::Mean => Reduction::Mean,
            ReductionArg::Sum => Reduction::Sum,
            ReductionArg::Max => Reduction::Max,
            ReductionArg::Min => Reduction::Min,
        }
    }
}

/// What the array holds, from the options.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// `[N, C, T]` probabilities (or logits).
    Classes { logits: bool },
    /// `[N, C, P, T]` probabilities (or logits), folded over P.
    Segmentation { logits: bool, reduction: Reduction },
    /// `[N, O, T]` raw outputs.
    Regression,
}

impl Layout {
    fn of(args: &ScoreArgs) -> Self {
        match (args.regression, args.reduction) {
            (true, _) => Self::Regression,
            (false, Some(reduction)) => Self::Segmentation {
                logits: args.logits,
                reduction: reduction.into(),
            },
            (false, None) => Self::Classes {
                logits: args.logits,
            },
        }
    }

    /// The array's rank and what its axes are.
    fn expected(self) -> (usize, &'static str) {
        match self {
            Self::Classes { .. } => (3, "[N, C, T] (pool items, classes, MC iterations)"),
            Self::Segmentation { .. } => (
                4,
                "[N, C, P, T] (pool items, classes, positions, MC iterations)",
            ),
            Self::Regression => (3, "[N, O, T] (pool items, outputs, MC iterations)"),
        }
    }

    /// One chunk of `values` (`len` items of the array's shape `dims`) as predictions.
    pub fn predictions(
        self,
        values: Vec<f32>,
        dims: &[usize],
        len: usize,
        device: &Device,
    ) -> baal_heuristics::Result<Predictions> {
        match self {
            Self::Classes { logits } => {
                let tensor = Tensor::<3>::from_data(
                    TensorData::new(values, [len, dims[1], dims[2]]),
                    device,
                );
                predictions(tensor, logits)
            }
            Self::Segmentation { logits, reduction } => {
                let tensor = Tensor::<4>::from_data(
                    TensorData::new(values, [len, dims[1], dims[2], dims[3]]),
                    device,
                );
                if logits {
                    Predictions::from_segmentation_logits(tensor, reduction)
                } else {
                    Predictions::from_segmentation_probs(tensor, reduction)
                }
            }
            Self::Regression => Predictions::from_regression(Tensor::<3>::from_data(
                TensorData::new(values, [len, dims[1], dims[2]]),
                device,
            )),
        }
    }
}

/// The JSON `baal score` writes.
#[derive(Debug, Serialize)]
pub struct ScoreReport {
    /// The heuristic's command-line name.
    pub heuristic: String,
    /// Pool indices, most informative first (batch heuristics: the picks in selection order).
    pub ranks: Vec<usize>,
    /// The score of each pool index, in index order.
    pub scores: Vec<f32>,
}

/// Runs `baal score`.
pub fn run(args: &ScoreArgs) -> Result<ScoreReport, ScoreError> {
    let device =
        baal::device::parse_device(&args.device).map_err(|e| ScoreError::Input(e.to_string()))?;
    if args.query_size == Some(0) {
        return Err(ScoreError::Input("--query-size must be at least 1".into()));
    }
    // The files' headers first: a malformed array is reported whatever the options (bad
    // values are found while the pool is scored).
    let layout = Layout::of(args);
    let pool = args
        .predictions
        .as_deref()
        .map(|path| open_rows(path, layout))
        .transpose()?;
    let target = args
        .target
        .as_deref()
        .map(|path| load_predictions(path, args.logits, &device))
        .transpose()?;
    let name = args.heuristic.name();
    let heuristic = checked_heuristic(args)?;
    if heuristic.needs_embeddings() {
        return crate::score_embeddings::select(args, heuristic.as_ref(), layout, pool, &device);
    }
    let Some(mut pool) = pool else {
        return Err(ScoreError::Input(format!(
            "{name} scores predictions: give the predictions file (only coreset, with \
             --embeddings, reads none)"
        )));
    };
    let n = pool.rows();
    if let Some(k) = args.query_size
        && k > n
    {
        return Err(ScoreError::Input(format!(
            "--query-size {k} exceeds the pool of {n} items"
        )));
    }
    // The pool streams through the scorer a chunk at a time: memory holds one score per item
    // (and BatchBALD's candidates), not the array. Random reads no prediction, but the file
    // is still checked.
    let mut scorer = if heuristic.needs_predictions() {
        Some(
            PoolScorer::new(heuristic.as_ref(), target.as_ref(), args.candidates)
                .map_err(scoring_error)?,
        )
    } else {
        None
    };
    score_chunks(args, layout, &mut pool, &device, scorer.as_mut())?;
    // Batch heuristics rank their batch of the query size first (BatchBALD: with each pick's
    // batch mutual information, 0 for the rest; sampling: a sampled order with the sampling
    // probabilities); the others rank the pool by score.
    let ranking = match scorer {
        Some(scorer) => scorer.finish().rank(heuristic.as_ref()),
        None => heuristic
            .scores_without_predictions(n)
            .and_then(|scores| heuristic.rank_scores(scores)),
    }
    .map_err(scoring_error)?;
    let (mut ranks, scores) = ranking.into_parts();
    if let Some(k) = args.query_size {
        ranks.truncate(k);
    }
    Ok(ScoreReport {
        heuristic: name.to_string(),
        ranks,
        scores,
    })
}

/// The heuristic the options ask for, built, with the options checked against what it
/// reads (a query size, a target set, candidates).
fn checked_heuristic(args: &ScoreArgs) -> Result<Box<dyn Heuristic>, ScoreError> {
    let name = args.heuristic.name();
    if args.heuristic.selects_batches() && args.query_size.is_none() {
        return Err(ScoreError::Input(format!("{name} needs --query-size K")));
    }
    let mut params = HeuristicParams::new()
        .with_seed(args.seed)
        .with_temperature(args.temperature);
    params.query_size = args.query_size;
    params.batch_bald_samples = args.batch_bald_samples;
    let heuristic = args
        .heuristic
        .build(&params)
        .map_err(|e| ScoreError::Input(format!("--heuristic {name}: {e}")))?;
    if args.target.is_some() && !heuristic.needs_target() {
        return Err(ScoreError::Input(format!(
            "--target is only used by heuristics that need target predictions (epig), not {name}"
        )));
    }
    if heuristic.needs_target() && args.target.is_none() {
        return Err(ScoreError::Input(format!(
            "{name} needs --target target.npy"
        )));
    }
    crate::score_embeddings::check_options(args, heuristic.as_ref())?;
    if args.candidates.is_some() && heuristic.joint_batch().is_none() {
        return Err(ScoreError::Input(format!(
            "--candidates is only used by heuristics that select jointly (batch-bald), not {name}"
        )));
    }
    Ok(heuristic)
}

/// A scoring error by exit code: a failed read (1) or predictions that are not valid (2).
pub fn scoring_error(e: HeuristicError) -> ScoreError {
    match e {
        HeuristicError::Read(_) | HeuristicError::SourceRead(_) => {
            ScoreError::Failed(e.to_string())
        }
        other => ScoreError::Input(other.to_string()),
    }
}

/// Reads the pool a chunk of items at a time, checks each chunk's values and pushes it into
/// `scorer` (with none, the values are only checked).
fn score_chunks(
    args: &ScoreArgs,
    layout: Layout,
    pool: &mut NpyRows,
    device: &Device,
    mut scorer: Option<&mut PoolScorer<'_>>,
) -> Result<(), ScoreError> {
    let dims = pool.shape().to_vec();
    let per_item: usize = dims[1..].iter().product();
    let rows = chunk_rows(args, &dims)?;
    loop {
        let start = pool.next_row();
        let Some(values) = pool
            .read_f32(rows)
            .map_err(|e| ScoreError::Failed(e.to_string()))?
        else {
            return Ok(());
        };
        let len = values.len() / per_item;
        let chunk = layout
            .predictions(values, &dims, len, device)
            .map_err(|e| {
                ScoreError::Input(format!(
                    "{}: {}",
                    predictions_name(args),
                    e.offset_item(start)
                ))
            })?;
        if let Some(scorer) = &mut scorer {
            scorer.push(&chunk).map_err(scoring_error)?;
        }
    }
}

/// Items of an array of shape `dims` read at a time: `--chunk-items`, or as many as fit in
/// [`CHUNK_BYTES`].
///
/// # Errors
/// `--chunk-items 0`.
pub fn chunk_rows(args: &ScoreArgs, dims: &[usize]) -> Result<usize, ScoreError> {
    let per_item: usize = dims[1..].iter().product();
    match args.chunk_items {
        Some(0) => Err(ScoreError::Input("--chunk-items must be at least 1".into())),
        Some(rows) => Ok(rows),
        None => Ok((CHUNK_BYTES / (per_item * 4).max(1)).max(1)),
    }
}

/// The predictions file, as messages name it.
pub fn predictions_name(args: &ScoreArgs) -> String {
    args.predictions
        .as_deref()
        .map_or_else(|| "the predictions".into(), |p| p.display().to_string())
}

/// Bytes of predictions read and scored at a time.
const CHUNK_BYTES: usize = 64 << 20;

/// Opens a pool's predictions for reading in chunks of items, checking their rank.
fn open_rows(path: &Path, layout: Layout) -> Result<NpyRows, ScoreError> {
    let rows = NpyRows::open(path).map_err(|e| ScoreError::Input(e.to_string()))?;
    let (rank, axes) = layout.expected();
    if rows.shape().len() != rank || rows.shape().contains(&0) {
        let hint = match (layout, rows.shape().len()) {
            (Layout::Classes { .. }, 4) => {
                "; a 4-D array is segmentation predictions: give --reduction mean|sum|max|min"
            }
            (Layout::Segmentation { .. }, 3) => "; --reduction is for 4-D segmentation arrays",
            _ => "",
        };
        return Err(ScoreError::Input(format!(
            "{}: expected an array of shape {axes}, got {:?}{hint}",
            path.display(),
            rows.shape()
        )));
    }
    Ok(rows)
}

/// Validates probabilities, or applies a softmax to logits.
fn predictions(tensor: Tensor<3>, logits: bool) -> baal_heuristics::Result<Predictions> {
    if logits {
        Predictions::from_logits(tensor)
    } else {
        Predictions::from_probs(tensor)
    }
}

/// Reads `[N, C, T]` predictions from an `.npy` file and validates them.
pub fn load_predictions(
    path: &Path,
    logits: bool,
    device: &Device,
) -> Result<Predictions, ScoreError> {
    let array = NpyArray::read(path).map_err(|e| ScoreError::Input(e.to_string()))?;
    if !matches!(array.dtype_name(), "f32" | "f64") {
        return Err(ScoreError::Input(format!(
            "{}: dtype {} is not supported, save predictions as float32 or float64",
            path.display(),
            array.dtype_name()
        )));
    }
    let [n, c, t] = <[usize; 3]>::try_from(array.shape.as_slice()).map_err(|_| {
        ScoreError::Input(format!(
            "{}: expected an array of shape [N, C, T] (pool items, classes, MC iterations), got {:?}",
            path.display(),
            array.shape
        ))
    })?;
    let tensor = Tensor::<3>::from_data(TensorData::new(array.to_f32(), [n, c, t]), device);
    predictions(tensor, logits).map_err(|e| ScoreError::Input(format!("{}: {e}", path.display())))
}
