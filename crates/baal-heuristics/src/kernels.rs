//! Fused kernels for predictions that live in host memory (Burn's `flex` CPU backend).
//!
//! On the CPU, a chain of tensor ops makes one pass over memory per op, and the backend's
//! logarithm is scalar: BALD over 50000×10×20 takes ~45 ms that way. Here each item's
//! `[C, P, T]` block is read once, with a branch-free logarithm the compiler vectorises, and
//! items are spread over threads: the same scores an order of magnitude faster. GPU backends
//! keep the tensor path, where the data already is.
//!
//! [`apply_to`] says which devices these kernels are for. Flex is compiled in with this crate's
//! `flex` feature (the facade `baal` turns it on with its own); without it no device is flex,
//! and every device takes the tensor path.

use burn::tensor::Device;
use rayon::prelude::*;

use crate::reduction::{Reduction, SUM_TOLERANCE};

/// Natural logarithm for normal positive `x` (callers clamp to `f32::MIN_POSITIVE`), within
/// 1e-7 relative: split `x = m · 2^e` with `m` in `[2/3, 4/3)`, then a degree-9 polynomial in
/// `m - 1` (Cephes' `logf` coefficients). No branches, so loops over slices vectorise.
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    // x = m · 2^e with m in [2/3, 4/3): subtracting the bits of 2/3 carries into the exponent
    // field exactly when the mantissa is at least 4/3, so no compare-and-select is needed.
    let bits = x.to_bits();
    let exponent = (bits.wrapping_sub(0x3f2a_aaab) as i32) >> 23;
    let m = f32::from_bits(bits.wrapping_sub((exponent << 23) as u32));
    let e = exponent as f32;
    let f = m - 1.0;
    let z = f * f;
    let mut y = 7.037_683_6e-2;
    y = y * f - 1.151_461e-1;
    y = y * f + 1.167_699_9e-1;
    y = y * f - 1.242_014_1e-1;
    y = y * f + 1.424_932_3e-1;
    y = y * f - 1.666_805_8e-1;
    y = y * f + 2.000_071_4e-1;
    y = y * f - 2.499_999_4e-1;
    y = y * f + 3.333_333e-1;
    y *= f * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    f + y + 0.693_359_4 * e
}

/// `x ln x` with 0 · ln 0 = 0.
#[inline(always)]
fn xlnx(x: f32) -> f32 {
    x * ln(x.max(f32::MIN_POSITIVE))
}

/// Number of independent accumulators: float sums only vectorise when the additions are
/// spread over lanes explicitly (the compiler may not reorder them).
const LANES: usize = 16;

/// `Σ x ln x` over a slice, vectorised.
#[inline(always)]
fn sum_xlnx(values: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += xlnx(x);
        }
    }
    let mut total = 0.0;
    for a in acc {
        total += a;
    }
    for &x in rest {
        total += xlnx(x);
    }
    total
}

/// `Σ x` over a short slice (a row of MC iterations), vectorised over one register.
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    let mut total = 0.0;
    for a in acc {
        total += a;
    }
    for &x in rest {
        total += x;
    }
    total
}

/// The class rows of one position: contiguous `[C·T]` when there is a single position.
#[inline(always)]
fn sum_xlnx_position(item: &[f32], layout: Layout, position: usize) -> f32 {
    if layout.positions == 1 {
        return sum_xlnx(item);
    }
    let mut total = 0.0;
    for c in 0..layout.classes {
        total += sum_xlnx(row(item, layout, c, position));
    }
    total
}

/// Shape of the host predictions, `[N, C, P, T]`, row-major.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) classes: usize,
    pub(crate) positions: usize,
    pub(crate) iterations: usize,
}

impl Layout {
    fn item_len(self) -> usize {
        self.classes * self.positions * self.iterations
    }
}

/// Items per parallel task.
const BLOCK: usize = 256;

/// Declares `fn $name(args) -> ret` whose body is compiled three times: for AVX-512, for
/// AVX2 with FMA, and for the baseline instruction set; the widest one the CPU supports runs.
/// The body must only call `#[inline(always)]` code for the wide versions to apply to it.
macro_rules! multiversioned {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                if simd_level() >= 2 {
                    // SAFETY: `simd_level` checked that the CPU supports every feature
                    // `avx512` is compiled for.
                    #[allow(unsafe_code)]
                    return unsafe { avx512($($arg),*) };
                }
                if simd_level() == 1 {
                    // SAFETY: as above, for `avx2`'s features.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// 2 with AVX-512 (F, BW, DQ, VL), AVX2 and FMA, 1 with AVX2 and FMA, 0 otherwise; detected
/// once.
#[cfg(target_arch = "x86_64")]
fn simd_level() -> u8 {
    static LEVEL: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        simd_level_of(|feature| match feature {
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
            "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
            "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            _ => false,
        })
    })
}

