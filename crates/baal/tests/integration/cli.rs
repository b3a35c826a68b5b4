//! End-to-end tests of `baal score` through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use baal_data::formats::npy::encode_f32;

fn write_npy(dir: &Path, name: &str, shape: &[usize], values: &[f32]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, encode_f32(shape, values)).expect("write npy");
    path
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn baal(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(args)
        .output()
        .expect("run baal");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// 3 items, 2 classes, 2 MC iterations: item 1 disagrees across samples (highest BALD),
/// item 0 is uniform (highest entropy), item 2 is confident.
const POOL: [f32; 12] = [0.5, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0, 1.0, 0.9, 0.9, 0.1, 0.1];

fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON on stdout")
}

#[test]
fn scores_bald_and_entropy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = write_npy(dir.path(), "p.npy", &[3, 2, 2], &POOL);
    let p = preds.to_str().expect("utf-8 path");
    let bald = json(&baal(&["score", "--heuristic", "bald", p]));
    assert_eq!(bald["heuristic"], "bald");
    assert_eq!(bald["ranks"][0], 1);
    let scores = bald["scores"].as_array().expect("scores");
    assert_eq!(scores.len(), 3);
    assert!((scores[1].as_f64().expect("number") - 2f64.ln()).abs() < 1e-5);
    let entropy = json(&baal(&[
        "score",
        "--heuristic",
        "entropy",
        "--query-size",
        "1",
        p,
    ]));
    assert_eq!(entropy["ranks"], serde_json::json!([0]));
}

#[test]
fn writes_batch_selection_to_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = write_npy(dir.path(), "p.npy", &[3, 2, 2], &POOL);
    let out = dir.path().join("out.json");
    let run = baal(&[
        "score",
        "--heuristic",
        "batch-bald",
        "--query-size",
        "2",
        "--output",
        out.to_str().expect("utf-8"),
        preds.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("output file")).expect("JSON");
    let ranks = report["ranks"].as_array().expect("ranks");
    assert_eq!(ranks.len(), 2);
    assert_eq!(ranks[0], 1);
}

