//! A zoo model's training pass draws its head's dropout masks while its trunk runs (on flex,
//! on the other worker thread): the logits and gradients are those of the trunk then the head
//! under `McContext::training()`, bit for bit, for the same device seed; on a model whose
//! parameters are still to be initialized (drawn from the same generator on first use) too.

use baal_active::Classifier;
use baal_bayesian::McContext;
use baal_zoo::models::{GalCnnConfig, MlpConfig, SmallCnnConfig, Vgg16Config, VggSmallConfig};
use burn::tensor::{Device, Distribution, Tensor};

fn bits<const D: usize>(tensor: Tensor<D>) -> Vec<u32> {
    let values = tensor.into_data().try_to_vec::<f32>().expect("f32 values");
    values.into_iter().map(f32::to_bits).collect()
}

/// The logits of `fresh()` on `images` both ways, and the gradient of their sum with respect
/// to the images, after seeding the device with `seed` each time: for two fresh models (their
/// parameters drawn in the pass), then for one model passed over before.
fn check<M: Classifier<Input = Tensor<4>>>(
    name: &str,
    fresh: impl Fn() -> M,
    images: &Tensor<4>,
    seed: u64,
) {
    let device = images.device();
    let run = |model: &M, drawn_ahead: bool| {
        device.seed(seed);
        let images = images.clone().require_grad();
        let logits = if drawn_ahead {
            model.forward_train(images.clone())
        } else {
            model.head(model.trunk(images.clone()), &McContext::training())
        };
        let grads = logits.clone().sum().backward();
        let grad = images.grad(&grads).expect("an image gradient");
        (bits(logits), bits(grad))
    };
    let (ahead, in_pass) = (run(&fresh(), true), run(&fresh(), false));
    assert_eq!(ahead, in_pass, "{name}: fresh models");
    let model = fresh();
    run(&model, false);
    let (ahead, in_pass) = (run(&model, true), run(&model, false));
    assert_eq!(ahead.0, in_pass.0, "{name}: logits");
    assert_eq!(ahead.1, in_pass.1, "{name}: image gradient");
    // The masks dropped something: another seed gives other logits.
    device.seed(seed + 1);
    let other = bits(model.forward_train(images.clone()));
    assert_ne!(other, ahead.0, "{name}: the dropout is on");
}

#[test]
fn every_zoo_model_trains_on_the_masks_its_head_would_draw() {
    let device = Device::flex().autodiff();
    device.seed(31);
    let gray = Tensor::<4>::random([6, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let colour = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let gal = GalCnnConfig::new().with_filters(4).with_hidden(16);
    check("gal-cnn", || gal.init(&device).expect("valid"), &gray, 1);
    let small = SmallCnnConfig::new().with_filters(4).with_hidden(12);
    check(
        "small-cnn",
        || small.init(&device).expect("valid"),
        &gray,
        2,
    );
    let mlp = MlpConfig::new(28 * 28, 10).with_hidden(24);
    check("mlp", || mlp.init(&device).expect("valid"), &gray, 3);
    let vgg_small = VggSmallConfig::new();
    check(
        "vgg-small",
        || vgg_small.init(&device).expect("valid"),
        &colour,
        4,
    );
    let vgg16 = Vgg16Config::new().with_width_divisor(16).with_hidden(8);
    check("vgg16", || vgg16.init(&device).expect("valid"), &colour, 5);
}
