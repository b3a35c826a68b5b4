//! The model folder that `baal train` writes and `baal predict --model-dir` reads: the
//! weights (`weights.bpk`) and a card (`model.json`) that says which model they belong to,
//! the image shape, the classes and the normalisation it was trained with.

use std::path::{Path, PathBuf};

use baal::active::EvalMetrics;
use baal::data::Normalization;
use baal_zoo::models::ModelKind;
use serde::{Deserialize, Serialize};

use crate::score::ScoreError;

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
    /// How the fit went and how the model did on the held-out images.
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
}

/// The fit and the held-out measurement of `baal train`; what it prints on standard output.
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
    /// test subset (0: none).
    pub validation_items: usize,
    /// Their metrics (accuracy, NLL, ECE, loss), when there were any.
    pub validation: Option<EvalMetrics>,
}

/// A model folder read and checked: its card and where its weights are.
#[derive(Clone, Debug)]
pub struct ModelFolder {
    /// `DIR/model.json`.
    pub card_path: PathBuf,
    /// Its card.
    pub card: ModelCard,
    /// `DIR/weights.bpk` (present; whether it loads is checked when the model is built).
    pub weights: PathBuf,
}

impl ModelFolder {
    /// Reads `dir/model.json` and checks its format, its shape and classes, and that
    /// `dir/weights.bpk` exists.
    ///
    /// # Errors
    /// [`ScoreError::Input`] naming the file: missing, not JSON, another format, a card that
    /// contradicts itself.
    pub fn read(dir: &Path) -> Result<Self, ScoreError> {
        let card_path = dir.join(CARD_FILE);
        let bad = |what: String| ScoreError::Input(format!("{}: {what}", card_path.display()));
        let text = std::fs::read_to_string(&card_path).map_err(|e| bad(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a model card: {e}")))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(MODEL_CARD_FORMAT) => {}
            Some(f) => {
                return Err(bad(format!(
                    "model folder format {f}; this baal reads format {MODEL_CARD_FORMAT}"
                )));
            }
            None => return Err(bad("not a model card: no \"format\" number".into())),
        }
        let card: ModelCard =
            serde_json::from_value(value).map_err(|e| bad(format!("not a model card: {e}")))?;
        if card.classes.len() < 2 {
            return Err(bad(format!(
                "{} class(es): a model has at least 2",
                card.classes.len()
            )));
        }
        let channels = card.image_shape[0];
        if !matches!(channels, 1 | 3)
            || card.image_shape[1] == 0
            || card.image_shape[1] != card.image_shape[2]
        {
            return Err(bad(format!(
                "image shape {:?}: 1 or 3 channels of a square of at least 1 pixel",
                card.image_shape
            )));
        }
        let n = &card.normalization;
        if n.mean.len() != channels
            || n.std.len() != channels
            || n.std.iter().any(|&s| !(s.is_finite() && s > 0.0))
            || n.mean.iter().any(|m| !m.is_finite())
        {
            return Err(bad(format!(
                "normalization {n:?}: a finite mean and a positive deviation for each of \
                 {channels} channel(s)"
            )));
        }
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            return Err(ScoreError::Input(format!(
                "{}: missing (the model folder has no weights)",
                weights.display()
            )));
        }
        Ok(Self {
            card_path,
            card,
            weights,
        })
    }
}
