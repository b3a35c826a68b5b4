//! The backward pass of an image whose output gradient is mostly zeros.
//!
//! After a relu and a 2×2 max-pool, at most one position in four of each output channel has
//! a gradient (one per pooling window, none where the relu was off): on the Gal CNN's second
//! layer about one in five. The dense products multiply every zero; these kernels visit only
//! the nonzero values, in the order the dense products add them, so the results are the
//! dense ones bit for bit (see below). They cover stride-1, undilated layers, where a
//! kernel row's taps are one contiguous run of the (padded) input plane, within the limits
//! [`covers`] gives.
//!
//! Why the values are the same: the `gemm` crate's kernels (gemm-common 0.19's
//! `microkernel!`) compute each output element as one chain of multiply-adds over the inner
//! dimension in ascending order, from `+0.0`, then add that to the destination (or store
//! it); where the CPU has FMA (x86-64 v3 and v4, the latter checked by the tests here) those
//! are fused, as ours are. (On a CPU without FMA the two paths may differ in the last bit.) A zero
//! term changes such a chain only in the sign of an exact zero (`−0.0 + +0.0`), and a zero
//! result's sign reaches no later value (it is added, or scaled, never divided by). So:
//! - the weight gradient `Σ_p dOut[o, p]·cols[k, p]` is, for each `o`, the chain over its
//!   nonzero positions in ascending order, added to the thread's share;
//! - the input gradient's columns `Σ_o W[o, k]·dOut[o, p]` are, for each position, the
//!   chain over its nonzero channels in ascending order; they are added into the plane tap
//!   after tap in ascending order, as [`super::per_image`]'s wide layout adds them, by
//!   visiting the positions in descending order (a plane value's taps then arrive in
//!   ascending order: tap `(i, j)` reaches it from position `(y − i, x − j)`).
//!
//! The tests check each kernel against the dense products on sparse and dense gradients.

use super::{Dims, crop};
use crate::conv::Geometry;

/// Input channels per block: a block's window values at one position (`16·kh·kw`) and its
/// weights (`O·16·kh·kw`: 32 KB on the Gal CNN's second layer) stay in the L1 cache.
const CHANNELS: usize = 16;
/// Positions whose window values the weight gradient builds at a time (24 KB there).
const POSITIONS: usize = 24;

/// Which of a layer's gradients these kernels compute: `[input, weight]`; `wide` is the
/// length of the dense input gradient's wide columns ([`super::per_image`]'s `Wide`), `None`
/// where that layout does not apply (strided layers).
///
/// Both need stride 1 and no dilation. Beyond that, each needs the dense product it
/// replaces to be one chain per element (gemm-common 0.19's `gemm_basic_generic`): `gemm`
/// splits an inner dimension longer than 512 into blocks whose length depends on the
/// machine's caches, so the weight gradient needs `P ≤ 512` and the input gradient
/// `O ≤ 512`; and `gemm` has other kernels for products of up to 256 values, with one row or
/// one column, or an inner dimension of one or two.
pub(super) fn covers(d: &Dims, g: &Geometry, wide: Option<usize>) -> [bool; 2] {
    let plain = g.stride == [1, 1] && g.dilation == [1, 1];
    let chained = |m: usize, n: usize, depth: usize| {
        m > 1 && n > 1 && m * n > 256 && (3..=512).contains(&depth)
    };
    [
        plain && wide.is_some_and(|wide| chained(d.k(), wide, d.o)),
        plain && chained(d.o, d.k(), d.p()),
    ]
}

/// Whether an image with `nonzero` of its `total` output-gradient values nonzero is worth
/// the sparse kernels: up to 30%. In `train/gal_cnn/b64` the second layer's images took
/// 14 µs for the lists, 110 µs for the weight gradient and 90 µs for the input gradient,
/// against 182 µs and 213 µs through the dense products (a throwaway probe timing each
/// image; a pooled gradient there has at most a quarter of its values nonzero). Denser
/// gradients were not timed: 30% keeps the kernels to gradients a pooling thinned.
pub(super) fn worth(nonzero: usize, total: usize) -> bool {
    10 * nonzero <= 3 * total
}

/// An image's nonzero output-gradient values `[O, P]`, listed twice: by channel (positions
/// ascending) for the weight gradient, and by position (channels ascending) for the input
/// gradient. Its buffers are kept from image to image.
pub(super) struct Nonzeros {
    /// Where channel `o`'s entries start in `positions` and `by_channel`; `O + 1` values.
    starts: Vec<usize>,
    positions: Vec<u32>,
    by_channel: Vec<f32>,
    /// How many nonzero channels each position has.
    counts: Vec<u32>,
    /// Position `p`'s channels and values in slots `p·O..p·O + counts[p]`.
    channels: Vec<u32>,
    by_position: Vec<f32>,
}

