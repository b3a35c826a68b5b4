//! The error type of this crate.

/// What can go wrong when configuring Bayesian layers or running the MC sampler.
#[derive(Debug, thiserror::Error)]
pub enum BayesianError {
    /// A drop probability is not a finite number in `[0, 1)`.
    #[error("{what} must be a finite probability in [0, 1), got {value}")]
    InvalidProbability {
        /// Which setting holds the probability (for example `McDropoutConfig::prob`).
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// Which setting is wrong.
        what: &'static str,
        /// Why it is wrong.
        reason: String,
    },
    /// A batch given to the sampler holds no item.
    #[error("{what} is empty: the sampler needs at least one item")]
    EmptyBatch {
        /// What was empty.
        what: &'static str,
    },
    /// A tensor does not have the shape an operation needs.
    #[error("shape mismatch in {what}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// What was being checked.
        what: &'static str,
        /// A description of the expected shape.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// The model's head called no stochastic layer of this crate with the sampler's context,
    /// so every MC sample would be the same network (BALD would be 0 for every item).
    #[error(
        "the model's head called no stochastic layer (McDropout, DropConnect, McDropConnect, ...) \
         with the sampler's McContext: every MC sample would be the same network; put one in \
         the head, or wrap the model in McDropConnect"
    )]
    NoStochasticLayer,
    /// The model gives no embeddings ([`StochasticModel::embed`](crate::StochasticModel::embed)
    /// returned `None`), which the diversity heuristics (Coreset, BADGE) read.
    #[error(
        "the model gives no embeddings (StochasticModel::embed returned None): Coreset and BADGE \
         read the input of its last linear layer; implement embed for the model"
    )]
    NoEmbeddings,
    /// A dataset could not give one of its items.
    #[error("dataset item {dataset_index} could not be read: {message}")]
    DatasetItem {
        /// Index of the item in the dataset.
        dataset_index: usize,
        /// The dataset's error message.
        message: String,
    },
    /// A user callback (batcher, chunk consumer) reported an error.
    #[error("{what} failed for dataset items {start}..{end}: {message}")]
    Callback {
        /// Which callback failed.
        what: &'static str,
        /// First dataset index of the batch.
        start: usize,
        /// One past the last dataset index of the batch.
        end: usize,
        /// The callback's error message.
        message: String,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, BayesianError>;

/// Checks that `value` is a finite probability in `[0, 1)`.
pub(crate) fn check_probability(what: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(BayesianError::InvalidProbability { what, value })
    }
}
