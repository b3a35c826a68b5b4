//! Experiments: logs, resumption after an interruption, and every stopping criterion.

use std::path::Path;

use crate::common::{TinyMlp, dataset, fashion_slice, quick_config, test_label, trainer};
use baal_active::{
    ActiveLearningLoop, EarlyStopping, Experiment, ExperimentSummary, HeuristicKind,
    LabellingBudget, LowAverageUncertainty, Metric, PredictionStability, StepRecord, TrainerConfig,
};
use baal_data::{DatasetIndex, ImageItem};

fn experiment(
    dir: &Path,
    kind: HeuristicKind,
    config: TrainerConfig,
) -> Option<Experiment<TinyMlp, ImageItem, u8>> {
    let (train, test) = fashion_slice(600, 100)?;
    let mut dataset = dataset(train, 5);
    dataset.label_randomly(10).expect("initial labels");
    let active = ActiveLearningLoop::from_kind(kind, 5, 11)
        .expect("valid loop")
        .with_iterations(5)
        .with_max_sample(200)
        .with_seed(13);
    Some(
        Experiment::new(
            dir,
            trainer(config),
            active,
            dataset,
            test,
            std::sync::Arc::new(test_label),
        )
        .expect("experiment"),
    )
}

fn labelled(experiment: &Experiment<TinyMlp, ImageItem, u8>) -> Vec<DatasetIndex> {
    experiment.dataset().labelled_dataset_indices()
}

fn config() -> TrainerConfig {
    quick_config().with_min_gradient_steps(10).with_epochs(1)
}