impl Nonzeros {
    /// Empty lists.
    pub(super) fn new() -> Self {
        Self {
            starts: Vec::new(),
            positions: Vec::new(),
            by_channel: Vec::new(),
            counts: Vec::new(),
            channels: Vec::new(),
            by_position: Vec::new(),
        }
    }

    /// Lists `grad` `[O, P]`'s nonzero values.
    ///
    /// Sixteen values at a time: a bit mask of the nonzero ones (compared as one vector),
    /// then its set bits. (Branching on each value, the mispredictions took most of the time;
    /// writing every value and keeping the nonzero ones, as branch-free compaction does, was
    /// slower still: a store per value into the per-position slots.)
    pub(super) fn list(&mut self, grad: &[f32], d: &Dims) {
        const GROUP: usize = 16;
        let (o, p) = (d.o, d.p());
        self.starts.clear();
        self.positions.clear();
        self.by_channel.clear();
        self.counts.clear();
        self.counts.resize(p, 0);
        self.channels.resize(o * p, 0);
        self.by_position.resize(o * p, 0.0);
        self.starts.push(0);
        for (channel, row) in grad.chunks_exact(p).enumerate() {
            for (group, values) in row.chunks(GROUP).enumerate() {
                let mut nonzero = values
                    .iter()
                    .enumerate()
                    .fold(0u32, |mask, (j, v)| mask | (u32::from(*v != 0.0) << j));
                while nonzero != 0 {
                    let position = group * GROUP + nonzero.trailing_zeros() as usize;
                    nonzero &= nonzero - 1;
                    let value = row[position];
                    self.positions.push(position as u32);
                    self.by_channel.push(value);
                    let slot = position * o + self.counts[position] as usize;
                    self.channels[slot] = channel as u32;
                    self.by_position[slot] = value;
                    self.counts[position] += 1;
                }
            }
            self.starts.push(self.positions.len());
        }
    }
}

/// A worker thread's buffers for these kernels, kept from image to image.
pub(super) struct Buffers {
    pub(super) nonzeros: Nonzeros,
    /// The padded input planes (weight gradient) or the padded gradient planes (input
    /// gradient) when the layer pads.
    planes: Vec<f32>,
    /// Window values of a block of positions (weight gradient) or one position's columns'
    /// gradient (input gradient).
    windows: Vec<f32>,
    /// The weight gradient's chains, `[O, 16·kh·kw]`.
    chains: Vec<f32>,
    /// Each channel's next entry in `nonzeros`.
    cursors: Vec<usize>,
}

impl Buffers {
    /// Empty buffers.
    pub(super) fn new() -> Self {
        Self {
            nonzeros: Nonzeros::new(),
            planes: Vec::new(),
            windows: Vec::new(),
            chains: Vec::new(),
            cursors: Vec::new(),
        }
    }
}

/// `out` continued as the chain `out = coefficient·m[row − first][offset..] + out` over
/// `entries` in order, each step one fused multiply-add (rounded once), lanes apart.
#[inline(always)]
fn chain<S: pulp::Simd>(
    simd: S,
    (rows, coefficients): (&[u32], &[f32]),
    m: &[f32],
    (stride, first, offset): (usize, usize, usize),
    out: &mut [f32],
) {
    let lanes = S::F32_LANES;
    let mut done = 0;
    // Sixteen vectors of sums in registers at a time, then four, then one, each kept there
    // over all the entries: one load and one multiply-add per vector and entry.
    macro_rules! vectors {
        ($count:expr) => {
            while out.len() - done >= $count * lanes {
                let (sums, _) = S::as_mut_simd_f32s(&mut out[done..][..$count * lanes]);
                let mut acc: [S::f32s; $count] = std::array::from_fn(|v| sums[v]);
                for (&row, &coefficient) in rows.iter().zip(coefficients) {
                    let c = simd.splat_f32s(coefficient);
                    let start = (row as usize - first) * stride + offset + done;
                    let (values, _) = S::as_simd_f32s(&m[start..][..$count * lanes]);
                    for (acc, value) in acc.iter_mut().zip(values) {
                        *acc = simd.mul_add_f32s(c, *value, *acc);
                    }
                }
                sums.copy_from_slice(&acc);
                done += $count * lanes;
            }
        };
    }
    vectors!(16);
    vectors!(4);
    vectors!(1);
    for (j, sum) in out.iter_mut().enumerate().skip(done) {
        for (&row, &coefficient) in rows.iter().zip(coefficients) {
            let start = (row as usize - first) * stride + offset;
            *sum = coefficient.mul_add(m[start + j], *sum);
        }
    }
}

