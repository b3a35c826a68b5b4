//! Dirichlet calibration (Kull et al. 2019, *Beyond temperature scaling*; baal's
//! `DirichletCalibrator`): a map `q = softmax(W ln p + b)` fitted on a held-out labelled split
//! and applied to every MC sample before the heuristic sees it.

use std::ops::Range;

use baal_bayesian::McSampler;
use burn::data::dataset::Dataset;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};
use crate::metrics::{EvalMetrics, classification_metrics};
use crate::traits::Predictor;

/// Smallest probability inside the logarithm: a sample that gives a class 0 maps to a finite
/// log-probability.
const MIN_PROBABILITY: f32 = 1e-12;

/// How a [`DirichletCalibrator`] is fitted: full-batch Adam on the negative log-likelihood of
/// the held-out labels, with Kull et al.'s ODIR penalty (off-diagonal and intercept
/// regularisation), starting from the identity map (`W = I`, `b = 0`: the model as it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirichletCalibratorConfig {
    /// λ: the penalty on the squared off-diagonal weights, divided by `C (C - 1)`.
    pub off_diagonal_penalty: f64,
    /// μ: the penalty on the squared intercepts, divided by `C`.
    pub intercept_penalty: f64,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// At most this many full-batch steps.
    pub max_steps: usize,
    /// Stop once the largest gradient entry is below this.
    pub tolerance: f64,
}

impl Default for DirichletCalibratorConfig {
    /// λ = μ = 0.01 (baal's default regularisation factor), Adam at 0.01, at most 2000 steps,
    /// tolerance 1e-5.
    fn default() -> Self {
        Self {
            off_diagonal_penalty: 0.01,
            intercept_penalty: 0.01,
            learning_rate: 0.01,
            max_steps: 2000,
            tolerance: 1e-5,
        }
    }
}

/// The metrics of the held-out split before and after calibration (MC-averaged predictions).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Held-out items the map was fitted on.
    pub items: usize,
    /// Metrics of the model's own predictions.
    pub before: EvalMetrics,
    /// Metrics of the calibrated predictions.
    pub after: EvalMetrics,
    /// Full-batch steps taken.
    pub steps: usize,
}

/// A fitted Dirichlet calibration map `q = softmax(W ln p + b)` over `C` classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirichletCalibrator {
    classes: usize,
    /// `W`, row-major `[C, C]`: row `i` gives class `i`'s logit.
    weights: Vec<f32>,
    /// `b`, `[C]`.
    bias: Vec<f32>,
}

