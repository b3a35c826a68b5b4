//! A shard's folder: its `.npy` files, written atomically, and `manifest.json` with their
//! checksums, written last.

use std::collections::BTreeMap;
use std::path::Path;

use baal_active::{ActiveError, Result};
use baal_data::checksum::sha256_hex;
use baal_data::{NpyArray, npy, write_file_atomically};
use baal_heuristics::{Candidates, PoolScores};
use burn::tensor::{Device, Tensor, TensorData};

use super::{SHARD_FORMAT_VERSION, ShardManifest, ShardScores};

const MANIFEST: &str = "manifest.json";

impl ShardScores {
    /// Writes the shard's folder `dir` (created if missing): the data files first, each
    /// atomically, then `manifest.json` with their checksums, so that a folder with a manifest
    /// is whole.
    ///
    /// # Errors
    /// The folder cannot be written, or the candidates cannot be read back from the device.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ActiveError::io(dir, e))?;
        let mut files = BTreeMap::new();
        let indices: Vec<i64> = self.dataset_indices.iter().map(|&i| i as i64).collect();
        let mut put = |name: &str, bytes: Vec<u8>| -> Result<()> {
            write_file_atomically(&dir.join(name), &bytes)?;
            files.insert(name.to_string(), sha256_hex(&bytes));
            Ok(())
        };
        put(
            "scores.npy",
            npy::encode_f32(&[self.scores.len()], self.scores.scores()),
        )?;
        put("indices.npy", npy::encode_i64(&[indices.len()], &indices))?;
        if let Some(candidates) = self.scores.candidates() {
            let positions: Vec<i64> = candidates.positions().iter().map(|&i| i as i64).collect();
            put(
                "candidates.npy",
                npy::encode_i64(&[positions.len()], &positions),
            )?;
            put(
                "candidate_scores.npy",
                npy::encode_f32(&[candidates.len()], candidates.scores()),
            )?;
            let (dims, values) = match candidates.probs() {
                Some(probs) => (
                    probs.dims().to_vec(),
                    probs.clone().try_into_vec_as::<f32>().map_err(|e| {
                        ActiveError::InvalidConfig {
                            what: "candidate predictions",
                            reason: format!("cannot read them back from the device: {e:?}"),
                        }
                    })?,
                ),
                None => (vec![0, 0, 0], Vec::new()),
            };
            put("candidate_probs.npy", npy::encode_f32(&dims, &values))?;
        }
        self.manifest.files = files;
        let json = serde_json::to_vec_pretty(&self.manifest)?;
        write_file_atomically(&dir.join(MANIFEST), &json)?;
        Ok(())
    }

    /// Reads a shard's folder, checking every file against the manifest's checksum;
    /// candidate predictions go to `device`.
    ///
    /// # Errors
    /// A missing or altered file, a manifest of another format, or arrays that disagree with
    /// the manifest.
    pub fn read(dir: &Path, device: &Device) -> Result<Self> {
        let shards = |reason: String| ActiveError::Shards(format!("{}: {reason}", dir.display()));
        let manifest_path = dir.join(MANIFEST);
        let manifest: ShardManifest = serde_json::from_slice(
            &std::fs::read(&manifest_path).map_err(|e| ActiveError::io(&manifest_path, e))?,
        )
        .map_err(|e| shards(format!("{MANIFEST} is not a shard manifest: {e}")))?;
        if manifest.format != SHARD_FORMAT_VERSION {
            return Err(shards(format!(
                "format {} (this build reads {SHARD_FORMAT_VERSION})",
                manifest.format
            )));
        }
        let load = |name: &str| -> Result<NpyArray> {
            let expected = manifest
                .files
                .get(name)
                .ok_or_else(|| shards(format!("the manifest lists no {name}")))?;
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| ActiveError::io(&path, e))?;
            if &sha256_hex(&bytes) != expected {
                return Err(shards(format!(
                    "{name} does not match its checksum in the manifest (altered or partly \
                     written)"
                )));
            }
            NpyArray::parse(&bytes).map_err(|reason| shards(format!("{name}: {reason}")))
        };
        let n = manifest.range.len();
        let scores = load("scores.npy")?.to_f32();
        let indices = load("indices.npy")?
            .to_class_labels()
            .map_err(|reason| shards(format!("indices.npy: {reason}")))?;
        if scores.len() != n || indices.len() != n {
            return Err(shards(format!(
                "{} scores and {} indices for the {n} items of its range",
                scores.len(),
                indices.len()
            )));
        }
        let orientation = manifest.heuristic.build(&manifest.params())?.orientation();
        let candidates = if manifest.files.contains_key("candidates.npy") {
            let positions = load("candidates.npy")?
                .to_class_labels()
                .map_err(|reason| shards(format!("candidates.npy: {reason}")))?;
            let candidate_scores = load("candidate_scores.npy")?.to_f32();
            let probs = load("candidate_probs.npy")?;
            let probs = match *probs.shape.as_slice() {
                [0, ..] => None,
                [m, c, t] => Some(Tensor::<3>::from_data(
                    TensorData::new(probs.to_f32(), [m, c, t]),
                    device,
                )),
                _ => {
                    return Err(shards(format!(
                        "candidate_probs.npy has shape {:?}, not [M, C, T]",
                        probs.shape
                    )));
                }
            };
            Some(Candidates::new(positions, candidate_scores, probs)?)
        } else {
            None
        };
        let scores = PoolScores::new(scores, candidates, manifest.candidate_limit, orientation)?;
        Ok(Self {
            manifest,
            dataset_indices: indices,
            scores,
            source: Some(dir.to_path_buf()),
        })
    }

    /// The shard and its folder, for error messages.
    pub(super) fn name(&self) -> String {
        match &self.source {
            Some(dir) => format!(
                "shard {}/{} ({})",
                self.manifest.shard.index,
                self.manifest.shard.count,
                dir.display()
            ),
            None => format!(
                "shard {}/{}",
                self.manifest.shard.index, self.manifest.shard.count
            ),
        }
    }
}
