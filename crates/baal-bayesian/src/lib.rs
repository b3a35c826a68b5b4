//! Bayesian layers (MC Dropout, MC DropConnect) and the MC sampler, on Burn.
//!
//! An approximate Bayesian posterior for active learning: layers that stay stochastic at
//! inference on every device, and a sampler that runs a model `T` times over the unlabelled
//! pool and stacks its predictions `[N, C, T]` (pool items, classes, MC iterations) on the
//! device, ready for `baal_heuristics::Predictions::from_probs`.
//!
//! - Layers (Burn `Config` + `Module` pairs, usable in any `#[derive(Module)]`):
//!   [`McDropout`], [`McDropout2d`], [`ConsistentMcDropout`], [`ConsistentMcDropout2d`],
//!   [`DropConnectLinear`], [`DropConnectConv2d`], and [`McDropConnect`], which applies
//!   DropConnect to every weight of an existing module.
//! - Every stochastic layer's forward takes a [`McContext`]: which MC iteration and pool item
//!   each row of the batch stands for. Masks derive from `(seed, layer, iteration, item)`
//!   through our own ChaCha8 streams, so predictions are reproducible and independent of the
//!   batch size, the memory budget and the replication; [`McContext::training`] draws from
//!   the device generator instead, for training.
//! - A model implements [`StochasticModel`]: a deterministic trunk, run once per input, and a
//!   stochastic head, run per MC iteration over replicated batches.
//! - [`McSampler`] (built from [`McSamplerConfig`]) predicts a batch or a Burn `Dataset`.
//! - [`on_flex_workers`] runs work on flex's own threads: on the CPU, call the sampler (or a
//!   whole active-learning loop) inside it.
//!
//! ```
//! use baal_bayesian::{McContext, McDropout, McDropoutConfig, McSamplerConfig, StochasticModel};
//! use burn::module::Module;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Tensor};
//!
//! #[derive(Module, Debug)]
//! struct Regressor {
//!     dropout: McDropout,
//!     linear: Linear,
//! }
//!
//! impl StochasticModel for Regressor {
//!     type Input = Tensor<2>;
//!     type Features = Tensor<2>;
//!     type Output = Tensor<2>;
//!
//!     fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
//!         input // the first layer is already stochastic
//!     }
//!
//!     fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
//!         self.linear.forward(self.dropout.forward(input, mc))
//!     }
//! }
//!
//! # fn main() -> baal_bayesian::Result<()> {
//! let device = Device::default();
//! let model = Regressor {
//!     dropout: McDropoutConfig::new(0.2).init()?,
//!     linear: LinearConfig::new(8, 3).init(&device),
//! };
//! let sampler = McSamplerConfig::new(10).init()?;
//! let probs = sampler.predict_batch(&model, Tensor::<2>::ones([4, 8], &device))?;
//! assert_eq!(probs.dims(), [4, 3, 10]);
//! // Same seed, same predictions.
//! let again = sampler.predict_batch(&model, Tensor::<2>::ones([4, 8], &device))?;
//! assert_eq!(probs.into_data(), again.into_data());
//! # Ok(())
//! # }
//! ```

mod adam;
mod burn_dropout;
mod context;
mod drop_connect;
mod dropout;
mod embed;
mod error;
mod model;
mod progress;
mod sampler;
pub mod seeds;
mod weight_drop;
mod workers;

pub use adam::FusedAdam;
pub use burn_dropout::{BurnDropout, BurnDropoutModel};
pub use context::McContext;
pub use drop_connect::{
    DropConnectConv2d, DropConnectConv2dConfig, DropConnectLinear, DropConnectLinearConfig,
};
pub use dropout::{
    ConsistentMcDropout, ConsistentMcDropout2d, ConsistentMcDropout2dConfig,
    ConsistentMcDropoutConfig, McDropout, McDropout2d, McDropout2dConfig, McDropoutConfig,
};
pub use embed::embed_dataset_chunks;
pub use error::{BayesianError, Result};
pub use model::{McBatch, McOutput, OutputActivation, StochasticModel};
pub use progress::{Progress, ProgressGuard, ProgressSink};
pub use sampler::{
    DEFAULT_REPLICATED_PASS_MEMORY_BUDGET, McPredictions, McSampler, McSamplerConfig,
};
pub use seeds::SeedPlan;
pub use weight_drop::{DropConnectModel, McDropConnect, McDropConnectConfig};
pub use workers::{is_flex, on_flex_workers};
