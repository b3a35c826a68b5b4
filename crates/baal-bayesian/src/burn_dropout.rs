//! MC sampling of a model that uses Burn's own `burn::nn::Dropout`, unchanged.

use std::marker::PhantomData;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::context::{McContext, Sampling, stream};
use crate::error::BayesianError;
use crate::model::{McOutput, StochasticModel};

/// Domain tag of the device seeds this adapter derives.
const BURN_DROPOUT: u64 = 0x6275_726e; // "burn"

/// A Burn module whose stochastic layers are Burn's own (`burn::nn::Dropout`, or any layer
/// that samples only while training on an autodiff device), MC-sampled without changing its
/// code.
///
/// Burn's `Dropout` drops only when its training flag is on *and* its input lives on an
/// autodiff device. This adapter keeps the module on the autodiff form of `device` with its
/// training flags on and its parameters not requiring gradients, and runs each replicated
/// pass there: every row gets its own dropout mask, no gradient is tracked, and the outputs
/// come back to the plain device. Use it with [`McSampler`](crate::McSampler) like any
/// [`StochasticModel`] ([`BurnDropout::with_forward`] names the forward function).
///
/// What it cannot do, and our MC layers can:
/// - **Masks come from the device's generator**, seeded at each pass from the sampler's seed,
///   its first iteration and the pass's items: the same pool, batch size and memory budget
///   give the same predictions, but an item's samples change with the batch it comes in (our
///   layers key each mask by `(seed, layer, iteration, item)`), and the device generator is
///   shared with whatever else runs on the device.
/// - **No consistent samples**: a pass that asks for them (BatchBALD, EPIG) is an error.
/// - **No trunk**: the whole model runs `T` times (our layers let everything before the first
///   dropout run once).
/// - Each pass pays the autodiff backend's dispatch.
///
/// With [`McSampler::deterministic`](crate::McSampler::deterministic) (deep ensembles) the
/// module runs in its validation form, dropout off.
#[derive(Debug, Clone)]
pub struct BurnDropout<M> {
    /// The module, on the autodiff device, training flags on, no gradients.
    model: M,
    /// The module's validation form (dropout off), for deterministic passes.
    valid: M,
}

impl<M: Module> BurnDropout<M> {
    /// Prepares `model` (built or trained anywhere) for MC sampling on `device`: moved to its
    /// autodiff form, training flags on, parameters not requiring gradients.
    pub fn new(model: M, device: &Device) -> Self {
        let sampling = model
            .fork(&device.clone().autodiff())
            .train()
            .set_require_grad(false);
        let valid = sampling.valid();
        Self {
            model: sampling,
            valid,
        }
    }

    /// The module as it samples (on the autodiff device).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// A [`StochasticModel`] whose forward pass is `forward` (the model's own `forward`, for
    /// example `|model: &Net, x| model.forward(x)`), returning logits `[rows, C]` or
    /// `[rows, C, P]`.
    pub fn with_forward<const D: usize, O, F>(self, forward: F) -> BurnDropoutModel<M, D, O, F>
    where
        O: McOutput,
        F: Fn(&M, Tensor<D>) -> O,
    {
        BurnDropoutModel {
            adapter: self,
            forward,
            types: PhantomData,
        }
    }
}

/// A [`BurnDropout`] adapter and its forward function, as a [`StochasticModel`].
pub struct BurnDropoutModel<M, const D: usize, O, F> {
    /// The adapter.
    pub adapter: BurnDropout<M>,
    forward: F,
    types: PhantomData<fn() -> O>,
}

impl<M, const D: usize, O, F> StochasticModel for BurnDropoutModel<M, D, O, F>
where
    M: Module,
    O: McOutput,
    F: Fn(&M, Tensor<D>) -> O,
{
    type Input = Tensor<D>;
    type Features = Tensor<D>;
    type Output = O;

    fn trunk(&self, input: Tensor<D>) -> Tensor<D> {
        input
    }

    fn head(&self, features: Tensor<D>, mc: &McContext) -> O {
        // Counted as one stochastic layer: the sampler refuses a pass that called none.
        mc.next_layer();
        if mc.is_deterministic() {
            return (self.forward)(&self.adapter.valid, features);
        }
        if mc.is_consistent() {
            mc.fail(BayesianError::InvalidConfig {
                what: "BurnDropout",
                reason: "Burn's dropout draws its own mask for every row, so it cannot give \
                         consistent samples (one network per MC iteration for every item), \
                         which BatchBALD and EPIG need; build the model with \
                         baal_bayesian::ConsistentMcDropout or McDropout instead"
                    .into(),
            });
            return (self.forward)(&self.adapter.valid, features);
        }
        if let Sampling::Seeded {
            seed,
            iterations,
            items,
            ..
        } = mc.sampling()
        {
            let mut key = stream(&[
                BURN_DROPOUT,
                *seed,
                iterations.start as u64,
                iterations.len() as u64,
                items.first().map_or(0, |&item| item as u64),
                items.len() as u64,
            ]);
            features.device().seed(rand::RngCore::next_u64(&mut key));
        }
        (self.forward)(&self.adapter.model, features.autodiff()).without_autodiff()
    }
}
