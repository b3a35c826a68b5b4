//! Runnable examples of baal for Rust, the model zoo of the reproductions, and the
//! reproduction runner behind `cargo xtask reproduce`.
//!
//! - [`models`]: [`GalCnn`](models::GalCnn) (Gal et al. 2017), [`SmallCnn`](models::SmallCnn)
//!   (a LeNet-sized CNN for quick CPU runs), [`VggSmall`](models::VggSmall),
//!   [`Vgg16`](models::Vgg16) with MC dropout in its classifier, and [`Mlp`](models::Mlp); each
//!   implements [`Classifier`](baal::active::Classifier).
//! - [`images`]: batchers from [`ImageItem`](baal::data::ImageItem)s to normalised tensors.
//! - [`reproduce`]: the experiments of `cargo xtask reproduce`.

pub mod images;
pub mod models;
pub mod reproduce;
