//! Quick timings of the heuristic hot paths, for profiling outside criterion:
//! `cargo run --release -p baal-benches --example time_heuristics`.

use std::time::Instant;

use baal::heuristics::{Bald, BatchBald, Entropy, Heuristic, Orientation, Predictions, Ranking};
use baal_benches::{bench_device, random_probs};

fn time<T>(what: &str, reps: u32, mut f: impl FnMut() -> T) {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    println!(
        "{what}: {:.2} ms",
        start.elapsed().as_secs_f64() * 1e3 / f64::from(reps)
    );
}

fn main() {
    let device = bench_device();
    let preds = Predictions::from_probs(random_probs(50_000, 10, 20, 0, &device)).expect("valid");
    println!("host kernels: {}", preds.uses_host_kernels());
    time("bald scores", 20, || {
        Bald.scores(&preds, None).expect("scores")
    });
    time("entropy scores", 20, || {
        Entropy.scores(&preds, None).expect("scores")
    });
    let scores = Bald.scores(&preds, None).expect("scores");
    time("sort 50000", 20, || {
        Ranking::from_scores(scores.clone(), Orientation::HigherIsMoreInformative).expect("rank")
    });
    time("bald rank", 20, || Bald.rank(&preds, None).expect("rank"));
    let small = Predictions::from_probs(random_probs(1000, 10, 20, 1, &device)).expect("valid");
    time("batch_bald 10 of 1000", 3, || {
        BatchBald::new(10).select(&small, None, 10).expect("select")
    });
    if std::env::args().any(|a| a == "--large") {
        let large =
            Predictions::from_probs(random_probs(10_000, 10, 20, 1, &device)).expect("valid");
        time("batch_bald 100 of 10000", 1, || {
            BatchBald::new(100)
                .select(&large, None, 100)
                .expect("select")
        });
    }
}
