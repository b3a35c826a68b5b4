//! `baal serve` through the real binary: it starts, prints the page's address with its token,
//! answers the API, and refuses bad data with a message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use baal_data::formats::npy::encode_f32;

/// Sends one whole HTTP/1.1 request (`Connection: close`); the status line's code and the body.
fn exchange(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.write_all(request.as_bytes()).expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let code = response[9..12].parse().expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// A plain HTTP/1.1 GET; the status line's code and the body.
fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    exchange(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    )
}

#[test]
fn serve_prints_its_address_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let serving = Serving::start(dir.path(), &state, None);
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
}

/// A pool of 20 images 28×28, `dir/pool.npy`.
fn write_pool(dir: &std::path::Path) -> std::path::PathBuf {
    let pool = dir.join("pool.npy");
    let values: Vec<f32> = (0..20 * 28 * 28).map(|i| (i % 97) as f32 / 97.0).collect();
    std::fs::write(&pool, encode_f32(&[20, 28, 28], &values)).expect("writes");
    pool
}

/// `baal serve` running on a 20-image `.npy` pool in `state`, its stderr lines collected as
/// they come.
struct Serving {
    child: std::process::Child,
    addr: String,
    token: String,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Serving {
    fn start(dir: &std::path::Path, state: &std::path::Path, rust_log: Option<&str>) -> Self {
        let pool = write_pool(dir);
        let mut command = Command::new(env!("CARGO_BIN_EXE_baal"));
        command
            .args(["serve", pool.to_str().expect("utf-8")])
            .args(["--classes", "cat,dog", "--addr", "127.0.0.1:0"])
            .args(["--retrain-every", "1", "--epochs", "1", "--min-steps", "1"])
            .args(["--iterations", "2", "--model", "mlp"])
            .arg("--state")
            .arg(state)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(level) = rust_log {
            command.env("RUST_LOG", level);
        }
        let mut child = command.spawn().expect("starts baal serve");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = stdout.next().expect("a line").expect("utf-8");
        // The rest of the banner is read too: the pipe stays open as a terminal would.
        std::thread::spawn(move || stdout.map_while(Result::ok).for_each(drop));
        let url = first.split(" at ").nth(1).expect("the address").to_string();
        let (addr, token) = url
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once("/#token="))
            .expect("http://ADDR/#token=TOKEN");
        Self {
            child,
            addr: addr.to_string(),
            token: token.to_string(),
            stderr,
        }
    }

    /// Waits up to 60 s for a stderr line containing every one of `parts`.
    fn wait_for(&self, parts: &[&str]) -> String {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(60) {
            if let Some(line) = self
                .stderr
                .lock()
                .expect("lines")
                .iter()
                .find(|line| parts.iter().all(|p| line.contains(p)))
            {
                return line.clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "no stderr line with {parts:?}: {:?}",
            self.stderr.lock().expect("lines")
        );
    }

    /// POSTs JSON; the status code and the body.
    fn post(&self, path: &str, body: &str) -> (u16, String) {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        );
        exchange(&self.addr, &request)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_logs_warnings_and_errors_and_requests_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // A first run makes the state; a torn line (a crash mid-write) is left behind.
    drop(Serving::start(dir.path(), &state, None));
    let journal = state.join("labels.journal");
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .expect("journal");
    torn.write_all(b"0badc0de {\"event\":\"lab")
        .expect("writes");
    drop(torn);
    let serving = Serving::start(dir.path(), &state, Some("debug"));
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
    let quiet = Serving::start(dir.path(), &state, None);
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

/// Polls `GET /api/status` (up to 60 s) until the model version is at least `version`.
fn wait_for_version(addr: &str, token: &str, version: u64) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let (code, body) = http_get(addr, "/api/status", token);
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if status["model_version"].as_u64() >= Some(version) {
            return status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(["serve", text(&folder), "--init-model", text(&model)])
        .args(["--addr", "127.0.0.1:0", "--iterations", "2", "--state"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts baal serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = stdout.next().expect("a line").expect("utf-8");
    std::thread::spawn(move || stdout.map_while(Result::ok).for_each(drop));
    let url = first.split(" at ").nth(1).expect("the address").to_string();
    let (addr, token) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once("/#token="))
        .expect("http://ADDR/#token=TOKEN");
    // 60 labelled images are the seed labels: a first retrain follows round 0.
    let status = wait_for_version(addr, token, 1);
    let _ = child.kill();
    let _ = child.wait();
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
