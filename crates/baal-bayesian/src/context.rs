//! Which MC iterations and pool items the rows of a forward pass stand for, and the seeded
//! masks derived from them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ops::Range;

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions, TensorData};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{BayesianError, Result};
use crate::seeds::mix;

/// Tells the stochastic layers of one forward pass how to draw their masks.
///
/// The sampler runs a model over a *replicated* batch: the rows are `k` copies of `B` items,
/// iteration-major (rows `j·B .. (j+1)·B` are MC iteration `iterations.start + j` of items
/// `items.start .. items.end`). Every stochastic layer of this crate reads that layout from the
/// context, so that
///
/// - each replica gets its own mask (DropConnect draws one weight mask *per iteration*, baal
///   shares one across replicas and so gets no MC diversity);
/// - the mask of a row depends only on `(seed, layer, iteration, item)`, never on the batch
///   size, on how the pool is split into batches, or on how many iterations share a pass: the
///   same seed gives the same `[N, C, T]` whatever the memory budget;
/// - masks come from our own seeded ChaCha8 streams, not from a backend's global generator
///   (Burn's flex backend keeps one process-wide generator behind a mutex, so results would
///   depend on what else runs at the same time).
///
/// Layers are numbered in the order they are called during the pass (the context counts them),
/// so a model must call its stochastic layers in the same order for every pass, which any
/// model without data-dependent control flow does.
///
/// Per-item or consistent samples: by default every row (item × iteration) of a per-item layer
/// ([`McDropout`](crate::McDropout), [`McDropout2d`](crate::McDropout2d)) draws its own mask,
/// keyed by `(seed, layer, iteration, item)`. A *consistent* context
/// ([`McContext::with_consistent`]) makes every dropout layer share one mask per
/// `(seed, layer, iteration)` across all items, so that iteration `t` is one network `ω_t`
/// for every item of every pass: what the joint terms of BatchBALD and EPIG need. DropConnect
/// layers draw one weight mask per iteration, which is consistent either way.
///
/// For training, [`McContext::training`] lets every layer draw fresh masks from the device's
/// generator (seeded with `Device::seed`), one mask per row, as dropout does in training.
#[derive(Debug)]
pub struct McContext {
    sampling: Sampling,
    /// The stochastic layers pass their inputs through (see [`McContext::with_deterministic`]).
    deterministic: bool,
    next_layer: Cell<u64>,
    /// The first layer input whose rows did not match the context (see [`McContext::check`]).
    error: RefCell<Option<BayesianError>>,
    /// Training masks drawn before the pass, for its layers in order (see
    /// [`McContext::training_with_masks`]).
    drawn: RefCell<VecDeque<Tensor<4>>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Sampling {
    Device,
    Seeded {
        seed: u64,
        iterations: Range<usize>,
        /// The mask key of each item of a replica: its dataset index.
        items: Vec<usize>,
        /// Every dropout layer shares one mask per iteration across items.
        consistent: bool,
    },
}

impl McContext {
    /// A context for training or for a single stochastic pass: masks come from the device's
    /// random generator, the batch is not replicated.
    pub fn training() -> Self {
        Self::training_with_masks(Vec::new())
    }

    /// A training context whose dropout layers take their masks from `masks`, in order, each
    /// drawn before the pass by the layer's `draw_training_mask`
    /// ([`McDropout::draw_training_mask`](crate::McDropout::draw_training_mask)), instead of
    /// drawing them when the pass reaches them. A layer whose input does not match the next
    /// mask's shape (or type), and every layer after the masks run out, draws its own.
    ///
    /// The masks are the same values the pass would draw, provided that nothing else draws
    /// from the device's generator between them and the layers that use them; a model can
    /// then draw its head's masks while its trunk runs (the zoo's models do, on flex: a
    /// serial millisecond per Gal CNN training step).
    pub fn training_with_masks(masks: Vec<Tensor<4>>) -> Self {
        Self {
            sampling: Sampling::Device,
            deterministic: false,
            next_layer: Cell::new(0),
            error: RefCell::new(None),
            drawn: RefCell::new(masks.into()),
        }
    }

