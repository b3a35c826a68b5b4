//! Large layers, one image at a time: each worker thread builds an image's columns `[K, P]`
//! in a scratch buffer that stays in cache, and the products run per image, images spread
//! over the threads.
//!
//! - forward: `out_n [O, P] = bias + W [O, K] × cols`, written straight into the NCHW output;
//! - backward, in one pass over the images: the bias gradient (row sums of `dOut_n`), the
//!   weight gradient `Σ_n dOut_n × colsᵀ` (the columns made again) and the input gradient
//!   `dx_n = col2im(Wᵀ × dOut_n)`, on stride-1 layers in the [`Wide`] layout. An image whose
//!   `dOut_n` is mostly zeros (after a relu and a max-pool) takes [`sparse`]'s kernels for
//!   the two products instead, which give the same values.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::{
    Dims, Grads, Matrix, Reused, add_row, crop, fill_row, gemm, gemm_into_columns, per_thread,
    sparse, tensor, values, vectorized, zeros,
};
use crate::conv::{Activation, Geometry};

/// One image's columns `[K, P]`, into `cols` whose rows are `stride ≥ P` values apart; a
/// row's values past `P` are set to zero (the padded forward product's positions, whose
/// products are dropped: zeros keep them ordinary numbers).
#[inline(always)]
fn im2col(x: &[f32], cols: &mut [f32], stride: usize, d: &Dims, g: &Geometry) {
    for (row, out) in cols.chunks_mut(stride).enumerate() {
        let (values, tail) = out.split_at_mut(d.p());
        fill_row(x, row, values, d, g);
        tail.fill(0.0);
    }
}

/// Adds one image's columns' gradient `[K, P]` back into its gradient `dx` `[C, H, W]`.
#[inline(always)]
fn col2im(dcols: &[f32], dx: &mut [f32], d: &Dims, g: &Geometry) {
    let taps = d.kh * d.kw;
    for (c, plane) in dx.chunks_mut(d.h * d.w).enumerate() {
        for row in c * taps..(c + 1) * taps {
            add_row(&dcols[row * d.p()..][..d.p()], row, plane, d, g);
        }
    }
}

/// The input gradient of a stride-1 layer through "wide" columns: output position `(oy, ox)`
/// at `oy·Wp + ox`, `Wp` the padded input's width, so that each row of the columns' gradient
/// (one kernel tap) adds to the padded plane as one contiguous run instead of `OH` runs of
/// `OW` values. Its `L = (OH − 1)·Wp + OW` positions include `Wp − OW` between rows whose
/// output gradient is zero, so the product is `L / P` larger (13% on the Gal CNN's second
/// layer), and col2im was 2.8× faster in a measurement of that layer's shape (5.0 ms against
/// 1.8 ms for 64 images on one thread). Each input-gradient value receives the same terms in
/// the same order (taps in ascending order) as [`col2im`] gives it, plus zeros, so the two
/// are equal bit for bit (`the_wide_input_gradient_is_the_rows_one` checks).
struct Wide {
    /// The padded input's width.
    wp: usize,
    /// Positions per row of the wide columns, `L`.
    len: usize,
    g: Geometry,
}

impl Wide {
    /// The wide layout of `d` under `g`; `None` for strided layers (a tap's outputs are not
    /// one run of the plane there).
    fn of(d: &Dims, g: &Geometry) -> Option<Self> {
        (g.stride == [1, 1]).then(|| {
            let wp = d.w + 2 * g.padding[1];
            Self {
                wp,
                len: (d.oh - 1) * wp + d.ow,
                g: *g,
            }
        })
    }

    fn padded(&self) -> bool {
        self.g.padding != [0, 0]
    }

    /// Scratch values for one image: the spread output gradient `[O, L]`, the columns'
    /// gradient `[K, L]` and, when padded, one padded plane.
    fn scratch(&self, d: &Dims) -> usize {
        let plane = (d.h + 2 * self.g.padding[0]) * self.wp;
        (d.o + d.k()) * self.len + if self.padded() { plane } else { 0 }
    }

