//! Every model of the zoo gives embeddings (`StochasticModel::embed`): the input of its last
//! dense layer, `[N, hidden]`, the same on every call, and per item whatever the batch.

use baal_bayesian::StochasticModel;
use baal_zoo::models::{GalCnnConfig, MlpConfig, SmallCnnConfig, Vgg16Config, VggSmallConfig};
use burn::tensor::{Device, Distribution, Tensor};

/// Checks `model`'s embeddings of `images` (`[N, ...]`) against `hidden` features.
fn check_embeddings<M: StochasticModel<Input = Tensor<4>>>(
    name: &str,
    model: &M,
    images: Tensor<4>,
    hidden: usize,
) {
    let n = images.dims()[0];
    let values = |images: Tensor<4>| {
        let embedding = model.embed(images).expect("the zoo's models embed");
        let dims = embedding.dims();
        (
            dims,
            embedding.into_data().try_to_vec::<f32>().expect("f32"),
        )
    };
    let (dims, first) = values(images.clone());
    assert_eq!(dims, [n, hidden], "{name}");
    // Dropout is off: a second call gives the same values.
    assert_eq!(values(images.clone()).1, first, "{name}");
    // Activations after a relu: finite, non-negative, not all zero.
    assert!(first.iter().all(|v| v.is_finite() && *v >= 0.0), "{name}");
    assert!(first.iter().any(|&v| v > 0.0), "{name}: every feature is 0");
    // One item alone gets its row of the batch (no batch-dependent randomness).
    let (_, alone) = values(images.narrow(0, 1, 1));
    for (a, b) in alone.iter().zip(&first[hidden..2 * hidden]) {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{name}: {a} vs {b}"
        );
    }
}

fn images(device: &Device, shape: [usize; 4]) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(0.0, 1.0), device)
}

#[test]
fn every_zoo_model_embeds_its_last_layers_input() {
    let device = Device::default();
    device.seed(29);
    let gray = images(&device, [3, 1, 28, 28]);
    let colour = images(&device, [3, 3, 32, 32]);
    let gal = GalCnnConfig::new()
        .with_filters(4)
        .with_hidden(16)
        .init(&device)
        .expect("valid");
    check_embeddings("gal-cnn", &gal, gray.clone(), 16);
    let small = SmallCnnConfig::new()
        .with_filters(4)
        .with_hidden(12)
        .init(&device)
        .expect("valid");
    check_embeddings("small-cnn", &small, gray.clone(), 12);
    let mlp = MlpConfig::new(28 * 28, 10)
        .with_hidden(24)
        .init(&device)
        .expect("valid");
    check_embeddings("mlp", &mlp, gray, 24);
    let vgg_small = VggSmallConfig::new().init(&device).expect("valid");
    check_embeddings("vgg-small", &vgg_small, colour.clone(), 256);
    let vgg16 = Vgg16Config::new()
        .with_width_divisor(16)
        .with_hidden(8)
        .init(&device)
        .expect("valid");
    check_embeddings("vgg16", &vgg16, colour, 8);
}
