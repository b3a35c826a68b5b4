//! MC-dropout predictions of a zoo model and their uncertainty, as baal's Python
//! `make_predictions` does: train the zoo's `SmallCnn` on 500 Fashion-MNIST labels, run it
//! T = 20 times with dropout on over a few test images, and print for each image the mean
//! prediction, its probability, how many of the 20 samples agree with it, and its BALD score
//! (the mutual information between the label and the weights: high where the samples
//! disagree, the images active learning would ask a person to label).
//!
//! ```sh
//! cargo run --release -p baal-examples --example mc_predictions [-- FASHION_MNIST_DIR [IMAGES]]
//! ```
//!
//! Needs the `flex` feature (on by default) and Fashion-MNIST's IDX files: in
//! /usr/share/datasets/fashion-mnist (`apt-get install dataset-fashion-mnist`) or in the folder
//! given as first argument. IMAGES (default 12) test images are predicted. (The facade's
//! `cargo run -p baal --example make_predictions` is another program: it simulates
//! predictions for `baal score`.)

use baal::active::{Predictor, Trainer, TrainerConfig};
use baal::bayesian::McSamplerConfig;
use baal::burn::data::dataset::{Dataset, InMemDataset};
use baal::burn::tensor::Tensor;
use baal::data::{ActiveLearningDataset, FashionMnist, ImageItem};
use baal::heuristics::{Bald, Heuristic, Predictions};
use baal::prelude::parse_device;
use baal_zoo::images::{Normalization, image_batcher};
use baal_zoo::models::SmallCnnConfig;

/// Fashion-MNIST's classes.
const CLASSES: [&str; 10] = FashionMnist::CLASSES;

type Error = Box<dyn std::error::Error>;

/// MC iterations T.
const ITERATIONS: usize = 20;

/// The folder and image count from the command line.
fn arguments() -> Result<(String, usize), Error> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| FashionMnist::DEFAULT_DIR.to_string());
    let images = match args.next() {
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("IMAGES must be a positive number, got '{n}'").into()),
        },
        None => 12,
    };
    Ok((dir, images))
}

/// What the MC samples say about one image.
struct Summary {
    /// The class of the highest mean probability over the samples.
    predicted: usize,
    /// Its mean probability.
    probability: f32,
    /// How many samples give it their highest probability.
    agreeing: usize,
}

/// The class of the highest value.
fn argmax(values: impl Iterator<Item = f32>) -> (usize, f32) {
    values
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

/// Each item's summary of MC probabilities `[N, C, T]`.
fn summarise(probs: &Tensor<3>) -> Result<Vec<Summary>, Error> {
    let [n, c, t] = probs.dims();
    let values = probs.clone().try_into_vec_as::<f32>()?;
    let at = |i: usize, class: usize, it: usize| values[(i * c + class) * t + it];
    Ok((0..n)
        .map(|i| {
            let mean =
                (0..c).map(|class| (0..t).map(|it| at(i, class, it)).sum::<f32>() / t as f32);
            let (predicted, probability) = argmax(mean);
            let agreeing = (0..t)
                .filter(|&it| argmax((0..c).map(|class| at(i, class, it))).0 == predicted)
                .count();
            Summary {
                predicted,
                probability,
                agreeing,
            }
        })
        .collect())
}

fn main() -> Result<(), Error> {
    let (dir, count) = arguments()?;
    let data = FashionMnist::from_dir(&dir).map_err(|e| {
        format!(
            "{e}. This example needs Fashion-MNIST: apt-get install dataset-fashion-mnist, or \
             pass the folder of its four IDX files as first argument"
        )
    })?;
    let device = parse_device("cpu")?;
    device.seed(0);

    // A model trained on 500 random labels: good on easy images, unsure on the others.
    let mut dataset = ActiveLearningDataset::new(data.train.clone())
        .with_known_labels(|item: &ImageItem| item.label)
        .with_seed(0);
    dataset.label_randomly(500)?;
    let config = TrainerConfig::default()
        .with_epochs(10)
        .with_min_gradient_steps(200);
    let mut trainer = Trainer::new(
        SmallCnnConfig::new().init(&device)?,
        &device,
        image_batcher(Normalization::fashion_mnist()),
        config,
    )?;
    trainer.fit(&dataset.labelled())?;

    // T forward passes with dropout on over the first test images: [N, C, T].
    let items: Vec<ImageItem> = (0..count.min(data.test.len()))
        .filter_map(|i| data.test.get(i).ok())
        .collect();
    let images = InMemDataset::new(items.clone());
    let sampler = McSamplerConfig::new(ITERATIONS).with_seed(0).init()?;
    let probs = trainer.predict(&sampler, &images)?;
    let summaries = summarise(&probs)?;
    let bald = Bald.scores(&Predictions::from_probs(probs)?, None)?;

    println!("| image | true class | predicted | mean probability | samples agreeing | BALD |");
    println!("|---|---|---|---|---|---|");
    for (i, (item, summary)) in items.iter().zip(&summaries).enumerate() {
        println!(
            "| {i} | {} | {} | {:.2} | {}/{ITERATIONS} | {:.3} |",
            CLASSES[usize::from(item.label) % CLASSES.len()],
            CLASSES[summary.predicted % CLASSES.len()],
            summary.probability,
            summary.agreeing,
            bald[i]
        );
    }
    Ok(())
}
