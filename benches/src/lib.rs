//! Shared set-up for the criterion benchmarks: the device under test and seeded inputs.

use baal::burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The benches allocate as the `baal` and `reproduce` binaries do (feature `mimalloc`, on by
/// default): training allocates and frees megabytes per op, which glibc's malloc serves with
/// fresh pages from the kernel each time (docs/benchmarks.md, "Allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// A pool of `len` generated 28×28 images: Fashion-MNIST's training images (or, where they
/// are not installed, seeded random images) cycled, each with its own Gaussian noise of
/// standard deviation `sigma` (in normalised units) drawn from its index. Items are made on
/// demand, so the pool holds no memory of its own beyond the 60 000 base images.
pub struct NoisyPool {
    base: std::sync::Arc<Vec<f32>>,
    base_len: usize,
    len: usize,
    sigma: f32,
}

impl NoisyPool {
    /// Pixels per image.
    pub const PIXELS: usize = 28 * 28;

    /// `len` noisy images.
    pub fn new(len: usize, sigma: f32) -> Self {
        let (mean, std) = (0.2860f32, 0.3530f32);
        let base: Vec<f32> = match baal::data::FashionMnist::from_default_dir() {
            Ok(data) => {
                use baal::burn::data::dataset::Dataset;
                (0..data.train.len())
                    .filter_map(|i| data.train.get(i).ok())
                    .flat_map(|item| item.image.into_iter())
                    .map(|p| (f32::from(p) / 255.0 - mean) / std)
                    .collect()
            }
            Err(_) => {
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                (0..60_000 * Self::PIXELS)
                    .map(|_| (rng.random::<f32>() - mean) / std)
                    .collect()
            }
        };
        Self {
            base_len: base.len() / Self::PIXELS,
            base: std::sync::Arc::new(base),
            len,
            sigma,
        }
    }
}

impl baal::burn::data::dataset::Dataset<Vec<f32>> for NoisyPool {
    fn get(&self, index: usize) -> Result<Vec<f32>, baal::burn::data::dataset::DatasetError> {
        if index >= self.len {
            return Err(baal::burn::data::dataset::DatasetError::new(
                baal::data::DataError::IndexOutOfRange {
                    kind: "noisy pool",
                    index,
                    len: self.len,
                },
            ));
        }
        let start = (index % self.base_len) * Self::PIXELS;
        let mut rng = ChaCha8Rng::seed_from_u64(index as u64);
        Ok(self.base[start..start + Self::PIXELS]
            .iter()
            .map(|&p| {
                let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
                p + self.sigma * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect())
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Stacks [`NoisyPool`] items into a `[B, 1, 28, 28]` batch.
pub fn noisy_batcher() -> baal::active::InputBatcher<Vec<f32>, Tensor<4>> {
    std::sync::Arc::new(|items: Vec<Vec<f32>>, device: &Device| {
        let n = items.len();
        Tensor::from_data(TensorData::new(items.concat(), [n, 1, 28, 28]), device)
    })
}

/// The process's resident memory now and its peak since the last [`reset_peak_rss`], in
/// bytes (Linux; `None` elsewhere).
pub fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak resident memory that [`rss`] reports (Linux's `clear_refs` 5).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The zoo's small CNN (seeded weights) on `device` with the [`NoisyPool`] batcher, batches
/// of 256: the pool-scoring bench's and the `pool_million` example's model.
pub fn noisy_pool_predictor(
    device: &Device,
) -> baal::active::ModelPredictor<baal_zoo::models::SmallCnn, Vec<f32>> {
    device.seed(0);
    baal::active::ModelPredictor {
        model: baal_zoo::models::SmallCnnConfig::new()
            .init(device)
            .expect("valid model"),
        batcher: noisy_batcher(),
        device: device.clone(),
        batch_size: 256,
    }
}
