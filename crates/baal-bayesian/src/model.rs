//! What the sampler needs from a model: batches it can replicate, outputs it can stack, and
//! the stochastic-model trait with its optional deterministic trunk.

use burn::config::Config;
use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor};

use crate::context::McContext;

/// A batch of items, with the batch axis first, that the sampler can replicate and split.
///
/// Implemented for float and int tensors of any rank and for pairs and triples of batches
/// (for models with several inputs; the first element gives the batch size).
pub trait McBatch: Sized {
    /// Number of items in the batch.
    fn batch_size(&self) -> usize;
    /// Bytes one item occupies.
    fn bytes_per_item(&self) -> usize;
    /// The batch repeated `times` times along the batch axis, iteration-major:
    /// `[x_0 .. x_B, x_0 .. x_B, ...]`.
    fn repeat_items(&self, times: usize) -> Self;
    /// Items `start .. start + len` of the batch.
    fn narrow_items(&self, start: usize, len: usize) -> Self;
}

macro_rules! tensor_batch {
    ($($kind:ty),*) => {$(
        impl<const D: usize> McBatch for Tensor<D, $kind> {
            fn batch_size(&self) -> usize {
                self.dims()[0]
            }

            fn bytes_per_item(&self) -> usize {
                self.dims()[1..].iter().product::<usize>() * self.dtype().size()
            }

            fn repeat_items(&self, times: usize) -> Self {
                if times == 1 {
                    return self.clone();
                }
                self.clone().repeat_dim(0, times)
            }

            fn narrow_items(&self, start: usize, len: usize) -> Self {
                self.clone().narrow(0, start, len)
            }
        }
    )*};
}

tensor_batch!(burn::tensor::Float, Int);

impl<A: McBatch, B: McBatch> McBatch for (A, B) {
    fn batch_size(&self) -> usize {
        self.0.batch_size()
    }

    fn bytes_per_item(&self) -> usize {
        self.0.bytes_per_item() + self.1.bytes_per_item()
    }

    fn repeat_items(&self, times: usize) -> Self {
        (self.0.repeat_items(times), self.1.repeat_items(times))
    }

    fn narrow_items(&self, start: usize, len: usize) -> Self {
        (
            self.0.narrow_items(start, len),
            self.1.narrow_items(start, len),
        )
    }
}

impl<A: McBatch, B: McBatch, C: McBatch> McBatch for (A, B, C) {
    fn batch_size(&self) -> usize {
        self.0.batch_size()
    }

    fn bytes_per_item(&self) -> usize {
        self.0.bytes_per_item() + self.1.bytes_per_item() + self.2.bytes_per_item()
    }

    fn repeat_items(&self, times: usize) -> Self {
        (
            self.0.repeat_items(times),
            self.1.repeat_items(times),
            self.2.repeat_items(times),
        )
    }

    fn narrow_items(&self, start: usize, len: usize) -> Self {
        (
            self.0.narrow_items(start, len),
            self.1.narrow_items(start, len),
            self.2.narrow_items(start, len),
        )
    }
}

/// How the sampler turns a model's raw outputs into predictions.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum OutputActivation {
    /// Softmax over the classes (axis 1): the outputs are logits, the predictions class
    /// probabilities (classification, segmentation).
    Softmax,
    /// The outputs are kept as they are (regression, or a model that already returns
    /// probabilities).
    Identity,
}