#[test]
fn resumes_an_interrupted_experiment_without_repeating_steps() {
    let _serial = crate::common::serial();
    let root = tempfile::tempdir().expect("temp dir");
    let (whole, interrupted) = (root.path().join("whole"), root.path().join("interrupted"));
    let budget = LabellingBudget { max_labelled: 30 };
    let Some(first) = experiment(&whole, HeuristicKind::Random, config()) else {
        return;
    };
    let reference = first.with_criterion(budget).run().expect("run");
    assert_eq!(
        reference
            .records
            .iter()
            .map(|r| r.n_labelled)
            .collect::<Vec<_>>(),
        [10, 15, 20, 25, 30]
    );
    assert!(
        reference
            .stop_reason
            .as_deref()
            .is_some_and(|r| r.contains("budget"))
    );

    // Two steps, then the process "dies".
    let mut run = experiment(&interrupted, HeuristicKind::Random, config())
        .expect("data")
        .with_criterion(budget);
    let partial = run.run_steps(2).expect("two steps");
    assert_eq!(partial.records.len(), 2);
    assert!(partial.stop_reason.is_none());
    drop(run);
    // A crash after the log lines of a third step but before its state: a stray line.
    let jsonl = interrupted.join("log.jsonl");
    let mut text = std::fs::read_to_string(&jsonl).expect("log");
    text.push_str("{\"step\": 2, \"half written\n");
    std::fs::write(&jsonl, text).expect("write");

    let mut resumed = experiment(&interrupted, HeuristicKind::Random, config())
        .expect("data")
        .with_criterion(budget);
    assert!(resumed.resumed());
    assert_eq!(resumed.records().len(), 2);
    let summary: ExperimentSummary = resumed.run().expect("resumed run");
    let steps: Vec<usize> = summary.records.iter().map(|r| r.step).collect();
    assert_eq!(steps, [0, 1, 2, 3, 4], "no step repeated or skipped");
    // Same seeds, same continuation: the same items were labelled in the same steps.
    assert_eq!(labelled(&resumed), {
        let whole = experiment(&whole, HeuristicKind::Random, config()).expect("data");
        labelled(&whole)
    });
    assert_eq!(summary.records[..2], partial.records[..]);
    // The logs hold one line per step, the stray line gone, and the plot exists.
    let lines: Vec<StepRecord> = std::fs::read_to_string(&jsonl)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a whole record per line"))
        .collect();
    assert_eq!(lines.len(), summary.records.len());
    for (line, record) in lines.iter().zip(&summary.records) {
        assert_eq!(
            (line.step, line.n_labelled),
            (record.step, record.n_labelled)
        );
        assert!((line.test_accuracy - record.test_accuracy).abs() < 1e-12);
        // Each step logs the test set's classification report: 10 classes, whose supports
        // add up to the test set, and top-k accuracies that grow with k from the accuracy.
        let report = line.test_report.as_ref().expect("a report");
        assert_eq!(report.classes.len(), 10);
        let support: usize = report.classes.iter().map(|c| c.support).sum();
        let recalled: f64 = report
            .classes
            .iter()
            .map(|c| c.recall * c.support as f64)
            .sum();
        assert!((recalled / support as f64 - line.test_accuracy).abs() < 1e-9);
        let top: Vec<f64> = report.top_k_accuracy.iter().map(|(_, a)| *a).collect();
        assert!(line.test_accuracy <= top[0] && top[0] <= top[1], "{top:?}");
    }
    let csv = std::fs::read_to_string(interrupted.join("log.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 5);
    assert!(csv.starts_with("step,n_labelled,heuristic,train_loss,test_loss,test_accuracy"));
    let svg = std::fs::read_to_string(interrupted.join("curve.svg")).expect("svg");
    assert!(svg.contains("<svg") && svg.contains("polyline"));

    // A finished experiment does nothing more.
    let mut again = experiment(&interrupted, HeuristicKind::Random, config())
        .expect("data")
        .with_criterion(budget);
    assert_eq!(again.run().expect("finished").records.len(), 5);

    // Another heuristic in the same folder is refused.
    let (train, test) = fashion_slice(600, 100).expect("data");
    let err = Experiment::new(
        &interrupted,
        trainer(config()),
        ActiveLearningLoop::from_kind(HeuristicKind::Bald, 5, 11).expect("valid loop"),
        dataset(train, 5),
        test,
        std::sync::Arc::new(test_label),
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("random"), "{err}");
}

#[test]
fn resume_restores_weights_when_training_continues() {
    let _serial = crate::common::serial();
    let root = tempfile::tempdir().expect("temp dir");
    let keep = config().with_reset_weights(false);
    let Some(run) = experiment(root.path(), HeuristicKind::Bald, keep.clone()) else {
        return;
    };
    let mut run = run.with_max_steps(3);
    run.run_steps(2).expect("two steps");
    let weights: Vec<_> = std::fs::read_dir(root.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".bpk"))
        .collect();
    assert_eq!(
        weights,
        ["model-step1.bpk"],
        "only the latest weights are kept"
    );
    drop(run);
    let mut resumed = experiment(root.path(), HeuristicKind::Bald, keep)
        .expect("data")
        .with_max_steps(3);
    let summary = resumed.run().expect("resumed");
    assert_eq!(summary.records.len(), 3);
    assert!(summary.stop_reason.expect("stopped").contains("step limit"));
}

#[test]
fn every_stopping_criterion_stops_an_experiment() {
    let _serial = crate::common::serial();
    let root = tempfile::tempdir().expect("temp dir");
    // Budget.
    let Some(run) = experiment(&root.path().join("budget"), HeuristicKind::Bald, config()) else {
        return;
    };
    let summary = run
        .with_criterion(LabellingBudget { max_labelled: 20 })
        .run()
        .expect("run");
    assert_eq!(summary.records.last().expect("records").n_labelled, 20);
    assert_eq!(summary.records.last().expect("records").n_queried, 0);
    assert!(summary.stop_reason.expect("stopped").contains("budget"));

    // Low uncertainty: any BALD value is below 10 nats, so it stops after the first query.
    let summary = experiment(
        &root.path().join("uncertainty"),
        HeuristicKind::Bald,
        config(),
    )
    .expect("data")
    .with_criterion(LowAverageUncertainty { threshold: 10.0 })
    .run()
    .expect("run");
    assert_eq!(summary.records.len(), 2);
    assert!(
        summary.records[0]
            .mean_uncertainty
            .is_some_and(|u| u < 10.0)
    );
    assert!(
        summary
            .stop_reason
            .expect("stopped")
            .contains("uncertainty")
    );
    // Random has no uncertainty: the criterion never fires, the budget does.
    let summary = experiment(&root.path().join("random"), HeuristicKind::Random, config())
        .expect("data")
        .with_criterion(LowAverageUncertainty { threshold: 10.0 })
        .with_criterion(LabellingBudget { max_labelled: 20 })
        .run()
        .expect("run");
    assert_eq!(summary.records.len(), 3);

    // Early stopping: an improvement of more than 100% accuracy never comes.
    let summary = experiment(&root.path().join("early"), HeuristicKind::Entropy, config())
        .expect("data")
        .with_criterion(EarlyStopping {
            metric: Metric::TestAccuracy,
            patience: 2,
            min_delta: 1.0,
        })
        .run()
        .expect("run");
    assert_eq!(summary.records.len(), 3);
    assert!(
        summary
            .stop_reason
            .expect("stopped")
            .contains("early stopping")
    );

    // The step limit.
    let summary = experiment(&root.path().join("steps"), HeuristicKind::Entropy, config())
        .expect("data")
        .with_max_steps(2)
        .run()
        .expect("run");
    assert_eq!(summary.records.len(), 2);

    // An exhausted pool: 600 items, 590 to label at 5 a step would take long, so use a
    // tiny pool instead.
    let (train, test) = fashion_slice(14, 10).expect("data");
    let mut small = dataset(train, 1);
    small.label_randomly(10).expect("labels");
    let summary = Experiment::new(
        root.path().join("exhausted"),
        trainer(config()),
        ActiveLearningLoop::from_kind(HeuristicKind::Bald, 3, 0)
            .expect("valid loop")
            .with_iterations(3),
        small,
        test,
        std::sync::Arc::new(test_label),
    )
    .expect("experiment")
    .run()
    .expect("run");
    assert_eq!(
        summary
            .records
            .iter()
            .map(|r| r.n_labelled)
            .collect::<Vec<_>>(),
        [10, 13, 14]
    );
    assert!(summary.stop_reason.expect("stopped").contains("exhausted"));
}

#[test]
fn prediction_stability_stops_without_labels_and_survives_a_resume() {
    let _serial = crate::common::serial();
    let root = tempfile::tempdir().expect("temp dir");
    // Images of the test split, never labelled, as the stopping set.
    let Some((_, held_out)) = fashion_slice(600, 200) else {
        return;
    };
    let agreements = |records: &[StepRecord]| -> Vec<Option<f64>> {
        records.iter().map(|r| r.prediction_agreement).collect()
    };
    // Every kappa is at least -1: it stops at the first step that has one to compare, the
    // second.
    let summary = experiment(&root.path().join("any"), HeuristicKind::Bald, config())
        .expect("data")
        .with_stopping_set(held_out.clone())
        .with_criterion(PredictionStability::new(1, -1.0).expect("valid"))
        .run()
        .expect("run");
    assert_eq!(summary.records.len(), 2);
    assert_eq!(summary.records[0].prediction_agreement, None);
    let kappa = summary.records[1].prediction_agreement.expect("compared");
    assert!((-1.0..=1.0).contains(&kappa), "{kappa}");
    assert!(summary.stop_reason.expect("stopped").contains("stable"));
    // Interrupted after 2 steps and resumed, the third step compares with the second's
    // predictions (saved with the run) as an uninterrupted run does.
    let whole = experiment(&root.path().join("whole"), HeuristicKind::Bald, config())
        .expect("data")
        .with_stopping_set(held_out.clone())
        .with_max_steps(3)
        .run()
        .expect("run");
    let dir = root.path().join("resumed");
    experiment(&dir, HeuristicKind::Bald, config())
        .expect("data")
        .with_stopping_set(held_out.clone())
        .run_steps(2)
        .expect("two steps");
    let resumed = experiment(&dir, HeuristicKind::Bald, config())
        .expect("data")
        .with_stopping_set(held_out.clone())
        .with_max_steps(3)
        .run()
        .expect("run");
    assert!(agreements(&whole.records)[1..].iter().all(Option::is_some));
    assert_eq!(agreements(&resumed.records), agreements(&whole.records));
    // Resumed with another stopping set: an error that says so, not a kappa of other items.
    let dir = root.path().join("switched");
    experiment(&dir, HeuristicKind::Bald, config())
        .expect("data")
        .with_stopping_set(held_out.clone())
        .run_steps(1)
        .expect("one step");
    let (_, other) = fashion_slice(600, 150).expect("data");
    let err = experiment(&dir, HeuristicKind::Bald, config())
        .expect("data")
        .with_stopping_set(other)
        .run_steps(1)
        .expect_err("another set");
    assert!(err.to_string().contains("stopping set"), "{err}");
    // Without a set nothing is compared, and nothing is written to the log.
    let plain = experiment(&root.path().join("plain"), HeuristicKind::Bald, config())
        .expect("data")
        .with_max_steps(2)
        .run()
        .expect("run");
    assert_eq!(agreements(&plain.records), [None, None]);
    let log = std::fs::read_to_string(root.path().join("plain/log.jsonl")).expect("log");
    assert!(!log.contains("prediction_agreement"), "{log}");
}

/// Accuracy of the MC-averaged predictions, worked out here from what a metric is given.
fn accuracy_by_hand(probs: &[f32], [n, c, t]: [usize; 3], labels: &[usize]) -> f64 {
    let mean = |item: usize, class: usize| -> f32 {
        (0..t)
            .map(|s| probs[(item * c + class) * t + s])
            .sum::<f32>()
            / t as f32
    };
    let right = (0..n)
        .filter(|&item| {
            let best = (0..c)
                .max_by(|&a, &b| mean(item, a).total_cmp(&mean(item, b)))
                .expect("classes");
            best == labels[item]
        })
        .count();
    right as f64 / n as f64
}

#[test]
fn users_metrics_are_computed_on_the_test_predictions_and_logged_each_step() {
    let _serial = crate::common::serial();
    let root = tempfile::tempdir().expect("temp dir");
    let Some(run) = experiment(&root.path().join("metrics"), HeuristicKind::Bald, config()) else {
        return;
    };
    let summary = run
        .with_metric("accuracy_by_hand", accuracy_by_hand)
        .expect("new name")
        .with_metric("test_items", |_, [n, _, _], _| n as f64)
        .expect("new name")
        .with_max_steps(2)
        .run()
        .expect("run");
    for record in &summary.records {
        // The metric saw the predictions the built-in accuracy was computed from.
        assert!(
            (record.metrics["accuracy_by_hand"] - record.test_accuracy).abs() < 1e-9,
            "{:?} vs {}",
            record.metrics,
            record.test_accuracy
        );
        assert_eq!(record.metrics["test_items"], 100.0);
    }
    let log = std::fs::read_to_string(root.path().join("metrics/log.jsonl")).expect("log");
    let lines: Vec<StepRecord> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("a record"))
        .collect();
    assert_eq!(lines[1].metrics, summary.records[1].metrics);
    // Names are unique and non-empty.
    for (first, second) in [("a", "a"), ("a", "")] {
        let Err(err) = experiment(&root.path().join("bad"), HeuristicKind::Bald, config())
            .expect("data")
            .with_metric(first, |_, _, _| 0.0)
            .expect("first")
            .with_metric(second, |_, _, _| 0.0)
        else {
            panic!("{second:?} after {first:?} was accepted");
        };
        assert!(err.to_string().contains("metric name"), "{err}");
    }
}

