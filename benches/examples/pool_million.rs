//! One streaming BALD pass over a generated pool of 1 000 000 noisy Fashion-MNIST images
//! (the zoo's small CNN, T = 20, batches of 256): prints items per second and the peak
//! resident memory beyond what the process held before scoring (the model, the 60 000 base
//! images; the pool's items are generated on demand and hold no memory of their own).
//!
//! `cargo run --release -p baal-benches --example pool_million [-- ITEMS]`

use std::time::Instant;

use baal::active::{Predictor, score_pool};
use baal::bayesian::McSamplerConfig;
use baal::heuristics::Bald;
use baal_benches::{NoisyPool, bench_device, noisy_pool_predictor, reset_peak_rss, rss};

fn main() {
    let items: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("ITEMS is a number"));
    let predictor = noisy_pool_predictor(&bench_device());
    let pool = NoisyPool::new(items, 0.1);
    let sampler = McSamplerConfig::new(20).init().expect("valid sampler");
    // Warm up (allocator pools, kernels) on a few batches, then measure from here.
    let warm = NoisyPool::new(1024, 0.1);
    predictor.predict(&sampler, &warm).expect("warm-up");
    let (before, _) = rss().expect("Linux /proc");
    reset_peak_rss();
    let started = Instant::now();
    let scores = score_pool(&predictor, &sampler, &pool, &Bald, None, None).expect("scores");
    let ranking = scores.rank(&Bald).expect("rank");
    let seconds = started.elapsed().as_secs_f64();
    let (_, peak) = rss().expect("Linux /proc");
    println!(
        "{items} items, T = 20, BALD: {seconds:.1} s, {:.0} items/s; resident before scoring \
         {:.0} MB, peak during {:.0} MB: {:.1} MB beyond (most informative item {})",
        items as f64 / seconds,
        before as f64 / 1e6,
        peak as f64 / 1e6,
        peak.saturating_sub(before) as f64 / 1e6,
        ranking.positions()[0]
    );
}
