//! Max pooling's arithmetic on flex tensors (f32) over plain slices, planes spread over the
//! threads.

use burn::backend::flex::FlexTensor;
use burn::tensor::Shape;
use rayon::prelude::*;

use super::Window;
use crate::conv::flex::{per_thread, tensor, values, zeros};

/// The sizes of one pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    window: Window,
}

impl Dims {
    /// The sizes of `x` `[N, C, H, W]` pooled by `window` (which fits the input: checked by
    /// `max_pool2d`).
    pub fn of(x: &Shape, window: Window) -> Self {
        let [n, c, h, w] = [x[0], x[1], x[2], x[3]];
        let ([kh, kw], [sh, sw]) = (window.kernel, window.stride);
        Self {
            n,
            c,
            h,
            w,
            oh: (h - kh) / sh + 1,
            ow: (w - kw) / sw + 1,
            window,
        }
    }

    fn planes(&self) -> usize {
        self.n * self.c
    }

    fn plane_in(&self) -> usize {
        self.h * self.w
    }

    fn plane_out(&self) -> usize {
        self.oh * self.ow
    }
}

/// Whether `value` takes a window's lead from `best`: a larger value, or any NaN (so the first
/// largest value wins, or the last NaN, as in Burn's pooling).
#[inline(always)]
fn leads(value: f32, best: f32) -> bool {
    value > best || value.is_nan()
}

/// One plane's windows: each one's largest value into `out`, and with `KEEP` its index in the
/// plane into `at`.
fn pool_plane<const KEEP: bool>(plane: &[f32], out: &mut [f32], at: &mut [u32], d: &Dims) {
    if d.window.kernel == [2, 2] && d.window.stride == [2, 2] {
        return pool_plane_2x2::<KEEP>(plane, out, at, d);
    }
    let ([kh, kw], [sh, sw]) = (d.window.kernel, d.window.stride);
    for oy in 0..d.oh {
        for ox in 0..d.ow {
            let first = oy * sh * d.w + ox * sw;
            let (mut best, mut best_at) = (plane[first], first);
            for ky in 0..kh {
                let row = &plane[first + ky * d.w..][..kw];
                for (kx, &value) in row.iter().enumerate() {
                    if leads(value, best) {
                        (best, best_at) = (value, first + ky * d.w + kx);
                    }
                }
            }
            out[oy * d.ow + ox] = best;
            if KEEP {
                at[oy * d.ow + ox] = best_at as u32;
            }
        }
    }
}

/// [`pool_plane`] for the zoo's windows, 2×2 with stride 2: two input rows per output row.
fn pool_plane_2x2<const KEEP: bool>(plane: &[f32], out: &mut [f32], at: &mut [u32], d: &Dims) {
    for oy in 0..d.oh {
        let top = &plane[2 * oy * d.w..][..2 * d.ow];
        let bottom = &plane[(2 * oy + 1) * d.w..][..2 * d.ow];
        let out = &mut out[oy * d.ow..][..d.ow];
        let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for (ox, ((t, b), out)) in pairs.zip(out.iter_mut()).enumerate() {
            // The window's values in Burn's order, and their offsets from its corner; selects
            // without branches (random data would mispredict half of them).
            let (mut best, mut offset) = (t[0], 0u32);
            for (value, o) in [(t[1], 1), (b[0], d.w as u32), (b[1], d.w as u32 + 1)] {
                let take = u32::from(leads(value, best)).wrapping_neg();
                best = f32::from_bits((value.to_bits() & take) | (best.to_bits() & !take));
                offset = (o & take) | (offset & !take);
            }
            *out = best;
            if KEEP {
                at[oy * d.ow + ox] = (2 * oy * d.w + 2 * ox) as u32 + offset;
            }
        }
    }
}

/// `x` max-pooled, and with `keep_indices` where each output's value came from (an index in
/// its plane per output; empty otherwise).
pub(super) fn forward(x: &FlexTensor, d: &Dims, keep_indices: bool) -> (FlexTensor, Vec<u32>) {
    let x = values(x);
    let mut out = zeros(d.planes() * d.plane_out());
    let mut indices = zeros(if keep_indices { out.len() } else { 0 });
    let planes = out
        .par_chunks_mut(d.plane_out())
        .with_min_len(per_thread(d.planes()))
        .enumerate();
    let plane = |p: usize| &x[p * d.plane_in()..][..d.plane_in()];
    if keep_indices {
        planes
            .zip(indices.par_chunks_mut(d.plane_out()))
            .for_each(|((p, out), at)| pool_plane::<true>(plane(p), out, at, d));
    } else {
        planes.for_each(|(p, out)| pool_plane::<false>(plane(p), out, &mut [], d));
    }
    (tensor(out, [d.n, d.c, d.oh, d.ow]), indices)
}

/// The input's gradient: each output's gradient `grad` `[N, C, OH, OW]` added at the input
/// element its value came from (`indices`, from [`forward`]); zero elsewhere.
pub(super) fn backward(grad: &FlexTensor, indices: &[u32], d: &Dims) -> FlexTensor {
    let grad = values(grad);
    let mut dx = zeros(d.planes() * d.plane_in());
    dx.par_chunks_mut(d.plane_in())
        .with_min_len(per_thread(d.planes()))
        .zip(grad.par_chunks(d.plane_out()))
        .zip(indices.par_chunks(d.plane_out()))
        .for_each(|((dx, grad), at)| {
            for (&i, &g) in at.iter().zip(grad) {
                dx[i as usize] += g;
            }
        });
    tensor(dx, [d.n, d.c, d.h, d.w])
}
