//! In-memory image datasets of `{ image, label }` items.

use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use crate::DataError;

/// One image and its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageItem {
    /// Raw pixel values (0 to 255) in CHW order: channel, then row, then column.
    pub image: Vec<u8>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// The class, below the dataset's number of classes.
    pub label: u8,
}

impl ImageItem {
    /// The pixels scaled to `[0, 1]`, in the same CHW order.
    pub fn to_unit_f32(&self) -> Vec<f32> {
        self.image.iter().map(|&p| f32::from(p) / 255.0).collect()
    }
}

/// Images of one shape with their classes, held in memory; a Burn [`Dataset`] of
/// [`ImageItem`]s. Cloning is cheap (the pixels are shared).
#[derive(Clone, Debug)]
pub struct ImageDataset {
    pixels: Arc<Vec<u8>>,
    labels: Arc<Vec<u8>>,
    shape: [usize; 3],
    num_classes: usize,
}

impl ImageDataset {
    /// Images already in memory: `pixels` holds every image in CHW order (channel, row,
    /// column), one after the other, `labels` one class per image.
    ///
    /// # Errors
    /// [`DataError::InvalidImages`] when a dimension of `shape` is 0, `num_classes` is not
    /// within 1 to 256, `pixels` does not hold `labels.len()` images of `shape`, or a label
    /// is not below `num_classes` (the message names the first such item).
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Result<Self, DataError> {
        let invalid = |reason: String| DataError::InvalidImages(reason);
        if shape.contains(&0) {
            return Err(invalid(format!("shape {shape:?} has a zero dimension")));
        }
        if !(1..=256).contains(&num_classes) {
            return Err(invalid(format!(
                "{num_classes} classes: u8 labels allow 1 to 256"
            )));
        }
        let size = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let expected = size.and_then(|size| size.checked_mul(labels.len()));
        if expected != Some(pixels.len()) {
            return Err(invalid(format!(
                "{} pixels for {} labels of shape {shape:?}: expected {}",
                pixels.len(),
                labels.len(),
                expected.map_or_else(|| "more than fits in memory".into(), |n| n.to_string())
            )));
        }
        check_labels(&labels, num_classes).map_err(invalid)?;
        Ok(Self::from_checked(pixels, labels, shape, num_classes))
    }

    /// Builds from contiguous CHW pixels and labels already checked by the caller.
    pub(crate) fn from_checked(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Self {
        debug_assert_eq!(pixels.len(), labels.len() * shape.iter().product::<usize>());
        Self {
            pixels: Arc::new(pixels),
            labels: Arc::new(labels),
            shape,
            num_classes,
        }
    }

    /// `[channels, height, width]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Loads a `.npy` array of images `[N, H, W]` or `[N, C, H, W]` (C = 1 or 3), unlabelled
    /// (every label 0) for a task of `num_classes` classes: bytes as they are, floats in
    /// `[0, 1]` scaled to 0 to 255 (floats above 1 are taken as 0 to 255 already).
    ///
    /// # Errors
    /// The file cannot be read or parsed, another shape, or values outside 0 to 255.
    pub fn from_npy_images(path: &std::path::Path, num_classes: usize) -> crate::Result<Self> {
        let array = crate::NpyArray::read(path)?;
        let corrupt = |reason: String| DataError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let shape = match *array.shape.as_slice() {
            [n, h, w] => [n, 1, h, w],
            [n, c, h, w] if c == 1 || c == 3 => [n, c, h, w],
            _ => {
                return Err(corrupt(format!(
                    "images must be [N, H, W] or [N, C, H, W] with C = 1 or 3, found {:?}",
                    array.shape
                )));
            }
        };
        let values = array.to_f32();
        let scale = if values.iter().all(|&v| v <= 1.0) {
            255.0
        } else {
            1.0
        };
        let mut pixels = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let p = v * scale;
            if !(0.0..=255.0).contains(&p) {
                return Err(corrupt(format!(
                    "value {v} at flat index {i} is outside 0 to 255 (or 0 to 1)"
                )));
            }
            pixels.push(p.round() as u8);
        }
        Self::new(
            pixels,
            vec![0; shape[0]],
            [shape[1], shape[2], shape[3]],
            num_classes,
        )
    }

