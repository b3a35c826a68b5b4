//! The integration tests of baal-data, one binary (one link of Burn instead of one per file).

mod crash;
mod fashion_mnist;
mod image_dataset;
