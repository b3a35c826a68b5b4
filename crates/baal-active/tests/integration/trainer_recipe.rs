//! The training recipe of the reproductions: weight decay scaled by the labelled set, a fixed
//! number of samples per fit, early stopping on a held-out validation set.

use crate::common;

use std::sync::Arc;

use crate::common::{TinyMlp, dataset, fashion_slice, quick_config, test_label, trainer};
use baal_active::{EarlyStoppingConfig, OptimizerConfig, Trainer, TrainerConfig};
use baal_data::ImageItem;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The sum of squares of every weight and bias.
fn squared_norm(model: &TinyMlp) -> f64 {
    struct Norm(f64);
    impl ModuleVisitor for Norm {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let sum: f32 = param.val().powf_scalar(2.0).sum().into_scalar();
            self.0 += f64::from(sum);
        }
    }
    let mut norm = Norm(0.0);
    model.visit(&mut norm);
    norm.0
}

fn adam(weight_decay: f32) -> TrainerConfig {
    quick_config().with_optimizer(OptimizerConfig::Adam {
        learning_rate: 1e-3,
        weight_decay,
        epsilon: OptimizerConfig::BURN_ADAM_EPSILON,
    })
}

#[test]
fn weight_decay_per_label_is_c_over_the_labelled_count() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(300, 0) else {
        return;
    };
    let mut labelled = dataset(train, 1);
    labelled.label_randomly(100).expect("labels");
    let fit = |config: TrainerConfig| {
        let mut trainer = trainer(config);
        trainer.fit(&labelled.labelled()).expect("fit");
        squared_norm(&trainer.inference_model())
    };
    // c = 50 over 100 labels is λ = 0.5: the very same training as a fixed 0.5.
    let per_label = fit(adam(50.0).with_weight_decay_per_label(true));
    let fixed_equivalent = fit(adam(0.5));
    assert_eq!(per_label, fixed_equivalent);
    // And far less shrinkage than λ = 50 itself.
    let fixed = fit(adam(50.0));
    assert!(
        per_label > 1.5 * fixed,
        "per label {per_label}, fixed {fixed}"
    );
}

#[test]
fn a_sample_budget_fixes_the_gradient_steps_whatever_the_labels() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(300, 0) else {
        return;
    };
    let mut labelled = dataset(train, 2);
    let mut trainer = trainer(
        quick_config()
            .with_batch_size(32)
            .with_samples_per_fit(Some(1000)),
    );
    for n in [20, 50, 200] {
        let missing = n - labelled.n_labelled();
        labelled.label_randomly(missing).expect("labels");
        let report = trainer.fit(&labelled.labelled()).expect("fit");
        // ⌈1000 / min(32, n)⌉ steps.
        assert_eq!(report.gradient_steps, 1000_usize.div_ceil(n.min(32)), "{n}");
    }
}

#[test]
fn early_stopping_stops_and_keeps_the_best_validated_weights() {
    let _serial = common::serial();
    let Some((train, validation)) = fashion_slice(300, 200) else {
        return;
    };
    let mut labelled = dataset(train, 3);
    labelled.label_randomly(20).expect("labels");
    let budget = 3000;
    let config = quick_config()
        .with_batch_size(20)
        .with_samples_per_fit(Some(budget * 20))
        .with_early_stopping(Some(EarlyStoppingConfig::new(3).with_check_every(20)));
    let mut trainer = trainer(config)
        .with_validation(validation.clone(), &test_label)
        .expect("validation set");
    let report = trainer.fit(&labelled.labelled()).expect("fit");
    let (kept, best_step) = report.validation.expect("validated");
    // 20 labels overfit long before 3000 steps: it stops 3 checks after the best one.
    assert!(report.gradient_steps < budget, "{report:?}");
    assert_eq!(report.gradient_steps, best_step + 3 * 20);
    // The model kept is the best one: evaluating it again gives the recorded metrics.
    let again = trainer
        .evaluate(validation.as_ref(), &test_label)
        .expect("evaluate");
    assert_eq!(again, kept);
}

#[test]
fn bad_recipes_are_errors() {
    let _serial = common::serial();
    let Some((train, validation)) = fashion_slice(50, 10) else {
        return;
    };
    let mut labelled = dataset(train, 4);
    labelled.label_randomly(10).expect("labels");
    let device = burn::tensor::Device::default();
    let new = |config: TrainerConfig| {
        Trainer::new(TinyMlp::new(&device), &device, common::batcher(), config)
    };
    assert!(new(quick_config().with_samples_per_fit(Some(0))).is_err());
    let patience = quick_config().with_early_stopping(Some(EarlyStoppingConfig::new(0)));
    assert!(new(patience).is_err());
    // Early stopping needs a validation set.
    let mut no_validation =
        new(quick_config().with_early_stopping(Some(EarlyStoppingConfig::new(2))))
            .expect("valid config");
    let err = no_validation
        .fit(&labelled.labelled())
        .expect_err("no validation set");
    assert!(err.to_string().contains("validation set"), "{err}");
    // A validation set with a label the model cannot predict.
    let items: Vec<ImageItem> = (0..validation.len())
        .map(|i| validation.get(i).expect("item"))
        .collect();
    let err = new(quick_config())
        .expect("valid config")
        .with_validation(Arc::new(InMemDataset::new(items)), &|_: &ImageItem| 12)
        .err()
        .expect("label out of range");
    assert!(err.to_string().contains("12"), "{err}");
}

