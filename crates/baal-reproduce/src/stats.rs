//! Statistics of learning curves: labels to a target, the area under the curve, and paired
//! differences to random acquisition with 95% intervals.

use baal::active::StepRecord;

use crate::profile::SummaryMetric;

/// First number of labels at which `records` reach `target` in `metric`.
pub fn labels_to_reach(
    records: &[StepRecord],
    metric: SummaryMetric,
    target: f64,
) -> Option<usize> {
    records
        .iter()
        .find(|r| metric.of(r) >= target)
        .map(|r| r.n_labelled)
}

/// The area under the learning curve divided by its steps: the mean of `metric` over the run
/// (the steps are equally spaced in labels). Less noisy than a first crossing.
pub fn mean_over_run(records: &[StepRecord], metric: SummaryMetric) -> f64 {
    records.iter().map(|r| metric.of(r)).sum::<f64>() / records.len().max(1) as f64
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95%).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        // Within 0.2% of the exact quantile beyond 30.
        _ => 1.960 + 2.4 / df as f64,
    }
}

/// A mean with its 95% confidence interval (Student's t over the values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The mean.
    pub mean: f64,
    /// Half the width of the 95% interval (infinite for one value).
    pub half_width: f64,
}

impl Interval {
    /// The mean of `values` and its 95% interval; `None` without values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let (mean, std) = mean_std(values);
        let n = values.len();
        let half_width = if n == 1 {
            f64::INFINITY
        } else {
            t_975(n - 1) * std / (n as f64).sqrt()
        };
        Some(Self { mean, half_width })
    }

    /// The interval's bounds.
    pub fn bounds(&self) -> (f64, f64) {
        (self.mean - self.half_width, self.mean + self.half_width)
    }
}

/// Labels needed to reach a target, or a lower bound when the run never reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels {
    /// Reached at this many labels.
    Reached(usize),
    /// Not reached within the budget: it would need more than the budget, so at least the
    /// budget plus one query.
    AtLeast(usize),
}

impl Labels {
    /// The labels `records` needed to reach `target` in `metric`, with `unreached` labels as
    /// the lower bound of a run that never got there.
    pub fn of(
        records: &[StepRecord],
        metric: SummaryMetric,
        target: f64,
        unreached: usize,
    ) -> Self {
        labels_to_reach(records, metric, target).map_or(Self::AtLeast(unreached), Self::Reached)
    }

    /// The number (exact or bound).
    pub fn value(self) -> usize {
        match self {
            Self::Reached(n) | Self::AtLeast(n) => n,
        }
    }
}

/// A difference whose terms may be bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Difference {
    /// Both terms exact.
    Exact(f64),
    /// The true difference is at most this (the subtracted term is a lower bound).
    AtMost(f64),
    /// The true difference is at least this (the first term is a lower bound).
    AtLeast(f64),
    /// Both terms are lower bounds: nothing is known.
    Unknown,
}

impl Difference {
    /// `a - b` for labels to a target.
    pub fn of_labels(a: Labels, b: Labels) -> Self {
        let d = a.value() as f64 - b.value() as f64;
        match (a, b) {
            (Labels::Reached(_), Labels::Reached(_)) => Self::Exact(d),
            (Labels::Reached(_), Labels::AtLeast(_)) => Self::AtMost(d),
            (Labels::AtLeast(_), Labels::Reached(_)) => Self::AtLeast(d),
            (Labels::AtLeast(_), Labels::AtLeast(_)) => Self::Unknown,
        }
    }

    /// Written with its bound: `-40`, `≤ -60`, `≥ 20`, `?`.
    pub fn render(self) -> String {
        match self {
            Self::Exact(d) => format!("{d:+.0}"),
            Self::AtMost(d) => format!("≤ {d:+.0}"),
            Self::AtLeast(d) => format!("≥ {d:+.0}"),
            Self::Unknown => "?".into(),
        }
    }
}

/// The mean of paired differences and its interval, with how it is bounded: `≤` when some
/// differences are upper bounds (and none lower bounds), `≥` the other way round; `None` when
/// bounds of both kinds or unknown differences are mixed in (the mean then says nothing).
pub fn summarise_differences(differences: &[Difference]) -> Option<(Option<char>, Interval)> {
    let mut values = Vec::with_capacity(differences.len());
    let (mut at_most, mut at_least) = (false, false);
    for d in differences {
        match *d {
            Difference::Exact(v) => values.push(v),
            Difference::AtMost(v) => {
                at_most = true;
                values.push(v);
            }
            Difference::AtLeast(v) => {
                at_least = true;
                values.push(v);
            }
            Difference::Unknown => return None,
        }
    }
    let bound = match (at_most, at_least) {
        (false, false) => None,
        (true, false) => Some('≤'),
        (false, true) => Some('≥'),
        (true, true) => return None,
    };
    Interval::of(&values).map(|interval| (bound, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(usize, f64)]) -> Vec<StepRecord> {
        points
            .iter()
            .enumerate()
            .map(|(step, &(n_labelled, test_accuracy))| StepRecord {
                step,
                n_labelled,
                test_accuracy,
                ..StepRecord::default()
            })
            .collect()
    }

    #[test]
    fn labels_are_first_crossings_or_lower_bounds() {
        let records = curve(&[(20, 0.50), (30, 0.76), (40, 0.74), (50, 0.80)]);
        let accuracy = SummaryMetric::Accuracy;
        assert_eq!(labels_to_reach(&records, accuracy, 0.75), Some(30));
        assert_eq!(
            Labels::of(&records, accuracy, 0.80, 60),
            Labels::Reached(50)
        );
        assert_eq!(
            Labels::of(&records, accuracy, 0.90, 60),
            Labels::AtLeast(60)
        );
        assert!((mean_over_run(&records, accuracy) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn intervals_use_students_t() {
        let interval = Interval::of(&[1.0, 2.0, 3.0]).expect("values");
        // mean 2, std 1, t(2) = 4.303: 2 ± 4.303 / √3.
        assert!((interval.mean - 2.0).abs() < 1e-12);
        assert!((interval.half_width - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!(Interval::of(&[5.0]).expect("one").half_width.is_infinite());
        assert!(Interval::of(&[]).is_none());
        assert!((t_975(60) - 2.000).abs() < 0.005);
    }

    #[test]
    fn differences_keep_their_bounds() {
        let reached = Labels::Reached(200);
        let missed = Labels::AtLeast(420);
        assert_eq!(
            Difference::of_labels(reached, missed),
            Difference::AtMost(-220.0)
        );
        assert_eq!(
            Difference::of_labels(missed, reached),
            Difference::AtLeast(220.0)
        );
        assert_eq!(Difference::of_labels(missed, missed), Difference::Unknown);
        assert_eq!(Difference::AtMost(-220.0).render(), "≤ -220");
        let (bound, interval) =
            summarise_differences(&[Difference::Exact(-100.0), Difference::AtMost(-220.0)])
                .expect("summary");
        assert_eq!(bound, Some('≤'));
        assert!((interval.mean + 160.0).abs() < 1e-9);
        assert!(
            summarise_differences(&[Difference::AtMost(-1.0), Difference::AtLeast(1.0)]).is_none()
        );
        assert!(summarise_differences(&[Difference::Unknown]).is_none());
    }
}
