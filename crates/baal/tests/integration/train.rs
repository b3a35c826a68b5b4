//! `baal train` through the real binary: it writes a model folder that `baal predict
//! --model-dir` scores a pool with and `baal merge` selects from; a folder it would overwrite,
//! data without labels, and a model folder that is corrupt or made for other data are errors
//! (exit 2) that name the file.

use std::path::{Path, PathBuf};
use std::process::Output;

use rand::{Rng, SeedableRng};

use crate::support::{self, baal, ok};

/// The one-line message of a run refused as bad input.
fn failure(output: &Output) -> String {
    let stderr = support::failure(output);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

pub(crate) fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

const CLASSES: [&str; 3] = ["bright", "dark", "stripes"];
const SIDE: u32 = 16;

/// A 16×16 grey image of `class` (0 bright, 1 dark, 2 horizontal stripes), with noise.
pub(crate) fn image_of(class: usize, rng: &mut impl Rng) -> image::GrayImage {
    image::GrayImage::from_fn(SIDE, SIDE, |_, y| {
        let noise: u8 = rng.random_range(0..40);
        image::Luma([match class {
            0 => 215 + noise,
            1 => noise,
            _ if y % 2 == 0 => 215 + noise,
            _ => noise,
        }])
    })
}

/// A folder of 20 labelled images of each class in class sub-folders and 30 unlabelled ones
/// at its top level.
pub(crate) fn image_folder(dir: &Path) -> PathBuf {
    let folder = dir.join("photos");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for (class, name) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(folder.join(name)).expect("mkdir");
        for i in 0..20 {
            image_of(class, &mut rng)
                .save(folder.join(name).join(format!("{i:02}.png")))
                .expect("png");
        }
    }
    for i in 0..30 {
        image_of(i % 3, &mut rng)
            .save(folder.join(format!("pool-{i:02}.png")))
            .expect("png");
    }
    folder
}

/// `baal train` on `folder` at 16×16 grey, with `extra` options.
pub(crate) fn train(folder: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        text(folder),
        "--image-size",
        "16",
        "--channels",
        "1",
        "--output",
        text(output),
    ];
    args.extend_from_slice(extra);
    baal(&args)
}

/// `baal predict` of the whole `folder` with the model folder `model` into `out`.
fn predict(folder: &Path, model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "predict",
        text(folder),
        "--model-dir",
        text(model),
        "--heuristic",
        "bald",
        "--query-size",
        "5",
        "--iterations",
        "4",
        "--output",
        text(out),
    ];
    args.extend_from_slice(extra);
    baal(&args)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

#[test]
fn train_writes_a_model_folder_that_predict_and_merge_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = image_folder(dir.path());
    let model = dir.path().join("model");
    let stdout = ok(&train(
        &folder,
        &model,
        &["--epochs", "5", "--min-steps", "50"],
    ));
    let metrics: serde_json::Value = serde_json::from_str(&stdout).expect("metrics JSON");
    assert!(model.join("weights.bpk").is_file());
    let card = json(&model.join("model.json"));
    assert_eq!(card["format"], 1);
    assert_eq!(card["model"], "small-cnn");
    assert_eq!(card["classes"], serde_json::json!(CLASSES));
    assert_eq!(card["image_shape"], serde_json::json!([1, 16, 16]));
    assert_eq!(
        card["normalization"]["mean"].as_array().map(Vec::len),
        Some(1)
    );
    // 20 per class, 4 of each held out; the top-level images are not trained on.
    assert_eq!(card["labelled"], 48);
    assert_eq!(card["metrics"], metrics);
    assert_eq!(metrics["validation_items"], 12);
    assert!(metrics["gradient_steps"].as_u64() >= Some(50), "{metrics}");
    let accuracy = metrics["validation"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!(accuracy >= 0.75, "chance is 1/3: {metrics}");
    // No staging folder is left beside it.
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(siblings.len(), 2, "{siblings:?}");

    // The image size and channels come from the model folder.
    let shards = dir.path().join("shards");
    let out = shards.join("0");
    ok(&predict(&folder, &model, &out, &[]));
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(manifest["pool_len"], 30, "{manifest}");
    let merged: serde_json::Value =
        serde_json::from_str(&ok(&baal(&["merge", text(&shards)]))).expect("JSON");
    assert_eq!(
        merged["query"].as_array().map(Vec::len),
        Some(5),
        "{merged}"
    );
}

