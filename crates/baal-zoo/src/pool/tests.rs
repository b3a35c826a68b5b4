//! Ours against Burn's `MaxPool2d::forward`: values and the input gradient, on random shapes.

use super::*;
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::{Device, Distribution, TensorData};

/// One case: input `[n, c, h, w]` and the layer's settings.
struct Case {
    input: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: PaddingConfig2d,
    dilation: [usize; 2],
    ceil_mode: bool,
}

impl Case {
    fn plain(input: [usize; 4], kernel: [usize; 2], stride: [usize; 2]) -> Self {
        Self {
            input,
            kernel,
            stride,
            padding: PaddingConfig2d::Valid,
            dilation: [1, 1],
            ceil_mode: false,
        }
    }

    fn layer(&self) -> MaxPool2d {
        MaxPool2dConfig::new(self.kernel)
            .with_strides(self.stride)
            .with_padding(self.padding.clone())
            .with_dilation(self.dilation)
            .with_ceil_mode(self.ceil_mode)
            .init()
    }

    fn ours(&self) -> bool {
        matches!(self.padding, PaddingConfig2d::Valid) && self.dilation == [1, 1] && !self.ceil_mode
    }
}

fn cases() -> Vec<Case> {
    vec![
        // The zoo's: 2×2 windows, stride 2, on even and odd sizes (the last row and column
        // of an odd size are left out).
        Case::plain([4, 16, 24, 24], [2, 2], [2, 2]),
        Case::plain([3, 5, 11, 9], [2, 2], [2, 2]),
        // Overlapping windows (an input element in several), rectangular ones, stride 1,
        // a window as large as the input.
        Case::plain([2, 3, 13, 12], [3, 3], [2, 2]),
        Case::plain([2, 4, 9, 10], [3, 2], [1, 2]),
        Case::plain([2, 2, 7, 7], [2, 3], [1, 1]),
        Case::plain([3, 2, 6, 5], [6, 5], [1, 1]),
        // Burn's: padding, dilation, ceil rounding.
        Case {
            padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            ..Case::plain([2, 3, 8, 8], [3, 3], [2, 2])
        },
        Case {
            dilation: [2, 2],
            ..Case::plain([2, 3, 9, 9], [2, 2], [1, 1])
        },
        Case {
            ceil_mode: true,
            ..Case::plain([2, 3, 9, 9], [2, 2], [2, 2])
        },
        Case {
            padding: PaddingConfig2d::Same,
            ..Case::plain([2, 3, 8, 8], [3, 3], [1, 1])
        },
    ]
}

fn same(ours: Tensor<4>, burns: Tensor<4>, what: &str) {
    assert_eq!(ours.dims(), burns.dims(), "{what}");
    // The same elements picked and the same gradients added in the same order: equal bits.
    assert_eq!(ours.into_data(), burns.into_data(), "{what}");
}

#[test]
fn ours_runs_where_it_can_and_burns_elsewhere() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for case in cases() {
            let x = Tensor::<4>::zeros(case.input, &device);
            let what = format!("{:?} {:?}", case.input, case.kernel);
            assert_eq!(
                flex_max_pool2d(&case.layer(), &x).is_some(),
                case.ours(),
                "{what}"
            );
        }
    }
    let device = Device::flex();
    let pool = Case::plain([1, 1, 4, 4], [2, 2], [2, 2]).layer();
    // Other float types, and a window larger than the input, are Burn's.
    let x = Tensor::<4>::zeros([1, 1, 4, 4], &device).cast(burn::tensor::DType::F64);
    assert!(flex_max_pool2d(&pool, &x).is_none());
    let x = Tensor::<4>::zeros([1, 1, 1, 4], &device);
    assert!(flex_max_pool2d(&pool, &x).is_none());
}

#[test]
fn the_same_values_as_burns_pooling() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        device.seed(21);
        for case in cases() {
            let pool = case.layer();
            let x = Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device);
            let what = format!("{:?} {:?}", case.input, case.kernel);
            same(max_pool2d(&pool, x.clone()), pool.forward(x), &what);
        }
    }
}

