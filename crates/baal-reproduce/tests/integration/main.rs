//! The integration tests of the reproductions, one binary (one link of Burn instead of one per
//! file).

#[cfg(feature = "download")]
mod data_sources;
mod reproduction;
