//! Burn's Adam with each parameter's update in one parallel pass on flex.
//!
//! Burn's Adam is thirteen tensor operations per parameter and step (the two moments, their
//! bias corrections, the root, the quotient, the learning rate, the subtraction), and flex
//! runs each element-wise operation as its own serial pass: about 1 ms of a Gal CNN training
//! step on one thread while the other waits (its dense layer holds 2 MB of weights). Here, on
//! flex and f32, each parameter's update is one pass over its values, spread over flex's
//! threads, with the same operations in the same order as Burn's on each value, so the same
//! results bit for bit (`the_fused_step_is_burns_bit_for_bit` checks). Anything else (other
//! backends, other float types, AMSGrad) runs Burn's `Adam`.

use burn::optim::{Adam, AdamConfig, AdamState, Optimizer};
use burn::optim::{LearningRate, ModuleOptimizer, decay::WeightDecayConfig};
use burn::tensor::{Device, Tensor};

/// Burn's `Adam` (`AdamConfig`'s β₁ = 0.9 and β₂ = 0.999, no AMSGrad, no clipping), with each
/// parameter's step in one parallel pass on flex: the same values as Burn's, faster.
#[derive(Clone)]
// Without flex, only Burn's `Adam` runs: the scalars are the fused step's.
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
pub struct FusedAdam {
    burn: Adam,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// The L2 penalty added to the gradient (`penalty · θ + g`), as Burn's weight decay.
    penalty: Option<f32>,
}

impl FusedAdam {
    /// Burn's Adam with `epsilon` and, when given, the L2 penalty `penalty` (Burn's
    /// `WeightDecayConfig`), as a `ModuleOptimizer` for `Optimizer::step`.
    pub fn optimizer(epsilon: f32, penalty: Option<f32>) -> ModuleOptimizer {
        ModuleOptimizer::from(Self::new(epsilon, penalty))
    }

    /// As [`FusedAdam::optimizer`], the optimizer itself.
    pub fn new(epsilon: f32, penalty: Option<f32>) -> Self {
        let config = AdamConfig::new()
            .with_epsilon(epsilon)
            .with_weight_decay(penalty.map(WeightDecayConfig::new));
        Self {
            burn: config.build(),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon,
            penalty,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        #[cfg(feature = "flex")]
        if flex::runs(&tensor, &grad, state.as_ref()) {
            return flex::step(self, lr, tensor, grad, state);
        }
        self.burn.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, Dispatch, Flex, backend_extension};
    use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate};
    use burn::tensor::DType;
    use rayon::prelude::*;

    use super::{FusedAdam, Tensor};

    /// Whether the fused step runs: flex, f32 everywhere, the moments without AMSGrad's
    /// maximum.
    pub(super) fn runs<const D: usize>(
        tensor: &Tensor<D>,
        grad: &Tensor<D>,
        state: Option<&AdamState<D>>,
    ) -> bool {
        let f32s = |t: &Tensor<D>| t.dtype() == DType::F32;
        crate::is_flex(&tensor.device())
            && f32s(tensor)
            && f32s(grad)
            && state.is_none_or(|s| {
                let m = &s.momentum;
                m.max_moment_2.is_none() && f32s(&m.moment_1) && f32s(&m.moment_2)
            })
    }

    /// The scalars of one step, as Burn computes them (f32).
    #[derive(Clone, Copy, Debug)]
    pub struct Scalars {
        beta_1: f32,
        beta_2: f32,
        /// `1 − β₁`, `1 − β₂`.
        factors: [f32; 2],
        /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
        combined: f32,
        /// `ε · √(1 − β₂ᵗ)`.
        epsilon: f32,
        lr: f32,
        penalty: Option<f32>,
        /// The first step: the moments start from the gradient alone.
        first: bool,
    }

    /// Adam's step on flex tensors.
    #[backend_extension(Flex)]
    pub trait AdamBackend: Backend {
        /// `(θ', m', v')` from `θ`, its gradient and its moments (ignored on the first step).
        fn baal_adam_step(
            tensor: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            moment_1: FloatTensor<Self>,
            moment_2: FloatTensor<Self>,
            scalars: Scalars,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    }

    /// Values per rayon job: large enough that a job's start costs little beside it.
    const CHUNK: usize = 1 << 14;

    impl AdamBackend for Flex {
        fn baal_adam_step(
            tensor: FlexTensor,
            grad: FlexTensor,
            moment_1: FlexTensor,
            moment_2: FlexTensor,
            s: Scalars,
        ) -> (FlexTensor, FlexTensor, FlexTensor) {
            // Updated in place where the buffers are ours alone (copied otherwise).
            let (mut tensor, grad) = (contiguous(tensor), contiguous(grad));
            let (mut m, mut v) = (contiguous(moment_1), contiguous(moment_2));
            let g = grad.storage::<f32>();
            let (theta, m_values, v_values) = (
                tensor.storage_mut::<f32>(),
                m.storage_mut::<f32>(),
                v.storage_mut::<f32>(),
            );
            theta
                .par_chunks_mut(CHUNK)
                .zip(m_values.par_chunks_mut(CHUNK))
                .zip(v_values.par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((theta, m), v), g)| {
                    pulp::Arch::new().dispatch(Update { theta, m, v, g, s });
                });
            (tensor, m, v)
        }
    }

