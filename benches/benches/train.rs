//! Training throughput: gradient steps per second of the loop's [`Trainer`] (Adam, lr 1e-3,
//! cross-entropy, MC dropout on), reported by criterion as elements per second, one element
//! per gradient step, on `BAAL_BENCH_DEVICE` (default `cpu`).
//!
//! - `train/small_cnn/b32`: the model zoo's [`SmallCnn`] (conv 5×5 ×16 – pool – conv 5×5 ×32
//!   – pool – dropout .25 – dense 128 – dropout .5 – dense 10), batches of 32 of 28×28×1.
//! - `train/gal_cnn/b64`: the zoo's [`GalCnn`] (conv 4×4 ×32 – conv 4×4 ×32 – pool – dropout
//!   .25 – dense 128 – dropout .5 – dense 10), batches of 64 of 28×28×1.
//! - `train/vgg_small/b64`: the zoo's [`VggSmall`] (the CIFAR-10 quick profile's model: six
//!   padded 3×3 convolutions in three pooled blocks), batches of 64 of 32×32×3.
//!
//! Each iteration is one `Trainer::fit` of 50 gradient steps over 400 labelled images, as an
//! active-learning step runs it: weights reset, batches shuffled and turned from host images
//! into tensors, the loss read back once per pass. The images are random (seeded); the
//! PyTorch side of the comparison is `benches/torch/train_steps.py`.

use std::hint::black_box;

use baal::active::{Classifier, OptimizerConfig, Trainer, TrainerConfig};
use baal::burn::data::dataset::InMemDataset;
use baal::burn::tensor::{Device, Tensor};
use baal::data::LabelledItem;
use baal_benches::bench_device;
use baal_zoo::images::{NormalizedImage, normalized_batcher};
use baal_zoo::models::{GalCnnConfig, SmallCnnConfig, VggSmallConfig};
use criterion::{Criterion, Throughput, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Labelled images per fit.
const LABELLED: usize = 400;
/// Gradient steps per fit (one criterion element each).
const STEPS: usize = 50;

/// `LABELLED` seeded random images of `shape` (uniform pixels in ±1) with balanced classes.
fn labelled_set(shape: [usize; 3]) -> InMemDataset<LabelledItem<NormalizedImage, u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let pixels = shape.iter().product::<usize>();
    let items = (0..LABELLED)
        .map(|i| {
            let label = (i % 10) as u8;
            LabelledItem {
                item: NormalizedImage {
                    pixels: (0..pixels)
                        .map(|_| rng.random_range(-1.0f32..1.0))
                        .collect(),
                    shape,
                    label,
                },
                label,
            }
        })
        .collect();
    InMemDataset::new(items)
}

fn bench_model<M: Classifier<Input = Tensor<4>>>(
    criterion: &mut Criterion,
    id: &str,
    (model, shape): (M, [usize; 3]),
    batch_size: usize,
    device: &Device,
) {
    let labelled = labelled_set(shape);
    let config = TrainerConfig::default()
        .with_optimizer(OptimizerConfig::adam(1e-3))
        .with_batch_size(batch_size)
        .with_samples_per_fit(Some(batch_size * STEPS));
    let mut trainer =
        Trainer::new(model, device, normalized_batcher(), config).expect("valid trainer config");
    let mut group = criterion.benchmark_group("train");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(STEPS as u64));
    group.bench_function(id, |bencher| {
        bencher.iter(|| {
            let report = trainer.fit(&labelled).expect("training runs");
            assert_eq!(report.gradient_steps, STEPS);
            black_box(report)
        });
    });
    group.finish();
}

fn train(criterion: &mut Criterion) {
    let device = bench_device();
    device.seed(0);
    let grey = [1, 28, 28];
    let small = SmallCnnConfig::new().init(&device).expect("valid model");
    bench_model(criterion, "small_cnn/b32", (small, grey), 32, &device);
    let gal = GalCnnConfig::new().init(&device).expect("valid model");
    bench_model(criterion, "gal_cnn/b64", (gal, grey), 64, &device);
    let vgg = VggSmallConfig::new().init(&device).expect("valid model");
    bench_model(criterion, "vgg_small/b64", (vgg, [3, 32, 32]), 64, &device);
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    train(&mut criterion);
}

criterion_main!(benches);
