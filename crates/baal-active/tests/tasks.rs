//! Segmentation and regression models through `score_pool` and the loop.

use std::sync::Arc;

use baal_active::{
    ActiveLearningLoop, InputBatcher, Predictor, RegressionPredictor, SegmentationPredictor,
    score_pool,
};
use baal_bayesian::{McContext, McDropout, McDropoutConfig, McSamplerConfig, StochasticModel};
use baal_data::ActiveLearningDataset;
use baal_heuristics::{Bald, Entropy, Epig, Heuristic, Predictions, Reduction, Variance};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};

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
    let device = Device::default();
    let pool = InMemDataset::new(items());
    let sampler = McSamplerConfig::new(6)
        .with_seed(1)
        .init()
        .expect("sampler");
    let mut predictor = SegmentationPredictor {
        model: segmenter(&device),
        batcher: batcher(),
        device: device.clone(),
        batch_size: 16,
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
    let device = Device::default();
    device.seed(5);
    let predictor = RegressionPredictor {
        model: Regressor {
            dropout: McDropoutConfig::new(0.5).init().expect("dropout"),
            dense: LinearConfig::new(FEATURES, 1).init(&device),
        },
        batcher: batcher(),
        device: device.clone(),
        batch_size: 16,
    };
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
        selection.pool_indices.iter().all(|&i| i >= 20),
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
