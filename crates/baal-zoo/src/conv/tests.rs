//! Ours against Burn's `Conv2d::forward`: values and the three gradients, on random shapes.

use super::*;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Distribution, Tolerance};

/// One case: input `[n, c, h, w]`, `o` filters of `kernel`, and the layer's settings.
struct Case {
    input: [usize; 4],
    filters: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: PaddingConfig2d,
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

impl Case {
    fn plain(input: [usize; 4], filters: usize, kernel: [usize; 2]) -> Self {
        Self {
            input,
            filters,
            kernel,
            stride: [1, 1],
            padding: PaddingConfig2d::Valid,
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }

    fn layer(&self, device: &Device) -> Conv2d {
        Conv2dConfig::new([self.input[1], self.filters], self.kernel)
            .with_stride(self.stride)
            .with_padding(self.padding.clone())
            .with_dilation(self.dilation)
            .with_groups(self.groups)
            .with_bias(self.bias)
            .init(device)
    }
}

fn cases() -> Vec<Case> {
    vec![
        // The zoo's layers: small CNN, Gal CNN, a small VGG's padded 3×3.
        Case::plain([4, 1, 28, 28], 16, [5, 5]),
        Case::plain([4, 16, 12, 12], 32, [5, 5]),
        Case::plain([3, 32, 25, 25], 32, [4, 4]),
        Case {
            padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            ..Case::plain([2, 3, 16, 16], 8, [3, 3])
        },
        // Odd sizes, no bias, rectangular kernels.
        Case {
            bias: false,
            ..Case::plain([3, 5, 13, 11], 7, [3, 4])
        },
        // Stride 2, with and without padding.
        Case {
            stride: [2, 2],
            ..Case::plain([2, 4, 15, 14], 6, [3, 3])
        },
        Case {
            stride: [2, 1],
            padding: PaddingConfig2d::Explicit(2, 1, 2, 1),
            ..Case::plain([2, 3, 9, 10], 5, [5, 3])
        },
        // Dilation, and "same" padding.
        Case {
            dilation: [2, 3],
            ..Case::plain([2, 3, 17, 19], 4, [3, 3])
        },
        Case {
            padding: PaddingConfig2d::Same,
            ..Case::plain([2, 3, 10, 10], 4, [3, 3])
        },
        // Fallbacks to Burn's convolution: groups, asymmetric padding.
        Case {
            groups: 2,
            ..Case::plain([2, 4, 8, 8], 6, [3, 3])
        },
        Case {
            padding: PaddingConfig2d::Explicit(1, 0, 0, 1),
            ..Case::plain([2, 2, 8, 8], 3, [3, 3])
        },
        Case {
            padding: PaddingConfig2d::Same,
            ..Case::plain([2, 2, 8, 8], 3, [4, 4])
        },
    ]
}

fn close(ours: Tensor<4>, burns: Tensor<4>, what: &str) {
    assert_eq!(ours.dims(), burns.dims(), "{what}");
    ours.into_data()
        .assert_approx_eq::<f32>(&burns.into_data(), Tolerance::rel_abs(1e-5, 2e-4));
}

/// The gradients of `x`, of the weight and, when `conv` has one, of the bias (as
/// `[1, 1, 1, O]`), named.
fn gradients(
    conv: &Conv2d,
    x: &Tensor<4>,
    grads: &burn::tensor::Gradients,
) -> Vec<(&'static str, Tensor<4>)> {
    let mut all = vec![
        ("input", x.grad(grads).expect("an input gradient")),
        (
            "weight",
            conv.weight.val().grad(grads).expect("a weight gradient"),
        ),
    ];
    if let Some(bias) = &conv.bias {
        let bias = bias.val().grad(grads).expect("a bias gradient");
        all.push(("bias", bias.reshape([1, 1, 1, -1])));
    }
    all
}

#[test]
fn ours_runs_where_it_can_and_burns_elsewhere() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for case in cases() {
            let conv = case.layer(&device);
            let x = Tensor::<4>::zeros(case.input, &device);
            let fallback = case.groups != 1
                || matches!(case.padding, PaddingConfig2d::Explicit(1, 0, 0, 1))
                || (matches!(case.padding, PaddingConfig2d::Same) && case.kernel == [4, 4]);
            assert_eq!(
                flex_conv2d(&conv, &x, Activation::Identity).is_some(),
                !fallback,
                "{:?}",
                case.input
            );
        }
    }
    // Other float types are Burn's.
    let device = Device::flex();
    let conv = Case::plain([1, 1, 8, 8], 2, [3, 3]).layer(&device);
    let x = Tensor::<4>::zeros([1, 1, 8, 8], &device).cast(burn::tensor::DType::F64);
    assert!(flex_conv2d(&conv, &x, Activation::Identity).is_none());
}

#[test]
fn the_same_values_as_burns_convolution() {
    let device = Device::flex();
    device.seed(11);
    for case in cases() {
        let conv = case.layer(&device);
        let x = Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device);
        let ours = conv2d(&conv, x.clone());
        // The fused relu, without autodiff: Burn's relu of ours, bit for bit.
        assert_eq!(
            bits(conv2d_relu(&conv, x.clone())),
            bits(burn::tensor::activation::relu(ours.clone())),
            "relu {:?}",
            case.input
        );
        close(ours, conv.forward(x), &format!("{:?}", case.input));
    }
}

