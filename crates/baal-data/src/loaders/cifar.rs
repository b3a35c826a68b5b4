//! CIFAR-10 from its binary batches (the format is [`crate::formats::cifar`]).

use std::path::{Path, PathBuf};

use super::image::ImageDataset;
use crate::error::{DataError, Result};
use crate::formats::cifar::{CIFAR10_CLASSES, parse_cifar10_batch};

/// CIFAR-10 (`[3, 32, 32]` colour images in CHW order, 10 classes), from the binary batches.
#[derive(Clone, Debug)]
pub struct Cifar10 {
    /// `data_batch_1.bin` to `data_batch_5.bin`, in order (50000 images in the real set).
    pub train: ImageDataset,
    /// `test_batch.bin` (10000 images in the real set).
    pub test: ImageDataset,
}

impl Cifar10 {
    /// The class names, by label.
    pub const CLASSES: [&'static str; CIFAR10_CLASSES] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// Loads the six batch files from `dir`, or from `dir/cifar-10-batches-bin` (where the
    /// archive unpacks).
    ///
    /// # Errors
    /// A file is missing or corrupt (size not a whole number of records, a label above 9);
    /// the error names it.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let nested = dir.join("cifar-10-batches-bin");
        let dir = if dir.join("test_batch.bin").is_file() || !nested.is_dir() {
            dir.to_path_buf()
        } else {
            nested
        };
        let train: Vec<PathBuf> = (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .collect();
        Ok(Self {
            train: Self::read_batches(&train)?,
            test: Self::read_batches(&[dir.join("test_batch.bin")])?,
        })
    }

    /// Loads and concatenates binary batch files.
    ///
    /// # Errors
    /// A file cannot be read or is corrupt; the error names it.
    pub fn read_batches(paths: &[impl AsRef<Path>]) -> Result<ImageDataset> {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            let (batch_pixels, batch_labels) =
                parse_cifar10_batch(&bytes).map_err(|reason| DataError::corrupt(path, reason))?;
            pixels.extend(batch_pixels);
            labels.extend(batch_labels);
        }
        Ok(ImageDataset::from_checked(
            pixels,
            labels,
            [3, 32, 32],
            Cifar10::CLASSES.len(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataset::Dataset;

    use super::*;
    use crate::formats::cifar::{CIFAR10_IMAGE_BYTES, CIFAR10_RECORD_BYTES, encode_cifar10_batch};

    fn image(seed: u8) -> [u8; CIFAR10_IMAGE_BYTES] {
        std::array::from_fn(|i| seed.wrapping_add(i as u8))
    }

    fn write_set(dir: &Path) {
        for i in 1..=5u8 {
            let bytes = encode_cifar10_batch(&[image(i), image(i + 10)], &[i, 9 - i]);
            std::fs::write(dir.join(format!("data_batch_{i}.bin")), bytes).expect("writes");
        }
        std::fs::write(
            dir.join("test_batch.bin"),
            encode_cifar10_batch(&[image(99)], &[3]),
        )
        .expect("writes");
    }

    #[test]
    fn loads_generated_batches_in_order_with_chw_pixels() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&dir).expect("creates");
        write_set(&dir);
        let data = Cifar10::from_dir(root.path()).expect("loads");
        assert_eq!(data.train.len(), 10);
        assert_eq!(data.test.len(), 1);
        let labels: Vec<u8> = data.train.labels().to_vec();
        assert_eq!(labels, vec![1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
        let item = data.train.get(3).expect("item");
        assert_eq!(item.shape, [3, 32, 32]);
        assert_eq!(item.label, 7);
        // First red pixel, first green pixel (offset 1024), as written.
        assert_eq!(item.image[0], 12);
        assert_eq!(item.image[1024], 12u8.wrapping_add(1024u32 as u8));
        assert_eq!(
            data.test.get(0).expect("item").image.to_vec(),
            image(99).to_vec()
        );
    }

    #[test]
    fn corrupt_batches_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_set(dir.path());
        let batch = dir.path().join("data_batch_3.bin");
        let good = std::fs::read(&batch).expect("reads");

        let check = |bytes: &[u8], expected: &str| {
            std::fs::write(&batch, bytes).expect("writes");
            match Cifar10::from_dir(dir.path()) {
                Err(DataError::Corrupt { path, reason }) => {
                    assert_eq!(path, batch);
                    assert!(reason.contains(expected), "{reason}");
                }
                other => panic!("expected a corrupt-file error, got {:?}", other.err()),
            }
        };
        check(&good[..good.len() - 7], "whole number");
        check(&[], "empty");
        let mut bad_label = good.clone();
        bad_label[CIFAR10_RECORD_BYTES] = 57;
        check(&bad_label, "record 1 has label 57");

        std::fs::remove_file(dir.path().join("test_batch.bin")).expect("removes");
        std::fs::write(&batch, &good).expect("writes");
        assert!(matches!(
            Cifar10::from_dir(dir.path()),
            Err(DataError::Io { path, .. }) if path.ends_with("test_batch.bin")
        ));
    }
}
