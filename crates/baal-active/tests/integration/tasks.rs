//! Segmentation and regression models through `score_pool` and the loop.

use std::sync::Arc;

use baal_active::{
    ActiveLearningLoop, EarlyStopping, Experiment, InputBatcher, Metric, ModelPredictor,
    OptimizerConfig, Predictor, RegressionPredictor, SegmentationPredictor, StepRecord, TestTarget,
    Trainable, Trainer, TrainerConfig, regression_loss, score_pool, segmentation_loss,
};
use baal_bayesian::{McContext, McDropout, McDropoutConfig, McSamplerConfig, StochasticModel};
use baal_data::ActiveLearningDataset;
use baal_heuristics::{Bald, Entropy, Epig, Heuristic, Predictions, Reduction, Variance};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::common::serial;

const FEATURES: usize = 8;
const POSITIONS: usize = 4;

/// A per-position classifier: 8 features → dropout → 2 classes at each of 4 positions.
#[derive(Module, Debug)]
struct Segmenter {
    dropout: McDropout,
    dense: Linear,
}

impl StochasticModel for Segmenter {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<3>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        input
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<3> {
        let rows = features.dims()[0];
        self.dense
            .forward(self.dropout.forward(features, mc))
            .reshape([rows, 2, POSITIONS])
    }
}

/// A regressor: 8 features → dropout → 1 output.
#[derive(Module, Debug)]
struct Regressor {
    dropout: McDropout,
    dense: Linear,
}

impl StochasticModel for Regressor {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        input
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.dense.forward(self.dropout.forward(features, mc))
    }
}

fn batcher() -> InputBatcher<Vec<f32>, Tensor<2>> {
    Arc::new(|items: Vec<Vec<f32>>, device: &Device| {
        let n = items.len();
        Tensor::from_data(TensorData::new(items.concat(), [n, FEATURES]), device)
    })
}

/// 40 items whose feature scale grows with the index.
fn items() -> Vec<Vec<f32>> {
    (0..40)
        .map(|i| {
            (0..FEATURES)
                .map(|f| ((i * 7 + f * 3) % 11) as f32 / 11.0 * (1.0 + i as f32 / 10.0))
                .collect()
        })
        .collect()
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32")
}

fn segmenter(device: &Device) -> Segmenter {
    device.seed(3);
    Segmenter {
        dropout: McDropoutConfig::new(0.5).init().expect("dropout"),
        dense: LinearConfig::new(FEATURES, 2 * POSITIONS).init(device),
    }
}

#[test]
fn a_segmentation_model_is_scored_per_item_under_each_reduction_and_queried_by_the_loop() {
    let _serial = serial();
    let device = Device::default();
    let pool = InMemDataset::new(items());
    let sampler = McSamplerConfig::new(6)
        .with_seed(1)
        .init()
        .expect("sampler");
    let mut predictor = SegmentationPredictor {
        predictor: ModelPredictor {
            model: segmenter(&device),
            batcher: batcher(),
            device: device.clone(),
            batch_size: 16,
        },
        reduction: Reduction::Mean,
    };
    let whole = predictor
        .predict_segmentation(&sampler, &pool)
        .expect("predict");
    assert_eq!(whole.dims(), [40, 2, POSITIONS, 6]);
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::Max] {
        predictor.reduction = reduction;
        let expected = Bald
            .scores(
                &Predictions::from_segmentation_probs(whole.clone(), reduction).expect("probs"),
                None,
            )
            .expect("scores");
        // Streamed in chunks of 16 through score_pool: the same per-item scores.
        let streamed = score_pool(&predictor, &sampler, &pool, &Bald, None, None)
            .expect("scores")
            .select(&Bald, 5)
            .expect("select");
        for (a, b) in streamed.pool_scores.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{reduction:?}: {a} vs {b}");
        }
    }
    // Sum is P × mean.
    predictor.reduction = Reduction::Sum;
    let sum = score_pool(&predictor, &sampler, &pool, &Entropy, None, None)
        .expect("scores")
        .select(&Entropy, 1)
        .expect("select")
        .pool_scores;
    predictor.reduction = Reduction::Mean;
    let mean = score_pool(&predictor, &sampler, &pool, &Entropy, None, None)
        .expect("scores")
        .select(&Entropy, 1)
        .expect("select")
        .pool_scores;
    for (s, m) in sum.iter().zip(&mean) {
        assert!((s - POSITIONS as f32 * m).abs() < 1e-5);
    }
    // Its predict is an error, not [N, C, T] of the wrong meaning.
    assert!(predictor.predict(&sampler, &pool).is_err());

    // The loop queries with it, without a class diagnostic.
    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(items()))
        .with_known_labels(|_: &Vec<f32>| 0u8);
    dataset.label_randomly(10).expect("labels");
    let mut active = ActiveLearningLoop::new(Bald, 5).expect("loop");
    let outcome = active.step(&mut dataset, &predictor).expect("step");
    assert_eq!(outcome.query.len(), 5);
    assert!(outcome.query_predicted_classes.is_empty());
    assert_eq!(dataset.n_labelled(), 15);
    // EPIG needs class probabilities of a target set: an error that says so.
    let mut epig = ActiveLearningLoop::new(Epig, 5)
        .expect("loop")
        .with_target(Arc::new(InMemDataset::new(items())));
    let error = epig
        .step(&mut dataset, &predictor)
        .expect_err("no target")
        .to_string();
    assert!(error.contains("target set"), "{error}");
}

