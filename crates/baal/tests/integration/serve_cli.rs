//! `baal serve` through the real binary: it starts, prints the page's address with its token,
//! answers the API, and refuses bad data with a message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use baal_data::formats::npy::encode_f32;

/// A plain HTTP/1.1 GET; the status line's code and the body.
fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let code = response[9..12].parse().expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn serve_prints_its_address_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = dir.path().join("pool.npy");
    let values: Vec<f32> = (0..20 * 28 * 28).map(|i| (i % 97) as f32 / 97.0).collect();
    std::fs::write(&pool, encode_f32(&[20, 28, 28], &values)).expect("writes");
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_baal"))
        .args([
            "serve",
            pool.to_str().expect("utf-8"),
            "--classes",
            "cat,dog",
            "--addr",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts baal serve");
    let first = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let url = first.split(" at ").nth(1).expect("the address").to_string();
    let (addr, token) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once("/#token="))
        .expect("http://ADDR/#token=TOKEN");
    let (code, status) = http_get(addr, "/api/status", token);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{status}");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    assert_eq!(status["n_items"], 20);
    assert_eq!(status["classes"], serde_json::json!(["cat", "dog"]));
    assert_eq!(
        std::fs::read_to_string(state.join("token")).expect("token"),
        token
    );
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
