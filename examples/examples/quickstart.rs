//! baal's README example in Rust, step for step: wrap a dataset in `ActiveLearningDataset`,
//! label a few items at random, make the model Bayesian (MC dropout), wrap it for training,
//! build an `ActiveLearningLoop` with BALD and a query size, then train and `step()` until it
//! returns false.
//!
//! ```sh
//! cargo run --release -p baal-examples --example quickstart
//! ```
//!
//! Needs the `flex` feature (on by default) and Fashion-MNIST in
//! /usr/share/datasets/fashion-mnist (`apt-get install dataset-fashion-mnist`) or in the folder
//! given as first argument.

use std::error::Error;

use baal::active::{ActiveLearningLoop, Trainer, TrainerConfig};
use baal::bayesian::on_flex_workers;
use baal::burn::data::dataset::{Dataset, InMemDataset};
use baal::data::{ActiveLearningDataset, FashionMnist, ImageItem};
use baal::prelude::*;
use baal_zoo::images::{Normalization, image_batcher};
use baal_zoo::models::SmallCnnConfig;

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| FashionMnist::DEFAULT_DIR.to_string());
    let data = FashionMnist::from_dir(&dir).map_err(|e| {
        format!(
            "{e}. This example needs Fashion-MNIST: apt-get install dataset-fashion-mnist, or \
             pass the folder of its four IDX files as first argument"
        )
    })?;
    let device = parse_device("cpu")?;
    device.seed(0);

    // 1. The dataset: everything starts in the pool; label 20 items at random.
    let mut dataset = ActiveLearningDataset::new(data.train.clone())
        .with_known_labels(|item: &ImageItem| item.label)
        .with_seed(0);
    dataset.label_randomly(20)?;

    // 2. A Bayesian model: its dropout layers stay on at inference (MC dropout).
    let model = SmallCnnConfig::new().init(&device)?;

    // 3. Wrapped for training (baal's ModelWrapper): Adam, weights reset before each fit.
    let config = TrainerConfig::default()
        .with_epochs(30)
        .with_min_gradient_steps(200);
    let mut trainer = Trainer::new(
        model,
        &device,
        image_batcher(Normalization::fashion_mnist()),
        config,
    )?;
    let test: Vec<ImageItem> = (0..1000).filter_map(|i| data.test.get(i).ok()).collect();
    let test = InMemDataset::new(test);

    // 4. The loop: BALD over 20 MC samples of 2000 pool items, 20 labels a step.
    let mut active = ActiveLearningLoop::new(Bald, 20)?
        .with_iterations(20)
        .with_max_sample(2000);

    // 5. Train, evaluate, step, until the loop says stop (here: 200 labels); on the CPU, on
    // flex's own threads (the same results, 10-17% sooner on 2 cores).
    on_flex_workers(&device, || -> Result<(), Box<dyn Error + Send + Sync>> {
        loop {
            trainer.fit(&dataset.labelled())?;
            let metrics = trainer.evaluate(&test, &|item: &ImageItem| usize::from(item.label))?;
            println!(
                "{:>4} labels: test accuracy {:.3}, NLL {:.3}",
                dataset.n_labelled(),
                metrics.accuracy,
                metrics.nll
            );
            if dataset.n_labelled() >= 200 || !active.step(&mut dataset, &trainer)?.can_continue {
                return Ok(());
            }
        }
    })
}
