//! The adapter's configuration: a Burn `Config` with a checked `check`, like the trainer's.

use burn::config::Config;

use crate::error::LearnerTrainerError;

/// How a [`LearnerTrainer`](crate::LearnerTrainer) runs burn-train and predicts:
/// `LearnerTrainerConfig::new().with_epochs(5).with_batch_size(16)`.
///
/// The optimizer, the learning-rate scheduler, the metrics and early stopping are burn-train's
/// (the [`Learner`](burn::train::Learner) and
/// [`LearnerTrainer::with_training`](crate::LearnerTrainer::with_training)); this holds what
/// the adapter itself decides: the epochs of each fit, the batches it builds from the
/// labelled set, the seeds, and the batch size of MC prediction.
#[derive(Config, Debug, PartialEq)]
pub struct LearnerTrainerConfig {
    /// Passes over the labelled set per fit (burn-train's `num_epochs`; early stopping set in
    /// [`with_training`](crate::LearnerTrainer::with_training) may stop sooner).
    #[config(default = 10)]
    pub epochs: usize,
    /// Labelled items per training batch.
    #[config(default = 32)]
    pub batch_size: usize,
    /// Threads of burn-train's training dataloader (0: batches are built on the training
    /// thread, in a reproducible order).
    #[config(default = 0)]
    pub num_workers: usize,
    /// Pool items per forward pass when MC-predicting.
    #[config(default = 256)]
    pub predict_batch_size: usize,
    /// Seed of the shuffling and of the device generator (dropout masks in training); fit `k`
    /// uses `baal_bayesian::seeds::nth(seed, k)`, as our own trainer does.
    #[config(default = 0)]
    pub seed: u64,
}

impl LearnerTrainerConfig {
    /// Refuses values no fit can run with.
    ///
    /// # Errors
    /// No epoch, an empty training batch or an empty prediction batch.
    pub fn check(&self) -> crate::error::Result<()> {
        for (value, what) in [
            (self.epochs, "epochs"),
            (self.batch_size, "batch size"),
            (self.predict_batch_size, "prediction batch size"),
        ] {
            if value == 0 {
                return Err(LearnerTrainerError::InvalidConfig {
                    what,
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_epochs_or_batches_are_refused() {
        assert!(LearnerTrainerConfig::new().check().is_ok());
        for config in [
            LearnerTrainerConfig::new().with_epochs(0),
            LearnerTrainerConfig::new().with_batch_size(0),
            LearnerTrainerConfig::new().with_predict_batch_size(0),
        ] {
            let error = config.check().expect_err("refused");
            assert!(error.to_string().contains("at least 1"), "{error}");
        }
    }
}