/// The SIMD level of a CPU with the features `has` reports: every feature a level's code is
/// compiled for (`multiversioned!`'s `target_feature` lists) must be there.
#[cfg(target_arch = "x86_64")]
fn simd_level_of(has: impl Fn(&str) -> bool) -> u8 {
    const AVX2: [&str; 2] = ["avx2", "fma"];
    const AVX512: [&str; 6] = ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"];
    if AVX512.iter().all(|f| has(f)) {
        2
    } else if AVX2.iter().all(|f| has(f)) {
        1
    } else {
        0
    }
}

/// A per-position score computed by the fused kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// [`bald`].
    Bald,
    /// [`entropy`].
    Entropy,
    /// [`expected_entropy`].
    ExpectedEntropy,
}

/// Scores one position with `kernel`.
#[inline(always)]
fn score_position(kernel: Kernel, item: &[f32], layout: Layout, position: usize) -> f32 {
    match kernel {
        Kernel::Bald => bald(item, layout, position),
        Kernel::Entropy => entropy(item, layout, position),
        Kernel::ExpectedEntropy => expected_entropy(item, layout, position),
    }
}

multiversioned! {
    /// Scores every item (`[C, P, T]` each) of `block`, folding positions with `reduction`:
    /// one parallel task of [`score_items`].
    ///
    /// Plain loops and direct calls only: `collect`, iterator folds and calls through `Fn`
    /// values are not inlined here, and would run without the wide vector instructions.
    fn score_block(block: &[f32], layout: Layout, reduction: Reduction, kernel: Kernel) -> Vec<f32> {
        let positions = layout.positions;
        let mut scores = Vec::with_capacity(block.len() / layout.item_len());
        for item in block.chunks_exact(layout.item_len()) {
            let mut folded = match reduction {
                Reduction::Max => f32::NEG_INFINITY,
                Reduction::Min => f32::INFINITY,
                _ => 0.0,
            };
            for position in 0..positions {
                let s = score_position(kernel, item, layout, position);
                folded = match reduction {
                    Reduction::Max => folded.max(s),
                    Reduction::Min => folded.min(s),
                    _ => folded + s,
                };
            }
            scores.push(match reduction {
                Reduction::None | Reduction::Mean => folded / positions as f32,
                Reduction::Sum | Reduction::Max | Reduction::Min => folded,
            });
        }
        scores
    }
}

/// Applies `kernel` to every item and position, folding positions with `reduction`; blocks
/// of items run in parallel.
pub(crate) fn score_items(
    values: &[f32],
    layout: Layout,
    reduction: Reduction,
    kernel: Kernel,
) -> Vec<f32> {
    values
        .par_chunks(layout.item_len() * BLOCK)
        .flat_map_iter(|block| score_block(block, layout, reduction, kernel))
        .collect()
}

/// The MC iterations of one class at one position.
#[inline(always)]
fn row(item: &[f32], layout: Layout, class: usize, position: usize) -> &[f32] {
    let t = layout.iterations;
    let start = (class * layout.positions + position) * t;
    &item[start..start + t]
}

/// `H[mean_t p]` from the per-class means.
#[inline(always)]
fn entropy_of_means(item: &[f32], layout: Layout, position: usize) -> f32 {
    let t = layout.iterations as f32;
    // Means padded with zeros (0 ln 0 = 0) to whole vectors, so their logarithms vectorise.
    const STACK: usize = 64;
    let padded = layout.classes.next_multiple_of(LANES);
    let mut stack = [0f32; STACK];
    let mut heap = Vec::new();
    let means: &mut [f32] = if padded <= STACK {
        &mut stack[..padded]
    } else {
        heap.resize(padded, 0.0);
        &mut heap
    };
    for (c, mean) in means.iter_mut().take(layout.classes).enumerate() {
        *mean = sum(row(item, layout, c, position)) / t;
    }
    -sum_xlnx(means)
}

/// BALD of one position: `H[mean_t p] - mean_t H[p_t]`.
#[inline(always)]
pub(crate) fn bald(item: &[f32], layout: Layout, position: usize) -> f32 {
    let t = layout.iterations as f32;
    entropy_of_means(item, layout, position) + sum_xlnx_position(item, layout, position) / t
}

/// Expected entropy `mean_t H[p_t]` of one position (BatchBALD's conditional entropy).
#[inline(always)]
pub(crate) fn expected_entropy(item: &[f32], layout: Layout, position: usize) -> f32 {
    -sum_xlnx_position(item, layout, position) / layout.iterations as f32
}

multiversioned! {
    /// [`joint_neg_entropies`] for one block of items.
    fn joint_neg_entropies_block(
        block: &[f32],
        layout: Layout,
        history_t_m: &[f32],
        weights: &[f32],
    ) -> Vec<f32> {
        let (classes, t) = (layout.classes, layout.iterations);
        let rows = weights.len();
        let mut joint = vec![0f32; rows];
        let mut acc = vec![0f32; rows];
        let mut out = Vec::with_capacity(block.len() / layout.item_len());
        for item in block.chunks_exact(layout.item_len()) {
            acc.fill(0.0);
            for c in 0..classes {
                // J[m] = Σ_t q[m, t] p_t(c): broadcast-multiply-adds along contiguous rows.
                joint.fill(0.0);
                for (it, &p) in item[c * t..(c + 1) * t].iter().enumerate() {
                    let q = &history_t_m[it * rows..(it + 1) * rows];
                    for (j, &qv) in joint.iter_mut().zip(q) {
                        *j += p * qv;
                    }
                }
                for (a, &j) in acc.iter_mut().zip(&joint) {
                    *a += xlnx(j);
                }
            }
            let mut total = 0.0;
            for (a, w) in acc.iter().zip(weights) {
                total += a * w;
            }
            out.push(total);
        }
        out
    }
}

