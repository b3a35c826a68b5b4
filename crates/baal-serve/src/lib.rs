//! The labelling service of baal for Rust: people label the pool's most informative items
//! while the model retrains behind them.
//!
//! - [`LeaseQueue`] hands out the items of the current ranking as leases with an expiry:
//!   two annotators never hold the same item, an abandoned item returns to the queue, and a
//!   label answers exactly one lease.
//! - [`LabelStore`] holds the labels behind a [`LabelJournal`]: a label is synced to disk
//!   before it is answered, and a restart replays the journal.
//! - [`Service`] puts the store behind one lock and runs a [`Scorer`] (a zoo model and any
//!   heuristic: [`ZooScorer`]) on a background thread that retrains every N labels and swaps
//!   in the new ranking with a model version; requests never wait for training. A
//!   [`ModelKeeper`] keeps the latest rounds' model folders in the state folder.
//! - [`http`] serves the JSON API, the labelling page and Label Studio's ML-backend protocol;
//!   [`cli`] is `baal serve`.
//! - [`export_labels`] writes a state folder's labels as JSON, CSV or class folders of images,
//!   without a server; [`read_label_file`] reads such a file back for a pool, and
//!   [`LabelStore::import_labels`] starts (or adds to) a state with it.
//!
//! docs/labelling.md describes the API, the page and the Label Studio setup.

pub mod cli;
mod error;
mod export;
pub mod http;
mod import;
mod items;
mod journal;
mod label_file;
mod models;
mod queue;
mod scorer;
mod service;
mod store;

pub use baal_data::FolderShape;
pub use error::ServeError;
pub use export::{
    ExportFormat, ExportSummary, LoadedPool, PoolOptions, StateSettings, export_labels,
    load_served_pool,
};
pub use import::read_label_file;
pub use items::{Items, load_folder, load_npy, png};
pub use journal::{Event, LabelJournal, Source};
pub use label_file::{
    LABEL_COLUMNS, LabelRecord, ServedPool, parse_rfc3339, rfc3339, source_name, to_csv,
};
pub use models::{
    CardContext, InitModel, KeptModel, MODELS_DIR, ModelKeeper, TrainedModel, round_folder_name,
};
pub use queue::{Lease, LeaseId, LeaseQueue, QueueError};
pub use scorer::{Scorer, ZooScorer};
pub use service::Service;
pub use store::{
    Annotation, AnnotationOutcome, ImportConflict, ImportSummary, ImportedLabel, LabelInfo,
    LabelStore, Labelled, Round, RoundRecord, Status, StoreConfig,
};
