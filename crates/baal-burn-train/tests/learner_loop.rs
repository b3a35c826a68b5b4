//! The active-learning loop driven by a burn-train `Learner` through `LearnerTrainer`, on
//! three Gaussian blobs: the labelled set grows by the query size each step, every fit starts
//! from the initial weights and runs the configured epochs, predictions have the loop's
//! `[N, C, T]` shape.

use std::sync::{Arc, Mutex, PoisonError};

use baal_active::{ActiveLearningLoop, InputBatcher, Predictor};
use baal_bayesian::StochasticModel;
use baal_bayesian::{BurnDropout, McContext, McDropout, McDropoutConfig, McSamplerConfig};
use baal_burn_train::{LearnerTrainer, LearnerTrainerConfig, LearnerTrainerError};
use baal_data::{ActiveLearningDataset, LabelledItem};
use baal_heuristics::Bald;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{
    ClassificationOutput, InferenceStep, Interrupter, Learner, TrainOutput, TrainStep,
};

const FEATURES: usize = 4;
const CLASSES: usize = 3;

/// A point of one of three Gaussian blobs.
#[derive(Clone, Debug)]
struct Point {
    features: [f32; FEATURES],
    class: u8,
}

/// `n` points, classes in turn, around three well-separated centres.
fn blobs(n: usize, seed: u64) -> Vec<Point> {
    // A small LCG: the test needs spread, not quality.
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    (0..n)
        .map(|i| {
            let class = (i % CLASSES) as u8;
            let mut features = [0.0; FEATURES];
            for (j, value) in features.iter_mut().enumerate() {
                let centre = if j % CLASSES == usize::from(class) {
                    2.0
                } else {
                    -1.0
                };
                *value = centre + noise();
            }
            Point { features, class }
        })
        .collect()
}

/// A labelled batch for burn-train's steps.
#[derive(Clone, Debug)]
struct PointBatch {
    inputs: Tensor<2>,
    targets: Tensor<1, Int>,
}

fn inputs(points: &[Point], device: &Device) -> Tensor<2> {
    let values: Vec<f32> = points.iter().flat_map(|p| p.features).collect();
    Tensor::from_data(TensorData::new(values, [points.len(), FEATURES]), device)
}

/// Labelled items (the loop's labels, not the points' own classes) to a [`PointBatch`].
#[derive(Clone)]
struct PointBatcher;

impl Batcher<LabelledItem<Point, u8>, PointBatch> for PointBatcher {
    fn batch(&self, items: Vec<LabelledItem<Point, u8>>, device: &Device) -> PointBatch {
        let targets: Vec<i64> = items.iter().map(|entry| i64::from(entry.label)).collect();
        let points: Vec<Point> = items.into_iter().map(|entry| entry.item).collect();
        PointBatch {
            inputs: inputs(&points, device),
            targets: Tensor::from_data(TensorData::new(targets, [points.len()]), device),
        }
    }
}

/// Pool items to the model's input, for MC prediction.
fn input_batcher() -> InputBatcher<Point, Tensor<2>> {
    Arc::new(|points: Vec<Point>, device: &Device| inputs(&points, device))
}

/// The output layer's weights at every training step, in order: what each fit started from.
#[derive(Clone, Debug, Default)]
struct StepLog(Arc<Mutex<Vec<Vec<f32>>>>);

impl StepLog {
    fn push(&self, weights: Vec<f32>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(weights);
    }

    fn steps(&self) -> Vec<Vec<f32>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// 4 → 16 → MC dropout → 3, with burn-train's steps (cross-entropy, `ClassificationOutput`).
#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    dropout: McDropout,
    output: Linear,
    #[module(skip)]
    steps: StepLog,
}

impl Mlp {
    fn new(device: &Device, steps: StepLog) -> Self {
        Self {
            hidden: LinearConfig::new(FEATURES, 16).init(device),
            dropout: McDropoutConfig::new(0.25).init().expect("valid dropout"),
            output: LinearConfig::new(16, CLASSES).init(device),
            steps,
        }
    }

