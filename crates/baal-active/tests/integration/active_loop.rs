//! The loop end to end on a slice of Fashion-MNIST with a tiny model: training, MC prediction,
//! ranking, labelling, checkpoints, and the human-labelling path.

use crate::common;

use crate::common::{TinyMlp, dataset, fashion_slice, quick_config, test_label, trainer};
use baal_active::{
    ActiveLearningLoop, CallbackOracle, HeuristicKind, PendingQueue, Predictor, Trainer,
};
use baal_data::{ActiveLearningDataset, DatasetIndex, ImageItem};
use baal_heuristics::{Bald, BatchBald, Entropy, Epig, Heuristic, StochasticSampling};
use burn::data::dataset::Dataset;

fn check_step(
    active: &mut ActiveLearningLoop<ImageItem, u8>,
    dataset: &mut ActiveLearningDataset<ImageItem, u8>,
    trainer: &Trainer<TinyMlp, ImageItem>,
    query: usize,
) {
    let before = dataset.labelled_dataset_indices();
    let n = dataset.n_labelled();
    let outcome = active.step(dataset, trainer).expect("step");
    assert_eq!(outcome.query.len(), query);
    assert!(outcome.labelled && outcome.can_continue);
    assert_eq!(dataset.n_labelled(), n + query);
    for index in &outcome.query {
        assert!(!before.contains(index), "{index} was labelled already");
        assert!(dataset.is_labelled(*index).expect("in range"));
    }
}

#[test]
fn loop_trains_queries_and_labels_on_fashion_mnist() {
    let _serial = crate::common::serial();
    let Some((train, test)) = fashion_slice(1000, 300) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let checkpoint = dir.path().join("dataset.json");
    let mut dataset = dataset(train, 1);
    dataset.label_randomly(20).expect("initial labels");
    let mut trainer = trainer(quick_config().with_min_gradient_steps(200));
    let mut active = ActiveLearningLoop::new(Bald, 10)
        .expect("valid loop")
        .with_iterations(10)
        .with_max_sample(300)
        .with_checkpoint(&checkpoint);
    let before = trainer.evaluate(test.as_ref(), &test_label).expect("eval");
    for _ in 0..3 {
        let report = trainer.fit(&dataset.labelled()).expect("fit");
        assert!(report.train_loss.is_finite());
        assert!(report.gradient_steps >= 40);
        check_step(&mut active, &mut dataset, &trainer, 10);
    }
    assert_eq!(dataset.n_labelled(), 50);
    trainer.fit(&dataset.labelled()).expect("fit");
    let after = trainer.evaluate(test.as_ref(), &test_label).expect("eval");
    // 50 labels teach a linear-ish model far more than chance (10%) and than its random start.
    assert!(after.accuracy > 0.4, "accuracy {}", after.accuracy);
    assert!(
        after.accuracy > before.accuracy + 0.15,
        "{before:?} -> {after:?}"
    );
    assert!(after.nll < before.nll);
    assert!((0.0..=1.0).contains(&after.ece));
    // The checkpoint holds the last run state: a fresh dataset and loop resume from it.
    let (train_again, _) = fashion_slice(1000, 0).expect("data");
    let mut restored = common::dataset(train_again, 1);
    let mut resumed = ActiveLearningLoop::new(Bald, 10)
        .expect("valid loop")
        .with_checkpoint(&checkpoint);
    assert!(resumed.resume(&mut restored).expect("checkpoint loads"));
    assert_eq!(resumed.steps(), 3);
    assert_eq!(
        restored.labelled_dataset_indices(),
        dataset.labelled_dataset_indices()
    );
}