#[test]
fn given_batches_train_in_order_reproducibly_and_bad_plans_are_errors() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(300, 0) else {
        return;
    };
    let mut labelled = dataset(train, 3);
    labelled.label_randomly(64).expect("labels");
    let labelled = labelled.labelled();
    // 40 steps: the first 32 items twenty times, then the other 32 twenty times.
    let first: Vec<usize> = (0..32).collect();
    let second: Vec<usize> = (32..64).collect();
    let plan: Vec<Vec<usize>> = std::iter::repeat_n(first.clone(), 20)
        .chain(std::iter::repeat_n(second, 20))
        .collect();
    let fast = || quick_config().with_optimizer(OptimizerConfig::adam(1e-2));
    let mut trainer = trainer(fast());
    let (report, losses) = trainer.fit_batches(&labelled, &plan).expect("fit");
    assert_eq!((report.gradient_steps, losses.len()), (40, 40));
    // Twenty steps on one batch fit it; the first step on new items costs more again.
    assert!(losses[19] < 0.5 * losses[0], "{losses:?}");
    assert!(losses[20] > 2.0 * losses[19], "{losses:?}");
    // The same initial weights and fit seed, the same plan: the same losses.
    let mut trainer = common::trainer(fast());
    let (_, again) = trainer.fit_batches(&labelled, &plan).expect("fit");
    assert_eq!(losses, again);
    let before = squared_norm(&trainer.inference_model());
    for (bad, needle) in [
        (Vec::new(), "no batch"),
        (vec![first.clone(), Vec::new()], "batch 1 is empty"),
        (vec![first, vec![3, 64]], "batch 1 holds item 64"),
    ] {
        let error = trainer
            .fit_batches(&labelled, &bad)
            .expect_err("a bad plan")
            .to_string();
        assert!(error.contains(needle), "{error}");
    }
    assert_eq!(squared_norm(&trainer.inference_model()), before);
}

#[test]
fn adam_epsilon_reaches_the_optimizer_and_old_configs_keep_burns() {
    let _serial = common::serial();
    // A config saved before the field existed reads as Burn's default.
    let old: OptimizerConfig =
        serde_json::from_str(r#"{"Adam": {"learning_rate": 0.001, "weight_decay": 0.0}}"#)
            .expect("an old config");
    assert_eq!(old, OptimizerConfig::adam(1e-3));
    let Some((train, _)) = fashion_slice(100, 0) else {
        return;
    };
    let mut labelled = dataset(train, 4);
    labelled.label_randomly(32).expect("labels");
    let plan = vec![(0..32).collect::<Vec<usize>>(); 5];
    let losses = |epsilon: f32| {
        let config = quick_config().with_optimizer(OptimizerConfig::Adam {
            learning_rate: 1e-3,
            weight_decay: 0.0,
            epsilon,
        });
        trainer(config)
            .fit_batches(&labelled.labelled(), &plan)
            .expect("fit")
            .1
    };
    let burn = losses(OptimizerConfig::BURN_ADAM_EPSILON);
    let torch = losses(OptimizerConfig::TORCH_ADAM_EPSILON);
    // The same first loss (same weights), then different steps.
    assert_eq!(burn[0], torch[0]);
    assert_ne!(burn[1..], torch[1..]);
    assert_eq!(burn, losses(OptimizerConfig::BURN_ADAM_EPSILON));
}

#[test]
fn the_trainer_config_is_a_burn_config_with_a_checked_init() {
    let _serial = crate::common::serial();
    use burn::config::Config;
    let config = TrainerConfig::new()
        .with_batch_size(64)
        .with_optimizer(OptimizerConfig::Sgd {
            learning_rate: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
        })
        .with_samples_per_fit(Some(640));
    assert_eq!(TrainerConfig::default(), TrainerConfig::new());
    // Saved and loaded as JSON, like the layers' configs.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("trainer.json");
    config.save(&path).expect("saves");
    assert_eq!(TrainerConfig::load(&path).expect("loads"), config);
    // init checks before it builds.
    let device = burn::tensor::Device::default();
    let err = TrainerConfig::new()
        .with_batch_size(0)
        .init(TinyMlp::new(&device), &device, common::batcher())
        .err()
        .expect("batch size 0");
    assert!(err.to_string().contains("batch size"), "{err}");
    let trainer = config
        .clone()
        .init(TinyMlp::new(&device), &device, common::batcher())
        .expect("valid");
    assert_eq!(trainer.config(), &config);
}
