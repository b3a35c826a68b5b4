//! The data of a reproduction: finding (or downloading) the files, the pool, the validation
//! split held out of it, the test subset, and Repeated-Fashion-MNIST.

use std::path::{Path, PathBuf};

use baal::burn;
use baal::data::{Cifar10, DatasetIndex, FashionMnist, ImageDataset, Mnist};
use burn::data::dataset::Dataset;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::Error;
use crate::profile::{DatasetName, Imbalance, Profile};
use crate::seeds::SeedPlan;
use baal_zoo::images::{Normalization, NormalizedImages};

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
}

/// Where a dataset is looked for, in order: the Debian package's folder, then a download
/// cache filled from `url` (when set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSources {
    /// The Debian (or any system) folder of the files.
    pub system_dir: PathBuf,
    /// The folder downloads go to and are reused from.
    pub cache_dir: PathBuf,
    /// The address of the files (`None`: no download).
    pub url: Option<String>,
}

impl DataSources {
    /// Fashion-MNIST's: `/usr/share/datasets/fashion-mnist`, then
    /// `$BAAL_CACHE_DIR` (or `$XDG_CACHE_HOME/baal`, or `~/.cache/baal`)`/fashion-mnist`,
    /// filled from the official address when the `download` feature is on (the default).
    pub fn fashion_mnist() -> Self {
        Self {
            system_dir: PathBuf::from(FashionMnist::DEFAULT_DIR),
            cache_dir: cache_root().join("fashion-mnist"),
            #[cfg(feature = "download")]
            url: Some(baal::data::loaders::FASHION_MNIST_URL.to_string()),
            #[cfg(not(feature = "download"))]
            url: None,
        }
    }
}

/// The cache folder of downloaded datasets.
fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("BAAL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("baal");
    }
    std::env::var_os("HOME")
        .map_or_else(
            || PathBuf::from(".cache"),
            |home| PathBuf::from(home).join(".cache"),
        )
        .join("baal")
}