#[test]
fn a_regression_model_is_scored_by_variance_and_queried_by_the_loop() {
    let _serial = serial();
    let device = Device::default();
    device.seed(5);
    let predictor = RegressionPredictor(ModelPredictor {
        model: Regressor {
            dropout: McDropoutConfig::new(0.5).init().expect("dropout"),
            dense: LinearConfig::new(FEATURES, 1).init(&device),
        },
        batcher: batcher(),
        device: device.clone(),
        batch_size: 16,
    });
    let pool = InMemDataset::new(items());
    // A sampler configured for classifiers: the predictor switches to the identity.
    let sampler = McSamplerConfig::new(10)
        .with_seed(2)
        .init()
        .expect("sampler");
    let outputs = predictor.predict(&sampler, &pool).expect("predict");
    assert_eq!(outputs.dims(), [40, 1, 10]);
    let raw = values(outputs.clone());
    assert!(
        raw.iter().any(|v| *v < 0.0 || *v > 1.0),
        "raw outputs, not a softmax"
    );
    let expected = Variance
        .scores(
            &Predictions::from_regression(outputs).expect("outputs"),
            None,
        )
        .expect("scores");
    let selection = score_pool(&predictor, &sampler, &pool, &Variance, None, None)
        .expect("scores")
        .select(&Variance, 5)
        .expect("select");
    for (a, b) in selection.pool_scores.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // Dropout's variance grows with the input's scale: the last items come first.
    assert!(
        selection.positions.iter().all(|&i| i >= 20),
        "{selection:?}"
    );
    // BALD needs class probabilities: an error, not a score.
    assert!(score_pool(&predictor, &sampler, &pool, &Bald, None, None).is_err());

    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(items()))
        .with_known_labels(|_: &Vec<f32>| 0u8);
    dataset.label_randomly(5).expect("labels");
    let mut active = ActiveLearningLoop::new(Variance, 4).expect("loop");
    let outcome = active.step(&mut dataset, &predictor).expect("step");
    assert_eq!(outcome.query.len(), 4);
    assert!(outcome.mean_uncertainty.expect("scored") > 0.0);
}

impl Trainable for Segmenter {
    type Target = Vec<usize>;

    fn training_loss(&self, input: Tensor<2>, targets: &[Vec<usize>]) -> Tensor<1> {
        segmentation_loss(self.head(input, &McContext::training()), targets)
    }

    fn check_target(&self, mask: &Vec<usize>) -> Result<(), String> {
        if mask.len() != POSITIONS || mask.iter().any(|&class| class >= 2) {
            return Err(format!(
                "expected {POSITIONS} classes below 2, got {mask:?}"
            ));
        }
        Ok(())
    }
}

impl Trainable for Regressor {
    type Target = Vec<f32>;

    fn training_loss(&self, input: Tensor<2>, targets: &[Vec<f32>]) -> Tensor<1> {
        regression_loss(self.head(input, &McContext::training()), targets)
    }

    fn check_target(&self, target: &Vec<f32>) -> Result<(), String> {
        match target.as_slice() {
            [value] if value.is_finite() => Ok(()),
            other => Err(format!("expected one finite value, got {other:?}")),
        }
    }
}

