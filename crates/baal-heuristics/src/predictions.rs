//! Validated model predictions, the input of every heuristic.

use std::sync::Arc;

use burn::tensor::{Bool, Device, Int, Tensor, activation::softmax};

use crate::error::{HeuristicError, Result};
use crate::kernels::{self, Layout};
use crate::reduction::{Reduction, SUM_TOLERANCE};

/// What the values of a [`Predictions`] are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictionKind {
    /// Class probabilities: in [0, 1], summing to one over the class axis.
    Probabilities,
    /// Raw regression outputs (the class axis holds the outputs); only some heuristics apply.
    Regression,
}

/// Default bound, in bytes, on the temporaries a heuristic allocates at once while it scores
/// a [`Predictions`] ([`Predictions::memory_budget`]); not the MC sampler's budget.
pub const DEFAULT_SCORING_MEMORY_BUDGET: usize = 64 << 20;

/// MC predictions of a model on a pool, validated once and then scored by any heuristic.
///
/// Stored as `[N, C, P, T]`: pool items, classes (or regression outputs), positions
/// (1 for plain classification) and MC iterations. The tensor stays on its device; heuristics
/// stream over it in chunks of items bounded by [`Predictions::memory_budget`].
#[derive(Clone, Debug)]
pub struct Predictions {
    values: Tensor<4>,
    /// A host copy of `values` when they live on the CPU `flex` backend, for fused kernels.
    host: Option<Arc<Vec<f32>>>,
    kind: PredictionKind,
    reduction: Reduction,
    memory_budget: usize,
}

impl Predictions {
    /// Validates class probabilities of shape `[N, C, T]`.
    ///
    /// # Errors
    /// An empty axis, a non-finite value, a value outside [0, 1], or a sum over classes farther
    /// than [`SUM_TOLERANCE`] from one; the error names the first offending item.
    pub fn from_probs(probs: Tensor<3>) -> Result<Self> {
        Self::from_segmentation_probs(Self::with_position_axis(probs), Reduction::None)
    }

    /// Applies a softmax over the classes of logits `[N, C, T]`.
    ///
    /// # Errors
    /// An empty axis or a non-finite logit.
    pub fn from_logits(logits: Tensor<3>) -> Result<Self> {
        Self::from_segmentation_logits(Self::with_position_axis(logits), Reduction::None)
    }

    /// Validates class probabilities `[N, C, P, T]` with a position axis (segmentation,
    /// sequence labelling), whose per-position scores `reduction` folds into one per item.
    ///
    /// # Errors
    /// As [`Predictions::from_probs`], and [`Reduction::None`] with more than one position.
    pub fn from_segmentation_probs(probs: Tensor<4>, reduction: Reduction) -> Result<Self> {
        let predictions = Self::new(probs, PredictionKind::Probabilities, reduction)?;
        predictions.check_probabilities()?;
        Ok(predictions)
    }

    /// Applies a softmax over the classes of logits `[N, C, P, T]`.
    ///
    /// # Errors
    /// As [`Predictions::from_logits`], and [`Reduction::None`] with more than one position.
    pub fn from_segmentation_logits(logits: Tensor<4>, reduction: Reduction) -> Result<Self> {
        Self::new(logits.clone(), PredictionKind::Probabilities, reduction)?.check_finite()?;
        Self::new(softmax(logits, 1), PredictionKind::Probabilities, reduction)
    }

    /// Wraps raw regression outputs `[N, O, T]` (O outputs, T MC iterations) for heuristics
    /// that do not need probabilities, such as [`crate::Variance`].
    ///
    /// # Errors
    /// An empty axis or a non-finite value.
    pub fn from_regression(outputs: Tensor<3>) -> Result<Self> {
        let predictions = Self::new(
            Self::with_position_axis(outputs),
            PredictionKind::Regression,
            Reduction::None,
        )?;
        predictions.check_finite()?;
        Ok(predictions)
    }

