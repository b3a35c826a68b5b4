//! The library's seed plan: every random stream derives from one seed by one mixing function,
//! with a named stream each, so that no call site invents its own arithmetic and two streams
//! never coincide by accident.
//!
//! - [`SeedPlan`]: the named streams of a run (initial weights, training order and masks, MC
//!   masks, acquisition draws, initial labels, pool subsets) and [`SeedPlan::stream`] for others.
//! - [`nth`]: seed `k` of a sequence (fit `k`, step `k`, round `k`) from a stream's seed.
//! - [`member`]: the seed of member `m` of an ensemble fitted with one seed.
//! - [`mix`]: SplitMix64's finaliser, the one mixing function (MC masks key their streams
//!   with it too).

/// SplitMix64's finaliser: a bijective mix of 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of stream `name` of `seed`.
fn derive(seed: u64, name: &str) -> u64 {
    name.bytes()
        .fold(mix(seed ^ 0x5eed_9a1a_b0a1_0001), |h, b| {
            mix(h ^ u64::from(b))
        })
}

/// Seed `index` of the sequence that starts at `base` (`base + index`, wrapping): fit `k` of a
/// trainer, MC masks of step `k` of a loop, round `k` of a service.
pub fn nth(base: u64, index: u64) -> u64 {
    base.wrapping_add(index)
}

/// The seed of member `member` of an ensemble fitted with `seed`: a golden-ratio (Weyl) step
/// per member, so that members' seeds do not meet the seeds of the next fits ([`nth`]).
pub fn member(seed: u64, member: usize) -> u64 {
    seed.wrapping_add((member as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The seeds of one run, all derived from the run's seed, one named stream each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedPlan {
    seed: u64,
}

impl SeedPlan {
    /// The plan of the run with seed `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The plans of `count` runs: seeds `base`, `base + 1`, ...; `None` when the last seed
    /// would pass `u64::MAX`.
    pub fn runs(base: u64, count: usize) -> Option<Vec<Self>> {
        (0..count as u64)
            .map(|offset| base.checked_add(offset).map(Self::new))
            .collect()
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Stream `name` of this run (the streams below are named ones too).
    pub fn stream(&self, name: &str) -> u64 {
        derive(self.seed, name)
    }

    /// The initial labels.
    pub fn initial_labels(&self) -> u64 {
        self.stream("initial-labels")
    }

    /// The device generator before the model is built: its initial weights.
    pub fn weights(&self) -> u64 {
        self.stream("weights")
    }

    /// The trainer: shuffling and training dropout masks (fit `k` uses [`nth`] of it).
    pub fn training(&self) -> u64 {
        self.stream("training")
    }

    /// The MC masks of the pool predictions (step `k` uses [`nth`] of it).
    pub fn mc_masks(&self) -> u64 {
        self.stream("mc-masks")
    }

    /// Random heuristics: random order, BatchBALD's sampled configurations, power sampling.
    pub fn acquisition(&self) -> u64 {
        self.stream("acquisition")
    }

    /// The dataset's own generator (random pool subsets, `max_sample`).
    pub fn pool_subsets(&self) -> u64 {
        self.stream("pool-subsets")
    }

    /// A stream shared by every run (which test images form a fixed subset, how the data is
    /// split): stream `name` of seed 0.
    pub fn shared(name: &str) -> u64 {
        derive(0, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_from_each_other_and_across_seeds() {
        let plan = SeedPlan::new(3);
        let streams = [
            plan.initial_labels(),
            plan.weights(),
            plan.training(),
            plan.mc_masks(),
            plan.acquisition(),
            plan.pool_subsets(),
            plan.stream("initial-order"),
            SeedPlan::shared("test-subset"),
            SeedPlan::shared("data-split"),
        ];
        for (i, a) in streams.iter().enumerate() {
            for b in &streams[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(SeedPlan::new(4).weights(), plan.weights());
        assert_eq!(SeedPlan::new(3), plan);
    }

    #[test]
    fn the_streams_keep_their_values() {
        // The reproductions' recorded curves depend on these: a change here is a change of
        // every result in docs/.
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x5692_161d_100b_05e5);
        assert_eq!(nth(u64::MAX, 2), 1);
        assert_eq!(member(5, 0), 5);
        assert_eq!(member(0, 1), 0x9e37_79b9_7f4a_7c15);
        assert_eq!(SeedPlan::shared("x"), SeedPlan::new(0).stream("x"));
        assert_eq!(SeedPlan::shared("test-subset"), 0x5dec_9927_2fa8_732d);
        assert_eq!(SeedPlan::new(3).weights(), 0x9791_90f9_9b8a_e872);
    }

    #[test]
    fn runs_use_consecutive_seeds_and_refuse_to_overflow() {
        let plans = SeedPlan::runs(7, 3).expect("fits");
        let seeds: Vec<u64> = plans.iter().map(SeedPlan::seed).collect();
        assert_eq!(seeds, [7, 8, 9]);
        assert!(SeedPlan::runs(0, 0).expect("none").is_empty());
        assert_eq!(
            SeedPlan::runs(u64::MAX, 1).expect("fits")[0].seed(),
            u64::MAX
        );
        assert!(SeedPlan::runs(u64::MAX, 2).is_none());
    }
}
