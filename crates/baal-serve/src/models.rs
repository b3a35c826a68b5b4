//! The models a service keeps: after each round, its model folder (weights and card, see
//! [`baal_zoo::folder`]) goes to `STATE/models/round-<version>/`, written on the background
//! thread, and only the latest few are kept. A restart finds them; `GET /api/model` names the
//! latest. Also the model a service starts from (`--init-model`).

use std::path::{Path, PathBuf};

use baal_data::Normalization;
use baal_zoo::folder::{FolderError, ModelCard, ModelFolder, ModelFolderWriter, STAGING_PREFIX};
use burn::store::ModuleRecord;
use serde::Serialize;

/// The folder of the kept models inside the state folder.
pub const MODELS_DIR: &str = "models";

/// The name of the folder of model version `version`: `round-000012`.
pub fn round_folder_name(version: u64) -> String {
    format!("round-{version:06}")
}

/// The version a folder name `round-000012` stands for.
fn version_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("round-")?;
    let plain = digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| digits.parse().ok()).flatten()
}

/// A model folder the service kept: what `GET /api/model` answers.
#[derive(Clone, Debug, Serialize)]
pub struct KeptModel {
    /// The model version (the round's).
    pub version: u64,
    /// Its folder: `STATE/models/round-<version>`.
    pub path: PathBuf,
    /// Its card.
    pub card: ModelCard,
}

/// A round's model, to keep: its weights and its card (the card's `version` is set when it
/// is kept).
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// The weights.
    pub weights: ModuleRecord,
    /// The card.
    pub card: ModelCard,
}

/// What a round's card says about the data, which the scorer does not otherwise know.
#[derive(Clone, Debug)]
pub struct CardContext {
    /// The data argument, as given.
    pub data: String,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// The normalisation the images were given.
    pub normalization: Normalization,
}

/// The model a service starts from (`--init-model`): every round trains from its weights, and
/// it ranks the pool before the first retrain.
#[derive(Clone, Debug)]
pub struct InitModel {
    /// Its folder, read and checked against the data.
    pub folder: ModelFolder,
    /// Its weights, loaded once (see [`ModelFolder::load_weights`]).
    pub weights: ModuleRecord,
}

/// The kept model folders of a state: `STATE/models/round-<version>/`, the latest `keep`.
#[derive(Clone, Debug)]
pub struct ModelKeeper {
    dir: PathBuf,
    keep: usize,
}

impl ModelKeeper {
    /// The kept models of the state folder `state`, keeping the latest `keep` (0: none is
    /// written). Staging folders left by a crash are removed.
    pub fn open(state: &Path, keep: usize) -> Self {
        let keeper = Self {
            dir: state.join(MODELS_DIR),
            keep,
        };
        for (name, path) in keeper.entries() {
            if name.starts_with(STAGING_PREFIX)
                && let Err(error) = std::fs::remove_dir_all(&path)
            {
                tracing::warn!(path = %path.display(), %error, "cannot remove a staging folder");
            }
        }
        keeper
    }

    /// The folder of the kept models.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many are kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// The folder of model version `version`.
    pub fn folder(&self, version: u64) -> PathBuf {
        self.dir.join(round_folder_name(version))
    }

    /// The names and paths in the folder (none when it does not exist).
    fn entries(&self) -> Vec<(String, PathBuf)> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The kept versions on disk, newest first.
    fn versions(&self) -> Vec<u64> {
        let mut versions: Vec<u64> = self
            .entries()
            .iter()
            .filter_map(|(name, _)| version_of(name))
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
    }

    /// The newest kept model of a version up to `up_to` (the state's model version) whose
    /// folder reads; a folder that does not is logged and passed over.
    pub fn latest(&self, up_to: u64) -> Option<KeptModel> {
        self.versions()
            .into_iter()
            .filter(|&v| v <= up_to)
            .find_map(|version| match ModelFolder::read(&self.folder(version)) {
                Ok(folder) => Some(KeptModel {
                    version,
                    path: folder.dir,
                    card: folder.card,
                }),
                Err(error) => {
                    tracing::warn!(%error, "passing over a kept model folder");
                    None
                }
            })
    }

    /// Writes `model` as model version `version` (atomically: a staging folder renamed into
    /// place), then removes the older folders beyond the latest `keep` (and any of a version
    /// above it: a history that was lost). Writes nothing when `keep` is 0.
    ///
    /// # Errors
    /// The folder cannot be written; the folders kept before are left as they were.
    pub fn keep_model(
        &self,
        version: u64,
        model: TrainedModel,
    ) -> Result<Option<KeptModel>, FolderError> {
        if self.keep == 0 {
            return Ok(None);
        }
        let target = self.folder(version);
        let writer = ModelFolderWriter::beside(&target)?;
        let weights = writer.weights_path();
        model
            .weights
            .save(&weights)
            .map_err(|e| FolderError::Write {
                path: weights.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let mut card = model.card;
        card.version = Some(version);
        let folder = writer.install(&card, &target, true)?;
        self.prune(version);
        Ok(Some(KeptModel {
            version,
            path: folder.dir,
            card,
        }))
    }

    /// Removes every kept folder but the latest `keep` of versions up to `newest`.
    fn prune(&self, newest: u64) {
        let stale = self.versions().into_iter().filter(|&v| v > newest);
        let old = self
            .versions()
            .into_iter()
            .filter(|&v| v <= newest)
            .skip(self.keep);
        for version in stale.chain(old) {
            let path = self.folder(version);
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove an old model folder");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_folders_are_named_by_their_version() {
        assert_eq!(round_folder_name(1), "round-000001");
        assert_eq!(round_folder_name(1_234_567), "round-1234567");
        assert_eq!(version_of("round-000012"), Some(12));
        assert_eq!(version_of("round-1234567"), Some(1_234_567));
        for other in [
            "round-12",
            "round-00001a",
            ".model-partial-1-0",
            "round-",
            "x",
        ] {
            assert_eq!(version_of(other), None, "{other}");
        }
    }
}
