//! What the service refuses or fails at, each with the HTTP status it answers with.

use std::path::{Path, PathBuf};

use crate::queue::QueueError;

/// An error of the labelling service. Refusals of bad input (every variant but [`Io`],
/// [`Corrupt`], [`Model`] and [`Data`]) change nothing.
///
/// [`Io`]: ServeError::Io
/// [`Corrupt`]: ServeError::Corrupt
/// [`Model`]: ServeError::Model
/// [`Data`]: ServeError::Data
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A state file that is not what this service wrote.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        reason: String,
    },
    /// A lease cannot be used.
    #[error(transparent)]
    Lease(#[from] QueueError),
    /// No item has this index.
    #[error("item {item} does not exist: the dataset holds {len} items")]
    UnknownItem {
        /// The index asked for.
        item: usize,
        /// The number of items.
        len: usize,
    },
    /// A class that is not one of the service's.
    #[error("class {class} does not exist: the classes are 0 to {} ({})", names.len().saturating_sub(1), names.join(", "))]
    UnknownClass {
        /// The class asked for.
        class: String,
        /// The service's classes.
        names: Vec<String>,
    },
    /// The lease was answered already, with another class.
    #[error(
        "lease {lease} already labelled item {item} as class {class}; undo it to change the label"
    )]
    AlreadyAnswered {
        /// The lease.
        lease: u64,
        /// Its item.
        item: usize,
        /// The class it was answered with.
        class: usize,
    },
    /// Undo with nothing to undo.
    #[error("annotator {0:?} has no label to undo")]
    NothingToUndo(String),
    /// A request that is malformed (a field missing or of the wrong type, a bad name).
    #[error("{0}")]
    BadRequest(String),
    /// A request body over the limit.
    #[error("the request body is over the limit of {0} bytes")]
    TooLarge(usize),
    /// A request body that did not arrive whole in time.
    #[error("the request body did not arrive within {0:?}")]
    RequestTimeout(std::time::Duration),
    /// No route has this path.
    #[error("no such route: see docs/labelling.md for the API")]
    NoRoute,
    /// The route does not take this method.
    #[error("this route does not take this method")]
    MethodNotAllowed,
    /// A Label Studio annotation that labelled another item already: one annotation labels
    /// one item (so that deleting it takes back exactly that label).
    #[error(
        "annotation {annotation} labelled item {labelled} already; it cannot label item {item} too"
    )]
    AnnotationElsewhere {
        /// The annotation.
        annotation: u64,
        /// The item it labelled.
        labelled: usize,
        /// The item it was sent for now.
        item: usize,
    },
    /// No or a wrong access token.
    #[error(
        "this needs the service's access token (header `Authorization: Bearer <token>` or `?token=`)"
    )]
    Unauthorized,
    /// A label file to import holds a bad line (or entry): nothing of it was applied.
    #[error("{}, {at}: {reason}", path.display())]
    LabelFile {
        /// The file.
        path: PathBuf,
        /// Where in it: `line 4` (CSV) or `entry 2` (JSON), counted from 1.
        at: String,
        /// What is wrong there.
        reason: String,
    },
    /// An export's output exists already (a file, or a folder that is not empty): nothing
    /// was written over it.
    #[error("{} exists already (and is not an empty folder): nothing was written; choose another output", path.display())]
    OutputExists {
        /// The output.
        path: PathBuf,
    },
    /// A class whose name cannot be a folder name, for an export into class folders.
    #[error(
        "class {class:?} cannot be a folder name (it is empty, `.` or `..`, or holds `/`, `\\` or NUL): export as csv or json instead"
    )]
    UnsafeClassName {
        /// The class name.
        class: String,
    },
    /// Settings that do not fit together, or do not fit the state being resumed.
    #[error("{0}")]
    Config(String),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] baal_data::DataError),
    /// Training or scoring failed.
    #[error("model: {0}")]
    Model(String),
}

impl ServeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The HTTP status of this error: 4xx for refused input, 500 for failures.
    pub fn status(&self) -> u16 {
        match self {
            Self::Lease(QueueError::UnknownLease(_)) | Self::UnknownItem { .. } => 404,
            Self::Lease(QueueError::Expired(_)) => 410,
            Self::Lease(QueueError::Foreign { .. }) => 403,
            Self::Lease(QueueError::NotLabelled(_))
            | Self::AlreadyAnswered { .. }
            | Self::AnnotationElsewhere { .. }
            | Self::NothingToUndo(_) => 409,
            Self::RequestTimeout(_) => 408,
            Self::NoRoute => 404,
            Self::MethodNotAllowed => 405,
            Self::UnknownClass { .. }
            | Self::BadRequest(_)
            | Self::Lease(QueueError::InvalidRanking(_)) => 400,
            Self::Unauthorized => 401,
            Self::TooLarge(_) => 413,
            Self::Config(_) | Self::LabelFile { .. } | Self::UnsafeClassName { .. } => 400,
            Self::OutputExists { .. } => 409,
            Self::Io { .. } | Self::Corrupt { .. } | Self::Data(_) | Self::Model(_) => 500,
        }
    }

    /// A short machine-readable name of the error, the `code` of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Corrupt { .. } => "corrupt-state",
            Self::Lease(QueueError::UnknownLease(_)) => "unknown-lease",
            Self::Lease(QueueError::Expired(_)) => "expired-lease",
            Self::Lease(QueueError::Foreign { .. }) => "foreign-lease",
            Self::Lease(QueueError::NotLabelled(_)) => "not-labelled",
            Self::Lease(QueueError::InvalidRanking(_)) => "invalid-ranking",
            Self::UnknownItem { .. } => "unknown-item",
            Self::UnknownClass { .. } => "unknown-class",
            Self::AlreadyAnswered { .. } => "already-answered",
            Self::NothingToUndo(_) => "nothing-to-undo",
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::TooLarge(_) => "too-large",
            Self::RequestTimeout(_) => "timeout",
            Self::NoRoute => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::AnnotationElsewhere { .. } => "annotation-elsewhere",
            Self::Config(_) => "config",
            Self::LabelFile { .. } => "label-file",
            Self::OutputExists { .. } => "output-exists",
            Self::UnsafeClassName { .. } => "unsafe-class-name",
            Self::Data(_) => "data",
            Self::Model(_) => "model",
        }
    }
}
