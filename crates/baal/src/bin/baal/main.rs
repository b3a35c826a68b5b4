//! The `baal` command-line tool.

mod embed;
#[cfg(feature = "serve")]
mod export;
#[cfg(feature = "remote")]
mod remote_serve;
mod score;
mod score_embeddings;
mod shards;
mod train;

use std::io::Write;

use clap::{Parser, Subcommand};
use score::{ScoreArgs, ScoreError, run};

/// mimalloc serves training's megabyte-sized, short-lived buffers from memory it keeps, where
/// glibc's malloc returns them to the kernel and faults them in again (docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bayesian active learning on Burn.
#[derive(Debug, Parser)]
#[command(name = "baal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rank pool items from MC predictions in an .npy file [N, C, T] and print JSON
    /// {"heuristic", "ranks", "scores"}.
    Score(ScoreArgs),
    /// Train a zoo model on labelled images (a folder's class sub-folders, a named dataset, a
    /// `.npy` array with labels) into a model folder for `baal predict --model-dir`; print
    /// its metrics as JSON.
    Train(train::TrainArgs),
    /// Score one shard of a pool with a zoo model and its weights (`--shard I/N` or `auto`
    /// under SLURM or a Kubernetes Indexed Job), into a result folder for `baal merge`.
    Predict(shards::PredictArgs),
    /// Write a zoo model's embeddings of every pool item (the input of its last linear layer)
    /// as an .npy array [N, D] for `baal score --heuristic coreset|badge --embeddings`;
    /// print JSON {"items", "dim", "output"}.
    Embed(embed::EmbedArgs),
    /// Check that shard folders are the N shards of one pool made with the same settings,
    /// then select as one process would: print JSON {"heuristic", "query", "scores", ...}.
    Merge(shards::MergeArgs),
    /// Serve a labelling page and API (and a Label Studio ML backend) over a pool: people
    /// label the most informative items while the model retrains in the background.
    #[cfg(feature = "serve")]
    Serve(ServeCommand),
    /// Write the labels of a `baal serve` state folder (with annotator, time and source) as
    /// JSON, CSV or class folders of images, for other tools, `baal train` and
    /// `baal serve --labels`; print what was written as JSON.
    #[cfg(feature = "serve")]
    Export(export::ExportArgs),
    /// Lend a device of this machine (a GPU) to other processes over WebSocket, through Burn's
    /// remote backend: they use it as the device `remote:ws://HOST:PORT`.
    #[cfg(feature = "remote")]
    RemoteServe(remote_serve::RemoteServeArgs),
}

/// `baal serve`'s arguments and the device it trains on.
#[cfg(feature = "serve")]
#[derive(Debug, clap::Args)]
struct ServeCommand {
    #[command(flatten)]
    args: baal_serve::cli::ServeArgs,
    /// Device: cpu (flex), wgpu, vulkan, metal, cuda, tch-cpu, tch-cuda, with `:N` for an index,
    /// or remote:ws://HOST:PORT.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[cfg(feature = "serve")]
fn serve(command: &ServeCommand) -> Result<(), String> {
    let device = baal::device::parse_device(&command.device).map_err(|e| e.to_string())?;
    baal_serve::cli::run(&command.args, &device).map_err(|e| e.to_string())
}

/// The tool's log on standard error: warnings and errors, or what `RUST_LOG` asks for
/// (`RUST_LOG=info` adds retrains, `debug` a line per `baal serve` request).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Writes `value` as JSON to `output` (atomically: the whole file or none) or to standard
/// output, where a closed pipe (`| head -0`) is an error that says so, not a panic.
fn write_json(
    value: &impl serde::Serialize,
    output: Option<&std::path::Path>,
) -> Result<(), ScoreError> {
    let json = serde_json::to_string(value).map_err(|e| ScoreError::Failed(e.to_string()))?;
    match output {
        None => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{json}")
                .and_then(|()| stdout.flush())
                .map_err(|e| ScoreError::Failed(format!("standard output: {e}")))
        }
        Some(path) => baal::data::write_file_atomically(path, json.as_bytes())
            .map_err(|e| ScoreError::Failed(e.to_string())),
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging();
    let result = match &cli.command {
        Command::Score(args) => {
            run(args).and_then(|report| write_json(&report, args.output.as_deref()))
        }
        Command::Train(args) => train::train(args).and_then(|metrics| write_json(&metrics, None)),
        Command::Predict(args) => shards::predict(args),
        Command::Embed(args) => embed::embed(args).and_then(|report| write_json(&report, None)),
        Command::Merge(args) => {
            shards::merge(args).and_then(|merged| write_json(&merged, args.output.as_deref()))
        }
        #[cfg(feature = "serve")]
        Command::Serve(command) => serve(command).map_err(score::ScoreError::Input),
        #[cfg(feature = "serve")]
        Command::Export(args) => {
            export::export(args).and_then(|summary| write_json(&summary, None))
        }
        #[cfg(feature = "remote")]
        Command::RemoteServe(args) => remote_serve::run(args),
    };
    if let Err(e) = result {
        eprintln!("baal: error: {e}");
        std::process::exit(e.exit_code());
    }
}
