//! `baal export`: the labels of a state folder, read without a server (a server may be
//! running on the folder: nothing in it is taken or changed), written as JSON, CSV or class
//! folders of images. The journal gives each label's annotator, time and source; labels taken
//! back are not exported.

mod output;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use baal_data::Checkpoint;
use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::cli::{ServeArgs, load_items};
use crate::error::ServeError;
use crate::items::Items;
use crate::label_file::{LabelRecord, ServedPool, rfc3339, source_name, to_csv};
use crate::store::{LabelInfo, LabelStore};
use baal_data::DatasetIndex;

/// What [`export_labels`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A JSON list of [`LabelRecord`]s.
    Json,
    /// CSV: a header line, then a [`LabelRecord`] per line (RFC 4180 quoting).
    Csv,
    /// `OUTPUT/<class>/<image>` per label (a folder pool's file copied, a PNG named after the
    /// zero-padded item index otherwise), and `OUTPUT/labels.csv`.
    Folders,
}

/// What a state folder was made for: `settings.json`, as `baal serve` writes it. A resume
/// with other settings is refused ([`StateSettings::check_resume`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSettings {
    /// The data `baal serve` was given: a named dataset, a `.npy` file or an image folder.
    pub data: String,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// Items in the served pool.
    pub n_items: usize,
    /// The size of the pool's random subset of a named dataset, if one was asked for.
    pub pool_size: Option<usize>,
    /// The seed of the subset and the first order.
    pub seed: u64,
    /// `--seed-labels`: a named dataset's seed labels depend on it (absent from the settings
    /// of state folders made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_labels: Option<usize>,
    /// `--test-size`: drawn before the seed labels from the same generator (absent as above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_size: Option<usize>,
}

impl StateSettings {
    /// Reads `settings.json` of the state folder `state`.
    ///
    /// # Errors
    /// The file is missing (not a state folder), unreadable or corrupt.
    pub fn load(state: &Path) -> Result<Self, ServeError> {
        Ok(Checkpoint::load(state.join("settings.json"))?)
    }

    /// Whether a state made with `self` (the saved settings) can be resumed with `current`:
    /// every recorded setting equal; one the saved file does not record (an older state
    /// folder) is not compared.
    ///
    /// # Errors
    /// [`ServeError::Config`] naming the state folder and both settings.
    pub fn check_resume(&self, current: &Self, state: &Path) -> Result<(), ServeError> {
        let comparable = Self {
            seed_labels: self.seed_labels.and(current.seed_labels),
            test_size: self.test_size.and(current.test_size),
            ..current.clone()
        };
        if *self == comparable {
            return Ok(());
        }
        Err(ServeError::Config(format!(
            "{} holds the state of other settings ({self:?}); these are {current:?}: use another --state folder",
            state.display()
        )))
    }
}

/// What [`load_served_pool`] needs beyond `settings.json`. Named datasets draw their seed
/// labels after the test subset from the run's seed: state folders record `--seed-labels`
/// and `--test-size`, and those made before they were recorded take them from here (the
/// defaults are `baal serve`'s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolOptions {
    /// Where the data is, when it moved since `baal serve` (default: `settings.json`'s `data`).
    pub data: Option<String>,
    /// Folder of a named dataset's files.
    pub data_dir: Option<PathBuf>,
    /// `baal serve --seed-labels` (default: the state's, else 0); an error when the state
    /// recorded another.
    pub seed_labels: Option<usize>,
    /// `baal serve --test-size` (default: the state's, else 1000); an error when the state
    /// recorded another.
    pub test_size: Option<usize>,
}

/// `given` unless the state recorded another value of `flag`; the state's, else `default`,
/// when none is given.
fn recorded_or(
    flag: &str,
    recorded: Option<usize>,
    given: Option<usize>,
    default: usize,
) -> Result<usize, ServeError> {
    match (recorded, given) {
        (Some(r), Some(g)) if r != g => Err(ServeError::Config(format!(
            "{flag} {g}: the state was made with {flag} {r}"
        ))),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Ok(default),
    }
}

/// A state's settings and the pool it labels, loaded as `baal serve` loads them.
#[derive(Clone, Debug)]
pub struct LoadedPool {
    /// The state's settings.
    pub settings: StateSettings,
    /// The pool's items.
    pub items: Items,
    /// The data they were loaded from.
    pub data: PathBuf,
}

