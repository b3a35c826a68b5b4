use std::path::{Path, PathBuf};

use baal_data::Normalization;
use burn::module::Module;
use burn::tensor::Device;

use super::*;
use crate::models::{MlpConfig, ModelKind};

fn card() -> ModelCard {
    ModelCard {
        format: MODEL_CARD_FORMAT,
        model: ModelKind::Mlp,
        image_shape: [1, 4, 4],
        classes: vec!["cat".into(), "dog".into()],
        normalization: Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        },
        metrics: TrainMetrics {
            train_loss: 0.5,
            epochs_run: 1,
            gradient_steps: 2,
            seconds: 0.1,
            validation_items: 0,
            validation: None,
        },
        data: "pool.npy".into(),
        labelled: 4,
        seed: 0,
        epochs: 1,
        min_steps: 1,
        version: None,
        init_model: None,
    }
}

/// A model folder `dir/name` of [`card`] with the weights of a fresh MLP.
fn write_folder(dir: &Path, name: &str) -> ModelFolder {
    let target = dir.join(name);
    let writer = ModelFolderWriter::beside(&target).expect("staging");
    MlpConfig::new(16, 2)
        .init(&Device::default())
        .expect("mlp")
        .save_file(writer.weights_path())
        .expect("weights");
    writer.install(&card(), &target, false).expect("installed")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn edit_card(folder: &ModelFolder, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&folder.card_path).expect("read")).expect("JSON");
    edit(&mut value);
    std::fs::write(&folder.card_path, value.to_string()).expect("write");
    folder.card_path.clone()
}

#[test]
fn a_written_folder_reads_back_and_its_weights_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = write_folder(dir.path(), "model");
    assert_eq!(names(dir.path()), ["model"], "no staging folder is left");
    let read = ModelFolder::read(&dir.path().join("model")).expect("reads");
    assert_eq!(read.card, card());
    assert_eq!(read.weights, written.weights);
    read.load_weights(&Device::default())
        .expect("the weights load");
    // A card of `baal train` has no serve fields.
    let text = std::fs::read_to_string(&read.card_path).expect("card");
    assert!(
        !text.contains("version") && !text.contains("init_model"),
        "{text}"
    );
}

#[test]
fn model_kind_names_are_the_cards() {
    for kind in [
        ModelKind::GalCnn,
        ModelKind::SmallCnn,
        ModelKind::VggSmall,
        ModelKind::Vgg16,
        ModelKind::Mlp,
    ] {
        assert_eq!(
            serde_json::to_value(kind).expect("JSON"),
            serde_json::json!(kind.name())
        );
    }
}

#[test]
fn truncated_or_foreign_weights_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = write_folder(dir.path(), "model");
    let bytes = std::fs::read(&folder.weights).expect("read");
    std::fs::write(&folder.weights, &bytes[..bytes.len() / 2]).expect("cut");
    let error = folder
        .load_weights(&Device::default())
        .expect_err("cut short");
    assert!(matches!(error, FolderError::Weights { .. }), "{error:?}");
    assert!(error.is_bad_input());
    let message = error.to_string();
    assert!(
        message.starts_with(&folder.weights.display().to_string()),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");

    // Weights of a model for 3 classes, under a card of 2.
    MlpConfig::new(16, 3)
        .init(&Device::default())
        .expect("mlp")
        .save_file(&folder.weights)
        .expect("weights");
    let error = folder
        .load_weights(&Device::default())
        .expect_err("another model");
    assert!(matches!(error, FolderError::Weights { .. }), "{error}");

    std::fs::remove_file(&folder.weights).expect("rm");
    let error = ModelFolder::read(&folder.dir).expect_err("no weights");
    assert!(error.to_string().contains("weights.bpk"), "{error}");
}

