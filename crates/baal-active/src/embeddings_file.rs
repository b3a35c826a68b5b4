//! Embeddings in a `.npy` file, read a chunk at a time: what `baal score --embeddings` reads,
//! and where the loop spills a pool's embeddings that would not fit its memory budget
//! ([`ActiveLearningLoop::with_embedding_memory`](crate::ActiveLearningLoop::with_embedding_memory)).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use baal_data::formats::npy::{NpyRows, encode_raw};
use baal_heuristics::{EmbeddingSource, Embeddings, HeuristicError};

use crate::error::{ActiveError, Result};

/// A 2-D float `.npy` array `[rows, D]` of embeddings, read a chunk of rows at a time when a
/// heuristic asks for it (each chunk validated as it is read, its non-finite values named by
/// their row), so that the file may be larger than memory.
pub struct NpyEmbeddings {
    rows: Mutex<NpyRows>,
    len: usize,
    dim: usize,
}

impl NpyEmbeddings {
    /// Opens `path` and checks its shape.
    ///
    /// # Errors
    /// A file that cannot be read or is not a float `.npy` array (as [`NpyRows::open`]), or
    /// one not of shape `[N, D]` with `D ≥ 1`.
    pub fn open(path: &Path) -> Result<Self> {
        let rows = NpyRows::open(path)?;
        let bad = |reason: String| ActiveError::InvalidConfig {
            what: "embeddings file",
            reason: format!("{}: {reason}", path.display()),
        };
        let [len, dim] = <[usize; 2]>::try_from(rows.shape()).map_err(|_| {
            bad(format!(
                "expected an array of shape [N, D] (items, embedding features), got {:?}",
                rows.shape()
            ))
        })?;
        if dim == 0 {
            return Err(bad("embeddings of dimension 0".into()));
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

/// A pool's embeddings as they come, chunk by chunk: kept in memory up to `limit` bytes, and
/// beyond that written to a temporary `.npy` file (deleted when the source is dropped) and
/// read back a chunk at a time.
pub(crate) struct EmbeddingSink {
    rows: usize,
    limit: usize,
    dim: usize,
    values: Vec<f32>,
    spill: Option<tempfile::NamedTempFile>,
}

impl EmbeddingSink {
    /// A sink for the embeddings of `rows` items, in memory up to `limit` bytes.
    pub(crate) fn new(rows: usize, limit: usize) -> Self {
        Self {
            rows,
            limit,
            dim: 0,
            values: Vec::new(),
            spill: None,
        }
    }

    /// Takes the next chunk of rows.
    pub(crate) fn push(&mut self, chunk: Embeddings) -> Result<()> {
        self.dim = chunk.dim();
        self.values.extend(chunk.into_vec());
        let bytes = self.rows.saturating_mul(self.dim).saturating_mul(4);
        if self.spill.is_none() && bytes > self.limit {
            let mut file = tempfile::Builder::new()
                .prefix("baal-embeddings-")
                .suffix(".npy")
                .tempfile()
                .map_err(|e| ActiveError::io(std::env::temp_dir(), e))?;
            let header = encode_raw("<f4", &[self.rows, self.dim], &[]);
            file.write_all(&header)
                .map_err(|e| ActiveError::io(file.path(), e))?;
            self.spill = Some(file);
        }
        if let Some(file) = &mut self.spill {
            let data: Vec<u8> = self.values.drain(..).flat_map(f32::to_le_bytes).collect();
            file.write_all(&data)
                .map_err(|e| ActiveError::io(file.path(), e))?;
        }
        Ok(())
    }

    /// The embeddings taken, in memory or read back from the file.
    pub(crate) fn finish(self) -> Result<Box<dyn EmbeddingSource>> {
        match self.spill {
            None => Ok(Box::new(Embeddings::new(
                self.values,
                [self.rows, self.dim],
            )?)),
            Some(mut file) => {
                file.flush().map_err(|e| ActiveError::io(file.path(), e))?;
                let source = NpyEmbeddings::open(file.path())?;
                Ok(Box::new(Spilled {
                    source,
                    _file: file,
                }))
            }
        }
    }
}

/// Spilled embeddings and the temporary file they are read from (deleted with them).
struct Spilled {
    source: NpyEmbeddings,
    _file: tempfile::NamedTempFile,
}

impl EmbeddingSource for Spilled {
    fn len(&self) -> usize {
        self.source.len
    }

    fn dim(&self) -> usize {
        self.source.dim
    }

    fn chunk(&self, start: usize, end: usize) -> baal_heuristics::Result<Embeddings> {
        self.source.chunk(start, end)
    }
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
        let source = NpyEmbeddings::open(&path).expect("opens");
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
        let source = NpyEmbeddings::open(&path).expect("opens");
        assert!(source.chunk(0, 3).is_ok());
        let err = source.chunk(2, 5).expect_err("item 3 is NaN").to_string();
        assert!(err.contains("item 3"), "{err}");
        // Not [N, D], or D = 0: refused on open.
        std::fs::write(&path, encode_f32(&[10], &values)).expect("write");
        assert!(NpyEmbeddings::open(&path).is_err());
        std::fs::write(&path, encode_f32(&[3, 0], &[])).expect("write");
        assert!(NpyEmbeddings::open(&path).is_err());
    }

    #[test]
    fn a_sink_over_its_budget_spills_to_a_file_that_reads_back_the_same() {
        let values: Vec<f32> = (0..24).map(|v| v as f32 * 0.5).collect();
        let chunks = |sink: &mut EmbeddingSink| {
            for rows in values.chunks(3 * 2) {
                let chunk = Embeddings::new(rows.to_vec(), [rows.len() / 2, 2]).expect("chunk");
                sink.push(chunk).expect("push");
            }
        };
        // 12 rows of 2 floats: 96 bytes.
        let mut memory = EmbeddingSink::new(12, 96);
        chunks(&mut memory);
        assert!(memory.spill.is_none());
        let mut spilled = EmbeddingSink::new(12, 95);
        chunks(&mut spilled);
        let path = spilled
            .spill
            .as_ref()
            .expect("spilled")
            .path()
            .to_path_buf();
        let (memory, spilled) = (
            memory.finish().expect("finish"),
            spilled.finish().expect("finish"),
        );
        for (start, end) in [(0, 12), (5, 9), (11, 12)] {
            let a = memory.chunk(start, end).expect("chunk");
            let b = spilled.chunk(start, end).expect("chunk");
            assert_eq!(a.as_slice(), b.as_slice(), "{start}..{end}");
        }
        assert!(path.exists());
        drop(spilled);
        assert!(!path.exists(), "the temporary file goes with the source");
    }
}