#[test]
fn every_registered_heuristic_is_reachable_with_its_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = write_npy(dir.path(), "p.npy", &[3, 2, 2], &POOL);
    let p = preds.to_str().expect("utf-8");
    for kind in ["power-bald", "softmax-bald", "rank-bald"] {
        let run = baal(&[
            "score",
            "--heuristic",
            kind,
            "--query-size",
            "2",
            "--temperature",
            "0.5",
            "--seed",
            "3",
            p,
        ]);
        let report = json(&run);
        assert_eq!(report["heuristic"], kind);
        assert_eq!(report["ranks"].as_array().expect("ranks").len(), 2);
        // The parameter is checked by the registry's build: a 4xx-style input error.
        let bad = baal(&[
            "score",
            "--heuristic",
            kind,
            "--query-size",
            "2",
            "--temperature=-1",
            p,
        ]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
        assert!(bad.stderr.contains("temperature"), "{}", bad.stderr);
    }
    let run = baal(&[
        "score",
        "--heuristic",
        "batch-bald",
        "--query-size",
        "2",
        "--batch-bald-samples",
        "50",
        p,
    ]);
    assert_eq!(json(&run)["ranks"].as_array().expect("ranks").len(), 2);
    let bad = baal(&[
        "score",
        "--heuristic",
        "batch-bald",
        "--query-size",
        "2",
        "--batch-bald-samples",
        "0",
        p,
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("batch_bald_samples"), "{}", bad.stderr);
}

#[test]
fn coreset_and_badge_select_by_the_embeddings_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_npy(dir.path(), "p.npy", &[3, 2, 2], &POOL);
    let p = p.to_str().expect("utf-8");
    let pool = write_npy(dir.path(), "e.npy", &[3, 1], &[0.0, 10.0, 4.0]);
    let pool = pool.to_str().expect("utf-8");
    let labelled = write_npy(dir.path(), "l.npy", &[1, 1], &[1.0]);
    let labelled = labelled.to_str().expect("utf-8");
    // k-center greedy from the labelled centre 1: item 1 (9 away), then item 2 (3 from 1,
    // 6 from 10) before item 0 (1 from 1).
    let coreset = json(&baal(&[
        "score",
        "--heuristic",
        "coreset",
        "--query-size",
        "2",
        "--embeddings",
        pool,
        "--labelled-embeddings",
        labelled,
        p,
    ]));
    assert_eq!(coreset["heuristic"], "coreset");
    assert_eq!(coreset["ranks"], serde_json::json!([1, 2]));
    let badge = json(&baal(&[
        "score",
        "--heuristic",
        "badge",
        "--query-size",
        "3",
        "--embeddings",
        pool,
        p,
    ]));
    let mut ranks: Vec<u64> = badge["ranks"]
        .as_array()
        .expect("ranks")
        .iter()
        .map(|r| r.as_u64().expect("index"))
        .collect();
    ranks.sort_unstable();
    assert_eq!(ranks, [0, 1, 2]);
    // What each option is for, and embeddings that do not fit, are input errors (exit 2).
    let two_rows = write_npy(dir.path(), "e2.npy", &[2, 1], &[0.0, 1.0]);
    let wide = write_npy(dir.path(), "l2.npy", &[1, 2], &[0.0, 1.0]);
    for (args, says) in [
        (
            vec!["--heuristic", "coreset", "--query-size", "1"],
            "--embeddings",
        ),
        (
            vec!["--heuristic", "bald", "--embeddings", pool],
            "--embeddings",
        ),
        (
            vec![
                "--heuristic",
                "badge",
                "--query-size",
                "1",
                "--embeddings",
                pool,
                "--labelled-embeddings",
                labelled,
            ],
            "--labelled-embeddings",
        ),
        (
            vec![
                "--heuristic",
                "coreset",
                "--query-size",
                "1",
                "--embeddings",
                two_rows.to_str().expect("utf-8"),
            ],
            "2 rows of embeddings for a pool of 3",
        ),
        (
            vec![
                "--heuristic",
                "coreset",
                "--query-size",
                "1",
                "--embeddings",
                pool,
                "--labelled-embeddings",
                wide.to_str().expect("utf-8"),
            ],
            "dimension 2",
        ),
    ] {
        let mut all = vec!["score"];
        all.extend(args);
        all.push(p);
        let run = baal(&all);
        assert_eq!(run.code, 2, "{all:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{all:?}: {}", run.stderr);
    }
}

#[test]
fn epig_uses_the_target_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = write_npy(dir.path(), "p.npy", &[3, 2, 2], &POOL);
    let target = write_npy(dir.path(), "t.npy", &[1, 2, 2], &[1.0, 0.0, 0.0, 1.0]);
    let p = preds.to_str().expect("utf-8");
    let run = baal(&[
        "score",
        "--heuristic",
        "epig",
        "--target",
        target.to_str().expect("utf-8"),
        p,
    ]);
    // The target's label is decided by the MC sample exactly as item 1's: most informative.
    assert_eq!(json(&run)["ranks"][0], 1);
    let missing = baal(&["score", "--heuristic", "epig", p]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("--target"), "{}", missing.stderr);
}

#[test]
fn the_pool_is_scored_in_chunks_with_the_same_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 7 items, 3 classes, 2 MC iterations, each item a different mix.
    let mut values = Vec::new();
    for item in 0..7 {
        let a = 0.1 + 0.1 * item as f32;
        // [C, T]: class 0, 1, 2 over the 2 iterations; each iteration sums to 1.
        values.extend([a, 0.3, 1.0 - a, 0.3, 0.0, 0.4]);
    }
    let pool = write_npy(dir.path(), "pool.npy", &[7, 3, 2], &values);
    let p = pool.to_str().expect("utf-8");
    for heuristic in ["bald", "entropy", "margin", "power-bald", "batch-bald"] {
        let whole = baal(&["score", "--heuristic", heuristic, "--query-size", "3", p]);
        assert_eq!(whole.code, 0, "{heuristic}: {}", whole.stderr);
        for chunk in ["1", "2", "5"] {
            let chunked = baal(&[
                "score",
                "--heuristic",
                heuristic,
                "--query-size",
                "3",
                "--chunk-items",
                chunk,
                p,
            ]);
            assert_eq!(
                chunked.stdout, whole.stdout,
                "{heuristic} in chunks of {chunk}"
            );
        }
    }
    // A value error names the item's place in the whole pool, not in its chunk.
    values[5 * 6] = 0.9;
    let bad = write_npy(dir.path(), "bad.npy", &[7, 3, 2], &values);
    let run = baal(&[
        "score",
        "--heuristic",
        "bald",
        "--chunk-items",
        "2",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("item 5"), "{}", run.stderr);
    // Candidates are BatchBALD's: fewer than the query, or for another heuristic, are errors.
    let few = baal(&[
        "score",
        "--heuristic",
        "batch-bald",
        "--query-size",
        "3",
        "--candidates",
        "2",
        p,
    ]);
    assert_eq!(few.code, 2);
    assert!(few.stderr.contains("candidates"), "{}", few.stderr);
    let other = baal(&["score", "--heuristic", "bald", "--candidates", "5", p]);
    assert_eq!(other.code, 2);
    assert!(other.stderr.contains("--candidates"), "{}", other.stderr);
}

