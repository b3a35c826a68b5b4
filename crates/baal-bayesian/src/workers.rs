//! Running work on flex's own threads.

use burn::tensor::Device;

/// Runs `work` on a thread of rayon's global pool when `device` is flex's (directly or under
/// autodiff) and this thread is not already one of its workers; runs it here otherwise.
/// Returns what `work` returns.
///
/// flex runs its large ops (the zoo's convolutions, `gemm`'s products) on rayon's global
/// pool. Called from a thread outside the pool, each such op hands its work over, wakes the
/// sleeping workers and puts the calling thread to sleep until the last piece is done, and
/// the serial code between the ops (element-wise ops, random draws, the optimizer) then runs
/// on that thread while the workers go back to sleep; a worker that wakes late leaves its
/// share to finish after the other's. Called from a worker, an op starts on that thread at
/// once and only the other workers need waking. On the 2-core machine of
/// docs/benchmarks.md, a Gal CNN training step was 10–13% faster run this way.
///
/// The values are the same: which thread runs a piece of an op does not change how the op
/// splits its work (ours split into fixed pieces), nor the order of any sum.
pub fn on_flex_workers<R: Send>(device: &Device, work: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "flex")]
    if is_flex(device) && rayon::current_thread_index().is_none() {
        return rayon::scope(|_| work());
    }
    #[cfg(not(feature = "flex"))]
    let _ = device;
    work()
}

/// Whether `device` is flex's, directly or under autodiff; `false` in a build without the
/// `flex` feature.
pub fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        device.clone().without_autodiff() == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_work_runs_on_a_worker_of_the_global_pool_and_nests_in_place() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            assert_eq!(rayon::current_thread_index(), None);
            let (outer, inner) = on_flex_workers(&device, || {
                let outer = (rayon::current_thread_index(), std::thread::current().id());
                let inner = on_flex_workers(&device, || {
                    (rayon::current_thread_index(), std::thread::current().id())
                });
                (outer, inner)
            });
            assert!(outer.0.is_some(), "not on a worker of the global pool");
            assert_eq!(inner, outer, "a nested call moved to another thread");
        }
    }
}
