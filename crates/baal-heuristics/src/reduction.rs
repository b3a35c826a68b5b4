//! How per-position scores fold into one score per pool item, and the tolerance on a sum of
//! probabilities: the vocabulary that both [`crate::Predictions`] and the fused host kernels
//! use, kept here so that neither module depends on the other for it.

use burn::tensor::Tensor;

/// How scores computed per position (pixel, token) fold into one score per pool item,
/// for predictions of shape `[N, C, P, T]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// No folding: only valid when there is a single position (`P = 1`), as for `[N, C, T]`.
    #[default]
    None,
    /// Mean over positions.
    Mean,
    /// Sum over positions.
    Sum,
    /// Maximum over positions.
    Max,
    /// Minimum over positions (baal's `min`).
    Min,
}

impl Reduction {
    /// Folds scores `[n, P]` into `[n]`.
    pub(crate) fn apply(self, scores: Tensor<2>) -> Tensor<1> {
        let [n, _] = scores.dims();
        match self {
            Reduction::None | Reduction::Mean => scores.mean_dim(1),
            Reduction::Sum => scores.sum_dim(1),
            Reduction::Max => scores.max_dim(1),
            Reduction::Min => scores.min_dim(1),
        }
        .reshape([n])
    }
}

/// Tolerance on the sum of probabilities over classes accepted by
/// [`crate::Predictions::from_probs`].
pub const SUM_TOLERANCE: f32 = 1e-3;
