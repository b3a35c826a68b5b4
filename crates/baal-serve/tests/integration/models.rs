//! The models a service keeps (`STATE/models/round-NNNNNN/`, `GET /api/model`) and the model
//! it starts from (`--init-model`), with a real (tiny) model: an MLP on 4×4 images.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baal_data::Normalization;
use baal_data::formats::npy::encode_f32;
use baal_serve::cli::{ServeArgs, start};
use baal_serve::http::Server;
use baal_serve::{ModelKeeper, Service};
use baal_zoo::folder::{
    MODEL_CARD_FORMAT, ModelCard, ModelFolder, ModelFolderWriter, TrainMetrics,
};
use baal_zoo::models::{MlpConfig, ModelKind};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use clap::Parser;
use serde_json::{Value, json};

use crate::common::{self, FakeScorer};

const ITEMS: usize = 12;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// A pool of [`ITEMS`] grey 4×4 images, `dir/pool.npy`.
fn write_pool(dir: &Path, side: usize) -> PathBuf {
    let pool = dir.join("pool.npy");
    let values: Vec<f32> = (0..ITEMS * side * side)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    std::fs::write(&pool, encode_f32(&[ITEMS, side, side], &values)).expect("writes");
    pool
}

/// `baal serve`'s arguments for `pool` and `state`: an MLP, a retrain after every label,
/// one epoch of one step, 2 MC iterations; then `extra`.
fn args(pool: &Path, state: &Path, extra: &[&str]) -> ServeArgs {
    let mut line = vec![
        "baal-serve".to_string(),
        pool.display().to_string(),
        "--state".into(),
        state.display().to_string(),
    ];
    line.extend(
        [
            "--classes",
            "a,b",
            "--addr",
            "127.0.0.1:0",
            "--retrain-every",
            "1",
            "--epochs",
            "1",
            "--min-steps",
            "1",
            "--iterations",
            "2",
        ]
        .map(String::from),
    );
    line.extend(extra.iter().map(|s| (*s).to_string()));
    Cli::try_parse_from(line).expect("arguments").serve
}

/// A model folder `dir/name` of an MLP for 4×4 grey images of `classes`, fresh weights.
fn init_model(dir: &Path, name: &str, classes: &[&str]) -> ModelFolder {
    let card = ModelCard {
        format: MODEL_CARD_FORMAT,
        model: ModelKind::Mlp,
        image_shape: [1, 4, 4],
        classes: classes.iter().map(|c| (*c).to_string()).collect(),
        normalization: Normalization {
            mean: vec![0.5],
            std: vec![0.3],
        },
        metrics: TrainMetrics {
            train_loss: 0.25,
            epochs_run: 1,
            gradient_steps: 1,
            seconds: 0.0,
            validation_items: 0,
            validation: None,
        },
        data: "elsewhere.npy".into(),
        labelled: 10,
        seed: 3,
        epochs: 1,
        min_steps: 1,
        version: None,
        init_model: None,
    };
    let target = dir.join(name);
    let writer = ModelFolderWriter::beside(&target).expect("staging");
    MlpConfig::new(16, classes.len())
        .init(&Device::default())
        .expect("an MLP")
        .save_file(writer.weights_path())
        .expect("weights");
    writer.install(&card, &target, false).expect("installed")
}

/// Every weight of a model, in order.
#[derive(Default)]
struct Weights(Vec<f32>);

impl ModuleVisitor for Weights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 weights");
        self.0.extend(values);
    }
}

/// The weights of the MLP in `file`.
fn mlp_weights(file: &Path) -> Vec<f32> {
    let model = MlpConfig::new(16, 2)
        .init(&Device::default())
        .expect("an MLP")
        .try_load_file(file)
        .expect("loads");
    let mut weights = Weights::default();
    model.visit(&mut weights);
    weights.0
}

/// The largest difference between two models' weights.
fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
}

/// A running `baal serve` (as `cli::start` makes it) and a client with its token.
struct Running {
    server: Server,
    token: String,
    http: ureq::Agent,
}

