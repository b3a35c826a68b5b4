//! Finding a named dataset's files: a folder given by the user, else the system's (Debian's
//! packages), else a download cache filled from the official address (feature `download`).

use std::path::{Path, PathBuf};

use super::{NamedDataset, Splits};
use crate::error::{DataError, Result};
use crate::loaders::{CIFAR10_URL, FASHION_MNIST_URL, FashionMnist, MNIST_URL, Mnist};

/// Where a named dataset is looked for when no folder is given, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locations {
    /// The system's folder of the files (Debian's packages), if there is one.
    pub system_dir: Option<PathBuf>,
    /// The folder downloads go to and are reused from.
    pub cache_dir: PathBuf,
    /// The address of the files (`None`: no download).
    pub url: Option<String>,
}

impl Locations {
    /// The places of `dataset`: Debian's folder for Fashion-MNIST and MNIST (none for
    /// CIFAR-10), then [`cache_root`]`/<name>`, filled from the official address when this
    /// crate is built with the `download` feature.
    pub fn default_for(dataset: NamedDataset) -> Self {
        let system_dir = match dataset {
            NamedDataset::FashionMnist => Some(FashionMnist::DEFAULT_DIR),
            NamedDataset::Mnist => Some(Mnist::DEFAULT_DIR),
            NamedDataset::Cifar10 => None,
        };
        Self {
            system_dir: system_dir.map(PathBuf::from),
            cache_dir: cache_root().join(dataset.name()),
            url: cfg!(feature = "download").then(|| official_address(dataset).to_string()),
        }
    }
}

/// The official address of `dataset`'s files.
fn official_address(dataset: NamedDataset) -> &'static str {
    match dataset {
        NamedDataset::FashionMnist => FASHION_MNIST_URL,
        NamedDataset::Mnist => MNIST_URL,
        NamedDataset::Cifar10 => CIFAR10_URL,
    }
}

/// The cache folder of downloaded datasets: `$BAAL_CACHE_DIR`, else `$XDG_CACHE_HOME/baal`,
/// else `~/.cache/baal`.
pub fn cache_root() -> PathBuf {
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

/// What a user can do when the files are not found.
fn remedies(dataset: NamedDataset, locations: &Locations) -> String {
    let url = locations
        .url
        .as_deref()
        .unwrap_or(official_address(dataset));
    let download = format!(
        "or let it be downloaded (build with the `download` feature, on in the reproductions, \
         and allow access to {url})"
    );
    match dataset {
        NamedDataset::FashionMnist | NamedDataset::Mnist => {
            let package = match dataset {
                NamedDataset::FashionMnist => "dataset-fashion-mnist",
                _ => "dataset-mnist",
            };
            let into = locations
                .system_dir
                .as_ref()
                .map(|dir| format!(", into {}", dir.display()))
                .unwrap_or_default();
            format!(
                "  Install it with `apt-get install {package}` (Debian/Ubuntu{into}), {download}, \
                 or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                 t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in a folder and pass \
                 --data-dir <folder>"
            )
        }
        NamedDataset::Cifar10 => format!(
            "  Download {url}, unpack it (tar xzf) and pass --data-dir <folder holding \
             cifar-10-batches-bin>, {download}"
        ),
    }
}

/// [`NamedDataset::load_from`].
pub(super) fn load(
    dataset: NamedDataset,
    data_dir: Option<&Path>,
    locations: &Locations,
) -> Result<Splits> {
    let title = dataset.title();
    if let Some(dir) = data_dir {
        return dataset.from_dir(dir).map_err(|e| {
            DataError::Unavailable(format!(
                "cannot load {title} from {}: {e}\n{}",
                dir.display(),
                remedies(dataset, locations)
            ))
        });
    }
    let mut tried = Vec::new();
    if let Some(system_dir) = &locations.system_dir {
        match dataset.from_dir(system_dir) {
            Ok(splits) => return Ok(splits),
            Err(e) => tried.push(format!("{} ({e})", system_dir.display())),
        }
    }
    let cache_dir = &locations.cache_dir;
    let cache_error = match (dataset.from_dir(cache_dir), &locations.url) {
        (Ok(splits), _) => return Ok(splits),
        (Err(e), None) => format!("{e} (downloads are off: built without the `download` feature)"),
        (Err(_), Some(url)) => match download(dataset, url, cache_dir) {
            Ok(splits) => return Ok(splits),
            Err(e) => format!("the download failed: {e}"),
        },
    };
    tried.push(format!("{} ({cache_error})", cache_dir.display()));
    Err(DataError::Unavailable(format!(
        "cannot find {title}: {}\n{}",
        tried.join("; "),
        remedies(dataset, locations)
    )))
}

#[cfg(feature = "download")]
fn download(dataset: NamedDataset, url: &str, dir: &Path) -> Result<Splits> {
    use crate::loaders::Cifar10;
    // A download takes a while and reaches the network: the user is told where from and to.
    eprintln!(
        "{} is not installed: downloading it from {url} into {}",
        dataset.title(),
        dir.display()
    );
    Ok(match dataset {
        NamedDataset::FashionMnist => {
            let data = FashionMnist::download_from(url, dir)?;
            Splits {
                train: data.train,
                test: data.test,
            }
        }
        NamedDataset::Mnist => {
            let data = Mnist::download_from(url, dir)?;
            Splits {
                train: data.train,
                test: data.test,
            }
        }
        NamedDataset::Cifar10 => {
            let data = Cifar10::download_from(url, dir)?;
            Splits {
                train: data.train,
                test: data.test,
            }
        }
    })
}

#[cfg(not(feature = "download"))]
fn download(dataset: NamedDataset, url: &str, _: &Path) -> Result<Splits> {
    Err(DataError::Download {
        url: url.to_string(),
        reason: format!(
            "{} cannot be downloaded: built without the `download` feature",
            dataset.title()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nowhere(cache: &Path) -> Locations {
        Locations {
            system_dir: Some(PathBuf::from("/nonexistent/system")),
            cache_dir: cache.to_path_buf(),
            url: None,
        }
    }

    #[test]
    fn without_data_the_message_names_every_place_tried_and_the_remedies() {
        let cache = tempfile::tempdir().expect("temp dir");
        for dataset in NamedDataset::ALL {
            let err = dataset
                .load_from(None, &nowhere(cache.path()))
                .expect_err("no data");
            let message = err.to_string();
            assert!(message.contains(dataset.title()), "{message}");
            assert!(message.contains("/nonexistent/system"), "{message}");
            assert!(
                message.contains(&cache.path().display().to_string()),
                "{message}"
            );
            assert!(message.contains("--data-dir"), "{message}");
            // A folder given is used alone, and named when it fails.
            let err = dataset
                .load_from(
                    Some(Path::new("/nonexistent/given")),
                    &nowhere(cache.path()),
                )
                .expect_err("no data there");
            assert!(err.to_string().contains("/nonexistent/given"), "{err}");
        }
    }
}
