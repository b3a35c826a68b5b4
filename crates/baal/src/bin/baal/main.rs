//! The `baal` command-line tool.

mod score;

use clap::{Parser, Subcommand};
use score::{ScoreArgs, run, write_report};

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
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Score(args) => {
            run(args).and_then(|report| write_report(&report, args.output.as_deref()))
        }
    };
    if let Err(e) = result {
        eprintln!("baal: error: {e}");
        std::process::exit(e.exit_code());
    }
}
