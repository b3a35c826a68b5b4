//! DropConnect layers: MC sampling over weights rather than activations.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::linear;
use burn::tensor::{Device, Distribution, Tensor};

use crate::context::{McContext, Sampling, WEIGHT, mask_tensor, per_iteration_masks};
use crate::error::check_probability;

/// Configuration of a [`DropConnectLinear`] layer.
#[derive(Config, Debug)]
pub struct DropConnectLinearConfig {
    /// The wrapped linear layer.
    pub linear: LinearConfig,
    /// The probability of dropping a weight, in `[0, 1)`.
    pub weight_dropout: f64,
}

impl DropConnectLinearConfig {
    /// Initialises a [`DropConnectLinear`] on `device`.
    ///
    /// # Errors
    /// `weight_dropout` is not a finite number in `[0, 1)`.
    pub fn init(&self, device: &Device) -> crate::Result<DropConnectLinear> {
        check_probability(
            "DropConnectLinearConfig::weight_dropout",
            self.weight_dropout,
        )?;
        Ok(DropConnectLinear {
            linear: self.linear.init(device),
            weight_dropout: self.weight_dropout,
        })
    }
}

/// A linear layer whose weights (not its bias) are dropped at random, at training and at
/// inference (Wan et al., 2013; Mobiny et al., 2019, *DropConnect is effective in modeling
/// uncertainty of Bayesian deep networks*).
///
/// Under the sampler, MC iteration `t` uses the weight mask keyed by `(seed, layer, t)`: one
/// sample of the weights, shared by every item of that iteration and drawn afresh for every
/// iteration, *including* when the `k` iterations run as one replicated batch (the replicas
/// are multiplied by their own masked weights in one batched matmul). baal's `WeightDrop`
/// shares one mask across replicas, which gives no MC diversity at all.
#[derive(Module, Debug)]
pub struct DropConnectLinear {
    /// The wrapped linear layer; its weights are the means of the DropConnect posterior.
    pub linear: Linear,
    /// The probability of dropping a weight, in `[0, 1)`.
    pub weight_dropout: f64,
}

impl DropConnectLinear {
    /// Applies the linear transformation with dropped weights, kept weights scaled by
    /// `1 / (1 - weight_dropout)`.
    ///
    /// # Shapes
    /// - input: `[rows, ..., d_input]`, rows = MC replicas × items
    /// - output: `[rows, ..., d_output]`
    ///
    /// # Panics
    /// If the input's rank is below 2 or its last axis is not `d_input`. For a seeded context
    /// whose rows the input does not hold, the layer runs unmasked and [`McContext::check`]
    /// returns the error.
    pub fn forward<const D: usize>(&self, input: Tensor<D>, mc: &McContext) -> Tensor<D> {
        let layer = mc.next_layer();
        let weight = self.linear.weight.val();
        let bias = self.linear.bias.as_ref().map(Param::val);
        let [d_input, d_output] = weight.dims();
        let dims = input.dims();
        assert!(
            D >= 2 && dims[D - 1] == d_input,
            "DropConnectLinear: expected input [rows, ..., {d_input}], got {dims:?}"
        );
        if self.weight_dropout == 0.0 || mc.is_deterministic() {
            return linear(input, weight, bias);
        }
        let keep = 1.0 - self.weight_dropout;
        match mc.sampling() {
            Sampling::Device => {
                let mask = weight.random_like(Distribution::Bernoulli(keep)) * (1.0 / keep);
                linear(input, weight * mask, bias)
            }
            Sampling::Seeded {
                seed, iterations, ..
            } => {
                if !mc.check_rows("DropConnectLinear", &dims) {
                    // The sampler reports the error after the pass (McContext::check).
                    return linear(input, weight, bias);
                }
                let replicas = iterations.len();
                let values =
                    per_iteration_masks(WEIGHT, *seed, layer, iterations, d_input * d_output, keep);
                let masks: Tensor<3> = mask_tensor(
                    values,
                    [replicas, d_input, d_output],
                    &weight.device(),
                    weight.dtype(),
                );
                let weights = weight.unsqueeze_dim::<3>(0) * masks;
                let rows_per_replica = dims[..D - 1].iter().product::<usize>() / replicas;
                let view: Tensor<3> = input.reshape([replicas, rows_per_replica, d_input]);
                let mut output = view.matmul(weights);
                if let Some(bias) = bias {
                    output = output + bias.reshape([1, 1, d_output]);
                }
                let mut output_dims = dims;
                output_dims[D - 1] = d_output;
                output.reshape(output_dims)
            }
        }
    }
}

