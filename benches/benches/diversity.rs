//! Diversity acquisition on the CPU: Coreset (k-center greedy) and BADGE (k-means++ on gradient
//! embeddings) selecting 100 items of 10k and 100k, with D = 128 features (and C = 10 classes
//! for BADGE); Coreset both without labelled items and with 1000 of them.
//!
//! The selections run on the host (rayon over rows), whatever `BAAL_BENCH_DEVICE` says; the
//! inputs are built outside the timed closure.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::time::Duration;

use baal::heuristics::{Badge, ClassProbabilities, CoreSet, EmbeddingInput, Embeddings, Heuristic};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const QUERY: usize = 100;
const DIM: usize = 128;
const CLASSES: usize = 10;

fn embeddings(n: usize, seed: u64) -> Embeddings {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values = (0..n * DIM)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    Embeddings::new(values, [n, DIM]).expect("finite")
}

/// A softmax of uniform logits in [-4, 4) per item.
fn probabilities(n: usize, seed: u64) -> ClassProbabilities {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(n * CLASSES);
    for _ in 0..n {
        let logits: Vec<f32> = (0..CLASSES)
            .map(|_| rng.random::<f32>() * 8.0 - 4.0)
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
        values.extend(logits.iter().map(|l| (l - max).exp() / total));
    }
    ClassProbabilities::new(values, [n, CLASSES]).expect("normalised")
}

fn coreset(c: &mut Criterion) {
    let mut group = c.benchmark_group("diversity/coreset");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let labelled = embeddings(1000, 1);
    for n in [10_000, 100_000] {
        let pool = embeddings(n, 0);
        let heuristic = CoreSet::new(0);
        group.bench_function(format!("select{QUERY}_of_{n}x{DIM}"), |b| {
            let input = EmbeddingInput::new(&pool);
            b.iter(|| {
                heuristic
                    .select_with_embeddings(&input, QUERY)
                    .expect("select")
            })
        });
        group.bench_function(format!("select{QUERY}_of_{n}x{DIM}_labelled1000"), |b| {
            let input = EmbeddingInput::new(&pool).with_labelled(&labelled);
            b.iter(|| {
                heuristic
                    .select_with_embeddings(&input, QUERY)
                    .expect("select")
            })
        });
    }
    group.finish();
}

fn badge(c: &mut Criterion) {
    let mut group = c.benchmark_group("diversity/badge");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for n in [10_000, 100_000] {
        let features = embeddings(n, 2);
        let probs = probabilities(n, 3);
        let heuristic = Badge::new(0);
        group.bench_function(format!("select{QUERY}_of_{n}x{CLASSES}x{DIM}"), |b| {
            let input = EmbeddingInput::new(&features).with_probabilities(&probs);
            b.iter(|| {
                heuristic
                    .select_with_embeddings(&input, QUERY)
                    .expect("select")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, coreset, badge);
criterion_main!(benches);
