//! The stochastic head every model of the zoo ends with.

use baal_bayesian::{McContext, McDropout, McDropoutConfig};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// MC dropout – dense – relu – MC dropout – dense: the part of a zoo model the MC sampler runs
/// T times over features the deterministic trunk computed once.
#[derive(Module, Debug)]
pub struct McDenseHead {
    dropout1: McDropout,
    // Visible to the models, whose tests set its weights.
    pub(super) dense1: Linear,
    dropout2: McDropout,
    dense2: Linear,
}

impl McDenseHead {
    /// `inputs` features to `hidden` to `outputs`, with dropout probabilities `dropout[0]`
    /// before the first dense layer and `dropout[1]` before the second.
    ///
    /// # Errors
    /// A dropout probability outside [0, 1).
    pub(crate) fn new(
        [inputs, hidden, outputs]: [usize; 3],
        dropout: [f64; 2],
        device: &Device,
    ) -> baal_bayesian::Result<Self> {
        Ok(Self {
            dropout1: McDropoutConfig::new(dropout[0]).init()?,
            dense1: LinearConfig::new(inputs, hidden).init(device),
            dropout2: McDropoutConfig::new(dropout[1]).init()?,
            dense2: LinearConfig::new(hidden, outputs).init(device),
        })
    }

    /// # Shapes
    /// Features `[N, inputs]` to logits `[N, outputs]`.
    pub fn forward(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        let x = self.dropout1.forward(features, mc);
        let x = relu(self.dense1.forward(x));
        let x = self.dropout2.forward(x, mc);
        self.dense2.forward(x)
    }

    /// The input of the last dense layer with dropout off, `relu(dense1(features))`: the
    /// model's embedding ([`StochasticModel::embed`](baal_bayesian::StochasticModel::embed)),
    /// deterministic (MC dropout scales what it keeps, so off it is the identity).
    ///
    /// # Shapes
    /// Features `[N, inputs]` to `[N, hidden]`.
    pub fn penultimate(&self, features: Tensor<2>) -> Tensor<2> {
        relu(self.dense1.forward(features))
    }
}