impl DirichletCalibratorConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A negative or non-finite penalty, a learning rate that is not positive, no step.
    pub fn check(&self) -> Result<()> {
        for (what, value) in [
            (
                "calibration off-diagonal penalty",
                self.off_diagonal_penalty,
            ),
            ("calibration intercept penalty", self.intercept_penalty),
            ("calibration tolerance", self.tolerance),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ActiveError::InvalidConfig {
                    what,
                    reason: format!("must be a non-negative number, got {value}"),
                });
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ActiveError::InvalidConfig {
                what: "calibration learning rate",
                reason: format!("must be a positive number, got {}", self.learning_rate),
            });
        }
        if self.max_steps == 0 {
            return Err(ActiveError::InvalidConfig {
                what: "calibration steps",
                reason: "must be at least 1, got 0".into(),
            });
        }
        Ok(())
    }

    /// Fits the map on MC predictions `[N, C, T]` (row-major `probs`) of a held-out split
    /// whose classes are `labels`: on the MC-averaged probabilities, as baal does.
    ///
    /// # Errors
    /// Invalid settings, sizes that disagree, a label not below `C`, probabilities that are
    /// negative or not finite.
    pub fn fit(
        &self,
        probs: &[f32],
        dims: [usize; 3],
        labels: &[usize],
    ) -> Result<(DirichletCalibrator, CalibrationReport)> {
        self.check()?;
        let before = classification_metrics(probs, dims, labels)?;
        let [n, classes, iterations] = dims;
        if let Some(position) = probs.iter().position(|p| !(p.is_finite() && *p >= 0.0)) {
            return Err(ActiveError::InvalidConfig {
                what: "calibration predictions",
                reason: format!(
                    "item {} holds {}: probabilities must be finite and non-negative",
                    position / (classes * iterations),
                    probs[position]
                ),
            });
        }
        // ln of the MC-averaged probabilities, [N, C], in f64.
        let log_mean: Vec<f64> = probs
            .chunks(classes * iterations)
            .flat_map(|block| {
                block.chunks(iterations).map(|row| {
                    let mean = row.iter().map(|&p| f64::from(p)).sum::<f64>() / iterations as f64;
                    mean.max(f64::from(MIN_PROBABILITY)).ln()
                })
            })
            .collect();
        let (weights, bias, steps) = self.descend(&log_mean, n, classes, labels);
        let calibrator = DirichletCalibrator {
            classes,
            weights: weights.iter().map(|&w| w as f32).collect(),
            bias: bias.iter().map(|&b| b as f32).collect(),
        };
        let after = classification_metrics(&calibrator.apply_values(probs, dims)?, dims, labels)?;
        Ok((
            calibrator,
            CalibrationReport {
                items: n,
                before,
                after,
                steps,
            },
        ))
    }

    /// Full-batch Adam from the identity map; returns `W`, `b` and the steps taken.
    fn descend(
        &self,
        log_mean: &[f64],
        n: usize,
        classes: usize,
        labels: &[usize],
    ) -> (Vec<f64>, Vec<f64>, usize) {
        let c = classes;
        let mut params = vec![0.0f64; c * c + c];
        for i in 0..c {
            params[i * c + i] = 1.0;
        }
        let off_scale = if c > 1 {
            self.off_diagonal_penalty / (c * (c - 1)) as f64
        } else {
            0.0
        };
        let bias_scale = self.intercept_penalty / c as f64;
        let (beta1, beta2, epsilon) = (0.9f64, 0.999f64, 1e-8f64);
        let mut first = vec![0.0f64; params.len()];
        let mut second = vec![0.0f64; params.len()];
        let mut grad = vec![0.0f64; params.len()];
        let mut logits = vec![0.0f64; c];
        let mut steps = 0;
        for step in 1..=self.max_steps {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for (item, &label) in labels.iter().enumerate() {
                let x = &log_mean[item * c..(item + 1) * c];
                for (i, logit) in logits.iter_mut().enumerate() {
                    let row = &params[i * c..(i + 1) * c];
                    *logit = params[c * c + i] + row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
                }
                softmax_in_place(&mut logits);
                for (i, &q) in logits.iter().enumerate() {
                    // d(-ln q_y) / d z_i = q_i - [i = y], averaged over the items.
                    let delta = (q - f64::from(u8::from(i == label))) / n as f64;
                    for (g, v) in grad[i * c..(i + 1) * c].iter_mut().zip(x) {
                        *g += delta * v;
                    }
                    grad[c * c + i] += delta;
                }
            }
            for i in 0..c {
                for j in 0..c {
                    if i != j {
                        grad[i * c + j] += 2.0 * off_scale * params[i * c + j];
                    }
                }
                grad[c * c + i] += 2.0 * bias_scale * params[c * c + i];
            }
            steps = step;
            if grad.iter().all(|g| g.abs() < self.tolerance) {
                break;
            }
            let (correction1, correction2) =
                (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
            for (k, g) in grad.iter().enumerate() {
                first[k] = beta1 * first[k] + (1.0 - beta1) * g;
                second[k] = beta2 * second[k] + (1.0 - beta2) * g * g;
                params[k] -= self.learning_rate * (first[k] / correction1)
                    / ((second[k] / correction2).sqrt() + epsilon);
            }
        }
        let bias = params.split_off(c * c);
        (params, bias, steps)
    }
}