#[test]
fn bad_input_is_a_one_line_error_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_normalised = write_npy(dir.path(), "bad.npy", &[2, 2, 1], &[0.5, 0.5, 0.2, 0.2]);
    let wrong_rank = write_npy(dir.path(), "rank.npy", &[4], &[0.0; 4]);
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").expect("write");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "score",
                "--heuristic",
                "bald",
                not_normalised.to_str().expect("utf-8"),
            ],
            "item 1",
        ),
        (
            &[
                "score",
                "--heuristic",
                "bald",
                wrong_rank.to_str().expect("utf-8"),
            ],
            "[N, C, T]",
        ),
        (
            &[
                "score",
                "--heuristic",
                "bald",
                garbage.to_str().expect("utf-8"),
            ],
            "magic",
        ),
        (
            &["score", "--heuristic", "bald", "/nonexistent/p.npy"],
            "/nonexistent/p.npy",
        ),
        (
            &[
                "score",
                "--heuristic",
                "batch-bald",
                "--query-size",
                "1",
                not_normalised.to_str().expect("utf-8"),
            ],
            "item 1",
        ),
        (
            &[
                "score",
                "--heuristic",
                "bald",
                "--device",
                "cuda:0",
                garbage.to_str().expect("utf-8"),
            ],
            "cuda",
        ),
    ];
    for (args, needle) in cases {
        let run = baal(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn segmentation_and_regression_arrays_are_scored_with_their_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    // [N = 2, C = 2, P = 3, T = 2]: item 0 has one position where the samples disagree
    // (BALD ln 2 there, 0 elsewhere); item 1 has two positions at a mild disagreement.
    #[rustfmt::skip]
    let seg: [f32; 24] = [
        // item 0: class 0 over (p0: t0 t1, p1: t0 t1, p2: t0 t1), then class 1
        1.0, 0.0,  1.0, 1.0,  1.0, 1.0,
        0.0, 1.0,  0.0, 0.0,  0.0, 0.0,
        // item 1
        0.8, 0.2,  0.8, 0.2,  1.0, 1.0,
        0.2, 0.8,  0.2, 0.8,  0.0, 0.0,
    ];
    let seg_path = write_npy(dir.path(), "seg.npy", &[2, 2, 3, 2], &seg);
    let p = seg_path.to_str().expect("utf-8");
    let score = |reduction: &str| {
        json(&baal(&[
            "score",
            "--heuristic",
            "bald",
            "--reduction",
            reduction,
            p,
        ]))
    };
    // BALD per position: item 0 (ln 2, 0, 0); item 1 (b, b, 0) with b = H(0.5) - H(0.8).
    let b = 2f64.ln() - (-(0.8f64 * 0.8f64.ln() + 0.2 * 0.2f64.ln()));
    let ln2 = 2f64.ln();
    for (reduction, expected, first) in [
        ("max", [ln2, b], 0),
        ("sum", [ln2, 2.0 * b], 0),
        ("mean", [ln2 / 3.0, 2.0 * b / 3.0], 0),
        ("min", [0.0, 0.0], 0),
    ] {
        let report = score(reduction);
        let scores: Vec<f64> = report["scores"]
            .as_array()
            .expect("scores")
            .iter()
            .map(|s| s.as_f64().expect("number"))
            .collect();
        for (got, want) in scores.iter().zip(expected) {
            assert!(
                (got - want).abs() < 1e-5,
                "{reduction}: {scores:?} vs {expected:?}"
            );
        }
        assert_eq!(report["ranks"][0], first, "{reduction}");
    }
    // Two and two positions make b twice: with sum, item 1 would win if b > ln 2 / 2.
    assert!(2.0 * b < ln2);
    // A 4-D array without --reduction says what to add; --reduction on a 3-D array too.
    let run = baal(&["score", "--heuristic", "bald", p]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--reduction"), "{}", run.stderr);
    let flat = write_npy(dir.path(), "flat.npy", &[3, 2, 2], &POOL);
    let f = flat.to_str().expect("utf-8");
    let run = baal(&["score", "--heuristic", "bald", "--reduction", "mean", f]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("[N, C, P, T]"), "{}", run.stderr);

    // Regression: [N = 3, O = 1, T = 4] raw outputs; variance ranks the spread item first.
    let outputs: [f32; 12] = [1.0, 1.0, 1.0, 1.0, -3.0, 3.0, -3.0, 3.0, 5.0, 5.5, 5.0, 5.5];
    let reg = write_npy(dir.path(), "reg.npy", &[3, 1, 4], &outputs);
    let r = reg.to_str().expect("utf-8");
    let report = json(&baal(&[
        "score",
        "--heuristic",
        "variance",
        "--regression",
        r,
    ]));
    assert_eq!(report["ranks"], serde_json::json!([1, 2, 0]));
    let variance = report["scores"][1].as_f64().expect("number");
    assert!(
        (variance - 9.0).abs() < 1e-4 || (variance - 12.0).abs() < 1e-4,
        "{variance}"
    );
    // Outputs that are not probabilities are fine for regression, refused without the flag.
    let run = baal(&["score", "--heuristic", "variance", r]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // A heuristic that needs class probabilities cannot score regression outputs.
    let run = baal(&["score", "--heuristic", "bald", "--regression", r]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.is_empty());
    // --regression with --reduction is a usage error.
    let run = baal(&[
        "score",
        "--heuristic",
        "variance",
        "--regression",
        "--reduction",
        "max",
        r,
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn a_closed_standard_output_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = write_npy(dir.path(), "p.npy", &[3, 2, 2], &POOL);
    // A pipe whose reading end is closed before baal starts: its JSON meets a broken pipe,
    // as after `baal score ... | head -0`.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(["score", "--heuristic", "bald"])
        .arg(&preds)
        .stdout(writer)
        .output()
        .expect("run baal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("standard output"), "{stderr}");
    // With --output, nothing goes to standard output and the file is written.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let file = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(["score", "--heuristic", "bald", "--output"])
        .arg(&file)
        .arg(&preds)
        .stdout(writer)
        .output()
        .expect("run baal");
    assert_eq!(out.status.code(), Some(0));
    assert!(file.is_file());
}

/// The values `baal <command> --help` lists for `--heuristic`.
fn heuristics_in_help(command: &str) -> Vec<String> {
    let help = baal(&[command, "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    let block = help
        .stdout
        .split("\n      --heuristic <HEURISTIC>")
        .nth(1)
        .unwrap_or_else(|| panic!("baal {command} --help lists no --heuristic"));
    block
        .lines()
        .skip_while(|line| !line.contains("Possible values:"))
        .skip(1)
        .map_while(|line| line.trim().strip_prefix("- "))
        .map(|entry| {
            entry
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn the_readme_and_every_commands_help_list_the_same_heuristics() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let listed: Vec<String> = readme
        .split("score --heuristic <")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("the README shows `baal score --heuristic <a|b|...>`")
        .split('|')
        .map(str::to_string)
        .collect();
    let mut expected = listed.clone();
    expected.sort();
    for command in ["score", "predict", "serve"] {
        let mut help = heuristics_in_help(command);
        help.sort();
        assert_eq!(
            help, expected,
            "baal {command} --help against the README's list"
        );
    }
}
