//! The integration tests of baal-bayesian, one binary (one link of Burn instead of one per
//! file). Tests that draw from the device's generator hold [`serial`]: it is one per process.

mod burn_dropout;
mod sampler;
mod training_masks;

/// Holds the device's random generator for one test: a test that seeds it and then draws
/// from it (weights, Burn's dropout masks) is reproducible only while no other test of the
/// binary draws in between.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
