//! A model written from scratch with Burn's own `burn::nn::Dropout`, trained with a plain Burn
//! loop, then MC-sampled unchanged and used to rank a pool with BALD. The baal-specific part
//! is the block marked below (6 lines); everything else is ordinary Burn.
//!
//! The pool: three overlapping 2-D Gaussian blobs. The model learns them from 30 labels;
//! BALD should pick items between the blobs, where the MC samples disagree.
//!
//! `cargo run -p baal-examples --example burn_dropout`

use baal::burn;
use baal::burn::module::Module;
use baal::burn::nn::loss::CrossEntropyLossConfig;
use baal::burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use baal::burn::optim::{AdamConfig, GradientsParams};

use baal::burn::tensor::activation::relu;
use baal::burn::tensor::{Int, TensorData};
use baal::prelude::{Device, Tensor};
use rand::{Rng, SeedableRng};

/// An ordinary Burn model: two hidden layers with `burn::nn::Dropout`.
#[derive(Module, Debug)]
struct Net {
    input: Linear,
    hidden: Linear,
    dropout: Dropout,
    output: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        Self {
            input: LinearConfig::new(2, 64).init(device),
            hidden: LinearConfig::new(64, 64).init(device),
            dropout: DropoutConfig::new(0.5).init(),
            output: LinearConfig::new(64, 3).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.dropout.forward(relu(self.input.forward(x)));
        self.output
            .forward(self.dropout.forward(relu(self.hidden.forward(x))))
    }
}

const CENTRES: [(f32, f32); 3] = [(-1.5, 0.0), (1.5, 0.0), (0.0, 2.2)];

/// `n` points of the blobs and their classes.
fn blobs(n: usize, rng: &mut rand::rngs::StdRng) -> (Vec<f32>, Vec<i64>) {
    let (mut points, mut classes) = (Vec::new(), Vec::new());
    for i in 0..n {
        let class = i % 3;
        let (x, y) = CENTRES[class];
        let mut noise = || (rng.random::<f32>() + rng.random::<f32>() - 1.0) * 2.0;
        points.extend([x + noise(), y + noise()]);
        classes.push(class as i64);
    }
    (points, classes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::default();
    device.seed(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);

    // Plain Burn training on 30 labels, on the autodiff device.
    let train_device = device.clone().autodiff();
    let (points, classes) = blobs(30, &mut rng);
    let x = Tensor::<2>::from_data(TensorData::new(points, [30, 2]), &train_device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(classes, [30]), &train_device);
    let mut model = Net::new(&train_device).train();
    let mut optimizer = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    for _ in 0..100 {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-2, model, grads);
    }

    let (pool, _) = blobs(3000, &mut rng);
    let pool = Tensor::<2>::from_data(TensorData::new(pool.clone(), [3000, 2]), &device);
    let coordinates = pool.clone().into_data().try_to_vec::<f32>()?;

    // --- baal: MC-sample the unchanged model and rank the pool with BALD ---
    use baal::bayesian::{BurnDropout, McSamplerConfig};
    use baal::heuristics::{Bald, Heuristic, Predictions};
    let mc = BurnDropout::new(model, &device).with_forward(|net: &Net, x| net.forward(x));
    let probs = McSamplerConfig::new(20)
        .with_seed(7)
        .init()?
        .predict_batch(&mc, pool)?;
    let top = Bald.select(&Predictions::from_probs(probs)?, None, 10)?;
    // --- end of the baal-specific code ---

    println!("the 10 pool items BALD ranks first (x, y → distance to the nearest blob centre):");
    for &item in &top.positions {
        let score = top.pool_scores[item];
        let (x, y) = (coordinates[2 * item], coordinates[2 * item + 1]);
        let nearest = CENTRES
            .iter()
            .map(|(cx, cy)| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt())
            .fold(f32::INFINITY, f32::min);
        println!("  item {item:>4}: ({x:>5.2}, {y:>5.2}) → {nearest:.2}, BALD {score:.4}");
    }
    Ok(())
}
