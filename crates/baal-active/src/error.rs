//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong while training, querying, labelling or running an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ActiveError {
    /// A configuration value is out of range.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// The option at fault.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A dataset (labelled set, test set, pool) holds no item where one is needed.
    #[error("the {what} is empty")]
    Empty {
        /// Which dataset.
        what: &'static str,
    },
    /// A dataset item cannot be read.
    #[error("cannot read item {index} of the {what}: {message}")]
    Item {
        /// Which dataset.
        what: &'static str,
        /// Position in that dataset.
        index: usize,
        /// The dataset's error.
        message: String,
    },
    /// A tensor has an unexpected shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    ShapeMismatch {
        /// Which tensor.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A label is not a class below the model's number of classes.
    #[error("label {label} of {what} item {index} is not below the model's {classes} classes")]
    LabelOutOfRange {
        /// Which dataset.
        what: &'static str,
        /// Position of the item.
        index: usize,
        /// The label found.
        label: usize,
        /// The model's number of output classes.
        classes: usize,
    },
    /// A label cannot train the model (see [`Trainable::check_target`](crate::Trainable::check_target)).
    #[error("the label of {what} item {index} cannot train the model: {reason}")]
    BadTarget {
        /// Which dataset.
        what: &'static str,
        /// Position of the item.
        index: usize,
        /// Why, from the model.
        reason: String,
    },
    /// Training produced a non-finite loss (diverged: lower the learning rate).
    #[error(
        "training diverged: the loss is {loss} at epoch {epoch} (lower the learning rate or check the inputs)"
    )]
    Diverged {
        /// The loss value.
        loss: f64,
        /// The epoch (1-based).
        epoch: usize,
    },
    /// A file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Saved model weights cannot be written or read back.
    #[error("model weights {}: {message}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// Burn's error.
        message: String,
    },
    /// An experiment folder holds a run made with other settings.
    #[error("cannot resume the experiment in {}: {reason}", path.display())]
    Resume {
        /// The experiment folder.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The oracle refused or failed to label the query.
    #[error("oracle: {0}")]
    Oracle(String),
    /// Shard results that cannot be merged (missing, repeated, of other settings, altered).
    #[error("shards: {0}")]
    Shards(String),
    /// The learning-curve plot cannot be drawn.
    #[error("plot {}: {message}", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// The drawing error.
        message: String,
    },
    /// An error of the dataset layer (indices, labels, checkpoints).
    #[error(transparent)]
    Data(#[from] baal_data::DataError),
    /// An error of the heuristics (bad predictions, query size).
    #[error(transparent)]
    Heuristic(#[from] baal_heuristics::HeuristicError),
    /// An error of the MC sampler.
    #[error(transparent)]
    Bayesian(#[from] baal_bayesian::BayesianError),
    /// A JSON log line cannot be encoded.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl ActiveError {
    /// An [`ActiveError::Io`] for `path` (also for the tool's side of sharding, in the facade).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`ActiveError`].
pub type Result<T> = std::result::Result<T, ActiveError>;
