//! docs/your-data.md, run: every `baal` command of the walkthrough, as the page writes it, on
//! a small generated folder of two classes, so that the page and the tool cannot drift apart.
//! `baal serve` lines are started with `--addr 127.0.0.1:0` (a free port) and labelled
//! through the API as the page's `curl` lines do.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use rand::SeedableRng;

use crate::serving::{Serving, wait_for_version};
use crate::support::{failure, ok};
use crate::train::image_of;

/// Images at the top of the folder, to label.
const POOL: usize = 40;
/// Labels given in the first `baal serve`.
const LABELLED: usize = 12;

/// The walkthrough's `baal` command lines, in order, from the page's `sh` blocks.
fn walkthrough_commands() -> Vec<Vec<String>> {
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/your-data.md");
    let text = std::fs::read_to_string(page).expect("docs/your-data.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && l.starts_with("baal ") => {
                commands.push(l.split_whitespace().map(String::from).collect());
            }
            _ => {}
        }
    }
    commands
}

/// `photos/`: 40 images at the top (class i % 2, bright or dark, unknown to the tool) and two
/// labelled examples of each class in `bright/` and `dark/`.
fn photos(dir: &Path) {
    let folder = dir.join("photos");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for (class, name) in ["bright", "dark"].iter().enumerate() {
        std::fs::create_dir_all(folder.join(name)).expect("mkdir");
        for example in ["a", "b"] {
            image_of(class, &mut rng)
                .save(folder.join(name).join(format!("{example}.png")))
                .expect("png");
        }
    }
    for i in 0..POOL {
        image_of(i % 2, &mut rng)
            .save(folder.join(format!("{:04}.png", i + 1)))
            .expect("png");
    }
}

/// Runs a `baal` command line in `dir`; its standard output.
fn run(dir: &Path, command: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(&command[1..])
        .current_dir(dir)
        .output()
        .expect("runs baal");
    ok(&output)
}

/// Starts a `baal serve` line in `dir` on a free port.
fn serve(dir: &Path, command: &[String]) -> Serving {
    let mut process = Command::new(env!("CARGO_BIN_EXE_baal"));
    process
        .args(&command[1..])
        .args(["--addr", "127.0.0.1:0"])
        .current_dir(dir);
    Serving::spawn(process, None)
}

