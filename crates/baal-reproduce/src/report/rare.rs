//! What an imbalanced pool adds to the summary: the rare classes' recall and share of the
//! picks, and the labels each heuristic needed to reach random's final score.

use std::fmt::Write as _;

use baal::active::{HeuristicKind, StepRecord};

use super::plots::rare_share;
use super::{Pairs, Results, mean_std_cell, render_interval, unreached};
use crate::Error;
use crate::profile::{Imbalance, Profile};
use crate::stats::{Interval, Labels, labels_to_reach, mean_std};

/// The mean recall of the rare classes at one step (NaN without a classification report).
fn rare_recall(record: &StepRecord, imbalance: &Imbalance) -> f64 {
    record.test_report.as_ref().map_or(f64::NAN, |report| {
        report.mean_recall(|c| imbalance.is_rare(c))
    })
}

/// The rare classes' section: their recall, their share of the picks, and labels to random's
/// final score.
///
/// # Errors
/// Only formatting errors.
pub(super) fn write_rare_classes(
    md: &mut String,
    profile: &Profile,
    imbalance: &Imbalance,
    results: &Results,
) -> Result<(), Error> {
    writeln!(
        md,
        "## The rare classes ({:?}, 1/{} of a common class's items in the pool)\n",
        imbalance.rare_classes, imbalance.ratio
    )?;
    writeln!(
        md,
        "Recall of the rare classes (mean over them) at the end and averaged over the run, \
         macro F1 at the end, and the rare classes' share of everything the heuristic picked; \
         random's share is the pool's.\n"
    )?;
    writeln!(
        md,
        "| heuristic | rare recall, final | rare recall over the run | macro F1, final | rare share of the picks (%) | rare items labelled at the end |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        let runs: Vec<&[StepRecord]> = results.of(heuristic).map(|(_, r)| r).collect();
        let last: Vec<&StepRecord> = runs.iter().filter_map(|r| r.last()).collect();
        let finals: Vec<f64> = last.iter().map(|r| rare_recall(r, imbalance)).collect();
        let over_run: Vec<f64> = runs
            .iter()
            .map(|r| r.iter().map(|s| rare_recall(s, imbalance)).sum::<f64>() / r.len() as f64)
            .collect();
        let f1: Vec<f64> = last
            .iter()
            .filter_map(|r| r.test_report.as_ref().map(|report| report.macro_f1))
            .collect();
        let picks: Vec<&StepRecord> = runs
            .iter()
            .flat_map(|r| r.iter())
            .filter(|s| !s.acquired_class_counts.is_empty())
            .collect();
        let share =
            picks.iter().map(|s| rare_share(s, imbalance)).sum::<f64>() / picks.len().max(1) as f64;
        let rare_picked: Vec<f64> = runs
            .iter()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        rare_share(s, imbalance)
                            * s.acquired_class_counts.iter().sum::<usize>() as f64
                    })
                    .sum()
            })
            .collect();
        writeln!(
            md,
            "| {heuristic} | {} | {} | {} | {:.1} | {:.1} acquired (+ the initial ones) |",
            mean_std_cell(&finals, 3),
            mean_std_cell(&over_run, 3),
            mean_std_cell(&f1, 3),
            100.0 * share,
            mean_std(&rare_picked).0,
        )?;
    }
    writeln!(md)?;
    if profile.heuristics.contains(&HeuristicKind::Random) {
        write_labels_to_random_final(md, profile, results)?;
    }
    Ok(())
}

/// Labels to random's final score, per seed: the labels random needed to first reach the
/// score its last model has, and the labels each heuristic needed to reach it.
fn write_labels_to_random_final(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    let metric = profile.metric;
    writeln!(
        md,
        "## Labels to random's final {} (per seed)\n",
        metric.name()
    )?;
    writeln!(
        md,
        "For each seed, the target is the {} random's last model reached ({} labels); random \
         itself first reached it at the labels in brackets. `≥`: never reached within the budget \
         (counted as {} labels). The ratio is the heuristic's labels over random's budget, mean \
         over seeds; saved = budget − the heuristic's labels.\n",
        metric.name(),
        profile.max_labelled,
        unreached(profile)
    )?;
    writeln!(
        md,
        "| heuristic | labels per seed [random's] | ratio to random's budget | labels saved |"
    )?;
    writeln!(md, "|---|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        if heuristic == HeuristicKind::Random {
            continue;
        }
        let pairs = results.paired_with_random(heuristic);
        if pairs.is_empty() {
            continue;
        }
        writeln!(
            md,
            "{}",
            labels_to_random_final_row(profile, heuristic, &pairs)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// One heuristic's row of [`write_labels_to_random_final`].
fn labels_to_random_final_row(
    profile: &Profile,
    heuristic: HeuristicKind,
    pairs: &Pairs<'_>,
) -> String {
    let metric = profile.metric;
    let unreached = unreached(profile);
    let mut per_seed = Vec::new();
    let mut ratios = Vec::new();
    let mut saved = Vec::new();
    let mut bounded = false;
    for (_, ours, random) in pairs {
        let Some(target) = random.last().map(|r| metric.of(r)) else {
            continue;
        };
        let budget = random.last().map_or(profile.max_labelled, |r| r.n_labelled);
        let random_labels = labels_to_reach(random, metric, target).unwrap_or(budget);
        let needed = Labels::of(ours, metric, target, unreached);
        bounded |= matches!(needed, Labels::AtLeast(_));
        per_seed.push(match needed {
            Labels::Reached(n) => format!("{n} [{random_labels}]"),
            Labels::AtLeast(n) => format!("≥ {n} [{random_labels}]"),
        });
        ratios.push(needed.value() as f64 / budget as f64);
        saved.push(budget as f64 - needed.value() as f64);
    }
    let mark = if bounded { "≥ " } else { "" };
    let saved_mark = if bounded { "≤ " } else { "" };
    format!(
        "| {heuristic} | {} | {mark}{} | {saved_mark}{} |",
        per_seed.join(", "),
        Interval::of(&ratios).map_or_else(|| "-".into(), |i| render_ratio(&i)),
        Interval::of(&saved).map_or_else(|| "-".into(), |i| render_interval(&i, 0)),
    )
}

/// A ratio's mean and 95% interval, unsigned.
fn render_ratio(interval: &Interval) -> String {
    let (low, high) = interval.bounds();
    if interval.half_width.is_finite() {
        format!("{:.2} [{low:.2}, {high:.2}]", interval.mean)
    } else {
        format!("{:.2} (one seed)", interval.mean)
    }
}