/// Each item's mask: position p is foreground when feature p exceeds feature p + 4.
fn mask_of(item: &[f32]) -> Vec<u8> {
    (0..POSITIONS)
        .map(|p| u8::from(item[p] > item[p + 4]))
        .collect()
}

#[test]
fn the_trainer_fits_a_segmentation_model_and_a_regression_model() {
    let _serial = serial();
    let device = Device::default();
    let config = TrainerConfig::new()
        .with_epochs(60)
        .with_batch_size(10)
        .with_optimizer(OptimizerConfig::adam(2e-2));

    // Segmentation: masks as labels, per-position cross-entropy.
    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(items()))
        .with_known_labels(|item: &Vec<f32>| mask_of(item));
    dataset.label_randomly(30).expect("labels");
    let mut trainer =
        Trainer::new(segmenter(&device), &device, batcher(), config.clone()).expect("trainer");
    let before = pixel_accuracy(&trainer.inference_model(), &device);
    let report = trainer.fit(&dataset.labelled()).expect("fit");
    let after = pixel_accuracy(&trainer.inference_model(), &device);
    eprintln!(
        "pixel accuracy {before:.3} -> {after:.3}, loss {:.4}",
        report.train_loss
    );
    assert!(after > 0.85 && after > before + 0.1, "{before} -> {after}");
    // The trained model goes to the segmentation predictor and the loop.
    let predictor = SegmentationPredictor {
        predictor: ModelPredictor {
            model: trainer.inference_model(),
            batcher: batcher(),
            device: device.clone(),
            batch_size: 16,
        },
        reduction: Reduction::Max,
    };
    let outcome = ActiveLearningLoop::new(Bald, 5)
        .expect("loop")
        .step(&mut dataset, &predictor)
        .expect("step");
    assert_eq!(outcome.query.len(), 5);
    // A mask of the wrong size is an error naming the item, before any training.
    let mut bad = ActiveLearningDataset::new(InMemDataset::new(items()))
        .with_known_labels(|_: &Vec<f32>| vec![0u8; 3]);
    bad.label_randomly(2).expect("labels");
    let error = trainer
        .fit(&bad.labelled())
        .expect_err("bad mask")
        .to_string();
    assert!(error.contains("expected 4 classes"), "{error}");

    // Regression: values as labels, mean squared error.
    let target = |item: &Vec<f32>| item.iter().sum::<f32>() / 4.0;
    let mut dataset =
        ActiveLearningDataset::new(InMemDataset::new(items())).with_known_labels(target);
    dataset.label_randomly(30).expect("labels");
    device.seed(6);
    let model = Regressor {
        dropout: McDropoutConfig::new(0.1).init().expect("dropout"),
        dense: LinearConfig::new(FEATURES, 1).init(&device),
    };
    let mut trainer = Trainer::new(model, &device, batcher(), config).expect("trainer");
    let error_of = |model: &Regressor| -> f32 {
        let predictor = RegressionPredictor(ModelPredictor {
            model: model.clone(),
            batcher: batcher(),
            device: device.clone(),
            batch_size: 40,
        });
        let sampler = McSamplerConfig::new(20).init().expect("sampler");
        let outputs = values(
            predictor
                .predict(&sampler, &InMemDataset::new(items()))
                .expect("predict")
                .mean_dim(2),
        );
        items()
            .iter()
            .zip(&outputs)
            .map(|(item, y)| (y - target(item)).powi(2))
            .sum::<f32>()
            / 40.0
    };
    let before = error_of(&trainer.inference_model());
    trainer.fit(&dataset.labelled()).expect("fit");
    let after = error_of(&trainer.inference_model());
    eprintln!("regression MSE {before:.4} -> {after:.4}");
    assert!(after < before / 4.0, "{before} -> {after}");
}