    /// `t` with a contiguous buffer of its own values (the same tensor when it has one).
    fn contiguous(t: FlexTensor) -> FlexTensor {
        let contiguous = t.to_contiguous();
        drop(t);
        contiguous
    }

    /// One chunk's update, in code for the CPU's widest vectors (pulp's run-time dispatch).
    struct Update<'a> {
        theta: &'a mut [f32],
        m: &'a mut [f32],
        v: &'a mut [f32],
        g: &'a [f32],
        s: Scalars,
    }

    impl pulp::WithSimd for Update<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            match (self.s.first, self.s.penalty.is_some()) {
                (true, true) => self.run::<true, true>(),
                (true, false) => self.run::<true, false>(),
                (false, true) => self.run::<false, true>(),
                (false, false) => self.run::<false, false>(),
            }
        }
    }

    impl Update<'_> {
        /// Burn's operations on each value, in its order.
        #[inline(always)]
        fn run<const FIRST: bool, const DECAY: bool>(self) {
            let Self { theta, m, v, g, s } = self;
            let penalty = s.penalty.unwrap_or(0.0);
            for (((theta, m), v), &g) in theta.iter_mut().zip(m).zip(v).zip(g) {
                let g = if DECAY { *theta * penalty + g } else { g };
                if FIRST {
                    *m = g * s.factors[0];
                    *v = (g * g) * s.factors[1];
                } else {
                    *m = *m * s.beta_1 + g * s.factors[0];
                    *v = *v * s.beta_2 + (g * g) * s.factors[1];
                }
                let update = (*m * s.combined) / (v.sqrt() + s.epsilon);
                *theta -= update * s.lr;
            }
        }
    }

    pub(super) fn step<const D: usize>(
        adam: &FusedAdam,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let momentum = state.map(|s| s.momentum);
        let time = momentum.as_ref().map_or(1, |m| m.time + 1);
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - adam.beta_2.powi(t)).sqrt();
        let scalars = Scalars {
            beta_1: adam.beta_1,
            beta_2: adam.beta_2,
            factors: [1.0 - adam.beta_1, 1.0 - adam.beta_2],
            combined: bias_correction2_sqrt / (1.0 - adam.beta_1.powi(t)),
            epsilon: adam.epsilon * bias_correction2_sqrt,
            lr: lr as f32,
            penalty: adam.penalty,
            first: momentum.is_none(),
        };
        let (m, v) = match momentum {
            Some(m) => (m.moment_1, m.moment_2),
            None => (grad.clone(), grad.clone()),
        };
        let (theta, m, v) = <Dispatch as AdamBackend>::baal_adam_step(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            scalars,
        );
        let momentum =
            AdaptiveMomentumState::new(time, Tensor::from_dispatch(m), Tensor::from_dispatch(v));
        (Tensor::from_dispatch(theta), Some(AdamState::new(momentum)))
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn bits<const D: usize>(t: &Tensor<D>) -> Vec<u32> {
        t.to_data()
            .try_to_vec::<f32>()
            .expect("f32")
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn the_fused_step_is_burns_bit_for_bit() {
        let device = Device::flex();
        for penalty in [None, Some(5e-4)] {
            let ours = FusedAdam::new(1e-5, penalty);
            let burn = AdamConfig::new()
                .with_epsilon(1e-5)
                .with_weight_decay(penalty.map(WeightDecayConfig::new))
                .build();
            // An odd size that several jobs share unevenly, zeros among the gradients.
            let start = Tensor::<2>::random([37, 1201], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b) = (start.clone(), start);
            let (mut state_a, mut state_b) = (None, None);
            for step in 0..5 {
                let grad = Tensor::<2>::random([37, 1201], Distribution::Normal(0.0, 0.1), &device)
                    .mask_fill(
                        Tensor::<2>::random([37, 1201], Distribution::Uniform(0.0, 1.0), &device)
                            .lower_elem(0.1),
                        0.0,
                    );
                let lr = 1e-3 * (step + 1) as f64;
                (a, state_a) = ours.step(lr, a, grad.clone(), state_a);
                (b, state_b) = burn.step(lr, b, grad, state_b);
                assert_eq!(bits(&a), bits(&b), "step {step}, penalty {penalty:?}");
                let (sa, sb) = (
                    &state_a.as_ref().expect("a state").momentum,
                    &state_b.as_ref().expect("a state").momentum,
                );
                assert_eq!(sa.time, sb.time);
                assert_eq!(bits(&sa.moment_1), bits(&sb.moment_1), "step {step}");
                assert_eq!(bits(&sa.moment_2), bits(&sb.moment_2), "step {step}");
            }
        }
    }
}
