//! MC dropout layers: element-wise and channel-wise, independent or consistent across items.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{DType, Device, Distribution, Tensor};

use crate::context::{
    McContext, PER_ITERATION, Sampling, mask_tensor, per_item_masks, per_iteration_masks,
};
use crate::error::check_probability;

/// What one mask entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Granularity {
    /// One entry per element of an item.
    Element,
    /// One entry per channel (axis 1), shared by the spatial positions after it.
    Channel,
}

/// Which rows share a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sharing {
    /// Every row (item × MC iteration) draws its own mask.
    PerItem,
    /// Every item of one MC iteration uses the same mask.
    PerIteration,
}

/// The one dropout kernel behind the four layers.
///
/// The input is viewed as `[k, B, C, S]`: `k` replicas of `B` items, `C` masked features
/// (all elements, or the channels) and `S` positions that share a feature's mask entry.
fn mc_dropout<const D: usize>(
    name: &'static str,
    input: Tensor<D>,
    prob: f64,
    granularity: Granularity,
    sharing: Sharing,
    mc: &McContext,
) -> Tensor<D> {
    // Counted even when nothing is dropped, so later layers keep their keys whatever `prob` is.
    let layer = mc.next_layer();
    if prob == 0.0 || mc.is_deterministic() {
        return input;
    }
    let dims = input.dims();
    check_rank(name, &dims, granularity);
    if !mc.check_rows(name, &dims) {
        // The sampler reports the error after the pass (McContext::check).
        return input;
    }
    let keep = 1.0 - prob;
    let [_, rows, features, positions] = mask_view(&dims, granularity);
    let device = input.device();
    let dtype = input.dtype();
    let mask = match mc.sampling() {
        // Training: a fresh mask per row, for per-item and consistent layers alike (a mask
        // shared by the batch would make every gradient step train one thinned network).
        Sampling::Device => {
            let shape = [1, rows, features, 1];
            mc.take_drawn_mask(shape, dtype)
                .unwrap_or_else(|| training_mask(shape, keep, &device, dtype))
        }
        Sampling::Seeded {
            seed,
            iterations,
            items,
            consistent,
        } => match if *consistent {
            Sharing::PerIteration
        } else {
            sharing
        } {
            Sharing::PerItem => {
                let values = per_item_masks(*seed, layer, iterations, items, features, keep);
                mask_tensor(
                    values,
                    [iterations.len(), items.len(), features, 1],
                    &device,
                    dtype,
                )
            }
            Sharing::PerIteration => {
                let values =
                    per_iteration_masks(PER_ITERATION, *seed, layer, iterations, features, keep);
                mask_tensor(values, [iterations.len(), 1, features, 1], &device, dtype)
            }
        },
    };
    let replicas = mc.replicas();
    let view: Tensor<4> = input.reshape([replicas, rows / replicas, features, positions]);
    (view * mask).reshape(dims)
}

/// Panics unless `dims` has the axes `granularity` needs.
fn check_rank(name: &'static str, dims: &[usize], granularity: Granularity) {
    let min_rank = match granularity {
        Granularity::Element => 2,
        Granularity::Channel => 3,
    };
    assert!(
        dims.len() >= min_rank,
        "{name} needs an input of rank {min_rank} or more with the batch axis first, got {dims:?}"
    );
}

/// See the layers' `draw_training_mask`.
fn draw_training_mask(
    name: &'static str,
    dims: &[usize],
    prob: f64,
    granularity: Granularity,
    device: &Device,
    dtype: DType,
) -> Option<Tensor<4>> {
    check_rank(name, dims, granularity);
    let [_, rows, features, _] = mask_view(dims, granularity);
    (prob != 0.0).then(|| training_mask([1, rows, features, 1], 1.0 - prob, device, dtype))
}

/// An input of `dims` as the kernel views it, `[1, rows, features, positions]` (one replica).
fn mask_view(dims: &[usize], granularity: Granularity) -> [usize; 4] {
    let (features, positions) = match granularity {
        Granularity::Element => (dims[1..].iter().product::<usize>(), 1),
        Granularity::Channel => (dims[1], dims[2..].iter().product::<usize>()),
    };
    [1, dims[0], features, positions]
}

