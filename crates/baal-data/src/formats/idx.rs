//! The IDX format of MNIST, Fashion-MNIST and EMNIST: unsigned-byte arrays, plain or
//! gzip-compressed.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

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

/// Encodes an unsigned-byte IDX array (for tests; feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub fn encode_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    // The dimension count is one byte in the format; callers pass at most a handful.
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    bytes.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
    bytes.extend(data);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

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
