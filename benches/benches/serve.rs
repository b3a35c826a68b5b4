//! The labelling service under load: 8 clients on 127.0.0.1 each ask for the next item and
//! label it, while the model retrains (a small CNN trained, then MC-sampled over the pool
//! with BALD) in the background without pause. Criterion reports the throughput of
//! next + label pairs; the p50 / p99 latency of a pair is printed at the end (goal: p99
//! under 20 ms during a retrain).
//!
//! `cargo bench -p baal-benches --bench serve`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baal::active::TrainerConfig;
use baal::burn::tensor::Device;
use baal::data::{DatasetIndex, ImageDataset};
use baal::heuristics::Bald;
use baal_serve::http::Server;
use baal_serve::{Items, LabelStore, Service, StoreConfig, ZooScorer};
use baal_zoo::images::{Normalization, NormalizedImages};
use baal_zoo::models::ModelKind;
use criterion::{Criterion, Throughput, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CLIENTS: usize = 8;
const TOKEN: &str = "benchtoken0123456789";
const SEED_LABELS: usize = 100;

/// A service over `n` random 28×28 images, retraining after every label so that a retrain
/// always runs, and its server.
fn running_service(n: usize, dir: &std::path::Path) -> (Arc<Service>, Server) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let pixels: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let images = ImageDataset::new(pixels, labels, [1, 28, 28], 10).expect("images");
    let classes: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let seed_labels: Vec<(DatasetIndex, usize)> = (0..SEED_LABELS)
        .map(|i| (DatasetIndex::new(i), i % 10))
        .collect();
    let store = LabelStore::open(
        dir,
        StoreConfig {
            classes: classes.clone(),
            n_items: n,
            seed_labels: seed_labels.clone(),
            lease_ttl: Duration::from_secs(600),
            retrain_every: 1,
            initial_order: (0..n).map(DatasetIndex::new).collect(),
        },
    )
    .expect("store");
    let scorer = ZooScorer {
        images: NormalizedImages::all(&images, &Normalization::fashion_mnist())
            .expect("normalised"),
        test: None,
        classes: 10,
        model: ModelKind::SmallCnn,
        heuristic: Box::new(Bald),
        iterations: 20,
        trainer: TrainerConfig::new()
            .with_epochs(30)
            .with_min_gradient_steps(200),
        seed: 0,
        device: Device::default(),
        rounds: 0,
        card: None,
        init: None,
        last_model: None,
    };
    let items = Items {
        images,
        files: None,
        classes,
        seed_labels,
        test: None,
    };
    let (service, _) =
        Service::start(store, items, Box::new(scorer), TOKEN.into()).expect("service");
    let server =
        Server::start(Arc::clone(&service), "127.0.0.1:0".parse().expect("addr")).expect("server");
    (service, server)
}

fn post(agent: &ureq::Agent, url: &str, body: serde_json::Value) -> serde_json::Value {
    agent
        .post(url)
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(body)
        .expect("request")
        .into_json()
        .expect("json")
}

/// Latencies of next + label pairs, and the retrain state seen at the end of each run.
#[derive(Default)]
struct Record {
    latencies: Vec<Duration>,
    runs: usize,
    training_at_end: usize,
}

/// `iters` next + label pairs spread over the clients of a fresh service that is retraining;
/// each client sends a pair every `pace` (back to back when `None`). Returns the wall time.
fn run_clients(iters: u64, pace: Option<Duration>, record: &Arc<Mutex<Record>>) -> Duration {
    let per_client = (iters as usize).div_ceil(CLIENTS);
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, server) = running_service(SEED_LABELS + per_client * CLIENTS + 16, dir.path());
    while !service.status().training {
        std::thread::sleep(Duration::from_millis(1));
    }
    let base = format!("http://{}", server.addr());
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|a| {
            let (base, record) = (base.clone(), Arc::clone(record));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let annotator = format!("client{a}");
                let mut mine = Vec::with_capacity(per_client);
                // Paced clients start spread over one period.
                let mut due = Instant::now() + pace.map_or(Duration::ZERO, |p| p * a as u32 / CLIENTS as u32);
                for _ in 0..per_client {
                    if let Some(pace) = pace {
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        due += pace;
                    }
                    let t = Instant::now();
                    let lease = post(&agent, &format!("{base}/api/next"), serde_json::json!({"annotator": annotator}));
                    post(
                        &agent,
                        &format!("{base}/api/label"),
                        serde_json::json!({"annotator": annotator, "lease": lease["lease"], "class": 1}),
                    );
                    mine.push(t.elapsed());
                }
                record.lock().expect("lock").latencies.extend(mine);
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    let elapsed = started.elapsed();
    let mut r = record.lock().expect("lock");
    r.runs += 1;
    r.training_at_end += usize::from(service.status().training);
    drop(server);
    elapsed
}

fn report(id: &str, record: &Mutex<Record>) {
    let record = record.lock().expect("lock");
    let mut all = record.latencies.clone();
    all.sort_unstable();
    if all.is_empty() {
        return;
    }
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "{id}: {} pairs; latency of next + label p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; a retrain still running at the end of {} of {} runs",
        all.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        record.training_at_end,
        record.runs
    );
}

fn bench_serve(c: &mut Criterion) {
    let mut group = c.benchmark_group("serve");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(1));
    // Saturation: eight clients back to back, the latency is mostly the wait for the others.
    let saturated = Arc::new(Mutex::new(Record::default()));
    group.bench_function("next_label/8_clients", |b| {
        b.iter_custom(|iters| run_clients(iters, None, &saturated));
    });
    // Eight fast annotators: a pair every 100 ms each (80 pairs/s in all).
    let paced = Arc::new(Mutex::new(Record::default()));
    group.bench_function("next_label/8_clients_every_100ms", |b| {
        b.iter_custom(|iters| run_clients(iters, Some(Duration::from_millis(100)), &paced));
    });
    group.finish();
    report("serve/next_label/8_clients", &saturated);
    report("serve/next_label/8_clients_every_100ms", &paced);
}

/// Criterion's generated group function carries no doc comment.
mod group {
    #![allow(missing_docs)]
    use super::bench_serve;
    use criterion::criterion_group;
    criterion_group!(benches, bench_serve);
}

criterion_main!(group::benches);
