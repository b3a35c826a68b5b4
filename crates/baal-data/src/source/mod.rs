//! Where data comes from, parsed once: a named dataset (Fashion-MNIST, MNIST, CIFAR-10) with
//! its splits, classes and published normalisation, a `.npy` array of images, or a folder of
//! image files. `baal serve`, the `baal` tool and the reproductions all read their data
//! argument as a [`DataSource`].

mod locate;
mod normalization;
pub mod subsets;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use locate::{Locations, cache_root};
pub use normalization::Normalization;

use crate::error::{DataError, Result};
use crate::loaders::{Cifar10, FashionMnist, ImageDataset, Mnist};

/// A dataset this library knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamedDataset {
    /// Fashion-MNIST: 28×28 grey clothing images, 10 classes.
    FashionMnist,
    /// MNIST: 28×28 grey digits, 10 classes.
    Mnist,
    /// CIFAR-10: 32×32 colour images, 10 classes.
    Cifar10,
}

/// A named dataset's training and test splits.
#[derive(Clone, Debug)]
pub struct Splits {
    /// The training split.
    pub train: ImageDataset,
    /// The test split.
    pub test: ImageDataset,
}

impl NamedDataset {
    /// Every named dataset.
    pub const ALL: [Self; 3] = [Self::FashionMnist, Self::Mnist, Self::Cifar10];

    /// The name a command line gives it: `fashion-mnist`, `mnist`, `cifar10`.
    pub fn name(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
        }
    }

    /// Its published name, for messages.
    pub fn title(self) -> &'static str {
        match self {
            Self::FashionMnist => "Fashion-MNIST",
            Self::Mnist => "MNIST",
            Self::Cifar10 => "CIFAR-10",
        }
    }

    /// The class names, by label.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            Self::FashionMnist => &FashionMnist::CLASSES,
            Self::Mnist => &Mnist::CLASSES,
            Self::Cifar10 => &Cifar10::CLASSES,
        }
    }

    /// The published per-channel statistics its images are normalised with.
    pub fn normalization(self) -> Normalization {
        match self {
            Self::FashionMnist => Normalization::fashion_mnist(),
            Self::Mnist => Normalization::mnist(),
            Self::Cifar10 => Normalization::cifar10(),
        }
    }

    /// Loads both splits from the files in `dir`.
    ///
    /// # Errors
    /// A file is missing or corrupt; the error names it.
    pub fn from_dir(self, dir: &Path) -> Result<Splits> {
        Ok(match self {
            Self::FashionMnist => {
                let data = FashionMnist::from_dir(dir)?;
                Splits {
                    train: data.train,
                    test: data.test,
                }
            }
            Self::Mnist => {
                let data = Mnist::from_dir(dir)?;
                Splits {
                    train: data.train,
                    test: data.test,
                }
            }
            Self::Cifar10 => {
                let data = Cifar10::from_dir(dir)?;
                Splits {
                    train: data.train,
                    test: data.test,
                }
            }
        })
    }

    /// Loads both splits: from `data_dir` when given (and from nowhere else), else as
    /// [`Locations::default_for`] says (the system folder, then the download cache, then a
    /// download into it).
    ///
    /// # Errors
    /// Every place failed: the message names each place tried and the remedies.
    pub fn load(self, data_dir: Option<&Path>) -> Result<Splits> {
        self.load_from(data_dir, &Locations::default_for(self))
    }

    /// [`load`](Self::load) with the places to look given.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn load_from(self, data_dir: Option<&Path>, locations: &Locations) -> Result<Splits> {
        locate::load(self, data_dir, locations)
    }
}

impl fmt::Display for NamedDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NamedDataset {
    type Err = DataError;

    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|named| named.name() == text)
            .ok_or_else(|| DataError::UnknownSource(text.to_string()))
    }
}

/// What to label or score: a named dataset (its training split is the pool, its test split
/// measures the model), a `.npy` array of images, or a folder of image files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// A dataset known by name.
    Named(NamedDataset),
    /// A `.npy` array of images, `[N, H, W]` or `[N, C, H, W]`.
    Npy(PathBuf),
    /// A folder of PNG/JPEG files (class sub-folders hold labelled examples).
    Folder(PathBuf),
}

impl DataSource {
    /// The named dataset, if it is one.
    pub fn named(&self) -> Option<NamedDataset> {
        match self {
            Self::Named(named) => Some(*named),
            _ => None,
        }
    }
}

impl FromStr for DataSource {
    type Err = DataError;

    /// A dataset's name, else an existing folder, else a path ending in `.npy`.
    ///
    /// # Errors
    /// Text that is none of these ([`DataError::UnknownSource`]).
    fn from_str(text: &str) -> Result<Self> {
        if let Ok(named) = text.parse() {
            return Ok(Self::Named(named));
        }
        let path = Path::new(text);
        if path.is_dir() {
            Ok(Self::Folder(path.to_path_buf()))
        } else if path.extension().is_some_and(|e| e == "npy") {
            Ok(Self::Npy(path.to_path_buf()))
        } else {
            Err(DataError::UnknownSource(text.to_string()))
        }
    }
}

impl fmt::Display for DataSource {
    /// As it was given: the name, or the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(named) => f.write_str(named.name()),
            Self::Npy(path) | Self::Folder(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_a_name_a_folder_or_a_npy_file_and_prints_as_given() {
        for named in NamedDataset::ALL {
            let source: DataSource = named.name().parse().expect("a name");
            assert_eq!(source, DataSource::Named(named));
            assert_eq!(source.to_string(), named.name());
            assert_eq!(named.classes().len(), 10);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let text = dir.path().display().to_string();
        let source: DataSource = text.parse().expect("a folder");
        assert_eq!(source, DataSource::Folder(dir.path().to_path_buf()));
        assert_eq!(source.to_string(), text);
        let npy: DataSource = "images.npy".parse().expect("a .npy path");
        assert_eq!(npy, DataSource::Npy("images.npy".into()));
        let err = "fashion_mnist"
            .parse::<DataSource>()
            .expect_err("not a source");
        assert!(
            err.to_string()
                .contains("neither fashion-mnist, mnist, cifar10, a .npy file nor a folder"),
            "{err}"
        );
    }

    #[test]
    fn the_named_datasets_carry_their_published_statistics() {
        assert_eq!(NamedDataset::Cifar10.normalization().mean.len(), 3);
        assert_eq!(
            NamedDataset::FashionMnist.normalization(),
            Normalization::fashion_mnist()
        );
    }
}
