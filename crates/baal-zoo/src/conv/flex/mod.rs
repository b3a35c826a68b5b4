//! The convolution's arithmetic on flex tensors (f32): im2col and col2im over plain slices,
//! the products on the `gemm` crate (flex's own matmul kernels).
//!
//! An image's columns are `[K, P]`, with `K = C·kh·kw` (a window's values in the weights'
//! order: channel, row, column) and `P = OH·OW` output positions; [`per_image`] builds one
//! image's at a time in a thread's scratch buffer that stays in cache, images spread over the
//! threads, and makes them again in the backward pass.
//!
//! Measured and dropped: the batch's columns side by side (`[K, N·P]`, one product per pass,
//! the columns kept for the backward pass). It was no faster on the small CNN's layers and
//! 2–10× slower on the Gal CNN's (`K·N·P` values, 63 MB for its second layer at batch 64,
//! and the transposes around the products, cost more in memory traffic and page faults than
//! making the columns again).

pub(super) mod per_image;
mod sparse;

use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, TensorData};
use rayon::prelude::*;

use super::Geometry;

/// The sizes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Dims {
    /// The sizes of `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]` under `g`;
    /// `None` when the output would be empty.
    pub fn of(x: &Shape, weight: &Shape, g: &Geometry) -> Option<Self> {
        let [n, c, h, w] = [x[0], x[1], x[2], x[3]];
        let [o, _, kh, kw] = [weight[0], weight[1], weight[2], weight[3]];
        let span = |size: usize, pad: usize, k: usize, dil: usize, stride: usize| {
            let padded = size + 2 * pad;
            let reach = dil * (k.max(1) - 1) + 1;
            (padded >= reach && stride > 0).then(|| (padded - reach) / stride + 1)
        };
        let oh = span(h, g.padding[0], kh, g.dilation[0], g.stride[0])?;
        let ow = span(w, g.padding[1], kw, g.dilation[1], g.stride[1])?;
        (n * c * o * kh * kw > 0).then_some(Self {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh,
            ow,
        })
    }

    /// A window's length, `C·kh·kw`.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output positions per image, `OH·OW`.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Values of one input image, `C·H·W`.
    pub fn image(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// The gradients a backward pass asked for: the input's, the weight's and the bias's.
pub(super) struct Grads {
    pub x: Option<FlexTensor>,
    pub weight: Option<FlexTensor>,
    pub bias: Option<FlexTensor>,
}

/// `work` run in code compiled for the widest vectors this CPU has (AVX-512, AVX2, or none;
/// found at run time, as the `gemm` crate chooses its kernels). The crates are built for
/// the x86-64 baseline, whose vectors are SSE's 128 bits: the per-image loops (relu and its
/// mask, row sums, im2col, the input gradient's sums) ran four floats at a time. `work`'s
/// `with_simd` must be `#[inline(always)]`, as must whatever it calls, to be compiled for
/// them (a closure cannot be: it is compiled once, for the baseline, and called). Each value
/// is computed by the same operations in the same order whatever the width (element-wise
/// operations, and sums whose lanes are different sums), so results are equal bit for bit.
#[inline(always)]
pub(crate) fn vectorized<T: pulp::WithSimd>(work: T) -> T::Output {
    pulp::Arch::new().dispatch(work)
}

/// `tensor`'s f32 values, contiguous (copied only when it is a strided view).
pub(crate) fn values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => std::borrow::Cow::Borrowed(values),
        None => std::borrow::Cow::Owned(
            tensor
                .to_contiguous()
                .as_slice::<f32>()
                .expect("an f32 tensor (checked by conv2d)")
                .to_vec(),
        ),
    }
}

/// Items (images, planes) per rayon job: one run of items a thread, so that each thread sets
/// up its scratch buffers once (fresh megabytes per job cost page faults that showed in the
/// profile).
pub(crate) fn per_thread(items: usize) -> usize {
    items.div_ceil(rayon::current_num_threads()).max(1)
}

/// `len` zeros, written by the worker threads. `vec![0.0; len]` of memory the allocator had
/// freed is a `memset` on the calling thread while the workers wait: outputs and gradients
/// of a few megabytes each, about 2.5% of a Gal CNN training step, serial.
pub(crate) fn zeros<T: Copy + Default + Send + Sync>(len: usize) -> Vec<T> {
    let mut values = Vec::with_capacity(len);
    values.par_extend(rayon::iter::repeat_n(T::default(), len).with_min_len(per_thread(len)));
    values
}