#[test]
fn the_same_gradients_as_burns_convolution() {
    let device = Device::flex().autodiff();
    device.seed(12);
    for case in cases() {
        let conv = case.layer(&device);
        let x =
            Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let out_dims = conv.forward(x.clone()).dims();
        let upstream = Tensor::<4>::random(out_dims, Distribution::Normal(0.0, 1.0), &device);
        let grads_of = |out: Tensor<4>| (out * upstream.clone()).sum().backward();
        let ours = grads_of(conv2d(&conv, x.clone()));
        let burns = grads_of(conv.forward(x.clone()));
        let what = format!("{:?}", case.input);
        let both = gradients(&conv, &x, &ours)
            .into_iter()
            .zip(gradients(&conv, &x, &burns));
        for ((which, ours), (_, burns)) in both {
            close(ours, burns, &format!("{which} gradient {what}"));
        }
    }
}

#[test]
fn images_without_a_gradient_give_the_weights_theirs() {
    // The first layer: its input needs no gradient, and none is computed.
    let device = Device::flex().autodiff();
    device.seed(13);
    let conv = Case::plain([3, 1, 12, 12], 4, [5, 5]).layer(&device);
    let x = Tensor::<4>::random([3, 1, 12, 12], Distribution::Default, &device);
    let ours = conv2d(&conv, x.clone()).sum().backward();
    let burns = conv.forward(x.clone()).sum().backward();
    assert!(x.grad(&ours).is_none());
    let weight = |g| conv.weight.val().grad(g).expect("a weight gradient");
    close(weight(&ours), weight(&burns), "weight gradient");
}

#[test]
fn a_kernel_wider_than_the_input_is_burns_to_refuse() {
    let device = Device::flex();
    let conv = Case::plain([1, 1, 3, 3], 2, [5, 5]).layer(&device);
    let x = Tensor::<4>::zeros([1, 1, 3, 3], &device);
    let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conv2d(&conv, x.clone())));
    let burns = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conv.forward(x)));
    assert_eq!(ours.is_err(), burns.is_err());
}

/// Where the time of the zoo's layers goes, per path (run by hand:
/// `cargo test --release -p baal-zoo conv::tests::timing -- --ignored --nocapture`).
#[test]
#[ignore = "a timing probe, not a test"]
fn timing() {
    use burn::backend::flex::FlexTensor;
    use flex::per_image;
    use std::time::Instant;
    let geometry = Geometry {
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
    };
    for (x_shape, w_shape) in [
        ([64, 32, 25, 25], [32, 32, 4, 4]),
        ([64, 1, 28, 28], [32, 1, 4, 4]),
        ([32, 1, 28, 28], [16, 1, 5, 5]),
        ([32, 16, 12, 12], [32, 16, 5, 5]),
    ] {
        let device = Device::flex();
        let flex = |shape: Vec<usize>| {
            let t = Tensor::<1>::random(
                [shape.iter().product::<usize>()],
                Distribution::Default,
                &device,
            );
            FlexTensor::from_data(t.into_data()).reshape(burn::tensor::Shape::from(shape))
        };
        let (xp, wp, bp) = (
            flex(x_shape.to_vec()),
            flex(w_shape.to_vec()),
            flex(vec![w_shape[0]]),
        );
        let d = flex::Dims::of(xp.layout().shape(), wp.layout().shape(), &geometry).expect("dims");
        let time = |what: &str, f: &mut dyn FnMut()| {
            f();
            let started = Instant::now();
            for _ in 0..5 {
                f();
            }
            let ms = started.elapsed().as_secs_f64() * 200.0;
            eprintln!("{x_shape:?} {what}: {ms:.2} ms");
        };
        let out = per_image::forward(&xp, &wp, &bp, &d, &geometry, Activation::Identity);
        let need = [true, true, true];
        time("forward", &mut || {
            drop(per_image::forward(
                &xp,
                &wp,
                &bp,
                &d,
                &geometry,
                Activation::Identity,
            ))
        });
        time("backward", &mut || {
            drop(per_image::backward(
                &xp, &wp, &out, None, &d, &geometry, need,
            ))
        });
    }
}

/// Bits, with every NaN alike (a NaN's payload is not a value).
fn bits(t: Tensor<4>) -> Vec<u32> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("f32 values")
        .iter()
        .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
        .collect()
}

#[test]
fn the_fused_relu_gives_burns_relu_values_and_gradients_bit_for_bit() {
    let device = Device::flex().autodiff();
    device.seed(14);
    for (i, case) in cases().into_iter().enumerate() {
        let conv = case.layer(&device);
        let mut x = Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device);
        if i == 2 {
            // A NaN input: the relu passes NaN on and its gradient through.
            x = x.slice_assign(
                [0..1, 0..1, 0..1, 0..1],
                Tensor::full([1, 1, 1, 1], f32::NAN, &device),
            );
        }
        let x = x.require_grad();
        let unfused = burn::tensor::activation::relu(conv2d(&conv, x.clone()));
        let upstream = Tensor::<4>::random(unfused.dims(), Distribution::Normal(0.0, 1.0), &device);
        let fused = conv2d_relu(&conv, x.clone());
        let what = format!("case {i} {:?}", case.input);
        assert_eq!(bits(fused.clone()), bits(unfused.clone()), "values, {what}");
        assert!(
            bits(fused.clone()).contains(&0) && bits(fused.clone()).iter().any(|b| *b != 0),
            "{what}: both signs reach the relu"
        );
        let grads_of = |out: Tensor<4>| (out * upstream.clone()).sum().backward();
        let (ours, burns) = (grads_of(fused), grads_of(unfused));
        let both = gradients(&conv, &x, &ours)
            .into_iter()
            .zip(gradients(&conv, &x, &burns));
        for ((which, ours), (_, burns)) in both {
            assert_eq!(bits(ours), bits(burns), "{which} gradient, {what}");
        }
    }
}
