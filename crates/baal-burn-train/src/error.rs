//! The crate's error type.

use std::sync::Arc;

use burn::train::TrainingError;

/// What can go wrong while fitting with burn-train or predicting with the trained model.
#[derive(Debug, thiserror::Error)]
pub enum LearnerTrainerError {
    /// A configuration value is out of range.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// The option at fault.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// No parameter of the learner's model tracks gradients, so burn-train cannot train it: the
    /// model was built on a plain device (Burn tracks a parameter only on an autodiff device).
    #[error(
        "no parameter of the learner's model tracks gradients: build the model on the autodiff \
         form of the device (`device.clone().autodiff()`), as burn-train expects, or pass it \
         through `model.fork(&device.clone().autodiff()).train()` before `Learner::new`"
    )]
    UntrackedModel,
    /// The labelled set holds no item: there is nothing to fit on.
    #[error("the labelled set is empty: label some items before fitting")]
    EmptyLabelledSet,
    /// A labelled item cannot be read.
    #[error("cannot read item {index} of the labelled set: {message}")]
    Item {
        /// Position in the labelled set.
        index: usize,
        /// The dataset's error.
        message: String,
    },
    /// burn-train stopped the fit on an error (a batch that cannot be loaded, a metric that
    /// cannot be computed, a failed checkpoint).
    #[error("burn-train stopped fit {fit} on an error: {source}")]
    Training {
        /// The fit (0-based) that failed.
        fit: u64,
        /// burn-train's error.
        source: Arc<TrainingError>,
    },
    /// An error of the loop's side: the MC sampler, the predictions.
    #[error(transparent)]
    Active(#[from] baal_active::ActiveError),
}

/// `Result` with [`LearnerTrainerError`].
pub type Result<T> = std::result::Result<T, LearnerTrainerError>;
