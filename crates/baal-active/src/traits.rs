//! The loop's contracts in one place: what a model ([`Classifier`], [`Predictor`]), its inputs
//! ([`InputBatcher`]) and labels ([`ClassLabel`]), a labeller ([`Oracle`]) and a stopping rule
//! ([`StoppingCriterion`]) must provide.

use std::ops::Range;
use std::sync::Arc;

use baal_bayesian::{McContext, McSampler, StochasticModel};
use baal_data::{ActiveLearningDataset, DatasetIndex};
use baal_heuristics::Predictions;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::Result;
use crate::record::StepRecord;

/// A classifier the [`Trainer`](crate::Trainer) can fit: a Burn module that is also a
/// [`StochasticModel`] (so that the MC sampler can predict with it) whose head returns logits
/// `[batch, classes]`.
///
/// Training runs `head(trunk(input), &McContext::training())` on an autodiff device, so the MC
/// layers draw their masks from the device generator, as dropout does in training.
pub trait Classifier: Module + StochasticModel<Output = Tensor<2>> {
    /// Number of classes (the width of the logits).
    fn num_classes(&self) -> usize;

    /// Logits `[batch, classes]` for a training step; defaults to the trunk then the head with
    /// [`McContext::training`].
    fn forward_train(&self, input: Self::Input) -> Tensor<2> {
        self.head(self.trunk(input), &McContext::training())
    }
}

/// A model the [`Trainer`](crate::Trainer) can fit: a Burn module that is also a
/// [`StochasticModel`], with the target each labelled item trains it towards and the loss of
/// a batch.
///
/// Every [`Classifier`] is one (a class index per item, cross-entropy). Implement it for a
/// segmentation model (a class per position:
/// [`segmentation_loss`](crate::segmentation_loss)) or a regression model (real outputs:
/// [`regression_loss`](crate::regression_loss)); the trainer then fits it, and
/// [`SegmentationPredictor`](crate::SegmentationPredictor) /
/// [`RegressionPredictor`](crate::RegressionPredictor) predict with its
/// [`inference_model`](crate::Trainer::inference_model). Early stopping, calibration and the
/// test metrics are a classifier's.
pub trait Trainable: Module + StochasticModel {
    /// What one item's label becomes for the loss: a class index, a class per position, the
    /// outputs' values.
    type Target: Clone + Send + Sync + 'static;

    /// The mean loss of a training batch of `input` whose items have `targets`, on the
    /// autodiff device (run the model with [`McContext::training`]).
    fn training_loss(&self, input: Self::Input, targets: &[Self::Target]) -> Tensor<1>;

    /// Why `target` cannot train this model (a class out of range, a mask of the wrong
    /// size), or `Ok`.
    ///
    /// # Errors
    /// The reason, in words.
    fn check_target(&self, target: &Self::Target) -> std::result::Result<(), String>;
}

impl<M: Classifier> Trainable for M {
    type Target = usize;

    fn training_loss(&self, input: Self::Input, targets: &[usize]) -> Tensor<1> {
        let logits = self.forward_train(input);
        let device = logits.device();
        let targets: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
        let count = targets.len();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [count]), &device);
        CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, targets)
    }

    fn check_target(&self, target: &usize) -> std::result::Result<(), String> {
        let classes = self.num_classes();
        if *target < classes {
            Ok(())
        } else {
            Err(format!(
                "class {target} is not below the model's {classes} classes"
            ))
        }
    }
}

/// A label that gives the target `T` of a [`Trainable`] model: every [`ClassLabel`] gives a
/// class index (`usize`); `Vec<u8>`, `Vec<u16>` and `Vec<u32>` give a class per position
/// (`Vec<usize>`, segmentation masks); `f32` and `Vec<f32>` give regression outputs
/// (`Vec<f32>`).
pub trait Label<T>: Clone + Send + Sync + 'static {
    /// The target.
    fn target(&self) -> T;
}

impl<L: ClassLabel> Label<usize> for L {
    fn target(&self) -> usize {
        self.class_index()
    }
}

macro_rules! mask_label {
    ($($t:ty),*) => {$(
        impl Label<Vec<usize>> for Vec<$t> {
            fn target(&self) -> Vec<usize> {
                self.iter().map(|&class| class as usize).collect()
            }
        }
    )*};
}
mask_label!(u8, u16, u32);

impl Label<Vec<f32>> for Vec<f32> {
    fn target(&self) -> Vec<f32> {
        self.clone()
    }
}

impl Label<Vec<f32>> for f32 {
    fn target(&self) -> Vec<f32> {
        vec![*self]
    }
}

/// A class label: anything that converts to a class index.
pub trait ClassLabel: Clone + Send + Sync + 'static {
    /// The class index, below the number of classes.
    fn class_index(&self) -> usize;
}