impl DirichletCalibrator {
    /// The identity map over `classes` classes (`W = I`, `b = 0`): predictions unchanged.
    pub fn identity(classes: usize) -> Self {
        let mut weights = vec![0.0; classes * classes];
        for i in 0..classes {
            weights[i * classes + i] = 1.0;
        }
        Self {
            classes,
            weights,
            bias: vec![0.0; classes],
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// `W`, row-major `[C, C]`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// `b`, `[C]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Calibrates every MC sample of `probs` `[N, C, T]` on its device:
    /// `q_t = softmax(W ln p_t + b)`.
    ///
    /// # Errors
    /// `C` is not the calibrator's number of classes.
    pub fn apply(&self, probs: Tensor<3>) -> Result<Tensor<3>> {
        let [n, classes, iterations] = probs.dims();
        self.check_classes(classes, [n, classes, iterations])?;
        let device = probs.device();
        let c = self.classes;
        // [C, C] transposed, so that rows [.., C] times it give W ln p.
        let weights_t =
            Tensor::<2>::from_data(TensorData::new(self.weights.clone(), [c, c]), &device)
                .transpose()
                .cast(probs.dtype());
        let bias = Tensor::<1>::from_data(TensorData::new(self.bias.clone(), [c]), &device)
            .cast(probs.dtype());
        let rows = probs
            .clamp_min(MIN_PROBABILITY)
            .log()
            .permute([0, 2, 1])
            .reshape([n * iterations, c]);
        let logits = rows.matmul(weights_t) + bias.unsqueeze_dim(0);
        Ok(softmax(logits, 1)
            .reshape([n, iterations, c])
            .permute([0, 2, 1]))
    }

    /// [`apply`](Self::apply) on host values `[N, C, T]` (row-major).
    ///
    /// # Errors
    /// The sizes disagree, or `C` is not the calibrator's number of classes.
    pub fn apply_values(&self, probs: &[f32], dims: [usize; 3]) -> Result<Vec<f32>> {
        let [n, classes, iterations] = dims;
        self.check_classes(classes, dims)?;
        if probs.len() != n * classes * iterations {
            return Err(ActiveError::ShapeMismatch {
                what: "calibration predictions",
                expected: format!("{n} × {classes} × {iterations} values"),
                got: vec![probs.len()],
            });
        }
        let c = classes;
        let mut out = vec![0.0f32; probs.len()];
        let mut log_p = vec![0.0f64; c];
        let mut logits = vec![0.0f64; c];
        for (block, out_block) in probs
            .chunks(c * iterations)
            .zip(out.chunks_mut(c * iterations))
        {
            for t in 0..iterations {
                for (j, slot) in log_p.iter_mut().enumerate() {
                    *slot = f64::from(block[j * iterations + t].max(MIN_PROBABILITY)).ln();
                }
                for (i, logit) in logits.iter_mut().enumerate() {
                    *logit = f64::from(self.bias[i])
                        + self.weights[i * c..(i + 1) * c]
                            .iter()
                            .zip(&log_p)
                            .map(|(&w, v)| f64::from(w) * v)
                            .sum::<f64>();
                }
                softmax_in_place(&mut logits);
                for (i, q) in logits.iter().enumerate() {
                    out_block[i * iterations + t] = *q as f32;
                }
            }
        }
        Ok(out)
    }

    fn check_classes(&self, classes: usize, dims: [usize; 3]) -> Result<()> {
        if classes == self.classes {
            return Ok(());
        }
        Err(ActiveError::ShapeMismatch {
            what: "calibrated predictions",
            expected: format!("[N, {} classes, T]", self.classes),
            got: dims.to_vec(),
        })
    }
}

/// Turns `logits` into their softmax, in place (shifted by the largest, so that no
/// exponential overflows).
fn softmax_in_place(logits: &mut [f64]) {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for z in logits.iter_mut() {
        *z = (*z - max).exp();
        total += *z;
    }
    for q in logits.iter_mut() {
        *q /= total;
    }
}

/// A [`Predictor`] whose MC samples pass through a [`DirichletCalibrator`] before anyone
/// (the loop's heuristic, `score_pool`, a shard) sees them.
pub struct CalibratedPredictor<P> {
    /// The model's predictor.
    pub predictor: P,
    /// The calibration map.
    pub calibrator: DirichletCalibrator,
}

impl<I, P: Predictor<I>> Predictor<I> for CalibratedPredictor<P> {
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        self.calibrator
            .apply(self.predictor.predict(sampler, items)?)
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        self.predictor
            .predict_chunks(sampler, items, &mut |range, probs| {
                on_chunk(range, self.calibrator.apply(probs)?)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[N, C, 1]` predictions that are over-confident: the predicted class has probability
    /// 0.97 but is right only 70% of the time.
    fn over_confident(n: usize) -> (Vec<f32>, Vec<usize>) {
        let classes = 3;
        let mut probs = Vec::with_capacity(n * classes);
        let mut labels = Vec::with_capacity(n);
        for item in 0..n {
            let predicted = item % classes;
            for c in 0..classes {
                probs.push(if c == predicted { 0.97 } else { 0.015 });
            }
            labels.push(if item % 10 < 7 {
                predicted
            } else {
                (predicted + 1) % classes
            });
        }
        (probs, labels)
    }

    #[test]
    fn calibration_fixes_over_confidence_and_keeps_accuracy() {
        let (probs, labels) = over_confident(600);
        let dims = [600, 3, 1];
        let (calibrator, report) = DirichletCalibratorConfig::default()
            .fit(&probs, dims, &labels)
            .expect("fits");
        // Uncalibrated: confidence 0.97 for 70% accuracy, ECE ≈ 0.27.
        assert!((report.before.ece - 0.27).abs() < 0.01, "{report:?}");
        assert!(report.after.ece < 0.03, "{report:?}");
        assert!(report.after.nll < report.before.nll - 0.5, "{report:?}");
        assert!((report.after.accuracy - report.before.accuracy).abs() < 1e-9);
        // The calibrated confidence of the predicted class is close to the 70% it earns.
        let calibrated = calibrator.apply_values(&probs, dims).expect("applies");
        assert!((calibrated[0] - 0.7).abs() < 0.03, "{}", calibrated[0]);
    }

    #[test]
    fn the_identity_map_changes_nothing_and_bad_input_is_refused() {
        let (probs, labels) = over_confident(30);
        let dims = [30, 3, 1];
        let same = DirichletCalibrator::identity(3)
            .apply_values(&probs, dims)
            .expect("applies");
        for (a, b) in same.iter().zip(&probs) {
            assert!((a - b).abs() < 1e-6);
        }
        let config = DirichletCalibratorConfig::default();
        assert!(config.fit(&probs, [30, 4, 1], &labels).is_err());
        let mut bad_labels = labels.clone();
        bad_labels[3] = 3;
        assert!(config.fit(&probs, dims, &bad_labels).is_err());
        let mut nan = probs.clone();
        nan[7] = f32::NAN;
        let error = config
            .fit(&nan, dims, &labels)
            .expect_err("NaN")
            .to_string();
        assert!(error.contains("item 2"), "{error}");
        for bad in [
            DirichletCalibratorConfig {
                learning_rate: 0.0,
                ..config.clone()
            },
            DirichletCalibratorConfig {
                off_diagonal_penalty: -1.0,
                ..config.clone()
            },
            DirichletCalibratorConfig {
                max_steps: 0,
                ..config.clone()
            },
        ] {
            assert!(bad.fit(&probs, dims, &labels).is_err(), "{bad:?}");
        }
        assert!(
            DirichletCalibrator::identity(4)
                .apply_values(&probs, dims)
                .is_err()
        );
    }
}
