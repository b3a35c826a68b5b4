//! Loaders of public datasets and numpy arrays, each a Burn `Dataset` of `{ image, label }`-like
//! items, with errors naming the file and what is wrong in it.

mod cifar;
#[cfg(feature = "download")]
mod download;
mod idx;
mod image;
mod numpy;

pub use cifar::*;
pub use idx::*;
pub use image::{ImageDataset, ImageItem};
pub use numpy::*;
