//! Where the diversity heuristics read a pool from: chunks of rows on demand, so that a pool
//! larger than memory is read a chunk at a time, once per pass.

use std::borrow::Cow;

use crate::error::{HeuristicError, Result};

use super::embeddings::{ClassProbabilities, Embeddings};

/// Embeddings `[N, D]` read in chunks of consecutive rows.
///
/// A selection reads the pool once per pick (`k` passes, each in chunks of the heuristic's
/// chunk length) and keeps only `O(N)` floats of its own, so an implementation may compute or
/// load each chunk when asked (a memory-mapped file, a model's forward pass over a dataset
/// shard). [`Embeddings`] is the in-memory one, read without copies.
pub trait EmbeddingSource {
    /// Number of items N.
    fn len(&self) -> usize;

    /// Dimension D.
    fn dim(&self) -> usize;

    /// The embeddings of items `start..end` (`[end - start, D]`), in order.
    ///
    /// # Errors
    /// Whatever producing them may fail with; a heuristic hands the error on. A chunk of
    /// another shape is an error of the heuristic that reads it.
    fn chunk(&self, start: usize, end: usize) -> Result<Embeddings>;

    /// Whether there is no item.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All embeddings at once, for sources that hold them in memory: the heuristics then read
    /// rows in place instead of copying chunks. `None` (the default) for streamed sources.
    fn in_memory(&self) -> Option<&Embeddings> {
        None
    }
}

impl EmbeddingSource for Embeddings {
    fn len(&self) -> usize {
        Embeddings::len(self)
    }

    fn dim(&self) -> usize {
        Embeddings::dim(self)
    }

    fn chunk(&self, start: usize, end: usize) -> Result<Embeddings> {
        check_range(start, end, Embeddings::len(self), "embeddings")?;
        let d = Embeddings::dim(self);
        Embeddings::new(
            self.as_slice()[start * d..end * d].to_vec(),
            [end - start, d],
        )
    }

    fn in_memory(&self) -> Option<&Embeddings> {
        Some(self)
    }
}

/// Class probabilities `[N, C]` read in chunks of consecutive rows (BADGE reads them beside
/// the features, chunk by chunk); [`ClassProbabilities`] is the in-memory one.
pub trait ProbabilitySource {
    /// Number of items N.
    fn len(&self) -> usize;

    /// Number of classes C.
    fn classes(&self) -> usize;

    /// The probabilities of items `start..end` (`[end - start, C]`), in order.
    ///
    /// # Errors
    /// Whatever producing them may fail with.
    fn chunk(&self, start: usize, end: usize) -> Result<ClassProbabilities>;

    /// Whether there is no item.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All probabilities at once, for sources that hold them in memory; `None` by default.
    fn in_memory(&self) -> Option<&ClassProbabilities> {
        None
    }
}

impl ProbabilitySource for ClassProbabilities {
    fn len(&self) -> usize {
        ClassProbabilities::len(self)
    }

    fn classes(&self) -> usize {
        ClassProbabilities::classes(self)
    }

    fn chunk(&self, start: usize, end: usize) -> Result<ClassProbabilities> {
        check_range(
            start,
            end,
            ClassProbabilities::len(self),
            "class probabilities",
        )?;
        let c = ClassProbabilities::classes(self);
        ClassProbabilities::new(
            self.as_slice()[start * c..end * c].to_vec(),
            [end - start, c],
        )
    }

    fn in_memory(&self) -> Option<&ClassProbabilities> {
        Some(self)
    }
}

/// What a diversity heuristic selects from: the pool's embeddings and, as the heuristic
/// needs them, the labelled items' embeddings (Coreset) or the pool's class probabilities
/// (BADGE). Items are named by their position in `pool`.
#[derive(Clone, Copy)]
pub struct EmbeddingInput<'a> {
    pool: &'a dyn EmbeddingSource,
    labelled: Option<&'a dyn EmbeddingSource>,
    probabilities: Option<&'a dyn ProbabilitySource>,
}

impl<'a> EmbeddingInput<'a> {
    /// The pool's embeddings, without labelled items or probabilities.
    pub fn new(pool: &'a dyn EmbeddingSource) -> Self {
        Self {
            pool,
            labelled: None,
            probabilities: None,
        }
    }

