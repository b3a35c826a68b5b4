//! Regression through the loop: an MC-dropout MLP fits y = sin(3x) from 20 labels on
//! [-1, 1], then `RegressionPredictor` samples its raw outputs on a pool over [-3, 3] and the
//! variance heuristic picks where the samples disagree, away from the labels.
//!
//! `cargo run -p baal-examples --example regression`

use std::sync::Arc;

use baal::active::{ActiveLearningLoop, InputBatcher, ModelPredictor, RegressionPredictor};
use baal::bayesian::{McContext, McDropout, McDropoutConfig, StochasticModel};
use baal::burn;
use baal::burn::data::dataset::InMemDataset;
use baal::burn::module::Module;
use baal::burn::nn::loss::{MseLoss, Reduction};
use baal::burn::nn::{Linear, LinearConfig};
use baal::burn::optim::{AdamConfig, GradientsParams};
use baal::burn::tensor::TensorData;
use baal::burn::tensor::activation::relu;
use baal::data::ActiveLearningDataset;
use baal::heuristics::Variance;
use baal::prelude::{Device, Tensor};

/// x → 64 – relu – MC dropout – 64 – relu – MC dropout – 1.
#[derive(Module, Debug)]
struct Net {
    first: Linear,
    second: Linear,
    dropout: McDropout,
    output: Linear,
}

impl StochasticModel for Net {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, x: Tensor<2>) -> Tensor<2> {
        relu(self.first.forward(x))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let x = relu(self.second.forward(self.dropout.forward(features, mc)));
        self.output.forward(self.dropout.forward(x, mc))
    }
}

fn column(values: Vec<f32>, device: &Device) -> Tensor<2> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n, 1]), device)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::default();
    device.seed(3);

    // Plain Burn training with our MC dropout drawing training masks.
    let train_device = device.clone().autodiff();
    let xs: Vec<f32> = (0..20).map(|i| -1.0 + 2.0 * i as f32 / 19.0).collect();
    let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
    let (x, y) = (column(xs, &train_device), column(ys, &train_device));
    let mut model = Net {
        first: LinearConfig::new(1, 64).init(&train_device),
        second: LinearConfig::new(64, 64).init(&train_device),
        dropout: McDropoutConfig::new(0.1).init()?,
        output: LinearConfig::new(64, 1).init(&train_device),
    }
    .train();
    let mut optimizer = AdamConfig::new().init();
    for _ in 0..500 {
        let prediction = model.head(model.trunk(x.clone()), &McContext::training());
        let loss = MseLoss::new().forward(prediction, y.clone(), Reduction::Mean);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(5e-3, model, grads);
    }

    // The pool: 121 points over [-3, 3]; the loop asks for the 6 most uncertain.
    let pool: Vec<f32> = (0..121).map(|i| -3.0 + 6.0 * i as f32 / 120.0).collect();
    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(pool.clone()))
        .with_known_labels(|x: &f32| (3.0 * x).sin());
    let batcher: InputBatcher<f32, Tensor<2>> =
        Arc::new(|items: Vec<f32>, device: &Device| column(items, device));
    let predictor = RegressionPredictor(ModelPredictor {
        model: model.valid(),
        batcher,
        device: device.clone(),
        batch_size: 64,
    });
    let mut active = ActiveLearningLoop::new(Variance, 6)?.with_iterations(50);
    let outcome = active.step(&mut dataset, &predictor)?;
    let mut picked: Vec<f32> = outcome.query.iter().map(|i| pool[i.get()]).collect();
    picked.sort_by(f32::total_cmp);
    println!("labelled on [-1, 1]; variance picks x = {picked:?}");
    println!(
        "{} of 6 picks lie outside the labelled interval",
        picked.iter().filter(|x| x.abs() > 1.0).count()
    );
    Ok(())
}
