//! 2-D max pooling of our own on the CPU (flex), with its own backward pass, through Burn's
//! backend extensions (`#[backend_extension(Flex, Autodiff)]`), as [`conv`](crate::conv) does
//! for the convolution.
//!
//! flex 0.22's max pooling goes through its generic 3-D code: per output value it works out the
//! window's valid range, writes an `i64` index and hands rayon one job per plane. On the small
//! CNN's first pooling (`[32, 16, 24, 24]`) that took 1.2 ms, about a seventh of a training
//! step (docs/benchmarks.md). Ours reads each window straight from its plane, keeps a `u32`
//! index per output for the backward pass (none when no gradient is tracked), gives each
//! thread one run of planes, and scatters the output's gradient back through those indices.
//!
//! [`max_pool2d`] takes any `burn::nn::pool::MaxPool2d`: on a flex device, f32, without
//! padding or dilation and with floor rounding it runs ours; anything else (other backends,
//! padding, dilation, `ceil_mode`, other float types) runs Burn's `MaxPool2d::forward`. Both
//! pick the same element of a window: the first largest, or the last NaN.

#[cfg(feature = "flex")]
mod flex;

#[cfg(feature = "flex")]
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

/// A pooling window: its size and the step between windows, `[height, width]` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Rows and columns of a window.
    pub kernel: [usize; 2],
    /// Steps between windows.
    pub stride: [usize; 2],
}

/// The window of `pool` on `[height, width]` inputs when our pooling can run it: no padding,
/// no dilation, floor rounding, and a window that fits the input.
#[cfg(feature = "flex")]
fn window(pool: &MaxPool2d, [height, width]: [usize; 2]) -> Option<Window> {
    let unpadded = match pool.padding {
        PaddingConfig2d::Valid => true,
        PaddingConfig2d::Explicit(top, left, bottom, right) => top + left + bottom + right == 0,
        // "Same" padding is zero only where no padding is needed; Burn's path handles it.
        PaddingConfig2d::Same => false,
    };
    let [kh, kw] = pool.kernel_size;
    let fits = (1..=height).contains(&kh) && (1..=width).contains(&kw);
    (unpadded
        && fits
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && pool.stride[0] * pool.stride[1] > 0)
        .then_some(Window {
            kernel: pool.kernel_size,
            stride: pool.stride,
        })
}

/// `pool` applied to `x` `[N, C, H, W]`: ours on the flex (CPU) device (f32, no padding or
/// dilation, floor rounding), Burn's `MaxPool2d::forward` elsewhere. Both give the same values
/// and the same input gradient.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, height_out, width_out]`
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(out) = flex_max_pool2d(pool, &x) {
        return out;
    }
    pool.forward(x)
}

#[cfg(feature = "flex")]
fn flex_max_pool2d(pool: &MaxPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    use burn::backend::Dispatch;
    use burn::tensor::DType;

    let [_, _, height, width] = x.dims();
    let supported = crate::conv::is_flex(&x.device()) && x.dtype() == DType::F32;
    let window = window(pool, [height, width]).filter(|_| supported)?;
    let out = <Dispatch as MaxPool2dBackend>::baal_max_pool2d(x.clone().into_dispatch(), window);
    Some(Tensor::<4>::from_dispatch(out))
}

#[cfg(feature = "flex")]
pub use extension::MaxPool2dBackend;

#[cfg(feature = "flex")]
mod extension {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Flex, backend_extension};

    use super::Window;
    use super::flex::{Dims, backward, forward};

    /// Max pooling as a backend operation: flex computes it (f32), and under autodiff its
    /// backward pass is ours.
    #[backend_extension(Flex, Autodiff)]
    pub trait MaxPool2dBackend: Backend {
        /// The largest value of each `window` of `x` `[N, C, H, W]`, without padding.
        fn baal_max_pool2d(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self>;
    }

    impl MaxPool2dBackend for Flex {
        fn baal_max_pool2d(x: FlexTensor, window: Window) -> FlexTensor {
            let d = Dims::of(x.layout().shape(), window);
            forward(&x, &d, false).0
        }
    }

    /// What the backward pass needs: the sizes and where each output's value came from.
    #[derive(Clone, Debug)]
    struct State {
        dims: Dims,
        indices: Vec<u32>,
    }

    #[derive(Debug)]
    struct MaxPool2dBackward;

    impl Backward<Flex, 1> for MaxPool2dBackward {
        type State = State;

        fn backward(self, ops: Ops<State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [input_node] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            if let Some(node) = input_node {
                let State { dims, indices } = ops.state;
                grads.register::<Flex>(node.id, backward(&grad, &indices, &dims));
            }
        }
    }

    impl<C: CheckpointStrategy> MaxPool2dBackend for Autodiff<Flex, C> {
        fn baal_max_pool2d(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
            match MaxPool2dBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let x = x.into_primitive();
                    let dims = Dims::of(x.layout().shape(), window);
                    let (out, indices) = forward(&x, &dims, true);
                    prep.finish(State { dims, indices }, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(
                    <Flex as MaxPool2dBackend>::baal_max_pool2d(x.into_primitive(), window),
                ),
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests;
