//! Numpy's `.npy` format: a reader (versions 1 to 3, C order, little-endian or byte dtypes) and a
//! version 1 writer.

use std::path::Path;

use crate::error::{DataError, Result};

/// The element values of an `.npy` array, in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// `<f4`
    F32(Vec<f32>),
    /// `<f8`
    F64(Vec<f64>),
    /// `|u1`
    U8(Vec<u8>),
    /// `|i1`
    I8(Vec<i8>),
    /// `<i4`
    I32(Vec<i32>),
    /// `<i8`
    I64(Vec<i64>),
    /// `<u4`
    U32(Vec<u32>),
    /// `<u8`
    U64(Vec<u64>),
}

/// An n-dimensional array read from an `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape, outermost axis first.
    pub shape: Vec<usize>,
    /// The values.
    pub data: NpyData,
}

impl NpyArray {
    /// Reads an `.npy` file.
    ///
    /// # Errors
    /// The file cannot be read, or is not a well-formed C-order little-endian `.npy` array of
    /// a supported dtype (`f4`, `f8`, `u1`, `i1`, `i4`, `i8`, `u4`, `u8`).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes).map_err(|reason| DataError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the bytes of an `.npy` file; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let header = Header::parse(bytes)?;
        let count = header.count()?;
        let data = decode(&header.descr, &bytes[header.data_start..], count)?;
        Ok(Self {
            shape: header.shape,
            data,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as `f32` (floats narrowed, integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            NpyData::I8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as class labels: an integer dtype, every value non-negative. The error says
    /// what is wrong (a float dtype, the first negative value).
    pub fn to_class_labels(&self) -> std::result::Result<Vec<usize>, String> {
        fn convert<T: Copy + TryInto<usize> + std::fmt::Display>(
            values: &[T],
        ) -> std::result::Result<Vec<usize>, String> {
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    v.try_into()
                        .map_err(|_| format!("label {v} of item {i} is not a class index"))
                })
                .collect()
        }
        match &self.data {
            NpyData::U8(v) => Ok(v.iter().map(|&x| usize::from(x)).collect()),
            NpyData::I8(v) => convert(v),
            NpyData::I32(v) => convert(v),
            NpyData::I64(v) => convert(v),
            NpyData::U32(v) => convert(v),
            NpyData::U64(v) => convert(v),
            NpyData::F32(_) | NpyData::F64(_) => Err(format!(
                "labels must be integers, found dtype {}",
                self.dtype_name()
            )),
        }
    }

    /// The name of the element type (`f32`, `u8`, ...).
    pub fn dtype_name(&self) -> &'static str {
        match &self.data {
            NpyData::F32(_) => "f32",
            NpyData::F64(_) => "f64",
            NpyData::U8(_) => "u8",
            NpyData::I8(_) => "i8",
            NpyData::I32(_) => "i32",
            NpyData::I64(_) => "i64",
            NpyData::U32(_) => "u32",
            NpyData::U64(_) => "u64",
        }
    }
}

/// The header of an `.npy` file: dtype, shape and where the data starts.
struct Header {
    descr: String,
    shape: Vec<usize>,
    data_start: usize,
}

impl Header {
    /// Parses the header at the start of `bytes` (the whole file, or at least its header).
    fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        const MAGIC: &[u8] = b"\x93NUMPY";
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err("not an .npy file (missing the \\x93NUMPY magic)".into());
        }
        let (header_len, header_start) = match (bytes[6], bytes[7]) {
            (1, 0) => (
                usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
                10usize,
            ),
            (2 | 3, 0) if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            (major, minor) => {
                return Err(format!(
                    "unsupported .npy version {major}.{minor} (numpy writes 1.0, 2.0 and 3.0)"
                ));
            }
        };
        let data_start = header_start
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("truncated header: {header_len} bytes announced"))?;
        let header = std::str::from_utf8(&bytes[header_start..data_start])
            .map_err(|_| "header is not text".to_string())?;
        let fields = HeaderFields::parse(header)?;
        if fields.fortran_order {
            return Err(
                "Fortran-order arrays are not supported: save with np.ascontiguousarray".into(),
            );
        }
        Ok(Self {
            descr: fields.descr,
            shape: fields.shape,
            data_start,
        })
    }

    /// Number of elements the shape announces.
    fn count(&self) -> std::result::Result<usize, String> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| "shape overflows".to_string())
    }
}

