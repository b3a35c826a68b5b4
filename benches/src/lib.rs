//! Shared set-up for the criterion benchmarks: the device under test and seeded inputs.

use baal::burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The device benchmarks run on: `BAAL_BENCH_DEVICE` (a [`baal::device::parse_device`] name),
/// else `cpu`.
///
/// # Panics
/// An unknown or not compiled-in device name: a benchmark cannot run without its device.
pub fn bench_device() -> Device {
    let name = std::env::var("BAAL_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    baal::device::parse_device(&name).unwrap_or_else(|e| panic!("BAAL_BENCH_DEVICE: {e}"))
}

/// Seeded MC probabilities `[n, c, t]`: a softmax over classes of normal logits times 2, the
/// same distribution as the Python baseline script uses.
pub fn random_probs(n: usize, c: usize, t: usize, seed: u64, device: &Device) -> Tensor<3> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = vec![0f32; n * c * t];
    let mut logits = vec![0f32; c];
    for item in 0..n {
        for it in 0..t {
            for l in logits.iter_mut() {
                // Box-Muller: a standard normal from two uniforms.
                let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
                *l = 2.0 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            }
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            for (class, l) in logits.iter().enumerate() {
                values[(item * c + class) * t + it] = (l - max).exp() / total;
            }
        }
    }
    Tensor::from_data(TensorData::new(values, [n, c, t]), device)
}
