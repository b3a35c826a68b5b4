//! Image batches: [`ImageItem`]s (or images normalised once, [`NormalizedImages`]) to
//! normalised `[N, C, H, W]` tensors.

use std::sync::Arc;

use baal_active::InputBatcher;
use baal_data::ImageItem;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The per-channel statistics images are normalised with; it lives beside the loaders, with
/// each named dataset's published constants.
pub use baal_data::Normalization;

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

/// A normalised image (`(pixel / 255 - mean) / std` per channel, CHW order) and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizedImage {
    /// Normalised pixel values, channel, then row, then column.
    pub pixels: Vec<f32>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// The class.
    pub label: u8,
}

/// Normalised images of one shape with their classes, held in memory (normalised once, not
/// per batch); a Burn [`Dataset`] of [`NormalizedImage`]s. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct NormalizedImages {
    pixels: Arc<Vec<f32>>,
    labels: Arc<Vec<u8>>,
    shape: [usize; 3],
}

impl NormalizedImages {
    /// The images at `indices` of `images`, in that order, normalised.
    ///
    /// # Errors
    /// An index the dataset cannot give, images of different shapes, or a normalisation with
    /// fewer channels than the images.
    pub fn select(
        images: &dyn Dataset<ImageItem>,
        indices: &[usize],
        normalization: &Normalization,
    ) -> Result<Self, DatasetError> {
        let mut shape = None;
        let mut pixels = Vec::new();
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            if index >= images.len() {
                return Err(invalid(format!(
                    "image {index} asked for, but the dataset holds {}",
                    images.len()
                )));
            }
            let item = images.get(index)?;
            let [channels, height, width] = *shape.get_or_insert(item.shape);
            if item.shape != [channels, height, width] {
                return Err(invalid(format!(
                    "image {index} has shape {:?}, the first one {:?}",
                    item.shape,
                    [channels, height, width]
                )));
            }
            if normalization.mean.len() < channels || normalization.std.len() < channels {
                return Err(invalid(format!(
                    "the normalisation has {} channel(s), the images {channels}",
                    normalization.mean.len().min(normalization.std.len())
                )));
            }
            let plane = height * width;
            for (c, plane_pixels) in item.image.chunks(plane).enumerate() {
                let (mean, std) = (normalization.mean[c], normalization.std[c]);
                pixels.extend(
                    plane_pixels
                        .iter()
                        .map(|&p| (f32::from(p) / 255.0 - mean) / std),
                );
            }
            labels.push(item.label);
        }
        Ok(Self {
            pixels: Arc::new(pixels),
            labels: Arc::new(labels),
            shape: shape.unwrap_or([1, 1, 1]),
        })
    }

    /// Every image of `images`, normalised.
    ///
    /// # Errors
    /// As [`NormalizedImages::select`].
    pub fn all(
        images: &dyn Dataset<ImageItem>,
        normalization: &Normalization,
    ) -> Result<Self, DatasetError> {
        let indices: Vec<usize> = (0..images.len()).collect();
        Self::select(images, &indices, normalization)
    }

    /// The BatchBALD paper's *Repeated* construction: `copies` copies of every image, each
    /// with its own isotropic Gaussian noise of standard deviation `sigma` (in normalised
    /// units) drawn from `seed`. Copy `c` of image `i` is item `c · len + i`.
    pub fn repeated(&self, copies: usize, sigma: f32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pixels = Vec::with_capacity(self.pixels.len() * copies);
        for _ in 0..copies {
            pixels.extend(
                self.pixels
                    .iter()
                    .map(|&p| p + sigma * standard_normal(&mut rng)),
            );
        }
        let labels = self.labels.repeat(copies);
        Self {
            pixels: Arc::new(pixels),
            labels: Arc::new(labels),
            shape: self.shape,
        }
    }

    /// `[channels, height, width]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Every label, in item order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