/// Reads a float `.npy` array of shape `[N, ...]` a few rows (items) at a time, for arrays
/// larger than memory: only the header is read on open, then each call reads the next rows.
#[derive(Debug)]
pub struct NpyRows {
    file: std::io::BufReader<std::fs::File>,
    path: std::path::PathBuf,
    shape: Vec<usize>,
    /// Bytes per element: 4 (`<f4`) or 8 (`<f8`).
    width: usize,
    row_elements: usize,
    next_row: usize,
    /// Where the data starts in the file.
    data_start: u64,
}

impl NpyRows {
    /// Opens `path` and reads its header; the file's length must match the header.
    ///
    /// # Errors
    /// The file cannot be read, its header is malformed, its dtype is not little-endian
    /// `f4` or `f8`, it has no axis, or its length is not what the header announces.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |reason: String| DataError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        // Version 2 and 3 headers may be up to 4 GiB long; real ones are a few hundred bytes.
        let mut head = Vec::new();
        (&file).take(1 << 20).read_to_end(&mut head).map_err(io)?;
        let header = Header::parse(&head).map_err(corrupt)?;
        let width = match header.descr.as_str() {
            "<f4" => 4,
            "<f8" => 8,
            other => {
                return Err(corrupt(format!(
                    "dtype {other} is not supported here: save float32 or float64 (little-endian)"
                )));
            }
        };
        let count = header.count().map_err(corrupt)?;
        if header.shape.is_empty() {
            return Err(corrupt("a scalar array has no rows".into()));
        }
        let expected = (count as u64)
            .checked_mul(width as u64)
            .and_then(|bytes| bytes.checked_add(header.data_start as u64))
            .ok_or_else(|| corrupt("array size overflows".into()))?;
        if file_len != expected {
            return Err(corrupt(format!(
                "{} bytes of data where the header announces {count} elements of {width} bytes \
                 ({} bytes)",
                file_len.saturating_sub(header.data_start as u64),
                expected - header.data_start as u64
            )));
        }
        let mut file = std::io::BufReader::with_capacity(1 << 20, file);
        std::io::Seek::seek(
            &mut file,
            std::io::SeekFrom::Start(header.data_start as u64),
        )
        .map_err(io)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            row_elements: header.shape[1..].iter().product(),
            shape: header.shape,
            width,
            next_row: 0,
            data_start: header.data_start as u64,
        })
    }

    /// The array's shape, rows first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of rows (the first axis).
    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    /// The first row the next read returns.
    pub fn next_row(&self) -> usize {
        self.next_row
    }

    /// The name of the element type: `f32` or `f64`.
    pub fn dtype_name(&self) -> &'static str {
        if self.width == 4 { "f32" } else { "f64" }
    }

    /// Moves to row `row`: the next read starts there (for reading chunks out of order).
    ///
    /// # Errors
    /// A row past the end, or a file that cannot be sought.
    pub fn seek_row(&mut self, row: usize) -> Result<()> {
        if row > self.rows() {
            return Err(DataError::Corrupt {
                path: self.path.clone(),
                reason: format!("row {row} is past the {} rows of the array", self.rows()),
            });
        }
        let offset = self.data_start + (row * self.row_elements * self.width) as u64;
        std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(offset)).map_err(
            |source| DataError::Io {
                path: self.path.clone(),
                source,
            },
        )?;
        self.next_row = row;
        Ok(())
    }

    /// Reads the next `rows` rows (fewer at the end) as `f32`, in C order; `None` once every
    /// row was read.
    ///
    /// # Errors
    /// The file cannot be read (it changed since it was opened).
    pub fn read_f32(&mut self, rows: usize) -> Result<Option<Vec<f32>>> {
        use std::io::Read;
        let rows = rows.max(1).min(self.rows() - self.next_row);
        if rows == 0 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; rows * self.row_elements * self.width];
        self.file
            .read_exact(&mut bytes)
            .map_err(|source| DataError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.next_row += rows;
        Ok(Some(if self.width == 4 {
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect()
        }))
    }
}

