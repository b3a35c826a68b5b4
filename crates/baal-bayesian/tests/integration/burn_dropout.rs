//! A model written with Burn's own `burn::nn::Dropout`, MC-sampled through `BurnDropout`.

use baal_bayesian::{BayesianError, BurnDropout, McSamplerConfig, OutputActivation, Result};
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};

/// A plain Burn model: nothing of this crate in it.
#[derive(Module, Debug)]
struct Net {
    hidden: Linear,
    dropout: Dropout,
    output: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(6, 32).init(device),
            dropout: DropoutConfig::new(0.5).init(),
            output: LinearConfig::new(32, 4).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output
            .forward(self.dropout.forward(relu(self.hidden.forward(x))))
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32")
}

#[test]
fn burn_dropout_samples_on_the_autodiff_device_and_is_reproducible() -> Result<()> {
    let _serial = crate::serial();
    let device = Device::default();
    let net = Net::new(&device);
    let input = Tensor::<2>::random([10, 6], Distribution::Normal(0.0, 1.0), &device);
    let sampler = McSamplerConfig::new(8).with_seed(4).init()?;

    // On the plain device Burn's dropout does nothing: every iteration is the same network.
    let plain = net.valid();
    let once = values(plain.forward(input.clone()));
    let model = BurnDropout::new(net, &device).with_forward(|net: &Net, x| net.forward(x));
    let probs = sampler.predict_batch(&model, input.clone())?;
    assert_eq!(probs.dims(), [10, 4, 8]);
    assert!(
        !probs.device().is_autodiff(),
        "predictions come back to the plain device"
    );
    let samples = values(probs.clone());
    let varying = samples
        .chunks(8)
        .filter(|row| row.iter().any(|v| (v - row[0]).abs() > 1e-6))
        .count();
    assert!(varying * 10 > 9 * samples.len() / 8, "{varying} rows vary");
    let sums = values(probs.sum_dim(1));
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
    // Same seed, same predictions; another seed, others.
    assert_eq!(
        values(sampler.predict_batch(&model, input.clone())?),
        samples
    );
    let other = McSamplerConfig::new(8).with_seed(5).init()?;
    assert_ne!(values(other.predict_batch(&model, input.clone())?), samples);

    // Dropout off (an ensemble member's prediction): the validation form's output.
    let off = sampler.deterministic();
    let logits = McSamplerConfig::new(1)
        .with_activation(OutputActivation::Identity)
        .with_stochastic(false)
        .init()?
        .predict_batch(&model, input.clone())?;
    for (a, b) in values(logits).iter().zip(&once) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert_eq!(off.predict_batch(&model, input.clone())?.dims(), [10, 4, 1]);

    // Consistent samples cannot be had from Burn's dropout: an error, not wrong scores.
    let consistent = McSamplerConfig::new(8).with_consistent(true).init()?;
    match consistent.predict_batch(&model, input) {
        Err(BayesianError::InvalidConfig { what, reason }) => {
            assert_eq!(what, "BurnDropout");
            assert!(reason.contains("ConsistentMcDropout"), "{reason}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn burn_dropout_drops_at_its_rate_with_a_mask_per_row() -> Result<()> {
    let _serial = crate::serial();
    #[derive(Module, Debug)]
    struct OnlyDropout {
        dropout: Dropout,
    }
    let device = Device::default();
    let model = BurnDropout::new(
        OnlyDropout {
            dropout: DropoutConfig::new(0.3).init(),
        },
        &device,
    )
    .with_forward(|m: &OnlyDropout, x: Tensor<2>| m.dropout.forward(x));
    let sampler = McSamplerConfig::new(4)
        .with_activation(OutputActivation::Identity)
        .init()?;
    let out = values(sampler.predict_batch(&model, Tensor::<2>::ones([50, 200], &device))?);
    let dropped = out.iter().filter(|v| **v == 0.0).count() as f64 / out.len() as f64;
    assert!((dropped - 0.3).abs() < 0.01, "dropped {dropped}");
    let kept = out.iter().find(|v| **v != 0.0).expect("kept");
    assert!((kept - 1.0 / 0.7).abs() < 1e-5);
    // [N, C, T] with C = 200 features: rows (item, iteration) draw their own masks.
    let row = |item: usize, t: usize| -> Vec<f32> {
        (0..200).map(|c| out[(item * 200 + c) * 4 + t]).collect()
    };
    assert_ne!(row(0, 0), row(0, 1));
    assert_ne!(row(0, 0), row(1, 0));
    Ok(())
}
