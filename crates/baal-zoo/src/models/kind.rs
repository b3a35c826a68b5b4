//! The zoo's models by name, and a way to run generic code on the one a user picked.

use baal_active::Classifier;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{GalCnnConfig, MlpConfig, SmallCnnConfig, Vgg16Config, VggSmallConfig};

/// A model of the zoo, by name (`small-cnn`, `gal-cnn`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Gal et al. 2017's CNN (`GalCnn`).
    GalCnn,
    /// A LeNet-sized CNN for quick CPU runs (`SmallCnn`).
    SmallCnn,
    /// A small VGG (`VggSmall`).
    VggSmall,
    /// VGG16 with MC dropout in its classifier (`Vgg16`; without pretrained weights here).
    Vgg16,
    /// A two-hidden-layer MLP on flattened images (`Mlp`).
    Mlp,
}

/// Code that runs on any image classifier of the zoo: what [`ModelKind::build`] hands the
/// model it built to (a generic function cannot be a closure).
pub trait ModelVisitor {
    /// What the code returns.
    type Output;

    /// Runs on `model`.
    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output;
}

impl ModelKind {
    /// The model's command-line name, as the card holds it (`small-cnn`).
    pub fn name(self) -> &'static str {
        match self {
            Self::GalCnn => "gal-cnn",
            Self::SmallCnn => "small-cnn",
            Self::VggSmall => "vgg-small",
            Self::Vgg16 => "vgg16",
            Self::Mlp => "mlp",
        }
    }

    /// Builds the model for images of `[channels, size, size]` and `classes` classes on
    /// `device`, and runs `visitor` on it.
    ///
    /// # Errors
    /// The model cannot take this input (e.g. images too small for its convolutions).
    pub fn build<V: ModelVisitor>(
        self,
        [channels, size, _]: [usize; 3],
        classes: usize,
        device: &Device,
        visitor: V,
    ) -> baal_bayesian::Result<V::Output> {
        Ok(match self {
            Self::GalCnn => visitor.visit(
                GalCnnConfig::new()
                    .with_channels(channels)
                    .with_size(size)
                    .with_classes(classes)
                    .init(device)?,
            ),
            Self::SmallCnn => visitor.visit(
                SmallCnnConfig::new()
                    .with_channels(channels)
                    .with_size(size)
                    .with_classes(classes)
                    .init(device)?,
            ),
            Self::VggSmall => visitor.visit(
                VggSmallConfig::new()
                    .with_channels(channels)
                    .with_size(size)
                    .with_classes(classes)
                    .init(device)?,
            ),
            Self::Vgg16 => visitor.visit(
                Vgg16Config::new()
                    .with_channels(channels)
                    .with_classes(classes)
                    .init(device)?,
            ),
            Self::Mlp => {
                visitor.visit(MlpConfig::new(channels * size * size, classes).init(device)?)
            }
        })
    }
}
