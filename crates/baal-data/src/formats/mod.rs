//! File formats: readers (and writers) of the bytes of numpy's `.npy`, IDX (MNIST and the
//! like) and CIFAR-10's binary batches. Each parser takes bytes and says in its error what is
//! wrong with them; [`crate::loaders`] builds datasets from what they read.
//!
//! The encoders that exist only to write test fixtures (`encode_idx`, `encode_cifar10_batch`)
//! are behind the `test-util` feature; the `.npy` writer is always there, for tools.

pub mod cifar;
pub mod idx;
pub mod npy;
