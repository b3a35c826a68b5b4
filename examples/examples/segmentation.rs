//! Segmentation through the loop: the trainer fits a small per-pixel classifier to
//! Fashion-MNIST items' foreground masks from noisy images (the model implements `Trainable`
//! with `segmentation_loss`; the labels are the masks), then `SegmentationPredictor`
//! MC-samples the pool as `[N, C, P, T]` and BALD ranks it under the mean and the max
//! reduction.
//!
//! The pool's images carry noise of 10 levels; the noisier an image, the less sure the model
//! is of its mask, so BALD should prefer noisy images. Needs the Debian package
//! `dataset-fashion-mnist`.
//!
//! `cargo run --release -p baal-examples --example segmentation`

use std::sync::Arc;

use baal::active::{
    ActiveLearningLoop, InputBatcher, ModelPredictor, OptimizerConfig, SegmentationPredictor,
    Trainable, Trainer, TrainerConfig, segmentation_loss,
};
use baal::bayesian::{McContext, McDropout2d, McDropout2dConfig, StochasticModel};
use baal::burn;
use baal::burn::data::dataset::{Dataset, InMemDataset};
use baal::burn::module::Module;
use baal::burn::nn::PaddingConfig2d;
use baal::burn::nn::conv::{Conv2d, Conv2dConfig};
use baal::burn::tensor::TensorData;
use baal::burn::tensor::activation::relu;
use baal::data::{ActiveLearningDataset, FashionMnist};
use baal::heuristics::{Bald, Reduction};
use baal::prelude::{Device, Tensor};
use rand::{Rng, SeedableRng};

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

/// A noisy image, its noise level and its foreground mask (pixels above 25 in the clean
/// image).
#[derive(Clone, Debug)]
struct Item {
    pixels: Vec<f32>,
    noise: f32,
    mask: Vec<u8>,
}

/// conv 3×3 (1 → 16) – relu – MC channel dropout – conv 3×3 (16 → 2): logits per pixel.
#[derive(Module, Debug)]
struct Segmenter {
    features: Conv2d,
    dropout: McDropout2d,
    classes: Conv2d,
}

/// What the trainer needs: the loss of a batch against its masks, and a check of each mask.
impl Trainable for Segmenter {
    type Target = Vec<usize>;

    fn training_loss(&self, x: Tensor<4>, masks: &[Vec<usize>]) -> Tensor<1> {
        segmentation_loss(self.head(self.trunk(x), &McContext::training()), masks)
    }

    fn check_target(&self, mask: &Vec<usize>) -> Result<(), String> {
        if mask.len() == PIXELS && mask.iter().all(|&class| class < 2) {
            Ok(())
        } else {
            Err(format!("a mask holds {PIXELS} classes 0 or 1"))
        }
    }
}

impl StochasticModel for Segmenter {
    type Input = Tensor<4>;
    type Features = Tensor<4>;
    type Output = Tensor<3>;

    fn trunk(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.features.forward(x))
    }

    fn head(&self, features: Tensor<4>, mc: &McContext) -> Tensor<3> {
        let rows = features.dims()[0];
        self.classes
            .forward(self.dropout.forward(features, mc))
            .reshape([rows, 2, PIXELS])
    }
}

fn items(
    source: &dyn Dataset<baal::data::ImageItem>,
    range: std::ops::Range<usize>,
    rng: &mut impl Rng,
) -> Vec<Item> {
    range
        .map(|i| {
            let image = source.get(i).expect("item").image;
            let noise = 0.1 + 0.1 * (i % 10) as f32;
            let pixels = image
                .iter()
                .map(|&p| {
                    let gaussian: f32 = (0..4).map(|_| rng.random::<f32>() - 0.5).sum();
                    f32::from(p) / 255.0 + noise * gaussian
                })
                .collect();
            let mask = image.iter().map(|&p| u8::from(p > 25)).collect();
            Item {
                pixels,
                noise,
                mask,
            }
        })
        .collect()
}

fn batch(items: &[Item], device: &Device) -> Tensor<4> {
    let values: Vec<f32> = items.iter().flat_map(|i| i.pixels.clone()).collect();
    Tensor::from_data(
        TensorData::new(values, [items.len(), 1, SIDE, SIDE]),
        device,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = FashionMnist::from_default_dir()?;
    let device = Device::default();
    device.seed(2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let pool = items(&data.train, 0..656, &mut rng);
    let conv = |from, to| {
        Conv2dConfig::new([from, to], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&device)
    };
    let model = Segmenter {
        features: conv(1, 16),
        dropout: McDropout2dConfig::new(0.3).init()?,
        classes: conv(16, 2),
    };
    let batcher: InputBatcher<Item, Tensor<4>> =
        Arc::new(|items: Vec<Item>, device: &Device| batch(&items, device));
    let config = TrainerConfig::new()
        .with_optimizer(OptimizerConfig::adam(1e-2))
        .with_samples_per_fit(Some(120 * 32));
    let mut trainer = Trainer::new(model, &device, batcher.clone(), config)?;
    // 256 labelled images; the other 400 are the pool.
    let dataset = || {
        let mut dataset = ActiveLearningDataset::new(InMemDataset::new(pool.clone()))
            .with_known_labels(|item: &Item| item.mask.clone())
            .with_seed(2);
        dataset.label_randomly(256).map(|_| dataset)
    };
    let report = trainer.fit(&dataset()?.labelled())?;
    println!(
        "trained {} steps, last epoch's loss {:.3}",
        report.gradient_steps, report.train_loss
    );

    let mean_noise = pool.iter().map(|i| i.noise).sum::<f32>() / pool.len() as f32;
    println!(
        "{} images, 256 of them labelled; mean noise level {mean_noise:.2}",
        pool.len()
    );
    for reduction in [Reduction::Mean, Reduction::Max] {
        let predictor = SegmentationPredictor {
            predictor: ModelPredictor {
                model: trainer.inference_model(),
                batcher: batcher.clone(),
                device: device.clone(),
                batch_size: 50,
            },
            reduction,
        };
        // The same 256 labels: the loop scores the 400 others.
        let mut dataset = dataset()?;
        let unlabelled = dataset.pool();
        let pool_noise = (0..unlabelled.len())
            .map(|i| unlabelled.get(i).map(|item| item.noise))
            .sum::<Result<f32, _>>()?
            / unlabelled.len() as f32;
        let unscored = unlabelled.len();
        let mut active = ActiveLearningLoop::new(Bald, 20)?.with_iterations(10);
        let outcome = active.step(&mut dataset, &predictor)?;
        let picked: f32 = outcome
            .query
            .iter()
            .map(|index| pool[index.get()].noise)
            .sum::<f32>()
            / outcome.query.len() as f32;
        println!(
            "BALD, {reduction:?} over pixels: the 20 picks' mean noise level {picked:.2} \
             (the {unscored} unlabelled images: {pool_noise:.2})"
        );
    }
    Ok(())
}
