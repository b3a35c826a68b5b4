//! Runnable examples of baal for Rust and the reproduction runner behind `cargo xtask
//! reproduce`. The model zoo lives in `baal-zoo`; [`models`] and [`images`] re-export it for
//! the reproductions.
//!
//! - [`reproduce`]: the experiments of `cargo xtask reproduce`.

pub use baal_zoo::{images, models};
pub mod reproduce;