impl LoadedPool {
    /// The pool as label files see it.
    pub fn pool(&self) -> ServedPool<'_> {
        ServedPool {
            items: &self.items,
            data: &self.data,
        }
    }
}

/// `baal serve`'s arguments, parsed only to fill in their defaults.
#[derive(Parser)]
struct ServeDefaults {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Loads the pool the state folder `state` labels, from its `settings.json` (see
/// [`PoolOptions`] for what that file does not hold), checking that it is the pool the state
/// was made for.
///
/// # Errors
/// No or a corrupt `settings.json`; the data cannot be loaded; or it is not the state's
/// (another number of items or other classes).
pub fn load_served_pool(state: &Path, options: &PoolOptions) -> Result<LoadedPool, ServeError> {
    let settings = StateSettings::load(state)?;
    let data = options
        .data
        .clone()
        .unwrap_or_else(|| settings.data.clone());
    let mut args = ServeDefaults::try_parse_from(["baal-export", "--", data.as_str()])
        .map_err(|e| ServeError::Config(e.to_string()))?
        .serve;
    // Set here, not parsed: class names may hold commas.
    args.classes.clone_from(&settings.classes);
    args.data_dir.clone_from(&options.data_dir);
    args.pool_size = settings.pool_size;
    args.seed = settings.seed;
    args.seed_labels = recorded_or(
        "--seed-labels",
        settings.seed_labels,
        options.seed_labels,
        0,
    )?;
    args.test_size = recorded_or("--test-size", settings.test_size, options.test_size, 1000)?;
    let (items, _) = load_items(&args)?;
    check_pool(&settings, &items)?;
    Ok(LoadedPool {
        settings,
        items,
        data: PathBuf::from(data),
    })
}

fn check_pool(settings: &StateSettings, items: &Items) -> Result<(), ServeError> {
    if items.len() != settings.n_items || items.classes != settings.classes {
        return Err(ServeError::Config(format!(
            "the data holds {} items of classes [{}]; the state was made for {} items of classes [{}]",
            items.len(),
            items.classes.join(", "),
            settings.n_items,
            settings.classes.join(", ")
        )));
    }
    Ok(())
}

/// What [`export_labels`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Labels written.
    pub labels: usize,
    /// Of which the data's seed labels.
    pub seed_labels: usize,
    /// Image files written ([`ExportFormat::Folders`]; 0 otherwise).
    pub images: usize,
    /// The output.
    pub output: PathBuf,
}

/// Writes the labels of the state folder `state` to `output` in `format`, atomically and
/// never over anything (see the module docs). `pool` gives the seed labels, the file names of
/// a folder pool and the pixels; without it the seed labels and file names are left out.
///
/// # Errors
/// `output` exists (a file, or a folder that is not empty); the state cannot be read or is
/// corrupt; `pool` is not the state's; [`ExportFormat::Folders`] without `pool`, or with a
/// class name that cannot be a folder name ([`ServeError::UnsafeClassName`]); a write fails.
/// On an error nothing is left at `output`.
pub fn export_labels(
    state: &Path,
    pool: Option<ServedPool<'_>>,
    format: ExportFormat,
    output: &Path,
) -> Result<ExportSummary, ServeError> {
    output::refuse_existing(output, format == ExportFormat::Folders)?;
    let settings = StateSettings::load(state)?;
    if let Some(pool) = pool {
        check_pool(&settings, pool.items)?;
    }
    let seeds = pool.map_or(&[][..], |p| p.items.seed_labels.as_slice());
    let labels = LabelStore::read_labels(state, &settings.classes, settings.n_items, seeds)?;
    let records = records(&labels, &settings.classes, pool)?;
    let images = match (format, pool) {
        (ExportFormat::Json, _) => {
            let json = serde_json::to_vec_pretty(&records)
                .map_err(|e| ServeError::Config(format!("JSON encoding: {e}")))?;
            output::write_new_file(output, &json)?;
            0
        }
        (ExportFormat::Csv, _) => {
            output::write_new_file(output, to_csv(&records).as_bytes())?;
            0
        }
        (ExportFormat::Folders, Some(pool)) => write_folders(output, &records, pool)?,
        (ExportFormat::Folders, None) => {
            return Err(ServeError::Config(
                "an export into class folders needs the pool's images".into(),
            ));
        }
    };
    Ok(ExportSummary {
        labels: records.len(),
        seed_labels: records.iter().filter(|r| r.source == "seed").count(),
        images,
        output: output.to_path_buf(),
    })
}

/// The label file's record of each label.
fn records(
    labels: &[(DatasetIndex, LabelInfo)],
    classes: &[String],
    pool: Option<ServedPool<'_>>,
) -> Result<Vec<LabelRecord>, ServeError> {
    labels
        .iter()
        .map(|(item, info)| {
            let file = match pool {
                Some(pool) => pool.file_name(item.get())?,
                None => None,
            };
            Ok(LabelRecord {
                item: item.get(),
                file,
                class: classes[info.class].clone(),
                class_index: info.class,
                annotator: info.annotator.clone(),
                at: info.at_ms.map(rfc3339),
                source: source_name(info.source).to_string(),
            })
        })
        .collect()
}

/// Whether `name` can be a folder name as it is.
fn safe_folder_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']))
}

