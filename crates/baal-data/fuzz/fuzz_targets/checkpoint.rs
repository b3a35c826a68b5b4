#![no_main]
//! Checkpoint decoding never panics on any file content.

use baal_data::{Checkpoint, DatasetState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = Checkpoint::decode::<DatasetState<u32>>(bytes);
    let _ = Checkpoint::decode::<DatasetState<String>>(bytes);
});
