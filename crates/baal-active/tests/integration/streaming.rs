//! The loop scores the pool while it is predicted, chunk by chunk, and queries what it would
//! query from the whole pool's predictions; an item's MC samples follow its dataset index.

use crate::common;

use crate::common::{TinyMlp, dataset, fashion_slice};
use baal_active::{ActiveLearningLoop, ModelPredictor, Predictor, UncertaintyStep};
use baal_bayesian::McSampler;
use baal_data::{DatasetIndex, ImageItem};
use baal_heuristics::HeuristicKind;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::{Device, Tensor};

/// A predictor that predicts the whole pool at once (the trait's default `predict_chunks`).
struct Whole<'a>(&'a ModelPredictor<TinyMlp, ImageItem>);

impl Predictor<ImageItem> for Whole<'_> {
    fn predict(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<ImageItem>,
    ) -> baal_active::Result<Tensor<3>> {
        self.0.predict(sampler, items)
    }
}

fn predictor(batch_size: usize) -> ModelPredictor<TinyMlp, ImageItem> {
    let device = Device::default();
    device.seed(11);
    ModelPredictor {
        model: TinyMlp::new(&device),
        batcher: common::batcher(),
        device,
        batch_size,
    }
}

/// The slice with 30 random labels, the same for every call.
fn labelled(train: &InMemDataset<ImageItem>) -> baal_data::ActiveLearningDataset<ImageItem, u8> {
    let items = (0..train.len())
        .map(|i| train.get(i).expect("item"))
        .collect();
    let mut data = dataset(InMemDataset::new(items), 4);
    data.label_randomly(30).expect("labels");
    data
}

/// The queries of two steps of `kind`, with the pool streamed through `predictor`.
fn queries(
    train: &InMemDataset<ImageItem>,
    kind: HeuristicKind,
    predictor: &dyn Predictor<ImageItem>,
    candidates: usize,
) -> Vec<Vec<DatasetIndex>> {
    let mut data = labelled(train);
    let mut active = ActiveLearningLoop::from_kind(kind, 6, 2)
        .expect("loop")
        .with_iterations(6)
        .with_seed(5)
        .with_candidates(candidates);
    (0..2)
        .map(|_| active.step(&mut data, predictor).expect("step").query)
        .collect()
}

#[test]
fn a_streamed_pool_gives_the_queries_of_the_whole_pool() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(150, 0) else {
        return;
    };
    let streamed = predictor(16);
    let whole = Whole(&streamed);
    for kind in [
        HeuristicKind::Bald,
        HeuristicKind::Entropy,
        HeuristicKind::Margin,
        HeuristicKind::PowerBald,
        HeuristicKind::BatchBald,
    ] {
        // Every pool item is a BatchBALD candidate: the selection is the whole pool's.
        let chunked = queries(&train, kind, &streamed, 150);
        let at_once = queries(&train, kind, &whole, 150);
        assert_eq!(chunked, at_once, "{kind:?}");
        assert_eq!(chunked[0].len(), 6);
    }
}

#[test]
fn batch_bald_picks_among_its_candidates_in_the_loop() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(150, 0) else {
        return;
    };
    let streamed = predictor(16);
    // 6 picks from 12 candidates, the best 12 of the pool's 120 items by BALD.
    let few = queries(&train, HeuristicKind::BatchBald, &streamed, 12);
    let mut data = labelled(&train);
    let mut bald = ActiveLearningLoop::from_kind(HeuristicKind::Bald, 12, 2)
        .expect("loop")
        .with_iterations(6)
        .with_seed(5)
        .with_consistent_samples(true);
    let top_bald = bald.step(&mut data, &streamed).expect("step").query;
    assert!(
        few[0].iter().all(|index| top_bald.contains(index)),
        "{:?} not among BALD's top 12 {top_bald:?}",
        few[0]
    );
    // Fewer candidates than the query is refused before anything is predicted.
    let mut data = dataset(InMemDataset::new(vec![train.get(0).expect("item")]), 4);
    let mut active = ActiveLearningLoop::from_kind(HeuristicKind::BatchBald, 6, 2)
        .expect("loop")
        .with_candidates(3);
    let error = active.step(&mut data, &streamed).expect_err("refused");
    assert!(error.to_string().contains("candidates"), "{error}");
}

#[test]
fn an_uncertainty_folder_logs_what_each_step_scored_and_chose() {
    let _serial = common::serial();
    let Some((train, _)) = fashion_slice(150, 0) else {
        return;
    };
    let folder = tempfile::tempdir().expect("tempdir");
    let streamed = predictor(16);
    let mut data = labelled(&train);
    let mut active = ActiveLearningLoop::from_kind(HeuristicKind::Bald, 6, 2)
        .expect("loop")
        .with_iterations(6)
        .with_uncertainty_folder(folder.path());
    let queries: Vec<Vec<DatasetIndex>> = (0..2)
        .map(|_| active.step(&mut data, &streamed).expect("step").query)
        .collect();
    let steps = UncertaintyStep::read_all(folder.path()).expect("logs");
    assert_eq!(steps.len(), 2);
    for (step, (log, query)) in steps.iter().zip(&queries).enumerate() {
        assert_eq!(log.step, step as u64);
        assert_eq!(log.heuristic, "bald");
        assert!(log.higher_is_more_informative);
        assert_eq!(log.indices.len(), 120 - 6 * step, "the pool of step {step}");
        assert_eq!(&log.chosen, query);
        // The query is the top of the logged scores.
        let mut order: Vec<usize> = (0..log.scores.len()).collect();
        order.sort_by(|&a, &b| log.scores[b].total_cmp(&log.scores[a]).then(a.cmp(&b)));
        let top: Vec<DatasetIndex> = order[..6].iter().map(|&i| log.indices[i]).collect();
        assert_eq!(&top, query);
    }
    // Step 1 no longer scores what step 0 chose.
    assert!(queries[0].iter().all(|i| !steps[1].indices.contains(i)));
    // A damaged log is an error that names the file.
    let chosen = UncertaintyStep::dir(folder.path(), 1).join("chosen.npy");
    std::fs::remove_file(&chosen).expect("rm");
    let error = UncertaintyStep::read_all(folder.path()).expect_err("damaged");
    assert!(error.to_string().contains("chosen.npy"), "{error}");
}