    /// A context for a pass over `iterations.len()` replicas of the items `items` (positions in
    /// the pool or dataset), with masks derived from `seed`.
    ///
    /// # Errors
    /// An empty range of iterations or items.
    pub fn seeded(seed: u64, iterations: Range<usize>, items: Range<usize>) -> Result<Self> {
        Self::seeded_items(seed, iterations, items.collect())
    }

    /// A context for a pass over `iterations.len()` replicas of items keyed `items` (each
    /// item's dataset index, in row order): an item's masks depend on its key, so a pool
    /// scored in any order, chunks or shards gets the same samples for the same item.
    ///
    /// # Errors
    /// An empty range of iterations or no item.
    pub fn seeded_items(seed: u64, iterations: Range<usize>, items: Vec<usize>) -> Result<Self> {
        if iterations.is_empty() {
            return Err(BayesianError::InvalidConfig {
                what: "McContext iterations",
                reason: format!("the range {iterations:?} holds no MC iteration"),
            });
        }
        if items.is_empty() {
            return Err(BayesianError::EmptyBatch {
                what: "McContext items",
            });
        }
        Ok(Self {
            sampling: Sampling::Seeded {
                seed,
                iterations,
                items,
                consistent: false,
            },
            deterministic: false,
            next_layer: Cell::new(0),
            error: RefCell::new(None),
            drawn: RefCell::new(VecDeque::new()),
        })
    }

    /// Draws *consistent* samples (`true`): every dropout layer uses one mask per
    /// `(seed, layer, iteration)` for all items, so iteration `t` is the same network for
    /// every item, whatever batch, chunk or pass it comes in. `false` (the default of
    /// [`McContext::seeded`]) keys per-item layers' masks by the item too. No effect on a
    /// training context.
    #[must_use]
    pub fn with_consistent(mut self, consistent: bool) -> Self {
        if let Sampling::Seeded {
            consistent: flag, ..
        } = &mut self.sampling
        {
            *flag = consistent;
        }
        self
    }

    /// Turns every stochastic layer of this crate off (`true`): dropout keeps every unit,
    /// DropConnect every weight, as `burn::nn::Dropout` does outside training. A pass is then
    /// the model's deterministic prediction: what each member of a deep ensemble gives when
    /// the ensemble alone is the posterior. Layers are still counted.
    #[must_use]
    pub fn with_deterministic(mut self, deterministic: bool) -> Self {
        self.deterministic = deterministic;
        self
    }

    /// Whether the stochastic layers are off (see [`McContext::with_deterministic`]).
    pub fn is_deterministic(&self) -> bool {
        self.deterministic
    }

    /// Whether the samples are consistent across items (see [`McContext::with_consistent`]).
    pub fn is_consistent(&self) -> bool {
        matches!(
            self.sampling,
            Sampling::Seeded {
                consistent: true,
                ..
            }
        )
    }

    /// Whether masks are derived from a seed (sampler) rather than the device generator.
    pub fn is_seeded(&self) -> bool {
        matches!(self.sampling, Sampling::Seeded { .. })
    }

    /// How many MC replicas the rows of this pass hold (1 for [`McContext::training`]).
    pub fn replicas(&self) -> usize {
        match &self.sampling {
            Sampling::Device => 1,
            Sampling::Seeded { iterations, .. } => iterations.len(),
        }
    }

    /// The MC iterations of the replicas, in row order; `None` for training.
    pub fn iterations(&self) -> Option<Range<usize>> {
        match &self.sampling {
            Sampling::Device => None,
            Sampling::Seeded { iterations, .. } => Some(iterations.clone()),
        }
    }