/// The share of positions whose MC-averaged class is the mask's, over the 40 items.
fn pixel_accuracy(model: &Segmenter, device: &Device) -> f64 {
    let predictor = SegmentationPredictor {
        predictor: ModelPredictor {
            model: model.clone(),
            batcher: batcher(),
            device: device.clone(),
            batch_size: 40,
        },
        reduction: Reduction::Mean,
    };
    let sampler = McSamplerConfig::new(10).init().expect("sampler");
    let probs = values(
        predictor
            .predict_segmentation(&sampler, &InMemDataset::new(items()))
            .expect("predict")
            .mean_dim(3),
    ); // [N, 2, P, 1]
    let mut correct = 0;
    for (n, item) in items().iter().enumerate() {
        let mask = mask_of(item);
        for (p, &class) in mask.iter().enumerate() {
            let foreground = probs[(n * 2 + 1) * POSITIONS + p];
            let background = probs[n * 2 * POSITIONS + p];
            correct += usize::from(u8::from(foreground > background) == class);
        }
    }
    correct as f64 / (items().len() * POSITIONS) as f64
}

/// A segmentation experiment of the segmenter on the 40 items (8 labelled, +4 a step by BALD
/// over the positions' mean), tested on the same items' masks, in `dir`.
fn segmentation_experiment(dir: &std::path::Path) -> Experiment<Segmenter, Vec<f32>, Vec<u8>> {
    segmentation_experiment_with(
        dir,
        Arc::new(|item: &Vec<f32>| mask_of(item).into_iter().map(usize::from).collect()),
    )
}

/// [`segmentation_experiment`] with the test items' targets from `test_target`.
fn segmentation_experiment_with(
    dir: &std::path::Path,
    test_target: TestTarget<Vec<f32>, Vec<usize>>,
) -> Experiment<Segmenter, Vec<f32>, Vec<u8>> {
    let device = Device::default();
    let config = TrainerConfig::new()
        .with_epochs(20)
        .with_batch_size(10)
        .with_optimizer(OptimizerConfig::adam(2e-2))
        .with_eval_iterations(4);
    let trainer = Trainer::new(segmenter(&device), &device, batcher(), config).expect("trainer");
    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(items()))
        .with_known_labels(|item: &Vec<f32>| mask_of(item))
        .with_seed(2);
    dataset.label_randomly(8).expect("labels");
    let active = ActiveLearningLoop::new(Bald, 4)
        .expect("loop")
        .with_iterations(6);
    let test: Arc<dyn Dataset<Vec<f32>>> = Arc::new(InMemDataset::new(items()));
    Experiment::segmentation(
        dir,
        trainer,
        active,
        dataset,
        test,
        test_target,
        Reduction::Mean,
    )
    .expect("experiment")
}

/// What a step measured: labels, pixel accuracy and mean IoU.
fn measured(records: &[StepRecord]) -> Vec<(usize, f64, f64)> {
    records
        .iter()
        .map(|r| (r.n_labelled, r.test_accuracy, r.metrics["mean_iou"]))
        .collect()
}

#[test]
fn a_segmentation_experiment_logs_mean_iou_and_resumes() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("temp dir");
    // A user's metric sees every position as an item: the positions counted.
    let whole = segmentation_experiment(&root.path().join("whole"))
        .with_metric("positions", |_, [n, _, _], _| n as f64)
        .expect("a new name")
        .with_max_steps(3)
        .run()
        .expect("runs");
    for record in &whole.records {
        assert_eq!(record.metrics["positions"], (40 * POSITIONS) as f64);
    }
    let steps = measured(&whole.records);
    assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), [8, 12, 16]);
    for (record, &(_, accuracy, iou)) in whole.records.iter().zip(&steps) {
        assert!((0.0..=1.0).contains(&accuracy) && (0.0..=1.0).contains(&iou));
        // Two classes: mean IoU is at most the pixel accuracy (IoU ≤ recall per class).
        assert!(iou <= accuracy + 1e-12, "{iou} > {accuracy}");
        assert!(record.test_nll.is_finite() && record.test_report.is_none());
        assert!(record.acquired_class_counts.is_empty());
    }
    // The masks are learnable: the trained model beats a coin at every position.
    assert!(steps[2].1 > 0.6, "{steps:?}");
    // The log holds mean IoU.
    let log = std::fs::read_to_string(root.path().join("whole/log.jsonl")).expect("log");
    assert_eq!(log.matches("\"mean_iou\"").count(), 3, "{log}");
    // Interrupted after 2 steps and resumed: the third step is the uninterrupted run's.
    let dir = root.path().join("resumed");
    segmentation_experiment(&dir)
        .run_steps(2)
        .expect("two steps");
    let resumed = segmentation_experiment(&dir)
        .with_max_steps(3)
        .run()
        .expect("runs");
    assert!(resumed.resumed);
    assert_eq!(measured(&resumed.records), steps);
    // Test targets of the wrong size are an error naming the item, not a panic.
    let err = segmentation_experiment_with(
        &root.path().join("bad"),
        Arc::new(|_: &Vec<f32>| vec![0; POSITIONS + 1]),
    )
    .run()
    .expect_err("5 targets for 4 positions")
    .to_string();
    assert!(err.contains("test item 0 has 5 target positions"), "{err}");
}

