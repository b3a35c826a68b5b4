//! Dirichlet calibration through the trainer: fitted on the validation split after each fit,
//! applied to every prediction the loop and the evaluation see.

use crate::common;

use std::sync::Arc;

use crate::common::{batcher, dataset, fashion_slice, quick_config, test_label, trainer};
use baal_active::{
    CalibratedPredictor, DirichletCalibratorConfig, ModelPredictor, Predictor,
    classification_metrics,
};
use baal_bayesian::McSamplerConfig;
use baal_data::ImageItem;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::{Device, Tensor};

fn host(probs: Tensor<3>) -> (Vec<f32>, [usize; 3]) {
    let dims = probs.dims();
    (probs.into_data().try_to_vec::<f32>().expect("f32"), dims)
}

fn labels(items: &dyn Dataset<ImageItem>) -> Vec<usize> {
    (0..items.len())
        .map(|i| test_label(&items.get(i).expect("item")))
        .collect()
}

#[test]
fn the_trainer_calibrates_on_the_validation_split_and_predicts_through_the_map() {
    let _serial = common::serial();
    let Some((train, test)) = fashion_slice(900, 400) else {
        return;
    };
    let validation: Vec<ImageItem> = (600..900).map(|i| train.get(i).expect("item")).collect();
    let validation: Arc<dyn Dataset<ImageItem>> = Arc::new(InMemDataset::new(validation));
    let mut labelled = dataset(train, 8);
    labelled.label_randomly(80).expect("labels");
    let mut trainer = trainer(quick_config())
        .with_validation(validation.clone(), &test_label)
        .expect("validation")
        .with_calibration(DirichletCalibratorConfig::default())
        .expect("valid settings");
    let report = trainer.fit(&labelled.labelled()).expect("fit");
    let calibration = report.calibration.expect("calibrated after the fit");
    eprintln!(
        "validation before {:?}\nvalidation after  {:?}",
        calibration.before, calibration.after
    );
    assert_eq!(calibration.items, 300);
    // The map minimises the validation NLL (plus a small penalty), starting from the identity.
    assert!(
        calibration.after.nll < calibration.before.nll,
        "{calibration:?}"
    );

    // Predictions pass through the map: the raw model's samples, calibrated one by one.
    let sampler = McSamplerConfig::new(6)
        .with_seed(2)
        .init()
        .expect("sampler");
    let raw = ModelPredictor {
        model: trainer.inference_model(),
        batcher: batcher(),
        device: Device::default(),
        batch_size: 64,
    };
    let (raw_test, dims) = host(raw.predict(&sampler, test.as_ref()).expect("predict"));
    let (calibrated_test, _) = host(trainer.predict(&sampler, test.as_ref()).expect("predict"));
    let calibrator = trainer.calibrator().expect("fitted").clone();
    let expected = calibrator.apply_values(&raw_test, dims).expect("applies");
    for (i, (a, b)) in calibrated_test.iter().zip(&expected).enumerate() {
        assert!((a - b).abs() < 1e-5, "entry {i}: {a} vs {b}");
    }
    // The same through CalibratedPredictor, streamed in chunks.
    let wrapped = CalibratedPredictor {
        predictor: raw,
        calibrator,
    };
    let mut chunks = Vec::new();
    wrapped
        .predict_chunks(&sampler, test.as_ref(), &mut |_, chunk| {
            chunks.push(chunk);
            Ok(())
        })
        .expect("chunks");
    assert!(chunks.len() > 1);
    let (streamed, _) = host(Tensor::cat(chunks, 0));
    for (a, b) in streamed.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-5);
    }
    // The test set's ECE before and after (reported, not asserted: 300 validation items).
    let test_labels = labels(test.as_ref());
    let before = classification_metrics(&raw_test, dims, &test_labels).expect("metrics");
    let after = classification_metrics(&calibrated_test, dims, &test_labels).expect("metrics");
    eprintln!(
        "test ECE {:.4} -> {:.4}, NLL {:.4} -> {:.4}, accuracy {:.4} -> {:.4}",
        before.ece, after.ece, before.nll, after.nll, before.accuracy, after.accuracy
    );
    // evaluate() scores the calibrated predictions.
    let evaluated = trainer
        .evaluate(test.as_ref(), &test_label)
        .expect("evaluate");
    let eval_sampler = McSamplerConfig::new(quick_config().eval_iterations)
        .with_seed(quick_config().seed)
        .init()
        .expect("sampler");
    let (values, dims) = host(
        trainer
            .predict(&eval_sampler, test.as_ref())
            .expect("predict"),
    );
    assert_eq!(
        evaluated,
        classification_metrics(&values, dims, &test_labels).expect("metrics")
    );
    // Reset weights, reset map.
    trainer.reset_weights();
    assert!(trainer.calibrator().is_none());
}

#[test]
fn calibration_needs_a_validation_split_and_valid_settings() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(100, 0) else {
        return;
    };
    let mut labelled = dataset(train, 1);
    labelled.label_randomly(20).expect("labels");
    let mut trainer = trainer(quick_config())
        .with_calibration(DirichletCalibratorConfig::default())
        .expect("valid");
    let error = trainer
        .fit(&labelled.labelled())
        .expect_err("no validation set")
        .to_string();
    assert!(
        error.contains("calibration") && error.contains("validation"),
        "{error}"
    );
    let bad = DirichletCalibratorConfig {
        learning_rate: f64::NAN,
        ..DirichletCalibratorConfig::default()
    };
    assert!(
        common::trainer(quick_config())
            .with_calibration(bad)
            .is_err()
    );
}
