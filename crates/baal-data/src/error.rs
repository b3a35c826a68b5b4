//! The error type of this crate.

use std::path::PathBuf;

use crate::index::DatasetIndex;

/// What can go wrong when reading data or changing the labelling state.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file does not hold what its format says it should.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An index is past the end of what it indexes.
    #[error("{kind} index {index} is out of range: there are {len} items")]
    IndexOutOfRange {
        /// What the index points into: `"dataset"`, `"pool"` or `"view"`.
        kind: &'static str,
        /// The index given.
        index: usize,
        /// The number of items it may index.
        len: usize,
    },
    /// The same index appears twice in one request.
    #[error("{kind} index {index} is given more than once")]
    DuplicateIndex {
        /// What the index points into: `"dataset"` or `"pool"`.
        kind: &'static str,
        /// The repeated index.
        index: usize,
    },
    /// An item that is already labelled was to be labelled again.
    #[error("dataset item {0} is already labelled")]
    AlreadyLabelled(DatasetIndex),
    /// An item that is not labelled was to be unlabelled.
    #[error("dataset item {0} is not labelled")]
    NotLabelled(DatasetIndex),
    /// The pool has no item left.
    #[error("the pool is empty: every item is labelled")]
    EmptyPool,
    /// More items were requested than the pool holds.
    #[error("{requested} items requested but the pool holds only {available}")]
    NotEnoughUnlabelled {
        /// How many were asked for.
        requested: usize,
        /// How many the pool holds.
        available: usize,
    },
    /// A label is not acceptable for this dataset (e.g. a class out of range).
    #[error("label for dataset item {dataset_index} is invalid: {reason}")]
    InvalidLabel {
        /// The item being labelled.
        dataset_index: DatasetIndex,
        /// Why the label was refused.
        reason: String,
    },
    /// `label` (known labels) was called on a dataset built without a label oracle.
    #[error(
        "this dataset has no known labels: build it with `with_known_labels` or label with `label_with`"
    )]
    NoKnownLabels,
    /// The wrapped dataset failed to return an item.
    #[error("dataset item {index} could not be read: {source}")]
    Item {
        /// The dataset index.
        index: usize,
        /// The wrapped dataset's error.
        #[source]
        source: burn::data::dataset::DatasetError,
    },
    /// Images given in memory do not make a dataset (see [`ImageDataset::new`](crate::ImageDataset::new)).
    #[error("invalid images: {0}")]
    InvalidImages(String),
    /// A labelling state does not fit this dataset.
    #[error("labelling state cannot be restored: {0}")]
    State(String),
    /// A data argument names no dataset, `.npy` file or folder.
    #[error("{0:?} is neither fashion-mnist, mnist, cifar10, a .npy file nor a folder")]
    UnknownSource(String),
    /// A named dataset is in none of the places looked in; the message names each and the
    /// remedies.
    #[error("{0}")]
    Unavailable(String),
    /// A class has fewer items than a balanced pick asks of it.
    #[error("class {class} has {have} items, {wanted} wanted")]
    ClassShortfall {
        /// The class.
        class: usize,
        /// Its items.
        have: usize,
        /// The items asked of it.
        wanted: usize,
    },
    /// An argument is outside what the operation accepts.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A download failed or its checksum did not match.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl DataError {
    /// A [`DataError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A [`DataError::Corrupt`] for `path`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Result with a [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