/// A model output the sampler can stack over MC iterations: logits `[rows, C]` (`Tensor<2>`)
/// or `[rows, C, P]` with an extra position axis (`Tensor<3>`, segmentation: flatten the
/// spatial axes into `P`).
pub trait McOutput: Sized {
    /// The stacked predictions: `[N, C, T]` for `Tensor<2>` outputs, `[N, C, P, T]` for
    /// `Tensor<3>` outputs.
    type Predictions;
    /// The output's shape.
    fn output_dims(&self) -> Vec<usize>;
    /// Concatenates outputs along the row axis.
    fn cat_rows(parts: Vec<Self>) -> Self;
    /// Turns the outputs of `replicas` iteration-major replicas into predictions of the
    /// replicas' items, MC iterations last.
    fn into_predictions(self, replicas: usize, activation: OutputActivation) -> Self::Predictions;
    /// Concatenates predictions along the MC-iteration axis (the last).
    fn cat_iterations(parts: Vec<Self::Predictions>) -> Self::Predictions;
    /// Concatenates predictions along the item axis (the first).
    fn cat_items(parts: Vec<Self::Predictions>) -> Self::Predictions;
    /// The output moved off an autodiff device (a model run there, such as
    /// [`BurnDropout`](crate::BurnDropout)'s); the default returns it unchanged.
    fn without_autodiff(self) -> Self {
        self
    }
}

impl McOutput for Tensor<2> {
    fn without_autodiff(self) -> Self {
        Tensor::without_autodiff(self)
    }

    type Predictions = Tensor<3>;

    fn output_dims(&self) -> Vec<usize> {
        self.dims().to_vec()
    }

    fn cat_rows(parts: Vec<Self>) -> Self {
        Tensor::cat(parts, 0)
    }

    fn into_predictions(self, replicas: usize, activation: OutputActivation) -> Tensor<3> {
        let [rows, classes] = self.dims();
        let stacked: Tensor<3> = self.reshape([replicas, rows / replicas, classes]);
        let stacked = match activation {
            OutputActivation::Softmax => softmax(stacked, 2),
            OutputActivation::Identity => stacked,
        };
        stacked.permute([1, 2, 0])
    }

    fn cat_iterations(parts: Vec<Tensor<3>>) -> Tensor<3> {
        Tensor::cat(parts, 2)
    }

    fn cat_items(parts: Vec<Tensor<3>>) -> Tensor<3> {
        Tensor::cat(parts, 0)
    }
}

impl McOutput for Tensor<3> {
    fn without_autodiff(self) -> Self {
        Tensor::without_autodiff(self)
    }

    type Predictions = Tensor<4>;

    fn output_dims(&self) -> Vec<usize> {
        self.dims().to_vec()
    }

    fn cat_rows(parts: Vec<Self>) -> Self {
        Tensor::cat(parts, 0)
    }

    fn into_predictions(self, replicas: usize, activation: OutputActivation) -> Tensor<4> {
        let [rows, classes, positions] = self.dims();
        let stacked: Tensor<4> = self.reshape([replicas, rows / replicas, classes, positions]);
        let stacked = match activation {
            OutputActivation::Softmax => softmax(stacked, 2),
            OutputActivation::Identity => stacked,
        };
        stacked.permute([1, 2, 3, 0])
    }

    fn cat_iterations(parts: Vec<Tensor<4>>) -> Tensor<4> {
        Tensor::cat(parts, 3)
    }

    fn cat_items(parts: Vec<Tensor<4>>) -> Tensor<4> {
        Tensor::cat(parts, 0)
    }
}

