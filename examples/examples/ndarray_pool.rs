//! Ranks a pool whose MC predictions are `ndarray` arrays, as a model run elsewhere (ONNX
//! Runtime through `ort`, linfa, candle) would hand them over: BALD scores and a BatchBALD
//! query come back as arrays. Needs the facade's `ndarray` feature (this crate turns it on).
//!
//! `cargo run -p baal-examples --example ndarray_pool`

use baal::heuristics::{Bald, BatchBald, Heuristic, Predictions, ScoresArray};
use baal::prelude::Device;
use ndarray::Array3;

fn main() -> Result<(), baal::heuristics::HeuristicError> {
    // 1000 pool items, 10 classes, 20 MC samples: a softmax over made-up logits whose
    // disagreement across samples grows with the item's index.
    let (n, c, t) = (1000, 10, 20);
    let logits = Array3::from_shape_fn((n, c, t), |(i, class, sample)| {
        let wobble = (i as f64 / n as f64) * ((sample * 7 + class * 3) % 11) as f64;
        (class == i % c) as u8 as f64 * 3.0 + wobble
    });
    let device = Device::default();
    let predictions = Predictions::from_ndarray_logits(logits.view(), &device)?;

    let bald = Bald.scores_array(&predictions, None)?;
    let top = Bald.select(&predictions, None, 5)?.positions_array();
    println!(
        "BALD of the first and last items: {:.4} {:.4}",
        bald[0],
        bald[n - 1]
    );
    println!("top 5 by BALD: {top}");

    let query = BatchBald::new(5)
        .select(&predictions, None, 5)?
        .positions_array();
    println!("BatchBALD's 5 picks: {query}");
    Ok(())
}