#[test]
fn the_same_gradient_as_burns_pooling() {
    let device = Device::flex().autodiff();
    device.seed(22);
    for case in cases() {
        let pool = case.layer();
        let x =
            Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let out_dims = pool.forward(x.clone()).dims();
        let upstream = Tensor::<4>::random(out_dims, Distribution::Normal(0.0, 1.0), &device);
        let grad_of = |out: Tensor<4>| {
            let grads = (out * upstream.clone()).sum().backward();
            x.grad(&grads).expect("an input gradient")
        };
        let what = format!("input gradient {:?} {:?}", case.input, case.kernel);
        same(
            grad_of(max_pool2d(&pool, x.clone())),
            grad_of(pool.forward(x.clone())),
            &what,
        );
    }
}

#[test]
fn ties_go_to_the_first_and_nan_to_the_last_as_in_burn() {
    let device = Device::flex().autodiff();
    let pool = Case::plain([1, 1, 2, 6], [2, 2], [2, 2]).layer();
    // Windows: a tie of 3s; a NaN among numbers; two NaNs.
    let values = [
        3.0,
        1.0,
        0.0,
        f32::NAN,
        f32::NAN,
        1.0,
        3.0,
        3.0,
        2.0,
        5.0,
        0.0,
        f32::NAN,
    ];
    let x = Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 1, 2, 6]), &device)
        .require_grad();
    let ours = max_pool2d(&pool, x.clone());
    let burns = pool.forward(x.clone());
    let bits = |t: Tensor<4>| {
        t.into_data()
            .try_to_vec::<f32>()
            .expect("f32 values")
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(ours.clone()), bits(burns.clone()));
    let grad_of = |out: Tensor<4>| {
        x.grad(&out.sum_dim(3).sum().backward())
            .expect("an input gradient")
    };
    // NaN values: the gradient through a NaN still lands on one element per window.
    let grads = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().expect("f32 values");
    let (ours, burns) = (grads(grad_of(ours)), grads(grad_of(burns)));
    assert_eq!(ours, burns);
    assert_eq!(
        ours,
        vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    );
}

#[test]
fn inputs_without_a_gradient_keep_no_indices_and_give_burns_values() {
    // Untracked on an autodiff device (an input that needs no gradient, as in MC inference).
    let device = Device::flex().autodiff();
    device.seed(23);
    let pool = Case::plain([2, 3, 10, 10], [2, 2], [2, 2]).layer();
    let x = Tensor::<4>::random([2, 3, 10, 10], Distribution::Default, &device);
    same(max_pool2d(&pool, x.clone()), pool.forward(x), "untracked");
}

/// The zoo's poolings, ours alone (run by hand:
/// `cargo test --release -p baal-zoo pool::tests::timing -- --ignored --nocapture`).
#[test]
#[ignore = "a timing probe, not a test"]
fn timing() {
    use burn::backend::flex::FlexTensor;
    use std::time::Instant;
    let window = Window {
        kernel: [2, 2],
        stride: [2, 2],
    };
    for shape in [[32, 16, 24, 24], [32, 32, 8, 8], [64, 32, 22, 22]] {
        let x = Tensor::<4>::random(shape, Distribution::Default, &Device::flex());
        let x = FlexTensor::from_data(x.into_data());
        let d = flex::Dims::of(x.layout().shape(), window);
        let (out, indices) = flex::forward(&x, &d, true);
        let time = |what: &str, f: &mut dyn FnMut()| {
            f();
            let started = Instant::now();
            for _ in 0..100 {
                f();
            }
            let us = started.elapsed().as_secs_f64() * 1e4;
            eprintln!("{shape:?} {what}: {us:.1} µs");
        };
        time("forward", &mut || drop(flex::forward(&x, &d, true)));
        time("forward, no indices", &mut || {
            drop(flex::forward(&x, &d, false))
        });
        time("backward", &mut || drop(flex::backward(&out, &indices, &d)));
    }
}