#[test]
fn every_kind_of_heuristic_runs_in_the_loop() {
    let _serial = crate::common::serial();
    let Some((train, test)) = fashion_slice(400, 50) else {
        return;
    };
    let mut dataset = dataset(train, 2);
    dataset.label_randomly(20).expect("initial labels");
    let mut trainer = trainer(quick_config().with_min_gradient_steps(10));
    trainer.fit(&dataset.labelled()).expect("fit");
    let heuristics: Vec<Box<dyn Heuristic>> = vec![
        Box::new(Entropy),
        Box::new(BatchBald::new(5)),
        Box::new(StochasticSampling::power(Bald, 1.0, 3).expect("valid")),
    ];
    for heuristic in heuristics {
        let mut active = ActiveLearningLoop::new(heuristic, 5)
            .expect("valid loop")
            .with_iterations(8)
            .with_max_sample(100);
        check_step(&mut active, &mut dataset, &trainer, 5);
    }
    for &kind in HeuristicKind::ALL {
        let mut active = ActiveLearningLoop::from_kind(kind, 5, 9)
            .expect("valid loop")
            .with_iterations(8)
            .with_max_sample(100)
            .with_target(test.clone());
        check_step(&mut active, &mut dataset, &trainer, 5);
    }
    // EPIG without a target set is a clear error, and labels nothing.
    let n = dataset.n_labelled();
    let mut active = ActiveLearningLoop::new(Epig, 5)
        .expect("valid loop")
        .with_iterations(4)
        .with_max_sample(50);
    let err = active.step(&mut dataset, &trainer).expect_err("no target");
    assert!(err.to_string().contains("target"), "{err}");
    assert_eq!(dataset.n_labelled(), n);
}

#[test]
fn pending_queue_returns_the_query_for_a_person() {
    let _serial = crate::common::serial();
    let Some((train, _)) = fashion_slice(200, 0) else {
        return;
    };
    let mut dataset = dataset(train, 3);
    dataset.label_randomly(10).expect("initial labels");
    let mut trainer = trainer(quick_config().with_min_gradient_steps(5));
    trainer.fit(&dataset.labelled()).expect("fit");
    let mut active = ActiveLearningLoop::new(Bald, 4)
        .expect("valid loop")
        .with_iterations(4)
        .with_oracle(PendingQueue);
    let outcome = active.step(&mut dataset, &trainer).expect("step");
    assert_eq!(outcome.query.len(), 4);
    assert!(!outcome.labelled && !outcome.can_continue);
    assert_eq!(dataset.n_labelled(), 10, "nothing labelled yet");
    // The person labels them later.
    let labels: Vec<(DatasetIndex, u8)> = outcome.query.iter().map(|&i| (i, 3)).collect();
    dataset.label_many_with(labels).expect("labels recorded");
    assert_eq!(dataset.n_labelled(), 14);
    // A callback oracle labels in the step; its refusal is an error that labels nothing.
    let mut active = ActiveLearningLoop::new(Bald, 2)
        .expect("valid loop")
        .with_iterations(4)
        .with_oracle(CallbackOracle(|query: &[DatasetIndex]| {
            Ok(query.iter().map(|&i| (i, 1u8)).collect())
        }));
    assert!(active.step(&mut dataset, &trainer).expect("step").labelled);
    assert_eq!(dataset.n_labelled(), 16);
    let mut active = ActiveLearningLoop::new(Bald, 2)
        .expect("valid loop")
        .with_iterations(4)
        .with_oracle(CallbackOracle(|_: &[DatasetIndex]| {
            Err::<Vec<(DatasetIndex, u8)>, _>("labeller offline".to_string())
        }));
    let err = active.step(&mut dataset, &trainer).expect_err("refused");
    assert!(err.to_string().contains("labeller offline"));
    assert_eq!(dataset.n_labelled(), 16);
}

#[test]
fn trainer_predicts_mc_probabilities_and_refuses_bad_input() {
    let _serial = crate::common::serial();
    let Some((train, test)) = fashion_slice(100, 20) else {
        return;
    };
    let mut trainer = trainer(quick_config());
    let sampler = baal_bayesian::McSamplerConfig::new(6)
        .init()
        .expect("sampler");
    let probs = trainer.predict(&sampler, test.as_ref()).expect("predict");
    assert_eq!(probs.dims(), [20, 10, 6]);
    let sums = probs.sum_dim(1).try_into_vec_as::<f32>().expect("read");
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4));
    // No labels: a clear error, not a panic.
    let empty = dataset(train, 0);
    let err = trainer.fit(&empty.labelled()).expect_err("empty");
    assert!(err.to_string().contains("labelled set is empty"), "{err}");
    // Bad configs are refused.
    let device = burn::tensor::Device::default();
    let bad = quick_config().with_batch_size(0);
    assert!(Trainer::new(TinyMlp::new(&device), &device, common::batcher(), bad).is_err());
    let _ = test.len();
}