/// BatchBALD's per-candidate term `Σ_m w_m Σ_c J[m, c] ln J[m, c]` with
/// `J[m, c] = Σ_t history_t_m[t, m] · p_t(c | x_i)`, for every item of `[N, C, 1, T]`
/// `values`; the history rows are laid out `[T, M]` (already divided by T). Each item's
/// `J` lives in a scratch row that stays in cache; blocks of items run in parallel.
pub(crate) fn joint_neg_entropies(
    values: &[f32],
    layout: Layout,
    history_t_m: &[f32],
    weights: &[f32],
) -> Vec<f32> {
    let items_per_task = (values.len() / layout.item_len())
        .div_ceil(rayon::current_num_threads() * 4)
        .clamp(1, BLOCK);
    values
        .par_chunks(layout.item_len() * items_per_task)
        .flat_map_iter(|block| joint_neg_entropies_block(block, layout, history_t_m, weights))
        .collect()
}

/// Entropy of the mean prediction at one position.
#[inline(always)]
pub(crate) fn entropy(item: &[f32], layout: Layout, position: usize) -> f32 {
    entropy_of_means(item, layout, position)
}

/// First item that is not a valid probability distribution (non-finite, outside [0, 1] or
/// not summing to one over classes at some position and iteration), if any.
pub(crate) fn first_invalid_probabilities(
    values: &[f32],
    layout: Layout,
    upper: f32,
) -> Option<usize> {
    let valid = |item: &[f32]| {
        item.iter().all(|&p| (0.0..=upper).contains(&p))
            && (0..layout.positions).all(|position| {
                (0..layout.iterations).all(|it| {
                    let sum: f32 = (0..layout.classes)
                        .map(|c| row(item, layout, c, position)[it])
                        .sum();
                    (sum - 1.0).abs() <= SUM_TOLERANCE
                })
            })
    };
    values
        .par_chunks_exact(layout.item_len())
        .with_min_len(256)
        .position_first(|item| !valid(item))
}

/// First item holding a non-finite value, if any.
pub(crate) fn first_non_finite(values: &[f32], layout: Layout) -> Option<usize> {
    values
        .par_chunks_exact(layout.item_len())
        .with_min_len(256)
        .position_first(|item| !item.iter().all(|v| v.is_finite()))
}

/// Whether the kernels apply to tensors on `device`: Burn's `flex` CPU backend, whose tensors
/// live in host memory. An autodiff device is left to the tensor path, as it always was.
pub(crate) fn apply_to(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        // `Device`'s equality compares the hardware and ignores autodiff, hence the first test.
        !device.is_autodiff() && *device == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_device_takes_the_kernels_unless_a_gpu_backend_is_compiled_in() {
        // The crate's dev-dependency on itself turns `flex` on, so that tests run the kernels.
        #[cfg(feature = "flex")]
        assert!(apply_to(&Device::flex()));
        let device = Device::default();
        #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
        assert!(apply_to(&device), "{device:?}");
        // The backend features exist to run the tests on that backend: make sure they do.
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        assert!(!apply_to(&device), "expected a GPU backend: {device:?}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_levels_need_every_feature_their_code_is_compiled_for() {
        let cpu = |features: &'static [&'static str]| move |f: &str| features.contains(&f);
        // AVX-512 without AVX2 (a VM can mask it): the AVX-512 code also uses AVX2.
        assert_eq!(
            simd_level_of(cpu(&["avx512f", "avx512bw", "avx512dq", "avx512vl", "fma"])),
            0
        );
        assert_eq!(
            simd_level_of(cpu(&[
                "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"
            ])),
            2
        );
        assert_eq!(simd_level_of(cpu(&["avx512f", "avx2", "fma"])), 1);
        assert_eq!(simd_level_of(cpu(&["avx2", "fma"])), 1);
        assert_eq!(simd_level_of(cpu(&["avx2"])), 0);
        assert_eq!(simd_level_of(cpu(&[])), 0);
    }

    #[test]
    fn ln_is_accurate_over_the_probability_range() {
        let mut x = f32::MIN_POSITIVE;
        let mut worst = 0f64;
        while x <= 1.0 {
            let exact = f64::from(x).ln();
            let err = (f64::from(ln(x)) - exact).abs() / exact.abs().max(1.0);
            worst = worst.max(err);
            x *= 1.000_37;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(xlnx(0.0), 0.0);
    }
}
