//! A tiny classifier for unit tests of the trainer and the loop: two features, two classes,
//! and a parameter (`idle`) that the loss reaches with a zero gradient, so that only weight
//! decay moves it. Its dropout drops nothing (probability 0) but counts as a stochastic
//! layer, so that the MC sampler of evaluations and steps accepts it.

use std::sync::Arc;

use baal_bayesian::{McContext, McDropout, McDropoutConfig, StochasticModel};
use baal_data::ActiveLearningDataset;
use burn::data::dataset::InMemDataset;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::traits::{Classifier, InputBatcher};

/// The `idle` parameter's initial values.
pub(crate) const IDLE: [f32; 3] = [1.0, -2.0, 0.5];

/// A linear classifier of 2 features, plus `idle`.
#[derive(Module, Debug)]
pub(crate) struct Probe {
    dropout: McDropout,
    dense: Linear,
    idle: Param<Tensor<1>>,
}

impl Probe {
    /// A probe on `device`, `idle` at [`IDLE`].
    pub(crate) fn new(device: &Device) -> Self {
        let idle = Tensor::from_data(TensorData::new(IDLE.to_vec(), [IDLE.len()]), device);
        Self {
            dropout: McDropoutConfig::new(0.0)
                .init()
                .expect("0 is a valid probability"),
            dense: LinearConfig::new(2, 2).init(device),
            idle: Param::from_tensor(idle),
        }
    }

    /// The current values of `idle`.
    pub(crate) fn idle(&self) -> Vec<f32> {
        self.idle
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 values")
    }
}

impl StochasticModel for Probe {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        input
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let [rows, classes] = [features.dims()[0], 2];
        // `idle` times 0: part of the graph, with a gradient of exactly 0.
        let nothing = self.idle.val().mul_scalar(0.0).sum().reshape([1, 1]);
        self.dense.forward(self.dropout.forward(features, mc)) + nothing.expand([rows, classes])
    }
}

impl Classifier for Probe {
    fn num_classes(&self) -> usize {
        2
    }
}

/// Builds a probe's input batch.
pub(crate) fn batcher() -> InputBatcher<[f32; 2], Tensor<2>> {
    Arc::new(|items: Vec<[f32; 2]>, device: &Device| {
        let rows = items.len();
        let values: Vec<f32> = items.into_iter().flatten().collect();
        Tensor::from_data(TensorData::new(values, [rows, 2]), device)
    })
}

/// `n` points whose known class says which coordinate is larger.
pub(crate) fn dataset(n: usize) -> ActiveLearningDataset<[f32; 2], u8> {
    let items: Vec<[f32; 2]> = (0..n)
        .map(|i| {
            let x = i as f32 / n as f32;
            [x, 1.0 - x]
        })
        .collect();
    ActiveLearningDataset::new(InMemDataset::new(items))
        .with_known_labels(|item: &[f32; 2]| u8::from(item[0] > item[1]))
        .with_seed(5)
}