/// The three entries of an `.npy` header, read from its Python dict literal the way numpy
/// writes it: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, then spaces and
/// a newline. Each key exactly once, no other key, every value of its type: a header that
/// numpy would not have written is an error, not a guess.
struct HeaderFields {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl HeaderFields {
    fn parse(header: &str) -> std::result::Result<Self, String> {
        let mut text = Cursor(header.trim_start());
        text.expect('{', "the header is not a dict literal")?;
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        loop {
            text.skip_spaces();
            if text.eat('}') {
                break;
            }
            let key = text.quoted("a quoted key")?;
            text.skip_spaces();
            text.expect(':', "a ':' after each key")?;
            text.skip_spaces();
            let repeated = match key {
                "descr" => descr
                    .replace(text.quoted("a quoted dtype for 'descr'")?.to_string())
                    .is_some(),
                "fortran_order" => fortran_order.replace(text.boolean()?).is_some(),
                "shape" => shape.replace(text.shape()?).is_some(),
                other => return Err(format!("header has an unknown entry '{other}'")),
            };
            if repeated {
                return Err(format!("header has two '{key}' entries"));
            }
            text.skip_spaces();
            if !text.eat(',') {
                text.skip_spaces();
                text.expect('}', "a ',' or '}' after each entry")?;
                break;
            }
        }
        if !text.0.trim_matches([' ', '\n']).is_empty() {
            return Err("header has text after its dict literal".into());
        }
        let missing = |key: &str| format!("header has no '{key}' entry");
        Ok(Self {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

/// The unread rest of a header.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        self.0 = self.0.trim_start_matches(' ');
    }

    fn eat(&mut self, c: char) -> bool {
        match self.0.strip_prefix(c) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char, what: &str) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("malformed header: expected {what}"))
        }
    }

    /// A string in single or double quotes (no escapes: numpy's keys and dtypes have none).
    fn quoted(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let bad = || format!("malformed header: expected {what}");
        let quote = self
            .0
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"'))
            .ok_or_else(bad)?;
        let rest = &self.0[1..];
        let end = rest.find(quote).ok_or_else(bad)?;
        self.0 = &rest[end + 1..];
        Ok(&rest[..end])
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        for (word, value) in [("True", true), ("False", false)] {
            if let Some(rest) = self.0.strip_prefix(word) {
                self.0 = rest;
                return Ok(value);
            }
        }
        Err("malformed header: 'fortran_order' is not True or False".into())
    }

    /// A tuple of non-negative integers: `()`, `(3,)`, `(2, 3)`, `(2L, 3L)` (Python 2).
    fn shape(&mut self) -> std::result::Result<Vec<usize>, String> {
        let bad = || "malformed header: 'shape' is not a tuple of integers".to_string();
        let rest = self.0.strip_prefix('(').ok_or_else(bad)?;
        let end = rest.find(')').ok_or_else(bad)?;
        let inner = &rest[..end];
        self.0 = &rest[end + 1..];
        let mut entries: Vec<&str> = inner.split(',').map(str::trim).collect();
        if entries.last() == Some(&"") {
            entries.pop(); // `(3,)` and `()`
        }
        if entries.len() == 1 && !inner.contains(',') && !inner.trim().is_empty() {
            return Err(bad()); // `(3)` is not a tuple
        }
        entries
            .into_iter()
            .map(|entry| {
                let digits = entry.strip_suffix('L').unwrap_or(entry);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "shape entry '{entry}' is not a non-negative integer"
                    ));
                }
                digits
                    .parse::<usize>()
                    .map_err(|_| format!("shape entry '{entry}' is too large"))
            })
            .collect()
    }
}

