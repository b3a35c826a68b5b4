//! The model zoo: Bayesian (MC dropout) classifiers for the reproductions.
//!
//! Each model splits into a deterministic trunk (run once per image by the MC sampler) and a
//! stochastic head (run T times), and implements [`Classifier`](baal_active::Classifier).

mod gal_cnn;
mod head;
mod kind;
pub use kind::{ModelKind, ModelVisitor};
mod mlp;
mod small_cnn;
mod vgg;

pub use gal_cnn::{GalCnn, GalCnnConfig};
pub use head::McDenseHead;
pub use mlp::{Mlp, MlpConfig};
pub use small_cnn::{SmallCnn, SmallCnnConfig};
pub use vgg::{Vgg16, Vgg16Config, VggSmall, VggSmallConfig};