thread_local! {
    /// This thread's [`Reused`] buffer between calls.
    static REUSED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A buffer kept by its thread between calls (larger ones are freed), so that a worker's
/// columns are not allocated and cleared on every pass: fresh megabytes cost a `memset` or
/// page faults each time, 3–4% of a Gal CNN training step. Its values are whatever the last
/// user left: callers overwrite every value they read.
pub(crate) struct Reused(Vec<f32>);

impl Reused {
    /// Buffers up to this many values (16 MB) stay with their thread.
    const KEPT: usize = 1 << 22;

    /// This thread's buffer, at least `len` values long (a new one when it is in use, e.g. by
    /// a caller further up this thread's stack).
    pub fn take(len: usize) -> Self {
        let mut values = REUSED.take();
        if values.len() < len {
            values.resize(len, 0.0);
        }
        Self(values)
    }

    /// The first `len` values.
    pub fn get(&mut self, len: usize) -> &mut [f32] {
        &mut self.0[..len]
    }
}

impl Drop for Reused {
    fn drop(&mut self) {
        if self.0.len() <= Self::KEPT {
            let values = std::mem::take(&mut self.0);
            // Keep the larger of this and whatever a nested user left.
            let other = REUSED.take();
            REUSED.set(if other.len() > values.len() {
                other
            } else {
                values
            });
        }
    }
}

pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// A row-major matrix view: its values, rows, columns; transposed views swap the strides.
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    values: &'a [f32],
    rows: usize,
    columns: usize,
    transposed: bool,
}

impl<'a> Matrix<'a> {
    pub fn new(values: &'a [f32], rows: usize, columns: usize) -> Self {
        assert_eq!(values.len(), rows * columns, "a matrix's values");
        Self {
            values,
            rows,
            columns,
            transposed: false,
        }
    }

    /// Its number of columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// This matrix transposed (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.columns,
            columns: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// (column stride, row stride) of the logical matrix in `values`.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.rows as isize, 1)
        } else {
            (1, self.columns as isize)
        }
    }
}

/// `dst [m, n] = lhs [m, k] × rhs [k, n]`, or `dst += …` with `accumulate`; `dst` row-major;
/// on the calling thread (the images are what is spread over the threads).
///
/// # Panics
/// The shapes do not agree (an internal error: callers pass matching sizes).
pub(super) fn gemm(dst: &mut [f32], lhs: Matrix<'_>, rhs: Matrix<'_>, accumulate: bool) {
    gemm_strided(dst, false, lhs, rhs, accumulate);
}

/// [`gemm`] with `dst` stored column-major (`dst[j·m + i]` for row `i`, column `j`): the same
/// values bit for bit (the layout only changes where the `gemm` crate writes its results),
/// and where `dst` is small and written once per image, much faster: the crate's kernels
/// store a column-major tile straight from their registers but go through a buffer for a
/// row-major one. On the Gal CNN's weight gradient (`[32, 484] × [484, 512]`, 64 images, one
/// thread) 9.4 ms against 13.9.
///
/// # Panics
/// As [`gemm`].
pub(super) fn gemm_into_columns(
    dst: &mut [f32],
    lhs: Matrix<'_>,
    rhs: Matrix<'_>,
    accumulate: bool,
) {
    gemm_strided(dst, true, lhs, rhs, accumulate);
}

