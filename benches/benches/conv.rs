//! Where a CNN's training step goes on the CPU: Burn's convolution ops at the zoo's layer
//! shapes, one by one, to set beside PyTorch's (`benches/torch/conv_ops.py` prints the same
//! ids). `BAAL_BENCH_DEVICE` picks the device (default `cpu`).
//!
//! Layers: `small1` (32×1×28×28, 16 filters 5×5) and `small2` (32×16×12×12, 32 filters 5×5) of
//! the small CNN at batch 32; `gal1` (64×1×28×28, 32 filters 4×4) and `gal2` (64×32×25×25, 32
//! filters 4×4) of the Gal CNN at batch 64. For each:
//! - `forward`: `conv2d`;
//! - `input_backward`: the input's gradient, as Burn's autodiff computes it (`conv_transpose2d`);
//! - `weight_backward`: the weights' gradient, as Burn's autodiff computes it (`conv2d` over the
//!   batch-swapped input with the output gradient as kernel);
//! - `train`: forward and backward through autodiff, input gradient only where a real network
//!   needs it (not for the first layer);
//! - `ours_forward` and `ours_train`: `forward` and `train` through our convolution
//!   ([`baal_zoo::conv::conv2d`]: im2col + one matmul per image, with its own backward pass),
//!   in the same run;
//! - `ours_train_pooled` (layers a 2×2 max-pool follows): `ours_train` with the output
//!   gradient such a pooling hands back, one value per window and three zeros, which our
//!   backward pass takes through its sparse kernels.
//!
//! The zoo's 2×2 max poolings after those layers (`pool/small1`: 32×16×24×24, `pool/small2`:
//! 32×32×8×8, `pool/gal`: 64×32×22×22): `train` (forward and the input's gradient through
//! autodiff) with Burn's `MaxPool2d::forward` and `ours_train` with
//! [`baal_zoo::pool::max_pool2d`]; `conv_ops.py` times PyTorch's `max_pool2d` the same way.

use std::hint::black_box;

use baal::burn::nn::conv::Conv2dConfig;
use baal::burn::nn::pool::MaxPool2dConfig;
use baal::burn::tensor::module::{conv_transpose2d, conv2d};
use baal::burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use baal::burn::tensor::{Device, Distribution, Tensor, TensorData};
use baal_benches::bench_device;
use criterion::{Criterion, criterion_main};

/// One convolution layer: batch, input channels, image side, filters, kernel side.
struct Layer {
    id: &'static str,
    batch: usize,
    channels: usize,
    side: usize,
    filters: usize,
    kernel: usize,
    /// Whether a relu and a 2×2 max-pool follow it in its network.
    pooled: bool,
}

const LAYERS: [Layer; 4] = [
    Layer {
        id: "small1",
        batch: 32,
        channels: 1,
        side: 28,
        filters: 16,
        kernel: 5,
        pooled: true,
    },
    Layer {
        id: "small2",
        batch: 32,
        channels: 16,
        side: 12,
        filters: 32,
        kernel: 5,
        pooled: true,
    },
    Layer {
        id: "gal1",
        batch: 64,
        channels: 1,
        side: 28,
        filters: 32,
        kernel: 4,
        pooled: false,
    },
    Layer {
        id: "gal2",
        batch: 64,
        channels: 32,
        side: 25,
        filters: 32,
        kernel: 4,
        pooled: true,
    },
];

