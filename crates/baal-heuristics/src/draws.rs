//! The seeded random streams of the heuristics that draw (random order, sampling, BatchBALD's
//! configurations): the n-th draw uses stream n of the seed, and the counter is what a run
//! saves to resume ([`Heuristic::draws`](crate::Heuristic::draws)).

use std::sync::atomic::{AtomicU64, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A seed and how many generators have been drawn from it.
#[derive(Debug)]
pub(crate) struct DrawCounter {
    seed: u64,
    draws: AtomicU64,
}

impl DrawCounter {
    /// No draws yet from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            draws: AtomicU64::new(0),
        }
    }

    /// The seed.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The generator of the next draw: stream n of the seed at the n-th call.
    pub(crate) fn next_rng(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(self.draws.fetch_add(1, Ordering::Relaxed));
        rng
    }

    /// Draws so far.
    pub(crate) fn get(&self) -> u64 {
        self.draws.load(Ordering::Relaxed)
    }

    /// Continues as after `draws` draws.
    pub(crate) fn set(&self, draws: u64) {
        self.draws.store(draws, Ordering::Relaxed);
    }
}

impl Clone for DrawCounter {
    fn clone(&self) -> Self {
        Self {
            seed: self.seed,
            draws: AtomicU64::new(self.get()),
        }
    }
}
