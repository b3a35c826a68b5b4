//! The report of a reproduction: `curves.csv` (every step of every run), `curves.svg` (mean ±
//! std learning curves of the profile's metric), `curves-vs-random.svg` (the metric minus
//! random's, paired by seed), with rare classes `rare-picks.svg` (their share of each step's
//! picks), and `summary.md` (labels to each target, paired differences to random with 95%
//! intervals, what each heuristic acquired, time per step; with rare classes their recall and
//! the labels each heuristic needed to reach random's final score; with a stopping set where
//! stopping on the agreement of successive models would have stopped).
//!
//! One part a module: `tables` (the summary's tables), `plots` (the SVG files), `rare`
//! (what an imbalanced pool adds) and `stopping` (what a stopping set adds).

mod plots;
mod rare;
mod stopping;
mod tables;

use std::fmt::Write as _;
use std::path::Path;

use baal::active::{HeuristicKind, StepRecord};

use crate::Error;
use crate::profile::{DatasetName, Profile};
use crate::stats::{Interval, Labels, mean_std};

/// The records of every run, by heuristic and seed.
pub struct Results {
    /// `(heuristic, seed, records)`.
    pub runs: Vec<(HeuristicKind, u64, Vec<StepRecord>)>,
}

/// A heuristic's runs paired with random's of the same seed: `(seed, heuristic's, random's)`.
type Pairs<'a> = Vec<(u64, &'a [StepRecord], &'a [StepRecord])>;

impl Results {
    /// The runs of `heuristic`, with their seeds.
    fn of(&self, heuristic: HeuristicKind) -> impl Iterator<Item = (u64, &[StepRecord])> {
        self.runs
            .iter()
            .filter(move |(h, _, r)| *h == heuristic && !r.is_empty())
            .map(|(_, seed, records)| (*seed, records.as_slice()))
    }

    /// The run of `heuristic` with `seed`.
    fn run(&self, heuristic: HeuristicKind, seed: u64) -> Option<&[StepRecord]> {
        self.of(heuristic).find(|(s, _)| *s == seed).map(|(_, r)| r)
    }

    /// The runs of `heuristic` with random's run of the same seed, for the seeds that have
    /// both.
    fn paired_with_random(&self, heuristic: HeuristicKind) -> Pairs<'_> {
        self.of(heuristic)
            .filter_map(|(seed, r)| Some((seed, r, self.run(HeuristicKind::Random, seed)?)))
            .collect()
    }
}

/// Labels a run that never reaches a target counts as: the budget plus one query.
fn unreached(profile: &Profile) -> usize {
    profile.max_labelled + profile.query_size
}

/// Mean labels needed to reach `target` over the seeds, counting a seed that never reached
/// it as the budget plus one query (a lower bound on what it would need); with its standard
/// deviation, how many seeds reached it, and how many ran.
pub fn mean_labels_to_reach(
    results: &Results,
    heuristic: HeuristicKind,
    target: f64,
    profile: &Profile,
) -> Option<(f64, f64, usize, usize)> {
    let needed: Vec<Labels> = results
        .of(heuristic)
        .map(|(_, records)| Labels::of(records, profile.metric, target, unreached(profile)))
        .collect();
    if needed.is_empty() {
        return None;
    }
    let reached = needed
        .iter()
        .filter(|l| matches!(l, Labels::Reached(_)))
        .count();
    let values: Vec<f64> = needed.iter().map(|l| l.value() as f64).collect();
    let (mean, std) = mean_std(&values);
    Some((mean, std, reached, needed.len()))
}

/// A table cell of `values`' mean ± std with `digits` decimals, `-` without values.
fn mean_std_cell(values: &[f64], digits: usize) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let (mean, std) = mean_std(values);
    format!("{mean:.digits$} ± {std:.digits$}")
}

/// `mean [low, high]` of an interval, with `digits` decimals.
fn render_interval(interval: &Interval, digits: usize) -> String {
    let (low, high) = interval.bounds();
    if interval.half_width.is_finite() {
        format!(
            "{:+.digits$} [{low:+.digits$}, {high:+.digits$}]",
            interval.mean
        )
    } else {
        format!("{:+.digits$} (one seed)", interval.mean)
    }
}

/// Writes `curves.csv`, `curves.svg`, `curves-vs-random.svg` (when random ran with another
/// heuristic), `rare-picks.svg` (with rare classes) and `summary.md` into `out`; returns the
/// summary text.
///
/// # Errors
/// A file cannot be written or a plot drawn.
pub fn write_results(
    out: &Path,
    dataset: DatasetName,
    profile: &Profile,
    results: &Results,
    seconds: f64,
    device_name: &str,
) -> Result<String, Error> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    write_curves_csv(out, results)?;
    plots::plot_curves(out, dataset, profile, results)?;
    let mut md = String::new();
    tables::write_settings(&mut md, dataset, profile, seconds, device_name)?;
    tables::write_labels_table(&mut md, profile, results)?;
    tables::write_final_metrics(&mut md, profile, results)?;
    tables::write_paired_differences(&mut md, profile, results)?;
    let mut files = "`curves.csv`, `curves.svg`, `curves-vs-random.svg`".to_string();
    if let Some(imbalance) = &profile.imbalance {
        rare::write_rare_classes(&mut md, profile, imbalance, results)?;
        plots::plot_rare_picks(out, dataset, profile, imbalance, results)?;
        files.push_str(", `rare-picks.svg`");
    }
    stopping::write_stopping(&mut md, profile, results)?;
    tables::write_acquisitions(&mut md, profile, results)?;
    tables::write_times(&mut md, profile, results)?;
    writeln!(
        md,
        "\nCurves: {files}; per-run logs (`log.jsonl`) and resumable state: `runs/{}/`.",
        profile.name
    )?;
    std::fs::write(out.join("summary.md"), &md)?;
    Ok(md)
}

/// Every step of every run: the seed, then [`StepRecord::csv_row`]'s columns.
fn write_curves_csv(out: &Path, results: &Results) -> Result<(), Error> {
    let mut csv = format!("seed,{}\n", StepRecord::CSV_HEADER);
    for (_, seed, records) in &results.runs {
        for record in records {
            writeln!(csv, "{seed},{}", record.csv_row())?;
        }
    }
    std::fs::write(out.join("curves.csv"), csv)?;
    Ok(())
}
