//! Small runnable examples of baal for Rust. The programs are in `examples/examples/`, each
//! with a header saying what it shows and how to run it (all need the default `flex`
//! feature):
//!
//! - `quickstart`: baal's README example, step for step (needs Fashion-MNIST);
//! - `mc_predictions`: MC-dropout predictions of a zoo model on a few Fashion-MNIST test
//!   images, with how much the samples agree and their BALD scores (needs Fashion-MNIST);
//! - `custom_model`: your own Burn model written from scratch, made Bayesian with
//!   `McDropout`, MC-sampled with `McSamplerConfig` and ranked with BALD (synthetic data).
//!
//! The model zoo they use is the `baal-zoo` crate; the reproductions behind
//! `cargo xtask reproduce` are the `baal-reproduce` crate. This library is empty.