/// A regression experiment of the regressor on the 40 items (8 labelled, +4 a step by the
/// variance of its MC outputs), tested on the same items' targets, in `dir`.
fn regression_experiment(dir: &std::path::Path) -> Experiment<Regressor, Vec<f32>, f32> {
    let device = Device::default();
    device.seed(6);
    let model = Regressor {
        dropout: McDropoutConfig::new(0.1).init().expect("dropout"),
        dense: LinearConfig::new(FEATURES, 1).init(&device),
    };
    let config = TrainerConfig::new()
        .with_epochs(60)
        .with_batch_size(10)
        .with_optimizer(OptimizerConfig::adam(2e-2))
        .with_eval_iterations(8);
    let trainer = Trainer::new(model, &device, batcher(), config).expect("trainer");
    let target = |item: &Vec<f32>| item.iter().sum::<f32>() / 4.0;
    let mut dataset = ActiveLearningDataset::new(InMemDataset::new(items()))
        .with_known_labels(target)
        .with_seed(2);
    dataset.label_randomly(8).expect("labels");
    let active = ActiveLearningLoop::new(Variance, 4)
        .expect("loop")
        .with_iterations(6);
    let test: Arc<dyn Dataset<Vec<f32>>> = Arc::new(InMemDataset::new(items()));
    Experiment::regression(
        dir,
        trainer,
        active,
        dataset,
        test,
        Arc::new(move |item: &Vec<f32>| vec![target(item)]),
    )
    .expect("experiment")
}

#[test]
fn a_regression_experiment_logs_mse_and_resumes() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("temp dir");
    let whole = regression_experiment(&root.path().join("whole"))
        .with_max_steps(3)
        .run()
        .expect("runs");
    let mse: Vec<f64> = whole.records.iter().map(|r| r.test_loss).collect();
    assert_eq!(
        whole
            .records
            .iter()
            .map(|r| r.n_labelled)
            .collect::<Vec<_>>(),
        [8, 12, 16]
    );
    for record in &whole.records {
        assert_eq!(record.metrics["mse"], record.test_loss);
        assert!(record.test_nll.is_finite());
        assert!(record.test_accuracy.is_nan() && record.test_ece.is_nan());
        assert!(record.mean_uncertainty.is_none_or(|u| u >= 0.0));
    }
    // The targets are a linear function of the features: more labels, a small error.
    assert!(mse[2] < 0.5, "{mse:?}");
    // The log writes the missing metrics as null, and a resume reads them back.
    let log = std::fs::read_to_string(root.path().join("whole/log.jsonl")).expect("log");
    assert_eq!(log.matches("\"test_accuracy\":null").count(), 3, "{log}");
    let dir = root.path().join("resumed");
    regression_experiment(&dir).run_steps(2).expect("two steps");
    let resumed = regression_experiment(&dir)
        .with_max_steps(3)
        .run()
        .expect("runs");
    assert!(resumed.resumed);
    let again: Vec<f64> = resumed.records.iter().map(|r| r.test_loss).collect();
    assert_eq!(again, mse);
    // Users' metrics read class probabilities: refused for a regression, saying why.
    let Err(err) =
        regression_experiment(&root.path().join("metric")).with_metric("m", |_, _, _| 0.0)
    else {
        panic!("a metric of classes was accepted for a regression");
    };
    assert!(err.to_string().contains("regression"), "{err}");
    // Early stopping on the test loss (the MSE): an improvement of more than 10 never comes.
    let early = regression_experiment(&root.path().join("early"))
        .with_criterion(EarlyStopping {
            metric: Metric::TestLoss,
            patience: 1,
            min_delta: 10.0,
        })
        .with_max_steps(5)
        .run()
        .expect("runs");
    assert_eq!(early.records.len(), 2);
    assert!(
        early
            .stop_reason
            .expect("stopped")
            .contains("early stopping"),
        "stopped by the criterion"
    );
}