    /// One image's input gradient `dx` `[C, H, W]` (zeros on entry) from its output gradient
    /// `grad` `[O, P]` and the weights `w` `[O, K]`.
    #[inline(always)]
    fn input_grad(
        &self,
        grad: &[f32],
        w: Matrix<'_>,
        dx: &mut [f32],
        scratch: &mut [f32],
        d: &Dims,
    ) {
        let (spread, rest) = scratch.split_at_mut(d.o * self.len);
        let (dcols, plane) = rest.split_at_mut(d.k() * self.len);
        for (row, out) in grad.chunks(d.p()).zip(spread.chunks_mut(self.len)) {
            for (oy, values) in row.chunks(d.ow).enumerate() {
                let start = oy * self.wp;
                out[start..start + d.ow].copy_from_slice(values);
                let end = (start + self.wp).min(self.len);
                out[start + d.ow..end].fill(0.0);
            }
        }
        gemm(dcols, w.t(), Matrix::new(spread, d.o, self.len), false);
        let taps = d.kh * d.kw;
        let [dilation_y, dilation_x] = self.g.dilation;
        for (c, dx) in dx.chunks_mut(d.h * d.w).enumerate() {
            let target = if self.padded() {
                plane.fill(0.0);
                &mut *plane
            } else {
                &mut *dx
            };
            for (tap, grads) in dcols[c * taps * self.len..][..taps * self.len]
                .chunks(self.len)
                .enumerate()
            {
                let start = tap / d.kw * dilation_y * self.wp + tap % d.kw * dilation_x;
                for (t, grad) in target[start..start + self.len].iter_mut().zip(grads) {
                    *t += grad;
                }
            }
            if self.padded() {
                crop(plane, dx, self.wp, self.g.padding, d);
            }
        }
    }
}

/// Whether a relu passes `x` (and its gradient): `x > 0` or `x` is NaN (NaN propagates, as
/// in PyTorch), Burn's test on flex.
#[inline(always)]
fn passes(x: f32) -> bool {
    (x > 0.0) | x.is_nan()
}

/// `value` if `keep`, else `0.0`, as a mask of its bits (`0.0` is all zero bits): the loops
/// below then compile to vector code. Written as `if keep { value } else { 0.0 }` they kept
/// a branch per value, taken at random, and the gradient's mask took a tenth of a Gal CNN
/// training step.
#[inline(always)]
fn kept(value: f32, keep: bool) -> f32 {
    f32::from_bits(value.to_bits() & u32::from(keep).wrapping_neg())
}

/// Burn's relu on flex, in place: `x` where it [`passes`], `0.0` elsewhere (so `-0.0`
/// becomes `0.0`).
#[inline(always)]
fn relu(values: &mut [f32]) {
    for x in values {
        *x = kept(*x, passes(*x));
    }
}

/// Burn's relu backward on flex: `grad` where the relu's output `out` [`passes`], `0.0`
/// elsewhere, into `masked`. (The output passes exactly where the relu's input does, which
/// is what Burn's autodiff tests.)
#[inline(always)]
fn relu_backward(out: &[f32], grad: &[f32], masked: &mut [f32]) {
    for ((m, out), grad) in masked.iter_mut().zip(out).zip(grad) {
        *m = kept(*grad, passes(*out));
    }
}

/// Output positions per image as the forward product sees them: `P` rounded up to a
/// multiple of 16 (a whole number of AVX-512 vectors, and of AVX2's and NEON's) where the
/// columns are much larger than the output. The `gemm` crate copies ("packs") the columns
/// before its kernels read them unless their position count is a multiple of its vector
/// width; the Gal CNN's second layer (`K = 512`, `O = 32`) has 484 positions, and padded to
/// 496 its product took 150–161 µs per image on one thread against 168–190 µs, for 2.5%
/// more arithmetic and a copy of the output's rows. Its first layer (`K = 16`) gained
/// nothing and kept `P`.
fn padded_positions(d: &Dims) -> usize {
    if d.k() >= 4 * d.o {
        d.p().next_multiple_of(16)
    } else {
        d.p()
    }
}

