//! The reproduction driver: summaries, argument checks, and a tiny run end to end on
//! Fashion-MNIST (skipped when the Debian package is not installed).

use std::path::{Path, PathBuf};

use baal::active::{HeuristicKind, StepRecord};
use baal::data::FashionMnist;
use baal_reproduce::{
    DatasetName, ModelKind, Profile, Results, SummaryMetric, labels_to_reach, reproduce,
    write_results,
};

fn record(step: usize, n_labelled: usize, test_accuracy: f64) -> StepRecord {
    StepRecord {
        step,
        n_labelled,
        test_accuracy,
        ..StepRecord::default()
    }
}

fn curve(points: &[(usize, f64)]) -> Vec<StepRecord> {
    points
        .iter()
        .enumerate()
        .map(|(step, &(n, a))| record(step, n, a))
        .collect()
}

/// [`reproduce`] on Fashion-MNIST from its default folder, on the CPU, without progress bars.
fn run(profile: &Profile, out: &Path, seed: u64) -> Result<String, baal_reproduce::Error> {
    run_dataset(DatasetName::FashionMnist, profile, out, seed)
}

/// [`run`] for another dataset.
fn run_dataset(
    dataset: DatasetName,
    profile: &Profile,
    out: &Path,
    seed: u64,
) -> Result<String, baal_reproduce::Error> {
    reproduce(dataset, profile, None, out, seed, "cpu", false)
}