/// The image file name of each record in its class folder: the file's own name for a folder
/// pool, the zero-padded item index otherwise; a name taken in its class folder already
/// gets the item index in front.
fn image_names(records: &[LabelRecord], n_items: usize) -> Result<Vec<String>, ServeError> {
    let width = n_items.saturating_sub(1).to_string().len();
    let mut taken: HashSet<(usize, String)> = HashSet::new();
    let mut names = Vec::with_capacity(records.len());
    for record in records {
        let mut name = match &record.file {
            Some(file) => file.rsplit('/').next().unwrap_or(file).to_string(),
            None => format!("{:0width$}.png", record.item),
        };
        if taken.contains(&(record.class_index, name.clone())) {
            name = format!("{:0width$}-{name}", record.item);
        }
        if !taken.insert((record.class_index, name.clone())) {
            return Err(ServeError::Config(format!(
                "two images of class {:?} would be called {name:?}",
                record.class
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Writes `OUTPUT/<class>/<image>` per record and `OUTPUT/labels.csv`; returns the number of
/// images.
fn write_folders(
    output: &Path,
    records: &[LabelRecord],
    pool: ServedPool<'_>,
) -> Result<usize, ServeError> {
    if let Some(bad) = records.iter().find(|r| !safe_folder_name(&r.class)) {
        return Err(ServeError::UnsafeClassName {
            class: bad.class.clone(),
        });
    }
    let names = image_names(records, pool.items.len())?;
    output::write_new_folder(output, |staging| {
        for (record, name) in records.iter().zip(&names) {
            let dir = staging.join(&record.class);
            if !dir.exists() {
                std::fs::create_dir(&dir).map_err(|e| ServeError::io(&dir, e))?;
            }
            // A folder pool's file as it is, a PNG of the pixels otherwise.
            let (image, _) = pool.items.picture(record.item)?;
            output::write_synced(&dir.join(name), &image)?;
        }
        for class in records.iter().map(|r| &r.class).collect::<HashSet<_>>() {
            let dir = staging.join(class);
            crate::journal::sync_dir(&dir).map_err(|e| ServeError::io(&dir, e))?;
        }
        output::write_synced(&staging.join("labels.csv"), to_csv(records).as_bytes())?;
        Ok(records.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(item: usize, file: Option<&str>, class_index: usize) -> LabelRecord {
        LabelRecord {
            item,
            file: file.map(String::from),
            class: format!("c{class_index}"),
            class_index,
            annotator: "ann".into(),
            at: None,
            source: "web".into(),
        }
    }

    #[test]
    fn image_names_are_padded_indices_or_file_names_made_unique() {
        let names = image_names(&[record(7, None, 0), record(42, None, 1)], 100).expect("names");
        assert_eq!(names, ["07.png", "42.png"]);
        assert_eq!(
            image_names(&[record(0, None, 0)], 1).expect("names"),
            ["0.png"]
        );
        let names = image_names(
            &[
                record(0, Some("x.png"), 0),
                record(5, Some("c0/x.png"), 0),
                record(6, Some("c1/x.png"), 1),
            ],
            10,
        )
        .expect("names");
        assert_eq!(names, ["x.png", "5-x.png", "x.png"]);
    }

    #[test]
    fn unsafe_folder_names_are_told_apart() {
        for bad in ["", ".", "..", "a/b", "a\\b", "nul\0"] {
            assert!(!safe_folder_name(bad), "{bad:?}");
        }
        for good in ["cat", "a, \"b\"", ".hidden", "a..b", "chat noir"] {
            assert!(safe_folder_name(good), "{good:?}");
        }
    }
}
