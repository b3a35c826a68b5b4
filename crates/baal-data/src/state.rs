//! The labelling state and its crash-safe checkpoint file.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::index::DatasetIndex;

/// The version of [`DatasetState`]'s serialised form written by this crate.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// One labelled item of a [`DatasetState`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord<L> {
    /// The item.
    pub dataset_index: DatasetIndex,
    /// Its label.
    pub label: L,
    /// The labelling step that labelled it (1 for the first).
    pub step: usize,
}

/// Everything needed to resume an active-learning dataset: which items are labelled, with what
/// label, in which order and step, and the random generator. Serialises to JSON with serde.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetState<L> {
    /// [`STATE_FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// Number of items of the dataset it was taken from.
    pub dataset_len: usize,
    /// Number of labelling steps so far.
    pub current_step: usize,
    /// The labelled items, in labelling order.
    pub labelled: Vec<LabelRecord<L>>,
    /// The dataset's generator (used by `label_randomly` and `pool_subset`).
    pub rng: ChaCha8Rng,
}

const CHECKPOINT_FORMAT: &str = "baal-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;
/// The header line is short; a file whose first newline is further is not a checkpoint.
const MAX_HEADER_BYTES: usize = 512;

#[derive(Serialize, Deserialize)]
struct CheckpointHeader {
    format: String,
    version: u32,
    payload_bytes: u64,
    crc32: u32,
}

/// Crash-safe checkpoint files.
///
/// A checkpoint is a one-line JSON header (format name, version, payload length and CRC-32)
/// followed by the payload as JSON. [`save`](Self::save) writes a temporary file in the same
/// directory, syncs it, renames it over the target and syncs the directory, so that after a crash
/// the path holds either the previous checkpoint or the new one, whole.
/// [`load`](Self::load) rejects foreign, truncated and corrupt files.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint;

impl Checkpoint {
    /// Saves `value` atomically at `path`.
    ///
    /// # Errors
    /// `value` cannot be serialised, or the directory is not writable. In both cases a previous
    /// checkpoint at `path` is left untouched.
    pub fn save<T: Serialize + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<()> {
        let path = path.as_ref();
        let bytes = encode(value).map_err(|reason| DataError::corrupt(path, reason))?;
        write_file_atomically(path, &bytes)
    }

    /// Loads the value saved at `path`.
    ///
    /// # Errors
    /// The file cannot be read, is not a checkpoint, has an unknown version, is truncated or
    /// corrupt (checksum), or its payload is not a `T` (e.g. labels of another type).
    pub fn load<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
        decode(&bytes).map_err(|reason| DataError::corrupt(path, reason))
    }

    /// Decodes the bytes of a checkpoint file; the error says what is wrong with them.
    pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
        decode(bytes)
    }
}

