//! Saving and loading a trainer's weights (burnpack files).

use std::path::Path;

use burn::module::Module;

use super::Trainer;
use crate::error::{ActiveError, Result};
use crate::traits::Trainable;

impl<M, I> Trainer<M, I>
where
    M: Trainable,
    I: Clone + Send + Sync + 'static,
{
    /// Saves the current weights to `path` (burnpack), atomically (temporary file, rename).
    ///
    /// # Errors
    /// The file cannot be written.
    /// An ensemble's members are saved together, as one module.
    pub fn save_weights(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let saved = match self.models.as_slice() {
            [model] => model.clone().save_file(&tmp),
            members => members.to_vec().save_file(&tmp),
        };
        saved.map_err(|e| ActiveError::Weights {
            path: tmp.clone(),
            message: format!("{e:?}"),
        })?;
        // burn may add its extension to the name it was given.
        let written = if tmp.exists() {
            tmp
        } else {
            tmp.with_extension("tmp.bpk")
        };
        std::fs::rename(&written, path).map_err(|e| ActiveError::io(path, e))
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) into the current model.
    ///
    /// # Errors
    /// The file is missing, corrupt or of another model.
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let error = |e| ActiveError::Weights {
            path: path.to_path_buf(),
            message: format!("{e:?}"),
        };
        self.models = match self.models.as_slice() {
            [model] => vec![model.clone().try_load_file(path).map_err(error)?],
            members => members.to_vec().try_load_file(path).map_err(error)?,
        };
        self.calibrator = None;
        Ok(())
    }
}
