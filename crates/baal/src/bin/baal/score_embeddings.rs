//! `baal score` for the heuristics that select by embeddings (coreset, badge): the pool's
//! embeddings `[N, D]` from `--embeddings`, Coreset's labelled ones `[L, D]` from
//! `--labelled-embeddings`, and BADGE's class probabilities, the MC average of the predictions
//! file. The embeddings stream: the heuristic reads them a chunk of rows at a time, once per
//! pick, keeping `O(N)` floats of its own; the predictions are read a chunk at a time and
//! only their MC average (`N · C` floats) is kept.

use std::path::Path;
use std::sync::Mutex;

use baal_data::NpyRows;
use baal_heuristics::{
    ClassProbabilities, EmbeddingInput, EmbeddingSource, Embeddings, Heuristic, HeuristicError,
};
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
    let pool = NpyEmbeddings::open(embeddings_path, "--embeddings")?;
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
        Some(path) => Some(NpyEmbeddings::open(path, "--labelled-embeddings")?),
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

/// A 2-D float `.npy` array `[rows, D]` of embeddings, read a chunk of rows at a time when
/// the heuristic asks for it (each chunk validated as it is read), so that the file may be
/// larger than memory.
struct NpyEmbeddings {
    rows: Mutex<NpyRows>,
    len: usize,
    dim: usize,
}

impl NpyEmbeddings {
    /// Opens `path` (given as `option`) and checks its shape.
    fn open(path: &Path, option: &str) -> Result<Self, ScoreError> {
        let rows = NpyRows::open(path).map_err(|e| ScoreError::Input(e.to_string()))?;
        let [len, dim] = <[usize; 2]>::try_from(rows.shape()).map_err(|_| {
            ScoreError::Input(format!(
                "{option} {}: expected an array of shape [N, D] (items, embedding features), \
                 got {:?}",
                path.display(),
                rows.shape()
            ))
        })?;
        if dim == 0 {
            return Err(ScoreError::Input(format!(
                "{option} {}: embeddings of dimension 0",
                path.display()
            )));
        }
        Ok(Self {
            rows: Mutex::new(rows),
            len,
            dim,
        })
    }
}

impl EmbeddingSource for NpyEmbeddings {
    fn len(&self) -> usize {
        self.len
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn chunk(&self, start: usize, end: usize) -> baal_heuristics::Result<Embeddings> {
        let read = |e: String| HeuristicError::SourceRead(e);
        if start > end || end > self.len {
            return Err(read(format!(
                "rows {start}..{end} of an array of {} rows",
                self.len
            )));
        }
        if start == end {
            return Embeddings::empty(self.dim);
        }
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| read("a reader panicked".into()))?;
        rows.seek_row(start).map_err(|e| read(e.to_string()))?;
        let values = rows
            .read_f32(end - start)
            .map_err(|e| read(e.to_string()))?
            .unwrap_or_default();
        Embeddings::new(values, [end - start, self.dim]).map_err(|e| e.offset_item(start))
    }
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

#[cfg(test)]
mod tests {
    use baal_data::formats::npy::encode_f32;

    use super::*;

    #[test]
    fn embeddings_files_are_read_a_chunk_at_a_time_in_any_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.npy");
        let values: Vec<f32> = (0..10).map(|v| v as f32).collect();
        std::fs::write(&path, encode_f32(&[5, 2], &values)).expect("write");
        let source = NpyEmbeddings::open(&path, "--embeddings").expect("opens");
        assert_eq!((source.len(), source.dim()), (5, 2));
        for (start, end) in [(3, 5), (0, 2), (1, 4), (2, 2), (0, 5)] {
            let chunk = source.chunk(start, end).expect("in range");
            assert_eq!(
                chunk.as_slice(),
                &values[start * 2..end * 2],
                "{start}..{end}"
            );
        }
        assert!(source.chunk(4, 6).is_err());
        // A non-finite value is found when its chunk is read, named by its pool item.
        let mut bad = values.clone();
        bad[7] = f32::NAN;
        std::fs::write(&path, encode_f32(&[5, 2], &bad)).expect("write");
        let source = NpyEmbeddings::open(&path, "--embeddings").expect("opens");
        assert!(source.chunk(0, 3).is_ok());
        let err = source.chunk(2, 5).expect_err("item 3 is NaN").to_string();
        assert!(err.contains("item 3"), "{err}");
        // Not [N, D], or D = 0: refused on open.
        std::fs::write(&path, encode_f32(&[10], &values)).expect("write");
        assert!(NpyEmbeddings::open(&path, "--embeddings").is_err());
        std::fs::write(&path, encode_f32(&[3, 0], &[])).expect("write");
        assert!(NpyEmbeddings::open(&path, "--embeddings").is_err());
    }
}
