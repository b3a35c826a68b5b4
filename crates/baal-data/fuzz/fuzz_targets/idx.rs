#![no_main]
//! The IDX parser (plain and gzip) never panics, and what it accepts is self-consistent.

use baal_data::formats::idx::IdxArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(array) = IdxArray::parse(bytes) {
        assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
    }
});
