//! The seeds of a reproduction: the library's [`SeedPlan`] for each run, and the streams every
//! run shares (so that every heuristic and seed sees the same pool, validation and test items).

pub use baal::bayesian::SeedPlan;

/// The plans of a reproduction's `count` runs: seeds `base`, `base + 1`, ... (one a seed;
/// every heuristic of a seed shares its plan).
///
/// # Errors
/// The last seed would pass `u64::MAX`.
pub fn run_plans(base: u64, count: usize) -> Result<Vec<SeedPlan>, crate::Error> {
    SeedPlan::runs(base, count).ok_or_else(|| {
        format!(
            "--seed {base} with {count} seeds passes the largest seed, {}",
            u64::MAX
        )
        .into()
    })
}

/// Which test images form the fixed test subset (one for every run).
pub fn test_subset() -> u64 {
    SeedPlan::shared("test-subset")
}

/// Which training images are held out for validation and which form the pool (one for
/// every run).
pub fn data_split() -> u64 {
    SeedPlan::shared("data-split")
}

/// Which items of a rare class an imbalanced pool keeps (one for every run).
pub fn rare_items() -> u64 {
    SeedPlan::shared("rare-items")
}

/// The noise of Repeated-Fashion-MNIST's copies (one for every run).
pub fn repeated_noise() -> u64 {
    SeedPlan::shared("repeated-noise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_streams_differ_and_plans_refuse_to_overflow() {
        let shared = [test_subset(), data_split(), rare_items(), repeated_noise()];
        for (i, a) in shared.iter().enumerate() {
            for b in &shared[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(run_plans(7, 2).expect("fits")[1].seed(), 8);
        let err = run_plans(u64::MAX, 2).expect_err("overflows");
        assert!(err.to_string().contains("--seed"), "{err}");
    }
}
