//! The input layer's convolution on the CPU as unfolded windows times the weights.
//!
//! Burn computes a convolution's weight gradient as a second convolution whose batch is the
//! input channels and whose kernel is the output gradient (`conv2d_weight_backward`); for a
//! first layer on grey images (one channel, a 24×24 "kernel") flex takes longer for it than for
//! the forward pass (2.4 ms against 0.4 ms for the same product as a matmul, small CNN at batch
//! 32; 17 ms against 0.6 ms for the Gal CNN at batch 64). The input layer's images need no gradient, so the layer can be
//! written as windows of the images (`unfold`, a view) times the weights in one batched matmul,
//! whose gradient is another matmul. Measured with `train/small_cnn/b32` and
//! `train/gal_cnn/b64` (docs/benchmarks.md): 1.45× and 1.27× more gradient steps per second.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// `conv` applied to `images` `[N, C, H, W]`: by unfold and matmul on the flex (CPU) device when
/// `images` carry no gradient and the layer is a plain one (stride 1, no padding, no dilation,
/// one group), by Burn's convolution otherwise. Both give the same values and gradients for
/// the weights and bias.
pub fn input_conv(conv: &Conv2d, images: Tensor<4>) -> Tensor<4> {
    let plain = conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Valid);
    if !plain || images.is_tracked() || !is_flex(&images.device()) {
        return conv.forward(images);
    }
    let [n, channels, height, width] = images.dims();
    let weight = conv.weight.val();
    let [filters, _, kh, kw] = weight.dims();
    if height < kh || width < kw {
        // Let Burn report the shape error.
        return conv.forward(images);
    }
    let (out_h, out_w) = (height - kh + 1, width - kw + 1);
    // [N, C, out_h, out_w, kh, kw]: every window, without copying.
    let windows: Tensor<6> = images
        .unfold::<5, usize>(2, kh, 1)
        .unfold::<6, usize>(3, kw, 1);
    // [N, C·kh·kw, out_h·out_w], in the weights' (channel, row, column) order.
    let columns =
        windows
            .permute([0, 1, 4, 5, 2, 3])
            .reshape([n, channels * kh * kw, out_h * out_w]);
    let out = weight
        .reshape([1, filters, channels * kh * kw])
        .matmul(columns);
    let out = match &conv.bias {
        Some(bias) => out + bias.val().reshape([1, filters, 1]),
        None => out,
    };
    out.reshape([n, filters, out_h, out_w])
}

/// Whether `device` is flex's (directly or under autodiff).
fn is_flex(device: &Device) -> bool {
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

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    fn images(shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn is_flex_sees_through_autodiff() {
        let device = Device::flex();
        assert!(is_flex(&device));
        assert!(is_flex(&device.autodiff()));
    }

    #[test]
    fn same_values_as_burns_convolution() {
        let device = Device::flex();
        device.seed(3);
        for (channels, kernel, bias) in [(1, [5, 5], true), (3, [3, 4], true), (2, [4, 4], false)] {
            let conv = Conv2dConfig::new([channels, 6], kernel)
                .with_bias(bias)
                .init(&device);
            let x = images([4, channels, 12, 11], &device);
            let expected = conv.forward(x.clone());
            let got = input_conv(&conv, x);
            assert_eq!(got.dims(), expected.dims());
            got.into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-4));
        }
    }

    #[test]
    fn same_gradients_as_burns_convolution() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let conv = Conv2dConfig::new([2, 5], [3, 3]).init(&device);
        let x = images([3, 2, 9, 9], &device);
        let upstream = Tensor::<4>::random([3, 5, 7, 7], Distribution::Default, &device);
        let grads_of = |out: Tensor<4>| (out * upstream.clone()).sum().backward();
        let ours = grads_of(input_conv(&conv, x.clone()));
        let burns = grads_of(conv.forward(x));
        let weight = |g| conv.weight.val().grad(g).expect("weight gradient");
        let bias = |g| {
            conv.bias
                .as_ref()
                .expect("a bias")
                .val()
                .grad(g)
                .expect("bias gradient")
        };
        weight(&ours)
            .into_data()
            .assert_approx_eq::<f32>(&weight(&burns).into_data(), Tolerance::absolute(1e-3));
        bias(&ours)
            .into_data()
            .assert_approx_eq::<f32>(&bias(&burns).into_data(), Tolerance::absolute(1e-3));
    }

    #[test]
    fn tracked_images_and_other_layers_use_burns_convolution() {
        let device = Device::flex().autodiff();
        // Padding and stride: the unfold path does not apply; the result is Burn's.
        let conv = Conv2dConfig::new([1, 2], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = images([2, 1, 8, 8], &device);
        assert_eq!(input_conv(&conv, x.clone()).dims(), [2, 2, 4, 4]);
        // Images that need a gradient get one through Burn's convolution.
        let conv = Conv2dConfig::new([1, 2], [3, 3]).init(&device);
        let x = x.require_grad();
        let grads = input_conv(&conv, x.clone()).sum().backward();
        assert_eq!(x.grad(&grads).expect("image gradient").dims(), [2, 1, 8, 8]);
    }
}