    /// The mask keys of the items of one replica (their dataset indices), in row order;
    /// `None` for training.
    pub fn items(&self) -> Option<&[usize]> {
        match &self.sampling {
            Sampling::Device => None,
            Sampling::Seeded { items, .. } => Some(items),
        }
    }

    /// The number of rows a stochastic layer expects, `replicas × items`; `None` for training.
    pub fn rows(&self) -> Option<usize> {
        match &self.sampling {
            Sampling::Device => None,
            Sampling::Seeded {
                iterations, items, ..
            } => Some(iterations.len() * items.len()),
        }
    }

    pub(crate) fn sampling(&self) -> &Sampling {
        &self.sampling
    }

    /// The next mask drawn before the pass, when its shape is `shape` and its type `dtype`
    /// (see [`McContext::training_with_masks`]).
    pub(crate) fn take_drawn_mask(&self, shape: [usize; 4], dtype: DType) -> Option<Tensor<4>> {
        let mut drawn = self.drawn.borrow_mut();
        let next = drawn.front()?;
        if next.dims() == shape && next.dtype() == dtype {
            drawn.pop_front()
        } else {
            None
        }
    }

    /// The key of the next stochastic layer called in this pass.
    pub(crate) fn next_layer(&self) -> u64 {
        let layer = self.next_layer.get();
        self.next_layer.set(layer + 1);
        layer
    }

    /// Whether the leading axis of a layer input holds `replicas × items` rows (always, for
    /// training). When it does not, the layer skips its masks and the context keeps the error
    /// for [`McContext::check`] to return after the pass.
    pub(crate) fn check_rows(&self, layer: &'static str, dims: &[usize]) -> bool {
        let Some(rows) = self.rows() else {
            return true;
        };
        if dims.first() == Some(&rows) {
            return true;
        }
        let mut error = self.error.borrow_mut();
        if error.is_none() {
            *error = Some(BayesianError::ShapeMismatch {
                what: layer,
                expected: format!(
                    "a leading axis of {} MC replicas × {} items = {rows} rows (as given by the \
                     McContext); a model must keep the batch axis first and not change its \
                     size before its stochastic layers",
                    self.replicas(),
                    rows / self.replicas(),
                ),
                got: dims.to_vec(),
            });
        }
        false
    }

