//! The MC sampler: turns a stochastic model into predictions `[N, C, T]`.

use std::ops::Range;
use std::sync::Arc;

use burn::config::Config;
use burn::data::dataset::Dataset;

use crate::context::McContext;
use crate::error::BayesianError;
use crate::model::{McBatch, McOutput, OutputActivation, StochasticModel};
use crate::progress::{Progress, ProgressSink};

/// The bound on the bytes of one replicated pass of the model's head
/// ([`McSamplerConfig::memory_budget`]) by default: 1 GiB; not a heuristic's scoring budget.
pub const DEFAULT_REPLICATED_PASS_MEMORY_BUDGET: usize = 1 << 30;

/// The predictions the sampler returns for a model: `[N, C, T]` (`Tensor<3>`) for models
/// with `[rows, C]` outputs, `[N, C, P, T]` (`Tensor<4>`) for `[rows, C, P]` outputs.
pub type McPredictions<M> = <<M as StochasticModel>::Output as McOutput>::Predictions;

/// Configuration of a [`McSampler`].
#[derive(Config, Debug)]
pub struct McSamplerConfig {
    /// Number of MC iterations `T`, at least 1.
    pub iterations: usize,
    /// Run several MC iterations as one forward pass over the replicated batch (`k·B` rows),
    /// as many as `memory_budget` allows. Off: one pass per iteration.
    #[config(default = true)]
    pub replicate_in_memory: bool,
    /// Bytes one replicated pass of the head may use, estimated with
    /// [`StochasticModel::head_bytes_per_item`]. A pass always holds at least one iteration.
    #[config(default = "DEFAULT_REPLICATED_PASS_MEMORY_BUDGET")]
    pub memory_budget: usize,
    /// Run the model's deterministic trunk once per input and only the head per iteration.
    /// Off: the trunk runs on the replicated batch too (same predictions, more work; useful
    /// to check a trunk/head split).
    #[config(default = true)]
    pub cache_trunk: bool,
    /// Seed of the masks: the same seed gives the same predictions on the same backend,
    /// whatever the batch size, the memory budget or the replication.
    #[config(default = 0)]
    pub seed: u64,
    /// Draw *consistent* samples: MC iteration `t` is one network `ω_t` (one dropout mask per
    /// layer) for every item, in every batch and every call with this seed, so predictions of
    /// a pool and of a target set made separately share their networks. BatchBALD and EPIG
    /// need this (their joint terms multiply `p(y_i | ω_t) p(y_j | ω_t)`); BALD and entropy
    /// do not. Off: per-item layers draw a mask per item and iteration.
    #[config(default = false)]
    pub consistent: bool,
    /// What to apply to the model's outputs (softmax over classes, or nothing for regression).
    #[config(default = "OutputActivation::Softmax")]
    pub activation: OutputActivation,
    /// Draw masks: the MC layers drop units (MC dropout) or weights (DropConnect). Off, they
    /// pass their inputs through (see [`McContext::with_deterministic`]) and every iteration is
    /// the model's deterministic prediction: a deep ensemble's members predict so
    /// ([`McSampler::deterministic`]).
    #[config(default = true)]
    pub stochastic: bool,
}

impl McSamplerConfig {
    /// Checks the configuration and builds the sampler.
    ///
    /// # Errors
    /// Zero iterations or a zero memory budget.
    pub fn init(&self) -> crate::Result<McSampler> {
        if self.iterations == 0 {
            return Err(BayesianError::InvalidConfig {
                what: "McSamplerConfig::iterations",
                reason: "the sampler needs at least one MC iteration, got 0".into(),
            });
        }
        if self.memory_budget == 0 {
            return Err(BayesianError::InvalidConfig {
                what: "McSamplerConfig::memory_budget",
                reason: "the memory budget must be at least one byte, got 0".into(),
            });
        }
        Ok(McSampler {
            config: self.clone(),
            progress: ProgressSink::none(),
            item_keys: None,
        })
    }
}

