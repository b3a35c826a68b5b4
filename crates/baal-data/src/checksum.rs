//! Checksums in lowercase hex: SHA-256 of bytes and of files, for the downloader's verified
//! datasets and the shard files' manifest (one helper, shared by both).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Bytes read from a file per step of [`file_sha256`]: the file is streamed, not loaded.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// A digest's bytes as lowercase hex, two digits a byte (`[0x0f, 0xa0]` gives `"0fa0"`).
///
/// ```
/// assert_eq!(baal_data::checksum::hex(&[0x0f, 0xa0]), "0fa0");
/// ```
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    digest
        .iter()
        .fold(String::with_capacity(2 * digest.len()), |mut text, byte| {
            // Writing to a String cannot fail.
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// SHA-256 of `bytes`, in lowercase hex (64 digits).
///
/// ```
/// assert_eq!(
///     baal_data::checksum::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of the file at `path`, in lowercase hex, read 1 MiB at a time (a model's weights
/// or a pool's array need not fit in memory twice).
///
/// # Errors
/// [`DataError::Io`] naming `path` when the file cannot be opened or read.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let read = file.read(&mut buffer).map_err(|e| DataError::io(path, e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashes_as_its_bytes_across_read_buffers() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("data.bin");
        // Longer than one read buffer, so the streamed hash crosses a boundary.
        let bytes: Vec<u8> = (0..READ_BUFFER_BYTES + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(file_sha256(&path).expect("hash"), sha256_hex(&bytes));
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("absent.bin");
        let error = file_sha256(&path).expect_err("missing").to_string();
        assert!(error.contains("absent.bin"), "{error}");
    }
}
