//! Per-item against consistent MC samples for a per-item heuristic (BALD): which ranks the pool
//! closer to the posterior's own ranking, and what each costs. The measurement behind the
//! choice documented in docs/bayesian.md.
//!
//! A `SmallCnn` is trained on 200 balanced Fashion-MNIST labels; 2000 pool images are scored
//! by BALD from T = 20 samples, per-item and consistent, for 10 sampler seeds, and compared
//! with a reference ranking from T = 1000 per-item samples (the MC-dropout posterior itself,
//! up to a small sampling error): overlap of the top 20, and Spearman's correlation of the
//! scores.
//!
//! ```sh
//! cargo run --release -p baal-reproduce --example sample_consistency
//! ```
//!
//! Needs the `flex` feature (on by default) and Fashion-MNIST in
//! /usr/share/datasets/fashion-mnist (`apt-get install dataset-fashion-mnist`).

use std::time::Instant;

use baal::active::{Predictor, Trainer, TrainerConfig};
use baal::bayesian::McSamplerConfig;
use baal::data::{ActiveLearningDataset, FashionMnist, label_balanced};
use baal::heuristics::{Bald, Heuristic, Predictions};
use baal::prelude::parse_device;
use baal_zoo::images::{Normalization, NormalizedImage, NormalizedImages, normalized_batcher};
use baal_zoo::models::SmallCnnConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Error = Box<dyn std::error::Error>;

/// BALD scores of `pool` from `iterations` samples.
fn bald_scores(
    trainer: &Trainer<baal_zoo::models::SmallCnn, NormalizedImage>,
    pool: &NormalizedImages,
    iterations: usize,
    seed: u64,
    consistent: bool,
) -> Result<(Vec<f32>, f64), Error> {
    let sampler = McSamplerConfig::new(iterations)
        .with_seed(seed)
        .with_consistent(consistent)
        .init()?;
    let started = Instant::now();
    let probs = trainer.predict(&sampler, pool)?;
    let scores = Bald.scores(&Predictions::from_probs(probs)?, None)?;
    Ok((scores, started.elapsed().as_secs_f64()))
}

fn top(scores: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(k);
    order
}

fn ranks(scores: &[f32]) -> Vec<f64> {
    let order = top(scores, scores.len());
    let mut rank = vec![0.0; scores.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as f64;
    }
    rank
}

fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn main() -> Result<(), Error> {
    let data = FashionMnist::from_default_dir().map_err(|e| {
        format!("{e}. This measurement needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
    })?;
    let normalization = Normalization::fashion_mnist();
    let device = parse_device("cpu")?;
    device.seed(0);
    let train = NormalizedImages::all(&data.train, &normalization)?;
    let pool_positions: Vec<usize> = (0..2000).map(|i| 20_000 + 7 * i).collect();
    let pool = NormalizedImages::select(&data.train, &pool_positions, &normalization)?;
    let mut labelled = ActiveLearningDataset::new(train.clone())
        .with_known_labels(|item: &NormalizedImage| item.label);
    labelled.label_dataset_indices(&label_balanced(
        train.labels(),
        200,
        &mut ChaCha8Rng::seed_from_u64(1),
    ))?;
    let mut trainer = Trainer::new(
        SmallCnnConfig::new().init(&device)?,
        &device,
        normalized_batcher(),
        TrainerConfig::default()
            .with_epochs(30)
            .with_min_gradient_steps(300),
    )?;
    trainer.fit(&labelled.labelled())?;

    let (reference, _) = bald_scores(&trainer, &pool, 1000, 999, false)?;
    let reference_top = top(&reference, 20);
    println!("reference: BALD from T = 1000 per-item samples, top 20 of 2000 pool images");
    println!(
        "| samples (T = 20) | top-20 overlap with the reference | Spearman | seconds per pool |"
    );
    println!("|---|---|---|---|");
    for consistent in [false, true] {
        let (mut overlaps, mut correlations, mut seconds) = (Vec::new(), Vec::new(), Vec::new());
        for seed in 0..10 {
            let (scores, elapsed) = bald_scores(&trainer, &pool, 20, seed, consistent)?;
            let picked = top(&scores, 20);
            overlaps.push(picked.iter().filter(|i| reference_top.contains(i)).count() as f64);
            correlations.push(spearman(&scores, &reference));
            seconds.push(elapsed);
        }
        println!(
            "| {} | {:.1} / 20 (min {}, max {}) | {:.3} | {:.3} |",
            if consistent { "consistent" } else { "per-item" },
            mean(&overlaps),
            overlaps.iter().copied().fold(f64::INFINITY, f64::min),
            overlaps.iter().copied().fold(0.0, f64::max),
            mean(&correlations),
            mean(&seconds)
        );
    }
    Ok(())
}
