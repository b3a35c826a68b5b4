//! The report of a reproduction: `curves.csv` (every step of every run), `curves.svg` (mean ±
//! std learning curves), `curves-vs-random.svg` (accuracy minus random's, paired by seed) and
//! `summary.md` (labels to each target, paired differences to random with 95% intervals, what
//! each heuristic acquired, time per step).

use std::fmt::Write as _;
use std::path::Path;

use baal::active::{ActiveError, Curve, HeuristicKind, StepRecord, plot_learning_curves};

use crate::Error;
use crate::profile::{DatasetName, Profile};
use crate::stats::{Difference, Interval, Labels, mean_accuracy, mean_std, summarise_differences};

/// The records of every run, by heuristic and seed.
pub struct Results {
    /// `(heuristic, seed, records)`.
    pub runs: Vec<(HeuristicKind, u64, Vec<StepRecord>)>,
}

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
        .map(|(_, records)| Labels::of(records, target, unreached(profile)))
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
/// heuristic) and `summary.md` into `out`; returns the summary text.
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
    plot_curves(out, dataset, profile, results)?;
    let mut md = String::new();
    write_settings(&mut md, dataset, profile, seconds, device_name)?;
    write_labels_table(&mut md, profile, results)?;
    write_final_metrics(&mut md, profile, results)?;
    write_paired_differences(&mut md, profile, results)?;
    write_acquisitions(&mut md, profile, results)?;
    write_times(&mut md, profile, results)?;
    writeln!(
        md,
        "\nCurves: `curves.csv`, `curves.svg`, `curves-vs-random.svg`; per-run logs (`log.jsonl`) and resumable state: `runs/{}/`.",
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

fn plot_curves(
    out: &Path,
    dataset: DatasetName,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    let mut curves = Vec::new();
    let mut differences = Vec::new();
    for &heuristic in &profile.heuristics {
        let runs: Vec<(u64, &[StepRecord])> = results.of(heuristic).collect();
        let steps = runs.iter().map(|(_, r)| r.len()).min().unwrap_or(0);
        curves.push(mean_curve(heuristic, steps, |s| {
            let accuracies = runs.iter().map(|(_, r)| r[s].test_accuracy).collect();
            (runs[0].1[s].n_labelled, accuracies)
        }));
        if heuristic == HeuristicKind::Random {
            continue;
        }
        // Paired: the same seed's random run, step by step.
        let pairs: Vec<(&[StepRecord], &[StepRecord])> = runs
            .iter()
            .filter_map(|(seed, r)| Some((*r, results.run(HeuristicKind::Random, *seed)?)))
            .collect();
        let steps = pairs
            .iter()
            .map(|(a, b)| a.len().min(b.len()))
            .min()
            .unwrap_or(0);
        if steps > 0 {
            differences.push(mean_curve(heuristic, steps, |s| {
                let gaps = pairs
                    .iter()
                    .map(|(a, b)| a[s].test_accuracy - b[s].test_accuracy)
                    .collect();
                (pairs[0].0[s].n_labelled, gaps)
            }));
        }
    }
    let plot_error = |e: ActiveError| e.to_string();
    plot_learning_curves(
        &out.join("curves.svg"),
        &format!(
            "{}: test accuracy, mean ± std over {} seed(s)",
            dataset.name(),
            profile.seeds
        ),
        "test accuracy",
        &curves,
    )
    .map_err(plot_error)?;
    if !differences.is_empty() {
        plot_learning_curves(
            &out.join("curves-vs-random.svg"),
            &format!(
                "{}: accuracy minus random's (same seed), mean ± std",
                dataset.name()
            ),
            "test accuracy − random's",
            &differences,
        )
        .map_err(plot_error)?;
    }
    Ok(())
}

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

fn write_settings(
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
        "Model {:?}, {} initial labels (balanced), +{} per step, T = {}{}, scoring {}, pool {}, test set {}, \
         budget {} labels, seeds {}; trainer: {:?}{}, batch {}, {budget}, {early}, weights reset each step. \
         Device `{device_name}`, {:.1} minutes in all.{}\n",
        profile.model,
        profile.initial_labels,
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
        match (dataset, profile.pool_size) {
            (DatasetName::RepeatedFashionMnist, Some(n)) => format!(
                "{n} training images × {} noisy copies",
                crate::data::REPEATED_COPIES
            ),
            (_, Some(n)) => format!("{n} training images"),
            (_, None) => "every training image not held out".to_string(),
        },
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

fn write_labels_table(md: &mut String, profile: &Profile, results: &Results) -> Result<(), Error> {
    writeln!(
        md,
        "## Labels needed to reach a test accuracy (mean ± std over seeds)\n"
    )?;
    write!(md, "| heuristic |")?;
    for t in &profile.targets {
        write!(md, " {:.0}% |", t * 100.0)?;
    }
    writeln!(md, " mean accuracy over the run | final accuracy |")?;
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
            .map(|(_, r)| mean_accuracy(r))
            .collect();
        let finals: Vec<f64> = results
            .of(heuristic)
            .filter_map(|(_, r)| r.last().map(|r| r.test_accuracy))
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
         \"Mean accuracy over the run\" is the area under the learning curve divided by its steps.\n",
        unreached(profile)
    )?;
    Ok(())
}

fn write_paired_differences(
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
         differences and positive accuracy differences favour the heuristic. `≤` / `≥`: some \
         seeds' differences are bounds (a run that never reached the target).\n"
    )?;
    write!(md, "| heuristic | mean accuracy over the run |")?;
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
        let pairs: Vec<(u64, &[StepRecord], &[StepRecord])> = results
            .of(heuristic)
            .filter_map(|(seed, r)| Some((seed, r, results.run(HeuristicKind::Random, seed)?)))
            .collect();
        write_paired_row(md, profile, heuristic, &pairs)?;
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
        .map(|(_, a, b)| mean_accuracy(a) - mean_accuracy(b))
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
                    Labels::of(a, target, unreached),
                    Labels::of(b, target, unreached),
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
    let main = |records: &[StepRecord]| Labels::of(records, profile.main_target, unreached);
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

fn write_acquisitions(md: &mut String, profile: &Profile, results: &Results) -> Result<(), Error> {
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
fn write_final_metrics(md: &mut String, profile: &Profile, results: &Results) -> Result<(), Error> {
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
        let cell = |values: Vec<f64>| -> String {
            if values.is_empty() {
                return "-".into();
            }
            let (mean, std) = mean_std(&values);
            format!("{mean:.3} ± {std:.3}")
        };
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

fn write_times(md: &mut String, profile: &Profile, results: &Results) -> Result<(), Error> {
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
