//! The SVG files: learning curves of the profile's metric, their paired differences to
//! random, and (with rare classes) the rare classes' share of each step's picks.

use std::path::Path;

use baal::active::{ActiveError, Curve, HeuristicKind, StepRecord, plot_learning_curves};

use super::Results;
use crate::Error;
use crate::profile::{DatasetName, Imbalance, Profile};
use crate::stats::mean_std;

/// A curve of `heuristic` whose step `s` is at `point(s).0` labels, with the mean and standard
/// deviation of the values `point(s).1`.
fn mean_curve(
    heuristic: HeuristicKind,
    steps: usize,
    point: impl Fn(usize) -> (usize, Vec<f64>),
) -> Curve {
    Curve {
        name: heuristic.name().to_string(),
        points: (0..steps)
            .map(|s| {
                let (labels, values) = point(s);
                let (mean, std) = mean_std(&values);
                (labels as f64, mean, std)
            })
            .collect(),
    }
}

pub(super) fn plot_curves(
    out: &Path,
    dataset: DatasetName,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    let metric = profile.metric;
    let mut curves = Vec::new();
    let mut differences = Vec::new();
    for &heuristic in &profile.heuristics {
        let runs: Vec<(u64, &[StepRecord])> = results.of(heuristic).collect();
        let steps = runs.iter().map(|(_, r)| r.len()).min().unwrap_or(0);
        curves.push(mean_curve(heuristic, steps, |s| {
            let values = runs.iter().map(|(_, r)| metric.of(&r[s])).collect();
            (runs[0].1[s].n_labelled, values)
        }));
        if heuristic == HeuristicKind::Random {
            continue;
        }
        // Paired: the same seed's random run, step by step.
        let pairs = results.paired_with_random(heuristic);
        let steps = pairs
            .iter()
            .map(|(_, a, b)| a.len().min(b.len()))
            .min()
            .unwrap_or(0);
        if steps > 0 {
            differences.push(mean_curve(heuristic, steps, |s| {
                let gaps = pairs
                    .iter()
                    .map(|(_, a, b)| metric.of(&a[s]) - metric.of(&b[s]))
                    .collect();
                (pairs[0].1[s].n_labelled, gaps)
            }));
        }
    }
    let plot_error = |e: ActiveError| e.to_string();
    plot_learning_curves(
        &out.join("curves.svg"),
        &format!(
            "{}: {}, mean ± std over {} seed(s)",
            dataset.name(),
            metric.name(),
            profile.seeds
        ),
        metric.name(),
        &curves,
    )
    .map_err(plot_error)?;
    if !differences.is_empty() {
        plot_learning_curves(
            &out.join("curves-vs-random.svg"),
            &format!(
                "{}: {} minus random's (same seed), mean ± std",
                dataset.name(),
                metric.name()
            ),
            &format!("{} − random's", metric.name()),
            &differences,
        )
        .map_err(plot_error)?;
    }
    Ok(())
}

/// `rare-picks.svg`: the rare classes' share of each step's picks (mean ± std over seeds), at
/// the labels the step was trained on; random's sits at the pool's share.
pub(super) fn plot_rare_picks(
    out: &Path,
    dataset: DatasetName,
    profile: &Profile,
    imbalance: &Imbalance,
    results: &Results,
) -> Result<(), Error> {
    let mut curves = Vec::new();
    for &heuristic in &profile.heuristics {
        let runs: Vec<&[StepRecord]> = results.of(heuristic).map(|(_, r)| r).collect();
        // Steps that acquired: every one but the last.
        let steps = runs
            .iter()
            .map(|r| {
                r.iter()
                    .take_while(|s| !s.acquired_class_counts.is_empty())
                    .count()
            })
            .min()
            .unwrap_or(0);
        if steps == 0 {
            continue;
        }
        curves.push(mean_curve(heuristic, steps, |s| {
            let shares = runs
                .iter()
                .map(|r| 100.0 * rare_share(&r[s], imbalance))
                .collect();
            (runs[0][s].n_labelled, shares)
        }));
    }
    plot_learning_curves(
        &out.join("rare-picks.svg"),
        &format!(
            "{}: rare classes' share of each step's picks (%), mean ± std",
            dataset.name()
        ),
        "rare classes among the picks (%)",
        &curves,
    )
    .map_err(|e: ActiveError| e.to_string().into())
}

/// The share of the rare classes among the items a step acquired (0 when it acquired none).
pub(super) fn rare_share(record: &StepRecord, imbalance: &Imbalance) -> f64 {
    let counts = &record.acquired_class_counts;
    let all: usize = counts.iter().sum();
    let rare: usize = counts
        .iter()
        .enumerate()
        .filter(|(class, _)| imbalance.is_rare(*class))
        .map(|(_, count)| count)
        .sum();
    if all == 0 {
        0.0
    } else {
        rare as f64 / all as f64
    }
}
