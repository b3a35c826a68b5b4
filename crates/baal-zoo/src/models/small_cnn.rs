//! A LeNet-sized CNN: the Gal CNN's structure at a ninth of its cost, for quick CPU runs.

use baal_active::Classifier;
use baal_bayesian::{McContext, StochasticModel};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::McDenseHead;
use crate::conv::conv2d_relu;
use crate::pool::max_pool2d;

/// Configuration of [`SmallCnn`].
#[derive(Config, Debug)]
pub struct SmallCnnConfig {
    /// Input channels.
    #[config(default = 1)]
    pub channels: usize,
    /// Input height and width (square images).
    #[config(default = 28)]
    pub size: usize,
    /// Output classes.
    #[config(default = 10)]
    pub classes: usize,
    /// Filters of the first convolution (the second has twice as many).
    #[config(default = 16)]
    pub filters: usize,
    /// Width of the dense layer.
    #[config(default = 128)]
    pub hidden: usize,
    /// Dropout after the convolutions.
    #[config(default = 0.25)]
    pub conv_dropout: f64,
    /// Dropout before the last layer.
    #[config(default = 0.5)]
    pub dense_dropout: f64,
}

/// conv 5×5 – relu – maxpool 2 – conv 5×5 – relu – maxpool 2 – MC dropout – dense – relu –
/// MC dropout – dense.
#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    head: McDenseHead,
    classes: usize,
}

impl SmallCnnConfig {
    /// Builds the model on `device`.
    ///
    /// # Errors
    /// A dropout probability outside [0, 1), or images smaller than 16×16.
    pub fn init(&self, device: &Device) -> baal_bayesian::Result<SmallCnn> {
        let side = self
            .size
            .checked_sub(4)
            .map(|s| s / 2)
            .and_then(|s| s.checked_sub(4))
            .map(|s| s / 2)
            .filter(|&s| s > 0)
            .ok_or_else(|| baal_bayesian::BayesianError::InvalidConfig {
                what: "SmallCnnConfig::size",
                reason: format!("images must be at least 16 pixels wide, got {}", self.size),
            })?;
        Ok(SmallCnn {
            conv1: Conv2dConfig::new([self.channels, self.filters], [5, 5]).init(device),
            conv2: Conv2dConfig::new([self.filters, 2 * self.filters], [5, 5]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            head: McDenseHead::new(
                [2 * self.filters * side * side, self.hidden, self.classes],
                [self.conv_dropout, self.dense_dropout],
                device,
            )?,
            classes: self.classes,
        })
    }
}

impl StochasticModel for SmallCnn {
    type Input = Tensor<4>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    /// # Shapes
    /// `[N, channels, size, size]` to `[N, 2 · filters · side²]`.
    fn trunk(&self, images: Tensor<4>) -> Tensor<2> {
        let conv_relu_pool = |conv, x| max_pool2d(&self.pool, conv2d_relu(conv, x));
        let x = conv_relu_pool(&self.conv1, images);
        let x = conv_relu_pool(&self.conv2, x);
        x.flatten(1, 3)
    }

    /// # Shapes
    /// Features `[N, F]` to logits `[N, classes]`.
    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.head.forward(features, mc)
    }

    /// The input of the last dense layer, dropout off (see [`McDenseHead::penultimate`]).
    ///
    /// # Shapes
    /// Images to `[N, hidden]`.
    fn embed(&self, images: Tensor<4>) -> Option<Tensor<2>> {
        Some(self.head.penultimate(self.trunk(images)))
    }
}

impl Classifier for SmallCnn {
    fn num_classes(&self) -> usize {
        self.classes
    }

    /// The trunk, then the head, its dropout masks drawn while the trunk runs
    /// (on flex; the same values as the trunk then the head).
    fn forward_train(&self, images: Tensor<4>) -> Tensor<2> {
        self.head
            .forward_train(self, images, |images| self.trunk(images))
    }
}
