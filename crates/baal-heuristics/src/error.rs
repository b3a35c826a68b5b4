//! The error type of this crate.

use burn::tensor::TensorReadError;

/// What can go wrong when validating predictions or scoring them.
#[derive(Debug, thiserror::Error)]
pub enum HeuristicError {
    /// A tensor or array does not have the shape an operation needs.
    #[error("shape mismatch in {what}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// What was being checked.
        what: &'static str,
        /// A description of the expected shape.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A prediction holds NaN or an infinity.
    #[error("predictions of item {item} hold a non-finite value (NaN or infinity)")]
    NonFinite {
        /// Pool index of the first offending item.
        item: usize,
    },
    /// A probability lies outside [0, 1].
    #[error(
        "probability out of [0, 1] at item {item}, class {class}, MC iteration {iteration}: {value}"
    )]
    ProbabilityOutOfRange {
        /// Pool index of the first offending item.
        item: usize,
        /// Class of the offending value.
        class: usize,
        /// MC iteration of the offending value.
        iteration: usize,
        /// The offending value.
        value: f32,
    },
    /// Probabilities of one item and MC iteration do not sum to one over the classes.
    #[error(
        "probabilities of item {item} at MC iteration {iteration} sum to {sum} over the classes, \
         expected 1 ± {tolerance} (pass logits through `Predictions::from_logits` instead?)"
    )]
    NotNormalised {
        /// Pool index of the first offending item.
        item: usize,
        /// MC iteration (flattened with the position axis for `[N, C, P, T]` input).
        iteration: usize,
        /// The sum over classes.
        sum: f32,
        /// The accepted distance from one.
        tolerance: f32,
    },
    /// Scores given by the user are not finite.
    #[error("score of item {item} is not finite: {value}")]
    NonFiniteScore {
        /// Pool index of the offending item.
        item: usize,
        /// The offending score.
        value: f32,
    },
    /// A heuristic needs class probabilities but was given regression outputs.
    #[error("{heuristic} needs class probabilities; these predictions are regression outputs")]
    NeedsProbabilities {
        /// Name of the heuristic.
        heuristic: &'static str,
    },
    /// A heuristic does not support predictions with a position axis.
    #[error(
        "{heuristic} supports only [N, C, T] predictions, not [N, C, P, T] with P = {positions}"
    )]
    PositionsUnsupported {
        /// Name of the heuristic.
        heuristic: &'static str,
        /// The number of positions of the predictions given.
        positions: usize,
    },
    /// EPIG (or another heuristic) was called without the target predictions it needs.
    #[error("{heuristic} needs target predictions (`target`), none were given")]
    MissingTarget {
        /// Name of the heuristic.
        heuristic: &'static str,
    },
    /// A heuristic that reads the model's predictions was asked to select without them.
    #[error(
        "{heuristic} reads the model's predictions: it cannot select without them \
         (`Heuristic::needs_predictions` is true)"
    )]
    NeedsPredictions {
        /// Name of the heuristic.
        heuristic: &'static str,
    },
    /// An embedding holds NaN or an infinity.
    #[error(
        "embedding of item {item} holds a non-finite value (NaN or infinity) at feature {feature}"
    )]
    NonFiniteEmbedding {
        /// Position of the first offending item.
        item: usize,
        /// Feature (column) of the offending value.
        feature: usize,
    },
    /// A heuristic that selects by the model's embeddings was called through an entry point
    /// that has only predictions, scores or a pool size.
    #[error(
        "{heuristic} selects by the model's embeddings: call `Heuristic::select_with_embeddings` \
         with {inputs} (`Heuristic::needs_embeddings` is true); it cannot score, rank or select \
         from predictions, per-item scores or a pool size alone"
    )]
    NeedsEmbeddings {
        /// Name of the heuristic.
        heuristic: &'static str,
        /// What it needs, e.g. `the pool's embeddings (and the labelled items')`.
        inputs: &'static str,
    },
    /// A heuristic that does not select by embeddings was handed embeddings.
    #[error(
        "{heuristic} does not select by embeddings (`Heuristic::needs_embeddings` is false): \
         score it from predictions"
    )]
    NoEmbeddingSelection {
        /// Name of the heuristic.
        heuristic: &'static str,
    },
    /// BADGE (or another heuristic) was called without the class probabilities it needs.
    #[error(
        "{heuristic} needs the pool's class probabilities (the MC-averaged predictions, \
         `EmbeddingInput::with_probabilities`), none were given"
    )]
    MissingProbabilities {
        /// Name of the heuristic.
        heuristic: &'static str,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// Why the value is not valid.
        reason: String,
    },
    /// More items were requested than the pool holds.
    #[error("cannot select {requested} items from a pool of {available}")]
    QueryTooLarge {
        /// The number of items requested.
        requested: usize,
        /// The number of items in the pool.
        available: usize,
    },
    /// Reading a tensor back from the device failed.
    #[error("reading a tensor from the device failed: {0}")]
    Read(String),
    /// An [`EmbeddingSource`](crate::EmbeddingSource) could not read a chunk (a file that
    /// changed or cannot be read).
    #[error("reading embeddings failed: {0}")]
    SourceRead(String),
}

impl HeuristicError {
    /// The same error with its pool item shifted by `offset`: for predictions validated chunk
    /// by chunk, where item 3 of the chunk that starts at 1000 is pool item 1003.
    #[must_use]
    pub fn offset_item(mut self, offset: usize) -> Self {
        match &mut self {
            Self::NonFinite { item }
            | Self::ProbabilityOutOfRange { item, .. }
            | Self::NotNormalised { item, .. }
            | Self::NonFiniteScore { item, .. }
            | Self::NonFiniteEmbedding { item, .. } => *item += offset,
            _ => {}
        }
        self
    }
}

impl From<TensorReadError> for HeuristicError {
    fn from(e: TensorReadError) -> Self {
        Self::Read(e.to_string())
    }
}

/// Result with a [`HeuristicError`].
pub type Result<T, E = HeuristicError> = std::result::Result<T, E>;
