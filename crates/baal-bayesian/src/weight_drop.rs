//! DropConnect for any existing Burn module, without rewriting it.

use std::marker::PhantomData;

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Distribution, Tensor};

use crate::context::{McContext, Sampling, WRAPPED_WEIGHT, mask_tensor, per_iteration_masks};
use crate::error::check_probability;
use crate::model::{McBatch, McOutput, StochasticModel};

/// Configuration of a [`McDropConnect`] wrapper.
#[derive(Config, Debug)]
pub struct McDropConnectConfig {
    /// The probability of dropping a weight, in `[0, 1)`.
    pub weight_dropout: f64,
    /// Float parameters of this rank or more are dropped (2: dense and convolution weights,
    /// not biases or normalisation scales, which are rank 1).
    #[config(default = 2)]
    pub min_rank: usize,
}

impl McDropConnectConfig {
    /// Wraps `model`.
    ///
    /// # Errors
    /// `weight_dropout` is not a finite number in `[0, 1)`, or `min_rank` is 0.
    pub fn init<M: Module>(&self, model: M) -> crate::Result<McDropConnect<M>> {
        check_probability("McDropConnectConfig::weight_dropout", self.weight_dropout)?;
        if self.min_rank == 0 {
            return Err(crate::BayesianError::InvalidConfig {
                what: "McDropConnectConfig::min_rank",
                reason: "tensors have rank 1 or more; use 1 to drop every float parameter".into(),
            });
        }
        Ok(McDropConnect {
            model,
            weight_dropout: self.weight_dropout,
            min_rank: self.min_rank,
        })
    }
}

/// MC DropConnect on every weight of an existing Burn module (baal's `patch_module` /
/// `WeightDropLinear`, without touching the model's code).
///
/// For MC iteration `t`, [`McDropConnect::masked`] makes one copy of the module whose weights
/// are masked with the mask keyed by `(seed, wrapper, t, parameter)`, through
/// `ModuleMapper::map_float`. [`McDropConnect::forward`] splits a replicated batch into its
/// `k` replicas and runs replica `j` through the copy of iteration `t_j`, so every MC
/// iteration gets its own weight sample even when the iterations arrive as one replicated
/// batch.
///
/// Why a masked copy and not Burn's `Reparameterization`: a reparameterization draws its
/// mask inside `Param::val()`, which a layer calls once per forward pass, so all rows of a
/// replicated batch would share one weight sample (baal's fault: no MC diversity), and it
/// knows neither the MC iteration nor a seed, so masks could not be reproduced. The copy
/// costs one masked tensor per weight and iteration, small next to the forward pass. For
/// training with DropConnect, use [`DropConnectLinear`](crate::DropConnectLinear) /
/// [`DropConnectConv2d`](crate::DropConnectConv2d) or [`McContext::training`] with this
/// wrapper (fresh device-random masks each pass; gradients reach the stored weights through
/// the mask on an autodiff device).
#[derive(Debug, Clone)]
pub struct McDropConnect<M> {
    /// The wrapped module; its weights are the means of the DropConnect posterior.
    pub model: M,
    weight_dropout: f64,
    min_rank: usize,
}

impl<M: Module> McDropConnect<M> {
    /// The probability of dropping a weight.
    pub fn weight_dropout(&self) -> f64 {
        self.weight_dropout
    }

    /// The smallest rank of the parameters that are dropped.
    pub fn min_rank(&self) -> usize {
        self.min_rank
    }

    /// The wrapped module.
    pub fn into_inner(self) -> M {
        self.model
    }

    /// A copy of the module with the weight sample of MC iteration `iteration` under `seed`
    /// (the first DropConnect wrapper of a pass; see [`McDropConnect::forward`]).
    pub fn masked(&self, seed: u64, iteration: usize) -> M {
        self.masked_with(MaskSource::Seeded {
            seed,
            wrapper: 0,
            iteration,
        })
    }

