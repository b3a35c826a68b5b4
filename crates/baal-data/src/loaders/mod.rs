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
#[cfg(feature = "image-folders")]
pub use folder::{FolderShape, ImageFolder};
pub use idx::*;
pub use image::{ImageDataset, ImageItem};
pub use numpy::*;

/// Where torchvision downloads MNIST's four `.gz` files from.
pub const MNIST_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
/// Fashion-MNIST's official address (Zalando Research), holding its four `.gz` files.
pub const FASHION_MNIST_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
/// CIFAR-10's binary archive, at the University of Toronto.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

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
