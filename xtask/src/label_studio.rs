//! `e2e-label-studio`: `baal serve` as the ML backend of a real Label Studio.
//!
//! Builds `baal` with the `serve` feature, starts `baal serve fashion-mnist` on a fresh state
//! folder and a fresh Label Studio (from the venv `~/.cache/baal/label-studio-venv`, made with
//! `pip install label-studio` on first use), both on free loopback ports, then runs
//! `xtask/label_studio_e2e.py` with the venv's python: it creates a project, imports tasks,
//! connects the backend, retrieves predictions, posts, updates and deletes annotations, and
//! checks each step against `baal serve`'s status and label journal. Both servers are stopped
//! whatever happens; their logs stay in the run's folder when it fails.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{cache_dir, cargo, fashion_mnist_dir, run};

/// Label Studio's user, made at its first start (a throwaway data folder per run).
const LS_USER: &str = "e2e@baal.local";
const LS_PASSWORD: &str = "baal-e2e-password";
/// The legacy API token Label Studio gives that user (`--user-token`).
const LS_TOKEN: &str = "baale2elabelstudiotoken0123456789";

/// How long Label Studio may take to start: a fresh data folder runs every migration.
const LS_START_TIMEOUT: Duration = Duration::from_secs(900);
/// How long `baal serve` may take to load the data and listen.
const SERVE_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The venv holding Label Studio: `$BAAL_CACHE_DIR/label-studio-venv`, else
/// `~/.cache/baal/label-studio-venv`.
fn label_studio_venv() -> PathBuf {
    cache_dir().join("label-studio-venv")
}

/// The venv's `bin/`, after creating the venv and installing Label Studio on first use.
fn label_studio_bin() -> Result<PathBuf, String> {
    let venv = label_studio_venv();
    let bin = venv.join("bin");
    let ready = Command::new(bin.join("python"))
        .args(["-c", "import label_studio"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && bin.join("label-studio").exists();
    if !ready {
        run("python3", &["-m", "venv", &venv.display().to_string()])?;
        run(
            &bin.join("pip").display().to_string(),
            &["install", "label-studio"],
        )?;
    }
    Ok(bin)
}

/// Cargo's target folder, as `cargo metadata` reports it.
fn target_dir() -> Result<PathBuf, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let key = "\"target_directory\":\"";
    let start = text
        .find(key)
        .map(|i| i + key.len())
        .ok_or("cargo metadata names no target_directory")?;
    let end = text[start..]
        .find('"')
        .ok_or("cargo metadata: a truncated target_directory")?;
    Ok(PathBuf::from(
        text[start..start + end].replace("\\\\", "\\"),
    ))
}

/// A free TCP port on the loopback interface (bound, then released).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The HTTP status of `GET path` on `127.0.0.1:port`, or `None` while nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A server this task started: stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(name: &'static str, mut command: Command, log: PathBuf) -> Result<Self, String> {
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        eprintln!("xtask: starting {name} (log: {})", log.display());
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Self { name, child, log })
    }

    /// The last lines of its log.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until `GET path` on `port` answers 200, failing when the process ends first or
    /// `timeout` passes.
    fn wait_ready(&mut self, port: u16, path: &str, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before answering; its log ends with:\n{}",
                    self.name,
                    self.log_tail(30)
                ));
            }
            if http_status(port, path) == Some(200) {
                eprintln!(
                    "xtask: {} answers on 127.0.0.1:{port} after {:.0?}",
                    self.name,
                    started.elapsed()
                );
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "{} did not answer GET {path} within {timeout:?}; its log ends with:\n{}",
                    self.name,
                    self.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                eprintln!("xtask: stopped {}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("xtask: killed {}", self.name);
    }
}

/// A fresh folder for one run: `<tmp>/baal-e2e-label-studio-<pid>-<time>`.
fn run_dir() -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "baal-e2e-label-studio-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// `e2e-label-studio [--data-dir DIR] [--keep]`: see the module docs. `--keep` keeps the
/// run's folder (state, Label Studio's data, logs) after a pass too.
pub fn e2e_label_studio(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let data = fashion_mnist_dir(args)?;
    let keep = args.iter().any(|a| a == "--keep");
    let bin = label_studio_bin()?;
    cargo(&["build", "--release", "-p", "baal", "--features", "serve"])?;
    let baal = target_dir()?.join("release/baal");
    let dir = run_dir()?;
    let outcome = run_servers_and_checks(&baal, &bin, &data, &dir);
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            if keep {
                eprintln!("xtask: the run's folder is kept: {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            println!("\ne2e-label-studio: PASS in {seconds:.0} s");
            Ok(())
        }
        Err(e) => {
            println!("\ne2e-label-studio: FAIL in {seconds:.0} s");
            Err(format!(
                "{e}\n(the servers' logs and state are in {})",
                dir.display()
            ))
        }
    }
}

