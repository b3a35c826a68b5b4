//! Uncertainty logs (baal's `uncertainty_folder`): what the heuristic saw at each step, so that
//! users can study it afterwards.
//!
//! With [`ActiveLearningLoop::with_uncertainty_folder`](crate::ActiveLearningLoop::with_uncertainty_folder)
//! every step that scores the pool writes a folder `step-NNNN` (the loop's step count, from
//! 0) holding numpy arrays, each written atomically, the metadata last:
//!
//! - `indices.npy`: the dataset index of every scored pool item (`i64 [n]`);
//! - `scores.npy`: the heuristic's score of each, in the same order (`f32 [n]`, baal's values:
//!   for margin and certainty lower is more informative);
//! - `chosen.npy`: the dataset indices of the query, in selection order (`i64 [k]`);
//! - `meta.json`: the step, the heuristic's name and which end of the scores is informative.
//!
//! [`UncertaintyStep::read`] reads one back; numpy reads the arrays as they are
//! (`np.load("step-0003/scores.npy")`).

use std::path::{Path, PathBuf};

use baal_data::{DatasetIndex, NpyArray, npy, write_file_atomically};
use baal_heuristics::Orientation;
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};

/// One step's record in an uncertainty folder.
#[derive(Clone, Debug, PartialEq)]
pub struct UncertaintyStep {
    /// The loop's step count when it was written (0 for the first step).
    pub step: u64,
    /// The heuristic's name.
    pub heuristic: String,
    /// Whether higher scores are the more informative ones.
    pub higher_is_more_informative: bool,
    /// Dataset index of each scored item.
    pub indices: Vec<DatasetIndex>,
    /// The score of each scored item, in the order of `indices`.
    pub scores: Vec<f32>,
    /// The query, in selection order.
    pub chosen: Vec<DatasetIndex>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    step: u64,
    heuristic: String,
    higher_is_more_informative: bool,
    scored: usize,
    chosen: usize,
}

impl UncertaintyStep {
    /// The record of a step: scores of the items `indices` and the query `chosen`.
    ///
    /// # Errors
    /// Scores and indices of different lengths.
    pub fn new(
        step: u64,
        heuristic: &str,
        orientation: Orientation,
        indices: Vec<DatasetIndex>,
        scores: Vec<f32>,
        chosen: Vec<DatasetIndex>,
    ) -> Result<Self> {
        if indices.len() != scores.len() {
            return Err(ActiveError::ShapeMismatch {
                what: "uncertainty log",
                expected: format!("one score per scored item ({})", indices.len()),
                got: vec![scores.len()],
            });
        }
        Ok(Self {
            step,
            heuristic: heuristic.to_string(),
            higher_is_more_informative: orientation == Orientation::HigherIsMoreInformative,
            indices,
            scores,
            chosen,
        })
    }

    /// The folder of step `step` inside `folder`.
    pub fn dir(folder: &Path, step: u64) -> PathBuf {
        folder.join(format!("step-{step:04}"))
    }

    /// Writes the step's folder inside `folder` (both created if missing).
    ///
    /// # Errors
    /// The folder cannot be written.
    pub fn write(&self, folder: &Path) -> Result<PathBuf> {
        let dir = Self::dir(folder, self.step);
        std::fs::create_dir_all(&dir).map_err(|e| ActiveError::io(&dir, e))?;
        let as_i64 = |indices: &[DatasetIndex]| -> Vec<i64> {
            indices.iter().map(|i| i.get() as i64).collect()
        };
        write_file_atomically(
            &dir.join("indices.npy"),
            &npy::encode_i64(&[self.indices.len()], &as_i64(&self.indices)),
        )?;
        write_file_atomically(
            &dir.join("scores.npy"),
            &npy::encode_f32(&[self.scores.len()], &self.scores),
        )?;
        write_file_atomically(
            &dir.join("chosen.npy"),
            &npy::encode_i64(&[self.chosen.len()], &as_i64(&self.chosen)),
        )?;
        let meta = Meta {
            step: self.step,
            heuristic: self.heuristic.clone(),
            higher_is_more_informative: self.higher_is_more_informative,
            scored: self.indices.len(),
            chosen: self.chosen.len(),
        };
        write_file_atomically(&dir.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
        Ok(dir)
    }

    /// Reads the folder of one step (`folder/step-NNNN`).
    ///
    /// # Errors
    /// A missing or malformed file, or arrays whose lengths disagree with the metadata.
    pub fn read(dir: &Path) -> Result<Self> {
        let bad = |reason: String| ActiveError::InvalidConfig {
            what: "uncertainty log",
            reason: format!("{}: {reason}", dir.display()),
        };
        let meta_path = dir.join("meta.json");
        let meta: Meta = serde_json::from_slice(
            &std::fs::read(&meta_path).map_err(|e| ActiveError::io(&meta_path, e))?,
        )
        .map_err(|e| bad(format!("meta.json: {e}")))?;
        let indices = |name: &str| -> Result<Vec<DatasetIndex>> {
            Ok(NpyArray::read(dir.join(name))?
                .to_class_labels()
                .map_err(|reason| bad(format!("{name}: {reason}")))?
                .into_iter()
                .map(DatasetIndex::new)
                .collect())
        };
        let scored = indices("indices.npy")?;
        let chosen = indices("chosen.npy")?;
        let scores = NpyArray::read(dir.join("scores.npy"))?.to_f32();
        if scored.len() != meta.scored || scores.len() != meta.scored || chosen.len() != meta.chosen
        {
            return Err(bad(format!(
                "{} indices, {} scores and {} chosen for the {} scored and {} chosen of meta.json",
                scored.len(),
                scores.len(),
                chosen.len(),
                meta.scored,
                meta.chosen
            )));
        }
        Ok(Self {
            step: meta.step,
            heuristic: meta.heuristic,
            higher_is_more_informative: meta.higher_is_more_informative,
            indices: scored,
            scores,
            chosen,
        })
    }

    /// Every step recorded in `folder`, in step order.
    ///
    /// # Errors
    /// The folder or one of its steps cannot be read.
    pub fn read_all(folder: &Path) -> Result<Vec<Self>> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(folder)
            .map_err(|e| ActiveError::io(folder, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("step-"))
            })
            .collect();
        dirs.sort();
        dirs.iter().map(|dir| Self::read(dir)).collect()
    }
}
