//! The summary's tables: the settings, labels to each target, the final models' metrics,
//! paired differences to random, what each heuristic acquired and the time per step.

use std::fmt::Write as _;

use baal::active::{HeuristicKind, StepRecord};

use super::{Results, mean_labels_to_reach, mean_std_cell, render_interval, unreached};
use crate::Error;
use crate::profile::{DatasetName, Profile};
use crate::stats::{Difference, Interval, Labels, mean_over_run, mean_std, summarise_differences};

/// The training budget per fit and the early stopping, in words.
fn describe_training(profile: &Profile) -> (String, String) {
    let trainer = &profile.trainer;
    let budget = match trainer.samples_per_fit {
        Some(samples) => format!("{samples} samples per fit"),
        None => format!(
            "{} epochs (at least {} gradient steps)",
            trainer.epochs, trainer.min_gradient_steps
        ),
    };
    let early = trainer.early_stopping.as_ref().map_or_else(
        || "no early stopping".to_string(),
        |e| {
            format!(
                "early stopping on {} held-out images ({:?}, patience {} checks{})",
                profile.validation_size,
                e.metric,
                e.patience,
                if e.check_every == 0 {
                    ", a check per pass".to_string()
                } else {
                    format!(", a check every {} steps", e.check_every)
                }
            )
        },
    );
    (budget, early)
}

/// The initial labels, in words.
fn describe_initial_labels(profile: &Profile) -> String {
    match profile.seed_per_class {
        Some(0) => format!(
            "{} random initial labels from the pool",
            profile.initial_labels
        ),
        Some(per_class) => format!(
            "{per_class} initial labels of every class plus {} random ones from the pool",
            profile.initial_labels
        ),
        None => format!("{} initial labels (balanced)", profile.initial_labels),
    }
}

/// The pool, in words.
fn describe_pool(dataset: DatasetName, profile: &Profile) -> String {
    let images = match (dataset, profile.pool_size) {
        (DatasetName::RepeatedFashionMnist, Some(n)) => format!(
            "{n} training images × {} noisy copies",
            crate::data::REPEATED_COPIES
        ),
        (_, Some(n)) => format!("{n} training images"),
        (_, None) => "every training image not held out".to_string(),
    };
    match &profile.imbalance {
        Some(imbalance) => format!(
            "{images} with classes {:?} cut to 1/{} of a common class (test subset stratified; \
             the summary's metric: {})",
            imbalance.rare_classes,
            imbalance.ratio,
            profile.metric.name()
        ),
        None => images,
    }
}

pub(super) fn write_settings(
    md: &mut String,
    dataset: DatasetName,
    profile: &Profile,
    seconds: f64,
    device_name: &str,
) -> Result<(), Error> {
    let trainer = &profile.trainer;
    writeln!(
        md,
        "# Reproduction: {} ({} profile)\n",
        dataset.name(),
        profile.name
    )?;
    let (budget, early) = describe_training(profile);
    writeln!(
        md,
        "Model {:?}, {}, +{} per step, T = {}{}, scoring {}, pool {}, test set {}, \
         budget {} labels, seeds {}; trainer: {:?}{}, batch {}, {budget}, {early}, weights reset each step. \
         Device `{device_name}`, {:.1} minutes in all.{}\n",
        profile.model,
        describe_initial_labels(profile),
        profile.query_size,
        profile.iterations,
        if profile.consistent_samples {
            " (consistent samples for every heuristic)"
        } else {
            " (per-item samples; consistent for BatchBALD and EPIG)"
        },
        profile.pool_subset.map_or_else(
            || "the whole pool".to_string(),
            |n| format!("a random subset of {n}")
        ),
        describe_pool(dataset, profile),
        if profile.test_subset == 0 {
            "whole".to_string()
        } else {
            format!("subset of {}", profile.test_subset)
        },
        profile.max_labelled,
        profile.seeds,
        trainer.optimizer,
        if trainer.weight_decay_per_label {
            " (weight decay divided by the labelled count)"
        } else {
            ""
        },
        trainer.batch_size,
        seconds / 60.0,
        match profile.posterior {
            baal::active::Posterior::Mc => String::new(),
            posterior @ baal::active::Posterior::Snapshots { .. } => format!(
                " Posterior `{posterior}`: the {} snapshots of one training at every step \
                 (Trainer::snapshot_ensemble), {}.",
                posterior.predictors(),
                if posterior.samples_members() {
                    format!("each drawing T = {} MC samples", profile.iterations)
                } else {
                    "each predicting once with its dropout off (T is the number of snapshots)"
                        .to_string()
                }
            ),
            posterior => format!(
                " Posterior `{posterior}`: {} models trained from their own initial weights \
                 and seeds at every step, {}.",
                posterior.members(),
                if posterior.samples_members() {
                    format!("each drawing T = {} MC samples", profile.iterations)
                } else {
                    "each predicting once with its dropout off (T is the number of members)"
                        .to_string()
                }
            ),
        }
    )?;
    Ok(())
}

