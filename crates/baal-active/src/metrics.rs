//! Test-set metrics of a classifier's MC predictions.

use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};

/// Bins of the expected calibration error.
pub const ECE_BINS: usize = 10;

/// Smallest probability inside a logarithm, so that a confident mistake costs a finite loss.
const MIN_PROBABILITY: f64 = 1e-12;

/// Metrics of one evaluation on the test set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Mean cross-entropy of single MC samples: mean over items and iterations of
    /// `-ln p_t(y | x)`.
    pub loss: f64,
    /// Accuracy of the MC-averaged prediction `argmax_c mean_t p_t(c | x)`.
    pub accuracy: f64,
    /// Negative log-likelihood of the MC-averaged prediction: mean of `-ln mean_t p_t(y | x)`.
    pub nll: f64,
    /// Expected calibration error (Guo et al. 2017) of the MC-averaged prediction, with
    /// [`ECE_BINS`] equal-width confidence bins.
    pub ece: f64,
}

/// Mean intersection over union of `predicted` classes against the `truth` (per position of
/// a segmentation): for each of `classes` present in either, `TP / (TP + FP + FN)`, averaged
/// over those classes; 1 when nothing is present at all (both empty).
///
/// ```
/// use baal_active::mean_iou;
///
/// // Class 0: TP 1, FP 1, FN 0 → 1/2. Class 1: TP 1, FN 1 → 1/2. Class 2 absent.
/// assert_eq!(mean_iou(&[0, 0, 1], &[0, 1, 1], 3), 0.5);
/// ```
pub fn mean_iou(predicted: &[usize], truth: &[usize], classes: usize) -> f64 {
    let (mut intersection, mut union) = (vec![0usize; classes], vec![0usize; classes]);
    for (&p, &t) in predicted.iter().zip(truth) {
        if p == t {
            if let Some(i) = intersection.get_mut(p) {
                *i += 1;
            }
            if let Some(u) = union.get_mut(p) {
                *u += 1;
            }
        } else {
            for class in [p, t] {
                if let Some(u) = union.get_mut(class) {
                    *u += 1;
                }
            }
        }
    }
    let present: Vec<f64> = intersection
        .iter()
        .zip(&union)
        .filter(|&(_, &u)| u > 0)
        .map(|(&i, &u)| i as f64 / u as f64)
        .collect();
    if present.is_empty() {
        return 1.0;
    }
    present.iter().sum::<f64>() / present.len() as f64
}

/// Checks that `probs` holds `[N, C, T]` values for the `N` items of `labels`, each label
/// below `C`: what [`classification_metrics`] and [`classification_report`] need.
fn check_predictions(
    probs: &[f32],
    [n, classes, iterations]: [usize; 3],
    labels: &[usize],
) -> Result<()> {
    if probs.len() != n * classes * iterations || labels.len() != n || n == 0 {
        return Err(ActiveError::ShapeMismatch {
            what: "evaluation predictions",
            expected: format!("[{} items, C, T] with C, T ≥ 1", labels.len()),
            got: vec![n, classes, iterations],
        });
    }
    match labels.iter().position(|&label| label >= classes) {
        Some(index) => Err(ActiveError::LabelOutOfRange {
            what: "test",
            index,
            label: labels[index],
            classes,
        }),
        None => Ok(()),
    }
}

/// Computes [`EvalMetrics`] from probabilities laid out as `[N, C, T]` (row-major) and the
/// true class of each item.
///
/// # Errors
/// The sizes disagree, or a label is not below `C`.
pub fn classification_metrics(
    probs: &[f32],
    [n, classes, iterations]: [usize; 3],
    labels: &[usize],
) -> Result<EvalMetrics> {
    check_predictions(probs, [n, classes, iterations], labels)?;
    let mut loss = 0.0;
    let mut nll = 0.0;
    let mut correct = 0usize;
    let mut bins = [(0usize, 0.0f64, 0usize); ECE_BINS]; // (count, confidence sum, correct)
    let mut mean = vec![0.0f64; classes];
    for (item, &label) in labels.iter().enumerate() {
        let block = &probs[item * classes * iterations..(item + 1) * classes * iterations];
        for (c, slot) in mean.iter_mut().enumerate() {
            let row = &block[c * iterations..(c + 1) * iterations];
            *slot = row.iter().map(|&p| f64::from(p)).sum::<f64>() / iterations as f64;
        }
        let true_row = &block[label * iterations..(label + 1) * iterations];
        loss += true_row
            .iter()
            .map(|&p| -f64::from(p).max(MIN_PROBABILITY).ln())
            .sum::<f64>()
            / iterations as f64;
        nll -= mean[label].max(MIN_PROBABILITY).ln();
        let (predicted, confidence) =
            mean.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::MIN),
                    |best, (c, p)| if p > best.1 { (c, p) } else { best },
                );
        let hit = predicted == label;
        correct += usize::from(hit);
        let bin = ((confidence * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += usize::from(hit);
    }
    let nf = n as f64;
    let ece = bins
        .iter()
        .filter(|(count, ..)| *count > 0)
        .map(|&(count, confidence, hits)| {
            let count_f = count as f64;
            (count_f / nf) * (hits as f64 / count_f - confidence / count_f).abs()
        })
        .sum();
    Ok(EvalMetrics {
        loss: loss / nf,
        accuracy: correct as f64 / nf,
        nll: nll / nf,
        ece,
    })
}

