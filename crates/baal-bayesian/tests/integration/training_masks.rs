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

#[test]
fn masks_drawn_ahead_are_the_masks_the_pass_draws() {
    let _serial = serial();
    // Two layers in a row, an element-wise and a channel one, as a head draws them.
    let device = Device::flex().autodiff();
    let first = McDropoutConfig::new(0.25).init().expect("dropout");
    let second = ConsistentMcDropout2dConfig::new(0.5)
        .init()
        .expect("dropout");
    let (a, b) = ([16, 40], [16, 6, 3]);
    let pass = |mc: &McContext| {
        let x = first.forward(Tensor::<2>::ones(a, &device), mc);
        let y = second.forward(Tensor::<3>::ones(b, &device), mc);
        (bits(x), bits(y))
    };
    device.seed(5);
    let drawn_in_pass = pass(&McContext::training());

    device.seed(5);
    let dtype = burn::tensor::DType::F32;
    let masks = [
        first.draw_training_mask(&a, &device, dtype),
        second.draw_training_mask(&b, &device, dtype),
    ];
    let masks: Vec<_> = masks.into_iter().map(|m| m.expect("a mask")).collect();
    assert_eq!(masks[1].dims(), [1, 16, 6, 1], "one entry per channel");
    // Whatever else the device draws now does not change the pass.
    let _ = Tensor::<2>::random([7, 7], Distribution::Default, &device);
    let drawn_ahead = pass(&McContext::training_with_masks(masks));
    assert_eq!(drawn_ahead, drawn_in_pass);

    // A mask of another shape is left for a later layer; this one draws its own.
    device.seed(5);
    let wrong = first
        .draw_training_mask(&[16, 41], &device, dtype)
        .expect("a mask");
    device.seed(5);
    let drawn_again = pass(&McContext::training_with_masks(vec![wrong]));
    assert_eq!(drawn_again, drawn_in_pass);
}

#[test]
fn a_layer_that_drops_nothing_draws_no_mask() {
    let dropout = McDropoutConfig::new(0.0).init().expect("dropout");
    let mask = dropout.draw_training_mask(&[4, 4], &Device::flex(), burn::tensor::DType::F32);
    assert!(mask.is_none());
}
