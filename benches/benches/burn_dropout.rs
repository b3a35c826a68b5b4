//! What MC-sampling a model written with Burn's own `burn::nn::Dropout` costs (through
//! [`BurnDropout`], on the autodiff device) against the same network built with our MC layers,
//! on `BAAL_BENCH_DEVICE` (default `cpu`), as forward passes per second (items × T / time).
//!
//! The network: 784 → 512 – relu – dropout .5 – 512 – relu – dropout .5 – 10, a pool of 2048
//! items in batches of 256, T = 20.
//!
//! - `burn_dropout/mc_dropout`: our `McDropout`, the first dense layer in the trunk (run once
//!   per item), the rest over the 20 replicas in one pass: what a model built on our layers
//!   gets.
//! - `burn_dropout/mc_dropout_no_trunk`: the same without trunk caching: the whole network
//!   runs 20 times, as Burn's dropout must.
//! - `burn_dropout/burn_dropout`: the plain Burn network through `BurnDropout`.

use std::hint::black_box;

use baal::bayesian::{
    BurnDropout, McContext, McDropout, McDropoutConfig, McSampler, McSamplerConfig, StochasticModel,
};
use baal::burn;
use baal::burn::module::Module;
use baal::burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use baal::burn::tensor::activation::relu;
use baal::burn::tensor::{Device, Distribution, Tensor};
use baal_benches::bench_device;
use criterion::{Criterion, Throughput, criterion_main};

const ITERATIONS: usize = 20;
const BATCH: usize = 256;
const POOL: usize = 2048;

/// The network with Burn's dropout.
#[derive(Module, Debug)]
struct BurnNet {
    first: Linear,
    second: Linear,
    dropout: Dropout,
    output: Linear,
}

impl BurnNet {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.dropout.forward(relu(self.first.forward(x)));
        let x = self.dropout.forward(relu(self.second.forward(x)));
        self.output.forward(x)
    }
}

/// The same network with our MC dropout.
#[derive(Module, Debug)]
struct McNet {
    first: Linear,
    second: Linear,
    dropout: McDropout,
    output: Linear,
}

impl StochasticModel for McNet {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        relu(self.first.forward(input))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let x = self.dropout.forward(features, mc);
        let x = self.dropout.forward(relu(self.second.forward(x)), mc);
        self.output.forward(x)
    }
}

fn predict_pool<M: StochasticModel<Input = Tensor<2>, Output = Tensor<2>>>(
    sampler: &McSampler,
    model: &M,
    pool: &Tensor<2>,
    device: &Device,
) -> Vec<Tensor<3>> {
    let predictions = (0..POOL)
        .step_by(BATCH)
        .map(|start| {
            sampler
                .predict_items(model, pool.clone().narrow(0, start, BATCH), start)
                .expect("valid batch")
        })
        .collect();
    device.sync().expect("device sync");
    predictions
}

fn burn_dropout(criterion: &mut Criterion) {
    let device = bench_device();
    device.seed(0);
    let (first, second, output) = (
        LinearConfig::new(784, 512).init(&device),
        LinearConfig::new(512, 512).init(&device),
        LinearConfig::new(512, 10).init(&device),
    );
    let mc = McNet {
        first: first.clone(),
        second: second.clone(),
        dropout: McDropoutConfig::new(0.5).init().expect("valid dropout"),
        output: output.clone(),
    };
    let burn_net = BurnDropout::new(
        BurnNet {
            first,
            second,
            dropout: DropoutConfig::new(0.5).init(),
            output,
        },
        &device,
    )
    .with_forward(|net: &BurnNet, x| net.forward(x));
    let pool = Tensor::<2>::random([POOL, 784], Distribution::Default, &device);
    let sampler = McSamplerConfig::new(ITERATIONS)
        .init()
        .expect("valid sampler");
    let no_trunk = McSamplerConfig::new(ITERATIONS)
        .with_cache_trunk(false)
        .init()
        .expect("valid sampler");

    let mut group = criterion.benchmark_group("burn_dropout");
    group
        .sample_size(10)
        .throughput(Throughput::Elements((POOL * ITERATIONS) as u64));
    group.bench_function("mc_dropout", |b| {
        b.iter(|| black_box(predict_pool(&sampler, &mc, &pool, &device)));
    });
    group.bench_function("mc_dropout_no_trunk", |b| {
        b.iter(|| black_box(predict_pool(&no_trunk, &mc, &pool, &device)));
    });
    group.bench_function("burn_dropout", |b| {
        b.iter(|| black_box(predict_pool(&sampler, &burn_net, &pool, &device)));
    });
    group.finish();
}

/// Criterion's generated group function carries no doc comment.
mod group {
    #![allow(missing_docs)]
    use super::burn_dropout;
    use criterion::criterion_group;
    criterion_group!(benches, burn_dropout);
}

criterion_main!(group::benches);
