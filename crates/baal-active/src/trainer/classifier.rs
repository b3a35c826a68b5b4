//! What only a classifier's trainer does: validation metrics (early stopping), calibration,
//! evaluation on a test set, and MC predictions as a [`Predictor`].

use std::ops::Range;
use std::sync::Arc;

use baal_bayesian::McSampler;
use burn::data::dataset::Dataset;
use burn::tensor::Tensor;

use super::{ModelPredictor, Trainer, Validation};
use crate::calibration::{CalibrationReport, DirichletCalibrator, DirichletCalibratorConfig};
use crate::ensemble::{EnsemblePredictor, member_sampler};
use crate::error::{ActiveError, Result};
use crate::metrics::{EvalMetrics, classification_metrics};
use crate::traits::{Classifier, Predictor};

/// What only a classifier's trainer does: validation metrics (early stopping), calibration,
/// evaluation on a test set, and MC predictions as a [`Predictor`].
impl<M, I> Trainer<M, I>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
{
    /// After each fit, fits a Dirichlet calibration map ([`DirichletCalibratorConfig`]) on
    /// the validation set ([`Trainer::with_validation`], which fits then need) and passes
    /// every prediction through it: the pool's MC samples before the heuristic, the test
    /// set's before its metrics. The fit's report holds the validation metrics before and
    /// after ([`FitReport::calibration`](super::FitReport::calibration)).
    ///
    /// # Errors
    /// Invalid settings.
    pub fn with_calibration(mut self, config: DirichletCalibratorConfig) -> Result<Self> {
        config.check()?;
        self.calibration = Some(config);
        self.after_fit = Some(Self::calibrate);
        Ok(self)
    }

    /// The calibration map fitted after the last fit, if calibration is on.
    pub fn calibrator(&self) -> Option<&DirichletCalibrator> {
        self.calibrator.as_ref()
    }

    /// Holds out `items` (labelled, never in the pool) for early stopping; `label_of` reads
    /// each item's class.
    ///
    /// # Errors
    /// The set is empty, an item cannot be read, or a label is not below the model's number
    /// of classes.
    pub fn with_validation(
        mut self,
        items: Arc<dyn Dataset<I>>,
        label_of: &dyn Fn(&I) -> usize,
    ) -> Result<Self> {
        let labels = read_labels(
            items.as_ref(),
            label_of,
            "validation set",
            self.model().num_classes(),
        )?;
        self.validation = Some(Validation {
            items,
            labels,
            metrics: Self::validate,
        });
        Ok(self)
    }

    /// Fits the calibration map on the validation set's predictions, when calibration is on.
    fn calibrate(&mut self) -> Result<Option<CalibrationReport>> {
        self.calibrator = None;
        let (Some(config), Some(validation)) = (&self.calibration, &self.validation) else {
            return Ok(None);
        };
        let (values, dims) =
            host_values(self.predict(&self.eval_sampler()?, validation.items.as_ref())?)?;
        let (calibrator, report) = config.fit(&values, dims, &validation.labels)?;
        self.calibrator = Some(calibrator);
        Ok(Some(report))
    }

    /// Metrics of `model`'s MC-averaged predictions on the validation set (fixed masks, so
    /// that checks compare weights, not mask draws).
    fn validate(&self, model: &M, validation: &Validation<M, I>) -> Result<EvalMetrics> {
        let sampler = member_sampler(
            &self.eval_sampler()?,
            self.models.len() == 1 || self.ensemble_mc,
        );
        let probs = self
            .inference_predictor(model)
            .sample(&sampler, validation.items.as_ref())?;
        metrics_of(probs, &validation.labels)
    }

    /// Loss, accuracy, NLL and ECE on `test`, averaging `eval_iterations` MC samples;
    /// `label_of` reads each item's class.
    ///
    /// # Errors
    /// The test set is empty, an item cannot be read, a label is out of range.
    pub fn evaluate(
        &self,
        test: &dyn Dataset<I>,
        label_of: &dyn Fn(&I) -> usize,
    ) -> Result<EvalMetrics> {
        let (values, dims, labels) = self.test_predictions(test, label_of)?;
        classification_metrics(&values, dims, &labels)
    }

