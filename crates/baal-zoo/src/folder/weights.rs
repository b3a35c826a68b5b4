//! Loading a model folder's weights: once at start, so that a corrupt file is an error that
//! names it before any work is done.

use baal_active::Classifier;
use burn::store::{ModuleRecord, RecordError};
use burn::tensor::{Device, Tensor};

use super::{FolderError, ModelFolder};
use crate::models::ModelVisitor;

impl ModelFolder {
    /// Reads `weights.bpk` and checks that it loads into the card's model (its kind, image
    /// shape and classes) built on `device`; returns the weights, to load into models of this
    /// card with [`Module::try_load_record`](burn::module::Module::try_load_record).
    ///
    /// # Errors
    /// [`FolderError::Weights`] naming the file: unreadable, not a burnpack file (corrupt, cut
    /// short), or the weights of another model; [`FolderError::Invalid`] naming the card when
    /// its model cannot take its image shape.
    pub fn load_weights(&self, device: &Device) -> Result<ModuleRecord, FolderError> {
        let record = ModuleRecord::load(&self.weights).map_err(|e| self.weights_error(&e))?;
        let card = &self.card;
        card.model
            .build(
                card.image_shape,
                card.classes.len(),
                device,
                LoadCheck {
                    record: record.clone(),
                },
            )
            .map_err(|e| FolderError::Invalid {
                path: self.card_path.clone(),
                reason: format!("{} cannot take this image shape: {e}", card.model.name()),
            })?
            .map_err(|e| self.weights_error(&e))?;
        Ok(record)
    }

    fn weights_error(&self, error: &RecordError) -> FolderError {
        let card = &self.card;
        let reason = match error {
            RecordError::Io(message) => {
                format!("not a readable burnpack file (corrupt or cut short?): {message}")
            }
            RecordError::Validation(message) => format!(
                "not the weights of a {} for {:?} images of {} classes: {message}",
                card.model.name(),
                card.image_shape,
                card.classes.len()
            ),
        };
        FolderError::Weights {
            path: self.weights.clone(),
            reason,
        }
    }
}

/// Loads the weights into the model the zoo built, and drops it.
struct LoadCheck {
    record: ModuleRecord,
}

impl ModelVisitor for LoadCheck {
    type Output = Result<(), RecordError>;

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        model.try_load_record(self.record).map(drop)
    }
}
