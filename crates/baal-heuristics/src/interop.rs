//! `ndarray` interop (feature `ndarray`): MC predictions held as `ndarray` arrays (from ONNX
//! Runtime through `ort`, linfa, candle, numpy through PyO3, ...) in, scores and selections out.
//!
//! The arrays are copied once into the tensor the predictions live in: Burn's tensors own
//! their memory (on the CPU backend the copy is the tensor's buffer, with no second one), so a
//! borrowed view cannot be used in place. `f64` values are narrowed to `f32` during that copy.
//!
//! ```
//! use baal_heuristics::{Bald, Heuristic, Predictions, ScoresArray};
//! use burn::tensor::Device;
//! use ndarray::Array3;
//!
//! # fn main() -> Result<(), baal_heuristics::HeuristicError> {
//! // 3 pool items, 2 classes, 2 MC iterations, as another runtime returned them.
//! let probs = Array3::from_shape_vec(
//!     (3, 2, 2),
//!     vec![0.5f64, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0],
//! )
//! .expect("shape");
//! let predictions = Predictions::from_ndarray_probs(probs.view(), &Device::default())?;
//! let scores = Bald.scores_array(&predictions, None)?;
//! assert_eq!(scores.len(), 3);
//! let picks = Bald.select(&predictions, None, 1)?.positions_array();
//! assert_eq!(picks[0], 1);
//! # Ok(())
//! # }
//! ```

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array1, ArrayView3, ArrayView4, Dimension};

use crate::base::Heuristic;
use crate::error::Result;
use crate::predictions::Predictions;
use crate::ranking::{Ranking, Selection};
use crate::reduction::Reduction;

/// An element type `ndarray` predictions may hold: `f32` or `f64`.
pub trait NdElement: Copy + sealed::Sealed {
    /// The value as `f32`.
    fn to_f32(self) -> f32;
}

impl NdElement for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}

impl NdElement for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The view's values in C order, as `f32`: one pass, whatever its strides.
fn values<T: NdElement, D: Dimension>(view: &ndarray::ArrayView<'_, T, D>) -> Vec<f32> {
    match view.as_slice() {
        Some(slice) => slice.iter().map(|v| v.to_f32()).collect(),
        None => view.iter().map(|v| v.to_f32()).collect(),
    }
}

fn tensor3<T: NdElement>(view: &ArrayView3<'_, T>, device: &Device) -> Tensor<3> {
    let (n, c, t) = view.dim();
    Tensor::from_data(TensorData::new(values(view), [n, c, t]), device)
}

impl Predictions {
    /// Validates class probabilities `[N, C, T]` held in an `ndarray` view (any strides) and
    /// puts them on `device`.
    ///
    /// # Errors
    /// As [`Predictions::from_probs`].
    pub fn from_ndarray_probs<T: NdElement>(
        probs: ArrayView3<'_, T>,
        device: &Device,
    ) -> Result<Self> {
        Self::from_probs(tensor3(&probs, device))
    }

    /// Applies a softmax over the classes of logits `[N, C, T]` held in an `ndarray` view.
    ///
    /// # Errors
    /// As [`Predictions::from_logits`].
    pub fn from_ndarray_logits<T: NdElement>(
        logits: ArrayView3<'_, T>,
        device: &Device,
    ) -> Result<Self> {
        Self::from_logits(tensor3(&logits, device))
    }

    /// Validates segmentation probabilities `[N, C, P, T]` held in an `ndarray` view, whose
    /// per-position scores `reduction` folds.
    ///
    /// # Errors
    /// As [`Predictions::from_segmentation_probs`].
    pub fn from_ndarray_segmentation_probs<T: NdElement>(
        probs: ArrayView4<'_, T>,
        reduction: Reduction,
        device: &Device,
    ) -> Result<Self> {
        let (n, c, p, t) = probs.dim();
        Self::from_segmentation_probs(
            Tensor::from_data(TensorData::new(values(&probs), [n, c, p, t]), device),
            reduction,
        )
    }

    /// Wraps regression outputs `[N, O, T]` held in an `ndarray` view.
    ///
    /// # Errors
    /// As [`Predictions::from_regression`].
    pub fn from_ndarray_regression<T: NdElement>(
        outputs: ArrayView3<'_, T>,
        device: &Device,
    ) -> Result<Self> {
        Self::from_regression(tensor3(&outputs, device))
    }
}

/// Scores as an `ndarray` array, for heuristics of any kind.
pub trait ScoresArray {
    /// One score per pool item, as [`Heuristic::scores`] gives them.
    ///
    /// # Errors
    /// As [`Heuristic::scores`].
    fn scores_array(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Array1<f32>>;
}

impl<H: Heuristic + ?Sized> ScoresArray for H {
    fn scores_array(
        &self,
        predictions: &Predictions,
        target: Option<&Predictions>,
    ) -> Result<Array1<f32>> {
        Ok(Array1::from(self.scores(predictions, target)?))
    }
}

impl Ranking {
    /// [`Ranking::positions`] (positions in the scored predictions, not `PoolIndex`es),
    /// most informative first, as an `ndarray` array.
    pub fn positions_array(&self) -> Array1<usize> {
        Array1::from(self.positions().to_vec())
    }

    /// Every pool item's score, indexed by position, as an `ndarray` array.
    pub fn scores_array(&self) -> Array1<f32> {
        Array1::from(self.scores().to_vec())
    }
}

impl Selection {
    /// [`Selection::positions`] (positions in the scored predictions, not `PoolIndex`es),
    /// in selection order, as an `ndarray` array.
    pub fn positions_array(&self) -> Array1<usize> {
        Array1::from(self.positions.clone())
    }

    /// Each selected item's score, as an `ndarray` array.
    pub fn scores_array(&self) -> Array1<f32> {
        Array1::from(self.scores.clone())
    }
}