    fn classify(&self, batch: PointBatch, mc: &McContext) -> ClassificationOutput {
        let logits = self.head(self.trunk(batch.inputs), mc);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl StochasticModel for Mlp {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        relu(self.hidden.forward(input))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.output.forward(self.dropout.forward(features, mc))
    }
}

impl TrainStep for Mlp {
    type Input = PointBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: PointBatch) -> TrainOutput<ClassificationOutput> {
        self.steps.push(weights(self));
        let item = self.classify(batch, &McContext::training());
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for Mlp {
    type Input = PointBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: PointBatch) -> ClassificationOutput {
        self.classify(batch, &McContext::training().with_deterministic(true))
    }
}

/// The output layer's weights.
fn weights(model: &Mlp) -> Vec<f32> {
    model
        .output
        .weight
        .val()
        .try_into_vec_as::<f32>()
        .expect("weights read back")
}

/// A learner whose model is built on the autodiff form of `device`, as burn-train expects.
fn learner(device: &Device, steps: StepLog) -> Learner<Mlp> {
    let optimizer: ModuleOptimizer = AdamConfig::new().init();
    let model = Mlp::new(&device.clone().autodiff(), steps);
    Learner::new(model, optimizer, ConstantLr::new(0.02))
}

fn dataset(points: Vec<Point>) -> ActiveLearningDataset<Point, u8> {
    ActiveLearningDataset::new(InMemDataset::new(points))
        .with_known_labels(|point: &Point| point.class)
        .with_seed(5)
}

const EPOCHS: usize = 3;
const BATCH: usize = 4;
const QUERY: usize = 5;

#[test]
fn two_loop_steps_reset_fit_for_the_configured_epochs_and_predict() {
    let device = Device::default();
    device.seed(11);
    let steps = StepLog::default();
    let artifacts = tempfile::tempdir().expect("temp dir");
    let validation = DataLoaderBuilder::new(PointBatcher)
        .batch_size(8)
        .build(InMemDataset::new(
            blobs(12, 99)
                .into_iter()
                .map(|point| LabelledItem {
                    label: point.class,
                    item: point,
                })
                .collect::<Vec<_>>(),
        ));
    let mut trainer = LearnerTrainer::new(
        learner(&device, steps.clone()),
        &device,
        PointBatcher,
        input_batcher(),
        LearnerTrainerConfig::new()
            .with_epochs(EPOCHS)
            .with_batch_size(BATCH)
            .with_seed(3),
    )
    .expect("valid config")
    .with_training(|training| training.metrics((LossMetric::new(), AccuracyMetric::new())))
    .with_validation(validation)
    .with_artifact_dir(artifacts.path());
    let initial = weights(&trainer.starting_model());
    let mut dataset = dataset(blobs(90, 1));
    dataset.label_randomly(7).expect("initial labels");
    let mut active = ActiveLearningLoop::new(Bald, QUERY)
        .expect("valid loop")
        .with_iterations(6);

    for step in 0..2 {
        // The model the fit starts from is the initial one, also after a fit.
        assert_eq!(weights(&trainer.starting_model()), initial, "step {step}");
        let labelled = dataset.n_labelled();
        let steps_before = steps.steps().len();
        let report = trainer.fit(&dataset.labelled()).expect("fit");

        assert_eq!(report.fit, step as u64);
        assert_eq!(report.labelled, labelled);
        assert_eq!(
            report.epochs, EPOCHS,
            "burn-train's epochs, as it counted them"
        );
        assert_eq!(report.interrupted, None);
        for (split, metrics) in [
            ("train", &report.train_metrics),
            ("valid", &report.valid_metrics),
        ] {
            for name in ["Loss", "Accuracy"] {
                let values = metrics
                    .get(name)
                    .unwrap_or_else(|| panic!("{split} {name} in {metrics:?}"));
                assert_eq!(values.len(), EPOCHS, "{split} {name}: one value an epoch");
                assert!(
                    values.iter().all(|v| v.is_finite()),
                    "{split} {name}: {values:?}"
                );
            }
        }
        // The model saw every labelled item in each epoch, batch by batch ...
        let fit_steps = &steps.steps()[steps_before..];
        assert_eq!(fit_steps.len(), EPOCHS * labelled.div_ceil(BATCH));
        // ... starting from the initial weights (reset), and trained them.
        assert_eq!(
            fit_steps[0], initial,
            "fit {step} starts from the initial weights"
        );
        let trained = weights(trainer.trained_model().expect("a trained model"));
        assert_ne!(trained, initial, "fit {step} changed the weights");

        // The loop's predictor is the trained model, MC-sampled: [N, C, T].
        let sampler = McSamplerConfig::new(6).init().expect("sampler");
        let pool = dataset.pool();
        let probs = trainer.predict(&sampler, &pool).expect("predictions");
        assert_eq!(probs.dims(), [pool.len(), CLASSES, 6]);

        let outcome = active.step(&mut dataset, &trainer).expect("step");
        assert_eq!(outcome.query.len(), QUERY);
        assert!(outcome.labelled);
        assert_eq!(dataset.n_labelled(), labelled + QUERY);
    }
    assert_eq!(trainer.fit_count(), 2);
    // burn-train wrote nothing: no checkpoint, log or metric file.
    let written: Vec<_> = std::fs::read_dir(artifacts.path())
        .expect("artifact dir")
        .collect();
    assert!(written.is_empty(), "burn-train wrote {written:?}");
}

#[test]
fn reset_weights_puts_the_initial_model_back_in_the_predictor() {
    let device = Device::default();
    device.seed(12);
    let mut trainer = LearnerTrainer::new(
        learner(&device, StepLog::default()),
        &device,
        PointBatcher,
        input_batcher(),
        LearnerTrainerConfig::new()
            .with_epochs(2)
            .with_batch_size(BATCH),
    )
    .expect("valid config");
    let initial = weights(&trainer.starting_model());
    assert_eq!(weights(&trainer.predictor().model), initial);
    let mut dataset = dataset(blobs(30, 2));
    dataset.label_randomly(6).expect("labels");
    let report = trainer.fit(&dataset.labelled()).expect("fit");
    assert_eq!(report.epochs, 2);
    assert!(report.train_metrics.is_empty(), "no metric was registered");
    assert_ne!(weights(&trainer.predictor().model), initial);
    trainer.reset_weights();
    assert!(trainer.trained_model().is_none());
    assert_eq!(weights(&trainer.predictor().model), initial);
}

#[test]
fn an_empty_labelled_set_is_an_error() {
    let device = Device::default();
    let mut trainer = LearnerTrainer::new(
        learner(&device, StepLog::default()),
        &device,
        PointBatcher,
        input_batcher(),
        LearnerTrainerConfig::new(),
    )
    .expect("valid config");
    let dataset = dataset(blobs(10, 3));
    let error = trainer
        .fit(&dataset.labelled())
        .expect_err("nothing to fit on");
    assert!(
        matches!(error, LearnerTrainerError::EmptyLabelledSet),
        "{error}"
    );
    assert_eq!(trainer.fit_count(), 0);
}

#[test]
fn a_model_built_on_a_plain_device_is_refused_before_burn_train_panics_on_it() {
    let device = Device::default();
    let optimizer: ModuleOptimizer = AdamConfig::new().init();
    let plain = Learner::new(
        Mlp::new(&device, StepLog::default()),
        optimizer.clone(),
        ConstantLr::new(0.02),
    );
    let refused = LearnerTrainer::new(
        plain,
        &device,
        PointBatcher,
        input_batcher(),
        LearnerTrainerConfig::new(),
    );
    assert!(matches!(refused, Err(LearnerTrainerError::UntrackedModel)));
    // The fix the error names.
    let tracked = Mlp::new(&device, StepLog::default())
        .fork(&device.clone().autodiff())
        .train();
    let accepted = LearnerTrainer::new(
        Learner::new(tracked, optimizer, ConstantLr::new(0.02)),
        &device,
        PointBatcher,
        input_batcher(),
        LearnerTrainerConfig::new().with_epochs(1),
    );
    let mut trainer = accepted.expect("a tracked model is accepted");
    let mut dataset = dataset(blobs(12, 6));
    dataset.label_randomly(4).expect("labels");
    assert_eq!(trainer.fit(&dataset.labelled()).expect("fit").epochs, 1);
}

#[test]
fn an_interrupted_fit_says_why_and_stops_after_its_first_epoch() {
    let device = Device::default();
    let interrupter = Interrupter::new();
    interrupter.stop(Some("labelling budget spent"));
    let mut trainer = LearnerTrainer::new(
        learner(&device, StepLog::default()),
        &device,
        PointBatcher,
        input_batcher(),
        LearnerTrainerConfig::new()
            .with_epochs(5)
            .with_batch_size(BATCH),
    )
    .expect("valid config")
    .with_training(move |training| training.with_interrupter(interrupter.clone()));
    let mut dataset = dataset(blobs(30, 4));
    dataset.label_randomly(12).expect("labels");
    let report = trainer.fit(&dataset.labelled()).expect("fit");
    assert_eq!(
        report.interrupted.as_deref(),
        Some("labelling budget spent")
    );
    assert_eq!(report.epochs, 1, "stopped in its first epoch");
}

/// 4 → 16 → Burn's own dropout → 3: a model written for burn-train alone.
#[derive(Module, Debug)]
struct PlainMlp {
    hidden: Linear,
    dropout: Dropout,
    output: Linear,
}

impl PlainMlp {
    fn forward(&self, inputs: Tensor<2>) -> Tensor<2> {
        self.output
            .forward(self.dropout.forward(relu(self.hidden.forward(inputs))))
    }

