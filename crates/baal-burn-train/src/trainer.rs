//! [`LearnerTrainer`]: burn-train's `Learner` as the training side of the active-learning loop,
//! and its trained model as the loop's [`Predictor`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use baal_active::{InputBatcher, ModelPredictor, Predictor};
use baal_bayesian::{McSampler, StochasticModel, seeds};
use baal_data::LabelledItem;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use burn::train::{
    ExecutionStrategy, InferenceStep, Learner, LearnerModel, SupervisedTraining, TrainStep,
    TrainingStrategy,
};

use crate::config::LearnerTrainerConfig;
use crate::error::{LearnerTrainerError, Result};
use crate::recorder::{FitRecorder, NoValidation, SilentRenderer};

/// The batch a model's [`TrainStep`] takes (what the training batcher builds).
pub type TrainInput<M> = <M as TrainStep>::Input;

/// The batch a model's [`InferenceStep`] takes (what a validation loader yields).
pub type InferenceInput<M> = <M as InferenceStep>::Input;

/// Extra burn-train settings applied to every fit's [`SupervisedTraining`].
type Configure<M> = Arc<dyn Fn(SupervisedTraining<M>) -> SupervisedTraining<M> + Send + Sync>;

/// Turns a trained model (its inference form) into what the MC sampler runs.
type Sampling<M, S> = Arc<dyn Fn(M, &Device) -> S + Send + Sync>;

/// What one [`LearnerTrainer::fit`] did, read from burn-train's own events.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerFitReport {
    /// Which fit this was (0 for the first); it seeds the fit.
    pub fit: u64,
    /// Labelled items trained on.
    pub labelled: usize,
    /// Epochs burn-train ran: the configured number, or fewer when early stopping or an
    /// interrupter stopped it.
    pub epochs: usize,
    /// Each numeric training metric registered in
    /// [`with_training`](LearnerTrainer::with_training) (burn-train's name, e.g. `"Loss"`),
    /// its value at the end of each epoch, first epoch first.
    pub train_metrics: BTreeMap<String, Vec<f64>>,
    /// The same for the validation metrics (empty without a validation set).
    pub valid_metrics: BTreeMap<String, Vec<f64>>,
    /// Why training stopped before its last epoch, when an interrupter stopped it.
    pub interrupted: Option<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl LearnerFitReport {
    /// The value of training metric `name` at the end of the last epoch.
    pub fn last_train(&self, name: &str) -> Option<f64> {
        self.train_metrics.get(name)?.last().copied()
    }
}

/// A model trained with burn-train's [`Learner`], driven by the active-learning loop: each
/// [`fit`](Self::fit) trains a copy of the learner as it was given (initial weights, fresh
/// optimizer state, the scheduler at its first step: baal's reset between steps) on the
/// labelled items, and the trained model MC-predicts the pool as a [`Predictor`].
///
/// - `M` is the user's model: a Burn module with burn-train's [`TrainStep`] and
///   [`InferenceStep`] (a [`LearnerModel`]).
/// - `S` is what the MC sampler runs: `M` itself when it is a
///   [`StochasticModel`] ([`new`](Self::new)), or a wrapper built from the trained model
///   ([`sampling_through`](Self::sampling_through)), e.g. `baal_bayesian::BurnDropout` for a
///   model whose dropout is `burn::nn::Dropout`.
/// - `I` is the item type of the active-learning dataset, `L` its label type; the training
///   batcher turns [`LabelledItem<I, L>`]s into the [`TrainStep`] batch.
///
/// Each fit builds burn-train's dataloader from the labelled view, runs
/// [`SupervisedTraining::launch`] for [`epochs`](LearnerTrainerConfig::epochs) on the
/// autodiff form of the device, and keeps the model it returns. burn-train's outputs are
/// quiet by default: no renderer draws (no terminal UI, no progress lines), no application
/// logger is installed, no checkpoint or metric file is written; the metrics come back in the
/// [`LearnerFitReport`].
pub struct LearnerTrainer<M: LearnerModel, S: StochasticModel, I, L> {
    /// The learner as given: every fit starts from a copy of it.
    initial: Learner<M>,
    /// The model of the last fit (its inference form); `None` before a fit or after a reset.
    trained: Option<M>,
    /// What the loop predicts with: the trained model (or the initial one), sampled.
    predictor: ModelPredictor<S, I>,
    sampling: Sampling<M, S>,
    train_batcher: Arc<dyn Batcher<LabelledItem<I, L>, TrainInput<M>>>,
    validation: Option<Arc<dyn DataLoader<InferenceInput<M>>>>,
    configure: Option<Configure<M>>,
    artifact_dir: Option<PathBuf>,
    /// The plain device: prediction inputs go there; training runs on its autodiff form.
    device: Device,
    config: LearnerTrainerConfig,
    fits: u64,
}