impl Dataset<NormalizedImage> for NormalizedImages {
    fn get(&self, index: usize) -> Result<NormalizedImage, DatasetError> {
        let label = *self.labels.get(index).ok_or_else(|| {
            invalid(format!(
                "image {index} asked for, but the dataset holds {}",
                self.labels.len()
            ))
        })?;
        let size: usize = self.shape.iter().product();
        Ok(NormalizedImage {
            pixels: self.pixels[index * size..(index + 1) * size].to_vec(),
            shape: self.shape,
            label,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// A [`DatasetError`] that says what was wrong.
fn invalid(message: String) -> DatasetError {
    DatasetError::new(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        message,
    ))
}

/// One draw of N(0, 1) (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Stacks normalised images of one shape into `[N, C, H, W]` on `device`.
///
/// # Panics
/// The items have different shapes (a [`NormalizedImages`] never mixes them).
pub fn normalized_batch(items: &[NormalizedImage], device: &Device) -> Tensor<4> {
    let Some(first) = items.first() else {
        return Tensor::zeros([0, 1, 1, 1], device);
    };
    let [channels, height, width] = first.shape;
    let mut values = Vec::with_capacity(items.len() * first.pixels.len());
    for item in items {
        assert_eq!(item.shape, first.shape, "images of one batch share a shape");
        values.extend_from_slice(&item.pixels);
    }
    Tensor::from_data(
        TensorData::new(values, [items.len(), channels, height, width]),
        device,
    )
}

/// An [`InputBatcher`] of normalised images for the trainer and the loop.
pub fn normalized_batcher() -> InputBatcher<NormalizedImage, Tensor<4>> {
    Arc::new(|items: Vec<NormalizedImage>, device: &Device| normalized_batch(&items, device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataset::InMemDataset;

    fn images() -> InMemDataset<ImageItem> {
        InMemDataset::new(
            (0..4u8)
                .map(|i| ImageItem {
                    image: vec![i * 50; 4],
                    shape: [1, 2, 2],
                    label: i % 2,
                })
                .collect(),
        )
    }

    #[test]
    fn selected_images_are_normalised_once_in_the_given_order() -> Result<(), DatasetError> {
        let normalization = Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let set = NormalizedImages::select(&images(), &[3, 1], &normalization)?;
        assert_eq!(set.len(), 2);
        assert_eq!(set.labels(), &[1, 1]);
        let first = set.get(0)?;
        let expected = (150.0 / 255.0 - 0.5) / 0.25;
        assert!(first.pixels.iter().all(|p| (p - expected).abs() < 1e-6));
        assert!(NormalizedImages::select(&images(), &[4], &normalization).is_err());
        let batch = normalized_batch(&[first.clone(), set.get(1)?], &Device::default());
        assert_eq!(batch.dims(), [2, 1, 2, 2]);
        Ok(())
    }

    #[test]
    fn repeated_copies_carry_their_own_noise_of_the_given_sigma() -> Result<(), DatasetError> {
        let base = NormalizedImages::all(&images(), &Normalization::fashion_mnist())?;
        let repeated = base.repeated(3, 0.1, 7);
        assert_eq!(repeated.len(), 12);
        assert_eq!(repeated.labels()[4..8], base.labels()[..]);
        let mut noise = Vec::new();
        for copy in 0..3 {
            for i in 0..4 {
                let clean = base.get(i)?.pixels;
                let noisy = repeated.get(copy * 4 + i)?.pixels;
                noise.extend(noisy.iter().zip(&clean).map(|(n, c)| n - c));
            }
        }
        // Copies of one image differ from each other.
        assert_ne!(repeated.get(0)?.pixels, repeated.get(4)?.pixels);
        let mean = noise.iter().sum::<f32>() / noise.len() as f32;
        let std =
            (noise.iter().map(|n| (n - mean).powi(2)).sum::<f32>() / noise.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.05 && (std - 0.1).abs() < 0.04,
            "{mean} {std}"
        );
        // Same seed, same noise.
        assert_eq!(base.repeated(3, 0.1, 7).get(5)?, repeated.get(5)?);
        Ok(())
    }

    #[test]
    fn gaussian_draws_have_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<f32> = (0..20_000).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f32>() / draws.len() as f32;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f32>() / draws.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