impl Running {
    fn start(args: &ServeArgs) -> Self {
        let (server, token) = start(args, &Device::default()).expect("starts");
        Self {
            server,
            token,
            http: common::agent(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        common::answer(
            self.http
                .get(&self.url(path))
                .set("Authorization", &format!("Bearer {}", self.token))
                .call(),
        )
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        common::answer(
            self.http
                .post(&self.url(path))
                .set("Authorization", &format!("Bearer {}", self.token))
                .send_json(body.clone()),
        )
    }

    /// Leases the next item and labels it `class`.
    fn label_next(&self, class: usize) {
        let (code, next) = self.post("/api/next", &json!({"annotator": "ann"}));
        assert_eq!(code, 200, "{next}");
        let label = json!({"annotator": "ann", "lease": next["lease"], "class": class});
        let (code, done) = self.post("/api/label", &label);
        assert_eq!(code, 200, "{done}");
    }

    /// Waits (up to 60 s) until the status satisfies `done`; returns it.
    fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (_, status) = self.get("/api/status");
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: {status}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until model version `version` is in place and no retrain runs.
    fn wait_for_version(&self, version: u64) -> Value {
        self.wait_for(&format!("model version {version}"), |s| {
            s["model_version"].as_u64() >= Some(version) && s["training"] == json!(false)
        })
    }

    /// Waits until `/api/model` names `version`; returns its answer.
    fn wait_for_kept(&self, version: u64) -> Value {
        let started = Instant::now();
        loop {
            let (code, model) = self.get("/api/model");
            if code == 200 && model["version"] == json!(version) {
                return model;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{code} {model}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn kept_folders(state: &Path) -> Vec<String> {
    crate::common::sorted_names(&state.join("models"))
}

#[test]
fn each_round_keeps_its_model_folder_and_the_latest_two_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let pool = write_pool(dir.path(), 4);
    let run = Running::start(&args(
        &pool,
        &state,
        &["--model", "mlp", "--keep-models", "2"],
    ));
    let (code, none) = run.get("/api/model");
    assert_eq!(
        (code, none["code"].clone()),
        (404, json!("no-model")),
        "{none}"
    );

    run.label_next(0);
    run.wait_for_version(1);
    let model = run.wait_for_kept(1);
    let folder = state.join("models").join("round-000001");
    assert_eq!(model["path"], json!(folder), "{model}");
    let read = ModelFolder::read(&folder).expect("a readable model folder");
    assert_eq!(read.card.version, Some(1));
    assert_eq!(read.card.model, ModelKind::Mlp);
    assert_eq!(read.card.labelled, 1);
    assert_eq!(read.card.classes, ["a", "b"]);
    assert_eq!(read.card.image_shape, [1, 4, 4]);
    assert_eq!(read.card.data, pool.display().to_string());
    assert!(read.card.metrics.gradient_steps >= 1);
    let answered: ModelCard = serde_json::from_value(model["card"].clone()).expect("a card");
    assert_eq!(answered, read.card);
    read.load_weights(&Device::default())
        .expect("its weights load");

    for version in 2..=3 {
        run.label_next(1);
        run.wait_for_version(version);
        run.wait_for_kept(version);
    }
    assert_eq!(kept_folders(&state), ["round-000002", "round-000003"]);
    drop(run);

    // After a restart the latest on disk is the service's model until a new round.
    let (service, _worker) = Service::start_keeping_models(
        common::store(&state, ITEMS, 2, 100),
        common::items(ITEMS, 2),
        Box::new(FakeScorer {
            rounds: 0,
            delay: Duration::from_secs(600),
        }),
        common::TOKEN.into(),
        ModelKeeper::open(&state, 2),
    )
    .expect("restarts");
    let kept = service.model().expect("the kept model");
    assert_eq!(kept.version, 3);
    assert_eq!(kept.path, state.join("models").join("round-000003"));
    let server =
        Server::start(Arc::clone(&service), "127.0.0.1:0".parse().expect("addr")).expect("listens");
    let (code, model) = common::get(
        &common::agent(),
        &format!("http://{}/api/model", server.addr()),
    );
    assert_eq!((code, model["version"].clone()), (200, json!(3)), "{model}");
}

#[test]
fn no_model_is_kept_with_keep_models_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let pool = write_pool(dir.path(), 4);
    let run = Running::start(&args(
        &pool,
        &state,
        &["--model", "mlp", "--keep-models", "0"],
    ));
    run.label_next(0);
    run.wait_for_version(1);
    let (code, _) = run.get("/api/model");
    assert_eq!(code, 404);
    assert!(!state.join("models").join("round-000001").exists());
}

#[test]
fn an_init_model_ranks_the_pool_first_and_every_round_starts_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = write_pool(dir.path(), 4);
    let folder = init_model(dir.path(), "init", &["a", "b"]);

    // Without it: the shuffled order, no scores, no model.
    let plain = Running::start(&args(&pool, &dir.path().join("plain"), &["--model", "mlp"]));
    let first_items = |run: &Running| -> Vec<(u64, f64, u64)> {
        (0..4)
            .map(|i| {
                let (code, next) = run.post("/api/next", &json!({"annotator": format!("p{i}")}));
                assert_eq!(code, 200, "{next}");
                (
                    next["item"].as_u64().expect("item"),
                    next["score"].as_f64().expect("score"),
                    next["model_version"].as_u64().expect("version"),
                )
            })
            .collect()
    };
    let shuffled = first_items(&plain);
    assert!(
        shuffled
            .iter()
            .all(|&(_, score, version)| score == 0.0 && version == 0)
    );

    // With it (its model kind and classes from its card): round 0 ranks the pool by BALD.
    let state = dir.path().join("state");
    let init_arg = folder.dir.display().to_string();
    let run = Running::start(&args(&pool, &state, &["--init-model", &init_arg]));
    let status = run.wait_for_version(1);
    assert_eq!(status["history"][0]["n_labelled"], 0, "{status}");
    let ranked = first_items(&run);
    assert!(
        ranked
            .iter()
            .all(|&(_, score, version)| score > 0.0 && version == 1),
        "{ranked:?}"
    );
    assert!(
        ranked.windows(2).all(|w| w[0].1 >= w[1].1),
        "most informative first: {ranked:?}"
    );
    let order = |items: &[(u64, f64, u64)]| items.iter().map(|i| i.0).collect::<Vec<_>>();
    assert_ne!(
        order(&ranked),
        order(&shuffled),
        "the model's order, not the shuffle"
    );
    // Round 0's model is the init model, kept as version 1: /api/model names the model
    // behind the ranking (it said 404 until the first retrain).
    let round0 = run.wait_for_kept(1);
    let kept0 = ModelFolder::read(&state.join("models").join("round-000001")).expect("kept");
    assert_eq!(kept0.card.classes, folder.card.classes, "{round0}");
    assert_eq!(
        kept0.card.metrics, folder.card.metrics,
        "the init model's own metrics"
    );
    assert_eq!(
        mlp_weights(&kept0.weights),
        mlp_weights(&folder.weights),
        "its weights as they are"
    );

    // A retrain starts from the folder's weights: one Adam step (1e-3) away from them.
    run.label_next(0);
    run.wait_for_version(2);
    let model = run.wait_for_kept(2);
    let kept = ModelFolder::read(&state.join("models").join("round-000002")).expect("kept");
    let canonical = std::fs::canonicalize(&folder.dir).expect("canonical");
    assert_eq!(
        kept.card.init_model.as_deref(),
        Some(canonical.as_path()),
        "{model}"
    );
    assert_eq!(kept.card.normalization, folder.card.normalization);
    let (start, trained) = (mlp_weights(&folder.weights), mlp_weights(&kept.weights));
    let moved = largest_difference(&start, &trained);
    assert!(moved > 0.0 && moved < 0.01, "moved {moved}");
    // A service without it trains from fresh weights, far from the folder's.
    plain.label_next(0);
    plain.wait_for_version(1);
    plain.wait_for_kept(1);
    let fresh = mlp_weights(&dir.path().join("plain/models/round-000001/weights.bpk"));
    let far = largest_difference(&start, &fresh);
    assert!(far > 0.05, "fresh weights moved only {far}");
}

#[test]
fn an_init_model_for_other_data_is_refused_before_the_state_is_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = write_pool(dir.path(), 4);
    let state = dir.path().join("state");
    let refused = |folder: &ModelFolder, pool: &Path, extra: &[&str]| -> String {
        let init_arg = folder.dir.display().to_string();
        let mut all = vec!["--init-model", init_arg.as_str()];
        all.extend_from_slice(extra);
        let error = match start(&args(pool, &state, &all), &Device::default()) {
            Ok(_) => panic!("started with {all:?}"),
            Err(error) => error,
        };
        assert!(
            matches!(error, baal_serve::ServeError::Config(_)),
            "{error:?}"
        );
        assert!(!state.exists(), "the state folder was touched: {error}");
        let message = error.to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        message
    };
    let card = |folder: &ModelFolder| folder.card_path.display().to_string();

    let other_classes = init_model(dir.path(), "other-classes", &["a", "c"]);
    let message = refused(&other_classes, &pool, &[]);
    assert!(
        message.starts_with(&card(&other_classes)) && message.contains("\"c\""),
        "{message}"
    );
    let three = init_model(dir.path(), "three", &["a", "b", "c"]);
    let message = refused(&three, &pool, &["--classes", "a,b"]);
    assert!(message.contains("3 classes"), "{message}");

    let good = init_model(dir.path(), "good", &["a", "b"]);
    let bigger_dir = dir.path().join("bigger");
    std::fs::create_dir(&bigger_dir).expect("mkdir");
    let bigger = write_pool(&bigger_dir, 5);
    let message = refused(&good, &bigger, &[]);
    assert!(
        message.starts_with(&card(&good)) && message.contains("5×5"),
        "{message}"
    );
    let message = refused(&good, &pool, &["--model", "small-cnn"]);
    assert!(
        message.starts_with(&card(&good)) && message.contains("mlp"),
        "{message}"
    );

    let bytes = std::fs::read(&good.weights).expect("weights");
    std::fs::write(&good.weights, &bytes[..bytes.len() / 2]).expect("cut");
    let message = refused(&good, &pool, &[]);
    assert!(
        message.starts_with(&good.weights.display().to_string()),
        "{message}"
    );
}
