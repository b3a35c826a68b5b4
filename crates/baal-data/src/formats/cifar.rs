//! The binary version of CIFAR-10 (`cifar-10-binary.tar.gz`): records of a label byte and a
//! `[3, 32, 32]` image in CHW order.

/// Bytes of one CIFAR-10 image: 3 channels of 32 x 32.
pub const CIFAR10_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one record: the label byte then the image.
pub const CIFAR10_RECORD_BYTES: usize = 1 + CIFAR10_IMAGE_BYTES;
/// Number of classes: labels are 0 to 9.
pub const CIFAR10_CLASSES: usize = 10;

/// Splits the bytes of a CIFAR-10 binary batch into CHW pixels and labels; the error says what
/// is wrong.
pub fn parse_cifar10_batch(bytes: &[u8]) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    if bytes.is_empty() {
        return Err("empty file: a CIFAR-10 batch holds at least one record".into());
    }
    if !bytes.len().is_multiple_of(CIFAR10_RECORD_BYTES) {
        return Err(format!(
            "size {} is not a whole number of {CIFAR10_RECORD_BYTES}-byte records (truncated or not a CIFAR-10 batch)",
            bytes.len()
        ));
    }
    let n = bytes.len() / CIFAR10_RECORD_BYTES;
    let mut pixels = Vec::with_capacity(n * CIFAR10_IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(CIFAR10_RECORD_BYTES).enumerate() {
        let label = record[0];
        if usize::from(label) >= CIFAR10_CLASSES {
            return Err(format!(
                "record {i} has label {label}; CIFAR-10 labels are 0 to 9 (is this CIFAR-100?)"
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// Encodes images and labels as a CIFAR-10 binary batch (for tests; feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub fn encode_cifar10_batch(images: &[[u8; CIFAR10_IMAGE_BYTES]], labels: &[u8]) -> Vec<u8> {
    images
        .iter()
        .zip(labels)
        .flat_map(|(image, &label)| std::iter::once(label).chain(image.iter().copied()))
        .collect()
}