/// A model whose forward pass is a sample from an approximate posterior, split into a
/// deterministic *trunk* and a stochastic *head*.
///
/// The sampler runs `trunk` once per input and `head` once per MC iteration, the iterations
/// replicated along the batch axis (as many per pass as the memory budget allows). A model
/// whose first layer is already stochastic makes the trunk the identity
/// (`type Features = Self::Input`, `fn trunk(&self, x) -> x { x }`); a model whose stochastic
/// layers come late (a CNN with dropout only before its dense layers) puts everything before
/// the first stochastic layer in the trunk, which then runs once instead of `T` times (baal's
/// `MCCachingModule` idea, here together with replication of the head).
///
/// The trunk **must be deterministic**: it gets no [`McContext`], so it cannot call this
/// crate's stochastic layers, and a `burn::nn::Dropout` in it is a no-op outside autodiff.
///
/// ```
/// use baal_bayesian::{McContext, McDropout, McDropoutConfig, StochasticModel};
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::activation::relu;
/// use burn::tensor::{Device, Tensor};
///
/// #[derive(Module, Debug)]
/// struct Classifier {
///     hidden: Linear,
///     dropout: McDropout,
///     output: Linear,
/// }
///
/// impl StochasticModel for Classifier {
///     type Input = Tensor<2>;
///     type Features = Tensor<2>;
///     type Output = Tensor<2>;
///
///     // Everything before the first dropout runs once per input.
///     fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
///         relu(self.hidden.forward(input))
///     }
///
///     fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
///         self.output.forward(self.dropout.forward(features, mc))
///     }
///
///     // The input of the last linear layer, dropout off (Coreset and BADGE read it).
///     fn embed(&self, input: Tensor<2>) -> Option<Tensor<2>> {
///         Some(self.trunk(input))
///     }
/// }
///
/// # fn main() -> baal_bayesian::Result<()> {
/// let device = Device::default();
/// let model = Classifier {
///     hidden: LinearConfig::new(4, 16).init(&device),
///     dropout: McDropoutConfig::new(0.5).init()?,
///     output: LinearConfig::new(16, 3).init(&device),
/// };
/// let sampler = baal_bayesian::McSamplerConfig::new(20).init()?;
/// let probs = sampler.predict_batch(&model, Tensor::<2>::ones([5, 4], &device))?;
/// assert_eq!(probs.dims(), [5, 3, 20]); // [N, C, T]
/// let embeddings = model.embed(Tensor::<2>::ones([5, 4], &device)).expect("it embeds");
/// assert_eq!(embeddings.dims(), [5, 16]); // [N, D]
/// # Ok(())
/// # }
/// ```
pub trait StochasticModel {
    /// A batch of inputs, batch axis first.
    type Input: McBatch;
    /// What the trunk hands to the head, batch axis first.
    type Features: McBatch;
    /// The head's output: logits `[rows, C]` or `[rows, C, P]`.
    type Output: McOutput;

    /// The deterministic part of the model, run once per input.
    fn trunk(&self, input: Self::Input) -> Self::Features;

    /// The stochastic part of the model. Its input holds `mc.replicas()` iteration-major
    /// copies of a batch of features; its stochastic layers read from `mc` which MC
    /// iteration and item each row stands for.
    fn head(&self, features: Self::Features, mc: &McContext) -> Self::Output;

    /// Peak bytes the head needs per item and MC replica, which the sampler uses to fit
    /// replicated passes into its memory budget.
    ///
    /// The default guesses four times the size of an item's features; override it when the
    /// head widens its activations (a head with convolutions, or a wide dense layer).
    fn head_bytes_per_item(&self, features: &Self::Features) -> usize {
        features.bytes_per_item().saturating_mul(4)
    }

    /// The model's embedding of each input, `[rows, D]`: the input `h` of its last linear
    /// layer (the penultimate activations), with every stochastic layer off, so the same
    /// input gives the same embedding on every call. What the diversity heuristics read
    /// (Coreset's features, BADGE's `h`); `None` (the default) for a model that gives none,
    /// which those heuristics then refuse with an error.
    ///
    /// Run it on the inference form of a trained module (`valid()`), as predictions are. The
    /// zoo's models implement it as their head's
    /// `relu(dense1(trunk(x)))`; the wrappers of this crate ([`DropConnectModel`](crate::DropConnectModel),
    /// [`BurnDropoutModel`](crate::BurnDropoutModel)) know no layer of their forward
    /// function and give none.
    ///
    /// # Shapes
    /// An input batch of `rows` items to `[rows, D]`.
    fn embed(&self, input: Self::Input) -> Option<Tensor<2>> {
        let _ = input;
        None
    }
}