#[test]
fn cards_of_another_format_or_broken_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = write_folder(dir.path(), "model");
    let path = edit_card(&folder, |card| card["format"] = serde_json::json!(2));
    let error = ModelFolder::read(&folder.dir).expect_err("format 2");
    assert!(
        matches!(error, FolderError::Format { found: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with(&path.display().to_string()));

    edit_card(&folder, |card| {
        card["format"] = serde_json::json!(1);
        card["image_shape"] = serde_json::json!([2, 4, 4]);
    });
    let error = ModelFolder::read(&folder.dir).expect_err("2 channels");
    assert!(error.to_string().contains("image shape"), "{error}");

    std::fs::write(&folder.card_path, "{\"format\": 1, \"model\": ").expect("cut");
    let error = ModelFolder::read(&folder.dir).expect_err("cut short");
    assert!(matches!(error, FolderError::Invalid { .. }), "{error:?}");
    std::fs::remove_file(&folder.card_path).expect("rm");
    let error = ModelFolder::read(&folder.dir).expect_err("no card");
    assert!(matches!(error, FolderError::Read { .. }), "{error:?}");
}

#[test]
fn a_folder_checks_against_the_data_and_says_what_differs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = write_folder(dir.path(), "model");
    let names = |n: &[&str]| n.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    folder
        .check_data(&names(&["cat", "dog"]), [1, 4, 4])
        .expect("the data it was made for");
    let cases = [
        (names(&["cat", "dog", "cow"]), [1, 4, 4], "3"),
        (names(&["cat", "cow"]), [1, 4, 4], "\"cow\""),
        (names(&["cat", "dog"]), [3, 4, 4], "3 channel"),
        (names(&["cat", "dog"]), [1, 8, 8], "8×8"),
    ];
    for (classes, shape, says) in cases {
        let error = folder.check_data(&classes, shape).expect_err("a mismatch");
        let message = error.to_string();
        assert!(matches!(error, FolderError::Mismatch { .. }), "{error:?}");
        assert!(
            message.starts_with(&folder.card_path.display().to_string())
                && message.contains(says)
                && message.lines().count() == 1,
            "{message}"
        );
    }
    assert_eq!(
        card().mismatch(&names(&["cat", "cow"]), [1, 4, 4]),
        Some(DataMismatch::ClassName {
            index: 1,
            model: "dog".into(),
            data: "cow".into()
        })
    );
}

#[test]
fn a_failed_write_leaves_the_folder_there_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = write_folder(dir.path(), "model");
    let before = std::fs::read(&folder.card_path).expect("card");

    // A folder that holds something is not replaced unless asked.
    let writer = ModelFolderWriter::beside(&folder.dir).expect("staging");
    std::fs::write(writer.weights_path(), b"new weights").expect("write");
    let mut other = card();
    other.labelled = 99;
    let error = writer
        .install(&other, &folder.dir, false)
        .expect_err("taken");
    assert!(matches!(error, FolderError::Exists { .. }), "{error:?}");
    assert_eq!(std::fs::read(&folder.card_path).expect("card"), before);
    assert_eq!(names(dir.path()), ["model"], "the staging folder is gone");

    // A writer that wrote no weights installs nothing, even with `replace`.
    let writer = ModelFolderWriter::beside(&folder.dir).expect("staging");
    let error = writer
        .install(&other, &folder.dir, true)
        .expect_err("no weights");
    assert!(matches!(error, FolderError::Weights { .. }), "{error:?}");
    // Nor does one with a card that contradicts itself.
    let writer = ModelFolderWriter::beside(&folder.dir).expect("staging");
    std::fs::write(writer.weights_path(), b"new weights").expect("write");
    other.classes.truncate(1);
    let error = writer
        .install(&other, &folder.dir, true)
        .expect_err("one class");
    assert!(matches!(error, FolderError::Invalid { .. }), "{error:?}");
    assert_eq!(std::fs::read(&folder.card_path).expect("card"), before);
    ModelFolder::read(&folder.dir)
        .expect("still readable")
        .load_weights(&Device::default())
        .expect("and its weights load");
    assert_eq!(names(dir.path()), ["model"]);

    // With `replace`, a complete folder takes its place, and nothing else is left.
    let replacement = write_folder(dir.path(), "next");
    let writer = ModelFolderWriter::beside(&folder.dir).expect("staging");
    std::fs::copy(&replacement.weights, writer.weights_path()).expect("copy");
    other.classes = card().classes;
    writer.install(&other, &folder.dir, true).expect("replaced");
    assert_eq!(
        ModelFolder::read(&folder.dir).expect("reads").card.labelled,
        99
    );
    assert_eq!(names(dir.path()), ["model", "next"]);
}

#[test]
fn a_file_where_the_folder_goes_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("model");
    std::fs::write(&target, "a file").expect("write");
    let error = check_target(&target, true).expect_err("a file");
    assert!(matches!(error, FolderError::NotAFolder { .. }), "{error:?}");
    check_target(&dir.path().join("free"), false).expect("nothing there");
}