/// Writes `bytes` to `path` so that `path` holds either its previous content or `bytes`, whole,
/// whatever happens: a temporary file in the same directory is written and synced, renamed over
/// `path`, then the directory is synced.
///
/// # Errors
/// The directory is not writable; a previous file at `path` is then left untouched.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| DataError::corrupt(path, "the path must name a file"))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_synced(&temp, bytes)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| DataError::io(path, e)));
    if let Err(error) = written {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_dir(&dir)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> std::result::Result<Vec<u8>, String> {
    let payload =
        serde_json::to_vec(value).map_err(|e| format!("cannot serialise the checkpoint: {e}"))?;
    let header = CheckpointHeader {
        format: CHECKPOINT_FORMAT.into(),
        version: CHECKPOINT_VERSION,
        payload_bytes: payload.len() as u64,
        crc32: crc32fast::hash(&payload),
    };
    let mut bytes =
        serde_json::to_vec(&header).map_err(|e| format!("cannot serialise the header: {e}"))?;
    bytes.push(b'\n');
    bytes.extend(payload);
    Ok(bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    let not_checkpoint = "not a baal checkpoint (no checkpoint header line)";
    let newline = bytes
        .iter()
        .take(MAX_HEADER_BYTES)
        .position(|&b| b == b'\n')
        .ok_or(not_checkpoint)?;
    let header: CheckpointHeader =
        serde_json::from_slice(&bytes[..newline]).map_err(|_| not_checkpoint.to_string())?;
    if header.format != CHECKPOINT_FORMAT {
        return Err(format!(
            "not a baal checkpoint (format '{}')",
            header.format
        ));
    }
    if header.version != CHECKPOINT_VERSION {
        return Err(format!(
            "checkpoint version {} is not supported (this build reads version {CHECKPOINT_VERSION})",
            header.version
        ));
    }
    let payload = &bytes[newline + 1..];
    let announced = header.payload_bytes;
    let found = payload.len() as u64;
    if found < announced {
        return Err(format!(
            "truncated: the header announces {announced} payload bytes, {found} found"
        ));
    }
    if found > announced {
        return Err(format!(
            "{} unexpected bytes after the {announced} payload bytes",
            found - announced
        ));
    }
    let crc = crc32fast::hash(payload);
    if crc != header.crc32 {
        return Err(format!(
            "corrupt: payload checksum {crc:08x} differs from the header's {:08x}",
            header.crc32
        ));
    }
    serde_json::from_slice(payload).map_err(|e| {
        format!("the payload is not the expected state (labels of another type?): {e}")
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e| DataError::io(path, e);
    let mut file = File::create_new(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DataError::io(dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    // Directories cannot be opened for syncing on this platform; the rename is still atomic.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn state() -> DatasetState<u8> {
        DatasetState {
            format_version: STATE_FORMAT_VERSION,
            dataset_len: 10,
            current_step: 2,
            labelled: vec![
                LabelRecord {
                    dataset_index: DatasetIndex::new(4),
                    label: 1,
                    step: 1,
                },
                LabelRecord {
                    dataset_index: DatasetIndex::new(2),
                    label: 7,
                    step: 2,
                },
            ],
            rng: ChaCha8Rng::seed_from_u64(3),
        }
    }

    fn reason(error: DataError) -> String {
        match error {
            DataError::Corrupt { reason, .. } => reason,
            other => panic!("expected a Corrupt error, got {other}"),
        }
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.ckpt");
        Checkpoint::save(&path, &state()).expect("saves");
        Checkpoint::save(&path, &state()).expect("overwrites");
        let back: DatasetState<u8> = Checkpoint::load(&path).expect("loads");
        assert_eq!(back, state());
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.ckpt")]);
    }

    #[test]
    fn rejects_truncated_foreign_and_corrupt_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.ckpt");
        Checkpoint::save(&path, &state()).expect("saves");
        let good = fs::read(&path).expect("reads");
        let bad = dir.path().join("bad.ckpt");

        fs::write(&bad, &good[..good.len() - 5]).expect("writes");
        let error = Checkpoint::load::<DatasetState<u8>>(&bad).expect_err("truncated");
        assert!(error.to_string().contains("bad.ckpt"), "{error}");
        assert!(reason(error).contains("truncated"));

        fs::write(&bad, b"{\"some\": \"other json\"}\n{}").expect("writes");
        let error = Checkpoint::load::<DatasetState<u8>>(&bad).expect_err("foreign");
        assert!(reason(error).contains("not a baal checkpoint"));

        fs::write(&bad, [0u8; 2000]).expect("writes");
        let error = Checkpoint::load::<DatasetState<u8>>(&bad).expect_err("binary");
        assert!(reason(error).contains("not a baal checkpoint"));

        let mut flipped = good.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x01;
        fs::write(&bad, &flipped).expect("writes");
        let error = Checkpoint::load::<DatasetState<u8>>(&bad).expect_err("corrupt");
        assert!(reason(error).contains("checksum"));

        let error = Checkpoint::load::<DatasetState<String>>(&path).expect_err("wrong label type");
        assert!(reason(error).contains("labels of another type"));

        let error =
            Checkpoint::load::<DatasetState<u8>>(dir.path().join("missing")).expect_err("missing");
        assert!(matches!(error, DataError::Io { .. }));
    }

    #[test]
    fn failed_save_keeps_the_previous_checkpoint() {
        struct Unserialisable;
        impl Serialize for Unserialisable {
            fn serialize<S: serde::Serializer>(
                &self,
                _: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refuses"))
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.ckpt");
        Checkpoint::save(&path, &state()).expect("saves");
        let before = fs::read(&path).expect("reads");
        assert!(Checkpoint::save(&path, &Unserialisable).is_err());
        assert_eq!(fs::read(&path).expect("reads"), before);
        // Saving into a missing directory fails without creating anything.
        assert!(Checkpoint::save(dir.path().join("no/such/dir/x"), &state()).is_err());
        assert_eq!(fs::read_dir(dir.path()).expect("lists").count(), 1);
    }
}
