//! The data of a reproduction: finding (or downloading) the files, the pool, the validation
//! split held out of it, the test subset, and Repeated-Fashion-MNIST.

use std::path::Path;

use baal::burn::data::dataset::Dataset;
use baal::data::source::subsets::{class_count, class_counts, pick_per_class, shuffled};
use baal::data::{DatasetIndex, Splits, label_balanced, random_subset, stratified_subset};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::Error;
use crate::profile::{DatasetName, Imbalance, Profile};
use crate::seeds;
use baal_zoo::images::NormalizedImages;

/// Copies of every pool image in Repeated-Fashion-MNIST (the BatchBALD paper's three).
pub const REPEATED_COPIES: usize = 3;
/// Standard deviation of each copy's Gaussian noise, on normalised pixels (the paper's 0.1).
pub const REPEATED_NOISE: f32 = 0.1;

/// The loaded data of a reproduction, normalised once.
pub struct LoadedData {
    /// The pool the runs label from.
    pub pool: NormalizedImages,
    /// Labelled images held out of the pool for early stopping (empty when the profile holds
    /// none out).
    pub validation: NormalizedImages,
    /// Test images.
    pub test: NormalizedImages,
    /// Unlabelled training images held out of the pool as the stopping set (empty when the
    /// profile holds none out).
    pub stopping: NormalizedImages,
}

/// The random generator of a fixed seed.
fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A fixed random choice of `count` of `0..len` (all of them, in order, when `count` is 0
/// or at least `len`), sorted.
fn fixed_subset(len: usize, count: usize, seed: u64) -> Vec<usize> {
    if count == 0 {
        return (0..len).collect();
    }
    random_subset(len, count, &mut rng(seed))
}

/// Loads `dataset` (from `data_dir`, or found as [`NamedDataset::load`](baal::data::NamedDataset::load) says), holds the
/// profile's validation images out of the training set, makes the pool (a fixed subset of
/// `pool_size` when set; repeated for Repeated-Fashion-MNIST) and keeps a fixed subset of
/// `test_subset` test images. Every run sees the same split.
///
/// # Errors
/// The files are missing or corrupt (the message says where to put them or how to get
/// them), or the profile asks for more images than there are.
pub fn load_data(
    dataset: DatasetName,
    profile: &Profile,
    data_dir: Option<&Path>,
) -> Result<LoadedData, Error> {
    let named = dataset.source();
    let Splits { train, test } = named.load(data_dir)?;
    let normalization = named.normalization();
    if profile.test_subset > test.len() {
        return Err(format!(
            "a test subset of {} images asked for, but the test set has {}: \
             use at most that, or 0 for all of it",
            profile.test_subset,
            test.len()
        )
        .into());
    }
    let pool_size = profile.pool_size.unwrap_or(0);
    let stopping_size = profile.stopping_set.unwrap_or(0);
    if profile.validation_size + pool_size + stopping_size > train.len() {
        return Err(format!(
            "{} validation, {pool_size} pool and {stopping_size} stopping-set images asked \
             for, but the training set has {}",
            profile.validation_size,
            train.len()
        )
        .into());
    }
    // One shuffle of the training set: validation images first, then the pool's.
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut rng(seeds::data_split()));
    let (validation, rest) = order.split_at(profile.validation_size);
    let mut validation = validation.to_vec();
    validation.sort_unstable();
    let mut pool: Vec<usize> = match profile.pool_size {
        Some(size) => rest[..size].to_vec(),
        None => rest.to_vec(),
    };
    // The stopping set: the images after the pool's in the same shuffle (never labelled).
    let mut stopping = match profile.pool_size {
        Some(size) => rest[size..size + stopping_size].to_vec(),
        None => Vec::new(),
    };
    stopping.sort_unstable();
    if let Some(imbalance) = &profile.imbalance {
        pool = with_rare_classes(&pool, train.labels(), imbalance)?;
    }
    pool.sort_unstable();
    let mut pool = NormalizedImages::select(&train, &pool, &normalization)?;
    if dataset == DatasetName::RepeatedFashionMnist {
        pool = pool.repeated(REPEATED_COPIES, REPEATED_NOISE, seeds::repeated_noise());
    }
    // An imbalanced pool is measured on a test set where every class counts the same.
    let test_positions = if profile.imbalance.is_some() {
        stratified_subset(
            test.labels(),
            profile.test_subset,
            &mut rng(seeds::test_subset()),
        )
        .map_err(|e| format!("a stratified test subset of {}: {e}", profile.test_subset))?
    } else {
        fixed_subset(test.len(), profile.test_subset, seeds::test_subset())
    };
    Ok(LoadedData {
        pool,
        validation: NormalizedImages::select(&train, &validation, &normalization)?,
        test: NormalizedImages::select(&test, &test_positions, &normalization)?,
        stopping: NormalizedImages::select(&train, &stopping, &normalization)?,
    })
}