    /// Sets the bound, in bytes, on the temporaries a heuristic allocates at once (at least
    /// one item is processed at a time, whatever the bound).
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes.max(1);
        self
    }

    /// Turns the fused CPU kernels on or off. They are on by default when the predictions
    /// live on the CPU `flex` backend (at the cost of one host copy of the predictions) and
    /// give the same scores as the tensor path, which every other backend uses.
    ///
    /// # Errors
    /// Reading the predictions back from the device fails.
    pub fn with_host_kernels(mut self, enabled: bool) -> Result<Self> {
        self.host = match (enabled, self.host.take()) {
            (false, _) => None,
            (true, Some(host)) => Some(host),
            (true, None) if kernels::apply_to(&self.values.device()) => {
                Some(Arc::new(self.values.clone().try_into_vec_as::<f32>()?))
            }
            (true, None) => None,
        };
        Ok(self)
    }

    /// Whether the fused CPU kernels are used (see [`Predictions::with_host_kernels`]).
    pub fn uses_host_kernels(&self) -> bool {
        self.host.is_some()
    }

    fn with_position_axis(values: Tensor<3>) -> Tensor<4> {
        let [n, c, t] = values.dims();
        values.reshape([n, c, 1, t])
    }

    fn new(values: Tensor<4>, kind: PredictionKind, reduction: Reduction) -> Result<Self> {
        let dims = values.dims();
        if dims.contains(&0) {
            return Err(HeuristicError::ShapeMismatch {
                what: "predictions",
                expected: "[N, C, T] (or [N, C, P, T]) with no empty axis".into(),
                got: Self::user_shape(dims),
            });
        }
        if reduction == Reduction::None && dims[2] > 1 {
            return Err(HeuristicError::InvalidParameter {
                name: "reduction",
                reason: format!(
                    "predictions have {} positions per item; choose Mean, Sum or Max to fold them",
                    dims[2]
                ),
            });
        }
        let host = if kernels::apply_to(&values.device()) {
            Some(Arc::new(values.clone().try_into_vec_as::<f32>()?))
        } else {
            None
        };
        Ok(Self {
            values,
            host,
            kind,
            reduction,
            memory_budget: DEFAULT_SCORING_MEMORY_BUDGET,
        })
    }

    /// The values in host memory with their layout, when the device is the CPU backend.
    pub(crate) fn host(&self) -> Option<(&[f32], Layout)> {
        let [_, classes, positions, iterations] = self.values.dims();
        self.host.as_deref().map(|values| {
            (
                values.as_slice(),
                Layout {
                    classes,
                    positions,
                    iterations,
                },
            )
        })
    }

    fn user_shape(dims: [usize; 4]) -> Vec<usize> {
        if dims[2] == 1 {
            vec![dims[0], dims[1], dims[3]]
        } else {
            dims.to_vec()
        }
    }

    /// Number of pool items N.
    pub fn len(&self) -> usize {
        self.values.dims()[0]
    }

    /// Always false: empty predictions are rejected at construction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes (or regression outputs) C.
    pub fn n_classes(&self) -> usize {
        self.values.dims()[1]
    }

    /// Number of positions P per item (1 for `[N, C, T]` input).
    pub fn n_positions(&self) -> usize {
        self.values.dims()[2]
    }

    /// Number of MC iterations T.
    pub fn n_iterations(&self) -> usize {
        self.values.dims()[3]
    }

    /// The values, `[N, C, P, T]`.
    pub fn values(&self) -> &Tensor<4> {
        &self.values
    }

    /// What the values are.
    pub fn kind(&self) -> PredictionKind {
        self.kind
    }

    /// How per-position scores fold into one per item.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The bound, in bytes, on temporaries a heuristic allocates at once.
    pub fn memory_budget(&self) -> usize {
        self.memory_budget
    }

    /// The device the values live on.
    pub fn device(&self) -> Device {
        self.values.device()
    }

    /// Scores per item with the fused CPU `kernel` when the values are on the host, else reads
    /// back what `tensor_path` computes on the device.
    pub(crate) fn host_or_tensor_scores(
        &self,
        kernel: kernels::Kernel,
        tensor_path: impl FnOnce() -> Result<Tensor<1>>,
    ) -> Result<Vec<f32>> {
        match self.host() {
            Some((values, layout)) => {
                Ok(kernels::score_items(values, layout, self.reduction, kernel))
            }
            None => Ok(tensor_path()?.try_into_vec_as::<f32>()?),
        }
    }

    /// Errors unless these are class probabilities (for heuristics built on entropies).
    pub(crate) fn require_probabilities(&self, heuristic: &'static str) -> Result<()> {
        match self.kind {
            PredictionKind::Probabilities => Ok(()),
            PredictionKind::Regression => Err(HeuristicError::NeedsProbabilities { heuristic }),
        }
    }

    /// Errors when the predictions have a position axis (P > 1).
    pub(crate) fn require_no_positions(&self, heuristic: &'static str) -> Result<()> {
        match self.n_positions() {
            1 => Ok(()),
            positions => Err(HeuristicError::PositionsUnsupported {
                heuristic,
                positions,
            }),
        }
    }

    /// Number of items per chunk so that `temporaries` copies of a chunk fit the budget.
    pub(crate) fn chunk_len(&self, temporaries: usize) -> usize {
        let [n, c, p, t] = self.values.dims();
        let bytes_per_item = c * p * t * 4 * temporaries.max(1);
        (self.memory_budget / bytes_per_item).clamp(1, n)
    }

    /// Item ranges `(start, len)` covering the pool in chunks of `chunk_len` items.
    pub(crate) fn chunk_ranges(&self, chunk_len: usize) -> impl Iterator<Item = (usize, usize)> {
        let n = self.len();
        (0..n)
            .step_by(chunk_len)
            .map(move |start| (start, chunk_len.min(n - start)))
    }

    /// Computes one score per item: `per_position` maps a chunk `[n, C, P, T]` to scores
    /// `[n, P]`, which the reduction folds; the chunks are concatenated into `[N]`.
    pub(crate) fn score_items(
        &self,
        temporaries: usize,
        per_position: impl Fn(Tensor<4>) -> Tensor<2>,
    ) -> Tensor<1> {
        let chunk_len = self.chunk_len(temporaries);
        let chunks: Vec<Tensor<1>> = self
            .chunk_ranges(chunk_len)
            .map(|(start, len)| {
                let chunk = self.values.clone().narrow(0, start, len);
                self.reduction.apply(per_position(chunk))
            })
            .collect();
        Tensor::cat(chunks, 0)
    }

    fn check_finite(&self) -> Result<()> {
        if let Some((values, layout)) = self.host() {
            return kernels::first_non_finite(values, layout)
                .map_or(Ok(()), |item| Err(HeuristicError::NonFinite { item }));
        }
        self.find_first_bad_item(|chunk| {
            let [n, ..] = chunk.dims();
            chunk
                .sum_dim(3)
                .sum_dim(2)
                .sum_dim(1)
                .reshape([n])
                .is_finite()
                .bool_not()
        })?
        .map_or(Ok(()), |item| Err(HeuristicError::NonFinite { item }))
    }

    fn check_probabilities(&self) -> Result<()> {
        let upper = 1.0 + f32::EPSILON * 4.0;
        if let Some((values, layout)) = self.host() {
            return match kernels::first_invalid_probabilities(values, layout, upper) {
                None => Ok(()),
                Some(item) => Err(self.diagnose_item(item, upper)?),
            };
        }
        let bad = self.find_first_bad_item(|chunk| {
            let [n, c, p, t] = chunk.dims();
            let flat = chunk.clone().reshape([n, c * p * t]);
            let non_finite = flat.clone().sum_dim(1).is_finite().bool_not();
            let below = flat.clone().min_dim(1).lower_elem(0.0);
            let above = flat.max_dim(1).greater_elem(upper);
            let deviation = (chunk.sum_dim(1) - 1.0)
                .abs()
                .reshape([n, p * t])
                .max_dim(1)
                .greater_elem(SUM_TOLERANCE);
            non_finite
                .bool_or(below)
                .bool_or(above)
                .bool_or(deviation)
                .reshape([n])
        })?;
        match bad {
            None => Ok(()),
            Some(item) => Err(self.diagnose_item(item, upper)?),
        }
    }

    /// Reads one item back to the host to say exactly what is wrong with it.
    fn diagnose_item(&self, item: usize, upper: f32) -> Result<HeuristicError> {
        let [_, c, p, t] = self.values.dims();
        let values: Vec<f32> = self
            .values
            .clone()
            .narrow(0, item, 1)
            .try_into_vec_as::<f32>()?;
        let at = |class: usize, pt: usize| values[class * p * t + pt];
        for pt in 0..p * t {
            for class in 0..c {
                let value = at(class, pt);
                if !value.is_finite() {
                    return Ok(HeuristicError::NonFinite { item });
                }
                if !(0.0..=upper).contains(&value) {
                    return Ok(HeuristicError::ProbabilityOutOfRange {
                        item,
                        class,
                        iteration: pt % t,
                        value,
                    });
                }
            }
        }
        for pt in 0..p * t {
            let sum: f32 = (0..c).map(|class| at(class, pt)).sum();
            if (sum - 1.0).abs() > SUM_TOLERANCE {
                return Ok(HeuristicError::NotNormalised {
                    item,
                    iteration: pt,
                    sum,
                    tolerance: SUM_TOLERANCE,
                });
            }
        }
        Err(HeuristicError::Read(format!(
            "item {item} was flagged invalid on the device but looks valid on the host"
        )))
    }

    /// Runs `flag` (chunk `[n, C, P, T]` -> bad item mask `[n]`) over the pool; returns the
    /// first flagged item. One scalar comes back per chunk unless something is wrong.
    fn find_first_bad_item(
        &self,
        flag: impl Fn(Tensor<4>) -> Tensor<1, Bool>,
    ) -> Result<Option<usize>> {
        let chunk_len = self.chunk_len(2);
        for (start, len) in self.chunk_ranges(chunk_len) {
            let bad = flag(self.values.clone().narrow(0, start, len));
            if bad.clone().any().try_into_scalar::<bool>()? {
                let first: Tensor<1, Int> = bad.int().argmax(0);
                return Ok(Some(start + first.try_into_scalar::<i64>()? as usize));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(
            burn::tensor::TensorData::new(values, shape),
            &Device::default(),
        )
    }

    #[test]
    fn tensor_and_host_validation_agree() {
        // [N=4, C=2, P=1, T=2]; item 2 is not normalised at iteration 1, item 3 is negative.
        let values = vec![
            0.5, 0.5, 0.5, 0.5, //
            1.0, 0.0, 0.0, 1.0, //
            0.5, 0.5, 0.5, 0.2, //
            -0.5, 0.5, 1.5, 0.5,
        ];
        let predictions = Predictions::new(
            tensor(values, [4, 2, 1, 2]),
            PredictionKind::Probabilities,
            Reduction::None,
        )
        .expect("shape is fine");
        for host in [true, false] {
            let p = predictions.clone().with_host_kernels(host).expect("read");
            let err = p.check_probabilities().expect_err("item 2 is invalid");
            assert!(
                matches!(
                    err,
                    HeuristicError::NotNormalised {
                        item: 2,
                        iteration: 1,
                        ..
                    }
                ),
                "host kernels {host}: {err}"
            );
            let finite = p.check_finite();
            assert!(finite.is_ok());
        }
        let nan = Predictions::new(
            tensor(vec![0.5, f32::NAN], [2, 1, 1, 1]),
            PredictionKind::Regression,
            Reduction::None,
        )
        .expect("shape is fine");
        for host in [true, false] {
            let p = nan.clone().with_host_kernels(host).expect("read");
            assert!(matches!(
                p.check_finite(),
                Err(HeuristicError::NonFinite { item: 1 })
            ));
        }
    }
}
