//! Shared pieces of the integration tests: a tiny MC-dropout classifier and a slice of
//! Fashion-MNIST.

#![allow(dead_code)]

use std::sync::Arc;

use baal_active::{Classifier, InputBatcher, Trainer, TrainerConfig};
use baal_bayesian::{McContext, McDropout, McDropoutConfig, StochasticModel};
use baal_data::{ActiveLearningDataset, FashionMnist, ImageItem};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

/// 784 → 32 → MC dropout → 10.
#[derive(Module, Debug)]
pub struct TinyMlp {
    dense1: Linear,
    dropout: McDropout,
    dense2: Linear,
}

impl TinyMlp {
    /// A randomly initialised model on `device`.
    pub fn new(device: &Device) -> Self {
        Self {
            dense1: LinearConfig::new(784, 32).init(device),
            dropout: McDropoutConfig::new(0.3).init().expect("valid dropout"),
            dense2: LinearConfig::new(32, 10).init(device),
        }
    }
}

impl StochasticModel for TinyMlp {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        relu(self.dense1.forward(input))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.dense2.forward(self.dropout.forward(features, mc))
    }

    /// The input of its last layer (Coreset and BADGE read it).
    fn embed(&self, input: Tensor<2>) -> Option<Tensor<2>> {
        Some(self.trunk(input))
    }
}

impl Classifier for TinyMlp {
    fn num_classes(&self) -> usize {
        10
    }
}

/// Flattened images scaled to [0, 1].
pub fn batcher() -> InputBatcher<ImageItem, Tensor<2>> {
    Arc::new(|items: Vec<ImageItem>, device: &Device| {
        let n = items.len();
        let values: Vec<f32> = items.iter().flat_map(|item| item.to_unit_f32()).collect();
        Tensor::from_data(TensorData::new(values, [n, 784]), device)
    })
}

/// The first `train` training images and `test` test images, or `None` (the test says it
/// did not run, or fails where requirements are mandatory) when Fashion-MNIST is not installed.
pub fn fashion_slice(
    train: usize,
    test: usize,
) -> Option<(InMemDataset<ImageItem>, Arc<dyn Dataset<ImageItem>>)> {
    baal_test_support::require_dir(
        FashionMnist::DEFAULT_DIR,
        baal_test_support::FASHION_MNIST_INSTALL,
    )?;
    let data = FashionMnist::from_default_dir().expect("Fashion-MNIST loads");
    let take = |set: &dyn Dataset<ImageItem>, n: usize| -> Vec<ImageItem> {
        (0..n).map(|i| set.get(i).expect("item")).collect()
    };
    Some((
        InMemDataset::new(take(&data.train, train)),
        Arc::new(InMemDataset::new(take(&data.test, test))),
    ))
}

/// The slice as an active-learning dataset with known labels.
pub fn dataset(train: InMemDataset<ImageItem>, seed: u64) -> ActiveLearningDataset<ImageItem, u8> {
    ActiveLearningDataset::new(train)
        .with_known_labels(|item: &ImageItem| item.label)
        .with_seed(seed)
}

/// A trainer of a seeded [`TinyMlp`].
pub fn trainer(config: TrainerConfig) -> Trainer<TinyMlp, ImageItem> {
    let device = Device::default();
    device.seed(7);
    Trainer::new(TinyMlp::new(&device), &device, batcher(), config).expect("valid config")
}

/// A few dozen gradient steps: enough for a linear-ish model on a few labels.
pub fn quick_config() -> TrainerConfig {
    TrainerConfig::default()
        .with_epochs(2)
        .with_min_gradient_steps(40)
        .with_eval_iterations(3)
        .with_seed(3)
}

/// The class of a test image.
pub fn test_label(item: &ImageItem) -> usize {
    usize::from(item.label)
}

/// Holds the device's global random generator for one test: tests of one binary run on
/// parallel threads, and a test that seeds the generator and then draws from it (weights,
/// training masks) is only reproducible while no other test draws in between.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