    fn masked_with(&self, source: MaskSource) -> M {
        if self.weight_dropout == 0.0 {
            return self.model.clone();
        }
        self.model.clone().map(&mut MaskWeights {
            source,
            keep: 1.0 - self.weight_dropout,
            min_rank: self.min_rank,
            parameter: 0,
        })
    }

    /// Runs `forward` on masked copies of the module: one copy per MC replica of `input`
    /// under a seeded context, one device-random copy for [`McContext::training`].
    ///
    /// # Shapes
    /// - input: `[rows, ...]`, rows = MC replicas × items
    /// - output: `[rows, ...]`, the replicas' outputs concatenated
    ///
    /// For a seeded context whose rows the input does not hold, the module runs unmasked and
    /// [`McContext::check`] returns the error.
    pub fn forward<I: McBatch, O: McOutput>(
        &self,
        input: I,
        mc: &McContext,
        forward: impl Fn(&M, I) -> O,
    ) -> O {
        let wrapper = mc.next_layer();
        if mc.is_deterministic() {
            return forward(&self.model, input);
        }
        match mc.sampling() {
            Sampling::Device => forward(&self.masked_with(MaskSource::Device), input),
            Sampling::Seeded {
                seed,
                iterations,
                items,
                ..
            } => {
                if !mc.check_rows("McDropConnect", &[input.batch_size()]) {
                    // The sampler reports the error after the pass (McContext::check).
                    return forward(&self.model, input);
                }
                let outputs = iterations
                    .clone()
                    .enumerate()
                    .map(|(replica, iteration)| {
                        let model = self.masked_with(MaskSource::Seeded {
                            seed: *seed,
                            wrapper,
                            iteration,
                        });
                        forward(
                            &model,
                            input.narrow_items(replica * items.len(), items.len()),
                        )
                    })
                    .collect();
                O::cat_rows(outputs)
            }
        }
    }

    /// Turns the wrapper into a [`StochasticModel`] whose head is `forward` (no trunk: every
    /// weight is stochastic).
    pub fn with_forward<I, O, F>(self, forward: F) -> DropConnectModel<M, I, O, F>
    where
        I: McBatch,
        O: McOutput,
        F: Fn(&M, I) -> O,
    {
        DropConnectModel {
            wrapper: self,
            forward,
            types: PhantomData,
        }
    }
}

/// A [`McDropConnect`] wrapper and its forward function, as a [`StochasticModel`] for the
/// sampler (see [`McDropConnect::with_forward`]).
pub struct DropConnectModel<M, I, O, F> {
    /// The wrapped module.
    pub wrapper: McDropConnect<M>,
    forward: F,
    types: PhantomData<fn(I) -> O>,
}

impl<M, I, O, F> StochasticModel for DropConnectModel<M, I, O, F>
where
    M: Module,
    I: McBatch,
    O: McOutput,
    F: Fn(&M, I) -> O,
{
    type Input = I;
    type Features = I;
    type Output = O;

    fn trunk(&self, input: I) -> I {
        input
    }

    fn head(&self, features: I, mc: &McContext) -> O {
        self.wrapper.forward(features, mc, &self.forward)
    }
}

#[derive(Clone, Copy)]
enum MaskSource {
    Device,
    Seeded {
        seed: u64,
        wrapper: u64,
        iteration: usize,
    },
}

/// Masks every float parameter of rank `min_rank` or more, in traversal order.
struct MaskWeights {
    source: MaskSource,
    keep: f64,
    min_rank: usize,
    parameter: u64,
}

