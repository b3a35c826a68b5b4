//! Small runnable examples of baal for Rust; the programs are in `examples/examples/`, each
//! with a header saying what it shows and how to run it:
//!
//! - `quickstart`: baal's README example, step for step (Fashion-MNIST);
//!
//! The model zoo they use is the `baal-zoo` crate; the reproductions behind
//! `cargo xtask reproduce` are the `baal-reproduce` crate. This library is empty.
