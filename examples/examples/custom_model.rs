//! Your own Burn model, made Bayesian and MC-sampled by baal: a small MLP written from scratch
//! (no model zoo) with baal's MC dropout layer, trained on a few labels, MC-sampled over the
//! pool with `McSamplerConfig`, ranked with BALD, and trained again on the picks.
//!
//! What makes a Burn module MC-sampleable: a `#[derive(Module)]` struct whose dropout is
//! `baal::bayesian::McDropout` (it stays on at inference and draws reproducible masks), and an
//! `impl StochasticModel` that splits the forward pass into a deterministic `trunk` (run once
//! per input) and a stochastic `head` (run once per MC iteration). `impl Classifier` (the
//! number of classes) lets baal's `Trainer` fit it.
//!
//! ```sh
//! cargo run --release -p baal-examples --example custom_model
//! ```
//!
//! Needs the `flex` feature (on by default) and no data: the pool is synthetic, three
//! overlapping Gaussian blobs in the plane. BALD picks the points the MC samples disagree on:
//! with 6 labels, mostly points far from every labelled one. It scores each point on its own,
//! so its picks may cluster (BatchBALD, `baal::heuristics::BatchBald`, spreads them).

use std::sync::Arc;

use baal::active::{Classifier, InputBatcher, Trainer, TrainerConfig};
use baal::bayesian::{McContext, McDropout, McDropoutConfig, McSamplerConfig, StochasticModel};
use baal::burn;
use baal::burn::data::dataset::{Dataset, InMemDataset};
use baal::burn::module::Module;
use baal::burn::nn::{Linear, LinearConfig};
use baal::burn::tensor::activation::relu;
use baal::burn::tensor::{Device, Tensor, TensorData};
use baal::data::ActiveLearningDataset;
use baal::heuristics::{Bald, Heuristic, Predictions};
use baal::prelude::parse_device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Error = Box<dyn std::error::Error>;

/// The three blobs' centres.
const CENTRES: [[f32; 2]; 3] = [[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]];

/// A labelled point of the synthetic pool.
#[derive(Clone, Debug)]
struct Point {
    xy: [f32; 2],
    label: u8,
}

/// The model, from scratch: dense – relu – MC dropout – dense.
#[derive(Module, Debug)]
struct TinyMlp {
    hidden: Linear,
    dropout: McDropout,
    output: Linear,
}

impl TinyMlp {
    fn new(device: &Device) -> Result<Self, Error> {
        Ok(Self {
            hidden: LinearConfig::new(2, 64).init(device),
            dropout: McDropoutConfig::new(0.5).init()?,
            output: LinearConfig::new(64, CENTRES.len()).init(device),
        })
    }
}

impl StochasticModel for TinyMlp {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    /// Everything before the first dropout: run once per point, whatever T.
    fn trunk(&self, points: Tensor<2>) -> Tensor<2> {
        relu(self.hidden.forward(points))
    }

    /// The stochastic part: run once per MC iteration, on replicated features.
    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.output.forward(self.dropout.forward(features, mc))
    }
}

impl Classifier for TinyMlp {
    fn num_classes(&self) -> usize {
        CENTRES.len()
    }
}

/// `n` points, a third per blob, with standard normal noise (Box–Muller), seeded.
fn blobs(n: usize, seed: u64) -> Vec<Point> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let label = i % CENTRES.len();
            let (u, v): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
            let radius = (-2.0 * u.ln()).sqrt();
            let angle = std::f32::consts::TAU * v;
            let [cx, cy] = CENTRES[label];
            Point {
                xy: [cx + radius * angle.cos(), cy + radius * angle.sin()],
                label: label as u8,
            }
        })
        .collect()
}

/// Points to the model's input, `[N, 2]`.
fn to_tensor(points: &[Point], device: &Device) -> Tensor<2> {
    let values: Vec<f32> = points.iter().flat_map(|p| p.xy).collect();
    Tensor::from_data(TensorData::new(values, [points.len(), 2]), device)
}

fn main() -> Result<(), Error> {
    let device = parse_device("cpu")?;
    device.seed(0);
    let batcher: InputBatcher<Point, Tensor<2>> =
        Arc::new(|points: Vec<Point>, device: &Device| to_tensor(&points, device));
    let test = InMemDataset::new(blobs(600, 1));
    let label_of = |p: &Point| usize::from(p.label);

    // A pool of 900 points, 6 of them labelled at random.
    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(blobs(900, 0)))
        .with_known_labels(|p: &Point| p.label)
        .with_seed(0);
    dataset.label_randomly(6)?;
    let config = TrainerConfig::default()
        .with_epochs(50)
        .with_min_gradient_steps(200)
        .with_batch_size(8);
    let mut trainer = Trainer::new(TinyMlp::new(&device)?, &device, batcher, config)?;
    trainer.fit(&dataset.labelled())?;
    let before = trainer.evaluate(&test, &label_of)?;
    println!(
        "{} labels: test accuracy {:.3}",
        dataset.n_labelled(),
        before.accuracy
    );

    // MC-sample the pool: T = 50 forward passes with dropout on, [N, C, T].
    let pool = dataset.pool();
    let points = pool.iter().collect::<Result<Vec<Point>, _>>()?;
    let sampler = McSamplerConfig::new(50).with_seed(1).init()?;
    let probs = sampler.predict_batch(
        &trainer.inference_model(),
        to_tensor(&points, &trainer.inference_device()),
    )?;
    println!(
        "MC predictions of the pool: {:?} (items, classes, MC iterations)",
        probs.dims()
    );

    // Rank with BALD and label the 12 most informative points.
    let selection = Bald.select(&Predictions::from_probs(probs)?, None, 12)?;
    println!("the 12 points BALD picks (high where the MC samples disagree):");
    for (&position, score) in selection.positions.iter().zip(&selection.scores) {
        let point = &points[position];
        println!(
            "  ({:+.2}, {:+.2}) class {}: BALD {score:.3}",
            point.xy[0], point.xy[1], point.label
        );
    }
    let query = selection
        .positions
        .iter()
        .map(|&p| pool.dataset_index(p))
        .collect::<Result<Vec<_>, _>>()?;
    dataset.label_dataset_indices(&query)?;
    trainer.fit(&dataset.labelled())?;
    let after = trainer.evaluate(&test, &label_of)?;
    println!(
        "{} labels: test accuracy {:.3}",
        dataset.n_labelled(),
        after.accuracy
    );
    Ok(())
}
