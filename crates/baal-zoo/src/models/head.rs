//! The stochastic head every model of the zoo ends with.

use baal_bayesian::{McContext, McDropout, McDropoutConfig};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Bool, Device, Int, Tensor};

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

    /// Logits for a training step ([`Classifier::forward_train`](baal_active::Classifier)) of
    /// `model`, whose deterministic part is `trunk`: `self.forward(trunk(images),
    /// &McContext::training())`, the same values, but on flex the two dropout masks are drawn
    /// from the device's generator while `trunk` runs, on the other worker thread. Drawing
    /// the Gal CNN's first mask (64 × 3872 values) took 1.1 ms of a 24 ms step, serial, the
    /// other thread waiting.
    ///
    /// They are the masks the head would draw: the trunk draws nothing, and they are drawn in
    /// the head's order ([`McContext::training_with_masks`]). Except on a model with
    /// parameters still to be initialized: Burn draws a parameter's values from the same
    /// generator on its first use, between the masks, so such a pass runs in order.
    pub(crate) fn forward_train<M: Module>(
        &self,
        model: &M,
        images: Tensor<4>,
        trunk: impl FnOnce(Tensor<4>) -> Tensor<2> + Send,
    ) -> Tensor<2> {
        let device = images.device();
        if !(crate::conv::is_flex(&device) && initialized(model)) {
            return self.forward(trunk(images), &McContext::training());
        }
        let [inputs, hidden] = self.dense1.weight.dims();
        let rows = images.dims()[0];
        let dtype = self.dense1.weight.val().dtype();
        let masks = || {
            [
                self.dropout1
                    .draw_training_mask(&[rows, inputs], &device, dtype),
                self.dropout2
                    .draw_training_mask(&[rows, hidden], &device, dtype),
            ]
            .into_iter()
            .flatten()
            .collect()
        };
        let (features, masks) = beside(|| trunk(images), masks);
        self.forward(features, &McContext::training_with_masks(masks))
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

/// Whether every parameter of `model` holds its values (Burn initializes a parameter on its
/// first use).
fn initialized<M: Module>(model: &M) -> bool {
    struct Check(bool);
    impl ModuleVisitor for Check {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 &= param.is_initialized();
        }
        fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
            self.0 &= param.is_initialized();
        }
        fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
            self.0 &= param.is_initialized();
        }
    }
    let mut check = Check(true);
    model.visit(&mut check);
    check.0
}

/// `a` and `b` at once on rayon's threads (flex's), or one after the other without them.
fn beside<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    #[cfg(feature = "flex")]
    {
        rayon::join(a, b)
    }
    #[cfg(not(feature = "flex"))]
    {
        (a(), b())
    }
}
