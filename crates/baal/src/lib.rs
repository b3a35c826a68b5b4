//! # baal: Bayesian active learning on Burn
//!
//! Train on the labelled part of a pool, run the model many times with dropout switched on
//! to approximate its Bayesian posterior, score every unlabelled item by how much its label
//! would teach the model (BALD, BatchBALD, entropy, EPIG, ...) and hand the best ones to the
//! labeller. The same code runs on CPU (`flex`, default), wgpu (Vulkan, Metal), CUDA and
//! libtorch, picked at run time by the [`Device`](burn::tensor::Device).
//!
//! This facade re-exports the workspace's crates:
//! - [`heuristics`]: acquisition functions on `[N, C, T]` predictions;
//! - [`data`]: datasets and loaders;
//! - [`bayesian`]: MC dropout / DropConnect layers and the MC sampler;
//! - [`active`]: the trainer, the active-learning loop and resumable experiments;
//!
//! and offers [`device::parse_device`] to pick a backend by name, and [`shard`] to score a pool
//! in shards across processes and merge them (what `baal predict` and `baal merge` do).
//!
//! The rest of this page is the project README.
#![doc = include_str!("../../../README.md")]

pub mod device;
#[cfg(feature = "progress")]
pub mod progress;
pub mod shard;

pub use baal_active as active;
pub use baal_bayesian as bayesian;
pub use baal_data as data;
pub use baal_heuristics as heuristics;
pub use burn;

/// The types most programs need.
pub mod prelude {
    pub use crate::device::parse_device;
    pub use baal_active::{
        ActiveLearningLoop, Experiment, KnownLabels, Oracle, StoppingCriterion, Trainer,
        TrainerConfig,
    };
    pub use baal_heuristics::{
        Bald, BatchBald, Certainty, CombineHeuristics, Entropy, Epig, Heuristic, Margin,
        Orientation, Precomputed, Predictions, Random, Ranking, Reduction, SamplingRule, Selection,
        StochasticSampling, Variance,
    };
    pub use burn::tensor::{Device, Tensor};
}
