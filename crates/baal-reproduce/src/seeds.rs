//! One named seed plan: every random stream of a reproduction derives from it, so that no call
//! site invents its own arithmetic.

/// The seeds of one run, all derived from the run's seed by one mixing function with a
/// named stream each; and the fixed seeds of the data, shared by every run so that every
/// heuristic and seed sees the same pool, validation and test items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedPlan {
    seed: u64,
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of stream `stream` of `seed`.
fn derive(seed: u64, stream: &str) -> u64 {
    stream
        .bytes()
        .fold(mix(seed ^ 0x5eed_9a1a_b0a1_0001), |h, b| {
            mix(h ^ u64::from(b))
        })
}

impl SeedPlan {
    /// The plan of the run with seed `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The plans of a reproduction's `count` runs: seeds `base`, `base + 1`, ... (one a
    /// seed; every heuristic of a seed shares its plan).
    ///
    /// # Errors
    /// The last seed would pass `u64::MAX`.
    pub fn runs(base: u64, count: usize) -> Result<Vec<Self>, crate::Error> {
        (0..count as u64)
            .map(|offset| {
                base.checked_add(offset).map(Self::new).ok_or_else(|| {
                    format!(
                        "--seed {base} with {count} seeds passes the largest seed, {}",
                        u64::MAX
                    )
                    .into()
                })
            })
            .collect()
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The balanced initial labels (the same for every heuristic of a seed).
    pub fn initial_labels(&self) -> u64 {
        derive(self.seed, "initial-labels")
    }

    /// The device generator before the model is built: its initial weights (the same for
    /// every heuristic of a seed).
    pub fn weights(&self) -> u64 {
        derive(self.seed, "weights")
    }

    /// The trainer: shuffling and training dropout masks (fit `k` uses this plus `k`).
    pub fn training(&self) -> u64 {
        derive(self.seed, "training")
    }

    /// The MC masks of the pool predictions (step `k` uses this plus `k`).
    pub fn mc_masks(&self) -> u64 {
        derive(self.seed, "mc-masks")
    }

    /// Random heuristics: random order, BatchBALD's sampled configurations, power sampling
    /// (step `k` uses this plus `k`).
    pub fn acquisition(&self) -> u64 {
        derive(self.seed, "acquisition")
    }

    /// The dataset's own generator (random pool subsets, `max_sample`).
    pub fn pool_subsets(&self) -> u64 {
        derive(self.seed, "pool-subsets")
    }

    /// Which test images form the fixed test subset (one for every run).
    pub fn test_subset() -> u64 {
        derive(0, "test-subset")
    }

    /// Which training images are held out for validation and which form the pool (one for
    /// every run).
    pub fn data_split() -> u64 {
        derive(0, "data-split")
    }

    /// Which items of a rare class an imbalanced pool keeps (one for every run).
    pub fn rare_items() -> u64 {
        derive(0, "rare-items")
    }

    /// The noise of Repeated-Fashion-MNIST's copies (one for every run).
    pub fn repeated_noise() -> u64 {
        derive(0, "repeated-noise")
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
            SeedPlan::test_subset(),
            SeedPlan::data_split(),
            SeedPlan::repeated_noise(),
            SeedPlan::rare_items(),
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
    fn runs_use_consecutive_seeds_and_refuse_to_overflow() {
        let plans = SeedPlan::runs(7, 3).expect("fits");
        let seeds: Vec<u64> = plans.iter().map(SeedPlan::seed).collect();
        assert_eq!(seeds, [7, 8, 9]);
        assert!(SeedPlan::runs(0, 0).expect("none").is_empty());
        assert_eq!(
            SeedPlan::runs(u64::MAX, 1).expect("fits")[0].seed(),
            u64::MAX
        );
        let err = SeedPlan::runs(u64::MAX, 2).expect_err("overflows");
        assert!(err.to_string().contains("--seed"), "{err}");
    }
}
