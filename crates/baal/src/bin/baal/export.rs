//! `baal export`: the labels of a `baal serve` state folder as JSON, CSV or class folders of
//! images, for other tools (and for `baal train` and `baal serve --labels`).

use std::path::PathBuf;

use baal_serve::{ExportFormat, ExportSummary, PoolOptions, export_labels, load_served_pool};

use crate::score::ScoreError;

/// Options of `baal export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The state folder of `baal serve` (a server may be running on it: nothing in it is
    /// changed).
    pub state: PathBuf,
    /// `json` (a list of labels), `csv` (a header line and a label per line) or `folders`
    /// (OUTPUT/<class>/<image> and OUTPUT/labels.csv); each label with its item, file,
    /// class, annotator, time and source.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The file (json, csv) or folder (folders) to write; it must not exist (a folder may be
    /// empty).
    #[arg(long)]
    pub output: PathBuf,
    /// Where the data is, if it moved since `baal serve` (default: the state's).
    #[arg(long)]
    pub data: Option<String>,
    /// Folder of a named dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `baal serve --seed-labels` of a state folder that did not record it (named datasets).
    #[arg(long)]
    pub seed_labels: Option<usize>,
    /// `baal serve --test-size` of a state folder that did not record it (named datasets).
    #[arg(long)]
    pub test_size: Option<usize>,
}

/// Runs `baal export`; what it wrote is printed as JSON.
///
/// # Errors
/// [`ScoreError::Input`] (exit 2): not a state folder, data that is not the state's, an
/// existing output, a class name that cannot be a folder name; [`ScoreError::Failed`]: a
/// write failed.
pub fn export(args: &ExportArgs) -> Result<ExportSummary, ScoreError> {
    let options = PoolOptions {
        data: args.data.clone(),
        data_dir: args.data_dir.clone(),
        seed_labels: args.seed_labels,
        test_size: args.test_size,
    };
    let loaded = load_served_pool(&args.state, &options).map_err(serve_error)?;
    export_labels(&args.state, Some(loaded.pool()), args.format, &args.output).map_err(serve_error)
}

/// Bad input exits 2; a failed read or write of the disk exits 1.
fn serve_error(e: baal_serve::ServeError) -> ScoreError {
    match e {
        baal_serve::ServeError::Io { .. } => ScoreError::Failed(e.to_string()),
        other => ScoreError::Input(other.to_string()),
    }
}
