//! MC inference throughput: forward passes per second (pool items × MC iterations / time),
//! reported by criterion as elements per second, on `BAAL_BENCH_DEVICE` (default `cpu`).
//!
//! - `mc_inference/gal_cnn_28x28/T20`: the model zoo's [`GalCnn`] (Gal & Ghahramani's MNIST
//!   CNN: conv32 4×4 – relu – conv32 4×4 – relu – maxpool 2 – dropout .25 – dense 128 – relu
//!   – dropout .5 – dense 10), a pool of 2000 images, batches of 64, T = 20.
//! - `mc_inference/vgg_small_32x32/T20`: the zoo's [`VggSmall`] (three VGG blocks of two 3×3
//!   convs of 32, 64, 128 channels + maxpool 2, then dense 256 – dropout – dense 256 –
//!   dropout – dense 10), a pool of 1000 images, batches of 64, T = 20.
//!
//! Each also runs as `…/on_flex_workers`: the same, called from flex's own threads
//! (`baal_bayesian::on_flex_workers`), as `reproduce` and the `baal` tool call the sampler.
//!
//! Both run with the sampler's defaults: the deterministic trunk (everything before the first
//! dropout) runs once per image, the stochastic head runs over the 20 replicas in one pass.
//! Data and models are built outside the timed closure; the device is synced before the clock
//! stops.

use std::hint::black_box;

use baal::bayesian::{McPredictions, McSampler, McSamplerConfig, StochasticModel, on_flex_workers};
use baal::burn::tensor::{Device, Distribution, Tensor};
use baal_benches::bench_device;
use baal_zoo::models::{GalCnn, GalCnnConfig, VggSmall, VggSmallConfig};
use criterion::{Criterion, Throughput, criterion_main};

const ITERATIONS: usize = 20;
const BATCH: usize = 64;

/// Predicts the whole pool batch by batch, as `McSampler::predict_dataset` does, and waits
/// for the device.
fn predict_pool<M: StochasticModel<Input = Tensor<4>>>(
    sampler: &McSampler,
    model: &M,
    pool: &Tensor<4>,
    device: &Device,
) -> Vec<McPredictions<M>> {
    let items = pool.dims()[0];
    let predictions = (0..items)
        .step_by(BATCH)
        .map(|start| {
            let len = BATCH.min(items - start);
            sampler
                .predict_items(model, pool.clone().narrow(0, start, len), start)
                .expect("valid batch")
        })
        .collect();
    device.sync().expect("device sync");
    predictions
}

fn bench_model<M: StochasticModel<Input = Tensor<4>, Output = Tensor<2>> + Sync>(
    criterion: &mut Criterion,
    id: &str,
    model: &M,
    pool_shape: [usize; 4],
    device: &Device,
) {
    let pool = Tensor::<4>::random(pool_shape, Distribution::Default, device);
    let sampler = McSamplerConfig::new(ITERATIONS)
        .init()
        .expect("valid sampler config");
    let mut group = criterion.benchmark_group("mc_inference");
    group
        .sample_size(10)
        .throughput(Throughput::Elements((pool_shape[0] * ITERATIONS) as u64));
    group.bench_function(id, |bencher| {
        bencher.iter(|| black_box(predict_pool(&sampler, model, &pool, device)));
    });
    // The same, called from flex's own threads, as `reproduce` and the `baal` tool call it.
    group.bench_function(format!("{id}/on_flex_workers"), |bencher| {
        bencher.iter(|| {
            black_box(on_flex_workers(device, || {
                predict_pool(&sampler, model, &pool, device)
            }))
        });
    });
    group.finish();
}

fn mc_inference(criterion: &mut Criterion) {
    let device = bench_device();
    let gal: GalCnn = GalCnnConfig::new().init(&device).expect("valid model");
    bench_model(
        criterion,
        "gal_cnn_28x28/T20",
        &gal,
        [2000, 1, 28, 28],
        &device,
    );
    let vgg: VggSmall = VggSmallConfig::new().init(&device).expect("valid model");
    bench_model(
        criterion,
        "vgg_small_32x32/T20",
        &vgg,
        [1000, 3, 32, 32],
        &device,
    );
}

/// Criterion's generated group function carries no doc comment.
mod group {
    #![allow(missing_docs)]
    use super::mc_inference;
    use criterion::criterion_group;
    criterion_group!(benches, mc_inference);
}

criterion_main!(group::benches);