/// Runs a [`StochasticModel`] `T` times over batches of inputs and stacks the predictions
/// `[N, C, T]` (or `[N, C, P, T]`), on the inputs' device.
///
/// Per batch of `B` items: the trunk runs once (with `cache_trunk`), then the head runs over
/// `k` replicas of the batch in one pass, iteration-major, with `k` as large as the memory
/// budget allows (`k·B·head_bytes_per_item ≤ memory_budget`, `1 ≤ k ≤ T`), until the `T`
/// iterations are done. Each layer's masks depend only on `(seed, layer, iteration, item)`
/// (on `(seed, layer, iteration)` with [`McSamplerConfig::consistent`]), so the result does
/// not depend on `k`, on `B` or on the trunk caching.
///
/// The predictions are what `baal_heuristics::Predictions::from_probs` (classification,
/// `[N, C, T]`) or `from_segmentation_probs` (`[N, C, P, T]`) take; with
/// [`OutputActivation::Identity`] they are raw outputs (regression, `Predictions` for
/// variance-based heuristics). This crate does not depend on `baal-heuristics`: the caller
/// (the active-learning loop) wraps them.
#[derive(Clone, Debug)]
pub struct McSampler {
    config: McSamplerConfig,
    progress: ProgressSink,
    /// The mask key of each dataset item (see [`McSampler::with_item_keys`]).
    item_keys: Option<Arc<[usize]>>,
}

impl McSampler {
    /// Reports the progress of [`McSampler::predict_dataset`] to `receiver` (a terminal bar,
    /// a log, a status page); nothing is reported by default.
    #[must_use]
    pub fn with_progress(mut self, receiver: Arc<dyn Progress>) -> Self {
        self.progress = ProgressSink::new(receiver);
        self
    }

    /// Keys the masks of the items of the next datasets predicted with
    /// [`McSampler::predict_dataset`] (or its chunked form) by `keys[i]` instead of the
    /// position `i`: give a view of a larger dataset (the unlabelled pool, a shard) the
    /// dataset indices of its items, so that an item gets the same samples whatever view,
    /// chunk or shard it is predicted in. `None` keys items by their position again.
    #[must_use]
    pub fn with_item_keys(mut self, keys: Option<Arc<[usize]>>) -> Self {
        self.item_keys = keys;
        self
    }

    /// This sampler with its MC layers off and one iteration: the model's deterministic
    /// prediction `[N, C, 1]`, with the same item keys and progress receiver.
    #[must_use]
    pub fn deterministic(&self) -> Self {
        let mut sampler = self.clone();
        sampler.config.iterations = 1;
        sampler.config.stochastic = false;
        sampler
    }

    /// This sampler with another output activation (softmax for classifiers and
    /// segmentation, identity for regression), the rest unchanged.
    #[must_use]
    pub fn with_activation(mut self, activation: OutputActivation) -> Self {
        self.config.activation = activation;
        self
    }

    /// The mask key of each item of the datasets it predicts, when set
    /// ([`McSampler::with_item_keys`]); items are keyed by their position otherwise.
    pub fn item_keys(&self) -> Option<&[usize]> {
        self.item_keys.as_deref()
    }

    /// The checked configuration.
    pub fn config(&self) -> &McSamplerConfig {
        &self.config
    }

    /// Number of MC iterations `T`.
    pub fn iterations(&self) -> usize {
        self.config.iterations
    }

    /// How many MC iterations run in one replicated pass over `batch_size` items whose head
    /// needs `head_bytes_per_item` bytes per item and replica.
    pub fn replicas_per_pass(&self, batch_size: usize, head_bytes_per_item: usize) -> usize {
        if !self.config.replicate_in_memory {
            return 1;
        }
        let per_replica = batch_size.saturating_mul(head_bytes_per_item).max(1);
        (self.config.memory_budget / per_replica).clamp(1, self.config.iterations)
    }

    /// Predicts one batch: `T` MC samples of every item.
    ///
    /// The items are keyed `0 .. B` for the masks; use [`McSampler::predict_items`] when the
    /// batch is part of a larger pool, so that masks follow the items' pool positions.
    ///
    /// # Shapes
    /// - input: `[B, ...]`
    /// - output: `[B, C, T]` (or `[B, C, P, T]`)
    ///
    /// # Errors
    /// An empty batch, or a head whose output rows are not `replicas × B`.
    pub fn predict_batch<M: StochasticModel>(
        &self,
        model: &M,
        input: M::Input,
    ) -> crate::Result<McPredictions<M>> {
        self.predict_items(model, input, 0)
    }

