//! Per-channel pixel statistics: the published ones of the named datasets, or those of the
//! images themselves.

use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::loaders::ImageDataset;

/// Per-channel mean and standard deviation of a dataset's pixels in `[0, 1]` (serialised as
/// `{"mean": [...], "std": [...]}`, as a model folder's card holds it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

    /// The statistics of `images` themselves (for data without published ones: a `.npy`
    /// array, a folder of files); a channel's deviation is at least 1e-3.
    ///
    /// # Errors
    /// An image cannot be read (the statistics of the others would be those of other data).
    pub fn of_images(images: &ImageDataset) -> Result<Self> {
        let [channels, height, width] = images.shape();
        let plane = height * width;
        let mut sum = vec![0f64; channels];
        let mut squares = vec![0f64; channels];
        for index in 0..images.len() {
            let item = images
                .get(index)
                .map_err(|source| DataError::Item { index, source })?;
            for (c, pixels) in item.image.chunks(plane).enumerate() {
                for &p in pixels {
                    let v = f64::from(p) / 255.0;
                    sum[c] += v;
                    squares[c] += v * v;
                }
            }
        }
        let count = (images.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = squares
            .iter()
            .zip(&mean)
            .map(|(sq, m)| ((sq / count - m * m).max(0.0).sqrt().max(1e-3)) as f32)
            .collect();
        Ok(Self {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statistics_of_images_are_their_mean_and_deviation_per_channel() {
        // Two 1×1×2 images: pixels 0, 255 and 255, 255.
        let images = ImageDataset::new(vec![0, 255, 255, 255], vec![0, 1], [1, 1, 2], 2)
            .expect("valid images");
        let n = Normalization::of_images(&images).expect("readable");
        assert!((n.mean[0] - 0.75).abs() < 1e-6, "{n:?}");
        assert!(
            (n.std[0] - 0.75f32.mul_add(-0.75, 0.75).sqrt()).abs() < 1e-6,
            "{n:?}"
        );
    }
}