/// Holds the device's global random generator for one training test: tests of one binary
/// run on parallel threads, and two runs seeding and drawing from the same generator at once
/// would each see the other's draws (the tiny run's "identical first step" failed so).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the Debian package's Fashion-MNIST is there; the tests that train say they did
/// not run when it is not (and fail where requirements are mandatory).
fn fashion_mnist_installed() -> bool {
    baal_test_support::require_dir(
        FashionMnist::DEFAULT_DIR,
        baal_test_support::FASHION_MNIST_INSTALL,
    )
    .is_some()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baal-reproduce-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn labels_to_reach_is_the_first_crossing() {
    let records = curve(&[(20, 0.50), (30, 0.76), (40, 0.74), (50, 0.80)]);
    assert_eq!(
        labels_to_reach(&records, SummaryMetric::Accuracy, 0.75),
        Some(30)
    );
    assert_eq!(
        labels_to_reach(&records, SummaryMetric::Accuracy, 0.80),
        Some(50)
    );
    assert_eq!(
        labels_to_reach(&records, SummaryMetric::Accuracy, 0.90),
        None
    );
}

#[test]
fn summary_counts_unreached_seeds_as_a_lower_bound() {
    let mut profile = Profile::for_dataset(DatasetName::FashionMnist, true);
    profile.heuristics = vec![HeuristicKind::Bald, HeuristicKind::Random];
    profile.targets = vec![0.75];
    profile.max_labelled = 40;
    profile.query_size = 10;
    let results = Results {
        runs: vec![
            (
                HeuristicKind::Bald,
                0,
                curve(&[(20, 0.6), (30, 0.8), (40, 0.8)]),
            ),
            (
                HeuristicKind::Bald,
                1,
                curve(&[(20, 0.6), (30, 0.7), (40, 0.8)]),
            ),
            (
                HeuristicKind::Random,
                0,
                curve(&[(20, 0.6), (30, 0.7), (40, 0.8)]),
            ),
            (
                HeuristicKind::Random,
                1,
                curve(&[(20, 0.6), (30, 0.6), (40, 0.7)]),
            ),
        ],
    };
    let dir = temp_dir("summary");
    let summary = write_results(
        &dir,
        DatasetName::FashionMnist,
        &profile,
        &results,
        60.0,
        "cpu",
    )
    .expect("written");
    // BALD: 30 and 40 labels. Random: 40, and a seed that never got there counts as 50.
    assert!(summary.contains("| bald | 35 ± 7 |"), "{summary}");
    assert!(
        summary.contains("| random | ≥ 45 (1/2 seeds reached) |"),
        "{summary}"
    );
    // Mean accuracy over the run: BALD (0.733 + 0.7) / 2, then final accuracy.
    assert!(
        summary.contains("0.717 ± 0.024 | 0.800 ± 0.000 |"),
        "{summary}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.md")).expect("summary.md"),
        summary
    );
    let csv = std::fs::read_to_string(dir.join("curves.csv")).expect("curves.csv");
    assert_eq!(csv.lines().count(), 1 + 12);
    assert!(dir.join("curves.svg").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn weights_need_the_vgg16_model() {
    let mut profile = Profile::for_dataset(DatasetName::FashionMnist, true);
    profile.weights = Some("vgg16-397923af.pth".into());
    let dir = temp_dir("weights");
    let err = run(&profile, &dir, 0).expect_err("small-cnn cannot take VGG16 weights");
    assert!(err.to_string().contains("vgg16"), "{err}");
    assert!(!dir.exists(), "nothing written before the check");
}

#[test]
fn missing_data_says_how_to_get_it() {
    let profile = Profile::for_dataset(DatasetName::FashionMnist, true);
    let dir = temp_dir("nodata");
    let err = reproduce(
        DatasetName::FashionMnist,
        &profile,
        Some(Path::new("/nonexistent/fashion")),
        &dir,
        0,
        "cpu",
        false,
    )
    .expect_err("no data");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/fashion"), "{message}");
    assert!(
        message.contains("apt-get install dataset-fashion-mnist"),
        "{message}"
    );
}

/// A profile that runs in seconds in a debug build.
fn tiny_profile() -> Profile {
    let mut profile = Profile::for_dataset(DatasetName::FashionMnist, true);
    profile.name = "tiny".into();
    profile.model = ModelKind::Mlp;
    profile.initial_labels = 20;
    profile.query_size = 10;
    profile.iterations = 4;
    profile.pool_subset = Some(60);
    profile.test_subset = 200;
    profile.max_labelled = 40;
    profile.heuristics = vec![HeuristicKind::Bald, HeuristicKind::Random];
    profile.seeds = 1;
    profile.targets = vec![0.5];
    profile.main_target = 0.5;
    profile.trainer = profile
        .trainer
        .clone()
        .with_epochs(2)
        .with_min_gradient_steps(10)
        .with_eval_iterations(2);
    profile
}

#[test]
fn a_tiny_reproduction_runs_resumes_and_refuses_another_profile() {
    let _serial = serial();
    if !fashion_mnist_installed() {
        return;
    }
    let dir = temp_dir("tiny");
    let profile = tiny_profile();
    let summary = run(&profile, &dir, 7).expect("runs");
    assert!(
        summary.contains("| bald |") && summary.contains("| random |"),
        "{summary}"
    );
    let csv = std::fs::read_to_string(dir.join("curves.csv")).expect("curves.csv");
    // Two heuristics, one seed, 20 → 30 → 40 labels.
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{csv}");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (seed, heuristic, labels, accuracy) = (
        column("seed"),
        column("heuristic"),
        column("n_labelled"),
        column("test_accuracy"),
    );
    for ((row, n), h) in rows
        .iter()
        .zip([20, 30, 40, 20, 30, 40])
        .zip(["bald", "bald", "bald", "random", "random", "random"])
    {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[seed], "7", "seed: {row}");
        assert_eq!(fields[heuristic], h, "heuristic: {row}");
        assert_eq!(fields[labels], n.to_string(), "labels: {row}");
        let value: f64 = fields[accuracy].parse().expect("accuracy");
        assert!((0.0..=1.0).contains(&value), "{row}");
    }
    // Same initial labels and weights for both heuristics: identical first step.
    assert_eq!(
        rows[0].split(',').nth(accuracy),
        rows[3].split(',').nth(accuracy)
    );
    // What the picks were: a class histogram of 10 labels and an accuracy, except on the
    // last step.
    let histogram = column("acquired_class_counts");
    let counts: Vec<usize> = rows[0]
        .split(',')
        .nth(histogram)
        .expect("counts")
        .split(' ')
        .map(|c| c.parse().expect("count"))
        .collect();
    assert_eq!((counts.len(), counts.iter().sum::<usize>()), (10, 10));
    assert!(
        rows[2]
            .split(',')
            .nth(histogram)
            .expect("counts")
            .is_empty()
    );
    assert!(dir.join("curves-vs-random.svg").is_file());

    // Running again reads the finished runs back instead of training again.
    let again = run(&profile, &dir, 7).expect("resumes");
    let csv_again = std::fs::read_to_string(dir.join("curves.csv")).expect("curves.csv");
    assert_eq!(csv_again, csv);
    let table = |s: &str| {
        s.lines()
            .filter(|l| l.starts_with("| bald") || l.starts_with("| random"))
            .take(2)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&again), table(&summary));

    // Fewer heuristics are the same runs: read back, not trained again.
    let mut fewer = tiny_profile();
    fewer.heuristics = vec![HeuristicKind::Random];
    run(&fewer, &dir, 7).expect("reuses the random run");
    let random_only = std::fs::read_to_string(dir.join("curves.csv")).expect("curves.csv");
    let random_rows: Vec<&str> = random_only.lines().skip(1).collect();
    assert_eq!(random_rows, rows[3..]);

    // Another profile under the same name is refused, not mixed in.
    let mut other = tiny_profile();
    other.query_size = 5;
    let err = run(&other, &dir, 7).expect_err("another profile");
    assert!(err.to_string().contains("another profile"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn repeated_fashion_mnist_triples_the_pool_with_noise_and_holds_out_validation() {
    if !fashion_mnist_installed() {
        return;
    }
    use baal::burn::data::dataset::Dataset;
    let mut profile = Profile::for_dataset(DatasetName::RepeatedFashionMnist, true);
    profile.pool_size = Some(50);
    profile.validation_size = 20;
    profile.test_subset = 100;
    let data = baal_reproduce::load_data(DatasetName::RepeatedFashionMnist, &profile, None)
        .expect("loads");
    assert_eq!(data.pool.len(), 150);
    assert_eq!((data.validation.len(), data.test.len()), (20, 100));
    assert_eq!(data.pool.labels()[..50], data.pool.labels()[100..]);
    let (a, b) = (
        data.pool.get(7).expect("item"),
        data.pool.get(57).expect("copy"),
    );
    assert_ne!(a.pixels, b.pixels, "each copy has its own noise");
    let gap: f32 = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        / a.pixels.len() as f32;
    // The difference of two copies has variance 2σ² = 0.02.
    assert!((gap - 0.02).abs() < 0.005, "{gap}");
    // The same split every time; no validation image is in the pool.
    let again = baal_reproduce::load_data(DatasetName::RepeatedFashionMnist, &profile, None)
        .expect("loads");
    assert_eq!(again.pool.get(7).expect("item"), a);
    let clean = Profile {
        validation_size: 20,
        pool_size: Some(50),
        test_subset: 100,
        ..Profile::for_dataset(DatasetName::FashionMnist, true)
    };
    let plain = baal_reproduce::load_data(DatasetName::FashionMnist, &clean, None).expect("loads");
    for v in 0..20 {
        let image = plain.validation.get(v).expect("validation").pixels;
        assert!((0..50).all(|p| plain.pool.get(p).expect("pool").pixels != image));
    }
}

#[test]
fn a_tiny_calibrated_ensemble_reproduction_reports_its_posterior_and_metrics() {
    let _serial = serial();
    if !fashion_mnist_installed() {
        return;
    }
    let dir = temp_dir("tiny-ensemble");
    let mut profile = tiny_profile();
    profile.name = "tiny-ensemble".into();
    profile.posterior = "ensemble:2".parse().expect("posterior");
    profile.calibration = Some(baal::active::DirichletCalibratorConfig::default());
    profile.validation_size = 100;
    profile.check().expect("valid");
    let summary = run(&profile, &dir, 3).expect("runs");
    assert!(
        summary.contains("Posterior `ensemble:2`: 2 models"),
        "{summary}"
    );
    assert!(
        summary.contains("## The final models' test metrics")
            && summary.contains("validation ECE before → after calibration"),
        "{summary}"
    );
    let csv = std::fs::read_to_string(dir.join("curves.csv")).expect("curves.csv");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    for row in csv.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        for name in [
            "test_macro_f1",
            "validation_ece_uncalibrated",
            "validation_ece_calibrated",
        ] {
            let value: f64 = fields[column(name)].parse().expect(name);
            assert!((0.0..=1.0).contains(&value), "{name}: {row}");
        }
    }
    // Two members' weights per step, trained in sequence: twice a single model's steps.
    let steps = column("train_steps");
    let first: usize = csv
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .nth(steps)
        .expect("steps")
        .parse()
        .expect("number");
    assert_eq!(first % 2, 0, "{csv}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_stopping_set_is_held_out_after_the_pool_and_reported() {
    let _serial = serial();
    if !fashion_mnist_installed() {
        return;
    }
    let mut profile = tiny_profile();
    profile.name = "tiny-stopping".into();
    profile.pool_size = Some(2000);
    profile.stopping_set = Some(100);
    profile.check().expect("valid");
    // The set comes after the pool in the same shuffle: the pool is the one without it.
    let with = baal_reproduce::load_data(DatasetName::FashionMnist, &profile, None).expect("loads");
    let mut plain = profile.clone();
    plain.stopping_set = None;
    let without =
        baal_reproduce::load_data(DatasetName::FashionMnist, &plain, None).expect("loads");
    assert_eq!(with.pool.labels(), without.pool.labels());
    assert_eq!(
        (
            with.stopping.labels().len(),
            without.stopping.labels().len()
        ),
        (100, 0)
    );
    let dir = temp_dir("tiny-stopping");
    let summary = run(&profile, &dir, 3).expect("runs");
    assert!(
        summary.contains("## Stopping without labels (prediction stability)")
            && summary.contains("on 100 held-out unlabelled images"),
        "{summary}"
    );
    for heuristic in ["bald", "random"] {
        for threshold in ["0.90", "0.95", "0.99"] {
            let row = format!("| {heuristic} | {threshold} | ");
            assert!(summary.contains(&row), "{row}: {summary}");
        }
    }
    assert!(
        summary.contains("| heuristic | first 3 steps | last 3 steps |"),
        "{summary}"
    );
    // Without one, no section; and a stopping set needs a pool size to be held out of.
    plain.name = "tiny-no-stopping".into();
    let dir_plain = temp_dir("tiny-no-stopping");
    let summary = run(&plain, &dir_plain, 3).expect("runs");
    assert!(!summary.contains("Stopping without labels"), "{summary}");
    let mut no_pool_size = profile.clone();
    no_pool_size.pool_size = None;
    let err = no_pool_size.check().expect_err("no pool size").to_string();
    assert!(err.contains("--pool-size"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dir_plain).ok();
}

/// Class counts of `labels`.
fn counts(labels: &[u8]) -> Vec<usize> {
    let mut counts = vec![0; 10];
    for &label in labels {
        counts[usize::from(label)] += 1;
    }
    counts
}

#[test]
fn a_tiny_imbalanced_reproduction_makes_classes_rare_and_reports_them() {
    let _serial = serial();
    if !fashion_mnist_installed() {
        return;
    }
    let imbalanced = DatasetName::FashionMnistImbalanced;
    let mut profile = tiny_profile();
    let default = Profile::for_dataset(imbalanced, true);
    profile.name = "tiny-imbalanced".into();
    profile.imbalance = default.imbalance.clone();
    profile.seed_per_class = Some(2);
    profile.metric = default.metric;
    profile.initial_labels = 10;
    profile.max_labelled = 50;
    profile.pool_subset = None;
    profile.pool_size = Some(2000);
    profile.heuristics = vec![HeuristicKind::Margin, HeuristicKind::Random];
    profile.check().expect("valid");

    // The pool: 2000 images, about 200 a class, the rare ones (2, 5, 8) cut to 1/50 of the
    // common classes' mean; the test subset stratified.
    let data = baal_reproduce::load_data(imbalanced, &profile, None).expect("loads");
    let pool = counts(data.pool.labels());
    let common: Vec<usize> = [0, 1, 3, 4, 6, 7, 9].iter().map(|&c| pool[c]).collect();
    let keep = (common.iter().sum::<usize>() as f64 / 7.0 / 50.0).round() as usize;
    assert_eq!((pool[2], pool[5], pool[8]), (keep, keep, keep), "{pool:?}");
    assert!(common.iter().all(|&n| n > 150), "{pool:?}");
    assert_eq!(counts(data.test.labels()), [20; 10]);

    let dir = temp_dir("tiny-imbalanced");
    let summary = run_dataset(imbalanced, &profile, &dir, 5).expect("runs");
    for part in [
        "with classes [2, 5, 8] cut to 1/50 of a common class",
        "2 initial labels of every class plus 10 random ones",
        "## Labels needed to reach a balanced accuracy",
        "## The rare classes ([2, 5, 8], 1/50 of a common class's items in the pool)",
        "## Labels to random's final balanced accuracy (per seed)",
        "| margin |",
    ] {
        assert!(summary.contains(part), "{part}: {summary}");
    }
    assert!(dir.join("rare-picks.svg").is_file());
    let csv = std::fs::read_to_string(dir.join("curves.csv")).expect("curves.csv");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|r| r.split(',').collect())
        .collect();
    // 30 initial labels (2 × 10 + 10), +10 a step to 50: 3 steps each.
    let labels: Vec<&str> = rows.iter().map(|r| r[column("n_labelled")]).collect();
    assert_eq!(labels, ["30", "40", "50", "30", "40", "50"]);
    for row in &rows {
        // On a test set with every class the same count, balanced accuracy is accuracy.
        let accuracy: f64 = row[column("test_accuracy")].parse().expect("accuracy");
        let balanced: f64 = row[column("test_balanced_accuracy")]
            .parse()
            .expect("balanced accuracy");
        assert!((accuracy - balanced).abs() < 1e-3, "{row:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
