//! Model folders: a zoo model's weights (`weights.bpk`, Burn's burnpack) and a card
//! (`model.json`) that says which model they belong to, the image shape, the classes, the
//! normalisation and how it was trained. `baal train` writes one, `baal predict --model-dir`
//! scores a pool with one, `baal serve` keeps one per model round and starts from one with
//! `--init-model`.
//!
//! - [`ModelFolder::read`] reads a folder and checks its card;
//!   [`check_data`](ModelFolder::check_data) checks it against the data it is used with and
//!   [`load_weights`](ModelFolder::load_weights) that its weights load into its model.
//! - [`ModelFolderWriter`] writes one atomically: into a staging folder beside it, synced,
//!   then renamed into place, so that a crash never leaves half a model folder.

mod error;
mod weights;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use baal_active::EvalMetrics;
use baal_data::Normalization;
use serde::{Deserialize, Serialize};

use crate::models::ModelKind;

pub use error::{DataMismatch, FolderError};
pub use writer::{ModelFolderWriter, STAGING_PREFIX, check_target};

/// Version of the model folder's layout; a card of another format is refused.
pub const MODEL_CARD_FORMAT: u32 = 1;

/// The card's file name inside a model folder.
pub const CARD_FILE: &str = "model.json";

/// The weights' file name inside a model folder.
pub const WEIGHTS_FILE: &str = "weights.bpk";

/// What a model folder's weights are: `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// [`MODEL_CARD_FORMAT`].
    pub format: u32,
    /// The zoo model, by its command-line name (`small-cnn`).
    pub model: ModelKind,
    /// `[channels, height, width]` of the images it takes.
    pub image_shape: [usize; 3],
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// The per-channel statistics its inputs were normalised with.
    pub normalization: Normalization,
    /// How the fit went and how the model did on held-out images.
    pub metrics: TrainMetrics,
    /// The data argument it was trained on, as given.
    pub data: String,
    /// Labelled images it was trained on.
    pub labelled: usize,
    /// Seed of the weights, the subsets and the batches.
    pub seed: u64,
    /// Training epochs asked for.
    pub epochs: usize,
    /// Least gradient steps asked for.
    pub min_steps: usize,
    /// `baal serve`'s model version of these weights (absent from `baal train`'s cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The model folder whose weights the training started from (`baal serve
    /// --init-model`), when it did not start from fresh ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_model: Option<PathBuf>,
}

/// The fit and the held-out measurement of a model: what `baal train` prints on standard
/// output, and what `baal serve` measured in a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// Mean training loss over the last epoch.
    pub train_loss: f64,
    /// Epochs run.
    pub epochs_run: usize,
    /// Gradient steps run.
    pub gradient_steps: usize,
    /// Seconds the fit took.
    pub seconds: f64,
    /// Held-out images measured: a folder's or array's validation part, a named dataset's
    /// test subset (`baal serve`'s test split) (0: none).
    pub validation_items: usize,
    /// Their metrics (accuracy, NLL, ECE, loss), when there were any.
    pub validation: Option<EvalMetrics>,
}

impl ModelCard {
    /// What makes the card contradict itself, if anything: fewer than 2 classes, an image
    /// shape that is not 1 or 3 channels of a square, a normalisation that is not one finite
    /// mean and positive deviation per channel.
    pub fn problem(&self) -> Option<String> {
        if self.classes.len() < 2 {
            return Some(format!(
                "{} class(es): a model has at least 2",
                self.classes.len()
            ));
        }
        let [channels, height, width] = self.image_shape;
        if !matches!(channels, 1 | 3) || height == 0 || height != width {
            return Some(format!(
                "image shape {:?}: 1 or 3 channels of a square of at least 1 pixel",
                self.image_shape
            ));
        }
        let n = &self.normalization;
        if n.mean.len() != channels
            || n.std.len() != channels
            || n.std.iter().any(|&s| !(s.is_finite() && s > 0.0))
            || n.mean.iter().any(|m| !m.is_finite())
        {
            return Some(format!(
                "normalization {n:?}: a finite mean and a positive deviation for each of \
                 {channels} channel(s)"
            ));
        }
        None
    }

    /// How data of `classes` (names, in class order) and images of `image_shape`
    /// (`[channels, height, width]`) differ from what this model takes, if they do: the class
    /// count, then the names, the channels, the image size.
    pub fn mismatch(&self, classes: &[String], image_shape: [usize; 3]) -> Option<DataMismatch> {
        if self.classes.len() != classes.len() {
            return Some(DataMismatch::ClassCount {
                model: self.classes.len(),
                data: classes.len(),
            });
        }
        if let Some((index, (model, data))) = self
            .classes
            .iter()
            .zip(classes)
            .enumerate()
            .find(|(_, (model, data))| model != data)
        {
            return Some(DataMismatch::ClassName {
                index,
                model: model.clone(),
                data: data.clone(),
            });
        }
        let [channels, height, width] = self.image_shape;
        if channels != image_shape[0] {
            return Some(DataMismatch::Channels {
                model: channels,
                data: image_shape[0],
            });
        }
        if [height, width] != [image_shape[1], image_shape[2]] {
            return Some(DataMismatch::ImageSize {
                model: [height, width],
                data: [image_shape[1], image_shape[2]],
            });
        }
        None
    }
}

/// A model folder read and checked: its card and where its weights are.
#[derive(Clone, Debug)]
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// `DIR/model.json`.
    pub card_path: PathBuf,
    /// Its card.
    pub card: ModelCard,
    /// `DIR/weights.bpk` (present; [`load_weights`](Self::load_weights) checks that it loads).
    pub weights: PathBuf,
}

impl ModelFolder {
    /// Reads `dir/model.json` and checks its format, its shape, classes and normalisation
    /// (see [`ModelCard::problem`]), and that `dir/weights.bpk` exists.
    ///
    /// # Errors
    /// [`FolderError`] naming the file: the card missing, not JSON, of another format or
    /// contradicting itself; the weights missing.
    pub fn read(dir: &Path) -> Result<Self, FolderError> {
        let card_path = dir.join(CARD_FILE);
        let invalid = |reason: String| FolderError::Invalid {
            path: card_path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&card_path).map_err(|source| FolderError::Read {
            path: card_path.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not a model card: {e}")))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(MODEL_CARD_FORMAT) => {}
            Some(found) => {
                return Err(FolderError::Format {
                    path: card_path,
                    found,
                });
            }
            None => return Err(invalid("not a model card: no \"format\" number".into())),
        }
        let card: ModelCard =
            serde_json::from_value(value).map_err(|e| invalid(format!("not a model card: {e}")))?;
        if let Some(problem) = card.problem() {
            return Err(invalid(problem));
        }
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            return Err(FolderError::Weights {
                path: weights,
                reason: "missing (the model folder has no weights)".into(),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            card_path,
            card,
            weights,
        })
    }

    /// Checks that the model takes data of `classes` (names, in class order) and images of
    /// `image_shape` (`[channels, height, width]`).
    ///
    /// # Errors
    /// [`FolderError::Mismatch`] naming the card and the first difference.
    pub fn check_data(
        &self,
        classes: &[String],
        image_shape: [usize; 3],
    ) -> Result<(), FolderError> {
        match self.card.mismatch(classes, image_shape) {
            Some(mismatch) => Err(FolderError::Mismatch {
                card: self.card_path.clone(),
                mismatch,
            }),
            None => Ok(()),
        }
    }
}
