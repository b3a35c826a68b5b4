//! Downloads of the public datasets from their official addresses, checksums verified
//! (feature `download`).

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use md5::{Digest, Md5};

use super::cifar::Cifar10;
use super::idx::{FashionMnist, Mnist};
use super::{CIFAR10_URL, FASHION_MNIST_URL, MNIST_URL};
use crate::checksum::{hex, sha256_hex};
use crate::error::{DataError, Result};
use crate::state::write_file_atomically;

/// Largest download accepted (CIFAR-10's archive is 170 MB).
const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

/// MD5 of the official `.gz` files (as published and used by torchvision).
const MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
];

/// SHA-256 of the *decompressed* IDX files (identical in every redistribution, e.g. Debian's
/// `dataset-fashion-mnist`, whose `.gz` files are recompressed).
const FASHION_MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

impl Mnist {
    /// Downloads the four files into `dir` (created if needed; files already there are kept
    /// when their checksum matches), then loads them.
    ///
    /// # Errors
    /// A download fails or its MD5 differs from the official one, or `dir` is not writable.
    pub fn download(dir: impl AsRef<Path>) -> Result<Self> {
        Self::download_from(MNIST_URL, dir)
    }

    /// [`Mnist::download`] from a mirror: `base_url` followed by each file's name.
    ///
    /// # Errors
    /// As [`Mnist::download`].
    pub fn download_from(base_url: &str, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        for (name, md5) in MNIST_FILES {
            fetch_verified(&format!("{base_url}{name}"), &dir.join(name), |bytes| {
                check_hex("MD5", &hex(&Md5::digest(bytes)), md5)
            })?;
        }
        Self::from_dir(dir)
    }
}

impl FashionMnist {
    /// Downloads the four files into `dir` (created if needed; files already there are kept
    /// when their checksum matches), then loads them.
    ///
    /// # Errors
    /// A download fails or the SHA-256 of its decompressed content differs from the known one,
    /// or `dir` is not writable.
    pub fn download(dir: impl AsRef<Path>) -> Result<Self> {
        Self::download_from(FASHION_MNIST_URL, dir)
    }

    /// [`FashionMnist::download`] from a mirror: `base_url` followed by each file's name (the
    /// same checksums apply).
    ///
    /// # Errors
    /// As [`FashionMnist::download`].
    pub fn download_from(base_url: &str, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        for (name, sha256) in FASHION_MNIST_FILES {
            fetch_verified(&format!("{base_url}{name}"), &dir.join(name), |bytes| {
                let mut plain = Vec::new();
                GzDecoder::new(bytes)
                    .read_to_end(&mut plain)
                    .map_err(|e| format!("corrupt gzip data: {e}"))?;
                check_hex(
                    "SHA-256 of the decompressed data",
                    &sha256_hex(&plain),
                    sha256,
                )
            })?;
        }
        Self::from_dir(dir)
    }
}

impl Cifar10 {
    /// Downloads `cifar-10-binary.tar.gz` into `dir` (kept when already there with the right
    /// checksum), unpacks it there (`dir/cifar-10-batches-bin`) and loads it.
    ///
    /// # Errors
    /// The download fails or its MD5 differs from the official one, the archive cannot be
    /// unpacked, or `dir` is not writable.
    pub fn download(dir: impl AsRef<Path>) -> Result<Self> {
        Self::download_from(CIFAR10_URL, dir)
    }

    /// [`Cifar10::download`] from a mirror: `url` is the archive's address (the same checksum
    /// applies).
    ///
    /// # Errors
    /// As [`Cifar10::download`].
    pub fn download_from(url: &str, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let archive = dir.join("cifar-10-binary.tar.gz");
        let bytes = fetch_verified(url, &archive, |bytes| {
            check_hex("MD5", &hex(&Md5::digest(bytes)), CIFAR10_MD5)
        })?;
        // `unpack` refuses entries that would land outside `dir`.
        tar::Archive::new(GzDecoder::new(bytes.as_slice()))
            .unpack(dir)
            .map_err(|e| DataError::corrupt(&archive, format!("cannot unpack: {e}")))?;
        Self::from_dir(dir)
    }
}

/// The bytes at `path` when they pass `verify`, else downloaded from `url`, verified and written
/// atomically to `path`.
fn fetch_verified(
    url: &str,
    path: &Path,
    verify: impl Fn(&[u8]) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    if let Ok(bytes) = std::fs::read(path)
        && verify(&bytes).is_ok()
    {
        return Ok(bytes);
    }
    let download_error = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let response = ureq::get(url)
        .call()
        .map_err(|e| download_error(e.to_string()))?;
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_DOWNLOAD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| download_error(e.to_string()))?;
    verify(&bytes).map_err(download_error)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    write_file_atomically(path, &bytes)?;
    Ok(bytes)
}

fn check_hex(what: &str, found: &str, expected: &str) -> std::result::Result<(), String> {
    if found == expected {
        Ok(())
    } else {
        Err(format!("{what} is {found}, expected {expected}"))
    }
}