    /// Predicts one batch whose items sit at positions `first_item .. first_item + B` of the
    /// pool; the masks of an item depend on its position, not on the batch it comes in.
    ///
    /// # Errors
    /// As [`McSampler::predict_batch`].
    pub fn predict_items<M: StochasticModel>(
        &self,
        model: &M,
        input: M::Input,
        first_item: usize,
    ) -> crate::Result<McPredictions<M>> {
        let keys = (first_item..first_item + input.batch_size()).collect();
        self.predict_keyed(model, input, keys)
    }

    /// Predicts one batch whose items have the mask keys `keys` (their dataset indices, in
    /// batch order): an item's samples depend on its key alone.
    ///
    /// # Errors
    /// As [`McSampler::predict_batch`], or a number of keys that is not the batch size.
    pub fn predict_keyed<M: StochasticModel>(
        &self,
        model: &M,
        input: M::Input,
        keys: Vec<usize>,
    ) -> crate::Result<McPredictions<M>> {
        let batch_size = input.batch_size();
        if batch_size == 0 {
            return Err(BayesianError::EmptyBatch {
                what: "input batch",
            });
        }
        if keys.len() != batch_size {
            return Err(BayesianError::ShapeMismatch {
                what: "item keys",
                expected: format!("one key per item of the batch ({batch_size})"),
                got: vec![keys.len()],
            });
        }
        let head_input = if self.config.cache_trunk {
            HeadInput::Features(model.trunk(input))
        } else {
            HeadInput::Input(input)
        };
        let head_bytes = match &head_input {
            HeadInput::Features(features) => model.head_bytes_per_item(features),
            // Measured on the trunk of one item, a small fraction of the work.
            HeadInput::Input(input) => model.head_bytes_per_item(
                &model.trunk(<M::Input as McBatch>::narrow_items(input, 0, 1)),
            ),
        };
        let replicas = self.replicas_per_pass(batch_size, head_bytes);
        let mut parts = Vec::with_capacity(self.config.iterations.div_ceil(replicas));
        let mut start = 0;
        while start < self.config.iterations {
            let count = replicas.min(self.config.iterations - start);
            parts.push(self.run_pass(model, &head_input, start..start + count, &keys)?);
            start += count;
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            M::Output::cat_iterations(parts)
        })
    }

    /// One replicated pass of the head over `iterations` of `items`.
    fn run_pass<M: StochasticModel>(
        &self,
        model: &M,
        head_input: &HeadInput<M>,
        iterations: Range<usize>,
        items: &[usize],
    ) -> crate::Result<McPredictions<M>> {
        let replicas = iterations.len();
        let mc = McContext::seeded_items(self.config.seed, iterations, items.to_vec())?
            .with_consistent(self.config.consistent)
            .with_deterministic(!self.config.stochastic);
        let features = match head_input {
            HeadInput::Features(features) => features.repeat_items(replicas),
            HeadInput::Input(input) => model.trunk(input.repeat_items(replicas)),
        };
        let output = model.head(features, &mc);
        mc.check()?;
        if mc.layers_called() == 0 {
            // Every sample would be the same network: BALD 0 for every item, without a word.
            return Err(BayesianError::NoStochasticLayer);
        }
        let dims = output.output_dims();
        let rows = replicas * items.len();
        if dims.len() < 2 || dims[0] != rows || dims[1] == 0 {
            return Err(BayesianError::ShapeMismatch {
                what: "StochasticModel::head output",
                expected: format!(
                    "[{rows} rows (= {replicas} MC replicas × {} items), classes ≥ 1, ...]",
                    items.len()
                ),
                got: dims,
            });
        }
        Ok(output.into_predictions(replicas, self.config.activation))
    }

    /// Predicts every item of a Burn `Dataset`, `batch_size` items at a time, and stacks the
    /// predictions `[N, C, T]` (N = the dataset's length) in dataset order.
    ///
    /// `batcher` turns a batch of items into the model's input (for a Burn `Batcher`:
    /// `|items| batcher.batch(items, &device)`). Only one batch of inputs lives at a time; the
    /// predictions of all items are kept (use [`McSampler::predict_dataset_chunks`] to consume
    /// them batch by batch instead). Item `i`'s masks are keyed by its position `i`, or by
    /// `keys[i]` with [`McSampler::with_item_keys`].
    ///
    /// # Errors
    /// A zero batch size, an empty dataset, an item the dataset cannot give, a batcher that
    /// returns a different number of items, or an error of [`McSampler::predict_items`].
    pub fn predict_dataset<M, I, E, D>(
        &self,
        model: &M,
        dataset: &D,
        batch_size: usize,
        batcher: impl FnMut(Vec<I>) -> M::Input,
    ) -> crate::Result<McPredictions<M>>
    where
        M: StochasticModel,
        D: Dataset<I, E> + ?Sized,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut parts = Vec::new();
        self.predict_dataset_chunks(model, dataset, batch_size, batcher, |_, predictions| {
            parts.push(predictions);
            Ok::<(), BayesianError>(())
        })?;
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            M::Output::cat_items(parts)
        })
    }

    /// Like [`McSampler::predict_dataset`], but hands the predictions of each batch, with its
    /// range of positions in the dataset, to `on_chunk` instead of keeping them: a pool larger
    /// than memory can be scored chunk by chunk. `on_chunk`'s error type is the caller's (any
    /// that a [`BayesianError`] converts into).
    ///
    /// # Errors
    /// As [`McSampler::predict_dataset`], and whatever `on_chunk` returns.
    pub fn predict_dataset_chunks<M, I, E, D, Err>(
        &self,
        model: &M,
        dataset: &D,
        batch_size: usize,
        mut batcher: impl FnMut(Vec<I>) -> M::Input,
        mut on_chunk: impl FnMut(Range<usize>, McPredictions<M>) -> Result<(), Err>,
    ) -> Result<(), Err>
    where
        M: StochasticModel,
        D: Dataset<I, E> + ?Sized,
        E: std::error::Error + Send + Sync + 'static,
        Err: From<BayesianError>,
    {
        let len = check_batching(batch_size, dataset.len())?;
        if let Some(keys) = &self.item_keys
            && keys.len() != len
        {
            return Err(BayesianError::ShapeMismatch {
                what: "McSampler item keys",
                expected: format!("one key per dataset item ({len})"),
                got: vec![keys.len()],
            }
            .into());
        }
        let progress = self.progress.start("MC sampling", len, "items");
        for start in (0..len).step_by(batch_size) {
            let end = (start + batch_size).min(len);
            let input = read_batch(dataset, start..end, &mut batcher)?;
            let keys = match &self.item_keys {
                Some(keys) => keys[start..end].to_vec(),
                None => (start..end).collect(),
            };
            let predictions = self.predict_keyed(model, input, keys)?;
            on_chunk(start..end, predictions)?;
            progress.advance(end - start);
        }
        Ok(())
    }
}

