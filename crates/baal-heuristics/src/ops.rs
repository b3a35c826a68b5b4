//! Tensor building blocks shared by the heuristics.

use burn::tensor::Tensor;

/// Smallest positive normal f32: `p * ln(max(p, TINY))` is 0 at p = 0 (the 0·ln 0 = 0
/// convention) and exact for every normal probability.
pub(crate) const TINY: f32 = f32::MIN_POSITIVE;

/// `p · ln p` element-wise with 0 · ln 0 = 0.
pub(crate) fn xlogx<const D: usize>(p: Tensor<D>) -> Tensor<D> {
    p.clone() * p.clamp_min(TINY).log()
}

/// Shannon entropy (nats) over the class axis 1 of `[n, C, P, T]`: `[n, 1, P, T]`.
pub(crate) fn entropy_over_classes(p: Tensor<4>) -> Tensor<4> {
    xlogx(p).sum_dim(1).neg()
}

/// Mean over the MC iteration axis 3 of `[n, C, P, T]`: `[n, C, P, 1]`.
pub(crate) fn mean_over_iterations(p: Tensor<4>) -> Tensor<4> {
    p.mean_dim(3)
}

/// Drops the singleton class and iteration axes: `[n, 1, P, 1]` to `[n, P]`.
pub(crate) fn per_position(scores: Tensor<4>) -> Tensor<2> {
    let [n, _, p, _] = scores.dims();
    scores.reshape([n, p])
}