/// One channel's window at a position: `window` `[kh, kw]` from `plane`'s rows `start`,
/// `start + width`, …. The kernel width is `KW`, or `kw` where `KW` is 0: a constant width
/// makes each row one vector move (with the width known only at run time, each row went
/// through a general copy loop, and building the windows took most of the weight
/// gradient's time).
#[inline(always)]
fn copy_rows<const KW: usize>(
    window: &mut [f32],
    plane: &[f32],
    start: usize,
    width: usize,
    kw: usize,
) {
    if KW == 0 {
        for (i, row) in window.chunks_exact_mut(kw).enumerate() {
            row.copy_from_slice(&plane[start + i * width..][..kw]);
        }
    } else {
        for (i, row) in window.chunks_exact_mut(KW).enumerate() {
            let row: &mut [f32; KW] = row.try_into().expect("a row of KW values");
            *row = plane[start + i * width..][..KW]
                .try_into()
                .expect("a row of KW values");
        }
    }
}

/// `plane`'s rows `start`, `start + width`, … `+= columns` `[kh, kw]`, element by element;
/// `KW` as in [`copy_rows`].
#[inline(always)]
fn add_rows<const KW: usize>(
    plane: &mut [f32],
    columns: &[f32],
    start: usize,
    width: usize,
    kw: usize,
) {
    if KW == 0 {
        for (i, row) in columns.chunks_exact(kw).enumerate() {
            for (t, v) in plane[start + i * width..][..kw].iter_mut().zip(row) {
                *t += v;
            }
        }
    } else {
        for (i, row) in columns.chunks_exact(KW).enumerate() {
            let row: &[f32; KW] = row.try_into().expect("a row of KW values");
            let target: &mut [f32; KW] = (&mut plane[start + i * width..][..KW])
                .try_into()
                .expect("a row of KW values");
            // All loads before the stores: a loop of `+=` stayed scalar additions (the
            // compiler could not tell the slices apart).
            let sum: [f32; KW] = std::array::from_fn(|j| target[j] + row[j]);
            *target = sum;
        }
    }
}

/// `$f::<KW>(…)` with the kernel width `$kw` as a constant where it is 3, 4 or 5, else
/// `$f::<0>(…)`.
macro_rules! by_width {
    ($kw:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $kw {
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            _ => $f::<0>($($arg),*),
        }
    };
}

/// The planes windows are read from or gradients added to: `[C, H + 2·ph, W + 2·pw]`.
struct Planes {
    height: usize,
    width: usize,
}

impl Planes {
    fn of(d: &Dims, g: &Geometry) -> Self {
        Self {
            height: d.h + 2 * g.padding[0],
            width: d.w + 2 * g.padding[1],
        }
    }

    fn len(&self) -> usize {
        self.height * self.width
    }
}

