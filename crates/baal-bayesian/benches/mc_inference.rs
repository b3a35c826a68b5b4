//! MC inference throughput on the flex CPU backend: forward passes per second
//! (pool items × MC iterations / time), reported by criterion as elements per second.
//!
//! - `mc_inference/gal_cnn_28x28/T20`: Gal & Ghahramani's MNIST CNN
//!   (conv32 4×4 – relu – conv32 4×4 – relu – maxpool 2 – dropout .25 – dense 128 – relu –
//!   dropout .5 – dense 10), a pool of 2000 images, batches of 64, T = 20.
//! - `mc_inference/vgg_small_32x32/T20`: three VGG blocks (two 3×3 convs of 32, 64, 128
//!   channels + maxpool 2), then dense 256 – dropout – dense 256 – dropout – dense 10, a pool of
//!   1000 images, batches of 64, T = 20.
//!
//! Both run with the sampler's defaults: the deterministic trunk (everything before the first
//! dropout) runs once per image, the stochastic head runs over the 20 replicas in one pass.
//! Data and models are built outside the timed closure; the device is synced before the clock
//! stops.

use std::hint::black_box;

use baal_bayesian::{
    McContext, McDropout, McDropoutConfig, McSampler, McSamplerConfig, StochasticModel,
};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, Throughput, criterion_main};

const ITERATIONS: usize = 20;
const BATCH: usize = 64;

/// Gal & Ghahramani's MNIST CNN.
#[derive(Module, Debug)]
struct GalCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    dropout1: McDropout,
    dense1: Linear,
    dropout2: McDropout,
    dense2: Linear,
}

impl GalCnn {
    fn new(device: &Device) -> baal_bayesian::Result<Self> {
        Ok(Self {
            conv1: Conv2dConfig::new([1, 32], [4, 4]).init(device),
            conv2: Conv2dConfig::new([32, 32], [4, 4]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dropout1: McDropoutConfig::new(0.25).init()?,
            dense1: LinearConfig::new(32 * 11 * 11, 128).init(device),
            dropout2: McDropoutConfig::new(0.5).init()?,
            dense2: LinearConfig::new(128, 10).init(device),
        })
    }
}

impl StochasticModel for GalCnn {
    type Input = Tensor<4>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, images: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(images));
        let x = relu(self.conv2.forward(x));
        self.pool.forward(x).flatten(1, 3)
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let x = self.dropout1.forward(features, mc);
        let x = relu(self.dense1.forward(x));
        let x = self.dropout2.forward(x, mc);
        self.dense2.forward(x)
    }
}

/// A small VGG: three blocks of two 3×3 convolutions and a max-pool, then a dense head.
#[derive(Module, Debug)]
struct VggSmall {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    dense1: Linear,
    dropout1: McDropout,
    dense2: Linear,
    dropout2: McDropout,
    dense3: Linear,
}

impl VggSmall {
    fn new(device: &Device) -> baal_bayesian::Result<Self> {
        let conv = |channels: [usize; 2]| {
            Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Ok(Self {
            convs: vec![
                conv([3, 32]),
                conv([32, 32]),
                conv([32, 64]),
                conv([64, 64]),
                conv([64, 128]),
                conv([128, 128]),
            ],
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dense1: LinearConfig::new(128 * 4 * 4, 256).init(device),
            dropout1: McDropoutConfig::new(0.5).init()?,
            dense2: LinearConfig::new(256, 256).init(device),
            dropout2: McDropoutConfig::new(0.5).init()?,
            dense3: LinearConfig::new(256, 10).init(device),
        })
    }
}

impl StochasticModel for VggSmall {
    type Input = Tensor<4>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    /// The convolutions and the first dense layer come before the first dropout.
    fn trunk(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for block in self.convs.chunks(2) {
            x = relu(block[0].forward(x));
            x = relu(block[1].forward(x));
            x = self.pool.forward(x);
        }
        relu(self.dense1.forward(x.flatten(1, 3)))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let x = self.dropout1.forward(features, mc);
        let x = relu(self.dense2.forward(x));
        let x = self.dropout2.forward(x, mc);
        self.dense3.forward(x)
    }
}

/// Predicts the whole pool batch by batch, as `McSampler::predict_dataset` does, and waits
/// for the device.
fn predict_pool<M: StochasticModel<Input = Tensor<4>>>(
    sampler: &McSampler,
    model: &M,
    pool: &Tensor<4>,
    device: &Device,
) -> Vec<baal_bayesian::McPredictions<M>> {
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

fn bench_model<M: StochasticModel<Input = Tensor<4>>>(
    criterion: &mut Criterion,
    id: &str,
    model: &M,
    pool_shape: [usize; 4],
) {
    let device = Device::default();
    let pool = Tensor::<4>::random(pool_shape, Distribution::Default, &device);
    let sampler = McSamplerConfig::new(ITERATIONS)
        .with_show_progress(false)
        .init()
        .expect("valid sampler config");
    let mut group = criterion.benchmark_group("mc_inference");
    group
        .sample_size(10)
        .throughput(Throughput::Elements((pool_shape[0] * ITERATIONS) as u64));
    group.bench_function(id, |bencher| {
        bencher.iter(|| black_box(predict_pool(&sampler, model, &pool, &device)));
    });
    group.finish();
}

fn mc_inference(criterion: &mut Criterion) {
    let device = Device::default();
    let gal = GalCnn::new(&device).expect("valid model");
    bench_model(criterion, "gal_cnn_28x28/T20", &gal, [2000, 1, 28, 28]);
    let vgg = VggSmall::new(&device).expect("valid model");
    bench_model(criterion, "vgg_small_32x32/T20", &vgg, [1000, 3, 32, 32]);
}

/// Criterion's generated group function carries no doc comment.
mod group {
    #![allow(missing_docs)]
    use super::mc_inference;
    use criterion::criterion_group;
    criterion_group!(benches, mc_inference);
}

criterion_main!(group::benches);