/// Configuration of a [`DropConnectConv2d`] layer.
#[derive(Config, Debug)]
pub struct DropConnectConv2dConfig {
    /// The wrapped convolution.
    pub conv: Conv2dConfig,
    /// The probability of dropping a weight, in `[0, 1)`.
    pub weight_dropout: f64,
}

impl DropConnectConv2dConfig {
    /// Initialises a [`DropConnectConv2d`] on `device`.
    ///
    /// # Errors
    /// `weight_dropout` is not a finite number in `[0, 1)`.
    pub fn init(&self, device: &Device) -> crate::Result<DropConnectConv2d> {
        check_probability(
            "DropConnectConv2dConfig::weight_dropout",
            self.weight_dropout,
        )?;
        Ok(DropConnectConv2d {
            conv: self.conv.init(device),
            weight_dropout: self.weight_dropout,
        })
    }
}

/// A 2D convolution whose kernel weights (not its bias) are dropped at random, at training and
/// at inference. Like [`DropConnectLinear`], every MC iteration has its own kernel mask, also
/// when several iterations run in one replicated pass.
#[derive(Module, Debug)]
pub struct DropConnectConv2d {
    /// The wrapped convolution; its weights are the means of the DropConnect posterior.
    pub conv: Conv2d,
    /// The probability of dropping a weight, in `[0, 1)`.
    pub weight_dropout: f64,
}

impl DropConnectConv2d {
    /// Applies the convolution with dropped kernel weights, kept weights scaled by
    /// `1 / (1 - weight_dropout)`.
    ///
    /// # Shapes
    /// - input: `[rows, channels_in, height_in, width_in]`, rows = MC replicas × items
    /// - output: `[rows, channels_out, height_out, width_out]`
    ///
    /// # Panics
    /// As Burn's `Conv2d` if the channels do not match. For a seeded context whose rows the
    /// input does not hold, the layer runs unmasked and [`McContext::check`] returns the error.
    pub fn forward(&self, input: Tensor<4>, mc: &McContext) -> Tensor<4> {
        let layer = mc.next_layer();
        if self.weight_dropout == 0.0 || mc.is_deterministic() {
            return self.conv.forward(input);
        }
        let keep = 1.0 - self.weight_dropout;
        let weight = self.conv.weight.val();
        match mc.sampling() {
            Sampling::Device => {
                let mask = weight.random_like(Distribution::Bernoulli(keep)) * (1.0 / keep);
                self.with_weight(weight * mask).forward(input)
            }
            Sampling::Seeded {
                seed,
                iterations,
                items,
                ..
            } => {
                if !mc.check_rows("DropConnectConv2d", &input.dims()) {
                    // The sampler reports the error after the pass (McContext::check).
                    return self.conv.forward(input);
                }
                let shape = weight.dims();
                let per_iteration = shape.iter().product::<usize>();
                let values =
                    per_iteration_masks(WEIGHT, *seed, layer, iterations, per_iteration, keep);
                let masks: Tensor<5> = mask_tensor(
                    values,
                    [iterations.len(), shape[0], shape[1], shape[2], shape[3]],
                    &weight.device(),
                    weight.dtype(),
                );
                // One convolution per replica, each with its own kernel sample.
                let outputs = (0..iterations.len())
                    .map(|replica| {
                        let mask: Tensor<4> = masks.clone().narrow(0, replica, 1).reshape(shape);
                        self.with_weight(weight.clone() * mask)
                            .forward(input.clone().narrow(0, replica * items.len(), items.len()))
                    })
                    .collect();
                Tensor::cat(outputs, 0)
            }
        }
    }

    /// The wrapped convolution with its weight replaced (same parameter id, no gradient
    /// bookkeeping changed, so training still reaches the stored weight through the mask).
    fn with_weight(&self, weight: Tensor<4>) -> Conv2d {
        Conv2d {
            weight: Param::initialized(self.conv.weight.id, weight),
            bias: self.conv.bias.clone(),
            stride: self.conv.stride,
            kernel_size: self.conv.kernel_size,
            dilation: self.conv.dilation,
            groups: self.conv.groups,
            padding: self.conv.padding.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BayesianError, Result};

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec_as::<f32>().expect("f32 data")
    }