/// Adds one image's weight gradient to `dw` (`[K, O]`, column-major as
/// [`super::gemm_into_columns`] writes it), from its input `x` `[C, H, W]` and the nonzeros
/// of its output gradient, listed in `buffers.nonzeros`.
#[inline(always)]
pub(super) fn add_weight_grad<S: pulp::Simd>(
    simd: S,
    x: &[f32],
    dw: &mut [f32],
    buffers: &mut Buffers,
    d: &Dims,
    g: &Geometry,
) {
    let Buffers {
        nonzeros: nz,
        planes,
        windows,
        chains,
        cursors,
    } = buffers;
    let shape = Planes::of(d, g);
    let source: &[f32] = if g.padding == [0, 0] {
        x
    } else {
        planes.clear();
        planes.resize(d.c * shape.len(), 0.0);
        let [py, px] = g.padding;
        for (plane, image) in planes.chunks_mut(shape.len()).zip(x.chunks(d.h * d.w)) {
            for (y, row) in image.chunks(d.w).enumerate() {
                plane[(y + py) * shape.width + px..][..d.w].copy_from_slice(row);
            }
        }
        planes
    };
    let (taps, p) = (d.kh * d.kw, d.p());
    let block = CHANNELS.min(d.c) * taps;
    windows.resize(POSITIONS * block, 0.0);
    chains.resize(d.o * block, 0.0);
    for first_channel in (0..d.c).step_by(CHANNELS) {
        let channels = CHANNELS.min(d.c - first_channel);
        let width = channels * taps;
        let chains = &mut chains[..d.o * width];
        chains.fill(0.0);
        cursors.clear();
        cursors.extend_from_slice(&nz.starts[..d.o]);
        for first in (0..p).step_by(POSITIONS) {
            let end = (first + POSITIONS).min(p);
            for (position, window) in (first..end).zip(windows.chunks_mut(width)) {
                let (y, x) = (position / d.ow, position % d.ow);
                let start = y * shape.width + x;
                for (c, window) in window.chunks_mut(taps).enumerate() {
                    let plane = &source[(first_channel + c) * shape.len()..][..shape.len()];
                    by_width!(d.kw, copy_rows(window, plane, start, shape.width, d.kw));
                }
            }
            for (o, (cursor, sums)) in cursors.iter_mut().zip(chains.chunks_mut(width)).enumerate()
            {
                let from = *cursor;
                let to = from
                    + nz.positions[from..nz.starts[o + 1]]
                        .iter()
                        .take_while(|&&position| (position as usize) < end)
                        .count();
                if to > from {
                    let entries = (&nz.positions[from..to], &nz.by_channel[from..to]);
                    chain(simd, entries, windows, (width, first, 0), sums);
                }
                *cursor = to;
            }
        }
        for (o, sums) in chains.chunks(width).enumerate() {
            for (j, sum) in sums.iter().enumerate() {
                dw[(first_channel * taps + j) * d.o + o] += sum;
            }
        }
    }
}

/// One image's input gradient into `dx` `[C, H, W]` (zeros on entry), from the weights `w`
/// `[O, K]` and the nonzeros of its output gradient, listed in `buffers.nonzeros`.
#[inline(always)]
pub(super) fn input_grad<S: pulp::Simd>(
    simd: S,
    w: &[f32],
    dx: &mut [f32],
    buffers: &mut Buffers,
    d: &Dims,
    g: &Geometry,
) {
    let Buffers {
        nonzeros,
        planes,
        windows: columns,
        ..
    } = buffers;
    let shape = Planes::of(d, g);
    columns.resize(CHANNELS.min(d.c) * d.kh * d.kw, 0.0);
    for (block, dx) in dx.chunks_mut(CHANNELS * d.h * d.w).enumerate() {
        let channels = dx.len() / (d.h * d.w);
        let gradients = Gradients {
            nonzeros,
            w,
            first_channel: block * CHANNELS,
            d,
            shape: &shape,
        };
        if g.padding == [0, 0] {
            gradients.add(simd, columns, dx);
        } else {
            planes.clear();
            planes.resize(channels * shape.len(), 0.0);
            gradients.add(simd, columns, planes);
            for (dx, plane) in dx.chunks_mut(d.h * d.w).zip(planes.chunks(shape.len())) {
                crop(plane, dx, shape.width, g.padding, d);
            }
        }
    }
}

/// One block of input channels' share of [`input_grad`].
struct Gradients<'a> {
    nonzeros: &'a Nonzeros,
    w: &'a [f32],
    first_channel: usize,
    d: &'a Dims,
    shape: &'a Planes,
}

impl Gradients<'_> {
    /// Adds the block's gradient into `planes` (one of `shape` for each channel), each
    /// position's columns' gradient made in `columns`.
    #[inline(always)]
    fn add<S: pulp::Simd>(&self, simd: S, columns: &mut [f32], planes: &mut [f32]) {
        let Self {
            nonzeros: nz,
            w,
            first_channel,
            d,
            shape,
        } = *self;
        let taps = d.kh * d.kw;
        let columns = &mut columns[..planes.len() / shape.len() * taps];
        for position in (0..d.p()).rev() {
            let count = nz.counts[position] as usize;
            if count == 0 {
                continue;
            }
            let slots = position * d.o..position * d.o + count;
            columns.fill(0.0);
            let entries = (&nz.channels[slots.clone()], &nz.by_position[slots]);
            chain(simd, entries, w, (d.k(), 0, first_channel * taps), columns);
            let start = position / d.ow * shape.width + position % d.ow;
            for (plane, columns) in planes.chunks_mut(shape.len()).zip(columns.chunks(taps)) {
                by_width!(d.kw, add_rows(plane, columns, start, shape.width, d.kw));
            }
        }
    }
}
