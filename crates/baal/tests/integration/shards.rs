//! Sharded scoring through the real binary: 4 `baal predict` processes and `baal merge` give
//! exactly the selection of one process; a missing, repeated, mismatched or altered shard is
//! an error that names it.

use std::path::{Path, PathBuf};
use std::process::Command;

use baal_active::Classifier;
use baal_data::formats::npy::encode_raw;
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};

use crate::support::{baal, failure, ok};

/// Saves a freshly initialised model's weights (a trained model's would do the same).
struct Save(PathBuf);

impl ModelVisitor for Save {
    type Output = ();

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) {
        model.save_file(&self.0).expect("weights saved");
    }
}

/// A pool of 90 random 28×28 grey images and the weights of a small CNN for it.
fn fixtures(dir: &Path) -> (PathBuf, PathBuf) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let pixels: Vec<u8> = (0..90 * 28 * 28).map(|_| rng.random()).collect();
    let pool = dir.join("pool.npy");
    std::fs::write(&pool, encode_raw("|u1", &[90, 28, 28], &pixels)).expect("pool");
    let weights = dir.join("small-cnn.bpk");
    let device = Device::default();
    device.seed(5);
    ModelKind::SmallCnn
        .build([1, 28, 28], 10, &device, Save(weights.clone()))
        .expect("model");
    (pool, weights)
}

/// `baal predict` of `shard` with the fixtures' settings (and `extra` options) into `out`.
fn predict_args(
    pool: &Path,
    weights: &Path,
    heuristic: &str,
    shard: &str,
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "predict",
        pool.to_str().expect("utf-8"),
        "--num-classes",
        "10",
        "--model",
        "small-cnn",
        "--weights",
        weights.to_str().expect("utf-8"),
        "--heuristic",
        heuristic,
        "--query-size",
        "5",
        "--candidates",
        "12",
        "--iterations",
        "6",
        "--batch-size",
        "8",
        "--shard",
        shard,
        "--output",
        out.to_str().expect("utf-8"),
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_string()));
    args
}

#[test]
fn four_shard_processes_merge_into_the_single_process_selection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pool, weights) = fixtures(dir.path());
    for heuristic in ["bald", "batch-bald", "entropy"] {
        let sharded = dir.path().join(format!("{heuristic}-sharded"));
        // The 4 shards run as 4 processes at once, as a cluster's tasks would.
        let children: Vec<_> = (0..4)
            .map(|i| {
                Command::new(env!("CARGO_BIN_EXE_baal"))
                    .args(predict_args(
                        &pool,
                        &weights,
                        heuristic,
                        &format!("{i}/4"),
                        &sharded.join(format!("shard-{i}")),
                        &[],
                    ))
                    .output()
                    .expect("spawn")
            })
            .collect();
        for child in &children {
            ok(child);
        }
        let single = dir.path().join(format!("{heuristic}-single"));
        let args = predict_args(&pool, &weights, heuristic, "0/1", &single, &[]);
        ok(&baal(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        let merged = ok(&baal(&["merge", sharded.to_str().expect("utf-8")]));
        let alone = ok(&baal(&["merge", single.to_str().expect("utf-8")]));
        eprintln!("{heuristic}: 4 shards {}", merged.trim());
        eprintln!("{heuristic}: 1 process {}", alone.trim());
        let merged: serde_json::Value = serde_json::from_str(&merged).expect("JSON");
        let alone: serde_json::Value = serde_json::from_str(&alone).expect("JSON");
        assert_eq!(merged["query"], alone["query"], "{heuristic}");
        assert_eq!(merged["scores"], alone["scores"], "{heuristic}");
        assert_eq!(merged["shards"], 4);
        assert_eq!(merged["query"].as_array().map(Vec::len), Some(5));
    }
}

/// The rows of an `[N, D]` `.npy` file.
fn npy_rows(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let mut rows = baal_data::formats::npy::NpyRows::open(path).expect("opens");
    let shape = rows.shape().to_vec();
    let values = rows.read_f32(shape[0]).expect("reads").expect("rows");
    (shape, values)
}

#[test]
fn embed_writes_the_pools_embeddings_and_coreset_selects_from_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pool, weights) = fixtures(dir.path());
    let embed = |batch: &str, out: &Path| {
        let args = [
            "embed",
            pool.to_str().expect("utf-8"),
            "--num-classes",
            "10",
            "--model",
            "small-cnn",
            "--weights",
            weights.to_str().expect("utf-8"),
            "--batch-size",
            batch,
            "--output",
            out.to_str().expect("utf-8"),
        ];
        let report: serde_json::Value =
            serde_json::from_str(&ok(&baal(&args))).expect("JSON report");
        assert_eq!(
            (report["items"].as_u64(), report["dim"].as_u64()),
            (Some(90), Some(128))
        );
        npy_rows(out)
    };
    let first = dir.path().join("e7.npy");
    let (shape, values) = embed("7", &first);
    assert_eq!(shape, [90, 128]);
    // After a relu, dropout off: finite, non-negative, not all zero.
    assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!(values.iter().any(|&v| v > 0.0));
    // Each item's row whatever the batch it was in.
    let (_, again) = embed("64", &dir.path().join("e64.npy"));
    for (a, b) in values.iter().zip(&again) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
    }
    // Coreset from the file alone (no predictions): 5 distinct pool items.
    let e = first.to_str().expect("utf-8");
    let run = ok(&baal(&[
        "score",
        "--heuristic",
        "coreset",
        "--query-size",
        "5",
        "--embeddings",
        e,
    ]));
    let report: serde_json::Value = serde_json::from_str(&run).expect("JSON");
    let mut ranks: Vec<u64> = report["ranks"]
        .as_array()
        .expect("ranks")
        .iter()
        .map(|r| r.as_u64().expect("index"))
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    assert!(
        ranks.len() == 5 && ranks.iter().all(|&r| r < 90),
        "{ranks:?}"
    );
    // BADGE reads the predictions' MC average: without the file, an error that says so.
    let stderr = failure(&baal(&[
        "score",
        "--heuristic",
        "badge",
        "--query-size",
        "5",
        "--embeddings",
        e,
    ]));
    assert!(stderr.contains("predictions file"), "{stderr}");
    // Weights of another model are refused with the file's name.
    let stderr = failure(&baal(&[
        "embed",
        pool.to_str().expect("utf-8"),
        "--num-classes",
        "10",
        "--model",
        "gal-cnn",
        "--weights",
        weights.to_str().expect("utf-8"),
        "--output",
        dir.path().join("bad.npy").to_str().expect("utf-8"),
    ]));
    assert!(stderr.contains("small-cnn.bpk"), "{stderr}");
    assert!(!dir.path().join("bad.npy").exists());
}