impl ModuleMapper for MaskWeights {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let parameter = self.parameter;
        self.parameter += 1;
        if D < self.min_rank {
            return param;
        }
        let id = param.id;
        // The effective value, with any reparameterization already applied.
        let value = param.val();
        let mask = match self.source {
            MaskSource::Device => {
                value.random_like(Distribution::Bernoulli(self.keep)) * (1.0 / self.keep)
            }
            MaskSource::Seeded {
                seed,
                wrapper,
                iteration,
            } => {
                let shape = value.dims();
                let values = per_iteration_masks(
                    WRAPPED_WEIGHT,
                    seed,
                    (wrapper << 32) ^ parameter,
                    &(iteration..iteration + 1),
                    shape.iter().product(),
                    self.keep,
                );
                mask_tensor(values, shape, &value.device(), value.dtype())
            }
        };
        Param::initialized(id, value * mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Mlp {
        first: Linear,
        second: Linear,
    }

    impl Mlp {
        fn new(device: &Device) -> Self {
            Self {
                first: LinearConfig::new(6, 12).init(device),
                second: LinearConfig::new(12, 3).init(device),
            }
        }

        fn forward(&self, input: Tensor<2>) -> Tensor<2> {
            self.second.forward(self.first.forward(input))
        }
    }

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec_as::<f32>().expect("f32 data")
    }

    #[test]
    fn bad_configs_are_errors() {
        let device = Device::default();
        assert!(
            McDropConnectConfig::new(1.0)
                .init(Mlp::new(&device))
                .is_err()
        );
        assert!(
            McDropConnectConfig::new(0.5)
                .with_min_rank(0)
                .init(Mlp::new(&device))
                .is_err()
        );
    }

    #[test]
    fn masks_weights_not_biases_at_rate_p() -> Result<()> {
        let device = Device::default();
        let wrapper = McDropConnectConfig::new(0.25).init(Mlp::new(&device))?;
        let masked = wrapper.masked(1, 0);
        let weight = values(masked.first.weight.val());
        let dropped = weight.iter().filter(|v| **v == 0.0).count() as f64 / weight.len() as f64;
        assert!((dropped - 0.25).abs() < 0.15, "drop rate {dropped}");
        let original = values(wrapper.model.first.weight.val());
        for (m, o) in weight.iter().zip(&original) {
            assert!(*m == 0.0 || (m - o / 0.75).abs() < 1e-5);
        }
        assert_eq!(
            values(masked.first.bias.as_ref().expect("bias").val()),
            values(wrapper.model.first.bias.as_ref().expect("bias").val())
        );
        // Another iteration draws another sample; the same one draws the same.
        assert_ne!(weight, values(wrapper.masked(1, 1).first.weight.val()));
        assert_eq!(weight, values(wrapper.masked(1, 0).first.weight.val()));
        Ok(())
    }

    #[test]
    fn replicas_of_one_input_differ_in_a_single_pass() -> Result<()> {
        let device = Device::default();
        let wrapper = McDropConnectConfig::new(0.5).init(Mlp::new(&device))?;
        let input = Tensor::<2>::random([1, 6], Distribution::Default, &device);
        let mc = McContext::seeded(3, 0..5, 0..1)?;
        let output =
            values(wrapper.forward(input.repeat_dim(0, 5), &mc, |m: &Mlp, x| m.forward(x)));
        let rows: Vec<&[f32]> = output.chunks(3).collect();
        for a in 0..5 {
            for b in a + 1..5 {
                assert_ne!(rows[a], rows[b], "replicas {a} and {b}");
            }
        }
        Ok(())
    }

    #[cfg(feature = "autodiff")]
    #[test]
    fn training_through_the_wrapper_reaches_the_stored_weights() -> Result<()> {
        let device = Device::default().autodiff();
        let wrapper = McDropConnectConfig::new(0.5).init(Mlp::new(&device))?;
        let output = wrapper.forward(
            Tensor::<2>::ones([2, 6], &device),
            &McContext::training(),
            |mlp: &Mlp, input| mlp.forward(input),
        );
        let grads = output.sum().backward();
        assert!(wrapper.model.first.weight.val().grad(&grads).is_some());
        assert!(wrapper.model.second.weight.val().grad(&grads).is_some());
        Ok(())
    }
}