/// `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]`, plus `bias` `[O]`, then
/// `activation`.
pub(crate) fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    d: &Dims,
    g: &Geometry,
    activation: Activation,
) -> FlexTensor {
    let (x, weight, bias) = (values(x), values(weight), values(bias));
    let w = Matrix::new(&weight, d.o, d.k());
    let p = d.p();
    let padded = padded_positions(d);
    // The columns, then (when `P` is padded) the product's rows before they are cut to `P`.
    let scratch = (d.k() + if padded == p { 0 } else { d.o }) * padded;
    let mut out = zeros(d.n * d.o * p);
    // Images are handed out one at a time, not in one run a thread: each is independent, and
    // a thread that starts late (the other drawing the dropout masks, `McDenseHead::
    // forward_train`) then takes fewer of them. Each run of images takes the thread's
    // `Reused` buffer, with no allocation.
    out.par_chunks_mut(d.o * p)
        .with_min_len(1)
        .enumerate()
        .for_each_init(
            || Reused::take(scratch),
            |buffer, (image, out)| {
                vectorized(ForwardImage {
                    x: &x[image * d.image()..][..d.image()],
                    scratch: buffer.get(scratch),
                    out,
                    w,
                    bias: &bias,
                    d,
                    g,
                    activation,
                })
            },
        );
    tensor(out, [d.n, d.o, d.oh, d.ow])
}

/// One image's forward pass: its columns in `scratch`, then `out` `[O, P]`.
struct ForwardImage<'a> {
    x: &'a [f32],
    scratch: &'a mut [f32],
    out: &'a mut [f32],
    w: Matrix<'a>,
    bias: &'a [f32],
    d: &'a Dims,
    g: &'a Geometry,
    activation: Activation,
}

impl pulp::WithSimd for ForwardImage<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            x,
            scratch,
            out,
            w,
            bias,
            d,
            g,
            activation,
        } = self;
        let (p, padded) = (d.p(), padded_positions(d));
        let (cols, rows) = scratch.split_at_mut(d.k() * padded);
        im2col(x, cols, padded, d, g);
        let cols = Matrix::new(cols, d.k(), padded);
        if padded == p {
            biased_product(out, w, cols, bias);
        } else {
            biased_product(rows, w, cols, bias);
            for (out, row) in out.chunks_mut(p).zip(rows.chunks(padded)) {
                out.copy_from_slice(&row[..p]);
            }
        }
        if activation == Activation::Relu {
            relu(out);
        }
    }
}

/// `rows [O, P]` = `bias` (one value a row) + `w [O, K]` × `cols [K, P]`: the bias first,
/// the product added to it. (Written column-major and then transposed, the Gal CNN's second
/// layer was 4% faster and the small VGG's training 7% slower: the transpose's scattered
/// writes over 1024 positions.)
#[inline(always)]
fn biased_product(rows: &mut [f32], w: Matrix<'_>, cols: Matrix<'_>, bias: &[f32]) {
    for (row, b) in rows.chunks_mut(cols.columns()).zip(bias) {
        row.fill(*b);
    }
    gemm(rows, w, cols, true);
}

/// `dst [columns, rows]` = `src [rows, columns]` transposed, both row-major.
fn transpose(src: &[f32], dst: &mut [f32], rows: usize, columns: usize) {
    for (row, values) in src.chunks(columns).enumerate() {
        for (column, value) in values.iter().enumerate() {
            dst[column * rows + row] = *value;
        }
    }
}

/// Adds to each `db[o]` the sum of row `o` of `rows` `[O, P]`, each summed left to right from
/// −0.0 as `Iterator::sum` does (the same values), eight rows at a time so that their sums
/// do not wait on one another (one sum is a chain of `P` dependent additions).
#[inline(always)]
fn add_row_sums(db: &mut [f32], rows: &[f32], p: usize) {
    const LANES: usize = 8;
    for (db, group) in db.chunks_exact_mut(LANES).zip(rows.chunks_exact(LANES * p)) {
        // The rows as fixed slices and the sums as a fixed array, which the compiler keeps
        // in registers (with a loop over `chunks_exact`, the sums went through the stack
        // at every position: 2% of a Gal CNN training step).
        let rows: [&[f32]; LANES] = std::array::from_fn(|lane| &group[lane * p..][..p]);
        let mut sums = [-0.0f32; LANES];
        for position in 0..p {
            for (sum, row) in sums.iter_mut().zip(rows) {
                *sum += row[position];
            }
        }
        for (db, sum) in db.iter_mut().zip(sums) {
            *db += sum;
        }
    }
    let rest = db.len() / LANES * LANES;
    for (db, row) in db[rest..].iter_mut().zip(rows[rest * p..].chunks_exact(p)) {
        *db += row.iter().fold(-0.0f32, |sum, value| sum + value);
    }
}

