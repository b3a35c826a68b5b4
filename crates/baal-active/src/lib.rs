//! The active-learning loop on Burn: train on the labelled items, MC-predict the pool, rank it
//! with a heuristic, have an oracle label the top of the ranking, repeat.
//!
//! - [`Trainer`] fits any [`Classifier`] (a Burn module that is also a
//!   [`StochasticModel`](baal_bayesian::StochasticModel)) on the labelled view with SGD +
//!   momentum, Adam or AdamW on an autodiff device, at a constant rate or along an
//!   [`LrSchedule`] after a warm-up, resets its weights before each fit (baal's default) and
//!   evaluates loss, accuracy, NLL and ECE ([`EvalMetrics`]).
//! - [`ActiveLearningLoop`] does one acquisition [`step`](ActiveLearningLoop::step): predict,
//!   rank, label through an [`Oracle`] ([`KnownLabels`] for simulations, [`CallbackOracle`],
//!   or [`PendingQueue`] for labels given later by a person), checkpoint. Any [`Predictor`]
//!   works, so a model trained with burn-train's `Learner` plugs in through
//!   [`ModelPredictor`].
//! - [`StoppingCriterion`]s: [`LabellingBudget`], [`LowAverageUncertainty`], [`EarlyStopping`],
//!   [`PredictionStability`] (without labels).
//! - [`score_pool_range`] scores one contiguous range of a pool, its MC masks keyed by dataset
//!   indices: one shard of a pool split across processes (the shard files, their manifest and
//!   the merge belong to the tool, in the facade's `baal::shard`).
//! - [`Experiment`] runs steps until one stops it, logs each step to `log.jsonl` and
//!   `log.csv`, plots `curve.svg`, and resumes from `state.json` after a crash: of a
//!   classifier ([`Experiment::new`]), a segmentation model ([`Experiment::segmentation`],
//!   with mean IoU) or a regression model ([`Experiment::regression`], with the MSE).
//! - [`RunState`]: what either saves to resume — the dataset state, the loop's state (steps,
//!   the heuristic's random draws, the pending query) and an experiment's progress.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use baal_active::*;
//! # use baal_data::{ActiveLearningDataset, FashionMnist, ImageItem};
//! # fn run<M: Classifier<Input = burn::tensor::Tensor<4>>>(model: M, batcher: InputBatcher<ImageItem, burn::tensor::Tensor<4>>) -> Result<()> {
//! let data = FashionMnist::from_default_dir()?;
//! let mut dataset = ActiveLearningDataset::new(data.train.clone())
//!     .with_known_labels(|item: &ImageItem| item.label)
//!     .with_seed(0);
//! dataset.label_randomly(20)?;
//! let device = burn::tensor::Device::default();
//! let mut trainer = Trainer::new(model, &device, batcher, TrainerConfig::default())?;
//! let mut active = ActiveLearningLoop::new(baal_heuristics::Bald, 10)?.with_max_sample(2000);
//! loop {
//!     trainer.fit(&dataset.labelled())?;
//!     if !active.step(&mut dataset, &trainer)?.can_continue || dataset.n_labelled() >= 200 {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod active_loop;
mod calibration;
mod embeddings_file;
mod ensemble;
mod error;
mod experiment;
mod experiment_task;
mod metrics;
mod oracle;
mod plot;
mod range_scoring;
mod record;
mod run_state;
mod stopping;
mod tasks;
mod trainer;
mod training_set;
mod traits;
mod uncertainty;

pub use active_loop::{ActiveLearningLoop, StepOutcome, predicted_classes, score_pool};
/// The heuristic registry lives with the heuristics; re-exported for the loop's users.
pub use baal_heuristics::{HeuristicKind, HeuristicParams};
pub use calibration::{
    CalibratedPredictor, CalibrationReport, DirichletCalibrator, DirichletCalibratorConfig,
};
pub use embeddings_file::NpyEmbeddings;
pub use ensemble::{DEFAULT_ENSEMBLE_WINDOW, EnsemblePredictor, Posterior, initialised};
pub use error::{ActiveError, Result};
pub use experiment::{Experiment, ExperimentSummary};
pub use experiment_task::{REPORT_TOP_K, TestTarget};
pub use metrics::{
    ClassMetrics, ClassificationReport, ECE_BINS, EvalMetrics, classification_metrics,
    classification_report, mean_iou,
};
pub use oracle::{CallbackOracle, KnownLabels, PendingQueue};
pub use plot::{Curve, plot_learning_curves};
pub use range_scoring::score_pool_range;
pub use record::StepRecord;
pub use run_state::{ExperimentProgress, LoopState, RUN_STATE_FORMAT_VERSION, RunState};
pub use stopping::{
    EarlyStopping, LabellingBudget, LowAverageUncertainty, Metric, PredictionStability,
    cohens_kappa,
};
pub use tasks::{RegressionPredictor, SegmentationPredictor, regression_loss, segmentation_loss};
pub use trainer::{
    EarlyStoppingConfig, FitReport, LearningRates, LrSchedule, ModelPredictor, OptimizerConfig,
    Trainer, TrainerConfig, ValidationMetric,
};
pub use traits::{
    ClassLabel, Classifier, InputBatcher, Label, Oracle, OracleOutcome, Predictor,
    StoppingCriterion, Trainable,
};
pub use uncertainty::UncertaintyStep;
