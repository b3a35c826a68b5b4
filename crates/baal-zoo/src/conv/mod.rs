//! A 2-D convolution of our own on the CPU (flex), with its own backward pass, through Burn's
//! backend extensions (`#[backend_extension(Flex, Autodiff)]`).
//!
//! Burn computes a convolution's weight gradient as a second convolution (whose batch is the
//! input channels and whose kernel is the output gradient) and its input gradient as a
//! transposed convolution; flex overrides neither, and training the zoo's CNNs ran at
//! 0.45–0.79× PyTorch's steps per second (docs/benchmarks.md). Here each image's forward pass
//! is im2col, one matmul and the bias; its backward pass, in one pass over the images, the
//! bias gradient (row sums), the weight gradient `dOut × colsᵀ` and the input gradient
//! `col2im(Wᵀ × dOut)`; images spread over the threads (`flex`).
//!
//! [`conv2d`] takes any `burn::nn::conv::Conv2d`: on a flex device, f32, one group and
//! symmetric padding it runs ours; anything else (other backends: wgpu, CUDA, libtorch,
//! remote; groups; asymmetric padding; other float types) runs Burn's `Conv2d::forward`.

#[cfg(feature = "flex")]
pub(crate) mod flex;

#[cfg(feature = "flex")]
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// Stride, symmetric padding and dilation of a convolution, `[height, width]` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Steps between windows.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between a kernel's taps.
    pub dilation: [usize; 2],
}

/// Burn's "same" padding on one side: (before, after).
#[cfg(feature = "flex")]
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride.max(1));
    let total = if out > 0 {
        ((out - 1) * stride + kernel).saturating_sub(size)
    } else {
        0
    };
    (total / 2, total - total / 2)
}

/// The geometry of `conv` on `[height, width]` inputs when our convolution can run it: one
/// group and the same padding on both sides of each dimension.
#[cfg(feature = "flex")]
fn geometry(conv: &Conv2d, [height, width]: [usize; 2]) -> Option<Geometry> {
    if conv.groups != 1 {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            (top == bottom && left == right).then_some([top, left])?
        }
        PaddingConfig2d::Same => {
            let rows = same_padding(conv.kernel_size[0], conv.stride[0], height);
            let columns = same_padding(conv.kernel_size[1], conv.stride[1], width);
            (rows.0 == rows.1 && columns.0 == columns.1).then_some([rows.0, columns.0])?
        }
    };
    Some(Geometry {
        stride: conv.stride,
        padding,
        dilation: conv.dilation,
    })
}

/// What the convolution op applies to its output before returning it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Nothing: the convolution plus its bias.
    Identity,
    /// `relu`, as Burn's: `x` where `x > 0` or `x` is NaN, `0` elsewhere; its gradient is
    /// passed where the same holds and zero elsewhere.
    Relu,
}

/// `conv` applied to `x` `[N, C, H, W]`: ours on the flex (CPU) device (f32, one group,
/// symmetric padding), Burn's `Conv2d::forward` elsewhere. Both give the same values and the
/// same gradients for the input, the weights and the bias, within float rounding.
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]`
/// - output: `[batch, channels_out, height_out, width_out]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(out) = flex_conv2d(conv, &x, Activation::Identity) {
        return out;
    }
    conv.forward(x)
}

/// `relu(conv2d(conv, x))`, with the same values and gradients bit for bit, in one op on flex:
/// the relu is applied to each image's output while it is in cache, and its gradient's mask
/// inside the convolution's backward pass, both on the worker threads. As two ops, Burn's
/// relu and its backward are two serial passes over the output on the calling thread (about
/// 4% of a Gal CNN training step). Elsewhere it is Burn's `relu` after Burn's
/// `Conv2d::forward`, as [`conv2d`] would run it (whether ours can run does not depend on
/// the activation).
///
/// # Shapes
/// As [`conv2d`].
pub fn conv2d_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(out) = flex_conv2d(conv, &x, Activation::Relu) {
        return out;
    }
    burn::tensor::activation::relu(conv.forward(x))
}

/// Whether `device` is flex's (directly or under autodiff) and this build has our ops for it
/// (feature `flex`): [`baal_bayesian::is_flex`] then.
pub fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        baal_bayesian::is_flex(device)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