    #[test]
    fn bad_weight_dropout_is_an_error() {
        let device = Device::default();
        for p in [-0.5, 1.0, f64::NAN] {
            let linear = DropConnectLinearConfig::new(LinearConfig::new(3, 2), p).init(&device);
            assert!(matches!(
                linear,
                Err(BayesianError::InvalidProbability { .. })
            ));
            let conv =
                DropConnectConv2dConfig::new(Conv2dConfig::new([1, 2], [3, 3]), p).init(&device);
            assert!(conv.is_err());
        }
    }

    #[test]
    fn replicas_of_one_input_differ_in_a_single_linear_pass() -> Result<()> {
        let device = Device::default();
        let layer = DropConnectLinearConfig::new(LinearConfig::new(16, 8), 0.5).init(&device)?;
        let input = Tensor::<2>::random([1, 16], Distribution::Default, &device);
        let replicas = 6;
        let mc = McContext::seeded(11, 0..replicas, 0..1)?;
        let output = values(layer.forward(input.clone().repeat_dim(0, replicas), &mc));
        let rows: Vec<&[f32]> = output.chunks(8).collect();
        for a in 0..replicas {
            for b in a + 1..replicas {
                assert_ne!(rows[a], rows[b], "replicas {a} and {b} share a weight mask");
            }
        }
        // Iteration 3 alone gives replica 3's output.
        let alone = values(layer.forward(input, &McContext::seeded(11, 3..4, 0..1)?));
        for (a, b) in alone.iter().zip(rows[3]) {
            assert!((a - b).abs() < 1e-5);
        }
        Ok(())
    }

    #[test]
    fn one_weight_sample_is_shared_by_the_items_of_an_iteration() -> Result<()> {
        let device = Device::default();
        let layer = DropConnectLinearConfig::new(LinearConfig::new(4, 3).with_bias(false), 0.5)
            .init(&device)?;
        // Two identical items, two iterations: rows 0 and 1 agree, rows 0 and 2 do not.
        let input = Tensor::<2>::ones([4, 4], &device);
        let output = values(layer.forward(input, &McContext::seeded(2, 0..2, 0..2)?));
        assert_eq!(output[0..3], output[3..6]);
        assert_eq!(output[6..9], output[9..12]);
        assert_ne!(output[0..3], output[6..9]);
        Ok(())
    }

    #[test]
    fn zero_weight_dropout_is_the_plain_layer() -> Result<()> {
        let device = Device::default();
        let layer = DropConnectLinearConfig::new(LinearConfig::new(5, 2), 0.0).init(&device)?;
        let input = Tensor::<2>::random([6, 5], Distribution::Default, &device);
        let mc = McContext::seeded(0, 0..3, 0..2)?;
        assert_eq!(
            values(layer.forward(input.clone(), &mc)),
            values(layer.linear.forward(input))
        );
        Ok(())
    }

    #[test]
    fn replicas_of_one_image_differ_in_a_single_conv_pass() -> Result<()> {
        let device = Device::default();
        let layer =
            DropConnectConv2dConfig::new(Conv2dConfig::new([2, 3], [3, 3]), 0.5).init(&device)?;
        let input = Tensor::<4>::random([1, 2, 6, 6], Distribution::Default, &device);
        let replicas = 4;
        let mc = McContext::seeded(5, 0..replicas, 0..1)?;
        let output = layer.forward(input.clone().repeat_dim(0, replicas), &mc);
        assert_eq!(output.dims(), [4, 3, 4, 4]);
        let output = values(output);
        let rows: Vec<&[f32]> = output.chunks(3 * 16).collect();
        for a in 0..replicas {
            for b in a + 1..replicas {
                assert_ne!(rows[a], rows[b], "replicas {a} and {b} share a kernel mask");
            }
        }
        let alone = values(layer.forward(input, &McContext::seeded(5, 2..3, 0..1)?));
        for (a, b) in alone.iter().zip(rows[2]) {
            assert!((a - b).abs() < 1e-5);
        }
        Ok(())
    }

    #[cfg(feature = "autodiff")]
    #[test]
    fn training_mode_draws_from_the_device_and_trains() -> Result<()> {
        let device = Device::default().autodiff();
        let layer = DropConnectLinearConfig::new(LinearConfig::new(8, 4), 0.5).init(&device)?;
        let input = Tensor::<2>::ones([3, 8], &device);
        let loss = layer.forward(input, &McContext::training()).sum();
        let grads = loss.backward();
        let grad = layer.linear.weight.val().grad(&grads);
        assert!(grad.is_some(), "gradients reach the stored weights");
        Ok(())
    }
}
