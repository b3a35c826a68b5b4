//! MNIST, Fashion-MNIST and EMNIST from their IDX files (the format is [`crate::formats::idx`]).

use std::path::{Path, PathBuf};

use super::image::{ImageDataset, check_labels};
use crate::error::{DataError, Result};
use crate::formats::idx::IdxArray;

impl ImageDataset {
    /// Loads an IDX image file (`[N, H, W]`) and its IDX label file (`[N]`), plain or `.gz`;
    /// images are one-channel, shape `[1, H, W]`.
    ///
    /// # Errors
    /// A file cannot be read or is corrupt, the image and label counts differ, or a label is not
    /// below `num_classes`; the error names the file.
    pub fn from_idx_files(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        num_classes: usize,
    ) -> Result<Self> {
        let (images_path, labels_path) = (images.as_ref(), labels.as_ref());
        let images = IdxArray::read(images_path)?;
        let labels = IdxArray::read(labels_path)?;
        let &[n, height, width] = images.dims.as_slice() else {
            return Err(DataError::corrupt(
                images_path,
                format!(
                    "images must have 3 dimensions [N, H, W], found {:?}",
                    images.dims
                ),
            ));
        };
        let &[n_labels] = labels.dims.as_slice() else {
            return Err(DataError::corrupt(
                labels_path,
                format!("labels must have 1 dimension [N], found {:?}", labels.dims),
            ));
        };
        if n != n_labels {
            return Err(DataError::corrupt(
                labels_path,
                format!(
                    "{n_labels} labels but {} holds {n} images",
                    images_path.display()
                ),
            ));
        }
        check_labels(&labels.data, num_classes)
            .map_err(|reason| DataError::corrupt(labels_path, reason))?;
        Ok(Self::from_checked(
            images.data,
            labels.data,
            [1, height, width],
            num_classes,
        ))
    }
}

/// Train and test splits of an IDX dataset laid out as MNIST's four files.
fn load_mnist_layout(dir: &Path) -> Result<(ImageDataset, ImageDataset)> {
    let split = |prefix: &str| -> Result<ImageDataset> {
        let images = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        ImageDataset::from_idx_files(images, labels, 10)
    };
    Ok((split("train")?, split("t10k")?))
}

/// `dir/name`, or `dir/name.gz` when only that exists.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::io(
        plain,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("neither {name} nor {name}.gz is in {}", dir.display()),
        ),
    ))
}

macro_rules! mnist_like {
    ($(#[$doc:meta])* $name:ident, $default_dir:literal, $classes:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            /// The 60000 training images (`[1, 28, 28]`, classes 0 to 9).
            pub train: ImageDataset,
            /// The 10000 test images.
            pub test: ImageDataset,
        }

        impl $name {
            /// Where Debian's package installs the files.
            pub const DEFAULT_DIR: &'static str = $default_dir;

            /// The class names, by label.
            pub const CLASSES: [&'static str; 10] = $classes;

            /// Loads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
            /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (each plain or `.gz`)
            /// from `dir`.
            ///
            /// # Errors
            /// A file is missing or corrupt; the error names it.
            pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
                let (train, test) = load_mnist_layout(dir.as_ref())?;
                Ok(Self { train, test })
            }

            /// Loads from [`DEFAULT_DIR`](Self::DEFAULT_DIR).
            ///
            /// # Errors
            /// As [`from_dir`](Self::from_dir).
            pub fn from_default_dir() -> Result<Self> {
                Self::from_dir(Self::DEFAULT_DIR)
            }
        }
    };
}

