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
use crate::profile::{DatasetName, Profile};
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
    let mut positions: Vec<usize> = (0..len).collect();
    if count > 0 && count < len {
        positions.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        positions.truncate(count);
        positions.sort_unstable();
    }
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
        DatasetName::FashionMnist | DatasetName::RepeatedFashionMnist => {
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
    pool.sort_unstable();
    let mut pool = NormalizedImages::select(&train, &pool, &normalization)?;
    if dataset == DatasetName::RepeatedFashionMnist {
        pool = pool.repeated(REPEATED_COPIES, REPEATED_NOISE, SeedPlan::repeated_noise());
    }
    let test_positions = fixed_subset(test.len(), profile.test_subset, SeedPlan::test_subset());
    Ok(LoadedData {
        pool,
        validation: NormalizedImages::select(&train, &validation, &normalization)?,
        test: NormalizedImages::select(&test, &test_positions, &normalization)?,
    })
}

/// `n` dataset indices balanced over the classes (`n / classes` each, the remainder to the
/// first classes), drawn with `seed`: the same initial set for every heuristic of a seed.
pub fn balanced_initial(labels: &[u8], n: usize, seed: u64) -> Vec<DatasetIndex> {
    let classes = labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut quota: Vec<usize> = (0..classes)
        .map(|c| n / classes.max(1) + usize::from(c < n % classes.max(1)))
        .collect();
    let mut picked = Vec::with_capacity(n);
    for i in order {
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
