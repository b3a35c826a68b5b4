//! Writing a model folder atomically: a staging folder beside it takes the weights and the
//! card, is synced, and is renamed into place; a crash leaves the old folder or the new one,
//! never half of one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CARD_FILE, FolderError, ModelCard, ModelFolder, WEIGHTS_FILE};

/// Prefix of the staging folders a [`ModelFolderWriter`] makes (and of the folders it moves
/// a replaced model folder to): a folder of this name in a folder of models is a leftover of
/// a crash, and may be removed.
pub const STAGING_PREFIX: &str = ".model-";

/// A model folder being written: the weights go to [`weights_path`](Self::weights_path), then
/// [`install`](Self::install) writes the card and renames the whole into place. Dropped
/// before that, the staging folder is removed.
#[derive(Debug)]
pub struct ModelFolderWriter {
    parent: PathBuf,
    staging: PathBuf,
    installed: bool,
}

/// A fresh name in `parent` for `what` (`partial`, `old`): this process's id and a counter,
/// so that writers of several threads or processes never share one.
fn unique(parent: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    parent.join(format!(
        "{STAGING_PREFIX}{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The folder `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Refuses a model folder's place that holds a folder with something in it (unless
/// `replace`), or something that is not a folder.
///
/// # Errors
/// [`FolderError::Exists`], [`FolderError::NotAFolder`], or [`FolderError::Read`] when the
/// place cannot be looked at.
pub fn check_target(target: &Path, replace: bool) -> Result<(), FolderError> {
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() && !replace {
                return Err(FolderError::Exists {
                    path: target.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if target.exists() && !target.is_dir() => Err(FolderError::NotAFolder {
            path: target.to_path_buf(),
        }),
        Err(source) => Err(FolderError::Read {
            path: target.to_path_buf(),
            source,
        }),
    }
}

impl ModelFolderWriter {
    /// Starts a model folder to be installed beside `target` (in its parent folder, created
    /// if missing): an empty staging folder there.
    ///
    /// # Errors
    /// [`FolderError::Write`]: the staging folder cannot be made.
    pub fn beside(target: &Path) -> Result<Self, FolderError> {
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent).map_err(|e| FolderError::write(&parent, e))?;
        let staging = unique(&parent, "partial");
        std::fs::create_dir(&staging).map_err(|e| FolderError::write(&staging, e))?;
        Ok(Self {
            parent,
            staging,
            installed: false,
        })
    }

    /// The staging folder.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Where the weights go: `weights.bpk` in the staging folder.
    pub fn weights_path(&self) -> PathBuf {
        self.staging.join(WEIGHTS_FILE)
    }

    /// Writes `card`, syncs the weights, the card and the staging folder, and renames it to
    /// `target`, which must be beside it. A folder at `target` that holds something is
    /// refused unless `replace`; a replaced folder is moved aside first (and put back if the
    /// rename fails), then removed.
    ///
    /// # Errors
    /// The weights were not written or the card contradicts itself (nothing is installed),
    /// `target` is taken ([`check_target`]), or a write or rename fails; an existing folder at
    /// `target` is then left as it was.
    pub fn install(
        mut self,
        card: &ModelCard,
        target: &Path,
        replace: bool,
    ) -> Result<ModelFolder, FolderError> {
        if parent_of(target) != self.parent {
            return Err(FolderError::write(
                target,
                std::io::Error::other("a model folder is installed beside its staging folder"),
            ));
        }
        let weights = self.weights_path();
        if !weights.is_file() {
            return Err(FolderError::Weights {
                path: weights,
                reason: "missing (no weights were written)".into(),
            });
        }
        let card_path = self.staging.join(CARD_FILE);
        if let Some(reason) = card.problem() {
            return Err(FolderError::Invalid {
                path: card_path,
                reason,
            });
        }
        let json = serde_json::to_vec_pretty(card)
            .map_err(|e| FolderError::write(&card_path, std::io::Error::other(e)))?;
        std::fs::write(&card_path, json).map_err(|e| FolderError::write(&card_path, e))?;
        for path in [&weights, &card_path, &self.staging] {
            sync(path)?;
        }
        check_target(target, replace)?;
        self.rename_into(target)?;
        Ok(ModelFolder {
            dir: target.to_path_buf(),
            card_path: target.join(CARD_FILE),
            card: card.clone(),
            weights: target.join(WEIGHTS_FILE),
        })
    }

    /// Renames the staging folder to `target`, moving a folder there aside first and
    /// removing it after.
    fn rename_into(&mut self, target: &Path) -> Result<(), FolderError> {
        let old = if target.exists() {
            let old = unique(&self.parent, "old");
            std::fs::rename(target, &old).map_err(|e| FolderError::write(target, e))?;
            Some(old)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&self.staging, target) {
            if let Some(old) = &old {
                // Put the previous folder back; the new one stays in staging and is dropped.
                let _ = std::fs::rename(old, target);
            }
            return Err(FolderError::write(target, e));
        }
        self.installed = true;
        sync(&self.parent)?;
        if let Some(old) = old {
            std::fs::remove_dir_all(&old).map_err(|e| FolderError::write(&old, e))?;
        }
        Ok(())
    }
}

impl Drop for ModelFolderWriter {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Flushes a file, or a folder's entries, to the disk, so that a rename after it cannot
/// publish a name whose contents a crash would lose.
fn sync(path: &Path) -> Result<(), FolderError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| FolderError::write(path, e))
}
