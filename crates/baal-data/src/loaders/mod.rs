//! Loaders of public datasets and numpy arrays, each a Burn `Dataset` of `{ image, label }`-like
//! items, with errors naming the file and what is wrong in it. The files are parsed by
//! [`crate::formats`].

mod cifar;
#[cfg(feature = "download")]
mod download;
#[cfg(feature = "image-folders")]
mod folder;
mod idx;
mod image;
mod numpy;

pub use cifar::*;
#[cfg(feature = "download")]
pub use download::{FASHION_MNIST_URL, MNIST_URL};
#[cfg(feature = "image-folders")]
pub use folder::{FolderShape, ImageFolder};
pub use idx::*;
pub use image::{ImageDataset, ImageItem};
pub use numpy::*;

/// The label of item `index`, or the out-of-range error every loader's `Dataset::get` gives.
fn item_label<L>(labels: &[L], index: usize) -> Result<&L, burn::data::dataset::DatasetError> {
    labels.get(index).ok_or_else(|| {
        burn::data::dataset::DatasetError::new(crate::error::DataError::IndexOutOfRange {
            kind: "dataset",
            index,
            len: labels.len(),
        })
    })
}
