#![no_main]
//! The CIFAR-10 batch parser never panics, and what it accepts is self-consistent.

use baal_data::formats::cifar::{CIFAR10_IMAGE_BYTES, parse_cifar10_batch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((pixels, labels)) = parse_cifar10_batch(bytes) {
        assert_eq!(pixels.len(), labels.len() * CIFAR10_IMAGE_BYTES);
        assert!(labels.iter().all(|&l| l < 10));
    }
});