#[allow(unsafe_code)]
fn gemm_strided(
    dst: &mut [f32],
    column_major: bool,
    lhs: Matrix<'_>,
    rhs: Matrix<'_>,
    accumulate: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.columns, rhs.columns);
    assert_eq!(rhs.rows, k, "inner dimensions");
    assert_eq!(dst.len(), m * n, "the destination's size");
    let (lhs_cs, lhs_rs) = lhs.strides();
    let (rhs_cs, rhs_rs) = rhs.strides();
    // SAFETY: `lhs` holds `m·k` values and `rhs` `k·n` (asserted in `Matrix::new`), read at
    // the strides of a row-major matrix or its transpose, so every index gemm forms, `i·rs +
    // j·cs` with `i < rows` and `j < columns`, is inside its slice; `dst` holds `m·n` values
    // (asserted above) written row-major or column-major; `dst` is a distinct `&mut`, so it
    // overlaps neither.
    let (dst_cs, dst_rs) = if column_major {
        (m as isize, 1)
    } else {
        (1, n as isize)
    };
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs,
            dst_rs,
            accumulate,
            lhs.values.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.values.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The output indices `[lo, hi)` whose input index `o·stride + offset − pad` (`offset` the
/// kernel tap's, `k·dilation`) lies in `[0, size)`: the rest read padding.
#[inline(always)]
fn valid(out: usize, size: usize, offset: usize, pad: usize, stride: usize) -> (usize, usize) {
    // o·stride ≥ pad − offset, and o·stride < size + pad − offset.
    let lo = pad.saturating_sub(offset).div_ceil(stride);
    let hi = (size + pad)
        .saturating_sub(offset)
        .div_ceil(stride)
        .min(out);
    (lo.min(hi), hi)
}

/// `target` = `source` (the same length), for the short runs of im2col (an output row, 22
/// values on the Gal CNN's second layer): in whole vectors of 16, 8 or 4 values, the last one
/// overlapping the one before it, instead of a call to `memcpy` per run, which was 8% of a
/// Gal CNN training step.
#[inline(always)]
fn copy_run(target: &mut [f32], source: &[f32]) {
    #[inline(always)]
    fn by<const N: usize>(target: &mut [f32], source: &[f32]) {
        let len = target.len();
        let mut start = 0;
        while start + N < len {
            target[start..start + N].copy_from_slice(&source[start..start + N]);
            start += N;
        }
        target[len - N..].copy_from_slice(&source[len - N..]);
    }
    match target.len() {
        16.. => by::<16>(target, source),
        8.. => by::<8>(target, source),
        4.. => by::<4>(target, source),
        _ => {
            for (t, s) in target.iter_mut().zip(source) {
                *t = *s;
            }
        }
    }
}

/// Row `row` of one image's columns (`P` values): the image `x` `[C, H, W]` read at one
/// kernel tap, zeros where the window is in the padding.
#[inline(always)]
pub(super) fn fill_row(x: &[f32], row: usize, out: &mut [f32], d: &Dims, g: &Geometry) {
    let (c, tap) = (row / (d.kh * d.kw), row % (d.kh * d.kw));
    let (dy, dx) = (tap / d.kw * g.dilation[0], tap % d.kw * g.dilation[1]);
    let ([sy, sx], [py, px]) = (g.stride, g.padding);
    let (y_lo, y_hi) = valid(d.oh, d.h, dy, py, sy);
    let (x_lo, x_hi) = valid(d.ow, d.w, dx, px, sx);
    if py + px > 0 {
        out.fill(0.0);
    }
    let plane = &x[c * d.h * d.w..][..d.h * d.w];
    for oy in y_lo..y_hi {
        let source = &plane[(oy * sy + dy - py) * d.w..][..d.w];
        let target = &mut out[oy * d.ow..][x_lo..x_hi];
        let first = x_lo * sx + dx - px;
        if sx == 1 {
            copy_run(target, &source[first..first + target.len()]);
        } else {
            for (t, s) in target.iter_mut().zip(source[first..].iter().step_by(sx)) {
                *t = *s;
            }
        }
    }
}

/// Copies the `[H, W]` interior of a padded plane (rows of `width` values, `padding` rows and
/// columns of zeros before it) into `out`.
#[inline(always)]
pub(super) fn crop(plane: &[f32], out: &mut [f32], width: usize, padding: [usize; 2], d: &Dims) {
    let [py, px] = padding;
    for (y, row) in out.chunks_mut(d.w).enumerate() {
        row.copy_from_slice(&plane[(y + py) * width + px..][..d.w]);
    }
}

/// Adds row `row` of one image's columns' gradient (`P` values) back into the gradient of
/// its channel's plane `[H, W]`.
#[inline(always)]
pub(super) fn add_row(grads: &[f32], row: usize, plane: &mut [f32], d: &Dims, g: &Geometry) {
    let tap = row % (d.kh * d.kw);
    let (dy, dx) = (tap / d.kw * g.dilation[0], tap % d.kw * g.dilation[1]);
    let ([sy, sx], [py, px]) = (g.stride, g.padding);
    let (y_lo, y_hi) = valid(d.oh, d.h, dy, py, sy);
    let (x_lo, x_hi) = valid(d.ow, d.w, dx, px, sx);
    for oy in y_lo..y_hi {
        let target = &mut plane[(oy * sy + dy - py) * d.w..][..d.w];
        let grads = &grads[oy * d.ow..][x_lo..x_hi];
        let first = x_lo * sx + dx - px;
        if sx == 1 {
            for (t, grad) in target[first..first + grads.len()].iter_mut().zip(grads) {
                *t += grad;
            }
        } else {
            for (t, grad) in target[first..].iter_mut().step_by(sx).zip(grads) {
                *t += grad;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_every_length_are_copied_whole() {
        // Lengths below, at and between the vector widths, for each tail's overlap.
        for len in 0..70 {
            let source: Vec<f32> = (0..len).map(|i| i as f32 + 0.5).collect();
            let mut target = vec![f32::NAN; len + 1];
            vectorized(CopyRun(&mut target[..len], &source));
            assert_eq!(&target[..len], &source[..], "a run of {len}");
            assert!(target[len].is_nan(), "nothing written past a run of {len}");
        }
    }

    struct CopyRun<'a>(&'a mut [f32], &'a [f32]);

    impl pulp::WithSimd for CopyRun<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            copy_run(self.0, self.1);
        }
    }
}
