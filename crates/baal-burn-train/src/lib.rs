//! Drive baal's active-learning loop with a model trained by burn-train's `Learner`.
//!
//! burn-train trains a model that implements its `TrainStep` and `InferenceStep` with an
//! optimizer, a learning-rate scheduler and metrics, all held by a
//! [`Learner`](burn::train::Learner). The loop of `baal-active` needs three things from the
//! training side between its steps: put the initial weights back, fit on the labelled items,
//! and MC-predict the pool. [`LearnerTrainer`] does them with burn-train:
//!
//! - every [`fit`](LearnerTrainer::fit) trains a copy of the learner as it was given (initial
//!   weights, fresh optimizer state, scheduler from its first step; baal resets between
//!   steps) for [`LearnerTrainerConfig::epochs`], through burn-train's
//!   `SupervisedTraining` with a dataloader built from the labelled view and your batcher;
//! - the model burn-train hands back is the loop's [`Predictor`](baal_active::Predictor): the
//!   MC sampler of `baal-bayesian` samples it as it samples a model of our own
//!   [`Trainer`](baal_active::Trainer) (through `BurnDropout` when its dropout is Burn's);
//! - burn-train stays quiet: no terminal UI or progress lines, no log or checkpoint files,
//!   unless you turn them on in [`with_training`](LearnerTrainer::with_training); each fit's
//!   epochs and metric values come back in a [`LearnerFitReport`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use baal_active::{ActiveLearningLoop, InputBatcher, Predictor};
//! # use baal_burn_train::{LearnerTrainer, LearnerTrainerConfig, TrainInput};
//! # use baal_data::{ActiveLearningDataset, LabelledItem};
//! # use baal_bayesian::StochasticModel;
//! # use burn::data::dataloader::batcher::Batcher;
//! # use burn::tensor::{Device, Tensor};
//! # use burn::train::{Learner, LearnerModel};
//! # fn run<M, B>(
//! #     learner: Learner<M>,
//! #     train_batcher: B,
//! #     input_batcher: InputBatcher<Vec<f32>, Tensor<2>>,
//! #     mut dataset: ActiveLearningDataset<Vec<f32>, u8>,
//! # ) -> Result<(), Box<dyn std::error::Error>>
//! # where
//! #     M: LearnerModel + StochasticModel<Input = Tensor<2>, Output = Tensor<2>>,
//! #     TrainInput<M>: Clone + std::fmt::Debug,
//! #     B: Batcher<LabelledItem<Vec<f32>, u8>, TrainInput<M>> + 'static,
//! # {
//! let device = Device::default();
//! let mut trainer = LearnerTrainer::new(
//!     learner,                   // burn-train's Learner: model, optimizer, scheduler
//!     &device,
//!     train_batcher,             // LabelledItem<I, L> -> the TrainStep batch
//!     input_batcher,             // pool items -> the model's input, for MC prediction
//!     LearnerTrainerConfig::new().with_epochs(5).with_batch_size(32),
//! )?;
//! let mut active = ActiveLearningLoop::new(baal_heuristics::Bald, 10)?;
//! for _ in 0..5 {
//!     let report = trainer.fit(&dataset.labelled())?;
//!     println!("{} epochs on {} labels", report.epochs, report.labelled);
//!     active.step(&mut dataset, &trainer)?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What it does not do: keep the weights between fits (every fit starts from the initial
//! learner); resize a learning-rate schedule to the labelled set (the scheduler restarts as it
//! was built each fit: size a schedule over iterations for the largest labelled set, or use
//! one over epochs); early stopping and calibration of our own `Trainer` (use burn-train's
//! early stopping with [`with_validation`](LearnerTrainer::with_validation)).

mod config;
mod error;
mod recorder;
mod trainer;

pub use config::LearnerTrainerConfig;
pub use error::{LearnerTrainerError, Result};
pub use trainer::{InferenceInput, LearnerFitReport, LearnerTrainer, TrainInput};