    fn classify(&self, batch: PointBatch) -> ClassificationOutput {
        let logits = self.forward(batch.inputs);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for PlainMlp {
    type Input = PointBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: PointBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.classify(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for PlainMlp {
    type Input = PointBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: PointBatch) -> ClassificationOutput {
        self.classify(batch)
    }
}

#[test]
fn a_model_with_burns_dropout_is_mc_sampled_through_burn_dropout() {
    let device = Device::default();
    device.seed(13);
    let training = device.clone().autodiff();
    let model = PlainMlp {
        hidden: LinearConfig::new(FEATURES, 16).init(&training),
        dropout: DropoutConfig::new(0.5).init(),
        output: LinearConfig::new(16, CLASSES).init(&training),
    };
    let optimizer: ModuleOptimizer = AdamConfig::new().init();
    let mut trainer = LearnerTrainer::sampling_through(
        Learner::new(model, optimizer, ConstantLr::new(0.02)),
        &device,
        PointBatcher,
        input_batcher(),
        |model: PlainMlp, device: &Device| {
            BurnDropout::new(model, device).with_forward(|model: &PlainMlp, x| model.forward(x))
        },
        LearnerTrainerConfig::new()
            .with_epochs(2)
            .with_batch_size(BATCH),
    )
    .expect("valid config");
    let mut dataset = dataset(blobs(40, 5));
    dataset.label_randomly(9).expect("labels");
    let report = trainer.fit(&dataset.labelled()).expect("fit");
    assert_eq!(report.epochs, 2);
    let sampler = McSamplerConfig::new(8).init().expect("sampler");
    let pool = dataset.pool();
    let probs = trainer.predict(&sampler, &pool).expect("predictions");
    assert_eq!(probs.dims(), [pool.len(), CLASSES, 8]);
    // Dropout is on while sampling: the iterations of an item differ.
    let first = probs.clone().narrow(2, 0, 1);
    let spread = (probs - first).abs().max().into_scalar::<f32>();
    assert!(spread > 1e-4, "MC iterations are identical: {spread}");
    let mut active = ActiveLearningLoop::new(Bald, QUERY)
        .expect("valid loop")
        .with_iterations(8);
    let labelled = dataset.n_labelled();
    active.step(&mut dataset, &trainer).expect("step");
    assert_eq!(dataset.n_labelled(), labelled + QUERY);
}
