//! The integration tests of the labelling service, one binary (one link of Burn instead of one
//! per file).

mod api;
mod browser;
mod common;
mod hardening;
mod label_export;
mod label_import;
mod load;
mod models;
mod sigkill;
