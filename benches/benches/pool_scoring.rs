//! Scoring a pool while it is predicted (streaming) against predicting it whole first
//! (in memory), issue 13: the zoo's small CNN, T = 20, BALD, over a generated pool of noisy
//! Fashion-MNIST images ([`NoisyPool`]), batches of 256, on `BAAL_BENCH_DEVICE` (default
//! `cpu`). Criterion reports items per second.
//!
//! - `pool_scoring/in_memory/bald_50000`: `Predictor::predict` stacks `[N, C, T]`, then BALD
//!   ranks it (what the loop did before).
//! - `pool_scoring/streaming/bald_50000`: `Predictor::predict_chunks` hands each batch to a
//!   `PoolScorer`, which keeps one score per item, then ranks.
//!
//! The 1 000 000-item figure (items/s and peak memory beyond the pool's data) is one run of
//! the `pool_million` example: a criterion sample of it would take minutes.

use std::hint::black_box;

use baal::active::{Predictor, score_pool};
use baal::bayesian::McSamplerConfig;
use baal::heuristics::{Bald, Heuristic, Predictions};
use baal_benches::{NoisyPool, bench_device, noisy_pool_predictor};
use criterion::{Criterion, Throughput, criterion_main};

const ITEMS: usize = 50_000;

fn pool_scoring(criterion: &mut Criterion) {
    let predictor = noisy_pool_predictor(&bench_device());
    let pool = NoisyPool::new(ITEMS, 0.1);
    let sampler = McSamplerConfig::new(20).init().expect("valid sampler");
    let mut group = criterion.benchmark_group("pool_scoring");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("in_memory/bald_50000", |bencher| {
        bencher.iter(|| {
            let probs = predictor.predict(&sampler, &pool).expect("predict");
            let predictions = Predictions::from_probs(probs).expect("valid");
            black_box(Bald.rank(&predictions, None).expect("rank"))
        });
    });
    group.bench_function("streaming/bald_50000", |bencher| {
        bencher.iter(|| {
            let scores =
                score_pool(&predictor, &sampler, &pool, &Bald, None, None).expect("scores");
            black_box(scores.rank(&Bald).expect("rank"))
        });
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    pool_scoring(&mut criterion);
}

criterion_main!(benches);
