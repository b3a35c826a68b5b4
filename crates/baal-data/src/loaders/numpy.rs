//! Datasets from numpy arrays saved with `np.save`: features `[N, ...]` and labels `[N]`.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use crate::error::{DataError, Result};
use crate::formats::npy::NpyArray;

/// One row of the features array and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyItem {
    /// The row's values as `f32`, in C order (for images saved as `[N, C, H, W]`: CHW).
    pub features: Vec<f32>,
    /// The row's shape: the features array's shape without its first axis.
    pub shape: Vec<usize>,
    /// The class.
    pub label: usize,
}

/// Features and class labels from two `.npy` files, held in memory as `f32`; a Burn
/// [`Dataset`] of [`NpyItem`]s. Cloning is cheap.
///
/// ```python
/// np.save("x.npy", x.astype(np.float32))   # [N, ...], any supported dtype
/// np.save("y.npy", y.astype(np.int64))     # [N], integer classes >= 0
/// ```
#[derive(Clone, Debug)]
pub struct NpyDataset {
    features: Arc<Vec<f32>>,
    labels: Arc<Vec<usize>>,
    item_shape: Vec<usize>,
    num_classes: usize,
}

impl NpyDataset {
    /// Loads features `[N, ...]` (any supported dtype, converted to `f32`) and integer labels
    /// `[N]`.
    ///
    /// # Errors
    /// A file cannot be read or is not a supported `.npy` array, the features have no axis, the
    /// labels are not one-dimensional integers `>= 0`, or the counts differ; the error names the
    /// file.
    pub fn from_files(features: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (features_path, labels_path) = (features.as_ref(), labels.as_ref());
        let features = NpyArray::read(features_path)?;
        let labels = NpyArray::read(labels_path)?;
        let Some((&n, item_shape)) = features.shape.split_first() else {
            return Err(DataError::corrupt(
                features_path,
                "features must have a first axis of items, found a scalar",
            ));
        };
        let &[n_labels] = labels.shape.as_slice() else {
            return Err(DataError::corrupt(
                labels_path,
                format!("labels must have shape [N], found {:?}", labels.shape),
            ));
        };
        if n != n_labels {
            return Err(DataError::corrupt(
                labels_path,
                format!(
                    "{n_labels} labels but {} holds {n} items",
                    features_path.display()
                ),
            ));
        }
        let label_values = labels
            .to_class_labels()
            .map_err(|reason| DataError::corrupt(labels_path, reason))?;
        let num_classes = match label_values.iter().enumerate().max_by_key(|&(_, &l)| l) {
            None => 0,
            Some((item, &max)) => max.checked_add(1).ok_or_else(|| {
                DataError::corrupt(
                    labels_path,
                    format!("label {max} of item {item} is too large to be a class index"),
                )
            })?,
        };
        Ok(Self {
            features: Arc::new(features.to_f32()),
            labels: Arc::new(label_values),
            item_shape: item_shape.to_vec(),
            num_classes,
        })
    }

    /// The shape of one item's features.
    pub fn item_shape(&self) -> &[usize] {
        &self.item_shape
    }

    /// One more than the largest label (0 when empty).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Every label, in item order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

impl Dataset<NpyItem> for NpyDataset {
    fn get(&self, index: usize) -> std::result::Result<NpyItem, DatasetError> {
        let label = *super::item_label(&self.labels, index)?;
        let size: usize = self.item_shape.iter().product();
        Ok(NpyItem {
            features: self.features[index * size..(index + 1) * size].to_vec(),
            shape: self.item_shape.clone(),
            label,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::npy::{encode_f32, encode_i64, encode_raw};

    fn write(dir: &Path, name: &str, bytes: Vec<u8>) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("writes");
        path
    }

    #[test]
    fn loads_features_and_labels() {
        let dir = tempfile::tempdir().expect("temp dir");
        let values: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let x = write(dir.path(), "x.npy", encode_f32(&[3, 2, 2], &values));
        let y = write(dir.path(), "y.npy", encode_i64(&[3], &[2, 0, 5]));
        let data = NpyDataset::from_files(&x, &y).expect("loads");
        assert_eq!(data.len(), 3);
        assert_eq!(data.item_shape(), &[2, 2]);
        assert_eq!(data.num_classes(), 6);
        let item = data.get(1).expect("item");
        assert_eq!(item.features, vec![4.0, 5.0, 6.0, 7.0]);
        assert_eq!(item.label, 0);
        assert!(data.get(3).is_err());

        // u8 images and u8 labels are accepted too.
        let x = write(
            dir.path(),
            "xb.npy",
            encode_raw("|u1", &[2, 3], &[1, 2, 3, 4, 5, 6]),
        );
        let y = write(dir.path(), "yb.npy", encode_raw("|u1", &[2], &[1, 1]));
        let data = NpyDataset::from_files(&x, &y).expect("loads");
        assert_eq!(data.get(1).expect("item").features, vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn mismatched_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let x = write(dir.path(), "x.npy", encode_f32(&[3, 2], &[0.0; 6]));
        let reason = |y: &Path, expected: &str| match NpyDataset::from_files(&x, y) {
            Err(DataError::Corrupt { path, reason }) => {
                assert_eq!(path, y);
                assert!(reason.contains(expected), "{reason}");
            }
            other => panic!("expected a corrupt-file error, got {:?}", other.err()),
        };
        reason(
            &write(dir.path(), "a.npy", encode_i64(&[2], &[0, 1])),
            "2 labels but",
        );
        reason(
            &write(dir.path(), "b.npy", encode_f32(&[3], &[0.0; 3])),
            "integers",
        );
        reason(
            &write(dir.path(), "c.npy", encode_i64(&[3], &[0, -1, 2])),
            "label -1 of item 1",
        );
        reason(
            &write(dir.path(), "d.npy", encode_i64(&[3, 1], &[0; 3])),
            "shape [N]",
        );
        // The largest u64 is a valid index type but no class count: max + 1 overflowed.
        let huge: Vec<u8> = [0u64, u64::MAX, 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        reason(
            &write(dir.path(), "f.npy", encode_raw("<u8", &[3], &huge)),
            "label 18446744073709551615 of item 1",
        );
        let bad = write(dir.path(), "e.npy", b"not numpy".to_vec());
        reason(&bad, "magic");
        let scalar = write(dir.path(), "s.npy", encode_f32(&[], &[1.0]));
        let y = write(dir.path(), "y.npy", encode_i64(&[1], &[0]));
        assert!(matches!(
            NpyDataset::from_files(&scalar, &y),
            Err(DataError::Corrupt { path, .. }) if path == scalar
        ));
    }
}
