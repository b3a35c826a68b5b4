//! Image batches: [`ImageItem`]s to normalised `[N, C, H, W]` tensors.

use std::sync::Arc;

use baal::active::InputBatcher;
use baal::data::ImageItem;
use burn::tensor::{Device, Tensor, TensorData};

use baal::burn;

/// Per-channel mean and standard deviation of a dataset's pixels in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Mean of each channel.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Fashion-MNIST's statistics.
    pub fn fashion_mnist() -> Self {
        Self {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }

    /// MNIST's statistics.
    pub fn mnist() -> Self {
        Self {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }

    /// CIFAR-10's statistics.
    pub fn cifar10() -> Self {
        Self {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }
}

/// Stacks images of one shape into a normalised `[N, C, H, W]` tensor on `device`.
///
/// # Panics
/// The items have different shapes or the normalisation has fewer channels than the images
/// (a broken dataset: every loader checks shapes).
pub fn image_batch(
    items: &[ImageItem],
    normalization: &Normalization,
    device: &Device,
) -> Tensor<4> {
    let Some(first) = items.first() else {
        return Tensor::zeros([0, 1, 1, 1], device);
    };
    let [channels, height, width] = first.shape;
    let plane = height * width;
    let mut values = Vec::with_capacity(items.len() * channels * plane);
    for item in items {
        assert_eq!(item.shape, first.shape, "images of one batch share a shape");
        for (c, pixels) in item.image.chunks(plane).enumerate() {
            let (mean, std) = (normalization.mean[c], normalization.std[c]);
            values.extend(pixels.iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
        }
    }
    Tensor::from_data(
        TensorData::new(values, [items.len(), channels, height, width]),
        device,
    )
}

/// An [`InputBatcher`] of images for the trainer and the loop.
pub fn image_batcher(normalization: Normalization) -> InputBatcher<ImageItem, Tensor<4>> {
    Arc::new(move |items: Vec<ImageItem>, device: &Device| {
        image_batch(&items, &normalization, device)
    })
}