#[cfg(feature = "flex")]
fn flex_conv2d(conv: &Conv2d, x: &Tensor<4>, activation: Activation) -> Option<Tensor<4>> {
    use burn::backend::Dispatch;
    use burn::tensor::DType;

    let weight = conv.weight.val();
    let [_, _, height, width] = x.dims();
    let supported = is_flex(&x.device())
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && weight.dims()[1] == x.dims()[1];
    let geometry = geometry(conv, [height, width]).filter(|_| supported)?;
    // An empty output or a kernel wider than the padded input: Burn says what is wrong.
    flex::Dims::of(&x.shape(), &weight.shape(), &geometry)?;
    // Without a bias, zeros that carry no gradient.
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([weight.dims()[0]], &x.device()),
    };
    let out = <Dispatch as Conv2dBackend>::baal_conv2d(
        x.clone().into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        geometry,
        activation,
    );
    Some(Tensor::<4>::from_dispatch(out))
}

#[cfg(feature = "flex")]
pub use extension::Conv2dBackend;

#[cfg(feature = "flex")]
mod extension {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Flex, backend_extension};

    use super::flex::{Dims, per_image};
    use super::{Activation, Geometry};

    /// The convolution as a backend operation: flex computes it (f32), and under autodiff its
    /// backward pass is ours.
    #[backend_extension(Flex, Autodiff)]
    pub trait Conv2dBackend: Backend {
        /// `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]` (one group), plus
        /// `bias` `[O]`, then `activation`.
        fn baal_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            geometry: Geometry,
            activation: Activation,
        ) -> FloatTensor<Self>;
    }

    fn dims(x: &FlexTensor, weight: &FlexTensor, geometry: &Geometry) -> Dims {
        Dims::of(x.layout().shape(), weight.layout().shape(), geometry)
            .expect("a non-empty output (checked by conv2d)")
    }

    impl Conv2dBackend for Flex {
        fn baal_conv2d(
            x: FlexTensor,
            weight: FlexTensor,
            bias: FlexTensor,
            geometry: Geometry,
            activation: Activation,
        ) -> FlexTensor {
            let d = dims(&x, &weight, &geometry);
            per_image::forward(&x, &weight, &bias, &d, &geometry, activation)
        }
    }

    /// What the backward pass needs: the input (its columns are made again, image by image),
    /// the weight, the sizes and, after a relu, the output (its gradient's mask).
    #[derive(Clone, Debug)]
    struct State {
        x: FlexTensor,
        weight: FlexTensor,
        dims: Dims,
        geometry: Geometry,
        relu_out: Option<FlexTensor>,
    }

    #[derive(Debug)]
    struct Conv2dBackward;

    impl Backward<Flex, 3> for Conv2dBackward {
        type State = State;

        fn backward(self, ops: Ops<State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [input_node, weight_node, bias_node] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let State {
                x,
                weight,
                dims,
                geometry,
                relu_out,
            } = ops.state;
            let need = [
                input_node.is_some(),
                weight_node.is_some(),
                bias_node.is_some(),
            ];
            let computed = per_image::backward(
                &x,
                &weight,
                &grad,
                relu_out.as_ref(),
                &dims,
                &geometry,
                need,
            );
            for (node, value) in [
                (input_node, computed.x),
                (weight_node, computed.weight),
                (bias_node, computed.bias),
            ] {
                if let (Some(node), Some(value)) = (node, value) {
                    grads.register::<Flex>(node.id, value);
                }
            }
        }
    }

    impl<C: CheckpointStrategy> Conv2dBackend for Autodiff<Flex, C> {
        fn baal_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            geometry: Geometry,
            activation: Activation,
        ) -> FloatTensor<Self> {
            match Conv2dBackward
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (x, weight) = (x.into_primitive(), weight.into_primitive());
                    let (d, bias) = (dims(&x, &weight, &geometry), bias.into_primitive());
                    let out = per_image::forward(&x, &weight, &bias, &d, &geometry, activation);
                    let relu_out = (activation == Activation::Relu).then(|| out.clone());
                    prep.finish(
                        State {
                            x,
                            weight,
                            dims: d,
                            geometry,
                            relu_out,
                        },
                        out,
                    )
                }
                OpsKind::UnTracked(prep) => prep.finish(<Flex as Conv2dBackend>::baal_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    geometry,
                    activation,
                )),
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests;
