//! MC sampling on a remote device: `baal remote-serve` lends a flex device on 127.0.0.1, this
//! process streams the pool to it, and BALD scores its predictions. They must equal the
//! scores of the same model sampled locally on flex.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use baal::bayesian::{
    DropConnectLinear, DropConnectLinearConfig, McContext, McDropout, McDropoutConfig,
    McSamplerConfig, StochasticModel,
};
use baal::device::{DeviceError, REMOTE_TOKEN_VAR, parse_device};
use baal::heuristics::{Bald, Heuristic, Predictions};
use baal_data::formats::npy::encode_f32;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

const FEATURES: usize = 6;
const CLASSES: usize = 4;
const POOL_ITEMS: usize = 23;

/// A `baal remote-serve` child process, killed and reaped when dropped, even by a failing test.
struct Server {
    child: Child,
    /// What the server wrote to standard error, for a failure's message.
    log: Arc<Mutex<String>>,
    /// The client's device name, `remote:ws://127.0.0.1:PORT`.
    device_name: String,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1, requiring `token` if one is given, and
    /// waits for the line that names it.
    fn start(device: &str, token: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_baal"));
        command
            .args(["remote-serve", "--addr", "127.0.0.1:0", "--device", device])
            .env("RUST_LOG", "warn")
            .env_remove(REMOTE_TOKEN_VAR);
        if let Some(token) = token {
            command.env(REMOTE_TOKEN_VAR, token);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start baal remote-serve");
        // Drained on a thread so that a chatty server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            sink.lock().expect("log lock").push_str(&text);
        });
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout
            .read_line(&mut line)
            .expect("read the server's address");
        // Burn's server log follows on standard output: keep reading so that it has a reader.
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            sink.lock().expect("log lock").push_str(&text);
        });
        let mut server = Self {
            child,
            log,
            device_name: line.trim().to_string(),
        };
        if !server.device_name.starts_with("remote:ws://127.0.0.1:") {
            let status = server.child.wait().expect("wait for the server");
            panic!(
                "baal remote-serve printed {line:?} and exited with {status}: {}",
                server.log.lock().expect("log lock")
            );
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `linear → relu` trunk, then an MC dropout and a DropConnect linear: both kinds of seeded
/// masks, uploaded with `Tensor::from_data`, cross the network.
#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    dropout: McDropout,
    output: DropConnectLinear,
}

impl Mlp {
    fn new(device: &Device) -> baal::bayesian::Result<Self> {
        Ok(Self {
            hidden: LinearConfig::new(FEATURES, 16).init(device),
            dropout: McDropoutConfig::new(0.5).init()?,
            output: DropConnectLinearConfig::new(LinearConfig::new(16, CLASSES), 0.3)
                .init(device)?,
        })
    }
}

impl StochasticModel for Mlp {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        relu(self.hidden.forward(input))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.output.forward(self.dropout.forward(features, mc), mc)
    }
}

/// The pool, held by this process: deterministic rows of `FEATURES` values.
fn pool() -> InMemDataset<Vec<f32>> {
    InMemDataset::new(
        (0..POOL_ITEMS)
            .map(|item| {
                (0..FEATURES)
                    .map(|feature| ((item * 7 + feature * 3) % 11) as f32 / 5.0 - 1.0)
                    .collect()
            })
            .collect(),
    )
}

/// MC-samples the pool on `model`'s device, streaming it in batches of 5, and scores BALD.
fn bald_scores(model: &Mlp, device: &Device) -> Vec<f32> {
    let sampler = McSamplerConfig::new(10)
        .with_seed(11)
        .init()
        .expect("sampler");
    let probs = sampler
        .predict_dataset(model, &pool(), 5, |rows: Vec<Vec<f32>>| {
            let count = rows.len();
            Tensor::<2>::from_data(TensorData::new(rows.concat(), [count, FEATURES]), device)
        })
        .expect("MC sampling");
    assert_eq!(probs.dims(), [POOL_ITEMS, CLASSES, 10]);
    let predictions = Predictions::from_probs(probs).expect("probabilities");
    Bald.scores(&predictions, None).expect("BALD")
}

#[test]
fn remote_scores_equal_local_scores() {
    let server = Server::start("cpu", None);
    let remote = parse_device(&server.device_name).expect("connect the remote device");
    let local = Device::flex();

    let model = Mlp::new(&local).expect("model");
    // The clone shares the parameters, so they initialize here and the copy carries them over.
    let remote_model = model.clone().to_device(&remote);

    let local_scores = bald_scores(&model, &local);
    let remote_scores = bald_scores(&remote_model, &remote);

    assert_eq!(local_scores.len(), POOL_ITEMS);
    assert!(
        local_scores.iter().any(|score| *score > 1e-3),
        "the MC samples disagree somewhere: {local_scores:?}"
    );
    for (item, (local, remote)) in local_scores.iter().zip(&remote_scores).enumerate() {
        assert!(
            (local - remote).abs() <= 1e-6,
            "item {item}: local {local} vs remote {remote}"
        );
    }
    drop(server);
}

#[test]
fn a_server_that_is_not_there_is_an_error() {
    // A port that was free a moment ago: every dial is refused until Burn's retries run out.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("address").port();
    drop(socket);
    let name = format!("remote:ws://127.0.0.1:{port}");
    match parse_device(&name) {
        Err(DeviceError::Remote { address, reason }) => {
            assert_eq!(address, format!("ws://127.0.0.1:{port}"));
            assert!(!reason.is_empty());
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[test]
fn a_server_with_a_token_admits_only_clients_that_present_it() {
    let server = Server::start("cpu", Some("s3cret"));
    let dir = tempfile::tempdir().expect("tempdir");
    let predictions = dir.path().join("p.npy");
    // 2 items, 2 classes, 2 MC iterations.
    std::fs::write(
        &predictions,
        encode_f32(&[2, 2, 2], &[0.5, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0, 1.0]),
    )
    .expect("write npy");
    let score = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_baal"))
            .args(["score", "--heuristic", "bald", "--device"])
            .arg(&server.device_name)
            .arg(&predictions)
            .env(REMOTE_TOKEN_VAR, token)
            .output()
            .expect("run baal score")
    };

    let refused = score("wrong");
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("cannot connect the remote device") && message.contains("rejected"),
        "{message}"
    );

    let admitted = score("s3cret");
    assert!(
        admitted.status.success(),
        "{}",
        String::from_utf8_lossy(&admitted.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&admitted.stdout).expect("JSON");
    assert_eq!(report["ranks"][0], 1);
}
