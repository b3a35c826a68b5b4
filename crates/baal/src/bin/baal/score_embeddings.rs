//! `baal score` for the heuristics that select by embeddings (coreset, badge): the pool's
//! embeddings `[N, D]` from `--embeddings`, Coreset's labelled ones `[L, D]` from
//! `--labelled-embeddings`, and BADGE's class probabilities, the MC average of the predictions
//! file. The embeddings stream: the heuristic reads them a chunk of rows at a time, once per
//! pick, keeping `O(N)` floats of its own; the predictions are read a chunk at a time and
//! only their MC average (`N · C` floats) is kept.

use std::path::Path;

use baal::active::NpyEmbeddings;
use baal_data::NpyRows;
use baal_heuristics::{ClassProbabilities, EmbeddingInput, EmbeddingSource, Heuristic};
use burn::tensor::Device;

use crate::score::{
    Layout, ScoreArgs, ScoreError, ScoreReport, chunk_rows, predictions_name, scoring_error,
};

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
    predictions: Option<NpyRows>,
    device: &Device,
) -> Result<ScoreReport, ScoreError> {
    let embeddings_path = args
        .embeddings
        .as_deref()
        .ok_or_else(|| ScoreError::Input("--embeddings is missing".into()))?;
    let pool = open_embeddings(embeddings_path, "--embeddings")?;
    if let Some(predictions) = &predictions
        && pool.len() != predictions.rows()
    {
        return Err(ScoreError::Input(format!(
            "{}: {} rows of embeddings for a pool of {} items ({})",
            embeddings_path.display(),
            pool.len(),
            predictions.rows(),
            predictions_name(args)
        )));
    }
    let labelled = match &args.labelled_embeddings {
        Some(path) => Some(open_embeddings(path, "--labelled-embeddings")?),
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
    // BADGE reads the MC-averaged probabilities; Coreset only has the file checked, if given.
    let probabilities = match predictions {
        Some(mut predictions) => mean_probabilities(
            args,
            layout,
            &mut predictions,
            device,
            heuristic.needs_predictions(),
        )?,
        None if heuristic.needs_predictions() => {
            return Err(ScoreError::Input(format!(
                "{} reads the predictions' MC average: give the predictions file beside \
                 --embeddings",
                args.heuristic
            )));
        }
        None => None,
    };
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

/// The embeddings file given as `option`, read a chunk at a time (exit 2 when it is not an
/// `[N, D]` float array).
fn open_embeddings(path: &Path, option: &str) -> Result<NpyEmbeddings, ScoreError> {
    NpyEmbeddings::open(path).map_err(|e| ScoreError::Input(format!("{option}: {e}")))
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
                predictions_name(args),
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
        .map_err(|e| ScoreError::Input(format!("{}: {e}", predictions_name(args))))
}