    /// Number of classes (labels are below it).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Every label, in item order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The images at `indices`, in that order, with their labels (an index may repeat).
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] for an index past the end.
    pub fn select(&self, indices: &[usize]) -> Result<Self, DataError> {
        let size: usize = self.shape.iter().product();
        let mut pixels = Vec::with_capacity(indices.len() * size);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            let label = *self.labels.get(index).ok_or(DataError::IndexOutOfRange {
                kind: "dataset",
                index,
                len: self.labels.len(),
            })?;
            pixels.extend_from_slice(&self.pixels[index * size..(index + 1) * size]);
            labels.push(label);
        }
        Ok(Self::from_checked(
            pixels,
            labels,
            self.shape,
            self.num_classes,
        ))
    }

    /// The same images (shared, not copied) with `labels`, one per image, for a task of
    /// `num_classes` classes.
    ///
    /// # Errors
    /// [`DataError::InvalidImages`] when `labels` does not hold one label per image, or as
    /// [`new`](Self::new) for `num_classes` and the labels.
    pub fn with_labels(&self, labels: Vec<u8>, num_classes: usize) -> Result<Self, DataError> {
        let invalid = |reason: String| DataError::InvalidImages(reason);
        if labels.len() != self.labels.len() {
            return Err(invalid(format!(
                "{} labels for {} images",
                labels.len(),
                self.labels.len()
            )));
        }
        if !(1..=256).contains(&num_classes) {
            return Err(invalid(format!(
                "{num_classes} classes: u8 labels allow 1 to 256"
            )));
        }
        check_labels(&labels, num_classes).map_err(invalid)?;
        Ok(Self {
            pixels: Arc::clone(&self.pixels),
            labels: Arc::new(labels),
            shape: self.shape,
            num_classes,
        })
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let label = *super::item_label(&self.labels, index)?;
        let size: usize = self.shape.iter().product();
        Ok(ImageItem {
            image: self.pixels[index * size..(index + 1) * size].to_vec(),
            shape: self.shape,
            label,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Checks that every label is below `num_classes`; the reason names the first bad item.
pub(crate) fn check_labels(labels: &[u8], num_classes: usize) -> Result<(), String> {
    match labels.iter().position(|&l| usize::from(l) >= num_classes) {
        Some(i) => Err(format!(
            "label {} of item {i} is out of range for {num_classes} classes",
            labels[i]
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_copies_the_chosen_images_and_with_labels_relabels_them() {
        // Three 1×1×2 images: pixels (0, 1), (2, 3), (4, 5), labels 0, 1, 2.
        let images =
            ImageDataset::new((0..6).collect(), vec![0, 1, 2], [1, 1, 2], 3).expect("valid images");
        let picked = images.select(&[2, 0, 2]).expect("in range");
        assert_eq!(picked.labels(), &[2, 0, 2]);
        assert_eq!(picked.get(1).expect("item").image, vec![0, 1]);
        assert_eq!(picked.get(2).expect("item").image, vec![4, 5]);
        let err = images.select(&[3]).expect_err("past the end");
        assert!(err.to_string().contains("index 3"), "{err}");

        let relabelled = picked.with_labels(vec![1, 1, 0], 2).expect("valid labels");
        assert_eq!(
            (relabelled.labels(), relabelled.num_classes()),
            (&[1, 1, 0][..], 2)
        );
        assert_eq!(relabelled.get(0).expect("item").image, vec![4, 5]);
        assert!(
            picked.with_labels(vec![0, 1], 2).is_err(),
            "one label per image"
        );
        assert!(
            picked.with_labels(vec![0, 1, 2], 2).is_err(),
            "label 2 of 2 classes"
        );
    }
}
