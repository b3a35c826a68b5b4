//! Deep ensembles: a trainer of E members and the ensemble predictor that stacks them along
//! the MC axis, with and without MC sampling of each member.

use crate::common;

use std::sync::Arc;

use crate::common::{TinyMlp, batcher, dataset, fashion_slice, quick_config};
use baal_active::{
    ActiveLearningLoop, EnsemblePredictor, ModelPredictor, Posterior, Predictor, Trainer,
    TrainerConfig, initialised,
};
use baal_bayesian::{McSampler, McSamplerConfig};
use baal_data::ImageItem;
use baal_heuristics::{Bald, Heuristic, Predictions};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

fn values(tensor: Tensor<3>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32")
}

/// `count` members, member `e` initialised after `Device::seed(100 + e)`.
fn members(count: usize, device: &Device) -> Vec<TinyMlp> {
    (0..count)
        .map(|e| {
            device.seed(100 + e as u64);
            initialised(TinyMlp::new(device))
        })
        .collect()
}

fn predictor(model: TinyMlp) -> ModelPredictor<TinyMlp, ImageItem> {
    ModelPredictor {
        model,
        batcher: batcher(),
        device: Device::default(),
        batch_size: 16,
    }
}

/// Columns `columns` of `[N, C, T]` predictions.
fn columns(probs: &Tensor<3>, columns: std::ops::Range<usize>) -> Vec<f32> {
    values(probs.clone().narrow(2, columns.start, columns.len()))
}

#[test]
fn an_ensemble_trains_each_member_and_stacks_their_predictions() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(300, 0) else {
        return;
    };
    let pool: Vec<ImageItem> = (200..260).map(|i| train.get(i).expect("item")).collect();
    let pool = InMemDataset::new(pool);
    let mut labelled = dataset(train, 4);
    labelled.label_randomly(100).expect("labels");
    let device = Device::default();
    let config = quick_config().with_eval_batch_size(16);
    let mut ensemble =
        Trainer::ensemble(members(3, &device), &device, batcher(), config.clone()).expect("ok");
    let report = ensemble.fit(&labelled.labelled()).expect("fit");
    assert_eq!(ensemble.members().len(), 3);
    // 3 members × ⌈40 steps / 4 per pass⌉ passes of 4 steps.
    assert_eq!(report.gradient_steps, 3 * 40);

    // The first member trains exactly as a single model from the same weights would.
    let mut single =
        Trainer::new(members(1, &device).remove(0), &device, batcher(), config).expect("ok");
    single.fit(&labelled.labelled()).expect("fit");
    let sampler = McSamplerConfig::new(7)
        .with_seed(5)
        .init()
        .expect("sampler");
    assert_eq!(
        values(single.predict(&sampler, &pool).expect("predict")),
        values(
            predictor(ensemble.members()[0].valid())
                .predict(&sampler, &pool)
                .expect("predict")
        ),
        "the single model and member 0 differ"
    );

    // Without MC sampling: [N, C, E], column e is member e's deterministic prediction.
    let probs = ensemble.predict(&sampler, &pool).expect("predict");
    assert_eq!(probs.dims(), [60, 10, 3]);
    let off = sampler.deterministic();
    for (e, member) in ensemble.members().iter().enumerate() {
        let alone = predictor(member.valid())
            .predict(&off, &pool)
            .expect("predict");
        assert_eq!(columns(&probs, e..e + 1), values(alone), "member {e}");
    }
    assert_ne!(
        columns(&probs, 0..1),
        columns(&probs, 1..2),
        "members differ"
    );
    // The members disagree: a pure ensemble gives BALD scores above zero.
    let bald = Bald
        .scores(
            &Predictions::from_probs(probs.clone()).expect("probs"),
            None,
        )
        .expect("scores");
    assert!(bald.iter().all(|s| *s >= 0.0) && bald.iter().any(|s| *s > 1e-3));

    // Streamed in windows of 16 items, with the sampler's item keys: the same predictions.
    let mut streamed = Vec::new();
    let mut ranges = Vec::new();
    ensemble
        .predict_chunks(&sampler, &pool, &mut |range, chunk| {
            ranges.push(range);
            streamed.push(chunk);
            Ok(())
        })
        .expect("chunks");
    assert_eq!(ranges, [0..16, 16..32, 32..48, 48..60]);
    assert_eq!(values(Tensor::cat(streamed, 0)), values(probs));
}