#[test]
fn train_refuses_to_overwrite_a_folder_and_needs_labelled_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = image_folder(dir.path());
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).expect("mkdir");
    std::fs::write(taken.join("notes.txt"), "mine").expect("write");
    let stderr = failure(&train(&folder, &taken, &[]));
    assert!(
        stderr.contains("taken") && stderr.contains("not empty"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&taken).expect("list").collect();
    assert_eq!(left.len(), 1);
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).expect("read"),
        "mine"
    );

    // Only unlabelled images: nothing to train on.
    let flat = dir.path().join("flat");
    std::fs::create_dir(&flat).expect("mkdir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    for i in 0..6 {
        image_of(i % 2, &mut rng)
            .save(flat.join(format!("{i}.png")))
            .expect("png");
    }
    let out = dir.path().join("out");
    let stderr = failure(&train(&flat, &out, &[]));
    assert!(stderr.contains("flat"), "{stderr}");
    let stderr = failure(&train(&flat, &out, &["--classes", "a,b"]));
    assert!(stderr.contains("no labelled image"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn predict_refuses_a_model_folder_that_is_corrupt_or_for_other_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = image_folder(dir.path());
    let model = dir.path().join("model");
    ok(&train(
        &folder,
        &model,
        &[
            "--epochs",
            "1",
            "--min-steps",
            "1",
            "--validation-fraction",
            "0",
        ],
    ));
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir(&to).expect("mkdir");
        for file in ["model.json", "weights.bpk"] {
            std::fs::copy(model.join(file), to.join(file)).expect("copy");
        }
        to
    };
    let out = dir.path().join("out");

    // Truncated weights.
    let truncated = copy("truncated");
    let weights = truncated.join("weights.bpk");
    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("write");
    let stderr = failure(&predict(&folder, &truncated, &out, &[]));
    assert!(stderr.contains(text(&weights)), "{stderr}");

    // Missing weights.
    let missing = copy("missing");
    std::fs::remove_file(missing.join("weights.bpk")).expect("rm");
    let stderr = failure(&predict(&folder, &missing, &out, &[]));
    assert!(stderr.contains("weights.bpk"), "{stderr}");

    // Classes other than the folder's sub-folders.
    let renamed = copy("renamed");
    let card_path = renamed.join("model.json");
    let mut card = json(&card_path);
    card["classes"] = serde_json::json!(["cat", "dog", "bird"]);
    std::fs::write(&card_path, card.to_string()).expect("write");
    let stderr = failure(&predict(&folder, &renamed, &out, &[]));
    assert!(stderr.contains(text(&card_path)), "{stderr}");

    // Another format, and JSON that is cut short.
    let future = copy("future");
    let card_path = future.join("model.json");
    let mut card = json(&card_path);
    card["format"] = serde_json::json!(2);
    std::fs::write(&card_path, card.to_string()).expect("write");
    let stderr = failure(&predict(&folder, &future, &out, &[]));
    assert!(
        stderr.contains(text(&card_path)) && stderr.contains("format 2"),
        "{stderr}"
    );
    let cut = copy("cut");
    let card_path = cut.join("model.json");
    std::fs::write(&card_path, "{\"format\": 1, \"model\": ").expect("write");
    let stderr = failure(&predict(&folder, &cut, &out, &[]));
    assert!(stderr.contains(text(&card_path)), "{stderr}");

    // An image size the model was not trained at.
    let stderr = failure(&predict(&folder, &model, &out, &["--image-size", "20"]));
    assert!(stderr.contains("--image-size"), "{stderr}");

    // --model-dir with --model is a usage error.
    let output = baal(&[
        "predict",
        text(&folder),
        "--model-dir",
        text(&model),
        "--model",
        "small-cnn",
        "--output",
        text(&out),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn train_takes_a_named_dataset_and_measures_it_on_its_test_split() {
    let dir = "/usr/share/datasets/fashion-mnist";
    if baal_test_support::require_dir(dir, baal_test_support::FASHION_MNIST_INSTALL).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("model");
    let output = baal(&[
        "train",
        "fashion-mnist",
        "--data-dir",
        dir,
        "--labelled",
        "200",
        "--test-size",
        "300",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--min-steps",
        "30",
        "--output",
        text(&model),
    ]);
    let metrics: serde_json::Value = serde_json::from_str(&ok(&output)).expect("JSON");
    assert_eq!(metrics["validation_items"], 300, "{metrics}");
    let accuracy = metrics["validation"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!(
        accuracy > 0.3,
        "30 steps on 200 labels beat chance (0.1): {metrics}"
    );
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).expect("card"))
            .expect("JSON");
    assert_eq!(card["labelled"], 200, "{card}");
    assert_eq!(card["image_shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(card["classes"][0], "T-shirt/top", "{card}");
    // Fashion-MNIST's published statistics, not the subset's.
    let mean = card["normalization"]["mean"][0].as_f64().expect("mean");
    assert!((mean - 0.2860).abs() < 1e-3, "{card}");
}