/// Starts baal serve and Label Studio in `dir`, waits for both and runs the Python checks
/// against them; the servers stop when this returns.
fn run_servers_and_checks(baal: &Path, bin: &Path, data: &str, dir: &Path) -> Result<(), String> {
    let state = dir.join("state");
    let serve_port = free_port()?;
    let serve_cmd = baal_serve_command(baal, data, &state, serve_port);
    let mut serve = Server::start("baal serve", serve_cmd, dir.join("baal-serve.log"))?;

    let ls_port = free_port()?;
    let ls_url = format!("http://127.0.0.1:{ls_port}");
    let ls_cmd = label_studio_command(bin, ls_port, &ls_url, &dir.join("label-studio-data"));
    let mut ls = Server::start("Label Studio", ls_cmd, dir.join("label-studio.log"))?;

    serve.wait_ready(serve_port, "/health", SERVE_START_TIMEOUT)?;
    let token = std::fs::read_to_string(state.join("token"))
        .map_err(|e| format!("baal serve's token: {e}"))?
        .trim()
        .to_string();
    ls.wait_ready(ls_port, "/health", LS_START_TIMEOUT)?;

    let status = run_checks_script(bin, &ls_url, serve_port, &token, &state)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the Label Studio checks failed ({status}); baal serve's log ends with:\n{}\n\
             Label Studio's log ends with:\n{}",
            serve.log_tail(15),
            ls.log_tail(25)
        ))
    }
}

/// `baal serve` on Fashion-MNIST in `data`: a small pool, quick fits, its state in `state`,
/// listening on `port`.
fn baal_serve_command(baal: &Path, data: &str, state: &Path, port: u16) -> Command {
    let mut command = Command::new(baal);
    command.args([
        "serve",
        "fashion-mnist",
        "--data-dir",
        data,
        "--pool-size",
        "200",
        "--seed-labels",
        "20",
        "--retrain-every",
        "5",
        "--test-size",
        "500",
        "--epochs",
        "5",
        "--min-steps",
        "50",
        "--iterations",
        "10",
        "--state",
        &state.display().to_string(),
        "--addr",
        &format!("127.0.0.1:{port}"),
    ]);
    command
}

/// Label Studio from `bin` on `port` (reached at `url`), its data in `ls_data`, with the
/// test user and token, allowed to call baal serve on loopback.
fn label_studio_command(bin: &Path, port: u16, url: &str, ls_data: &Path) -> Command {
    let mut command = Command::new(bin.join("label-studio"));
    command
        .args([
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--host",
            url,
            "--data-dir",
            &ls_data.display().to_string(),
            "--username",
            LS_USER,
            "--password",
            LS_PASSWORD,
            "--user-token",
            LS_TOKEN,
            "--enable-legacy-api-token",
        ])
        .env("LABEL_STUDIO_BASE_DATA_DIR", ls_data)
        .env("LABEL_STUDIO_HOST", url)
        .env("LABEL_STUDIO_USERNAME", LS_USER)
        .env("LABEL_STUDIO_PASSWORD", LS_PASSWORD)
        .env("LABEL_STUDIO_USER_TOKEN", LS_TOKEN)
        // Label Studio 1.23 authenticates with JWT personal tokens unless the organization
        // allows the legacy `Authorization: Token <key>`.
        .env("LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN", "true")
        // baal serve listens on loopback: let Label Studio call it (ML backend and webhooks).
        .env("SSRF_PROTECTION_ENABLED", "false")
        .env("ML_BLOCK_LOCAL_IP", "false")
        .env("COLLECT_ANALYTICS", "false")
        // Webhooks wait for baal serve's journal sync; give a busy machine some slack.
        .env("WEBHOOK_TIMEOUT", "10");
    command
}

/// Runs `label_studio_e2e.py` with Label Studio's Python against both servers: 50 tasks, 8
/// of them annotated.
fn run_checks_script(
    bin: &Path,
    ls_url: &str,
    serve_port: u16,
    token: &str,
    state: &Path,
) -> Result<ExitStatus, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("label_studio_e2e.py");
    let python = bin.join("python").display().to_string();
    Command::new(&python)
        .arg(&script)
        .args([
            "--ls-url",
            ls_url,
            "--ls-token",
            LS_TOKEN,
            "--baal-url",
            &format!("http://127.0.0.1:{serve_port}"),
            "--baal-token",
            token,
            "--state",
            &state.display().to_string(),
            "--tasks",
            "50",
            "--annotate",
            "8",
        ])
        .status()
        .map_err(|e| format!("{python}: {e}"))
}
