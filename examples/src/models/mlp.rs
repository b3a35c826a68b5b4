//! A multi-layer perceptron with MC dropout, for flat inputs and tests.

use baal::active::Classifier;
use baal::bayesian::{McContext, McDropout, McDropoutConfig, StochasticModel};
use baal::burn;
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Configuration of [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Input features (an image is flattened: 784 for 28×28).
    pub inputs: usize,
    /// Output classes.
    pub classes: usize,
    /// Hidden width.
    #[config(default = 128)]
    pub hidden: usize,
    /// Dropout before each dense layer after the first.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// dense – relu – MC dropout – dense – relu – MC dropout – dense; images are flattened.
#[derive(Module, Debug)]
pub struct Mlp {
    dense1: Linear,
    dropout1: McDropout,
    dense2: Linear,
    dropout2: McDropout,
    dense3: Linear,
    classes: usize,
}

impl MlpConfig {
    /// Builds the model on `device`.
    ///
    /// # Errors
    /// A dropout probability outside [0, 1).
    pub fn init(&self, device: &Device) -> baal::bayesian::Result<Mlp> {
        Ok(Mlp {
            dense1: LinearConfig::new(self.inputs, self.hidden).init(device),
            dropout1: McDropoutConfig::new(self.dropout).init()?,
            dense2: LinearConfig::new(self.hidden, self.hidden).init(device),
            dropout2: McDropoutConfig::new(self.dropout).init()?,
            dense3: LinearConfig::new(self.hidden, self.classes).init(device),
            classes: self.classes,
        })
    }
}

impl StochasticModel for Mlp {
    type Input = Tensor<4>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    /// # Shapes
    /// `[N, C, H, W]` (with `C·H·W = inputs`) to `[N, hidden]`.
    fn trunk(&self, images: Tensor<4>) -> Tensor<2> {
        relu(self.dense1.forward(images.flatten(1, 3)))
    }

    /// # Shapes
    /// `[N, hidden]` to logits `[N, classes]`.
    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let x = self.dropout1.forward(features, mc);
        let x = relu(self.dense2.forward(x));
        let x = self.dropout2.forward(x, mc);
        self.dense3.forward(x)
    }
}

impl Classifier for Mlp {
    fn num_classes(&self) -> usize {
        self.classes
    }
}
