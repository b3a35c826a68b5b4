//! The integration tests of baal-active, one binary (each module was its own before; one binary
//! links Burn once). Every test that draws from the device's generator (weights, training
//! masks) holds [`common::serial`]: the generator is one per process.

mod active_loop;
mod calibration;
mod common;
mod consistent_samples;
mod ensemble;
mod experiment;
mod streaming;
mod tasks;
mod trainer_recipe;
