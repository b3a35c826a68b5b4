//! Large layers, one image at a time: each worker thread builds an image's columns `[K, P]`
//! in a scratch buffer that stays in cache, and the products run per image, images spread
//! over the threads.
//!
//! - forward: `out_n [O, P] = bias + W [O, K] × cols`, written straight into the NCHW output;
//! - backward, in one pass over the images: the bias gradient (row sums of `dOut_n`), the
//!   weight gradient `Σ_n dOut_n × colsᵀ` (the columns made again) and the input gradient
//!   `dx_n = col2im(Wᵀ × dOut_n)`.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::{Dims, Grads, Matrix, add_row, fill_row, gemm, per_thread, tensor, values};
use crate::conv::Geometry;

/// One image's columns `[K, P]`, into `cols`.
fn im2col(x: &[f32], cols: &mut [f32], d: &Dims, g: &Geometry) {
    for (row, out) in cols.chunks_mut(d.p()).enumerate() {
        fill_row(x, row, out, d, g);
    }
}

/// Adds one image's columns' gradient `[K, P]` back into its gradient `dx` `[C, H, W]`.
fn col2im(dcols: &[f32], dx: &mut [f32], d: &Dims, g: &Geometry) {
    let taps = d.kh * d.kw;
    for (c, plane) in dx.chunks_mut(d.h * d.w).enumerate() {
        for row in c * taps..(c + 1) * taps {
            add_row(&dcols[row * d.p()..][..d.p()], row, plane, d, g);
        }
    }
}

/// `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]`, plus `bias` `[O]`.
pub(crate) fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    d: &Dims,
    g: &Geometry,
) -> FlexTensor {
    let (x, weight, bias) = (values(x), values(weight), values(bias));
    let w = Matrix::new(&weight, d.o, d.k());
    let p = d.p();
    let mut out = vec![0f32; d.n * d.o * p];
    out.par_chunks_mut(d.o * p)
        .with_min_len(per_thread(d.n))
        .enumerate()
        .for_each_init(
            || vec![0f32; d.k() * p],
            |cols, (image, out)| {
                im2col(&x[image * d.image()..][..d.image()], cols, d, g);
                // The bias first, the product added to it.
                for (row, b) in out.chunks_mut(p).zip(bias.iter()) {
                    row.fill(*b);
                }
                gemm(out, w, Matrix::new(cols, d.k(), p), true);
            },
        );
    tensor(out, [d.n, d.o, d.oh, d.ow])
}

/// A worker thread's buffers: one image's columns and their gradient, and its share of the
/// weight's and the bias's gradients.
struct Scratch {
    cols: Vec<f32>,
    dcols: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

impl Scratch {
    fn new(d: &Dims) -> Self {
        let (k, p) = (d.k(), d.p());
        Self {
            cols: vec![0f32; k * p],
            dcols: vec![0f32; k * p],
            dw: vec![0f32; d.o * k],
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

/// `step` over `images` (each with its input gradient's slice when one is wanted), each thread
/// into its own [`Scratch`]; the threads' shares summed.
fn sum_shares<'a>(
    images: impl ParallelIterator<Item = (usize, Option<&'a mut [f32]>)>,
    d: &Dims,
    step: &(impl Fn(usize, &mut Scratch, Option<&'a mut [f32]>) + Sync),
) -> Scratch {
    images
        .fold(
            || Scratch::new(d),
            |mut s, (image, dx)| {
                step(image, &mut s, dx);
                s
            },
        )
        .reduce(|| Scratch::new(d), Scratch::merge)
}

/// The gradients of `x`, `weight` and the bias that `need` asks for, from the output's
/// gradient `grad` `[N, O, OH, OW]`, in one pass over the images.
pub(crate) fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    d: &Dims,
    g: &Geometry,
    [need_x, need_w, need_b]: [bool; 3],
) -> Grads {
    let (xs, weights, grads) = (values(x), values(weight), values(grad));
    let w = Matrix::new(&weights, d.o, d.k());
    let (k, p) = (d.k(), d.p());
    let step = |image: usize, s: &mut Scratch, dx: Option<&mut [f32]>| {
        let grad = Matrix::new(&grads[image * d.o * p..][..d.o * p], d.o, p);
        if need_b {
            for (db, row) in s.db.iter_mut().zip(grad.values.chunks(p)) {
                *db += row.iter().sum::<f32>();
            }
        }
        if need_w {
            im2col(&xs[image * d.image()..][..d.image()], &mut s.cols, d, g);
            gemm(&mut s.dw, grad, Matrix::new(&s.cols, k, p).t(), true);
        }
        if let Some(dx) = dx {
            gemm(&mut s.dcols, w.t(), grad, false);
            col2im(&s.dcols, dx, d, g);
        }
    };
    let mut dx = if need_x {
        vec![0f32; d.n * d.image()]
    } else {
        Vec::new()
    };
    let shares = if need_x {
        let images = dx.par_chunks_mut(d.image()).with_min_len(per_thread(d.n));
        sum_shares(images.enumerate().map(|(i, dx)| (i, Some(dx))), d, &step)
    } else {
        let images = (0..d.n).into_par_iter().with_min_len(per_thread(d.n));
        sum_shares(images.map(|i| (i, None)), d, &step)
    };
    Grads {
        x: need_x.then(|| tensor(dx, [d.n, d.c, d.h, d.w])),
        weight: need_w.then(|| tensor(shares.dw, [d.o, d.c, d.kh, d.kw])),
        bias: need_b.then(|| tensor(shares.db, [d.o])),
    }
}
