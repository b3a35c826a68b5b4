//! Two active-learning steps with a model trained by burn-train's `Learner`.
//!
//! The model is written the burn-train way (a `TrainStep` and an `InferenceStep` returning a
//! `ClassificationOutput`, an Adam optimizer, a constant learning rate, loss and accuracy
//! metrics) and is also a `StochasticModel` with an MC dropout layer, so that the loop's MC
//! sampler can sample it. `LearnerTrainer` fits it with burn-train before each step; BALD
//! picks what to label next.
//!
//! Data: a slice of Fashion-MNIST from /usr/share/datasets/fashion-mnist when it is there,
//! else three synthetic Gaussian blobs.
//!
//! ```text
//! cargo run -p baal-burn-train --example learner_loop --release
//! ```

use std::error::Error;
use std::sync::Arc;

use baal_active::{ActiveLearningLoop, InputBatcher};
use baal_bayesian::{McContext, McDropout, McDropoutConfig, StochasticModel};
use baal_burn_train::{LearnerTrainer, LearnerTrainerConfig};
use baal_data::{ActiveLearningDataset, FashionMnist, LabelledItem};
use baal_heuristics::Bald;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ClassificationOutput, InferenceStep, Learner, TrainOutput, TrainStep};

/// One item: its features (pixels scaled to [0, 1], or a point's coordinates) and class.
#[derive(Clone, Debug)]
struct Sample {
    features: Vec<f32>,
    class: u8,
}

/// The data of the run: pool, held-out set, input width, number of classes and its name.
struct Data {
    pool: Vec<Sample>,
    held_out: Vec<Sample>,
    width: usize,
    classes: usize,
    name: &'static str,
}