/// Labels `count` items as the page's `curl` lines do, with their true class (the pool's
/// files `0001.png`, ... are items 0, 1, ...: bright for even items).
fn label(serving: &Serving, count: usize) {
    for _ in 0..count {
        let (code, next) = serving.post("/api/next", r#"{"annotator": "alice"}"#);
        assert_eq!(code, 200, "{next}");
        let next: serde_json::Value = serde_json::from_str(&next).expect("JSON");
        let item = next["item"].as_u64().expect("an item");
        let class = if item.is_multiple_of(2) {
            "bright"
        } else {
            "dark"
        };
        let body = format!(
            r#"{{"annotator": "alice", "lease": {}, "class": "{class}"}}"#,
            next["lease"]
        );
        let (code, answer) = serving.post("/api/label", &body);
        assert_eq!(code, 200, "{answer}");
    }
}

fn status(serving: &Serving) -> serde_json::Value {
    wait_for_version(&serving.addr, &serving.token, 0)
}

#[test]
fn the_walkthrough_of_docs_your_data_runs_as_written() {
    let commands = walkthrough_commands();
    let verbs: Vec<&str> = commands.iter().map(|c| c[1].as_str()).collect();
    assert_eq!(
        verbs,
        [
            "serve", "export", "train", "predict", "predict", "merge", "serve", "serve"
        ],
        "the page's commands changed: update this test with it"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    photos(dir.path());

    // 2. Label 12 of the pool's images.
    let first = serve(dir.path(), &commands[0]);
    label(&first, LABELLED);
    assert_eq!(status(&first)["n_labelled"], LABELLED + 4);
    drop(first);

    // 3. Export: the 4 examples and the 12 labels, each image in its class folder.
    let exported: serde_json::Value =
        serde_json::from_str(&run(dir.path(), &commands[1])).expect("JSON");
    assert_eq!(exported["labels"], LABELLED + 4, "{exported}");
    assert_eq!(exported["seed_labels"], 4, "{exported}");
    let labelled = dir.path().join("labelled");
    let csv = std::fs::read_to_string(labelled.join("labels.csv")).expect("labels.csv");
    let labelled_files: HashSet<String> = csv
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1).map(String::from))
        .collect();
    assert_eq!(labelled_files.len(), LABELLED + 4, "{csv}");
    let in_folders = ["bright", "dark"]
        .iter()
        .map(|class| {
            std::fs::read_dir(labelled.join(class))
                .expect("class")
                .count()
        })
        .sum::<usize>();
    assert_eq!(in_folders, LABELLED + 4);
    // Again: refused (exit 2, one line naming the folder), nothing written over.
    let again = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(&commands[1][1..])
        .current_dir(dir.path())
        .output()
        .expect("runs baal");
    let refused = failure(&again);
    assert!(
        refused.contains("labelled") && refused.lines().count() == 1,
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(labelled.join("labels.csv")).expect("labels.csv"),
        csv
    );

    // 4. Train: a model folder whose card names the classes.
    let metrics: serde_json::Value =
        serde_json::from_str(&run(dir.path(), &commands[2])).expect("JSON");
    assert!(metrics["gradient_steps"].as_u64() > Some(0), "{metrics}");
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("model/model.json")).expect("card"),
    )
    .expect("JSON");
    assert_eq!(card["classes"], serde_json::json!(["bright", "dark"]));

    // 5. Two shards and the merge: the next query names files, none of them labelled.
    for predict in &commands[3..5] {
        run(dir.path(), predict);
    }
    run(dir.path(), &commands[5]);
    let query: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("query.json")).expect("query.json"),
    )
    .expect("JSON");
    assert_eq!(query["pool_len"], POOL - LABELLED, "{query}");
    let files: Vec<String> = serde_json::from_value(query["files"].clone()).expect("files");
    assert_eq!(files.len(), 10, "{query}");
    for file in &files {
        assert!(!labelled_files.contains(file), "{file} is labelled already");
        assert!(dir.path().join("photos").join(file).is_file(), "{file}");
    }

    // A label file that names a file the pool does not have: exit 2, naming its line.
    let bad = dir.path().join("bad.csv");
    let first_file = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .expect("a file");
    std::fs::write(&bad, csv.replacen(first_file, "missing.png", 1)).expect("writes");
    let mut predict = commands[3].clone();
    let file = predict
        .iter()
        .position(|w| w == "labelled/labels.csv")
        .expect("--labelled");
    predict[file] = "bad.csv".into();
    let refused = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(&predict[1..])
        .current_dir(dir.path())
        .output()
        .expect("runs baal");
    let refused = failure(&refused);
    assert!(
        refused.contains("bad.csv") && refused.contains("missing.png"),
        "{refused}"
    );

    // 6. The next round from the model: round 0 ranks the pool, the labels are resumed.
    let next = serve(dir.path(), &commands[6]);
    let resumed = wait_for_version(&next.addr, &next.token, 1);
    assert_eq!(resumed["n_labelled"], LABELLED + 4, "{resumed}");
    assert_eq!(resumed["history"][0]["n_labelled"], 0, "round 0: {resumed}");
    drop(next);

    // A new state from the exported labels.
    let imported = serve(dir.path(), &commands[7]);
    assert_eq!(status(&imported)["n_labelled"], LABELLED + 4);
}

#[test]
fn one_install_has_every_command() {
    let help = ok(&crate::support::baal(&["--help"]));
    for command in ["score", "train", "predict", "merge", "serve", "export"] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "`baal --help` of the default features lacks {command}: {help}"
        );
    }
}