#[test]
fn heuristics_that_select_by_embeddings_are_refused_for_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pool, weights) = fixtures(dir.path());
    for heuristic in ["coreset", "badge"] {
        let out = dir.path().join(format!("{heuristic}.json"));
        let args = predict_args(&pool, &weights, heuristic, "0/2", &out, &[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = failure(&baal(&args));
        assert!(stderr.contains("baal score --embeddings"), "{stderr}");
        assert!(!out.exists());
    }
}

#[test]
fn missing_repeated_mismatched_and_altered_shards_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pool, weights) = fixtures(dir.path());
    let shard = |i: usize, extra: &[&str]| {
        let out = dir.path().join(format!("shard-{i}{}", extra.join("")));
        let args = predict_args(&pool, &weights, "bald", &format!("{i}/3"), &out, extra);
        ok(&baal(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        out
    };
    let s: Vec<PathBuf> = (0..3).map(|i| shard(i, &[])).collect();
    let path = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    let merge = |dirs: &[&PathBuf]| {
        let mut args = vec!["merge".to_string()];
        args.extend(dirs.iter().map(|d| path(d)));
        baal(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    ok(&merge(&[&s[0], &s[1], &s[2]]));
    let error = failure(&merge(&[&s[0], &s[2]]));
    assert!(error.contains("shard 1/3 of the 3 is missing"), "{error}");
    let error = failure(&merge(&[&s[0], &s[1], &s[1], &s[2]]));
    assert!(error.contains("given twice"), "{error}");
    let other_seed = shard(1, &["--seed", "9"]);
    let error = failure(&merge(&[&s[0], &other_seed, &s[2]]));
    assert!(error.contains("differ in heuristic seed"), "{error}");
    assert!(error.contains(&path(&other_seed)), "{error}");
    // A byte changed in a shard's scores: the checksum catches it.
    let scores = s[2].join("scores.npy");
    let mut bytes = std::fs::read(&scores).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&scores, bytes).expect("write");
    let error = failure(&merge(&[&s[0], &s[1], &s[2]]));
    assert!(error.contains("checksum"), "{error}");
    assert!(error.contains(&path(&s[2])), "{error}");
    // Bad shard specifications and `auto` without a scheduler are errors too.
    let out = dir.path().join("bad");
    for (spec, needle) in [
        ("3/3", "below the count"),
        ("1-of-3", "I/N"),
        ("auto", "JOB_COMPLETION_INDEX"),
    ] {
        let args = predict_args(&pool, &weights, "bald", spec, &out, &[]);
        let output = Command::new(env!("CARGO_BIN_EXE_baal"))
            .args(&args)
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("BAAL_SHARD_INDEX")
            .output()
            .expect("run");
        let error = failure(&output);
        assert!(error.contains(needle), "{spec}: {error}");
    }
    // `auto` reads a SLURM array task's index.
    let output = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(predict_args(&pool, &weights, "bald", "auto", &out, &[]))
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .expect("run");
    ok(&output);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    assert_eq!(manifest["shard"]["index"], 2);
}

#[test]
fn a_folder_of_images_is_scored_in_shards_like_a_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, weights) = fixtures(dir.path());
    let folder = dir.path().join("photos");
    std::fs::create_dir_all(folder.join("7")).expect("mkdir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    for i in 0..14 {
        let pixels: Vec<u8> = (0..20 * 20).map(|_| rng.random()).collect();
        image::GrayImage::from_raw(20, 20, pixels)
            .expect("image")
            .save(folder.join(format!("img-{i:02}.png")))
            .expect("png");
    }
    // A labelled image of class 7: it names a class and is not scored.
    image::GrayImage::from_pixel(20, 20, image::Luma([9]))
        .save(folder.join("7").join("seed.png"))
        .expect("png");
    let run = |shard: &str, out: &Path| {
        let mut args = predict_args(&folder, &weights, "bald", shard, out, &[]);
        args.extend(
            ["--channels", "1", "--image-size", "28"]
                .iter()
                .map(|s| (*s).to_string()),
        );
        ok(&baal(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    };
    let sharded = dir.path().join("sharded");
    run("0/2", &sharded.join("a"));
    run("1/2", &sharded.join("b"));
    let single = dir.path().join("single");
    run("0/1", &single);
    let merged: serde_json::Value =
        serde_json::from_str(&ok(&baal(&["merge", sharded.to_str().expect("utf-8")])))
            .expect("JSON");
    let alone: serde_json::Value =
        serde_json::from_str(&ok(&baal(&["merge", single.to_str().expect("utf-8")])))
            .expect("JSON");
    assert_eq!(merged["query"], alone["query"]);
    assert_eq!(merged["scores"], alone["scores"]);
    assert_eq!(merged["pool_len"], 14, "the top-level files only");
}
