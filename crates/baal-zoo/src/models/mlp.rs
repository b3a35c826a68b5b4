//! A multi-layer perceptron with MC dropout, for flat inputs and tests.

use baal_active::Classifier;
use baal_bayesian::{McContext, StochasticModel};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::McDenseHead;

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
    dense: Linear,
    head: McDenseHead,
    classes: usize,
}

impl MlpConfig {
    /// Builds the model on `device`.
    ///
    /// # Errors
    /// A dropout probability outside [0, 1).
    pub fn init(&self, device: &Device) -> baal_bayesian::Result<Mlp> {
        Ok(Mlp {
            dense: LinearConfig::new(self.inputs, self.hidden).init(device),
            head: McDenseHead::new(
                [self.hidden, self.hidden, self.classes],
                [self.dropout, self.dropout],
                device,
            )?,
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
        relu(self.dense.forward(images.flatten(1, 3)))
    }

    /// # Shapes
    /// `[N, hidden]` to logits `[N, classes]`.
    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.head.forward(features, mc)
    }
}

impl Classifier for Mlp {
    fn num_classes(&self) -> usize {
        self.classes
    }
}