/// Loads Fashion-MNIST from `data_dir` when given; else from the system folder, else from
/// the download cache (downloading what is missing, checksummed).
///
/// # Errors
/// Every source failed: the message names each place tried and both remedies (install the
/// Debian package, or let the tool download, or pass `--data-dir`).
pub fn locate_fashion_mnist(
    data_dir: Option<&Path>,
    sources: &DataSources,
) -> Result<FashionMnist, Error> {
    let remedies = format!(
        "  Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, into {}), \
         or let the reproduction download it (build with the `download` feature, on by default, \
         and allow access to {}), or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
         t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in a folder and pass --data-dir <folder>",
        sources.system_dir.display(),
        sources
            .url
            .as_deref()
            .unwrap_or("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    );
    if let Some(dir) = data_dir {
        return FashionMnist::from_dir(dir).map_err(|e| {
            format!(
                "cannot load Fashion-MNIST from {}: {e}\n{remedies}",
                dir.display()
            )
            .into()
        });
    }
    let system_error = match FashionMnist::from_dir(&sources.system_dir) {
        Ok(data) => return Ok(data),
        Err(e) => e,
    };
    let cached = FashionMnist::from_dir(&sources.cache_dir);
    let cache_error = match (cached, &sources.url) {
        (Ok(data), _) => return Ok(data),
        (Err(e), None) => format!("{e} (downloads are off: built without the `download` feature)"),
        #[cfg(feature = "download")]
        (Err(_), Some(url)) => {
            eprintln!(
                "Fashion-MNIST is not in {}: downloading it from {url} into {}",
                sources.system_dir.display(),
                sources.cache_dir.display()
            );
            match FashionMnist::download_from(url, &sources.cache_dir) {
                Ok(data) => return Ok(data),
                Err(e) => format!("the download failed: {e}"),
            }
        }
        #[cfg(not(feature = "download"))]
        (Err(e), Some(_)) => e.to_string(),
    };
    Err(format!(
        "cannot find Fashion-MNIST: {} ({system_error}); {} ({cache_error})\n{remedies}",
        sources.system_dir.display(),
        sources.cache_dir.display(),
    )
    .into())
}

fn load_mnist(dir: &Path) -> Result<Mnist, Error> {
    let hint = |e: &dyn std::fmt::Display| {
        format!(
            "cannot load MNIST from {}: {e}\n  Install it with `apt-get install dataset-mnist` (Debian/Ubuntu), \
             or put the four IDX files (train-images-idx3-ubyte.gz, ...) from https://ossci-datasets.s3.amazonaws.com/mnist/ \
             into a folder and pass --data-dir <folder>, or build with `--features download`",
            dir.display()
        )
    };
    match Mnist::from_dir(dir) {
        Ok(data) => Ok(data),
        #[cfg(feature = "download")]
        Err(_) => Mnist::download(dir).map_err(|e| hint(&e).into()),
        #[cfg(not(feature = "download"))]
        Err(e) => Err(hint(&e).into()),
    }
}

fn load_cifar10(dir: &Path) -> Result<Cifar10, Error> {
    let hint = |e: &dyn std::fmt::Display| {
        format!(
            "cannot load CIFAR-10 from {}: {e}\n  Download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, \
             unpack it (tar xzf) and pass --data-dir <folder holding cifar-10-batches-bin>, or build with \
             `--features download` to fetch it into --data-dir (default data/cifar10)",
            dir.display()
        )
    };
    match Cifar10::from_dir(dir) {
        Ok(data) => Ok(data),
        #[cfg(feature = "download")]
        Err(_) => Cifar10::download(dir).map_err(|e| hint(&e).into()),
        #[cfg(not(feature = "download"))]
        Err(e) => Err(hint(&e).into()),
    }
}

/// A fixed random choice of `count` of `0..len` (all of them, in order, when `count` is 0
/// or at least `len`), sorted.
fn fixed_subset(len: usize, count: usize, seed: u64) -> Vec<usize> {
    if count == 0 || count >= len {
        return (0..len).collect();
    }
    let mut positions = shuffled(len, seed);
    positions.truncate(count);
    positions.sort_unstable();
    positions
}

/// Loads `dataset` (from `data_dir`, or found as [`locate_fashion_mnist`] says), holds the
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
    let (train, test, normalization): (ImageDataset, ImageDataset, Normalization) = match dataset {
        DatasetName::FashionMnist
        | DatasetName::FashionMnistImbalanced
        | DatasetName::RepeatedFashionMnist => {
            let data = locate_fashion_mnist(data_dir, &DataSources::fashion_mnist())?;
            (data.train, data.test, Normalization::fashion_mnist())
        }
        DatasetName::Mnist => {
            let dir = data_dir.map_or_else(|| PathBuf::from(Mnist::DEFAULT_DIR), Path::to_path_buf);
            let data = load_mnist(&dir)?;
            (data.train, data.test, Normalization::mnist())
        }
        DatasetName::Cifar10 => {
            let dir = data_dir.map_or_else(|| PathBuf::from("data/cifar10"), Path::to_path_buf);
            let data = load_cifar10(&dir)?;
            (data.train, data.test, Normalization::cifar10())
        }
    };
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
    if profile.validation_size + pool_size > train.len() {
        return Err(format!(
            "{} validation and {pool_size} pool images asked for, but the training set has {}",
            profile.validation_size,
            train.len()
        )
        .into());
    }
    // One shuffle of the training set: validation images first, then the pool's.
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(SeedPlan::data_split()));
    let (validation, rest) = order.split_at(profile.validation_size);
    let mut validation = validation.to_vec();
    validation.sort_unstable();
    let mut pool: Vec<usize> = match profile.pool_size {
        Some(size) => rest[..size].to_vec(),
        None => rest.to_vec(),
    };
    if let Some(imbalance) = &profile.imbalance {
        pool = with_rare_classes(&pool, train.labels(), imbalance)?;
    }
    pool.sort_unstable();
    let mut pool = NormalizedImages::select(&train, &pool, &normalization)?;
    if dataset == DatasetName::RepeatedFashionMnist {
        pool = pool.repeated(REPEATED_COPIES, REPEATED_NOISE, SeedPlan::repeated_noise());
    }
    // An imbalanced pool is measured on a test set where every class counts the same.
    let test_positions = if profile.imbalance.is_some() {
        stratified_subset(test.labels(), profile.test_subset, SeedPlan::test_subset())?
    } else {
        fixed_subset(test.len(), profile.test_subset, SeedPlan::test_subset())
    };
    Ok(LoadedData {
        pool,
        validation: NormalizedImages::select(&train, &validation, &normalization)?,
        test: NormalizedImages::select(&test, &test_positions, &normalization)?,
    })
}

/// The number of classes of `labels` (the largest label plus one).
fn class_count(labels: &[u8]) -> usize {
    labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0)
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
    let mut counts = vec![0usize; classes];
    for &position in positions {
        counts[usize::from(labels[position])] += 1;
    }
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
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(SeedPlan::rare_items()));
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

