//! The integration tests of baal-heuristics, one binary (one link of Burn instead of one per
//! file).

mod common;
mod heuristics;
#[cfg(feature = "ndarray")]
mod ndarray_interop;
mod streaming;
