//! Heuristic throughput on the sizes of the issues: BALD and entropy ranking of 50000×10×20,
//! BatchBALD selecting 10 of 1000 and 100 of 10000 (×10 classes ×20 MC iterations).
//!
//! `rank`/`select` return host data, so every timing includes the device work it waited for.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::time::Duration;

use baal::heuristics::{Bald, BatchBald, Entropy, Heuristic, Predictions};
use baal_benches::{bench_device, random_probs};
use criterion::{Criterion, criterion_group, criterion_main};

fn ranking(c: &mut Criterion) {
    let device = bench_device();
    let (n, classes, t) = (50_000, 10, 20);
    let preds = Predictions::from_probs(random_probs(n, classes, t, 0, &device)).expect("valid");
    let mut group = c.benchmark_group("heuristics");
    group.sample_size(30);
    for (name, h) in [("bald", &Bald as &dyn Heuristic), ("entropy", &Entropy)] {
        group.bench_function(format!("{name}/{n}x{classes}x{t}"), |b| {
            b.iter(|| h.rank(&preds, None).expect("rank"))
        });
    }
    group.finish();
}

fn batch_bald(c: &mut Criterion) {
    let device = bench_device();
    let mut group = c.benchmark_group("heuristics/batch_bald");
    for (k, n, samples, time) in [(10, 1000, 10, 5), (100, 10_000, 10, 60)] {
        let preds = Predictions::from_probs(random_probs(n, 10, 20, 1, &device)).expect("valid");
        let heuristic = BatchBald::new(k).with_seed(0);
        group
            .sample_size(samples)
            .measurement_time(Duration::from_secs(time));
        group.bench_function(format!("select{k}_of_{n}x10x20"), |b| {
            b.iter(|| heuristic.select(&preds, None, k).expect("select"))
        });
    }
    group.finish();
}

criterion_group!(benches, ranking, batch_bald);
criterion_main!(benches);
