//! `baal score`: rank a pool from MC predictions saved by numpy or PyTorch.

use std::path::{Path, PathBuf};

use baal_data::NpyArray;
use baal_heuristics::{HeuristicKind, HeuristicParams, Predictions};
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
    /// The array holds logits: apply a softmax over classes first.
    #[arg(long)]
    pub logits: bool,
    /// Target-set predictions `[M, C, T]` for EPIG.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Device: `cpu`, `wgpu`, `vulkan`, `metal`, `cuda[:N]`, `tch-cpu`, `tch-cuda[:N]`,
    /// `remote:ws://HOST:PORT`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write the JSON here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Pool predictions: a little-endian f32 or f64 `.npy` array `[N, C, T]`.
    pub predictions: PathBuf,
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
    // The files first: a bad array is reported whatever the options.
    let predictions = load_predictions(&args.predictions, args.logits, &device)?;
    let target = args
        .target
        .as_deref()
        .map(|path| load_predictions(path, args.logits, &device))
        .transpose()?;
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
    let scoring = |e: baal_heuristics::HeuristicError| match e {
        baal_heuristics::HeuristicError::Read(_) => ScoreError::Failed(e.to_string()),
        other => ScoreError::Input(other.to_string()),
    };
    // Batch heuristics rank their batch of the query size first (BatchBALD: with each pick's
    // batch mutual information, 0 for the rest; sampling: a sampled order with the sampling
    // probabilities); the others rank the pool by score.
    let ranking = heuristic
        .rank(&predictions, target.as_ref())
        .map_err(scoring)?;
    let (mut ranks, scores) = ranking.into_parts();
    if let Some(k) = args.query_size {
        if k > ranks.len() {
            return Err(ScoreError::Input(format!(
                "--query-size {k} exceeds the pool of {} items",
                ranks.len()
            )));
        }
        ranks.truncate(k);
    }
    Ok(ScoreReport {
        heuristic: name.to_string(),
        ranks,
        scores,
    })
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
    let predictions = if logits {
        Predictions::from_logits(tensor)
    } else {
        Predictions::from_probs(tensor)
    };
    predictions.map_err(|e| ScoreError::Input(format!("{}: {e}", path.display())))
}

/// Writes the report as JSON to `output` (atomically) or to standard output.
pub fn write_report(report: &ScoreReport, output: Option<&Path>) -> Result<(), ScoreError> {
    let json = serde_json::to_string(report).map_err(|e| ScoreError::Failed(e.to_string()))?;
    match output {
        None => {
            println!("{json}");
            Ok(())
        }
        Some(path) => {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, json.as_bytes())
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| ScoreError::Failed(format!("{}: {e}", path.display())))
        }
    }
}
