//! `loop/step/fashion_mnist_gal_cnn`: one full active-learning step on the CPU (flex) backend —
//! train the Gal CNN for one epoch over 1000 labelled items (batches of 32, Adam), MC-predict
//! 2000 pool items with T = 20, rank them with BALD and label the top 10 — and each part on its
//! own (`loop/step_part/{train,predict,rank,label}`); `loop/step/fashion_mnist_gal_cnn/on_flex_workers`
//! is the whole step called from flex's own threads (`baal_bayesian::on_flex_workers`), as
//! `reproduce` runs it.
//!
//! Uses Fashion-MNIST when installed (/usr/share/datasets/fashion-mnist), random images of the
//! same shape otherwise. Data, model and labelled set are built outside the timed closures;
//! every part ends by reading its result back, so the device is synced before the clock stops.
//! `step` and `label` include restoring the 1000-label state after each iteration.
//!
//! `cargo bench -p baal-benches --bench loop_step` (needs the `flex` feature, on by default;
//! builds without it leave this bench out).

use std::hint::black_box;
use std::time::Duration;

use baal::active::{ActiveLearningLoop, Predictor, Trainer, TrainerConfig};
use baal::bayesian::{McSamplerConfig, on_flex_workers};
use baal::burn::data::dataset::{Dataset, InMemDataset};
use baal::burn::tensor::Device;
use baal::data::{ActiveLearningDataset, FashionMnist, ImageItem};
use baal::heuristics::{Bald, Heuristic, Predictions};
use baal_zoo::images::{Normalization, image_batcher};
use baal_zoo::models::{GalCnn, GalCnnConfig};
use criterion::{Criterion, criterion_main};

const LABELLED: usize = 1000;
const POOL: usize = 2000;
const ITERATIONS: usize = 20;
const QUERY: usize = 10;

/// 12000 training images: Fashion-MNIST's first ones, or random images.
fn train_set() -> InMemDataset<ImageItem> {
    let n = 12_000;
    let items = match FashionMnist::from_default_dir() {
        Ok(data) => (0..n).filter_map(|i| data.train.get(i).ok()).collect(),
        Err(_) => {
            eprintln!("Fashion-MNIST not installed: benchmarking on random images");
            (0..n)
                .map(|i| ImageItem {
                    image: (0..784)
                        .map(|p| ((i * 31 + p * 7919) % 251) as u8)
                        .collect(),
                    shape: [1, 28, 28],
                    label: (i % 10) as u8,
                })
                .collect()
        }
    };
    InMemDataset::new(items)
}

fn setup() -> (
    ActiveLearningDataset<ImageItem, u8>,
    Trainer<GalCnn, ImageItem>,
    Device,
) {
    let device = Device::default();
    device.seed(0);
    let mut dataset = ActiveLearningDataset::new(train_set())
        .with_known_labels(|item: &ImageItem| item.label)
        .with_seed(0);
    dataset.label_randomly(LABELLED).expect("labels");
    let model = GalCnnConfig::new().init(&device).expect("model");
    let config = TrainerConfig::default().with_epochs(1).with_batch_size(32);
    let trainer = Trainer::new(
        model,
        &device,
        image_batcher(Normalization::fashion_mnist()),
        config,
    )
    .expect("trainer");
    (dataset, trainer, device)
}

fn loop_step(criterion: &mut Criterion) {
    let (mut dataset, mut trainer, device) = setup();
    let initial = dataset.state();
    let mut group = criterion.benchmark_group("loop");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));
    // One step from the 1000 labels, then back to them (and the same pool draw).
    let mut step = || {
        let mut active = ActiveLearningLoop::new(Bald, QUERY)
            .expect("valid loop")
            .with_iterations(ITERATIONS)
            .with_max_sample(POOL);
        trainer.fit(&dataset.labelled()).expect("fit");
        let outcome = active.step(&mut dataset, &trainer).expect("step");
        dataset.restore(initial.clone()).expect("restore");
        outcome
    };
    group.bench_function("step/fashion_mnist_gal_cnn", |bencher| {
        bencher.iter(|| black_box(step()));
    });
    // The same step called from flex's own threads, as `reproduce` runs it.
    group.bench_function("step/fashion_mnist_gal_cnn/on_flex_workers", |bencher| {
        bencher.iter(|| black_box(on_flex_workers(&device, &mut step)));
    });

    let sampler = McSamplerConfig::new(ITERATIONS).init().expect("sampler");
    let pool = dataset.pool_subset(POOL).expect("pool");
    group.bench_function("step_part/train", |bencher| {
        bencher.iter(|| black_box(trainer.fit(&dataset.labelled()).expect("fit")));
    });
    group.bench_function("step_part/predict", |bencher| {
        bencher.iter(|| {
            let probs = trainer.predict(&sampler, &pool).expect("predict");
            black_box(probs.into_data())
        });
    });
    let predictions =
        Predictions::from_probs(trainer.predict(&sampler, &pool).expect("predict")).expect("valid");
    group.bench_function("step_part/rank", |bencher| {
        bencher.iter(|| black_box(Bald.select(&predictions, None, QUERY).expect("select")));
    });
    let selection = Bald.select(&predictions, None, QUERY).expect("select");
    let query: Vec<_> = selection
        .positions
        .iter()
        .map(|&p| pool.dataset_index(p).expect("in view"))
        .collect();
    group.bench_function("step_part/label", |bencher| {
        bencher.iter(|| {
            dataset.label_dataset_indices(&query).expect("label");
            dataset.restore(initial.clone()).expect("restore");
        });
    });
    group.finish();
}

/// Criterion's generated group function carries no doc comment.
mod group {
    #![allow(missing_docs)]
    use super::loop_step;
    use criterion::criterion_group;
    criterion_group!(benches, loop_step);
}

criterion_main!(group::benches);
