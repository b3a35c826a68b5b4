//! A `baal serve` process for the tests: spawned, its banner read, its API called over plain
//! HTTP/1.1, killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// Sends one whole HTTP/1.1 request (`Connection: close`); the status line's code and the body.
pub fn exchange(addr: &str, request: &str) -> (u16, String) {
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
pub fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    exchange(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    )
}

/// A running `baal serve`, its stderr lines collected as they come; killed when dropped.
pub struct Serving {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The API token.
    pub token: String,
    /// Its standard error, line by line.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Serving {
    /// Spawns `command` (a `baal serve` command line) with its output piped, `RUST_LOG` set
    /// to `rust_log` (else removed), and reads the address and token from its banner.
    pub fn spawn(mut command: Command, rust_log: Option<&str>) -> Self {
        command
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
    pub fn wait_for(&self, parts: &[&str]) -> String {
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
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
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

/// Polls `GET /api/status` (up to 60 s) until the model version is at least `version`.
pub fn wait_for_version(addr: &str, token: &str, version: u64) -> serde_json::Value {
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