/// A thread's share of the weight's and the bias's gradients.
struct Shares {
    /// The weight's, column-major (`[K, O]`; see [`gemm_into_columns`]).
    dw: Vec<f32>,
    db: Vec<f32>,
}

impl Shares {
    fn zeros(d: &Dims) -> Self {
        Self {
            dw: vec![0f32; d.o * d.k()],
            db: vec![0f32; d.o],
        }
    }

    /// Two threads' shares added.
    fn merge(mut self, other: Self) -> Self {
        for (a, b) in self.dw.iter_mut().zip(&other.dw) {
            *a += b;
        }
        for (a, b) in self.db.iter_mut().zip(&other.db) {
            *a += b;
        }
        self
    }
}

/// A worker thread's buffers: one image's columns and its input gradient's (in one
/// [`Reused`] buffer), the sparse kernels' buffers, and its [`Shares`].
struct Scratch {
    buffer: Reused,
    sparse: sparse::Buffers,
    shares: Shares,
}

/// `step` over `images` (each with its input gradient's slice when one is wanted), each thread
/// into its own [`Scratch`]; the threads' shares summed.
fn sum_shares<'a>(
    images: impl ParallelIterator<Item = (usize, Option<&'a mut [f32]>)>,
    d: &Dims,
    scratch: usize,
    step: &(impl Fn(usize, &mut Scratch, Option<&'a mut [f32]>) + Sync),
) -> Shares {
    images
        .fold(
            || Scratch {
                buffer: Reused::take(scratch),
                sparse: sparse::Buffers::new(),
                shares: Shares::zeros(d),
            },
            |mut s, (image, dx)| {
                step(image, &mut s, dx);
                s
            },
        )
        .map(|s| s.shares)
        .reduce(|| Shares::zeros(d), Shares::merge)
}

/// What each image's backward pass reads.
struct BackwardPass<'a> {
    xs: &'a [f32],
    grads: &'a [f32],
    relu_out: Option<&'a [f32]>,
    w: Matrix<'a>,
    wide: Option<&'a Wide>,
    d: &'a Dims,
    g: &'a Geometry,
    /// Whether the weight's and the bias's gradients are wanted.
    need: [bool; 2],
    /// Which gradients (input, weight) the [`sparse`] kernels cover for this layer (they
    /// are used for an image whose output gradient is sparse enough).
    sparse: [bool; 2],
    /// The masked output gradient's length in the scratch buffer.
    masked: usize,
    /// The scratch buffer's length.
    scratch: usize,
}

/// One image's backward pass: its shares of the weight's and bias's gradients into `s`, and
/// its input gradient into `dx` when one is wanted.
struct BackwardImage<'a, 'b> {
    pass: &'a BackwardPass<'a>,
    image: usize,
    s: &'b mut Scratch,
    dx: Option<&'b mut [f32]>,
}

impl pulp::WithSimd for BackwardImage<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { pass, image, s, dx } = self;
        let BackwardPass {
            xs,
            grads,
            relu_out,
            w,
            wide,
            d,
            g,
            need: [need_w, need_b],
            sparse,
            masked,
            scratch,
        } = *pass;
        let (k, p) = (d.k(), d.p());
        let (masked, buffer) = s.buffer.get(scratch).split_at_mut(masked);
        let image_grad = &grads[image * d.o * p..][..d.o * p];
        let grad = match relu_out {
            Some(out) => {
                relu_backward(&out[image * d.o * p..][..d.o * p], image_grad, masked);
                Matrix::new(masked, d.o, p)
            }
            None => Matrix::new(image_grad, d.o, p),
        };
        if need_b {
            add_row_sums(&mut s.shares.db, grad.values, p);
        }
        // The sparse kernels give the dense products' values bit for bit; which of the two
        // an image takes is only a matter of speed.
        let wanted = [dx.is_some() && sparse[0], need_w && sparse[1]];
        let [sparse_x, sparse_w] = if wanted.contains(&true) {
            let nonzero = grad.values.iter().filter(|v| **v != 0.0).count();
            if sparse::worth(nonzero, grad.values.len()) {
                s.sparse.nonzeros.list(grad.values, d);
                wanted
            } else {
                [false; 2]
            }
        } else {
            [false; 2]
        };
        let x = &xs[image * d.image()..][..d.image()];
        let (cols, rest) = buffer.split_at_mut(k * p);
        if need_w {
            if sparse_w {
                sparse::add_weight_grad(simd, x, &mut s.shares.dw, &mut s.sparse, d, g);
            } else {
                im2col(x, cols, p, d, g);
                gemm_into_columns(&mut s.shares.dw, grad, Matrix::new(cols, k, p).t(), true);
            }
        }
        if let Some(dx) = dx {
            match wide {
                _ if sparse_x => sparse::input_grad(simd, w.values, dx, &mut s.sparse, d, g),
                Some(wide) => wide.input_grad(grad.values, w, dx, rest, d),
                None => {
                    gemm(rest, w.t(), grad, false);
                    col2im(rest, dx, d, g);
                }
            }
        }
    }
}