    /// [`evaluate`](Self::evaluate)'s metrics and, from the same predictions, the
    /// [`ClassificationReport`](crate::ClassificationReport): per-class precision, recall,
    /// F1, PR-AUC and ECE, and top-k accuracy for each of `top_k`.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate), and a `k` of 0.
    pub fn evaluate_report(
        &self,
        test: &dyn Dataset<I>,
        label_of: &dyn Fn(&I) -> usize,
        top_k: &[usize],
    ) -> Result<(EvalMetrics, crate::ClassificationReport)> {
        let (values, dims, labels) = self.test_predictions(test, label_of)?;
        Ok((
            classification_metrics(&values, dims, &labels)?,
            crate::metrics::classification_report(&values, dims, &labels, top_k)?,
        ))
    }

    /// The MC predictions `[N, C, T]` that [`evaluate`](Self::evaluate) scores, on the host,
    /// with the test labels.
    pub(crate) fn test_predictions(
        &self,
        test: &dyn Dataset<I>,
        label_of: &dyn Fn(&I) -> usize,
    ) -> Result<(Vec<f32>, [usize; 3], Vec<usize>)> {
        let labels = read_labels(test, label_of, "test set", self.model().num_classes())?;
        let (values, dims) = host_values(self.predict(&self.eval_sampler()?, test)?)?;
        Ok((values, dims, labels))
    }

    /// The members as an [`EnsemblePredictor`] of their inference forms.
    fn ensemble_predictor(&self) -> EnsemblePredictor<ModelPredictor<M, I>> {
        let members = self
            .models
            .iter()
            .map(|model| self.inference_predictor(model))
            .collect();
        EnsemblePredictor::from_members(members, self.ensemble_mc)
            .with_window(self.config.eval_batch_size)
    }
}

/// An ensemble's predictions stack its members along the MC axis: `[N, C, E × T]` with
/// [`Trainer::with_ensemble_mc`], `[N, C, E]` without (each member's deterministic
/// prediction); column `e × T + t` is member `e`'s sample `t`.
impl<M, I> Predictor<I> for Trainer<M, I>
where
    M: Classifier,
    I: Clone + Send + Sync + 'static,
{
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        let probs = if self.models.len() == 1 {
            self.inference_predictor(self.model())
                .sample(sampler, items)?
        } else {
            self.ensemble_predictor().predict(sampler, items)?
        };
        match &self.calibrator {
            Some(calibrator) => calibrator.apply(probs),
            None => Ok(probs),
        }
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        let mut calibrated = |range: Range<usize>, probs: Tensor<3>| match &self.calibrator {
            Some(calibrator) => on_chunk(range, calibrator.apply(probs)?),
            None => on_chunk(range, probs),
        };
        if self.models.len() > 1 {
            return self
                .ensemble_predictor()
                .predict_chunks(sampler, items, &mut calibrated);
        }
        self.inference_predictor(self.model())
            .sample_chunks(sampler, items, &mut calibrated)
    }

    /// The embeddings of the (first) model; calibration changes probabilities only.
    fn embed_chunks(
        &self,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<2>) -> Result<()>,
    ) -> Result<()> {
        self.inference_predictor(self.model())
            .embed_chunks(items, on_chunk)
    }
}

/// The class of every item of `set`, each checked against the number of classes.
fn read_labels<I>(
    set: &dyn Dataset<I>,
    label_of: &dyn Fn(&I) -> usize,
    what: &'static str,
    classes: usize,
) -> Result<Vec<usize>> {
    if set.is_empty() {
        return Err(ActiveError::Empty { what });
    }
    (0..set.len())
        .map(|index| {
            let item = set.get(index).map_err(|e| ActiveError::Item {
                what,
                index,
                message: e.to_string(),
            })?;
            let label = label_of(&item);
            if label >= classes {
                return Err(ActiveError::LabelOutOfRange {
                    what,
                    index,
                    label,
                    classes,
                });
            }
            Ok(label)
        })
        .collect()
}

/// Metrics of MC probabilities `[N, C, T]` against `labels`.
fn metrics_of(probs: Tensor<3>, labels: &[usize]) -> Result<EvalMetrics> {
    let (values, dims) = host_values(probs)?;
    classification_metrics(&values, dims, labels)
}

/// MC probabilities `[N, C, T]` read back to the host, with their shape.
fn host_values(probs: Tensor<3>) -> Result<(Vec<f32>, [usize; 3])> {
    let dims = probs.dims();
    let values = probs
        .try_into_vec_as::<f32>()
        .map_err(|e| ActiveError::InvalidConfig {
            what: "evaluation predictions",
            reason: format!("cannot read them back from the device: {e:?}"),
        })?;
    Ok((values, dims))
}
