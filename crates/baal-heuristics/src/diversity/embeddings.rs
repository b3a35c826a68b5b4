//! The inputs of the diversity heuristics: a model's embeddings `[N, D]` and its class
//! probabilities `[N, C]`, validated once, in host memory.

use burn::tensor::Tensor;

use crate::error::{HeuristicError, Result};
use crate::predictions::Predictions;
use crate::reduction::SUM_TOLERANCE;

/// Embeddings of `N` items in `D` dimensions (`[N, D]`, row-major `f32`), every value finite.
///
/// What a model computes for an item before its last layer (Coreset), or the input of its
/// last linear layer (BADGE). `N = 0` is allowed (an empty labelled set); `D` is at least 1.
///
/// ```
/// use baal_heuristics::Embeddings;
///
/// # fn main() -> Result<(), baal_heuristics::HeuristicError> {
/// let points = Embeddings::new(vec![0.0, 0.0, 3.0, 4.0], [2, 2])?;
/// assert_eq!((points.len(), points.dim()), (2, 2));
/// assert_eq!(points.row(1), &[3.0, 4.0]);
/// assert!(Embeddings::new(vec![f32::NAN, 0.0], [1, 2]).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    values: Vec<f32>,
    len: usize,
    dim: usize,
}

impl Embeddings {
    /// Validates `values`, row-major `[n, d]`.
    ///
    /// # Errors
    /// `values.len() != n · d`, `d = 0`, or a non-finite value (the error names the first
    /// offending item and feature).
    pub fn new(values: Vec<f32>, [n, d]: [usize; 2]) -> Result<Self> {
        if d == 0 || n.checked_mul(d) != Some(values.len()) {
            return Err(HeuristicError::ShapeMismatch {
                what: "embeddings",
                expected: format!("[N, D] with D ≥ 1 and N · D = {} values", values.len()),
                got: vec![n, d],
            });
        }
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(HeuristicError::NonFiniteEmbedding {
                item: at / d,
                feature: at % d,
            });
        }
        Ok(Self {
            values,
            len: n,
            dim: d,
        })
    }

    /// No items, in `dim` dimensions (an empty labelled set).
    ///
    /// # Errors
    /// `dim = 0`.
    pub fn empty(dim: usize) -> Result<Self> {
        Self::new(Vec::new(), [0, dim])
    }

    /// Reads `[N, D]` embeddings back from a tensor on any device and validates them.
    ///
    /// # Errors
    /// As [`Embeddings::new`], or reading the tensor fails.
    pub fn from_tensor(embeddings: Tensor<2>) -> Result<Self> {
        let dims = embeddings.dims();
        Self::new(embeddings.try_into_vec_as::<f32>()?, dims)
    }

    /// Number of items N.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Dimension D.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The embedding of item `item`.
    ///
    /// # Panics
    /// `item >= len()`.
    pub fn row(&self, item: usize) -> &[f32] {
        &self.values[item * self.dim..(item + 1) * self.dim]
    }

    /// Every value, row-major `[N, D]`.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }

    /// The values, row-major `[N, D]`.
    pub fn into_vec(self) -> Vec<f32> {
        self.values
    }
}

/// Class probabilities of `N` items over `C` classes (`[N, C]`, row-major `f32`): each in
/// `[0, 1]`, each row summing to one within [`SUM_TOLERANCE`]. For BADGE: the model's
/// MC-averaged prediction `pbar(c | x) = mean_t p_t(c | x)`.
///
/// ```
/// use baal_heuristics::ClassProbabilities;
///
/// # fn main() -> Result<(), baal_heuristics::HeuristicError> {
/// let probs = ClassProbabilities::new(vec![0.25, 0.75, 1.0, 0.0], [2, 2])?;
/// assert_eq!(probs.row(0), &[0.25, 0.75]);
/// assert!(ClassProbabilities::new(vec![0.5, 0.6], [1, 2]).is_err()); // sums to 1.1
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClassProbabilities {
    values: Vec<f32>,
    len: usize,
    classes: usize,
}

impl ClassProbabilities {
    /// Validates `values`, row-major `[n, c]`.
    ///
    /// # Errors
    /// `values.len() != n · c`, `c = 0`, a non-finite value, a value outside `[0, 1]`, or a
    /// row whose sum is farther than [`SUM_TOLERANCE`] from one; the error names the first
    /// offending item.
    pub fn new(values: Vec<f32>, [n, c]: [usize; 2]) -> Result<Self> {
        if c == 0 || n.checked_mul(c) != Some(values.len()) {
            return Err(HeuristicError::ShapeMismatch {
                what: "class probabilities",
                expected: format!("[N, C] with C ≥ 1 and N · C = {} values", values.len()),
                got: vec![n, c],
            });
        }
        let upper = 1.0 + f32::EPSILON * 4.0;
        for (item, row) in values.chunks_exact(c).enumerate() {
            for (class, &value) in row.iter().enumerate() {
                if !value.is_finite() {
                    return Err(HeuristicError::NonFinite { item });
                }
                if !(0.0..=upper).contains(&value) {
                    return Err(HeuristicError::ProbabilityOutOfRange {
                        item,
                        class,
                        iteration: 0,
                        value,
                    });
                }
            }
            let sum: f32 = row.iter().sum();
            if (sum - 1.0).abs() > SUM_TOLERANCE {
                return Err(HeuristicError::NotNormalised {
                    item,
                    iteration: 0,
                    sum,
                    tolerance: SUM_TOLERANCE,
                });
            }
        }
        Ok(Self {
            values,
            len: n,
            classes: c,
        })
    }

    /// Reads `[N, C]` probabilities back from a tensor on any device and validates them.
    ///
    /// # Errors
    /// As [`ClassProbabilities::new`], or reading the tensor fails.
    pub fn from_tensor(probs: Tensor<2>) -> Result<Self> {
        let dims = probs.dims();
        Self::new(probs.try_into_vec_as::<f32>()?, dims)
    }

    /// The MC-averaged prediction `pbar(c | x) = mean_t p_t(c | x)` of `[N, C, T]`
    /// predictions (averaged on their device, then read back).
    ///
    /// # Errors
    /// Regression outputs, predictions with a position axis, or reading the mean fails.
    pub fn from_predictions(predictions: &Predictions) -> Result<Self> {
        const WHAT: &str = "ClassProbabilities::from_predictions";
        predictions.require_probabilities(WHAT)?;
        predictions.require_no_positions(WHAT)?;
        let [n, c, _, _] = predictions.values().dims();
        let mean = predictions.values().clone().mean_dim(3).reshape([n, c]);
        Self::from_tensor(mean)
    }

    /// Number of items N.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of classes C.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The probabilities of item `item`.
    ///
    /// # Panics
    /// `item >= len()`.
    pub fn row(&self, item: usize) -> &[f32] {
        &self.values[item * self.classes..(item + 1) * self.classes]
    }

    /// Every value, row-major `[N, C]`.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }

    /// The values, row-major `[N, C]`.
    pub fn into_vec(self) -> Vec<f32> {
        self.values
    }
}
