//! Heuristics with joint terms (BatchBALD, EPIG) get consistent MC samples in the loop: MC
//! iteration `t` is one network for every pool and target item.

use crate::common;

use std::sync::Arc;

use crate::common::{TinyMlp, dataset, fashion_slice, quick_config, trainer};
use baal_active::{ActiveLearningLoop, ModelPredictor, Predictor, Trainer};
use baal_bayesian::{McContext, McSamplerConfig, StochasticModel};
use baal_data::{DatasetIndex, ImageItem};
use baal_heuristics::{Bald, BatchBald, Epig, Heuristic, Predictions};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::Tensor;

/// A model trained on 40 labels of `train`.
fn trained(train: &InMemDataset<ImageItem>) -> Trainer<TinyMlp, ImageItem> {
    let items: Vec<ImageItem> = (0..train.len())
        .map(|i| train.get(i).expect("item"))
        .collect();
    let mut labelled = dataset(InMemDataset::new(items), 5);
    labelled.label_randomly(40).expect("labels");
    let mut trainer = trainer(quick_config().with_min_gradient_steps(60));
    trainer.fit(&labelled.labelled()).expect("fit");
    trainer
}

fn items_of(set: &dyn Dataset<ImageItem>) -> Vec<ImageItem> {
    (0..set.len()).map(|i| set.get(i).expect("item")).collect()
}

fn sampler(consistent: bool) -> baal_bayesian::McSampler {
    McSamplerConfig::new(20)
        .with_seed(4)
        .with_consistent(consistent)
        .init()
        .expect("sampler")
}

/// The trained model with its logits scaled by 1000: each network is certain, so the
/// posterior's uncertainty is disagreement between networks (epistemic), the regime where a
/// copy's label teaches nothing new. With softer predictions a second label of the same input
/// still informs (`I(y, y'; ω) = I(y; ω) + I(y'; ω | y)`, and the second term vanishes only
/// when every `p(y | ω_t)` is one-hot).
struct Sharp(TinyMlp);

impl StochasticModel for Sharp {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        self.0.trunk(input)
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.0.head(features, mc) * 1000.0
    }
}

fn sharp(trainer: &Trainer<TinyMlp, ImageItem>) -> ModelPredictor<Sharp, ImageItem> {
    ModelPredictor {
        model: Sharp(trainer.inference_model()),
        batcher: common::batcher(),
        device: trainer.inference_device(),
        batch_size: 64,
    }
}

/// The batch mutual information of `[item, its copy]`, with the first pick's.
fn pair_information(
    predictor: &dyn Predictor<ImageItem>,
    item: &ImageItem,
    consistent: bool,
) -> (f32, f32) {
    let pair = InMemDataset::new(vec![item.clone(), item.clone()]);
    let probs = predictor
        .predict(&sampler(consistent), &pair)
        .expect("predict");
    let selection = BatchBald::new(2)
        .select(&Predictions::from_probs(probs).expect("valid"), None, 2)
        .expect("select");
    (selection.scores[0], selection.scores[1])
}

/// How many items of `query` are the second copy of an item also in it (copies are 100
/// apart).
fn copies_picked(query: &[DatasetIndex]) -> usize {
    let mut originals: Vec<usize> = query.iter().map(|i| i.get() % 100).collect();
    originals.sort_unstable();
    originals.dedup();
    query.len() - originals.len()
}

