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

    /// The input of the last dense layer, dropout off (see [`McDenseHead::penultimate`]).
    ///
    /// # Shapes
    /// Images to `[N, hidden]`.
    fn embed(&self, images: Tensor<4>) -> Option<Tensor<2>> {
        Some(self.head.penultimate(self.trunk(images)))
    }
}

impl Classifier for Mlp {
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

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::tensor::TensorData;

    use super::*;

    /// A dense layer with `weights` `[inputs][outputs]` and `bias`.
    fn linear<const I: usize, const O: usize>(
        weights: [[f32; O]; I],
        bias: [f32; O],
        device: &Device,
    ) -> Linear {
        let values: Vec<f32> = weights.iter().flatten().copied().collect();
        Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(values, [I, O]), device)),
            bias: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(bias.to_vec(), [O]),
                device,
            ))),
        }
    }

    #[test]
    fn the_embedding_is_the_last_layers_input_computed_by_hand() {
        let device = Device::default();
        let mut model = MlpConfig::new(2, 3)
            .with_hidden(2)
            .init(&device)
            .expect("valid");
        model.dense = linear([[1.0, -1.0], [2.0, 0.5]], [0.0, 0.5], &device);
        model.head.dense1 = linear([[1.0, -1.0], [-2.0, 1.0]], [0.25, 0.0], &device);
        let images = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, -1.0, 0.0], [2, 1, 1, 2]),
            &device,
        );
        // Item 0: relu([1, 2] W0 + b0) = [5, 0.5]; relu([5, 0.5] W1 + b1) = relu([4.25, -4.5]).
        // Item 1: relu([-1, 0] W0 + b0) = [0, 1.5]; relu([0, 1.5] W1 + b1) = relu([-2.75, 1.5]).
        let embedding = model.embed(images).expect("the zoo's models embed");
        assert_eq!(embedding.dims(), [2, 2]);
        let values = embedding.into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(values, vec![4.25, 0.0, 0.0, 1.5]);
    }
}