    /// Keeps `error` for [`McContext::check`] (the first one wins).
    pub(crate) fn fail(&self, error: BayesianError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// How many stochastic layers this pass has called so far.
    pub fn layers_called(&self) -> u64 {
        self.next_layer.get()
    }

    /// The pass's verdict, to call after the model's forward: an error if a stochastic layer
    /// was given an input whose rows do not match the context (that layer then drew no mask,
    /// so the output must not be used).
    ///
    /// # Errors
    /// [`BayesianError::ShapeMismatch`] naming the first such layer and the shape it got.
    pub fn check(&self) -> Result<()> {
        match self.error.borrow_mut().take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Domain tags, so that the streams of different mask kinds never coincide.
pub(crate) const PER_ITEM: u64 = 0x6974_656d; // "item"
pub(crate) const PER_ITERATION: u64 = 0x6974_6572; // "iter"
pub(crate) const WEIGHT: u64 = 0x7765_6967; // "weig"
pub(crate) const WRAPPED_WEIGHT: u64 = 0x7772_6170; // "wrap"

/// A ChaCha8 stream keyed by all of `parts`.
pub(crate) fn stream(parts: &[u64]) -> ChaCha8Rng {
    let mut key = 0x243f_6a88_85a3_08d3_u64;
    for part in parts {
        key = mix(key ^ mix(*part));
    }
    ChaCha8Rng::seed_from_u64(key)
}

/// Keep/drop values of a Bernoulli(`keep`) mask, kept entries scaled by `1 / keep`.
pub(crate) struct Bernoulli {
    threshold: u64,
    scale: f32,
}

impl Bernoulli {
    pub(crate) fn new(keep: f64) -> Self {
        Self {
            // `keep` is in (0, 1]; 2^32 keeps everything.
            threshold: (keep * 4_294_967_296.0) as u64,
            scale: (1.0 / keep) as f32,
        }
    }

    pub(crate) fn fill(&self, rng: &mut ChaCha8Rng, count: usize, out: &mut Vec<f32>) {
        out.extend((0..count).map(|_| {
            if u64::from(rng.next_u32()) < self.threshold {
                self.scale
            } else {
                0.0
            }
        }));
    }
}

/// Seeded masks `[k, B, per_row]` with one stream per (layer, iteration, item key).
pub(crate) fn per_item_masks(
    seed: u64,
    layer: u64,
    iterations: &Range<usize>,
    items: &[usize],
    per_row: usize,
    keep: f64,
) -> Vec<f32> {
    let bernoulli = Bernoulli::new(keep);
    let mut values = Vec::with_capacity(iterations.len() * items.len() * per_row);
    for iteration in iterations.clone() {
        for &item in items {
            let mut rng = stream(&[PER_ITEM, seed, layer, iteration as u64, item as u64]);
            bernoulli.fill(&mut rng, per_row, &mut values);
        }
    }
    values
}

/// Seeded masks `[k, per_iteration]` with one stream per (layer, iteration), shared by every
/// item of that iteration.
pub(crate) fn per_iteration_masks(
    tag: u64,
    seed: u64,
    layer: u64,
    iterations: &Range<usize>,
    per_iteration: usize,
    keep: f64,
) -> Vec<f32> {
    let bernoulli = Bernoulli::new(keep);
    let mut values = Vec::with_capacity(iterations.len() * per_iteration);
    for iteration in iterations.clone() {
        let mut rng = stream(&[tag, seed, layer, iteration as u64]);
        bernoulli.fill(&mut rng, per_iteration, &mut values);
    }
    values
}

/// Uploads mask values as a tensor of the given float dtype.
pub(crate) fn mask_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(values, shape),
        TensorCreationOptions::new(device.clone()).with_dtype(dtype),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_context_reports_its_layout() -> Result<()> {
        let context = McContext::seeded(7, 3..5, 10..14)?;
        assert!(context.is_seeded());
        assert_eq!(context.replicas(), 2);
        assert_eq!(context.rows(), Some(8));
        assert_eq!(context.next_layer(), 0);
        assert_eq!(context.next_layer(), 1);
        assert_eq!(McContext::training().replicas(), 1);
        Ok(())
    }

    #[test]
    fn empty_ranges_are_errors() {
        assert!(McContext::seeded(0, 2..2, 0..4).is_err());
        assert!(McContext::seeded(0, 0..2, 4..4).is_err());
    }

    #[test]
    fn bernoulli_keeps_everything_at_keep_one() {
        let mut rng = stream(&[1]);
        let mut out = Vec::new();
        Bernoulli::new(1.0).fill(&mut rng, 1000, &mut out);
        assert!(out.iter().all(|v| *v == 1.0));
    }

    #[test]
    fn masks_depend_only_on_their_key() {
        // Item 5 of iteration 2 is the same whatever else shares the pass.
        let alone = per_item_masks(9, 0, &(2..3), &[5], 64, 0.5);
        let batched = per_item_masks(9, 0, &(0..4), &[3, 4, 5, 6, 7], 64, 0.5);
        let row = 2 * 5 + 2; // iteration 2 is replica 2, item 5 is the third item
        assert_eq!(alone, batched[row * 64..(row + 1) * 64]);
        // Keys in any order: the key, not the row, picks the mask.
        let shuffled = per_item_masks(9, 0, &(2..3), &[40, 5, 17], 64, 0.5);
        assert_eq!(alone, shuffled[64..128]);
        let other_seed = per_item_masks(10, 0, &(2..3), &[5], 64, 0.5);
        assert_ne!(alone, other_seed);
    }
}
