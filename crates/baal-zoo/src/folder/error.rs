//! What can be wrong with a model folder, or with writing one.

use std::path::PathBuf;

use super::MODEL_CARD_FORMAT;

/// An error of a model folder: each names the file (or folder) it is about, in one line.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// A file of the folder is missing or cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The card is not a model card, or contradicts itself.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The card (`model.json`).
        path: PathBuf,
        /// What is wrong in it.
        reason: String,
    },
    /// The card is of another format than [`MODEL_CARD_FORMAT`].
    #[error(
        "{}: model folder format {found}; this baal reads format {MODEL_CARD_FORMAT}",
        path.display()
    )]
    Format {
        /// The card.
        path: PathBuf,
        /// Its format number.
        found: u64,
    },
    /// The weights are missing, corrupt, cut short, or of another model.
    #[error("{}: {reason}", path.display())]
    Weights {
        /// The weights file (`weights.bpk`).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The model was made for other data than it is used with.
    #[error("{}: {mismatch}", card.display())]
    Mismatch {
        /// The card (`model.json`).
        card: PathBuf,
        /// What differs.
        mismatch: DataMismatch,
    },
    /// A folder to write is there already and holds something.
    #[error("{}: exists and is not empty", path.display())]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// Something that is not a folder is where the model folder goes.
    #[error("{}: exists and is not a folder", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// Writing the folder failed (the disk, permissions); nothing was installed.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl FolderError {
    /// Whether this is the user's input that is wrong (a folder, file or option to fix)
    /// rather than a failure while writing: every variant but [`FolderError::Write`].
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Write { .. })
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
            path: path.into(),
            source,
        }
    }
}

/// How a model differs from the data it is used with: the first difference found, in the
/// order below.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataMismatch {
    /// Another number of classes.
    #[error("the model has {model} classes, the data {data}")]
    ClassCount {
        /// The model's.
        model: usize,
        /// The data's.
        data: usize,
    },
    /// A class of another name (the same number of classes).
    #[error("the model's class {index} is {model:?}, the data's is {data:?}")]
    ClassName {
        /// The class number.
        index: usize,
        /// The model's name for it.
        model: String,
        /// The data's name for it.
        data: String,
    },
    /// Images of another number of channels.
    #[error("the model takes images of {model} channel(s), the data's have {data} channel(s)")]
    Channels {
        /// The model's.
        model: usize,
        /// The data's.
        data: usize,
    },
    /// Images of another size.
    #[error(
        "the model takes images of {}×{} pixels, the data's are {}×{}",
        model[0], model[1], data[0], data[1]
    )]
    ImageSize {
        /// The model's height and width.
        model: [usize; 2],
        /// The data's height and width.
        data: [usize; 2],
    },
}
