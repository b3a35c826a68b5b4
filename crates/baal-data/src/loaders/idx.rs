//! The IDX format of MNIST, Fashion-MNIST and EMNIST, plain or gzip-compressed.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::image::{ImageDataset, check_labels};
use crate::error::{DataError, Result};

/// Largest decompressed size accepted from a `.gz` file (guards against gzip bombs).
const MAX_DECOMPRESSED_BYTES: u64 = 1 << 32;

/// An unsigned-byte IDX array: big-endian dimensions then the values in C order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (`[N, 28, 28]` for MNIST images, `[N]` for labels).
    pub dims: Vec<usize>,
    /// The values.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Reads an IDX file, gzip-compressed or not (detected from its first bytes).
    ///
    /// # Errors
    /// The file cannot be read or is not a well-formed unsigned-byte IDX array.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&bytes).map_err(|reason| DataError::corrupt(path, reason))
    }

    /// Parses the bytes of an IDX file (gzip-compressed or not); the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            MultiGzDecoder::new(bytes)
                .take(MAX_DECOMPRESSED_BYTES)
                .read_to_end(&mut plain)
                .map_err(|e| format!("corrupt gzip data: {e}"))?;
            return Self::parse_plain(&plain);
        }
        Self::parse_plain(bytes)
    }

    fn parse_plain(bytes: &[u8]) -> std::result::Result<Self, String> {
        let magic = bytes.get(..4).ok_or_else(|| {
            format!(
                "truncated: {} bytes, an IDX header has at least 4",
                bytes.len()
            )
        })?;
        if magic[0] != 0 || magic[1] != 0 {
            return Err(format!(
                "not an IDX file: magic {:02x}{:02x}{:02x}{:02x} does not start with two zero bytes",
                magic[0], magic[1], magic[2], magic[3]
            ));
        }
        if magic[2] != 0x08 {
            return Err(format!(
                "unsupported IDX element type 0x{:02x}: only unsigned bytes (0x08) are read",
                magic[2]
            ));
        }
        let ndim = usize::from(magic[3]);
        if ndim == 0 {
            return Err("IDX header declares 0 dimensions".into());
        }
        let header_len = 4 + 4 * ndim;
        let header = bytes.get(4..header_len).ok_or_else(|| {
            format!(
                "truncated header: {ndim} dimensions need {header_len} bytes, found {}",
                bytes.len()
            )
        })?;
        let dims: Vec<usize> = header
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .collect();
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or("dimensions overflow")?;
        let data = &bytes[header_len..];
        if data.len() < count {
            return Err(format!(
                "truncated data: dimensions {dims:?} need {count} bytes, found {}",
                data.len()
            ));
        }
        if data.len() > count {
            return Err(format!(
                "{} unexpected bytes after the {count} values of dimensions {dims:?}",
                data.len() - count
            ));
        }
        Ok(Self {
            dims,
            data: data.to_vec(),
        })
    }
}

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
    ($(#[$doc:meta])* $name:ident, $default_dir:literal) => {
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
    "/usr/share/datasets/fashion-mnist"
);

mnist_like!(
    /// MNIST handwritten digits, from its IDX files.
    Mnist,
    "/usr/share/datasets/mnist"
);

/// Encodes an unsigned-byte IDX array (for tests and tools).
pub fn encode_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    // The dimension count is one byte in the format; callers pass at most a handful.
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    bytes.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
    bytes.extend(data);
    bytes
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use burn::data::dataset::Dataset;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

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

    #[test]
    fn parse_rejects_headers() {
        assert!(
            IdxArray::parse(&[])
                .expect_err("rejected")
                .contains("truncated")
        );
        assert!(
            IdxArray::parse(&[0, 0, 0x0d, 1, 0, 0, 0, 0])
                .expect_err("rejected")
                .contains("0x0d")
        );
        assert!(
            IdxArray::parse(&[0, 0, 8, 0])
                .expect_err("rejected")
                .contains("0 dimensions")
        );
        assert!(
            IdxArray::parse(&[0, 0, 8, 3, 0, 0])
                .expect_err("rejected")
                .contains("truncated header")
        );
        let huge = encode_idx(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(IdxArray::parse(&huge).is_err());
        let mut long = encode_idx(&[2], &[1, 2]);
        long.push(3);
        assert!(
            IdxArray::parse(&long)
                .expect_err("rejected")
                .contains("unexpected bytes")
        );
    }
}
