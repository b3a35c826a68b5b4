//! Data for active learning on Burn.
//!
//! - [`ActiveLearningDataset`] wraps any Burn dataset, splits it into labelled items and a pool,
//!   and gives [`LabelledView`] and [`PoolView`] views that are Burn datasets again (the
//!   labelled one optionally limited to the labels of the last steps, baal's
//!   `last_active_steps`: [`ActiveLearningDataset::labelled_last_steps`]).
//!   [`DatasetIndex`] and [`PoolIndex`] keep the two kinds of index apart.
//! - [`DatasetState`] is the labelling state (serde, versioned) and [`Checkpoint`] saves it
//!   atomically, so that labels survive crashes.
//! - [`loaders`]: IDX ([`Mnist`], [`FashionMnist`], EMNIST through
//!   [`ImageDataset::from_idx_files`]), [`Cifar10`] binary batches and [`NpyDataset`], with
//!   download helpers behind the `download` feature.
//! - [`formats`]: the file formats those loaders read (`.npy`, IDX, CIFAR-10 binary); test
//!   fixture encoders behind the `test-util` feature.
//! - [`source`]: [`DataSource`], a data argument parsed once (a [`NamedDataset`] with its
//!   splits, classes, published [`Normalization`] and the places its files are looked for, a
//!   `.npy` array or an image folder), and the balanced picks and fixed subsets of
//!   [`source::subsets`].
//! - [`checksum`]: SHA-256 of bytes and files in hex, for verified downloads and manifests.

pub mod checksum;
mod dataset;
mod error;
pub mod formats;
mod index;
mod last_steps;
pub mod loaders;
pub mod source;
mod state;
mod views;

pub use dataset::ActiveLearningDataset;
pub use error::{DataError, Result};
/// [`formats::npy`] at its former path, for code written against it.
#[doc(hidden)]
pub use formats::npy;
pub use formats::npy::{NpyArray, NpyData, NpyRows};
pub use index::{DatasetIndex, PoolIndex};
pub use loaders::{Cifar10, FashionMnist, ImageDataset, ImageItem, Mnist, NpyDataset, NpyItem};
#[cfg(feature = "image-folders")]
pub use loaders::{FolderShape, ImageFolder};
pub use source::subsets::{label_balanced, random_subset, stratified_subset};
pub use source::{DataSource, Locations, NamedDataset, Normalization, Splits};
pub use state::{
    Checkpoint, DatasetState, LabelRecord, STATE_FORMAT_VERSION, write_file_atomically,
};
pub use views::{LabelledItem, LabelledView, PoolView};