pub(super) fn write_labels_table(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    let metric = profile.metric.name();
    writeln!(
        md,
        "## Labels needed to reach a {metric} (mean ± std over seeds)\n"
    )?;
    write!(md, "| heuristic |")?;
    for t in &profile.targets {
        write!(md, " {:.0}% |", t * 100.0)?;
    }
    writeln!(md, " mean {metric} over the run | final {metric} |")?;
    write!(md, "|---|")?;
    for _ in &profile.targets {
        write!(md, "---|")?;
    }
    writeln!(md, "---|---|")?;
    for &heuristic in &profile.heuristics {
        write!(md, "| {heuristic} |")?;
        for &target in &profile.targets {
            match mean_labels_to_reach(results, heuristic, target, profile) {
                Some((mean, std, reached, total)) if reached == total => {
                    write!(md, " {mean:.0} ± {std:.0} |")?
                }
                Some((mean, _, reached, total)) => {
                    write!(md, " ≥ {mean:.0} ({reached}/{total} seeds reached) |")?
                }
                None => write!(md, " - |")?,
            }
        }
        let areas: Vec<f64> = results
            .of(heuristic)
            .map(|(_, r)| mean_over_run(r, profile.metric))
            .collect();
        let finals: Vec<f64> = results
            .of(heuristic)
            .filter_map(|(_, r)| r.last().map(|r| profile.metric.of(r)))
            .collect();
        let (area, area_std) = mean_std(&areas);
        let (last, last_std) = mean_std(&finals);
        writeln!(
            md,
            " {area:.3} ± {area_std:.3} | {last:.3} ± {last_std:.3} |"
        )?;
    }
    writeln!(
        md,
        "\nA seed that never reaches a target counts as budget + one query ({} labels), so `≥` marks a lower bound. \
         \"Mean {metric} over the run\" is the area under the learning curve divided by its steps.\n",
        unreached(profile)
    )?;
    Ok(())
}

pub(super) fn write_paired_differences(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    if !profile.heuristics.contains(&HeuristicKind::Random) {
        return Ok(());
    }
    writeln!(
        md,
        "## Paired differences to random (same seed: same initial labels and weights)\n"
    )?;
    writeln!(
        md,
        "Mean [95% interval, Student's t over seeds]; per seed in brackets. Negative label \
         differences and positive metric differences favour the heuristic. `≤` / `≥`: some \
         seeds' differences are bounds (a run that never reached the target).\n"
    )?;
    write!(
        md,
        "| heuristic | mean {} over the run |",
        profile.metric.name()
    )?;
    for t in &profile.targets {
        write!(md, " labels to {:.0}% |", t * 100.0)?;
    }
    writeln!(
        md,
        " labels to {:.0}%, ratio to random |",
        profile.main_target * 100.0
    )?;
    write!(md, "|---|---|")?;
    for _ in &profile.targets {
        write!(md, "---|")?;
    }
    writeln!(md, "---|")?;
    for &heuristic in &profile.heuristics {
        if heuristic == HeuristicKind::Random {
            continue;
        }
        write_paired_row(
            md,
            profile,
            heuristic,
            &results.paired_with_random(heuristic),
        )?;
    }
    writeln!(
        md,
        "\nThe ratio divides the heuristic's mean labels to the main target ({:.0}%) by random's; \
         unreached seeds count as {} labels, which makes a `≤` ratio an upper bound.\n",
        profile.main_target * 100.0,
        unreached(profile)
    )?;
    Ok(())
}

