//! Acquisition heuristics for Bayesian active learning, on Burn tensors.
//!
//! A model's MC predictions on the unlabelled pool, `[N, C, T]` (pool items, classes, MC
//! iterations), are validated once into [`Predictions`]; any [`Heuristic`] then scores, ranks
//! or selects pool items on the predictions' device (CPU, CUDA, Vulkan, Metal, ...). Only
//! scores and indices come back to the host.
//!
//! [`CoreSet`] and [`Badge`] choose a batch by the model's embeddings of the pool instead
//! ([`Heuristic::needs_embeddings`], [`Heuristic::select_with_embeddings`]), streaming over
//! pools larger than memory through an [`EmbeddingSource`].
//!
//! ```
//! use baal_heuristics::{Bald, Heuristic, Predictions};
//! use burn::tensor::{Device, Tensor};
//!
//! # fn main() -> Result<(), baal_heuristics::HeuristicError> {
//! let device = Device::default();
//! // 3 pool items, 2 classes, 2 MC iterations.
//! let probs = Tensor::<3>::from_floats(
//!     [
//!         [[0.5, 0.5], [0.5, 0.5]], // undecided, and every sample agrees
//!         [[1.0, 0.0], [0.0, 1.0]], // samples are confident and disagree
//!         [[1.0, 1.0], [0.0, 0.0]], // confident and agreeing
//!     ],
//!     &device,
//! );
//! let predictions = Predictions::from_probs(probs)?;
//! let ranking = Bald.rank(&predictions, None)?;
//! assert_eq!(ranking.positions()[0], 1);
//! # Ok(())
//! # }
//! ```

mod bald;
mod base;
mod batch_bald;
mod certainty;
mod combine;
mod diversity;
mod draws;
mod entropy;
mod epig;
mod error;
#[cfg(feature = "ndarray")]
mod interop;
mod kernels;
mod kind;
mod margin;
mod ops;
mod precomputed;
mod predictions;
mod random;
mod ranking;
mod reduction;
mod stochastic;
mod streaming;
mod variance;
mod variation_ratio;

pub use bald::Bald;
pub use base::Heuristic;
pub use batch_bald::BatchBald;
pub use certainty::Certainty;
pub use combine::CombineHeuristics;
pub use diversity::{
    Badge, ClassProbabilities, CoreSet, EmbeddingInput, EmbeddingSource, Embeddings,
    ProbabilitySource,
};
pub use entropy::Entropy;
pub use epig::Epig;
pub use error::{HeuristicError, Result};
#[cfg(feature = "ndarray")]
pub use interop::{NdElement, ScoresArray};
pub use kind::{HeuristicKind, HeuristicParams};
pub use margin::Margin;
pub use precomputed::Precomputed;
pub use predictions::{DEFAULT_SCORING_MEMORY_BUDGET, PredictionKind, Predictions};
pub use random::Random;
pub use ranking::{Orientation, Ranking, Selection};
pub use reduction::{Reduction, SUM_TOLERANCE};
pub use stochastic::{SamplingRule, StochasticSampling};
pub use streaming::{Candidates, DEFAULT_CANDIDATES_PER_PICK, PoolScorer, PoolScores};
pub use variance::Variance;
pub use variation_ratio::VariationRatio;