#[test]
fn a_copy_adds_no_information_and_batch_bald_never_picks_both() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(300, 0) else {
        return;
    };
    let trainer = trained(&train);
    let predictor = sharp(&trainer);
    let base = items_of(&train)[200..300].to_vec();
    let base_set = InMemDataset::new(base.clone());
    // The most uncertain items, where it matters most.
    let bald = Bald
        .rank(
            &Predictions::from_probs(predictor.predict(&sampler(true), &base_set).expect("p"))
                .expect("valid"),
            None,
        )
        .expect("rank");
    for &position in &bald.positions()[..5] {
        let (single, pair) = pair_information(&predictor, &base[position], true);
        assert!(single > 0.1, "item {position} is not uncertain: {single}");
        // One network per iteration for both copies: I(y, y'; ω) = I(y; ω), but for the odd
        // network whose top two logits nearly tie and so keeps a little aleatoric entropy.
        assert!(
            (pair - single).abs() < 0.05 * single,
            "item {position}: the pair holds {pair} nats, one copy {single}"
        );
        // Per-item samples make the copy look like a second, independent item.
        let (single, pair) = pair_information(&predictor, &base[position], false);
        assert!(
            pair > single * 1.3,
            "per-item samples: pair {pair}, one copy {single}"
        );
    }

    // A pool holding every item twice: positions i and i + 100.
    let doubled = [base.clone(), base].concat();
    let mut pool = dataset(InMemDataset::new(doubled), 6);
    // Enough networks that ten picks do not exhaust what they can tell apart (the batch's
    // information is at most ln T).
    let mut active = ActiveLearningLoop::new(BatchBald::new(10), 10)
        .expect("valid loop")
        .with_iterations(200);
    let outcome = active.step(&mut pool, &predictor).expect("step");
    assert!(outcome.consistent_samples);
    assert_eq!(outcome.query.len(), 10);
    assert_eq!(
        copies_picked(&outcome.query),
        0,
        "BatchBALD picked both copies of an item: {:?}",
        outcome.query
    );
    // BALD does not need consistent samples, and the loop does not force them on it.
    let mut bald_loop = ActiveLearningLoop::new(Bald, 10)
        .expect("valid loop")
        .with_iterations(4);
    assert!(
        !bald_loop
            .step(&mut pool, &predictor)
            .expect("step")
            .consistent_samples
    );
}

#[test]
fn epig_in_the_loop_uses_one_set_of_networks_for_pool_and_target() {
    let _serial = common::serial();
    let Some((train, test)) = fashion_slice(400, 60) else {
        return;
    };
    let trainer = trained(&train);
    let pool_items = items_of(&train)[300..400].to_vec();
    let target_items = items_of(test.as_ref());
    let target: Arc<dyn Dataset<ImageItem>> = Arc::new(InMemDataset::new(target_items.clone()));
    let mut pool = dataset(InMemDataset::new(pool_items.clone()), 7);
    // The loop's first step samples with seed 0.
    let mut active = ActiveLearningLoop::new(Epig, 8)
        .expect("valid loop")
        .with_iterations(20)
        .with_target(target);
    let outcome = active.step(&mut pool, &trainer).expect("step");
    assert!(outcome.consistent_samples);

    // Pool and target predicted in one pass: the same networks for both by construction.
    let together = InMemDataset::new([pool_items, target_items].concat());
    let shared = McSamplerConfig::new(20)
        .with_seed(0)
        .with_consistent(true)
        .init()
        .expect("sampler");
    let probs: Tensor<3> = trainer.predict(&shared, &together).expect("predict");
    let pool_probs = Predictions::from_probs(probs.clone().narrow(0, 0, 100)).expect("valid");
    let target_probs = Predictions::from_probs(probs.narrow(0, 100, 60)).expect("valid");
    let expected = Epig
        .select(&pool_probs, Some(&target_probs), 8)
        .expect("select");
    let expected: Vec<DatasetIndex> = expected
        .positions
        .iter()
        .map(|&i| DatasetIndex::new(i))
        .collect();
    assert_eq!(outcome.query, expected);
    let scores = Epig
        .scores(&pool_probs, Some(&target_probs))
        .expect("scores");
    let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len() as f64;
    let in_loop = outcome.mean_uncertainty.expect("EPIG scores the pool");
    assert!((in_loop - mean).abs() < 1e-5, "{in_loop} vs {mean}");
}