/// A training mask of `shape` from the device's generator: each entry `1 / keep` with
/// probability `keep`, else 0.
fn training_mask(shape: [usize; 4], keep: f64, device: &Device, dtype: DType) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(mask) = flex_training_mask(shape, keep, device, dtype) {
        return mask;
    }
    Tensor::<4>::random(shape, Distribution::Bernoulli(keep), device).cast(dtype) * (1.0 / keep)
}

/// [`training_mask`] on flex, f32 and `keep ≥ 1/2` (every zoo model's dropout), from uniform
/// f64 draws instead of Bernoulli ones: flex builds a Bernoulli sampler per value, and the
/// Gal CNN's 64 × 3872 mask took 3.8 ms, serial on the main thread (10% of a training step),
/// against 1.2 ms for the uniforms. The masks are the same bit for bit, so are the training
/// runs: both draw one `u64` `v` per value from flex's generator, the Bernoulli keeps
/// `v < keep·2⁶⁴` and the uniform is `(v >> 11)·2⁻⁵³`; `keep ≥ 1/2` is a multiple of 2⁻⁵³, so
/// `u < keep` is the same test (`training_masks_are_burns_bernoulli_masks` checks). `None`
/// elsewhere.
#[cfg(feature = "flex")]
fn flex_training_mask(
    shape: [usize; 4],
    keep: f64,
    device: &Device,
    dtype: DType,
) -> Option<Tensor<4>> {
    if keep < 0.5 || dtype != DType::F32 || !crate::is_flex(device) {
        return None;
    }
    let uniforms = Tensor::<4>::random(shape, Distribution::Default, (device, DType::F64));
    let kept = (1.0 / keep) as f32;
    let mask = |u: f64| if u < keep { kept } else { 0.0 };
    let data = uniforms.into_data();
    // Read in place (`TensorData::iter` converts each value through a boxed iterator).
    let values = match data.as_slice::<f64>() {
        Ok(uniforms) => uniforms.iter().map(|&u| mask(u)).collect(),
        Err(_) => data.iter::<f64>().map(mask).collect(),
    };
    Some(mask_tensor(values, shape, device, dtype))
}

