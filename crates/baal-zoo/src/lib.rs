//! The model zoo of baal for Rust: Bayesian (MC dropout) classifiers and the batchers that feed
//! them images.
//!
//! - [`models`]: [`GalCnn`](models::GalCnn) (Gal et al. 2017), [`SmallCnn`](models::SmallCnn)
//!   (a LeNet-sized CNN for quick CPU runs), [`VggSmall`](models::VggSmall),
//!   [`Vgg16`](models::Vgg16) with MC dropout in its classifier (and torchvision's ImageNet
//!   weights), and [`Mlp`](models::Mlp); each implements
//!   [`Classifier`](baal_active::Classifier).
//! - [`images`]: batchers from [`ImageItem`](baal_data::ImageItem)s to normalised tensors.

pub mod images;
pub mod models;
