//! The integration tests of baal-heuristics, one binary (one link of Burn instead of one per
//! file).

mod badge;
mod common;
mod coreset;
mod heuristics;
#[cfg(feature = "ndarray")]
mod ndarray_interop;
mod streaming;