macro_rules! class_label {
    ($($t:ty),*) => {$(
        impl ClassLabel for $t {
            fn class_index(&self) -> usize {
                *self as usize
            }
        }
    )*};
}
class_label!(u8, u16, u32, u64, usize);

/// Turns items into the model's input batch on a device (a Burn batcher as a closure).
pub type InputBatcher<I, X> = Arc<dyn Fn(Vec<I>, &Device) -> X + Send + Sync>;

/// Predicts MC probabilities `[N, C, T]` on a dataset: what the loop needs from a model.
///
/// [`Trainer`](crate::Trainer) implements it; [`ModelPredictor`](crate::ModelPredictor) wraps a model trained elsewhere (e.g. with
/// burn-train's `Learner`).
pub trait Predictor<I> {
    /// MC probabilities `[N, C, T]` of `items` under `sampler`.
    ///
    /// # Errors
    /// The dataset is empty or an item cannot be read, the model output has a wrong shape.
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>>;

    /// The same predictions, handed to `on_chunk` batch by batch with each batch's range of
    /// positions in `items`, so that the caller keeps only what it needs (the loop keeps one
    /// score per item, see `baal_heuristics::PoolScorer`). The default predicts everything at
    /// once and hands it over as one chunk; [`Trainer`](crate::Trainer) and
    /// [`ModelPredictor`](crate::ModelPredictor) stream.
    ///
    /// # Errors
    /// As [`predict`](Self::predict), and whatever `on_chunk` returns.
    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        let probs = self.predict(sampler, items)?;
        on_chunk(0..items.len(), probs)
    }

    /// What the loop, [`score_pool`](crate::score_pool) and a shard score: the
    /// [`Predictions`] of `items`, chunk by chunk with each chunk's range of positions. The
    /// default reads [`predict_chunks`](Self::predict_chunks) as class probabilities
    /// `[N, C, T]`; a segmentation or regression predictor
    /// ([`SegmentationPredictor`](crate::SegmentationPredictor),
    /// [`RegressionPredictor`](crate::RegressionPredictor)) hands over its own kind.
    ///
    /// # Errors
    /// As [`predict_chunks`](Self::predict_chunks), predictions that are not valid (the error
    /// names the item's position in `items`), and whatever `on_chunk` returns.
    fn predict_pool_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Predictions) -> Result<()>,
    ) -> Result<()> {
        self.predict_chunks(sampler, items, &mut |range, probs| {
            let chunk =
                Predictions::from_probs(probs).map_err(|error| error.offset_item(range.start))?;
            on_chunk(range, chunk)
        })
    }

    /// The model's embeddings `[rows, D]` of `items`, handed to `on_chunk` batch by batch with
    /// each batch's range of positions: the input of its last linear layer, every stochastic
    /// layer off ([`StochasticModel::embed`]), which the diversity heuristics (Coreset, BADGE)
    /// select by. The default gives none ([`BayesianError::NoEmbeddings`]);
    /// [`ModelPredictor`](crate::ModelPredictor) and [`Trainer`](crate::Trainer) embed with
    /// their model (an ensemble with its first member).
    ///
    /// [`BayesianError::NoEmbeddings`]: baal_bayesian::BayesianError::NoEmbeddings
    ///
    /// # Errors
    /// A predictor or model that gives no embeddings, an item that cannot be read, embeddings
    /// of a wrong shape, and whatever `on_chunk` returns.
    fn embed_chunks(
        &self,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<2>) -> Result<()>,
    ) -> Result<()> {
        let _ = (items, on_chunk);
        Err(baal_bayesian::BayesianError::NoEmbeddings.into())
    }

    /// Whether [`predict`](Self::predict) gives class probabilities `[N, C, T]` (the
    /// default). The loop reads the predicted classes of its queries and a target set's
    /// predictions (EPIG) only from a predictor that does.
    fn classifies(&self) -> bool {
        true
    }
}

/// What an oracle did with a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OracleOutcome {
    /// The query is labelled (this many items).
    Labelled(usize),
    /// The query waits for a person; label it with
    /// [`ActiveLearningDataset::label_with`] or `label_many_with`, then step again.
    Pending,
}

/// Labels the items a step queried.
pub trait Oracle<I, L>: Send {
    /// Labels `query` (dataset indices, most informative first) in `dataset`, or leaves it
    /// pending.
    ///
    /// # Errors
    /// The labels cannot be obtained or are refused by the dataset.
    fn label(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        query: &[DatasetIndex],
    ) -> Result<OracleOutcome>;
}

/// Decides, after each step's training and evaluation and before its query, whether labelling
/// stops.
///
/// `records` holds every step so far; the last one is the current step, whose query fields
/// (`n_queried`, `mean_uncertainty`) are still empty.
pub trait StoppingCriterion: Send {
    /// Why labelling stops now, or `None` to go on.
    fn should_stop(&self, records: &[StepRecord]) -> Option<String>;
}
