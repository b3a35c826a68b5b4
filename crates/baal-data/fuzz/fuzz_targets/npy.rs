#![no_main]
//! The `.npy` parser never panics, and what it accepts is self-consistent.

use baal_data::NpyArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(array) = NpyArray::parse(bytes) {
        assert_eq!(array.to_f32().len(), array.len());
        let _ = array.to_class_labels();
    }
});