/// The gradients of `x`, `weight` and the bias that `need` asks for, from the output's
/// gradient `grad` `[N, O, OH, OW]`, in one pass over the images; when the forward pass
/// ended in a relu, `relu_out` is its output and `grad` is masked by it first.
pub(crate) fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    relu_out: Option<&FlexTensor>,
    d: &Dims,
    g: &Geometry,
    [need_x, need_w, need_b]: [bool; 3],
) -> Grads {
    let (xs, weights, grads) = (values(x), values(weight), values(grad));
    let relu_out = relu_out.map(values);
    let (k, p) = (d.k(), d.p());
    let wide = Wide::of(d, g);
    // The masked output gradient (after a relu), the columns, then the input gradient's
    // buffers.
    let masked = if relu_out.is_some() { d.o * p } else { 0 };
    let scratch = masked + k * p + wide.as_ref().map_or(k * p, |wide| wide.scratch(d));
    let pass = BackwardPass {
        xs: &xs,
        grads: &grads,
        relu_out: relu_out.as_deref(),
        w: Matrix::new(&weights, d.o, k),
        wide: wide.as_ref(),
        d,
        g,
        need: [need_w, need_b],
        sparse: sparse::covers(d, g, wide.as_ref().map(|wide| wide.len)),
        masked,
        scratch,
    };
    let step = |image: usize, s: &mut Scratch, dx: Option<&mut [f32]>| {
        vectorized(BackwardImage {
            pass: &pass,
            image,
            s,
            dx,
        })
    };
    let mut dx = if need_x {
        zeros(d.n * d.image())
    } else {
        Vec::new()
    };
    let shares = if need_x {
        let images = dx.par_chunks_mut(d.image()).with_min_len(per_thread(d.n));
        sum_shares(
            images.enumerate().map(|(i, dx)| (i, Some(dx))),
            d,
            scratch,
            &step,
        )
    } else {
        let images = (0..d.n).into_par_iter().with_min_len(per_thread(d.n));
        sum_shares(images.map(|i| (i, None)), d, scratch, &step)
    };
    Grads {
        x: need_x.then(|| tensor(dx, [d.n, d.c, d.h, d.w])),
        weight: need_w.then(|| {
            let mut dw = vec![0f32; d.o * k];
            transpose(&shares.dw, &mut dw, k, d.o);
            tensor(dw, [d.o, d.c, d.kh, d.kw])
        }),
        bias: need_b.then(|| tensor(shares.db, [d.o])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-1, 1) from a fixed linear congruential sequence, some of them zero.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if i % 17 == 0 {
                    0.0
                } else {
                    (state >> 8) as f32 / (1 << 23) as f32 - 1.0
                }
            })
            .collect()
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn the_wide_input_gradient_is_the_rows_one() {
        // input [C, H, W], filters, kernel, padding, dilation: the Gal CNN's second layer, a
        // VGG's padded 3×3, odd and rectangular shapes, dilation, a kernel as large as the
        // padded input, a 1×1 kernel.
        let cases = [
            ([32, 25, 25], 32, [4, 4], [0, 0], [1, 1]),
            ([8, 16, 16], 16, [3, 3], [1, 1], [1, 1]),
            ([5, 13, 11], 7, [3, 4], [0, 0], [1, 1]),
            ([3, 9, 12], 4, [3, 2], [2, 1], [1, 1]),
            ([4, 15, 14], 6, [3, 3], [0, 1], [2, 3]),
            ([2, 5, 6], 3, [7, 8], [1, 1], [1, 1]),
            ([6, 7, 7], 5, [1, 1], [0, 0], [1, 1]),
        ];
        for (i, ([c, h, w], o, [kh, kw], padding, dilation)) in cases.into_iter().enumerate() {
            let g = Geometry {
                stride: [1, 1],
                padding,
                dilation,
            };
            let d = Dims::of(&[1, c, h, w].into(), &[o, c, kh, kw].into(), &g).expect("a case");
            let weights = values(o * d.k(), 1 + i as u32);
            let grad = values(o * d.p(), 100 + i as u32);
            let w = Matrix::new(&weights, o, d.k());

            let mut rows = vec![0f32; d.image()];
            let mut dcols = vec![0f32; d.k() * d.p()];
            gemm(&mut dcols, w.t(), Matrix::new(&grad, o, d.p()), false);
            col2im(&dcols, &mut rows, &d, &g);

            let wide = Wide::of(&d, &g).expect("stride 1");
            let mut ours = vec![0f32; d.image()];
            // Stale values in the scratch, as a reused buffer has them.
            let mut scratch = vec![f32::NAN; wide.scratch(&d)];
            wide.input_grad(&grad, w, &mut ours, &mut scratch, &d);

            assert_eq!(bits(&ours), bits(&rows), "case {i}: {d:?} {g:?}");
            assert!(rows.iter().any(|v| *v != 0.0), "case {i} has a gradient");
        }
    }

    #[test]
    fn a_column_major_product_has_the_row_major_ones_values() {
        // The Gal CNN's weight gradient and forward shapes, and an odd one; accumulated onto
        // values already there, as the backward pass does.
        for (i, (m, k, n)) in [(32, 484, 512), (32, 512, 484), (7, 13, 5)]
            .into_iter()
            .enumerate()
        {
            let seed = 10 * i as u32;
            let (lhs, rhs, start) = (
                values(m * k, seed),
                values(k * n, seed + 1),
                values(m * n, seed + 2),
            );
            let (a, b) = (Matrix::new(&lhs, m, k), Matrix::new(&rhs, k, n));
            let mut rows = start.clone();
            gemm(&mut rows, a, b, true);
            let mut columns = vec![0f32; m * n];
            transpose(&start, &mut columns, m, n);
            gemm_into_columns(&mut columns, a, b, true);
            let mut back = vec![0f32; m * n];
            transpose(&columns, &mut back, n, m);
            assert_eq!(bits(&back), bits(&rows), "[{m}, {k}] × [{k}, {n}]");
        }
    }

    #[test]
    fn row_sums_are_iterator_sums() {
        // Row counts below, at and above a multiple of eight; a row of negative zeros.
        for (rows, p) in [(3, 7), (8, 484), (13, 100)] {
            let mut values = values(rows * p, rows as u32);
            values[..p].fill(-0.0);
            let mut ours = vec![-0.0f32; rows];
            add_row_sums(&mut ours, &values, p);
            let expected: Vec<f32> = values
                .chunks(p)
                .map(|row| -0.0 + row.iter().sum::<f32>())
                .collect();
            assert_eq!(bits(&ours), bits(&expected), "{rows} rows of {p}");
        }
    }

    #[test]
    fn padded_positions_give_the_unpadded_products_bit_for_bit() {
        // The Gal CNN's second layer (484 positions, padded to 496), an odd layer padded
        // (88 to 96) and one kept (`K < 4·O`); with and without the relu.
        let cases = [
            ([2, 32, 25, 25], 32, [4, 4]),
            ([2, 5, 13, 11], 7, [3, 4]),
            ([2, 1, 28, 28], 32, [4, 4]),
        ];
        let g = Geometry {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
        };
        for (i, (input, o, [kh, kw])) in cases.into_iter().enumerate() {
            let c = input[1];
            let d = Dims::of(&input.into(), &[o, c, kh, kw].into(), &g).expect("a case");
            let seed = 10 * i as u32;
            let (x, weights, bias) = (
                values(input.iter().product(), seed),
                values(o * d.k(), seed + 1),
                values(o, seed + 2),
            );
            for activation in [Activation::Identity, Activation::Relu] {
                let ours = forward(
                    &tensor(x.clone(), input),
                    &tensor(weights.clone(), [o, c, kh, kw]),
                    &tensor(bias.clone(), [o]),
                    &d,
                    &g,
                    activation,
                );
                let mut expected = Vec::new();
                for image in x.chunks(d.image()) {
                    let mut cols = vec![0f32; d.k() * d.p()];
                    im2col(image, &mut cols, d.p(), &d, &g);
                    let mut out = vec![0f32; o * d.p()];
                    biased_product(
                        &mut out,
                        Matrix::new(&weights, o, d.k()),
                        Matrix::new(&cols, d.k(), d.p()),
                        &bias,
                    );
                    if activation == Activation::Relu {
                        relu(&mut out);
                    }
                    expected.extend(out);
                }
                let ours = ours.as_slice::<f32>().expect("f32 values");
                assert_eq!(bits(ours), bits(&expected), "case {i}, {activation:?}");
            }
        }
    }

    /// A gradient like a relu's and a 2×2 max-pool's: in each channel, one position of each
    /// pooling window, none in about one window in five; some values negative zeros.
    fn pooled(o: usize, d: &Dims, seed: u32) -> Vec<f32> {
        let draws = values(o * d.p() * 2, seed);
        let mut grad = vec![0f32; o * d.p()];
        for (channel, grad) in grad.chunks_mut(d.p()).enumerate() {
            for wy in 0..d.oh.div_ceil(2) {
                for wx in 0..d.ow.div_ceil(2) {
                    let draw = draws[(channel * d.p() + wy * d.ow + wx) * 2];
                    let pick = draws[(channel * d.p() + wy * d.ow + wx) * 2 + 1];
                    let (dy, dx) = (usize::from(pick > 0.0), usize::from(pick.abs() > 0.5));
                    let (y, x) = ((2 * wy + dy).min(d.oh - 1), (2 * wx + dx).min(d.ow - 1));
                    grad[y * d.ow + x] = match draw {
                        v if v.abs() < 0.2 => 0.0,
                        v if v.abs() < 0.25 => -0.0,
                        v => v * 1e-2,
                    };
                }
            }
        }
        grad
    }

    /// The sparse kernels through the widest vectors this machine has.
    struct Sparse<'a> {
        x: &'a [f32],
        w: &'a [f32],
        grad: &'a [f32],
        dw: &'a mut [f32],
        dx: &'a mut [f32],
        d: &'a Dims,
        g: &'a Geometry,
    }

    impl pulp::WithSimd for Sparse<'_> {
        type Output = ();

        fn with_simd<S: pulp::Simd>(self, simd: S) {
            let mut buffers = sparse::Buffers::new();
            // Stale lists, as a thread's buffers have them from its last image.
            buffers
                .nonzeros
                .list(&vec![1.0; self.d.o * self.d.p()], self.d);
            buffers.nonzeros.list(self.grad, self.d);
            sparse::add_weight_grad(simd, self.x, self.dw, &mut buffers, self.d, self.g);
            sparse::input_grad(simd, self.w, self.dx, &mut buffers, self.d, self.g);
        }
    }

    #[test]
    fn the_sparse_kernels_give_the_dense_products_bit_for_bit() {
        // input [C, H, W], filters, kernel, padding: the Gal CNN's two layers, the small
        // CNN's second, a VGG's padded 3×3, channels past one block of 16, odd and
        // rectangular shapes, a 1×1 kernel.
        let cases = [
            ([32, 25, 25], 32, [4, 4], [0, 0]),
            ([1, 28, 28], 32, [4, 4], [0, 0]),
            ([32, 12, 12], 64, [5, 5], [0, 0]),
            ([8, 16, 16], 16, [3, 3], [1, 1]),
            ([37, 9, 10], 5, [3, 3], [1, 1]),
            ([5, 13, 11], 7, [3, 4], [0, 0]),
            ([3, 9, 12], 4, [3, 2], [2, 1]),
            ([6, 7, 7], 5, [1, 1], [0, 0]),
        ];
        for (i, ([c, h, w], o, [kh, kw], padding)) in cases.into_iter().enumerate() {
            let g = Geometry {
                stride: [1, 1],
                padding,
                dilation: [1, 1],
            };
            let d = Dims::of(&[1, c, h, w].into(), &[o, c, kh, kw].into(), &g).expect("a case");
            // The layers the kernels are for take both; a first layer (P > 512) and layers
            // whose weight-gradient product is small (`O·K ≤ 256`) keep the dense one.
            let expected = match i {
                1 | 6 | 7 => [true, false],
                _ => [true, true],
            };
            let covered = sparse::covers(&d, &g, Wide::of(&d, &g).map(|wide| wide.len));
            assert_eq!(covered, expected, "case {i}");
            let seed = 10 * i as u32;
            let (x, weights, start) = (
                values(d.image(), seed),
                values(o * d.k(), seed + 1),
                values(o * d.k(), seed + 2),
            );
            // Pooled gradients, and dense ones: the kernels must agree on any gradient.
            for (kind, grad) in [
                ("pooled", pooled(o, &d, seed + 3)),
                ("dense", values(o * d.p(), seed + 4)),
            ] {
                let w = Matrix::new(&weights, o, d.k());
                let mut cols = vec![0f32; d.k() * d.p()];
                im2col(&x, &mut cols, d.p(), &d, &g);
                let mut dw = start.clone();
                gemm_into_columns(
                    &mut dw,
                    Matrix::new(&grad, o, d.p()),
                    Matrix::new(&cols, d.k(), d.p()).t(),
                    true,
                );
                let wide = Wide::of(&d, &g).expect("stride 1");
                let mut dx = vec![0f32; d.image()];
                wide.input_grad(&grad, w, &mut dx, &mut vec![0f32; wide.scratch(&d)], &d);

                let (mut ours_dw, mut ours_dx) = (start.clone(), vec![0f32; d.image()]);
                vectorized(Sparse {
                    x: &x,
                    w: &weights,
                    grad: &grad,
                    dw: &mut ours_dw,
                    dx: &mut ours_dx,
                    d: &d,
                    g: &g,
                });
                // Equal as numbers: a zero's sign may differ (the module's docs say why).
                let [input, weight] = covered;
                if weight {
                    assert_eq!(ours_dw, dw, "case {i}, {kind}: weight gradient");
                }
                if input {
                    assert_eq!(ours_dx, dx, "case {i}, {kind}: input gradient");
                }
                assert!(
                    dx.iter().any(|v| *v != 0.0),
                    "case {i}, {kind} has a gradient"
                );
            }
        }
    }

    #[test]
    fn strided_layers_keep_the_rows_layout() {
        let g = Geometry {
            stride: [1, 2],
            padding: [0, 0],
            dilation: [1, 1],
        };
        let d = Dims::of(&[1, 2, 9, 9].into(), &[3, 2, 3, 3].into(), &g).expect("a case");
        assert!(Wide::of(&d, &g).is_none());
    }
}