/// One class's figures in a [`ClassificationReport`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Of the items predicted as this class, the share that are (0 when none is).
    pub precision: f64,
    /// Of the items of this class, the share predicted as it (0 when there is none).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are).
    pub f1: f64,
    /// Items of this class.
    pub support: usize,
    /// Area under the one-vs-rest precision-recall curve of the class's mean probability
    /// (average precision; 0 when the class has no item).
    pub pr_auc: f64,
    /// Expected calibration error of the class's mean probability against whether the item
    /// is of the class, over [`ECE_BINS`] equal-width bins (baal's per-class ECE).
    pub ece: f64,
}

/// Per-class precision, recall, F1, PR-AUC and ECE, their macro averages and top-k accuracy,
/// of MC predictions averaged over iterations (the metrics baal reports besides accuracy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// One entry per class, in class order.
    pub classes: Vec<ClassMetrics>,
    /// Unweighted mean of the classes' F1.
    pub macro_f1: f64,
    /// Unweighted mean of the classes' PR-AUC, over classes with at least one item.
    pub macro_pr_auc: f64,
    /// `(k, accuracy)`: the share of items whose label is among the `k` most probable classes
    /// (ties broken by class order), for each `k` asked.
    pub top_k_accuracy: Vec<(usize, f64)>,
}

impl ClassificationReport {
    /// Balanced accuracy: the unweighted mean of the classes' recall, over the classes with
    /// at least one item (each class counts the same, however many items it has; scikit-learn's
    /// `balanced_accuracy_score`). 0 when no class has an item.
    #[must_use]
    pub fn balanced_accuracy(&self) -> f64 {
        self.mean_recall(|_| true)
    }

    /// The unweighted mean recall of the classes `keep` accepts, over those with at least one
    /// item (e.g. the recall of a few rare classes); 0 when none has an item.
    #[must_use]
    pub fn mean_recall(&self, keep: impl Fn(usize) -> bool) -> f64 {
        let recalls: Vec<f64> = self
            .classes
            .iter()
            .enumerate()
            .filter(|(class, metrics)| metrics.support > 0 && keep(*class))
            .map(|(_, metrics)| metrics.recall)
            .collect();
        if recalls.is_empty() {
            0.0
        } else {
            recalls.iter().sum::<f64>() / recalls.len() as f64
        }
    }
}

/// The [`ClassificationReport`] of predictions `[n, classes, iterations]` (row-major, as
/// [`classification_metrics`] takes them) against `labels`, with top-k accuracy for each of
/// `top_k`.
///
/// # Errors
/// As [`classification_metrics`], and a `k` of 0.
pub fn classification_report(
    probs: &[f32],
    [n, classes, iterations]: [usize; 3],
    labels: &[usize],
    top_k: &[usize],
) -> Result<ClassificationReport> {
    check_predictions(probs, [n, classes, iterations], labels)?;
    if let Some(&k) = top_k.iter().find(|&&k| k == 0) {
        return Err(ActiveError::InvalidConfig {
            what: "top-k accuracy",
            reason: format!("k must be at least 1, got {k}"),
        });
    }
    let mean = mean_probabilities(probs, [n, classes, iterations]);
    let order = class_orders(&mean, classes);
    let per_class: Vec<ClassMetrics> = (0..classes)
        .map(|c| class_metrics(c, &mean, &order, labels))
        .collect();
    let macro_f1 = per_class.iter().map(|m| m.f1).sum::<f64>() / classes as f64;
    let present: Vec<&ClassMetrics> = per_class.iter().filter(|m| m.support > 0).collect();
    let macro_pr_auc = present.iter().map(|m| m.pr_auc).sum::<f64>() / present.len().max(1) as f64;
    let top_k_accuracy = top_k
        .iter()
        .map(|&k| {
            let hits = order
                .iter()
                .zip(labels)
                .filter(|(o, l)| o.iter().take(k).any(|c| c == *l))
                .count();
            (k, hits as f64 / n as f64)
        })
        .collect();
    Ok(ClassificationReport {
        classes: per_class,
        macro_f1,
        macro_pr_auc,
        top_k_accuracy,
    })
}