fn load_data() -> Result<Data, Box<dyn Error>> {
    if std::path::Path::new(FashionMnist::DEFAULT_DIR).is_dir() {
        let data = FashionMnist::from_default_dir()?;
        let take = |set: &dyn Dataset<baal_data::ImageItem>, n: usize| {
            (0..n.min(set.len()))
                .map(|i| {
                    set.get(i).map(|item| Sample {
                        features: item.to_unit_f32(),
                        class: item.label,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        return Ok(Data {
            pool: take(&data.train, 2000)?,
            held_out: take(&data.test, 500)?,
            width: 784,
            classes: 10,
            name: "Fashion-MNIST (a slice)",
        });
    }
    Ok(Data {
        pool: blobs(300, 1),
        held_out: blobs(90, 2),
        width: 4,
        classes: 3,
        name: "three Gaussian blobs",
    })
}

/// `n` points of three blobs in 4 dimensions, classes in turn.
fn blobs(n: usize, seed: u64) -> Vec<Sample> {
    let mut state = seed;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    (0..n)
        .map(|i| {
            let class = (i % 3) as u8;
            let features = (0..4)
                .map(|j| if j % 3 == usize::from(class) { 1.5 } else { -1.0 } + noise())
                .collect();
            Sample { features, class }
        })
        .collect()
}

/// A labelled batch, as burn-train's steps take it.
#[derive(Clone, Debug)]
struct Batch {
    inputs: Tensor<2>,
    targets: Tensor<1, Int>,
}

fn inputs(samples: &[Sample], device: &Device) -> Tensor<2> {
    let width = samples.first().map_or(0, |s| s.features.len());
    let values: Vec<f32> = samples.iter().flat_map(|s| s.features.clone()).collect();
    Tensor::from_data(TensorData::new(values, [samples.len(), width]), device)
}

/// Labelled items of the active-learning dataset to a [`Batch`].
#[derive(Clone)]
struct LabelledBatcher;

impl Batcher<LabelledItem<Sample, u8>, Batch> for LabelledBatcher {
    fn batch(&self, items: Vec<LabelledItem<Sample, u8>>, device: &Device) -> Batch {
        let targets: Vec<i64> = items.iter().map(|entry| i64::from(entry.label)).collect();
        let samples: Vec<Sample> = items.into_iter().map(|entry| entry.item).collect();
        Batch {
            inputs: inputs(&samples, device),
            targets: Tensor::from_data(TensorData::new(targets, [samples.len()]), device),
        }
    }
}

/// An MLP with MC dropout before its output layer.
#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    dropout: McDropout,
    output: Linear,
}

impl Mlp {
    fn new(width: usize, classes: usize, device: &Device) -> Result<Self, Box<dyn Error>> {
        Ok(Self {
            hidden: LinearConfig::new(width, 64).init(device),
            dropout: McDropoutConfig::new(0.3).init()?,
            output: LinearConfig::new(64, classes).init(device),
        })
    }

    fn classify(&self, batch: Batch, mc: &McContext) -> ClassificationOutput {
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
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> TrainOutput<ClassificationOutput> {
        // Dropout masks from the device generator, as in any training step.
        let item = self.classify(batch, &McContext::training());
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for Mlp {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> ClassificationOutput {
        self.classify(batch, &McContext::training().with_deterministic(true))
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let data = load_data()?;
    println!(
        "{}: pool of {}, {} held out",
        data.name,
        data.pool.len(),
        data.held_out.len()
    );
    let device = Device::default();
    device.seed(0);

    // The burn-train side: model (built on the autodiff device, where burn-train trains it),
    // optimizer, scheduler (a Learner), and a validation loader.
    let optimizer: ModuleOptimizer = AdamConfig::new().init();
    let learner = Learner::new(
        Mlp::new(data.width, data.classes, &device.clone().autodiff())?,
        optimizer,
        ConstantLr::new(1e-3),
    );
    let held_out: Vec<LabelledItem<Sample, u8>> = data
        .held_out
        .into_iter()
        .map(|sample| LabelledItem {
            label: sample.class,
            item: sample,
        })
        .collect();
    let validation = DataLoaderBuilder::new(LabelledBatcher)
        .batch_size(128)
        .build(InMemDataset::new(held_out));

    // The adapter: fits the learner on the labelled items, predicts the pool for the loop.
    let input_batcher: InputBatcher<Sample, Tensor<2>> =
        Arc::new(|samples: Vec<Sample>, device: &Device| inputs(&samples, device));
    let mut trainer = LearnerTrainer::new(
        learner,
        &device,
        LabelledBatcher,
        input_batcher,
        LearnerTrainerConfig::new()
            .with_epochs(20)
            .with_batch_size(16),
    )?
    .with_training(|training| training.metrics((LossMetric::new(), AccuracyMetric::new())))
    .with_validation(validation);

    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(data.pool))
        .with_known_labels(|sample: &Sample| sample.class)
        .with_seed(0);
    dataset.label_randomly(20)?;
    let mut active = ActiveLearningLoop::new(Bald, 10)?
        .with_iterations(10)
        .with_max_sample(500);

    for step in 1..=2 {
        let report = trainer.fit(&dataset.labelled())?;
        let last = |metrics: &std::collections::BTreeMap<String, Vec<f64>>, name: &str| {
            metrics
                .get(name)
                .and_then(|values| values.last().copied())
                .unwrap_or(f64::NAN)
        };
        println!(
            "step {step}: {} labels, {} epochs, train loss {:.3}, held-out accuracy {:.1}%",
            report.labelled,
            report.epochs,
            last(&report.train_metrics, "Loss"),
            last(&report.valid_metrics, "Accuracy"),
        );
        let outcome = active.step(&mut dataset, &trainer)?;
        let query: Vec<usize> = outcome.query.iter().map(|index| index.get()).collect();
        println!(
            "        BALD queried {} of {} scored items: {query:?}",
            outcome.query.len(),
            outcome.n_scored
        );
    }
    println!("{} labels after 2 steps", dataset.n_labelled());
    Ok(())
}