    /// With the labelled items' embeddings, in the pool's dimension (Coreset's first
    /// centres).
    #[must_use]
    pub fn with_labelled(mut self, labelled: &'a dyn EmbeddingSource) -> Self {
        self.labelled = Some(labelled);
        self
    }

    /// With the pool's class probabilities, one row per pool item (BADGE).
    #[must_use]
    pub fn with_probabilities(mut self, probabilities: &'a dyn ProbabilitySource) -> Self {
        self.probabilities = Some(probabilities);
        self
    }

    /// The pool's embeddings.
    pub fn pool(&self) -> &'a dyn EmbeddingSource {
        self.pool
    }

    /// The labelled items' embeddings, if given.
    pub fn labelled(&self) -> Option<&'a dyn EmbeddingSource> {
        self.labelled
    }

    /// The pool's class probabilities, if given.
    pub fn probabilities(&self) -> Option<&'a dyn ProbabilitySource> {
        self.probabilities
    }
}

impl std::fmt::Debug for EmbeddingInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingInput")
            .field("pool", &[self.pool.len(), self.pool.dim()])
            .field("labelled", &self.labelled.map(|l| [l.len(), l.dim()]))
            .field(
                "probabilities",
                &self.probabilities.map(|p| [p.len(), p.classes()]),
            )
            .finish()
    }
}

/// Errors unless `start <= end <= len`.
fn check_range(start: usize, end: usize, len: usize, what: &'static str) -> Result<()> {
    if start <= end && end <= len {
        Ok(())
    } else {
        Err(HeuristicError::InvalidParameter {
            name: "chunk",
            reason: format!("rows {start}..{end} of {what} with {len} rows"),
        })
    }
}

/// Consecutive ranges `start..end` of at most `chunk_len` rows covering `0..len`.
pub(crate) fn chunk_ranges(len: usize, chunk_len: usize) -> impl Iterator<Item = (usize, usize)> {
    let chunk_len = chunk_len.max(1);
    (0..len)
        .step_by(chunk_len)
        .map(move |start| (start, (start + chunk_len).min(len)))
}

/// Rows `start..end` of `source`, row-major: borrowed from an in-memory source, else its
/// chunk, checked for shape (errors name pool positions).
pub(crate) fn embedding_rows(
    source: &dyn EmbeddingSource,
    start: usize,
    end: usize,
) -> Result<Cow<'_, [f32]>> {
    let d = source.dim();
    if let Some(all) = source.in_memory() {
        return Ok(Cow::Borrowed(&all.as_slice()[start * d..end * d]));
    }
    let chunk = source.chunk(start, end).map_err(|e| e.offset_item(start))?;
    if [chunk.len(), chunk.dim()] != [end - start, d] {
        return Err(HeuristicError::ShapeMismatch {
            what: "embedding chunk",
            expected: format!("[{}, {d}] for rows {start}..{end}", end - start),
            got: vec![chunk.len(), chunk.dim()],
        });
    }
    Ok(Cow::Owned(chunk.into_vec()))
}

/// Rows `start..end` of `source`, as [`embedding_rows`] for probabilities.
pub(crate) fn probability_rows(
    source: &dyn ProbabilitySource,
    start: usize,
    end: usize,
) -> Result<Cow<'_, [f32]>> {
    let c = source.classes();
    if let Some(all) = source.in_memory() {
        return Ok(Cow::Borrowed(&all.as_slice()[start * c..end * c]));
    }
    let chunk = source.chunk(start, end).map_err(|e| e.offset_item(start))?;
    if [chunk.len(), chunk.classes()] != [end - start, c] {
        return Err(HeuristicError::ShapeMismatch {
            what: "class probability chunk",
            expected: format!("[{}, {c}] for rows {start}..{end}", end - start),
            got: vec![chunk.len(), chunk.classes()],
        });
    }
    Ok(Cow::Owned(chunk.into_vec()))
}

/// One row of `source` (a pick's embedding).
pub(crate) fn embedding_row(source: &dyn EmbeddingSource, item: usize) -> Result<Vec<f32>> {
    Ok(embedding_rows(source, item, item + 1)?.into_owned())
}
