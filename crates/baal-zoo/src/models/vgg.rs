//! VGG networks with MC dropout in the classifier: VGG16 (Simonyan & Zisserman 2015, the
//! torchvision layout baal's CIFAR-10 experiment uses) and a small VGG for quick CPU runs.

use baal_active::Classifier;
use baal_bayesian::{McContext, StochasticModel};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_store::{ModuleSnapshot, PytorchStore};
use std::fmt;
use std::path::{Path, PathBuf};

use super::McDenseHead;

/// VGG16's convolution widths; `0` is a 2×2 max-pool.
const VGG16_LAYERS: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

fn conv3x3(channels: [usize; 2], device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// Configuration of [`Vgg16`].
#[derive(Config, Debug)]
pub struct Vgg16Config {
    /// Output classes.
    #[config(default = 10)]
    pub classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub channels: usize,
    /// Width of the two hidden dense layers (4096 in VGG16).
    #[config(default = 4096)]
    pub hidden: usize,
    /// MC dropout probability of the classifier.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Divides every convolution width: 1 is VGG16 itself, larger values a slimmer net of the
    /// same depth (for CPU runs and tests). Must divide 64.
    #[config(default = 1)]
    pub width_divisor: usize,
}

/// VGG16: thirteen 3×3 convolutions in five max-pooled blocks, an adaptive average pool to
/// 7×7, then dense – relu – MC dropout – dense – relu – MC dropout – dense. The parameter
/// layout follows torchvision's `vgg16` (`features`, `classifier`).
#[derive(Module, Debug)]
pub struct Vgg16 {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    avgpool: AdaptiveAvgPool2d,
    dense: Linear,
    head: McDenseHead,
    classes: usize,
}

impl Vgg16Config {
    /// Builds the model on `device` with random weights.
    ///
    /// # Errors
    /// A dropout probability outside [0, 1), or a `width_divisor` that does not divide 64.
    pub fn init(&self, device: &Device) -> baal_bayesian::Result<Vgg16> {
        if self.width_divisor == 0 || 64 % self.width_divisor != 0 {
            return Err(baal_bayesian::BayesianError::InvalidConfig {
                what: "Vgg16Config::width_divisor",
                reason: format!("must divide 64, got {}", self.width_divisor),
            });
        }
        let mut convs = Vec::new();
        let mut channels = self.channels;
        for &width in VGG16_LAYERS.iter().filter(|&&w| w > 0) {
            let width = width / self.width_divisor;
            convs.push(conv3x3([channels, width], device));
            channels = width;
        }
        Ok(Vgg16 {
            convs,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            dense: LinearConfig::new(channels * 7 * 7, self.hidden).init(device),
            head: McDenseHead::new(
                [self.hidden, self.hidden, self.classes],
                [self.dropout, self.dropout],
                device,
            )?,
            classes: self.classes,
        })
    }
}

impl StochasticModel for Vgg16 {
    type Input = Tensor<4>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    /// The convolutions and the first dense layer come before the first dropout.
    ///
    /// # Shapes
    /// `[N, channels, H, W]` (H, W ≥ 32) to `[N, hidden]`.
    fn trunk(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        let mut convs = self.convs.iter();
        for &width in &VGG16_LAYERS {
            if width == 0 {
                x = crate::pool::max_pool2d(&self.pool, x);
            } else if let Some(conv) = convs.next() {
                x = crate::conv::conv2d_relu(conv, x);
            }
        }
        let x = self.avgpool.forward(x).flatten(1, 3);
        relu(self.dense.forward(x))
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

impl Classifier for Vgg16 {
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

/// What [`Vgg16::load_torchvision_weights`] loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedWeights {
    /// Parameters overwritten, as paths of this model (`convs.0.weight`, `dense.bias`, `head.dense1.weight`, ...).
    pub loaded: Vec<String>,
    /// Tensors of the file left out: torchvision's last layer (`classifier.6.*`), which is
    /// ImageNet's 1000-class head.
    pub left_out: Vec<String>,
}

/// Why [`Vgg16::load_torchvision_weights`] failed; the model is left as it was.
#[derive(Debug)]
pub struct WeightsError {
    path: PathBuf,
    reason: String,
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for WeightsError {}

impl Vgg16 {
    /// Loads torchvision's `vgg16` weights — a state dict saved with
    /// `torch.save(model.state_dict(), path)`, such as the ImageNet weights
    /// `vgg16-397923af.pth` — into the thirteen convolutions and the first two dense layers.
    /// The last dense layer keeps its initial weights: it is this task's head, not ImageNet's
    /// (baal's CIFAR-10 experiment replaces it the same way). Linear weights are transposed
    /// from PyTorch's `[out, in]` to Burn's `[in, out]`.
    ///
    /// # Errors
    /// The file is missing or is not a PyTorch state dict, a tensor's shape differs from this
    /// model's (another `hidden`, `channels` or `width_divisor`), a parameter is missing from
    /// the file, or the file holds tensors VGG16 does not have (e.g. `vgg16_bn`'s batch norms).
    /// On error the model is unchanged.
    pub fn load_torchvision_weights(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<LoadedWeights, WeightsError> {
        let path = path.as_ref();
        let fail = |reason: String| WeightsError {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail(
                "no such file; torchvision's ImageNet weights are at \
                 https://download.pytorch.org/models/vgg16-397923af.pth"
                    .into(),
            ));
        }
        let mut store = torchvision_store(path);
        let mut model = self.clone();
        let result = model
            .load_from(&mut store)
            .map_err(|e| fail(format!("cannot read the weights: {e}")))?;
        if !result.errors.is_empty() {
            let errors: Vec<String> = result
                .errors
                .iter()
                .take(3)
                .map(ToString::to_string)
                .collect();
            let more = result.errors.len().saturating_sub(errors.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return Err(fail(format!(
                "the weights do not fit this model: {}{more}",
                errors.join("; ")
            )));
        }
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(|path| !path.starts_with("head.dense2."))
            .collect();
        if !missing.is_empty() {
            return Err(fail(format!(
                "not a torchvision vgg16 state dict: it lacks {}",
                missing.join(", ")
            )));
        }
        let (left_out, unexpected): (Vec<String>, Vec<String>) = result
            .unused
            .into_iter()
            .partition(|path| path.starts_with("classifier.6."));
        if !unexpected.is_empty() {
            return Err(fail(format!(
                "not a torchvision vgg16 state dict: it holds {}",
                unexpected.join(", ")
            )));
        }
        *self = model;
        Ok(LoadedWeights {
            loaded: result.applied,
            left_out,
        })
    }
}

/// Configuration of [`VggSmall`].
#[derive(Config, Debug)]
pub struct VggSmallConfig {
    /// Output classes.
    #[config(default = 10)]
    pub classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub channels: usize,
    /// Input height and width (square, a multiple of 8).
    #[config(default = 32)]
    pub size: usize,
    /// MC dropout probability of the classifier.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// Three VGG blocks (two 3×3 convolutions of 32, 64, 128 channels and a max-pool), then
/// dense 256 – MC dropout – dense 256 – MC dropout – dense.
#[derive(Module, Debug)]
pub struct VggSmall {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    dense: Linear,
    head: McDenseHead,
    classes: usize,
}

impl VggSmallConfig {
    /// Builds the model on `device`.
    ///
    /// # Errors
    /// A dropout probability outside [0, 1), or a size that is not a positive multiple of 8.
    pub fn init(&self, device: &Device) -> baal_bayesian::Result<VggSmall> {
        if self.size == 0 || !self.size.is_multiple_of(8) {
            return Err(baal_bayesian::BayesianError::InvalidConfig {
                what: "VggSmallConfig::size",
                reason: format!("must be a positive multiple of 8, got {}", self.size),
            });
        }
        let side = self.size / 8;
        Ok(VggSmall {
            convs: vec![
                conv3x3([self.channels, 32], device),
                conv3x3([32, 32], device),
                conv3x3([32, 64], device),
                conv3x3([64, 64], device),
                conv3x3([64, 128], device),
                conv3x3([128, 128], device),
            ],
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dense: LinearConfig::new(128 * side * side, 256).init(device),
            head: McDenseHead::new(
                [256, 256, self.classes],
                [self.dropout, self.dropout],
                device,
            )?,
            classes: self.classes,
        })
    }
}

impl StochasticModel for VggSmall {
    type Input = Tensor<4>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    /// The convolutions and the first dense layer come before the first dropout.
    ///
    /// # Shapes
    /// `[N, channels, size, size]` to `[N, 256]`.
    fn trunk(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for block in self.convs.chunks(2) {
            for conv in block {
                x = crate::conv::conv2d_relu(conv, x);
            }
            x = crate::pool::max_pool2d(&self.pool, x);
        }
        relu(self.dense.forward(x.flatten(1, 3)))
    }

    /// # Shapes
    /// `[N, 256]` to logits `[N, classes]`.
    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.head.forward(features, mc)
    }

    /// The input of the last dense layer, dropout off (see [`McDenseHead::penultimate`]).
    ///
    /// # Shapes
    /// Images to `[N, 256]`.
    fn embed(&self, images: Tensor<4>) -> Option<Tensor<2>> {
        Some(self.head.penultimate(self.trunk(images)))
    }
}

impl Classifier for VggSmall {
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

/// A PyTorch store that reads torchvision's VGG16 keys as this model's: torchvision's
/// `features` is one Sequential of conv, relu and max-pool modules, so the convolutions sit at
/// indices 0, 2, 5, 7, ...; `classifier` is dense, relu, dropout, dense, relu, dropout, dense.
fn torchvision_store(path: &Path) -> PytorchStore {
    let mut store = PytorchStore::from_file(path)
        .map_indices_contiguous(false)
        .allow_partial(true)
        // Checked by the caller, with shorter messages than the store's summary.
        .validate(false);
    let (mut index, mut conv) = (0, 0);
    for width in VGG16_LAYERS {
        if width == 0 {
            index += 1;
        } else {
            store = store
                .with_key_remapping(format!(r"^features\.{index}\."), format!("convs.{conv}."));
            index += 2;
            conv += 1;
        }
    }
    store
        .with_key_remapping(r"^classifier\.0\.", "dense.")
        .with_key_remapping(r"^classifier\.3\.", "head.dense1.")
}