/// An experiment whose queries wait for a person ([`PendingQueue`]), on `dataset`.
fn pending_experiment(
    dir: &Path,
    dataset: baal_data::ActiveLearningDataset<ImageItem, u8>,
    test: std::sync::Arc<dyn burn::data::dataset::Dataset<ImageItem>>,
) -> Experiment<TinyMlp, ImageItem, u8> {
    let active = ActiveLearningLoop::from_kind(HeuristicKind::Random, 4, 11)
        .expect("valid loop")
        .with_iterations(3)
        .with_max_sample(100)
        .with_oracle(baal_active::PendingQueue);
    Experiment::new(
        dir,
        trainer(config()),
        active,
        dataset,
        test,
        std::sync::Arc::new(test_label),
    )
    .expect("experiment")
}

#[test]
fn labels_given_while_a_query_waits_are_kept_and_the_run_goes_on() {
    let _serial = crate::common::serial();
    let root = tempfile::tempdir().expect("temp dir");
    let Some((train, test)) = fashion_slice(300, 50) else {
        return;
    };
    let items: Vec<ImageItem> = {
        use burn::data::dataset::Dataset;
        train.iter().collect::<Result<_, _>>().expect("items")
    };
    let truth = |index: DatasetIndex| items[index.get()].label;
    let initial = || {
        let mut d = dataset(burn::data::dataset::InMemDataset::new(items.clone()), 5);
        d.label_randomly(10).expect("initial labels");
        d
    };
    let mut run = pending_experiment(root.path(), initial(), test.clone());
    let summary = run.run().expect("run");
    assert_eq!(
        summary.stop_reason.as_deref(),
        Some("the query waits for labels")
    );
    let pending = run.pending().to_vec();
    assert_eq!(pending.len(), 4);

    // Through the experiment: a label for an item not asked about changes nothing.
    let not_pending = run.dataset().labelled_dataset_indices()[0];
    assert!(run.label([(not_pending, 1)]).is_err());
    assert_eq!(run.dataset().n_labelled(), 10);
    run.label(pending[..2].iter().map(|&i| (i, truth(i))))
        .expect("two labels");
    assert_eq!(run.pending(), &pending[2..]);
    drop(run);

    // The process restarts; meanwhile a person labelled the rest in the dataset it is given.
    let mut given = initial();
    given
        .label_many_with(pending[2..].iter().map(|&i| (i, truth(i))))
        .expect("labels given meanwhile");
    let mut resumed = pending_experiment(root.path(), given, test.clone());
    assert!(resumed.resumed());
    assert!(resumed.pending().is_empty());
    assert_eq!(resumed.dataset().n_labelled(), 14, "no label is lost");
    for &index in &pending {
        assert_eq!(
            resumed.dataset().label_of(index).expect("in range"),
            Some(&truth(index))
        );
    }
    // The query is answered: the run goes on with a step on 14 labels.
    let summary = resumed.run_steps(1).expect("next step");
    assert_eq!(summary.records.last().expect("a step").n_labelled, 14);
    drop(resumed);

    // A label for an item nobody queried is refused on resume, not silently dropped.
    let mut stray = initial();
    let unqueried = (0..300)
        .map(DatasetIndex::new)
        .find(|&i| !stray.is_labelled(i).expect("in range") && !pending.contains(&i))
        .expect("an unlabelled item");
    stray.label_many_with([(unqueried, 0)]).expect("label");
    let root2 = tempfile::tempdir().expect("temp dir");
    let mut first = pending_experiment(root2.path(), initial(), test.clone());
    first.run().expect("run");
    drop(first);
    let err = Experiment::new(
        root2.path(),
        trainer(config()),
        ActiveLearningLoop::from_kind(HeuristicKind::Random, 4, 11)
            .expect("valid loop")
            .with_iterations(3)
            .with_max_sample(100)
            .with_oracle(baal_active::PendingQueue),
        stray,
        test,
        std::sync::Arc::new(test_label),
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("pending query"), "{err}");
}
