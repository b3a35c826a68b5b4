//! `baal serve` through the real binary: it starts, prints the page's address with its token,
//! answers the API, and refuses bad data with a message.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};

use baal_data::formats::npy::encode_f32;

use crate::serving::{Serving, http_get, wait_for_version};

#[test]
fn serve_prints_its_address_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let serving = start_npy(dir.path(), &state, None);
    let (code, status) = http_get(&serving.addr, "/api/status", &serving.token);
    assert_eq!(code, 200, "{status}");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    assert_eq!(status["n_items"], 20);
    assert_eq!(status["classes"], serde_json::json!(["cat", "dog"]));
    assert_eq!(
        std::fs::read_to_string(state.join("token")).expect("token"),
        serving.token
    );
}

#[test]
fn serve_keeps_serving_when_its_standard_output_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(["serve", write_pool(dir.path()).to_str().expect("utf-8")])
        .args(["--classes", "cat,dog", "--addr", &addr, "--model", "mlp"])
        .arg("--state")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts baal serve");
    // Nobody reads the address: the banner meets a closed pipe, as after `| head -1`.
    drop(child.stdout.take());
    let started = std::time::Instant::now();
    let answer = loop {
        let token = std::fs::read_to_string(state.join("token")).unwrap_or_default();
        let exited = child.try_wait().expect("polls").is_some();
        if exited || started.elapsed() > std::time::Duration::from_secs(60) {
            break None;
        }
        if !token.is_empty() && TcpStream::connect(&addr).is_ok() {
            // The banner is printed once the server listens; give it the time to.
            std::thread::sleep(std::time::Duration::from_millis(500));
            break Some(http_get(&addr, "/api/status", &token));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let running = child.try_wait().expect("polls").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "baal serve stopped on a closed standard output");
    assert_eq!(answer.map(|(code, _)| code), Some(200));
}

#[test]
fn serve_refuses_bad_data_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_baal"))
            .arg("serve")
            .args(args)
            .arg("--state")
            .arg(dir.path().join("state"))
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["nowhere.npy", "--classes", "a,b"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("nowhere.npy"), "{stderr}");
    let pool = dir.path().join("pool.npy");
    std::fs::write(&pool, encode_f32(&[2, 4, 4], &[0.5; 32])).expect("writes");
    let (code, stderr) = run(&[pool.to_str().expect("utf-8")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--classes"), "{stderr}");
    let (code, stderr) = run(&["imagenet"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("neither fashion-mnist"), "{stderr}");
    // The heuristics that select by embeddings are refused by name, not run.
    let pool = write_pool(dir.path());
    for heuristic in ["coreset", "badge"] {
        let (code, stderr) = run(&[
            pool.to_str().expect("utf-8"),
            "--classes",
            "cat,dog",
            "--heuristic",
            heuristic,
        ]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(heuristic) && stderr.contains("embeddings"),
            "{stderr}"
        );
    }
}

/// A pool of 20 images 28×28, `dir/pool.npy`.
fn write_pool(dir: &std::path::Path) -> std::path::PathBuf {
    let pool = dir.join("pool.npy");
    let values: Vec<f32> = (0..20 * 28 * 28).map(|i| (i % 97) as f32 / 97.0).collect();
    std::fs::write(&pool, encode_f32(&[20, 28, 28], &values)).expect("writes");
    pool
}

/// `baal serve` on a 20-image `.npy` pool (classes cat and dog, a tiny MLP retrained after
/// every label) in `state`.
fn start_npy(dir: &std::path::Path, state: &std::path::Path, rust_log: Option<&str>) -> Serving {
    let pool = write_pool(dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_baal"));
    command
        .args(["serve", pool.to_str().expect("utf-8")])
        .args(["--classes", "cat,dog", "--addr", "127.0.0.1:0"])
        .args(["--retrain-every", "1", "--epochs", "1", "--min-steps", "1"])
        .args(["--iterations", "2", "--model", "mlp"])
        .arg("--state")
        .arg(state);
    Serving::spawn(command, rust_log)
}

#[test]
fn serve_logs_warnings_and_errors_and_requests_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // A first run makes the state; a torn line (a crash mid-write) is left behind.
    drop(start_npy(dir.path(), &state, None));
    let journal = state.join("labels.journal");
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .expect("journal");
    torn.write_all(b"0badc0de {\"event\":\"lab")
        .expect("writes");
    drop(torn);
    let serving = start_npy(dir.path(), &state, Some("debug"));
    serving.wait_for(&["WARN", "torn"]);
    // A retrain that cannot record its round: a folder where history.json goes.
    std::fs::create_dir_all(state.join("history.json").join("in-the-way")).expect("a folder");
    let (code, next) = serving.post("/api/next", r#"{"annotator":"ann"}"#);
    assert_eq!(code, 200, "{next}");
    let next: serde_json::Value = serde_json::from_str(&next).expect("JSON");
    let (code, _) = serving.post(
        "/api/label",
        &format!(
            r#"{{"annotator":"ann","lease":{},"class":0}}"#,
            next["lease"]
        ),
    );
    assert_eq!(code, 200);
    serving.wait_for(&["ERROR", "retrain failed"]);
    // At debug, a line per request, its token kept out.
    let line = serving.wait_for(&["request", "/api/label", "200"]);
    assert!(!line.contains(&serving.token), "{line}");
    drop(serving);
    std::fs::remove_dir_all(state.join("history.json")).expect("out of the way");

    // By default only warnings and errors: no request lines.
    let quiet = start_npy(dir.path(), &state, None);
    let (code, _) = quiet.post("/api/next", r#"{"annotator":"ann"}"#);
    assert_eq!(code, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !quiet
            .stderr
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains("/api/next")),
        "no request lines at the default level"
    );
}

#[test]
fn serve_starts_from_a_model_folder_of_train_and_refuses_one_for_other_data() {
    use crate::train::{image_folder, text, train};
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = image_folder(dir.path());
    let model = dir.path().join("model");
    crate::support::ok(&train(
        &folder,
        &model,
        &["--epochs", "1", "--min-steps", "2", "--model", "mlp"],
    ));

    // The model's kind, classes, image size and channels come from its card.
    let state = dir.path().join("state");
    let mut command = Command::new(env!("CARGO_BIN_EXE_baal"));
    command
        .args(["serve", text(&folder), "--init-model", text(&model)])
        .args(["--addr", "127.0.0.1:0", "--iterations", "2", "--state"])
        .arg(&state);
    let serving = Serving::spawn(command, None);
    // 60 labelled images are the seed labels: a first retrain follows round 0.
    let status = wait_for_version(&serving.addr, &serving.token, 1);
    drop(serving);
    assert_eq!(
        status["classes"],
        serde_json::json!(["bright", "dark", "stripes"])
    );
    assert_eq!(status["history"][0]["n_labelled"], 0, "round 0: {status}");

    // Another image size, another model: refused with a line that names the card, and the
    // state folder is not made.
    let card = model.join("model.json");
    for extra in [["--image-size", "20"], ["--model", "small-cnn"]] {
        let other_state = dir.path().join("other-state");
        let out = Command::new(env!("CARGO_BIN_EXE_baal"))
            .args(["serve", text(&folder), "--init-model", text(&model)])
            .args(extra)
            .arg("--state")
            .arg(&other_state)
            .output()
            .expect("runs");
        let stderr = crate::support::failure(&out);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(text(&card)), "{stderr}");
        assert!(!other_state.exists(), "{extra:?}");
    }
}