/// Each item's probabilities averaged over the MC iterations: `[n][classes]` from
/// `[n, classes, iterations]`.
fn mean_probabilities(probs: &[f32], [n, classes, iterations]: [usize; 3]) -> Vec<Vec<f64>> {
    (0..n)
        .map(|item| {
            let block = &probs[item * classes * iterations..(item + 1) * classes * iterations];
            (0..classes)
                .map(|c| {
                    block[c * iterations..(c + 1) * iterations]
                        .iter()
                        .map(|&p| f64::from(p))
                        .sum::<f64>()
                        / iterations as f64
                })
                .collect()
        })
        .collect()
}

/// Each item's classes by decreasing mean probability, ties in class order.
fn class_orders(mean: &[Vec<f64>], classes: usize) -> Vec<Vec<usize>> {
    mean.iter()
        .map(|row| {
            let mut order: Vec<usize> = (0..classes).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            order
        })
        .collect()
}

/// Class `c`'s figures, from the items' mean probabilities, their class orders and labels.
fn class_metrics(
    c: usize,
    mean: &[Vec<f64>],
    order: &[Vec<usize>],
    labels: &[usize],
) -> ClassMetrics {
    let support = labels.iter().filter(|&&l| l == c).count();
    let predicted = order.iter().filter(|o| o[0] == c).count();
    let hits = order
        .iter()
        .zip(labels)
        .filter(|(o, l)| o[0] == c && **l == c)
        .count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(hits, predicted), ratio(hits, support));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    ClassMetrics {
        precision,
        recall,
        f1,
        support,
        pr_auc: average_precision(c, mean, labels, support),
        ece: class_ece(c, mean, labels),
    }
}

/// Class `c`'s one-vs-rest average precision: items by decreasing probability of `c`, ties
/// in item order; 0 when the class has no item (`support`).
fn average_precision(c: usize, mean: &[Vec<f64>], labels: &[usize], support: usize) -> f64 {
    let mut ranked: Vec<usize> = (0..mean.len()).collect();
    ranked.sort_by(|&a, &b| mean[b][c].total_cmp(&mean[a][c]).then(a.cmp(&b)));
    let mut found = 0usize;
    let mut sum = 0.0;
    for (rank, &item) in ranked.iter().enumerate() {
        if labels[item] == c {
            found += 1;
            sum += found as f64 / (rank + 1) as f64;
        }
    }
    if support == 0 {
        0.0
    } else {
        sum / support as f64
    }
}

