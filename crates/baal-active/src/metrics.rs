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
    if probs.len() != n * classes * iterations || labels.len() != n || n == 0 {
        return Err(ActiveError::ShapeMismatch {
            what: "evaluation predictions",
            expected: format!("[{} items, C, T] with C, T ≥ 1", labels.len()),
            got: vec![n, classes, iterations],
        });
    }
    let mut loss = 0.0;
    let mut nll = 0.0;
    let mut correct = 0usize;
    let mut bins = [(0usize, 0.0f64, 0usize); ECE_BINS]; // (count, confidence sum, correct)
    let mut mean = vec![0.0f64; classes];
    for (item, &label) in labels.iter().enumerate() {
        if label >= classes {
            return Err(ActiveError::LabelOutOfRange {
                what: "test",
                index: item,
                label,
                classes,
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