/// What the head passes start from: cached trunk features, or inputs whose trunk runs on the
/// replicated batch.
enum HeadInput<M: StochasticModel> {
    Features(M::Features),
    Input(M::Input),
}

/// The length of a dataset read in batches of `batch_size`, checked: both at least 1.
///
/// # Errors
/// A batch size of 0 or an empty dataset.
pub(crate) fn check_batching(batch_size: usize, len: usize) -> crate::Result<usize> {
    if batch_size == 0 {
        return Err(BayesianError::InvalidConfig {
            what: "batch_size",
            reason: "a dataset is read in batches of at least one item, got 0".into(),
        });
    }
    if len == 0 {
        return Err(BayesianError::EmptyBatch { what: "dataset" });
    }
    Ok(len)
}

/// Items `range` of `dataset` through `batcher`, checked to be a batch of that many items.
///
/// # Errors
/// An item that cannot be read, or a batcher output of another number of items.
pub(crate) fn read_batch<I, E, D, B>(
    dataset: &D,
    range: Range<usize>,
    batcher: &mut impl FnMut(Vec<I>) -> B,
) -> crate::Result<B>
where
    D: Dataset<I, E> + ?Sized,
    E: std::error::Error + Send + Sync + 'static,
    B: McBatch,
{
    let (start, end) = (range.start, range.end);
    let items = range
        .map(|dataset_index| {
            dataset
                .get(dataset_index)
                .map_err(|error| BayesianError::DatasetItem {
                    dataset_index,
                    message: error.to_string(),
                })
        })
        .collect::<crate::Result<Vec<I>>>()?;
    let input = batcher(items);
    if input.batch_size() != end - start {
        return Err(BayesianError::ShapeMismatch {
            what: "batcher output",
            expected: format!("a batch of {} items (dataset {start}..{end})", end - start),
            got: vec![input.batch_size()],
        });
    }
    Ok(input)
}
