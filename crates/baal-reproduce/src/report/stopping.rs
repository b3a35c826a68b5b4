//! What a stopping set adds to the summary: where stopping on the agreement of successive
//! models ([`PredictionStability`]) would have stopped each run, and what it would have cost.

use std::fmt::Write as _;

use baal::active::{PredictionStability, StepRecord, StoppingCriterion};

use super::{Results, mean_std_cell};
use crate::Error;
use crate::profile::Profile;

/// The thresholds of the section, over small-text's window of 3 steps.
const THRESHOLDS: [f64; 3] = [0.90, 0.95, 0.99];

/// The step at which `criterion` would have stopped `records` (the first whose records so
/// far make it fire), or `None` when it never fires.
pub(super) fn stop_step(criterion: &PredictionStability, records: &[StepRecord]) -> Option<usize> {
    (0..records.len()).find(|&i| criterion.should_stop(&records[..=i]).is_some())
}

/// The stopping section, when the runs logged agreements.
///
/// # Errors
/// Only formatting errors.
pub(super) fn write_stopping(
    md: &mut String,
    profile: &Profile,
    results: &Results,
) -> Result<(), Error> {
    let logged = results
        .runs
        .iter()
        .any(|(_, _, records)| records.iter().any(|r| r.prediction_agreement.is_some()));
    if !logged {
        return Ok(());
    }
    let metric = profile.metric;
    writeln!(md, "## Stopping without labels (prediction stability)\n")?;
    writeln!(
        md,
        "Each step, Cohen's kappa between the predicted classes of this step's model and the \
         previous one's on {} held-out unlabelled images. `PredictionStability` (window 3 \
         steps) would stop a run at the first step whose last 3 agreements average at least \
         the threshold; the runs here went on to the budget, so the cost of stopping there is \
         the {} lost against the run's final model. Mean ± std over the seeds where it fired.\n",
        profile.stopping_set.unwrap_or(0),
        metric.name()
    )?;
    write_stops(md, profile, results)?;
    write_agreements(md, profile, results)
}

/// Where the criterion would have stopped, per heuristic and threshold.
fn write_stops(md: &mut String, profile: &Profile, results: &Results) -> Result<(), Error> {
    let metric = profile.metric;
    writeln!(
        md,
        "| heuristic | threshold | fired in | labels at the stop | {} at the stop | final {} | lost |",
        metric.name(),
        metric.name()
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        let runs: Vec<&[StepRecord]> = results.of(heuristic).map(|(_, r)| r).collect();
        for threshold in THRESHOLDS {
            let criterion = PredictionStability::new(3, threshold)
                .map_err(|e| format!("stopping criterion: {e}"))?;
            let (mut labels, mut at_stop, mut finals, mut lost) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for records in &runs {
                let (Some(step), Some(last)) = (stop_step(&criterion, records), records.last())
                else {
                    continue;
                };
                let stopped = metric.of(&records[step]);
                labels.push(records[step].n_labelled as f64);
                at_stop.push(stopped);
                finals.push(metric.of(last));
                lost.push(metric.of(last) - stopped);
            }
            writeln!(
                md,
                "| {heuristic} | {threshold:.2} | {}/{} seeds | {} | {} | {} | {} |",
                labels.len(),
                runs.len(),
                mean_std_cell(&labels, 0),
                mean_std_cell(&at_stop, 3),
                mean_std_cell(&finals, 3),
                mean_std_cell(&lost, 3)
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

/// The mean agreement over each run's first and last 3 steps.
fn write_agreements(md: &mut String, profile: &Profile, results: &Results) -> Result<(), Error> {
    writeln!(
        md,
        "How far successive models agree, the mean kappa of a run's first 3 agreements and of \
         its last 3 (mean ± std over seeds):\n"
    )?;
    writeln!(md, "| heuristic | first 3 steps | last 3 steps |")?;
    writeln!(md, "|---|---|---|")?;
    for &heuristic in &profile.heuristics {
        let (mut first, mut last) = (Vec::new(), Vec::new());
        for (_, records) in results.of(heuristic) {
            let agreements: Vec<f64> = records
                .iter()
                .filter_map(|r| r.prediction_agreement)
                .collect();
            if agreements.len() >= 3 {
                first.push(agreements[..3].iter().sum::<f64>() / 3.0);
                last.push(agreements[agreements.len() - 3..].iter().sum::<f64>() / 3.0);
            }
        }
        writeln!(
            md,
            "| {heuristic} | {} | {} |",
            mean_std_cell(&first, 3),
            mean_std_cell(&last, 3)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(agreements: &[Option<f64>]) -> Vec<StepRecord> {
        agreements
            .iter()
            .map(|&prediction_agreement| StepRecord {
                prediction_agreement,
                ..StepRecord::default()
            })
            .collect()
    }

    #[test]
    fn the_stop_is_the_first_step_whose_last_three_agreements_reach_the_threshold() {
        let criterion = PredictionStability::new(3, 0.9).expect("valid");
        let run = records(&[
            None,
            Some(0.5),
            Some(0.95),
            Some(0.92),
            Some(0.99),
            Some(0.2),
        ]);
        // Steps 1–3 average 0.79; steps 2–4 average 0.953.
        assert_eq!(stop_step(&criterion, &run), Some(4));
        assert_eq!(stop_step(&criterion, &run[..4]), None);
        let strict = PredictionStability::new(3, 0.99).expect("valid");
        assert_eq!(stop_step(&strict, &run), None);
    }
}