impl<M, I, L> LearnerTrainer<M, M, I, L>
where
    M: LearnerModel + StochasticModel,
    TrainInput<M>: Clone + Debug,
    I: Clone + Debug + Send + Sync + 'static,
    L: Clone + Debug + Send + Sync + 'static,
{
    /// A trainer for `learner`, whose model is also a [`StochasticModel`] (its MC layers are
    /// baal-bayesian's): `train_batcher` builds the [`TrainStep`] batch of labelled items,
    /// `input_batcher` the model input of pool items for MC prediction on `device`. Build the
    /// learner's model on the autodiff form of `device`, as burn-train expects
    /// (`Model::new(&device.clone().autodiff())`): training runs there, prediction on
    /// `device`.
    ///
    /// # Errors
    /// As [`sampling_through`](Self::sampling_through).
    pub fn new(
        learner: Learner<M>,
        device: &Device,
        train_batcher: impl Batcher<LabelledItem<I, L>, TrainInput<M>> + 'static,
        input_batcher: InputBatcher<I, <M as StochasticModel>::Input>,
        config: LearnerTrainerConfig,
    ) -> Result<Self> {
        Self::sampling_through(
            learner,
            device,
            train_batcher,
            input_batcher,
            |model, _device| model,
            config,
        )
    }
}