/// One heuristic's row of the paired differences: `pairs` holds, by seed, its records and
/// random's. Nothing when no seed has both.
fn write_paired_row(
    md: &mut String,
    profile: &Profile,
    heuristic: HeuristicKind,
    pairs: &[(u64, &[StepRecord], &[StepRecord])],
) -> Result<(), Error> {
    let gains: Vec<f64> = pairs
        .iter()
        .map(|(_, a, b)| mean_over_run(a, profile.metric) - mean_over_run(b, profile.metric))
        .collect();
    let Some(interval) = Interval::of(&gains) else {
        return Ok(());
    };
    let wins = gains.iter().filter(|g| **g > 0.0).count();
    write!(
        md,
        "| {heuristic} | {} (better in {wins}/{} seeds) [{}] |",
        render_interval(&interval, 4),
        gains.len(),
        gains
            .iter()
            .map(|g| format!("{g:+.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let unreached = unreached(profile);
    for &target in &profile.targets {
        let differences: Vec<Difference> = pairs
            .iter()
            .map(|(_, a, b)| {
                Difference::of_labels(
                    Labels::of(a, profile.metric, target, unreached),
                    Labels::of(b, profile.metric, target, unreached),
                )
            })
            .collect();
        let per_seed = differences
            .iter()
            .map(|d| d.render())
            .collect::<Vec<_>>()
            .join(", ");
        match summarise_differences(&differences) {
            Some((bound, interval)) => write!(
                md,
                " {}{} [{per_seed}] |",
                bound.map(|b| format!("{b} ")).unwrap_or_default(),
                render_interval(&interval, 0)
            )?,
            None => write!(md, " ? [{per_seed}] |")?,
        }
    }
    writeln!(md, " {} |", ratio_to_random(profile, pairs))?;
    Ok(())
}

/// The heuristic's mean labels to the main target divided by random's, marked as a bound
/// when some seed never reached it.
fn ratio_to_random(profile: &Profile, pairs: &[(u64, &[StepRecord], &[StepRecord])]) -> String {
    let unreached = unreached(profile);
    let main = |records: &[StepRecord]| {
        Labels::of(records, profile.metric, profile.main_target, unreached)
    };
    let ours: Vec<Labels> = pairs.iter().map(|(_, a, _)| main(a)).collect();
    let theirs: Vec<Labels> = pairs.iter().map(|(_, _, b)| main(b)).collect();
    let sum = |labels: &[Labels]| labels.iter().map(|l| l.value()).sum::<usize>() as f64;
    let ratio = sum(&ours) / sum(&theirs);
    let ours_bounded = ours.iter().any(|l| matches!(l, Labels::AtLeast(_)));
    let theirs_bounded = theirs.iter().any(|l| matches!(l, Labels::AtLeast(_)));
    match (ours_bounded, theirs_bounded) {
        (false, false) => format!("{ratio:.2}"),
        (false, true) => format!("≤ {ratio:.2}"),
        (true, false) => format!("≥ {ratio:.2}"),
        (true, true) => format!("? ({ratio:.2} with bounds)"),
    }
}

pub(super) fn write_acquisitions(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    writeln!(md, "## What each heuristic acquired\n")?;
    writeln!(
        md,
        "The model's accuracy on the items it acquired, before they were labelled (mean over \
         steps and seeds), beside its test accuracy at the same steps; and the share of each class \
         among everything acquired. An informative heuristic picks items the model gets wrong; \
         random's picks match the test accuracy.\n"
    )?;
    writeln!(
        md,
        "| heuristic | accuracy on its picks | test accuracy | class shares of the picks (%) |"
    )?;
    writeln!(md, "|---|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        let acquiring: Vec<&StepRecord> = results
            .of(heuristic)
            .flat_map(|(_, r)| r.iter())
            .filter(|r| r.acquired_accuracy.is_some())
            .collect();
        if acquiring.is_empty() {
            continue;
        }
        let picks: Vec<f64> = acquiring
            .iter()
            .filter_map(|r| r.acquired_accuracy)
            .collect();
        let tests: Vec<f64> = acquiring.iter().map(|r| r.test_accuracy).collect();
        let classes = acquiring
            .iter()
            .map(|r| r.acquired_class_counts.len())
            .max()
            .unwrap_or(0);
        let mut counts = vec![0usize; classes];
        for record in &acquiring {
            for (total, count) in counts.iter_mut().zip(&record.acquired_class_counts) {
                *total += count;
            }
        }
        let all = counts.iter().sum::<usize>().max(1) as f64;
        writeln!(
            md,
            "| {heuristic} | {:.3} | {:.3} | {} |",
            mean_std(&picks).0,
            mean_std(&tests).0,
            counts
                .iter()
                .map(|&c| format!("{:.0}", 100.0 * c as f64 / all))
                .collect::<Vec<_>>()
                .join(" / ")
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// The last step's classification report and calibration, mean ± std over seeds.
pub(super) fn write_final_metrics(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    writeln!(
        md,
        "## The final models' test metrics (mean ± std over seeds)\n"
    )?;
    let calibrated = profile.calibration.is_some();
    write!(
        md,
        "| heuristic | accuracy | top-2 accuracy | macro F1 | macro PR-AUC | NLL | ECE |"
    )?;
    if calibrated {
        write!(md, " validation ECE before → after calibration |")?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "|---|---|---|---|---|---|---|{}",
        if calibrated { "---|" } else { "" }
    )?;
    for &heuristic in &profile.heuristics {
        let last: Vec<&StepRecord> = results
            .of(heuristic)
            .filter_map(|(_, r)| r.last())
            .collect();
        write_final_metrics_row(md, heuristic, &last, calibrated)?;
    }
    writeln!(
        md,
        "\nPer-class precision, recall, F1, PR-AUC and ECE of every step are in each run's `log.jsonl` (`test_report`).{}\n",
        if calibrated {
            " The test metrics are the calibrated model's: a Dirichlet map fitted on the validation images after every fit."
        } else {
            ""
        }
    )?;
    Ok(())
}

/// One heuristic's row of the final metrics' table, from the last step of each seed.
fn write_final_metrics_row(
    md: &mut String,
    heuristic: HeuristicKind,
    last: &[&StepRecord],
    calibrated: bool,
) -> Result<(), Error> {
    let cell = |values: Vec<f64>| mean_std_cell(&values, 3);
    let report = |f: fn(&baal::active::ClassificationReport) -> f64| {
        cell(
            last.iter()
                .filter_map(|r| r.test_report.as_ref().map(f))
                .collect(),
        )
    };
    write!(
        md,
        "| {heuristic} | {} | {} | {} | {} | {} | {} |",
        cell(last.iter().map(|r| r.test_accuracy).collect()),
        report(|r| {
            r.top_k_accuracy
                .iter()
                .find(|(k, _)| *k == 2)
                .map_or(f64::NAN, |(_, accuracy)| *accuracy)
        }),
        report(|r| r.macro_f1),
        report(|r| r.macro_pr_auc),
        cell(last.iter().map(|r| r.test_nll).collect()),
        cell(last.iter().map(|r| r.test_ece).collect()),
    )?;
    if calibrated {
        write!(
            md,
            " {} → {} |",
            cell(
                last.iter()
                    .filter_map(|r| r.calibration.map(|c| c.before.ece))
                    .collect()
            ),
            cell(
                last.iter()
                    .filter_map(|r| r.calibration.map(|c| c.after.ece))
                    .collect()
            ),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

pub(super) fn write_times(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    writeln!(md, "## Time per step (mean seconds)\n")?;
    writeln!(
        md,
        "| heuristic | train (gradient steps) | evaluate | MC-predict pool | rank |"
    )?;
    writeln!(md, "|---|---|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        let records: Vec<&StepRecord> = results.of(heuristic).flat_map(|(_, r)| r.iter()).collect();
        let mean = |f: fn(&StepRecord) -> f64| {
            records.iter().map(|r| f(r)).sum::<f64>() / records.len().max(1) as f64
        };
        writeln!(
            md,
            "| {heuristic} | {:.2} ({:.0}) | {:.2} | {:.2} | {:.3} |",
            mean(|r| r.train_seconds),
            mean(|r| r.train_steps as f64),
            mean(|r| r.eval_seconds),
            mean(|r| r.predict_seconds),
            mean(|r| r.rank_seconds)
        )?;
    }
    Ok(())
}
