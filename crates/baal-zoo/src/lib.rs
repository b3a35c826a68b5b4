//! The model zoo of baal for Rust: Bayesian (MC dropout) classifiers and the batchers that feed
//! them images.
//!
//! - [`models`]: [`GalCnn`](models::GalCnn) (Gal et al. 2017), [`SmallCnn`](models::SmallCnn)
//!   (a LeNet-sized CNN for quick CPU runs), [`VggSmall`](models::VggSmall),
//!   [`Vgg16`](models::Vgg16) with MC dropout in its classifier (and torchvision's ImageNet
//!   weights), and [`Mlp`](models::Mlp); each implements
//!   [`Classifier`](baal_active::Classifier).
//! - [`conv`]: [`conv2d`](conv::conv2d), a 2-D convolution with its own backward pass on the
//!   CPU (flex), which the models use, and any Burn `Conv2d` can (Burn's elsewhere);
//!   [`conv2d_relu`](conv::conv2d_relu), the same followed by a relu in one op.
//! - [`pool`]: [`max_pool2d`](pool::max_pool2d), 2-D max pooling with its own backward pass on
//!   the CPU (flex), which the models use (Burn's elsewhere).
//! - [`images`]: batchers from [`ImageItem`](baal_data::ImageItem)s to normalised tensors.
//! - [`folder`]: model folders (weights and a card) that `baal train` and `baal serve` write
//!   and `baal predict` and `baal serve --init-model` read.

pub mod conv;
pub mod folder;
pub mod images;
pub mod models;
pub mod pool;