/// `count` positions of `labels` with every class the same number of times (the remainder to
/// the first classes), drawn with `seed`, sorted; every position when `count` is 0.
///
/// # Errors
/// A class has fewer items than its share.
pub fn stratified_subset(labels: &[u8], count: usize, seed: u64) -> Result<Vec<usize>, Error> {
    if count == 0 {
        return Ok((0..labels.len()).collect());
    }
    let quota = quotas(class_count(labels), count);
    let (picked, _) = pick_per_class(labels, &quota, shuffled(labels.len(), seed))
        .map_err(|e| format!("a stratified test subset of {count}: {e}"))?;
    let mut positions: Vec<usize> = picked.iter().map(|i| i.get()).collect();
    positions.sort_unstable();
    Ok(positions)
}

/// `n` split over `classes`: `n / classes` each, the remainder to the first classes.
fn quotas(classes: usize, n: usize) -> Vec<usize> {
    (0..classes)
        .map(|c| n / classes.max(1) + usize::from(c < n % classes.max(1)))
        .collect()
}

/// `quota[c]` items of each class `c`, the first ones of `order` (a shuffle of the
/// positions), in that order; and the positions of `order` left over, in order.
///
/// # Errors
/// A class has fewer items than its quota.
fn pick_per_class(
    labels: &[u8],
    quota: &[usize],
    order: Vec<usize>,
) -> Result<(Vec<DatasetIndex>, Vec<usize>), Error> {
    let mut left = quota.to_vec();
    let mut picked = Vec::with_capacity(quota.iter().sum());
    let mut rest = Vec::with_capacity(order.len());
    for i in order {
        let class = usize::from(labels[i]);
        if left.get(class).is_some_and(|&n| n > 0) {
            left[class] -= 1;
            picked.push(DatasetIndex::new(i));
        } else {
            rest.push(i);
        }
    }
    if let Some(class) = left.iter().position(|&n| n > 0) {
        return Err(format!(
            "class {class} has {} items, {} wanted",
            quota[class] - left[class],
            quota[class]
        )
        .into());
    }
    Ok((picked, rest))
}

/// The positions `0..n` shuffled with `seed`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// The initial labels of a run: with `seed_per_class`, that many of every class plus
/// `random` more from the rest of the pool (as a user who brings a couple of examples of each
/// class); else `random` balanced over the classes ([`balanced_initial`]). The same for every
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
        return Ok(balanced_initial(labels, random, seed));
    };
    let quota = vec![per_class; class_count(labels)];
    let (mut picked, rest) = pick_per_class(labels, &quota, shuffled(labels.len(), seed))
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

/// `n` dataset indices balanced over the classes (`n / classes` each, the remainder to the
/// first classes), drawn with `seed`: the same initial set for every heuristic of a seed.
pub fn balanced_initial(labels: &[u8], n: usize, seed: u64) -> Vec<DatasetIndex> {
    let mut quota = quotas(class_count(labels), n);
    let mut picked = Vec::with_capacity(n);
    for i in shuffled(labels.len(), seed) {
        let class = usize::from(labels[i]);
        if quota[class] > 0 {
            quota[class] -= 1;
            picked.push(DatasetIndex::new(i));
            if picked.len() == n {
                break;
            }
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_initial_labels_cover_every_class() {
        let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
        let picked = balanced_initial(&labels, 25, 3);
        assert_eq!(picked.len(), 25);
        let mut counts = [0; 10];
        for index in &picked {
            counts[usize::from(labels[index.get()])] += 1;
        }
        assert_eq!(counts, [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
        assert_eq!(balanced_initial(&labels, 25, 3), picked);
        assert_ne!(balanced_initial(&labels, 25, 4), picked);
    }

    fn class_counts(positions: &[usize], labels: &[u8]) -> Vec<usize> {
        let mut counts = vec![0; class_count(labels)];
        for &p in positions {
            counts[usize::from(labels[p])] += 1;
        }
        counts
    }

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
    fn stratified_subsets_count_every_class_the_same() {
        // Class 0 four times as frequent as the others.
        let labels: Vec<u8> = (0..700)
            .map(|i| if i < 400 { 0 } else { (1 + i % 3) as u8 })
            .collect();
        let subset = stratified_subset(&labels, 40, 9).expect("enough");
        assert_eq!(class_counts(&subset, &labels), [10, 10, 10, 10]);
        assert!(subset.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(stratified_subset(&labels, 0, 9).expect("all").len(), 700);
        assert!(
            stratified_subset(&labels, 600, 9).is_err(),
            "classes 1-3 hold 100 each"
        );
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
            balanced_initial(&labels, 25, 3)
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