/// Class `c`'s expected calibration error: its mean probability against whether the item is
/// of the class, over [`ECE_BINS`] equal-width bins.
fn class_ece(c: usize, mean: &[Vec<f64>], labels: &[usize]) -> f64 {
    let n = mean.len();
    let mut bins = [(0usize, 0.0f64, 0usize); ECE_BINS];
    for (row, &label) in mean.iter().zip(labels) {
        let p = row[c];
        let bin = ((p * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += p;
        bins[bin].2 += usize::from(label == c);
    }
    bins.iter()
        .filter(|(count, ..)| *count > 0)
        .map(|&(count, confidence, positives)| {
            let count_f = count as f64;
            (count_f / n as f64) * (positives as f64 / count_f - confidence / count_f).abs()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_iou_by_hand() {
        // Class 0: TP 2, FP 1, FN 0 → 2/3; class 1: TP 1, FP 0, FN 1 → 1/2; mean 7/12.
        let iou = mean_iou(&[0, 0, 0, 1], &[0, 0, 1, 1], 3);
        assert!((iou - 7.0 / 12.0).abs() < 1e-12, "{iou}");
        assert_eq!(mean_iou(&[1, 1], &[1, 1], 2), 1.0);
        assert_eq!(mean_iou(&[0, 1], &[1, 0], 2), 0.0);
        assert_eq!(mean_iou(&[], &[], 2), 1.0);
    }

    #[test]
    fn perfect_and_wrong_predictions() -> Result<()> {
        // Two items, two classes, one iteration: item 0 sure of class 0, item 1 sure of class 0.
        let probs = [1.0, 0.0, 1.0, 0.0];
        let m = classification_metrics(&probs, [2, 2, 1], &[0, 1])?;
        assert_eq!(m.accuracy, 0.5);
        assert!((m.ece - 0.5).abs() < 1e-12, "ece {}", m.ece);
        assert!((m.nll - (-MIN_PROBABILITY.ln()) / 2.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn loss_of_samples_exceeds_nll_of_the_average() -> Result<()> {
        // One item, two classes, two iterations that disagree: [p_t(0)] = [0.9, 0.1].
        let probs = [0.9, 0.1, 0.1, 0.9];
        let m = classification_metrics(&probs, [1, 2, 2], &[0])?;
        assert!((m.nll - (0.5f64).ln().abs()).abs() < 1e-6);
        assert!(m.loss > m.nll);
        Ok(())
    }

    #[test]
    fn bad_label_is_an_error() {
        let err = classification_metrics(&[0.5, 0.5], [1, 2, 1], &[3]);
        assert!(matches!(
            err,
            Err(ActiveError::LabelOutOfRange { label: 3, .. })
        ));
    }

    #[test]
    fn the_classification_report_matches_hand_counts() {
        // 4 items, 3 classes, 1 iteration: predictions 0, 1, 1, 2; labels 0, 1, 2, 2.
        let probs = [
            0.7, 0.2, 0.1, // item 0: class 0 (right)
            0.1, 0.8, 0.1, // item 1: class 1 (right)
            0.1, 0.5, 0.4, // item 2: class 1 (wrong: 2, second choice)
            0.2, 0.1, 0.7, // item 3: class 2 (right)
        ];
        let labels = [0, 1, 2, 2];
        let report = classification_report(&probs, [4, 3, 1], &labels, &[1, 2, 3]).expect("report");
        let class = |c: usize| report.classes[c];
        assert_eq!(class(0).support, 1);
        assert_eq!((class(0).precision, class(0).recall), (1.0, 1.0));
        // Class 1: predicted twice, right once; its only item found.
        assert_eq!((class(1).precision, class(1).recall), (0.5, 1.0));
        assert!((class(1).f1 - 2.0 / 3.0).abs() < 1e-12);
        // Class 2: predicted once (right), 2 items.
        assert_eq!((class(2).precision, class(2).recall), (1.0, 0.5));
        // Class 2's probabilities rank items 3 (0.7), 2 (0.4), 0 and 1: both positives first.
        assert!((class(2).pr_auc - 1.0).abs() < 1e-12);
        // Class 1's rank items 1 (0.8) then 2 (0.5, a negative): AP = 1.
        assert!((class(1).pr_auc - 1.0).abs() < 1e-12);
        assert_eq!(report.top_k_accuracy, vec![(1, 0.75), (2, 1.0), (3, 1.0)]);
        // Recalls 1, 1 and 0.5: balanced accuracy 5/6 where plain accuracy is 3/4.
        assert!((report.balanced_accuracy() - 2.5 / 3.0).abs() < 1e-12);
        assert!((report.mean_recall(|c| c == 2) - 0.5).abs() < 1e-12);
        assert!((report.mean_recall(|c| c != 2) - 1.0).abs() < 1e-12);
        let macro_f1 = (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0;
        assert!((report.macro_f1 - macro_f1).abs() < 1e-12);
        // Per-class ECE of class 0: bins of p(0) = 0.7 (label 0: 1), 0.1, 0.1 (no), 0.2 (no):
        // |1 - 0.7|/4 + |0 - 0.1|·2/4 + |0 - 0.2|/4 = 0.075 + 0.05 + 0.05.
        assert!((class(0).ece - 0.175).abs() < 1e-6, "{}", class(0).ece);
        assert!(classification_report(&probs, [4, 3, 1], &labels, &[0]).is_err());
        assert!(classification_report(&probs, [4, 3, 1], &[0, 1, 5, 2], &[1]).is_err());
    }
}
