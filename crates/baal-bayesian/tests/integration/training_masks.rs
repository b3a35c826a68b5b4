//! Training masks (MC dropout under `McContext::training()`) are Burn's Bernoulli masks, bit for
//! bit: on flex they are drawn another, faster way (`dropout.rs`, `flex_training_mask`) that
//! must not change a training run.

use baal_bayesian::{ConsistentMcDropout2dConfig, McContext, McDropoutConfig};
use burn::tensor::{Device, Distribution, Tensor};

use crate::serial;

/// Burn's mask for `[rows, features]` at `keep`, drawn right after seeding with `seed`.
fn burns_mask(device: &Device, seed: u64, [rows, features]: [usize; 2], keep: f64) -> Vec<u32> {
    device.seed(seed);
    let mask = Tensor::<4>::random(
        [1, rows, features, 1],
        Distribution::Bernoulli(keep),
        device,
    ) * (1.0 / keep);
    bits(mask)
}

fn bits<const D: usize>(tensor: Tensor<D>) -> Vec<u32> {
    let values = tensor.into_data().try_to_vec::<f32>().expect("f32 values");
    values.into_iter().map(f32::to_bits).collect()
}

#[test]
fn training_masks_are_burns_bernoulli_masks() {
    let _serial = serial();
    // Every zoo model's dropout (0.25, 0.5), 0.1, and one above 1/2 (another path).
    for device in [Device::flex(), Device::flex().autodiff()] {
        for (i, prob) in [0.5, 0.25, 0.1, 0.7].into_iter().enumerate() {
            let (rows, features) = (64, 3872 + i);
            let seed = 11 + i as u64;
            let expected = burns_mask(&device, seed, [rows, features], 1.0 - prob);
            device.seed(seed);
            let dropout = McDropoutConfig::new(prob).init().expect("dropout");
            let ones = Tensor::<2>::ones([rows, features], &device);
            let ours = bits(dropout.forward(ones, &McContext::training()));
            assert_eq!(ours, expected, "p = {prob} on {device:?}");
            let kept = ours.iter().filter(|&&b| b != 0).count() as f64 / ours.len() as f64;
            assert!(
                (kept - (1.0 - prob)).abs() < 0.01,
                "kept {kept} at p = {prob}"
            );
        }
    }
}

#[test]
fn channel_training_masks_are_burns_too() {
    let _serial = serial();
    let device = Device::flex().autodiff();
    let (rows, channels, positions) = (8, 32, 25);
    let expected = burns_mask(&device, 3, [rows, channels], 0.75);
    device.seed(3);
    let dropout = ConsistentMcDropout2dConfig::new(0.25)
        .init()
        .expect("dropout");
    let ones = Tensor::<3>::ones([rows, channels, positions], &device);
    let ours = bits(dropout.forward(ones, &McContext::training()));
    // Each channel's entry repeated over its positions.
    let spread: Vec<u32> = expected
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, positions))
        .collect();
    assert_eq!(ours, spread);
}