#[test]
fn ensemble_members_can_also_sample_their_mc_layers() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(120, 0) else {
        return;
    };
    let pool = InMemDataset::new((0..30).map(|i| train.get(i).expect("item")).collect());
    let device = Device::default();
    let models = members(2, &device);
    let keys: Arc<[usize]> = (500..530).collect();
    let sampler = McSamplerConfig::new(4)
        .with_seed(9)
        .init()
        .expect("sampler")
        .with_item_keys(Some(keys));
    let ensemble = EnsemblePredictor::new(models.iter().cloned().map(predictor).collect())
        .expect("members")
        .with_mc(true)
        .with_window(7);
    let probs = ensemble.predict(&sampler, &pool).expect("predict");
    assert_eq!(probs.dims(), [30, 10, 8]);
    for (e, model) in models.into_iter().enumerate() {
        // Member e's MC samples of the whole pool, keyed the same: columns e·T .. (e+1)·T.
        let alone = predictor(model).predict(&sampler, &pool).expect("predict");
        let (mine, theirs) = (columns(&probs, e * 4..(e + 1) * 4), values(alone));
        assert_eq!(mine.len(), theirs.len());
        for (i, (a, b)) in mine.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-6, "member {e}, entry {i}: {a} vs {b}");
        }
    }
}

#[test]
fn an_ensemble_saves_and_loads_all_its_members() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(150, 0) else {
        return;
    };
    let pool = InMemDataset::new((100..130).map(|i| train.get(i).expect("item")).collect());
    let mut labelled = dataset(train, 5);
    labelled.label_randomly(60).expect("labels");
    let device = Device::default();
    let mut ensemble = Trainer::ensemble(members(2, &device), &device, batcher(), quick_config())
        .expect("ok")
        .with_ensemble_mc(true);
    ensemble.fit(&labelled.labelled()).expect("fit");
    let sampler: McSampler = McSamplerConfig::new(3).init().expect("sampler");
    let before = values(ensemble.predict(&sampler, &pool).expect("predict"));
    assert_eq!(before.len(), 30 * 10 * 6);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ensemble.bpk");
    ensemble.save_weights(&path).expect("save");
    ensemble.reset_weights();
    assert_ne!(
        values(ensemble.predict(&sampler, &pool).expect("predict")),
        before
    );
    ensemble.load_weights(&path).expect("load");
    assert_eq!(
        values(ensemble.predict(&sampler, &pool).expect("predict")),
        before
    );
    // A single model's file is not an ensemble's.
    let single_path = dir.path().join("single.bpk");
    Trainer::new(TinyMlp::new(&device), &device, batcher(), quick_config())
        .expect("ok")
        .save_weights(&single_path)
        .expect("save");
    assert!(ensemble.load_weights(&single_path).is_err());
}

#[test]
fn an_ensemble_ranks_a_pool_in_the_loop_and_bad_ensembles_are_errors() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(200, 0) else {
        return;
    };
    let mut labelled = dataset(train, 6);
    labelled.label_randomly(50).expect("labels");
    let device = Device::default();
    let posterior: Posterior = "ensemble:3".parse().expect("posterior");
    let mut ensemble = Trainer::ensemble(
        members(posterior.members(), &device),
        &device,
        batcher(),
        quick_config(),
    )
    .expect("ok")
    .with_ensemble_mc(posterior.samples_members());
    ensemble.fit(&labelled.labelled()).expect("fit");
    let mut active = ActiveLearningLoop::new(Bald, 10).expect("loop");
    let outcome = active.step(&mut labelled, &ensemble).expect("step");
    assert_eq!(outcome.query.len(), 10);
    assert!(outcome.mean_uncertainty.expect("scored") > 0.0);
    assert_eq!(labelled.n_labelled(), 60);

    let error = Trainer::<TinyMlp, ImageItem>::ensemble(
        Vec::new(),
        &device,
        batcher(),
        TrainerConfig::default(),
    )
    .err()
    .expect("no member")
    .to_string();
    assert!(error.contains("at least one member"), "{error}");
    let error = EnsemblePredictor::<ModelPredictor<TinyMlp, ImageItem>>::new(Vec::new())
        .err()
        .expect("no member")
        .to_string();
    assert!(error.contains("at least one member"), "{error}");
    let empty = InMemDataset::<ImageItem>::new(Vec::new());
    let sampler = McSamplerConfig::new(2).init().expect("sampler");
    assert!(ensemble.predict(&sampler, &empty).is_err());
}
