//! `baal score` for the heuristics that select by embeddings (coreset, badge): the pool's
//! embeddings `[N, D]` from `--embeddings`, Coreset's labelled ones `[L, D]` from
//! `--labelled-embeddings`, and BADGE's class probabilities, the MC average of the predictions
//! file. Embeddings are read whole (`N · D` floats in memory); the predictions a chunk at a
//! time.

use std::path::Path;

use baal_data::NpyRows;
use baal_heuristics::{ClassProbabilities, EmbeddingInput, Embeddings, Heuristic};
use burn::tensor::Device;

use crate::score::{Layout, ScoreArgs, ScoreError, ScoreReport, chunk_rows, scoring_error};

/// The options only these heuristics read, checked against what `heuristic` reads.
///
/// # Errors
/// `--embeddings` missing for a heuristic that reads embeddings, or given to one that does
/// not; `--labelled-embeddings` given to one that reads no labelled embeddings.
pub fn check_options(args: &ScoreArgs, heuristic: &dyn Heuristic) -> Result<(), ScoreError> {
    let name = args.heuristic.name();
    match (heuristic.needs_embeddings(), &args.embeddings) {
        (true, None) => {
            return Err(ScoreError::Input(format!(
                "{name} needs --embeddings pool.npy: the model's embeddings of the pool [N, D] \
                 (the input of its last linear layer)"
            )));
        }
        (false, Some(_)) => {
            return Err(ScoreError::Input(format!(
                "--embeddings is only used by heuristics that select by embeddings (coreset, \
                 badge), not {name}"
            )));
        }
        _ => {}
    }
    if args.labelled_embeddings.is_some() && !heuristic.needs_labelled_embeddings() {
        return Err(ScoreError::Input(format!(
            "--labelled-embeddings is only used by heuristics that read the labelled items' \
             embeddings (coreset), not {name}"
        )));
    }
    Ok(())
}

/// Selects `--query-size` items of the pool by its embeddings: `ranks` are the picks in
/// selection order, `scores` the heuristic's per-item values (Coreset: each item's distance
/// to its nearest centre once the batch is chosen; BADGE: each item's gradient-embedding
/// norm).
///
/// # Errors
/// Embeddings that cannot be read, are not 2-D, have another number of rows than the
/// predictions or (labelled) another dimension, probabilities that are not valid, and the
/// heuristic's own errors.
pub fn select(
    args: &ScoreArgs,
    heuristic: &dyn Heuristic,
    layout: Layout,
    predictions: &mut NpyRows,
    device: &Device,
) -> Result<ScoreReport, ScoreError> {
    let embeddings_path = args
        .embeddings
        .as_deref()
        .ok_or_else(|| ScoreError::Input("--embeddings is missing".into()))?;
    let pool = read_embeddings(embeddings_path, "--embeddings")?;
    if pool.len() != predictions.rows() {
        return Err(ScoreError::Input(format!(
            "{}: {} rows of embeddings for a pool of {} items ({})",
            embeddings_path.display(),
            pool.len(),
            predictions.rows(),
            args.predictions.display()
        )));
    }
    let labelled = match &args.labelled_embeddings {
        Some(path) => Some(read_embeddings(path, "--labelled-embeddings")?),
        None => None,
    };
    if let Some(labelled) = &labelled
        && labelled.dim() != pool.dim()
    {
        return Err(ScoreError::Input(format!(
            "{}: labelled embeddings of dimension {} where the pool's have {}",
            args.labelled_embeddings
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
            labelled.dim(),
            pool.dim()
        )));
    }
    // BADGE reads the MC-averaged probabilities; Coreset only has the file checked.
    let probabilities = mean_probabilities(
        args,
        layout,
        predictions,
        device,
        heuristic.needs_predictions(),
    )?;
    let mut input = EmbeddingInput::new(&pool);
    if let Some(labelled) = labelled
        .as_ref()
        .filter(|_| heuristic.needs_labelled_embeddings())
    {
        input = input.with_labelled(labelled);
    }
    if let Some(probabilities) = &probabilities {
        input = input.with_probabilities(probabilities);
    }
    let k = args
        .query_size
        .ok_or_else(|| ScoreError::Input(format!("{} needs --query-size K", args.heuristic)))?;
    let selection = heuristic
        .select_with_embeddings(&input, k)
        .map_err(scoring_error)?;
    Ok(ScoreReport {
        heuristic: args.heuristic.name().to_string(),
        ranks: selection.positions,
        scores: selection.pool_scores,
    })
}

/// Reads a 2-D float `.npy` array `[rows, D]` of embeddings and validates it.
fn read_embeddings(path: &Path, option: &str) -> Result<Embeddings, ScoreError> {
    let bad = |reason: String| ScoreError::Input(format!("{option} {}: {reason}", path.display()));
    let mut rows = NpyRows::open(path).map_err(|e| ScoreError::Input(e.to_string()))?;
    let [n, d] = <[usize; 2]>::try_from(rows.shape()).map_err(|_| {
        bad(format!(
            "expected an array of shape [N, D] (items, embedding features), got {:?}",
            rows.shape()
        ))
    })?;
    let values = if n == 0 {
        Vec::new()
    } else {
        rows.read_f32(n)
            .map_err(|e| ScoreError::Failed(e.to_string()))?
            .unwrap_or_default()
    };
    Embeddings::new(values, [n, d]).map_err(|e| bad(e.to_string()))
}

/// The MC average of the predictions, `[N, C]`, read a chunk at a time, when `keep`;
/// otherwise each chunk is only checked, and `None` comes back.
fn mean_probabilities(
    args: &ScoreArgs,
    layout: Layout,
    predictions: &mut NpyRows,
    device: &Device,
    keep: bool,
) -> Result<Option<ClassProbabilities>, ScoreError> {
    let dims = predictions.shape().to_vec();
    let rows = chunk_rows(args, &dims)?;
    let classes = dims[1];
    let mut values = Vec::new();
    loop {
        let start = predictions.next_row();
        let Some(chunk) = predictions
            .read_f32(rows)
            .map_err(|e| ScoreError::Failed(e.to_string()))?
        else {
            break;
        };
        let len = chunk.len() / dims[1..].iter().product::<usize>();
        let invalid = |e: baal_heuristics::HeuristicError| {
            ScoreError::Input(format!(
                "{}: {}",
                args.predictions.display(),
                e.offset_item(start)
            ))
        };
        let chunk = layout
            .predictions(chunk, &dims, len, device)
            .map_err(invalid)?;
        if !keep {
            continue;
        }
        values.extend(
            ClassProbabilities::from_predictions(&chunk)
                .map_err(invalid)?
                .into_vec(),
        );
    }
    if !keep {
        return Ok(None);
    }
    ClassProbabilities::new(values, [dims[0], classes])
        .map(Some)
        .map_err(|e| ScoreError::Input(format!("{}: {e}", args.predictions.display())))
}