impl<M, S, I, L> LearnerTrainer<M, S, I, L>
where
    M: LearnerModel,
    TrainInput<M>: Clone + Debug,
    S: StochasticModel,
    I: Clone + Debug + Send + Sync + 'static,
    L: Clone + Debug + Send + Sync + 'static,
{
    /// A trainer for `learner` whose trained model the MC sampler runs through `sampling`
    /// (called with the model's inference form and the plain device after each fit, and once
    /// here for the initial model): for a model with `burn::nn::Dropout`,
    /// `|model, device| BurnDropout::new(model, device).with_forward(Net::forward)`.
    /// `input_batcher` builds what `S` takes.
    ///
    /// # Errors
    /// The configuration is invalid ([`LearnerTrainerConfig::check`]), or no parameter of the
    /// learner's model tracks gradients ([`LearnerTrainerError::UntrackedModel`]).
    pub fn sampling_through(
        learner: Learner<M>,
        device: &Device,
        train_batcher: impl Batcher<LabelledItem<I, L>, TrainInput<M>> + 'static,
        input_batcher: InputBatcher<I, S::Input>,
        sampling: impl Fn(M, &Device) -> S + Send + Sync + 'static,
        config: LearnerTrainerConfig,
    ) -> Result<Self> {
        config.check()?;
        if !tracks_gradients(&learner.model()) {
            return Err(LearnerTrainerError::UntrackedModel);
        }
        let device = device.clone().without_autodiff();
        let sampling: Sampling<M, S> = Arc::new(sampling);
        let predictor = ModelPredictor {
            model: sampling(learner.model().valid(), &device),
            batcher: input_batcher,
            device: device.clone(),
            batch_size: config.predict_batch_size,
        };
        Ok(Self {
            initial: learner,
            trained: None,
            predictor,
            sampling,
            train_batcher: Arc::new(train_batcher),
            validation: None,
            configure: None,
            artifact_dir: None,
            device,
            config,
            fits: 0,
        })
    }

    /// Applies `configure` to every fit's [`SupervisedTraining`] after the adapter's own
    /// settings: register metrics (`|t| t.metrics((LossMetric::new(),))`), early stopping,
    /// gradient accumulation, checkpointers, an interrupter, another renderer or training
    /// strategy. Leave `num_epochs` to [`LearnerTrainerConfig::epochs`].
    pub fn with_training(
        mut self,
        configure: impl Fn(SupervisedTraining<M>) -> SupervisedTraining<M> + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// Validates every fit on `loader` (labelled items held out of the pool, batched by
    /// burn-train's `DataLoaderBuilder`): its metrics land in
    /// [`LearnerFitReport::valid_metrics`] and burn-train's early stopping can watch them.
    /// Without one, each epoch's validation split is empty.
    pub fn with_validation(mut self, loader: Arc<dyn DataLoader<InferenceInput<M>>>) -> Self {
        self.validation = Some(loader);
        self
    }

    /// The folder burn-train's file outputs go to, fit `k` in `dir/fit-k`: only those turned
    /// on in [`with_training`](Self::with_training) write anything (checkpointers, the
    /// summary, a `FileMetricLogger`). Without it they go under the system's temporary folder.
    pub fn with_artifact_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.artifact_dir = Some(dir.into());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &LearnerTrainerConfig {
        &self.config
    }

    /// The model every fit starts from: the learner's, as it was given.
    pub fn starting_model(&self) -> M {
        self.initial.model()
    }

    /// The model of the last fit (its inference form, without autodiff); `None` before the
    /// first fit and after [`reset_weights`](Self::reset_weights).
    pub fn trained_model(&self) -> Option<&M> {
        self.trained.as_ref()
    }

    /// What the loop predicts with: the sampled trained model (the initial one before a fit),
    /// its input batcher, device and batch size. Wrap a copy of its parts in
    /// `baal_active::SegmentationPredictor` or `RegressionPredictor` for those tasks.
    pub fn predictor(&self) -> &ModelPredictor<S, I> {
        &self.predictor
    }

    /// Number of fits done (it seeds the next one).
    pub fn fit_count(&self) -> u64 {
        self.fits
    }

    /// Sets the fit counter, so that a resumed run seeds its fits as the original run did.
    pub fn set_fit_count(&mut self, fits: u64) {
        self.fits = fits;
    }

    /// Puts the initial weights back: predictions come from the initial model again until the
    /// next fit. A fit always starts from the initial learner, so calling this between steps
    /// is not needed for training.
    pub fn reset_weights(&mut self) {
        self.trained = None;
        self.predictor.model = (self.sampling)(self.initial.model().valid(), &self.device);
    }

    /// Trains a copy of the initial learner on `labelled` for the configured epochs with
    /// burn-train, and makes its model the one the loop predicts with.
    ///
    /// Fit `k` shuffles the batches and seeds the device with
    /// `baal_bayesian::seeds::nth(config.seed, k)`.
    ///
    /// # Errors
    /// The labelled set is empty or an item cannot be read, or burn-train stopped on an error
    /// (the model of such a fit is not kept).
    pub fn fit(&mut self, labelled: &dyn Dataset<LabelledItem<I, L>>) -> Result<LearnerFitReport> {
        let started = Instant::now();
        let items = read_labelled(labelled)?;
        let labelled = items.len();
        let fit = self.fits;
        let seed = seeds::nth(self.config.seed, fit);
        self.fits += 1;
        let training_device = self.device.clone().autodiff();
        training_device.seed(seed);
        let train_loader = DataLoaderBuilder::new(SharedBatcher(Arc::clone(&self.train_batcher)))
            .batch_size(self.config.batch_size)
            .shuffle(seed)
            .num_workers(self.config.num_workers)
            .build(InMemDataset::new(items));
        let valid_loader = self
            .validation
            .clone()
            .unwrap_or_else(|| Arc::new(NoValidation));
        let recorder = FitRecorder::default();
        let strategy: TrainingStrategy<M> = ExecutionStrategy::single(training_device).into();
        let mut training = SupervisedTraining::new(self.fit_dir(fit), train_loader, valid_loader)
            .num_epochs(self.config.epochs)
            .with_training_strategy(strategy)
            .renderer(Box::new(SilentRenderer))
            .with_metric_logger(recorder.clone())
            .with_application_logger(None);
        if let Some(configure) = &self.configure {
            training = configure(training);
        }
        let result = training.launch(self.initial.clone());
        if let Some(source) = result.error {
            return Err(LearnerTrainerError::Training { fit, source });
        }
        let recorded = recorder.recorded();
        self.predictor.model = (self.sampling)(result.model.clone(), &self.device);
        self.trained = Some(result.model);
        Ok(LearnerFitReport {
            fit,
            labelled,
            epochs: recorded.train_epochs,
            train_metrics: recorded.train_metrics,
            valid_metrics: recorded.valid_metrics,
            interrupted: result.interrupted.map(|stop| {
                stop.reason
                    .unwrap_or_else(|| "stopped by an interrupter".into())
            }),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Where fit `fit`'s burn-train outputs go.
    fn fit_dir(&self, fit: u64) -> PathBuf {
        let base = self
            .artifact_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("baal-burn-train"));
        base.join(format!("fit-{fit}"))
    }
}

impl<M, S, I, L> Predictor<I> for LearnerTrainer<M, S, I, L>
where
    M: LearnerModel,
    S: StochasticModel<Output = Tensor<2>>,
{
    fn predict(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
    ) -> baal_active::Result<Tensor<3>> {
        self.predictor.predict(sampler, items)
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> baal_active::Result<()>,
    ) -> baal_active::Result<()> {
        self.predictor.predict_chunks(sampler, items, on_chunk)
    }

    fn embed_chunks(
        &self,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<2>) -> baal_active::Result<()>,
    ) -> baal_active::Result<()> {
        self.predictor.embed_chunks(items, on_chunk)
    }
}

/// Every labelled item, read once: burn-train's dataloader owns its dataset.
fn read_labelled<I, L>(
    labelled: &dyn Dataset<LabelledItem<I, L>>,
) -> Result<Vec<LabelledItem<I, L>>> {
    if labelled.is_empty() {
        return Err(LearnerTrainerError::EmptyLabelledSet);
    }
    (0..labelled.len())
        .map(|index| {
            labelled.get(index).map_err(|e| LearnerTrainerError::Item {
                index,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Whether any float parameter of `model` tracks gradients, so that a backward pass reaches it.
fn tracks_gradients<M: Module>(model: &M) -> bool {
    struct Tracked(bool);
    impl ModuleVisitor for Tracked {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 |= param.val().is_require_grad();
        }
    }
    let mut tracked = Tracked(false);
    model.visit(&mut tracked);
    tracked.0
}

/// The user's batcher, shared by the dataloaders of every fit.
struct SharedBatcher<I, O>(Arc<dyn Batcher<I, O>>);

impl<I, O> Batcher<I, O> for SharedBatcher<I, O> {
    fn batch(&self, items: Vec<I>, device: &Device) -> O {
        self.0.batch(items, device)
    }
}