macro_rules! dropout_layer {
    (
        $(#[$layer_doc:meta])*
        $layer:ident,
        $(#[$config_doc:meta])*
        $config:ident,
        $granularity:expr,
        $sharing:expr,
        $shapes:literal
    ) => {
        $(#[$config_doc])*
        #[derive(Config, Debug)]
        pub struct $config {
            /// The probability of dropping an entry, in `[0, 1)`.
            pub prob: f64,
        }

        impl $config {
            #[doc = concat!("Initialises a [`", stringify!($layer), "`].")]
            ///
            /// # Errors
            /// `prob` is not a finite number in `[0, 1)`.
            pub fn init(&self) -> crate::Result<$layer> {
                check_probability(concat!(stringify!($config), "::prob"), self.prob)?;
                Ok($layer { prob: self.prob })
            }
        }

        $(#[$layer_doc])*
        #[derive(Module, Debug)]
        pub struct $layer {
            /// The probability of dropping an entry, in `[0, 1)`.
            pub prob: f64,
        }

        impl $layer {
            /// Applies the dropout, drawing masks as `mc` says (seeded per MC iteration and
            /// item for the sampler, from the device generator for training). Kept entries are
            /// scaled by `1 / (1 - prob)`.
            ///
            /// # Shapes
            #[doc = $shapes]
            ///
            /// # Panics
            /// If the input's rank is too small. For a seeded context whose rows the input
            /// does not hold, the input passes unmasked and [`McContext::check`] returns the
            /// error.
            pub fn forward<const D: usize>(&self, input: Tensor<D>, mc: &McContext) -> Tensor<D> {
                mc_dropout(stringify!($layer), input, self.prob, $granularity, $sharing, mc)
            }

            /// The mask a training pass ([`McContext::training`]) would draw for an input of
            /// `dims` (of `dtype`), drawn now from `device`'s generator, for
            /// [`McContext::training_with_masks`]; `None` where the pass would draw none
            /// (`prob` is 0).
            ///
            /// # Panics
            /// If `dims` has too few axes, as [`forward`](Self::forward).
            pub fn draw_training_mask(
                &self,
                dims: &[usize],
                device: &Device,
                dtype: DType,
            ) -> Option<Tensor<4>> {
                draw_training_mask(stringify!($layer), dims, self.prob, $granularity, device, dtype)
            }
        }
    };
}

dropout_layer!(
    /// Element-wise dropout that stays active at inference, on any device.
    ///
    /// Burn's `Dropout` is a no-op outside an autodiff device; this layer always drops, so the
    /// model's forward passes sample from the MC-dropout approximate posterior (Gal &
    /// Ghahramani, 2016, *Dropout as a Bayesian approximation*). Every row (item × MC iteration)
    /// gets its own mask, unless the context asks for consistent samples
    /// ([`McContext::with_consistent`]): then iteration `t` shares one mask across items.
    McDropout,
    /// Configuration of a [`McDropout`] layer.
    McDropoutConfig,
    Granularity::Element,
    Sharing::PerItem,
    "- input: `[rows, ...]`, rows = MC replicas × items\n- output: same as the input"
);

dropout_layer!(
    /// Channel dropout (whole feature maps) that stays active at inference, on any device.
    ///
    /// For `[B, C, H, W]` (or any `[B, C, ...]`) input, each of the `C` channels of a row is
    /// kept or zeroed as a whole; every row (item × MC iteration) gets its own mask (one per
    /// iteration with a consistent context, as for [`McDropout`]).
    McDropout2d,
    /// Configuration of a [`McDropout2d`] layer.
    McDropout2dConfig,
    Granularity::Channel,
    Sharing::PerItem,
    "- input: `[rows, channels, ...]`, rows = MC replicas × items\n- output: same as the input"
);

dropout_layer!(
    /// Element-wise MC dropout whose mask for MC iteration `t` is the same for every pool item.
    ///
    /// BatchBALD compares the samples of different items at the same iteration, so they must
    /// come from the same model sample. Here the mask derives from `(seed, layer, t)` only:
    /// an item scored alone, in any batch, or in any split of the pool gets the same mask for
    /// iteration `t` (baal's `ConsistentMCDropout` is consistent only at batch size 1).
    /// During training ([`McContext::training`]) every row draws its own mask, as plain
    /// dropout does.
    ConsistentMcDropout,
    /// Configuration of a [`ConsistentMcDropout`] layer.
    ConsistentMcDropoutConfig,
    Granularity::Element,
    Sharing::PerIteration,
    "- input: `[rows, ...]`, rows = MC replicas × items\n- output: same as the input"
);

dropout_layer!(
    /// Channel dropout whose mask for MC iteration `t` is the same for every pool item (see
    /// [`ConsistentMcDropout`]).
    ConsistentMcDropout2d,
    /// Configuration of a [`ConsistentMcDropout2d`] layer.
    ConsistentMcDropout2dConfig,
    Granularity::Channel,
    Sharing::PerIteration,
    "- input: `[rows, channels, ...]`, rows = MC replicas × items\n- output: same as the input"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BayesianError, Result};
    use burn::tensor::Device;

    fn ones<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        Tensor::ones(shape, &Device::default())
    }

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec_as::<f32>().expect("f32 data")
    }

    #[test]
    fn bad_probabilities_are_errors() {
        for prob in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            let error = McDropoutConfig::new(prob).init();
            assert!(
                matches!(error, Err(BayesianError::InvalidProbability { .. })),
                "{prob}"
            );
            assert!(McDropout2dConfig::new(prob).init().is_err());
            assert!(ConsistentMcDropoutConfig::new(prob).init().is_err());
            assert!(ConsistentMcDropout2dConfig::new(prob).init().is_err());
        }
    }

    #[test]
    fn drops_at_rate_p_and_scales_the_rest() -> Result<()> {
        let dropout = McDropoutConfig::new(0.3).init()?;
        let mc = McContext::seeded(1, 0..4, 0..50)?;
        let out = values(dropout.forward(ones([200, 100]), &mc));
        let dropped = out.iter().filter(|v| **v == 0.0).count() as f64 / out.len() as f64;
        assert!((dropped - 0.3).abs() < 0.01, "drop rate {dropped}");
        let scale = 1.0 / 0.7;
        assert!(
            out.iter()
                .all(|v| *v == 0.0 || (f64::from(*v) - scale).abs() < 1e-5)
        );
        Ok(())
    }

    #[test]
    fn active_outside_autodiff_in_training_mode() -> Result<()> {
        let dropout = McDropoutConfig::new(0.5).init()?;
        let out = values(dropout.forward(ones([100, 100]), &McContext::training()));
        let dropped = out.iter().filter(|v| **v == 0.0).count() as f64 / out.len() as f64;
        assert!((dropped - 0.5).abs() < 0.03, "drop rate {dropped}");
        Ok(())
    }

    #[test]
    fn every_layer_draws_a_mask_per_row_in_training() -> Result<()> {
        // Consistent layers too: a batch-wide mask would train one thinned network a step.
        let device = Device::default();
        device.seed(11);
        let forwards: [Box<dyn Fn(Tensor<2>) -> Tensor<2>>; 2] = [
            Box::new(|x| {
                McDropoutConfig::new(0.5)
                    .init()
                    .expect("valid")
                    .forward(x, &McContext::training())
            }),
            Box::new(|x| {
                ConsistentMcDropoutConfig::new(0.5)
                    .init()
                    .expect("valid")
                    .forward(x, &McContext::training())
            }),
        ];
        for forward in forwards {
            let out = values(forward(ones([16, 64])));
            let rows: Vec<&[f32]> = out.chunks(64).collect();
            let distinct = rows.iter().filter(|row| **row != rows[0]).count();
            assert_eq!(distinct, 15, "rows share a training mask");
        }
        Ok(())
    }

    #[test]
    fn a_consistent_context_shares_per_item_layers_masks_across_items() -> Result<()> {
        let dropout = McDropoutConfig::new(0.5).init()?;
        let mc = McContext::seeded(6, 0..2, 0..5)?.with_consistent(true);
        assert!(mc.is_consistent());
        let out = values(dropout.forward(ones([10, 32]), &mc));
        let rows: Vec<&[f32]> = out.chunks(32).collect();
        for iteration in 0..2 {
            for item in 1..5 {
                assert_eq!(rows[iteration * 5 + item], rows[iteration * 5]);
            }
        }
        assert_ne!(rows[0], rows[5], "iterations share a mask");
        // The same masks as a consistent layer's.
        let consistent = ConsistentMcDropoutConfig::new(0.5).init()?;
        let same = values(consistent.forward(ones([10, 32]), &McContext::seeded(6, 0..2, 0..5)?));
        assert_eq!(out, same);
        assert!(!McContext::training().with_consistent(true).is_consistent());
        Ok(())
    }

    #[test]
    fn zero_probability_is_the_identity() -> Result<()> {
        let dropout = McDropoutConfig::new(0.0).init()?;
        let input = Tensor::<2>::random([8, 5], Distribution::Default, &Device::default());
        let mc = McContext::seeded(3, 0..2, 0..4)?;
        assert_eq!(values(dropout.forward(input.clone(), &mc)), values(input));
        Ok(())
    }

    #[test]
    fn channel_dropout_drops_whole_channels() -> Result<()> {
        let dropout = McDropout2dConfig::new(0.5).init()?;
        let mc = McContext::seeded(2, 0..2, 0..16)?;
        let out = dropout.forward(ones([32, 8, 3, 3]), &mc);
        let out = values(out.reshape([32 * 8, 9]));
        let mut dropped = 0;
        for channel in out.chunks(9) {
            assert!(channel.iter().all(|v| *v == channel[0]), "{channel:?}");
            dropped += usize::from(channel[0] == 0.0);
        }
        assert!(
            (dropped as f64 / 256.0 - 0.5).abs() < 0.12,
            "{dropped} of 256"
        );
        Ok(())
    }

    #[test]
    fn replicas_and_items_get_different_masks() -> Result<()> {
        let dropout = McDropoutConfig::new(0.5).init()?;
        let mc = McContext::seeded(4, 0..2, 0..2)?;
        let out = values(dropout.forward(ones([4, 64]), &mc));
        let rows: Vec<&[f32]> = out.chunks(64).collect();
        for a in 0..4 {
            for b in a + 1..4 {
                assert_ne!(rows[a], rows[b], "rows {a} and {b}");
            }
        }
        Ok(())
    }

    #[test]
    fn consistent_masks_are_shared_by_items_and_independent_of_batching() -> Result<()> {
        for dropout_2d in [false, true] {
            let forward = |input: Tensor<4>, mc: &McContext| -> Result<Vec<f32>> {
                Ok(if dropout_2d {
                    values(
                        ConsistentMcDropout2dConfig::new(0.5)
                            .init()?
                            .forward(input, mc),
                    )
                } else {
                    values(
                        ConsistentMcDropoutConfig::new(0.5)
                            .init()?
                            .forward(input, mc),
                    )
                })
            };
            let per_item = 4 * 2 * 2;
            // 3 iterations × 6 items in one pass.
            let batched = forward(ones([18, 4, 2, 2]), &McContext::seeded(5, 0..3, 0..6)?)?;
            for iteration in 0..3 {
                let first = &batched[iteration * 6 * per_item..][..per_item];
                assert!(first.contains(&0.0) && first.contains(&2.0));
                for item in 0..6 {
                    let row = &batched[(iteration * 6 + item) * per_item..][..per_item];
                    assert_eq!(row, first, "iteration {iteration}, item {item}");
                }
                // The same item scored alone, at that iteration only.
                let alone = forward(
                    ones([1, 4, 2, 2]),
                    &McContext::seeded(5, iteration..iteration + 1, 4..5)?,
                )?;
                assert_eq!(alone, first);
            }
            let second = &batched[6 * per_item..][..per_item];
            assert_ne!(&batched[..per_item], second, "iterations share a mask");
        }
        Ok(())
    }

    #[test]
    fn per_item_masks_do_not_depend_on_batching() -> Result<()> {
        let dropout = McDropoutConfig::new(0.5).init()?;
        let batched = values(dropout.forward(ones([10, 32]), &McContext::seeded(8, 0..2, 0..5)?));
        // Item 3 at iteration 1, scored alone.
        let alone = values(dropout.forward(ones([1, 32]), &McContext::seeded(8, 1..2, 3..4)?));
        assert_eq!(alone, batched[(5 + 3) * 32..(5 + 4) * 32]);
        Ok(())
    }

    #[test]
    fn a_wrong_row_count_is_an_error_of_the_pass_not_a_panic() {
        let dropout = McDropout { prob: 0.5 };
        let mc = McContext::seeded(0, 0..2, 0..3).expect("valid context");
        // The input passes unmasked; the context holds the error for the sampler.
        let out = dropout.forward(ones([5, 2]), &mc);
        assert_eq!(out.dims(), [5, 2]);
        match mc.check() {
            Err(crate::BayesianError::ShapeMismatch {
                what,
                expected,
                got,
            }) => {
                assert_eq!(what, "McDropout");
                assert!(
                    expected.contains("2 MC replicas × 3 items = 6 rows"),
                    "{expected}"
                );
                assert_eq!(got, vec![5, 2]);
            }
            other => panic!("expected a shape mismatch, got {other:?}"),
        }
        // Rows that match leave the context clean.
        let mc = McContext::seeded(0, 0..2, 0..3).expect("valid context");
        let _ = dropout.forward(ones([6, 2]), &mc);
        assert!(mc.check().is_ok());
    }
}
