//! The integration tests of the facade and the `baal` tool, one binary (one link of Burn
//! instead of one per file).

mod cli;
#[cfg(feature = "remote")]
mod remote;
#[cfg(feature = "serve")]
mod serve_cli;
#[cfg(feature = "serve")]
mod serving;
mod shards;
mod support;
mod train;
#[cfg(feature = "serve")]
mod walkthrough;