/// `g` as a 2×2 max-pool hands it back: in each window of each map, one position (picked by
/// a hash of the window) keeps its value and the other three are zeros.
fn pooled(g: &Tensor<4>) -> Tensor<4> {
    let [n, o, h, w] = g.dims();
    let mask: Vec<f32> = (0..n * o * h * w)
        .map(|i| {
            let (map, y, x) = (i / (h * w), i / w % h, i % w);
            let window = (map * h + y / 2) * w + x / 2;
            let pick = (window as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 62;
            f32::from(u8::from((y % 2 * 2 + x % 2) as u64 == pick))
        })
        .collect();
    g.clone() * Tensor::from_data(TensorData::new(mask, [n, o, h, w]), &g.device())
}

fn read(tensor: Tensor<4>) {
    black_box(tensor.into_data());
}

fn bench_layer(criterion: &mut Criterion, layer: &Layer, device: &Device) {
    let out = layer.side - layer.kernel + 1;
    let random = |shape: [usize; 4], device: &Device| {
        Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device)
    };
    let x = random(
        [layer.batch, layer.channels, layer.side, layer.side],
        device,
    );
    let w = random(
        [layer.filters, layer.channels, layer.kernel, layer.kernel],
        device,
    );
    let g = random([layer.batch, layer.filters, out, out], device);
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let mut group = criterion.benchmark_group(format!("conv/{}", layer.id));
    group.sample_size(20);
    group.bench_function("forward", |b| {
        b.iter(|| read(conv2d(x.clone(), w.clone(), None, options.clone())))
    });
    group.bench_function("input_backward", |b| {
        let transpose = ConvTransposeOptions::new([1, 1], [0, 0], [0, 0], [1, 1], 1);
        b.iter(|| {
            read(conv_transpose2d(
                g.clone(),
                w.clone(),
                None,
                transpose.clone(),
            ))
        })
    });
    group.bench_function("weight_backward", |b| {
        b.iter(|| {
            let swapped = conv2d(
                x.clone().swap_dims(0, 1),
                g.clone().swap_dims(0, 1),
                None,
                options.clone(),
            );
            read(swapped.swap_dims(0, 1))
        })
    });
    let autodiff = device.clone().autodiff();
    let conv =
        Conv2dConfig::new([layer.channels, layer.filters], [layer.kernel; 2]).init(&autodiff);
    let x = x.autodiff();
    let g = g.autodiff();
    let first = layer.channels == 1;
    let train = |ours: bool, g: &Tensor<4>| {
        let x = if first {
            x.clone()
        } else {
            x.clone().require_grad()
        };
        let y = if ours {
            baal_zoo::conv::conv2d(&conv, x.clone())
        } else {
            conv.forward(x.clone())
        };
        let grads = (y * g.clone()).sum().backward();
        read(conv.weight.val().grad(&grads).expect("weight gradient"));
        if !first {
            read(x.grad(&grads).expect("input gradient"));
        }
    };
    group.bench_function("train", |b| b.iter(|| train(false, &g)));
    group.bench_function("ours_train", |b| b.iter(|| train(true, &g)));
    if layer.pooled {
        // The output gradient a pooling hands back (three in four zeros), which our backward
        // pass takes through its sparse kernels.
        let g = pooled(&g);
        group.bench_function("ours_train_pooled", |b| b.iter(|| train(true, &g)));
    }
    let plain = Conv2dConfig::new([layer.channels, layer.filters], [layer.kernel; 2])
        .with_bias(false)
        .init(device);
    let x = x.inner();
    group.bench_function("ours_forward", |b| {
        b.iter(|| read(baal_zoo::conv::conv2d(&plain, x.clone())))
    });
    group.finish();
}

/// The zoo's poolings: id and input shape.
const POOLS: [(&str, [usize; 4]); 3] = [
    ("small1", [32, 16, 24, 24]),
    ("small2", [32, 32, 8, 8]),
    ("gal", [64, 32, 22, 22]),
];

fn bench_pool(criterion: &mut Criterion, (id, shape): (&str, [usize; 4]), device: &Device) {
    let autodiff = device.clone().autodiff();
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &autodiff);
    let [n, c, h, w] = shape;
    let g = Tensor::<4>::random(
        [n, c, h / 2, w / 2],
        Distribution::Normal(0.0, 1.0),
        &autodiff,
    );
    let train = |ours: bool| {
        let x = x.clone().require_grad();
        let y = if ours {
            baal_zoo::pool::max_pool2d(&pool, x.clone())
        } else {
            pool.forward(x.clone())
        };
        let grads = (y * g.clone()).sum().backward();
        read(x.grad(&grads).expect("input gradient"));
    };
    let mut group = criterion.benchmark_group(format!("pool/{id}"));
    group.sample_size(20);
    group.bench_function("train", |b| b.iter(|| train(false)));
    group.bench_function("ours_train", |b| b.iter(|| train(true)));
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    let device = bench_device();
    device.seed(0);
    for layer in &LAYERS {
        bench_layer(&mut criterion, layer, &device);
    }
    for pool in POOLS {
        bench_pool(&mut criterion, pool, &device);
    }
}

criterion_main!(benches);