fn decode(descr: &str, body: &[u8], count: usize) -> std::result::Result<NpyData, String> {
    // `split_at_checked`: the descr is untrusted text and may start with a multi-byte char.
    let (order, kind) = descr
        .split_at_checked(1)
        .ok_or_else(|| format!("unsupported dtype {descr}"))?;
    let one_byte = matches!(kind, "u1" | "i1" | "b1");
    match order {
        "<" => {}
        "|" | ">" if one_byte => {}
        ">" => {
            return Err(format!(
                "big-endian dtype {descr} is not supported: save little-endian"
            ));
        }
        _ => {
            return Err(format!(
                "unsupported dtype {descr}: numpy writes '<' (little-endian) or '|' (single \
                 bytes) before the type"
            ));
        }
    }
    let width = match kind {
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" | "u8" => 8,
        "u1" | "i1" | "b1" => 1,
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    let needed = count.checked_mul(width).ok_or("array size overflows")?;
    if body.len() < needed {
        return Err(format!(
            "truncated data: {count} elements of {width} bytes need {needed} bytes, found {}",
            body.len()
        ));
    }
    if body.len() > needed {
        return Err(format!(
            "{} bytes after the {count} elements the header announces",
            body.len() - needed
        ));
    }
    macro_rules! le {
        ($ty:ty, $n:literal) => {
            body.chunks_exact($n)
                .map(|b| <$ty>::from_le_bytes(b.try_into().expect("chunk of the dtype's width")))
                .collect()
        };
    }
    Ok(match kind {
        "f4" => NpyData::F32(le!(f32, 4)),
        "f8" => NpyData::F64(le!(f64, 8)),
        "i4" => NpyData::I32(le!(i32, 4)),
        "i8" => NpyData::I64(le!(i64, 8)),
        "u4" => NpyData::U32(le!(u32, 4)),
        "u8" => NpyData::U64(le!(u64, 8)),
        "u1" | "b1" => NpyData::U8(body.to_vec()),
        _ => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
    })
}

/// Encodes an `f32` array as `.npy` version 1 bytes (little-endian, C order).
pub fn encode_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    encode_raw("<f4", shape, &data)
}

/// Encodes an `i64` array as `.npy` version 1 bytes (little-endian, C order).
pub fn encode_i64(shape: &[usize], values: &[i64]) -> Vec<u8> {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    encode_raw("<i8", shape, &data)
}