/// The pool `positions` (into a training set labelled `labels`) with each rare class cut to
/// 1 / ratio of a common class's mean count (rounded, at least 1): of a rare class, the items
/// that come first in one fixed shuffle (the same pool for every run).
///
/// # Errors
/// A rare class that is not a class of the data, or no common class left.
pub fn with_rare_classes(
    positions: &[usize],
    labels: &[u8],
    imbalance: &Imbalance,
) -> Result<Vec<usize>, Error> {
    let classes = class_count(labels);
    if let Some(&bad) = imbalance.rare_classes.iter().find(|&&c| c >= classes) {
        return Err(format!(
            "--rare-classes names class {bad}, but the data has classes 0 to {}",
            classes.saturating_sub(1)
        )
        .into());
    }
    let counts = class_counts(positions, labels);
    let common: Vec<usize> = (0..classes)
        .filter(|&c| !imbalance.is_rare(c) && counts[c] > 0)
        .map(|c| counts[c])
        .collect();
    if common.is_empty() {
        return Err("--rare-classes leaves no common class in the pool".into());
    }
    let mean_common = common.iter().sum::<usize>() as f64 / common.len() as f64;
    let keep = ((mean_common / imbalance.ratio).round() as usize).max(1);
    let mut order = positions.to_vec();
    order.shuffle(&mut rng(seeds::rare_items()));
    let mut kept = vec![0usize; classes];
    Ok(order
        .into_iter()
        .filter(|&position| {
            let class = usize::from(labels[position]);
            if !imbalance.is_rare(class) {
                return true;
            }
            kept[class] += 1;
            kept[class] <= keep
        })
        .collect())
}

/// The initial labels of a run: with `seed_per_class`, that many of every class plus
/// `random` more from the rest of the pool (as a user who brings a couple of examples of each
/// class); else `random` balanced over the classes ([`label_balanced`]). The same for every
/// heuristic of a seed.
///
/// # Errors
/// The pool has fewer items of a class than `seed_per_class`, or fewer items than asked for.
pub fn initial_labels(
    labels: &[u8],
    seed_per_class: Option<usize>,
    random: usize,
    seed: u64,
) -> Result<Vec<DatasetIndex>, Error> {
    let Some(per_class) = seed_per_class else {
        return Ok(label_balanced(labels, random, &mut rng(seed)));
    };
    let quota = vec![per_class; class_count(labels)];
    let (mut picked, rest) = pick_per_class(labels, &quota, shuffled(labels.len(), &mut rng(seed)))
        .map_err(|e| format!("--seed-per-class {per_class}: in the pool, {e}"))?;
    if rest.len() < random {
        return Err(format!(
            "{random} random initial labels asked for, but the pool has {} items beside the \
             per-class examples",
            rest.len()
        )
        .into());
    }
    picked.extend(rest[..random].iter().map(|&i| DatasetIndex::new(i)));
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_classes_keep_one_over_the_ratio_of_a_common_class() {
        // 10 classes of 100 items each.
        let labels: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
        let all: Vec<usize> = (0..1000).collect();
        let imbalance = Imbalance {
            rare_classes: vec![2, 5, 8],
            ratio: 50.0,
        };
        let pool = with_rare_classes(&all, &labels, &imbalance).expect("valid");
        assert_eq!(
            class_counts(&pool, &labels),
            [100, 100, 2, 100, 100, 2, 100, 100, 2, 100]
        );
        // The same items every time; a very large ratio keeps one of each rare class.
        assert_eq!(
            with_rare_classes(&all, &labels, &imbalance).expect("valid"),
            pool
        );
        let extreme = Imbalance {
            rare_classes: vec![0],
            ratio: 1e6,
        };
        let pool = with_rare_classes(&all, &labels, &extreme).expect("valid");
        assert_eq!(class_counts(&pool, &labels)[0], 1);
        let outside = Imbalance {
            rare_classes: vec![10],
            ratio: 2.0,
        };
        let err = with_rare_classes(&all, &labels, &outside).expect_err("no class 10");
        assert!(err.to_string().contains("class 10"), "{err}");
        let every = Imbalance {
            rare_classes: (0..10).collect(),
            ratio: 2.0,
        };
        assert!(with_rare_classes(&all, &labels, &every).is_err());
    }

    #[test]
    fn initial_labels_bring_examples_of_every_class_then_random_ones() {
        let labels: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
        let picked = initial_labels(&labels, Some(2), 30, 4).expect("enough");
        assert_eq!(picked.len(), 50);
        let positions: Vec<usize> = picked.iter().map(|i| i.get()).collect();
        let counts = class_counts(&positions[..20], &labels);
        assert_eq!(counts, [2; 10]);
        let mut unique = positions.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 50, "no item twice");
        assert_eq!(
            initial_labels(&labels, Some(2), 30, 4).expect("same"),
            picked
        );
        // Without examples per class: the balanced initial set.
        assert_eq!(
            initial_labels(&labels, None, 25, 3).expect("balanced"),
            label_balanced(&labels, 25, &mut rng(3))
        );
        let err = initial_labels(&labels, Some(200), 0, 4).expect_err("100 per class");
        assert!(err.to_string().contains("--seed-per-class 200"), "{err}");
        assert!(initial_labels(&labels, Some(2), 981, 4).is_err());
    }

    #[test]
    fn fixed_subsets_are_sorted_and_stable() {
        let subset = fixed_subset(100, 10, 5);
        assert_eq!(subset.len(), 10);
        assert!(subset.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(fixed_subset(100, 10, 5), subset);
        assert_eq!(fixed_subset(5, 0, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(fixed_subset(5, 9, 5), vec![0, 1, 2, 3, 4]);
    }
}