mnist_like!(
    /// Fashion-MNIST (Zalando's clothing images), from its IDX files.
    FashionMnist,
    "/usr/share/datasets/fashion-mnist",
    [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
);

mnist_like!(
    /// MNIST handwritten digits, from its IDX files.
    Mnist,
    "/usr/share/datasets/mnist",
    ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
);

#[cfg(test)]
mod tests {
    use std::io::Write;

    use burn::data::dataset::Dataset;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::formats::idx::encode_idx;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("compresses");
        encoder.finish().expect("compresses")
    }

    fn write_split(dir: &Path, prefix: &str, n: u32, labels: &[u8], gz: bool) {
        let images: Vec<u8> = (0..n * 4).map(|i| i as u8).collect();
        let write = |name: String, bytes: Vec<u8>| {
            let (name, bytes) = if gz {
                (format!("{name}.gz"), gzip(&bytes))
            } else {
                (name, bytes)
            };
            std::fs::write(dir.join(name), bytes).expect("writes");
        };
        write(
            format!("{prefix}-images-idx3-ubyte"),
            encode_idx(&[n, 2, 2], &images),
        );
        write(
            format!("{prefix}-labels-idx1-ubyte"),
            encode_idx(&[labels.len() as u32], labels),
        );
    }

    #[test]
    fn loads_plain_and_gz_splits() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().expect("temp dir");
            write_split(dir.path(), "train", 3, &[4, 0, 9], gz);
            write_split(dir.path(), "t10k", 1, &[7], gz);
            let data = Mnist::from_dir(dir.path()).expect("loads");
            assert_eq!(data.train.len(), 3);
            assert_eq!(data.test.len(), 1);
            let item = data.train.get(1).expect("item");
            assert_eq!(item.label, 0);
            assert_eq!(item.shape, [1, 2, 2]);
            assert_eq!(item.image, vec![4, 5, 6, 7]);
            assert_eq!(data.test.get(0).expect("item").label, 7);
            assert!(data.train.get(3).is_err());
        }
    }

    fn corrupt_reason(result: Result<Mnist>, file: &str) -> String {
        match result {
            Err(DataError::Corrupt { path, reason }) => {
                assert!(path.ends_with(file), "{} should be {file}", path.display());
                reason
            }
            Err(other) => panic!("expected a Corrupt error, got {other}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn mismatched_and_bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_split(dir.path(), "t10k", 1, &[7], false);
        write_split(dir.path(), "train", 3, &[4, 0], false);
        let reason = corrupt_reason(Mnist::from_dir(dir.path()), "train-labels-idx1-ubyte");
        assert!(reason.contains("2 labels but"), "{reason}");

        write_split(dir.path(), "train", 2, &[4, 10], false);
        let reason = corrupt_reason(Mnist::from_dir(dir.path()), "train-labels-idx1-ubyte");
        assert!(
            reason.contains("label 10 of item 1 is out of range"),
            "{reason}"
        );

        let images = dir.path().join("train-images-idx3-ubyte");
        let good = std::fs::read(&images).expect("reads");
        std::fs::write(&images, &good[..good.len() - 1]).expect("writes");
        let reason = corrupt_reason(Mnist::from_dir(dir.path()), "train-images-idx3-ubyte");
        assert!(reason.contains("truncated data"), "{reason}");

        std::fs::write(&images, b"\x89PNG\r\n").expect("writes");
        let reason = corrupt_reason(Mnist::from_dir(dir.path()), "train-images-idx3-ubyte");
        assert!(reason.contains("not an IDX file"), "{reason}");

        std::fs::write(&images, encode_idx(&[2, 4], &[0; 8])).expect("writes");
        let reason = corrupt_reason(Mnist::from_dir(dir.path()), "train-images-idx3-ubyte");
        assert!(reason.contains("3 dimensions"), "{reason}");

        let mut truncated_gz = gzip(&good);
        truncated_gz.truncate(truncated_gz.len() / 2);
        std::fs::remove_file(&images).expect("removes");
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), truncated_gz)
            .expect("writes");
        let reason = corrupt_reason(Mnist::from_dir(dir.path()), "train-images-idx3-ubyte.gz");
        assert!(reason.contains("gzip"), "{reason}");

        std::fs::remove_file(dir.path().join("train-images-idx3-ubyte.gz")).expect("removes");
        match Mnist::from_dir(dir.path()) {
            Err(DataError::Io { path, source }) => {
                assert!(path.ends_with("train-images-idx3-ubyte"));
                assert!(source.to_string().contains(".gz"));
            }
            other => panic!("expected a missing-file error, got {:?}", other.err()),
        }
    }
}