/// Encodes raw element bytes as a `.npy` version 1 file with dtype `descr` (e.g. `"|u1"`),
/// C order; the caller makes `data` match `descr` and `shape`.
pub fn encode_raw(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that the data starts on a 64-byte boundary, header ending in a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    // Headers written here are a few hundred bytes: they fit version 1's u16 length.
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_f32() {
        let bytes = encode_f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!((bytes.len() - 6 * 4) % 64, 0);
        let array = NpyArray::parse(&bytes).expect("valid");
        assert_eq!(array.shape, vec![2, 3]);
        assert_eq!(array.data, NpyData::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    }

    #[test]
    fn reads_numpy_written_f64_header() {
        // Header as numpy 1.x writes it for np.zeros((2,), dtype='<f8').
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let padded = format!("{header:<117}\n");
        bytes.extend((padded.len() as u16).to_le_bytes());
        bytes.extend(padded.as_bytes());
        bytes.extend(1.5f64.to_le_bytes());
        bytes.extend((-2.0f64).to_le_bytes());
        let array = NpyArray::parse(&bytes).expect("valid");
        assert_eq!(array.shape, vec![2]);
        assert_eq!(array.to_f32(), vec![1.5, -2.0]);
    }

    #[test]
    fn non_ascii_dtype_is_an_error_not_a_panic() {
        // Found by the `npy` fuzz target: `split_at(1)` inside a two-byte character panicked.
        let header = "{'descr': '\u{11d}4', 'fortran_order': False, 'shape': (1,), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend([0; 4]);
        assert!(
            NpyArray::parse(&bytes)
                .expect_err("rejected")
                .contains("unsupported dtype")
        );
    }

    #[test]
    fn rejects_bad_files_with_reasons() {
        let good = encode_f32(&[2, 2], &[0.0; 4]);
        assert!(
            NpyArray::parse(b"PK\x03\x04 a zip")
                .expect_err("rejected")
                .contains("magic")
        );
        assert!(
            NpyArray::parse(&good[..good.len() - 1])
                .expect_err("rejected")
                .contains("truncated")
        );
        let mut long = good.clone();
        long.push(0);
        assert!(
            NpyArray::parse(&long)
                .expect_err("rejected")
                .contains("after")
        );
        let mut fortran = good.clone();
        let at = fortran
            .windows(5)
            .position(|w| w == b"False")
            .expect("fortran_order in the header");
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(
            NpyArray::parse(&fortran)
                .expect_err("rejected")
                .contains("Fortran-order")
        );
        // Byte-level edit: the magic's 0x93 is not UTF-8, so no round trip through a String.
        let mut big = good.clone();
        let at = big
            .windows(3)
            .position(|w| w == b"<f4")
            .expect("descr in the header");
        big[at] = b'>';
        assert!(
            NpyArray::parse(&big)
                .expect_err("rejected")
                .contains("big-endian")
        );
        assert!(
            NpyArray::parse(&good[..20])
                .expect_err("rejected")
                .contains("truncated header")
        );
    }

    /// A v1 file of the given header text (padded as numpy pads it) and data.
    fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut header = header.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn headers_numpy_would_not_write_are_refused() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        assert_eq!(
            NpyArray::parse(&with_header(ok, &data))
                .expect("numpy's layout")
                .shape,
            vec![2, 2]
        );
        // Variants numpy itself reads: double quotes, no trailing comma, Python 2 longs,
        // (4,) and no newline at the end.
        for header in [
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 2)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
        ] {
            assert!(
                NpyArray::parse(&with_header(header, &data)).is_ok(),
                "{header}"
            );
        }
        // Each found lax by running our error cases against ndarray-npy and npyz: accepted
        // before, refused now with a reason.
        for (header, reason) in [
            (
                "{'descr': 'xf4', 'fortran_order': False, 'shape': (2, 2), }",
                "numpy writes '<'",
            ),
            (
                "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 2), }",
                "numpy writes '<'",
            ),
            (
                "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 2), }",
                "numpy writes '<'",
            ),
            (
                "'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)",
                "not a dict",
            ),
            (
                "{'descr': <f4, 'fortran_order': False, 'shape': (2, 2), }",
                "quoted dtype",
            ),
            (
                "{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                "two 'descr'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': 1, }",
                "unknown entry 'extra'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2), }",
                "True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 2], }",
                "not a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4), }",
                "not a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }",
                "'-1' is not a non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } junk",
                "after its dict",
            ),
            (
                "x{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                "not a dict",
            ),
            ("{'descr': '<f4', 'fortran_order': False, }", "no 'shape'"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,), }",
                "too large",
            ),
        ] {
            let error = NpyArray::parse(&with_header(header, &data)).expect_err(header);
            assert!(error.contains(reason), "{header}: {error}");
        }
        // Version 1.1 does not exist.
        let mut minor = with_header(ok, &data);
        minor[7] = 1;
        assert!(
            NpyArray::parse(&minor)
                .expect_err("1.1")
                .contains("version 1.1")
        );
        // Single bytes may say '|', as numpy writes them.
        assert!(
            NpyArray::parse(&with_header(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }",
                &[3, 4]
            ))
            .is_ok()
        );
    }

    #[test]
    fn mutated_headers_never_panic_and_what_parses_is_consistent() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let seeds = [
            encode_f32(&[2, 3], &[0.5; 6]),
            encode_i64(&[3], &[1, 2, 3]),
            encode_raw("|u1", &[4], &[1, 2, 3, 4]),
        ];
        let alphabet = b"{}()[],:'\" <>|=fiub1248LTrueFalsdcpohn_-\n\x93\xff0";
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut bytes = seeds[rng.random_range(0..seeds.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => bytes[at] = rng.random(),
                    2 => bytes.truncate(at),
                    _ => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            if let Ok(array) = NpyArray::parse(&bytes) {
                accepted += 1;
                let count: usize = array.shape.iter().product();
                assert_eq!(array.len(), count, "{:?}", String::from_utf8_lossy(&bytes));
                assert_eq!(array.to_f32().len(), count);
            }
        }
        // Mutations that keep a valid file (a byte of data or padding changed) still parse.
        assert!(accepted > 100, "{accepted}");
    }

    #[test]
    fn rows_stream_in_chunks_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let values: Vec<f32> = (0..5 * 2 * 3).map(|v| v as f32 * 0.5).collect();
        let path = dir.path().join("p.npy");
        std::fs::write(&path, encode_f32(&[5, 2, 3], &values)).expect("write");
        let mut rows = NpyRows::open(&path).expect("opens");
        assert_eq!(
            (rows.shape(), rows.rows(), rows.dtype_name()),
            (&[5, 2, 3][..], 5, "f32")
        );
        let mut read = Vec::new();
        while let Some(chunk) = rows.read_f32(2).expect("reads") {
            read.push(chunk.len() / 6);
            assert_eq!(
                chunk[..],
                values[(rows.next_row() - chunk.len() / 6) * 6..rows.next_row() * 6]
            );
        }
        assert_eq!(read, vec![2, 2, 1]);
        // Rows out of order: back to row 3, then row 1, then past the end.
        rows.seek_row(3).expect("in range");
        assert_eq!(
            rows.read_f32(1).expect("reads"),
            Some(values[18..24].to_vec())
        );
        assert_eq!(rows.next_row(), 4);
        rows.seek_row(1).expect("in range");
        assert_eq!(
            rows.read_f32(2).expect("reads"),
            Some(values[6..18].to_vec())
        );
        rows.seek_row(5).expect("the end");
        assert_eq!(rows.read_f32(1).expect("reads"), None);
        assert!(rows.seek_row(6).is_err());
        // f64 rows are narrowed.
        let doubles: Vec<u8> = [0.25f64, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&path, encode_raw("<f8", &[2, 1], &doubles)).expect("write");
        let mut rows = NpyRows::open(&path).expect("opens");
        assert_eq!(rows.read_f32(10).expect("reads"), Some(vec![0.25, 4.0]));
        assert_eq!(rows.read_f32(10).expect("reads"), None);
        // A truncated file, an integer dtype and a scalar are refused on open.
        let mut bytes = encode_f32(&[5, 2, 3], &values);
        bytes.truncate(bytes.len() - 4);
        std::fs::write(&path, &bytes).expect("write");
        let error = NpyRows::open(&path).expect_err("truncated").to_string();
        assert!(error.contains("header announces"), "{error}");
        std::fs::write(&path, encode_i64(&[2], &[1, 2])).expect("write");
        let error = NpyRows::open(&path).expect_err("integers").to_string();
        assert!(error.contains("float32"), "{error}");
        std::fs::write(&path, encode_f32(&[], &[1.0])).expect("write");
        assert!(NpyRows::open(&path).is_err());
        std::fs::write(&path, b"not numpy").expect("write");
        assert!(NpyRows::open(&path).is_err());
    }
}
