//! A service over generated images with a fake scorer (no training), and a small HTTP client.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baal_data::{DatasetIndex, ImageDataset};
use baal_serve::http::Server;
use baal_serve::{Items, LabelStore, Round, Scorer, ServeError, Service, StoreConfig};
use serde_json::Value;

pub const TOKEN: &str = "testtoken0123456789abcdef";

/// Ranks the pool by item index, descending (or ascending on odd rounds, so that rankings
/// change), after `delay`; reports an accuracy that grows with the labels.
pub struct FakeScorer {
    pub rounds: u64,
    pub delay: Duration,
}

impl Scorer for FakeScorer {
    fn round(
        &mut self,
        labels: &[(DatasetIndex, usize)],
        pool: &[DatasetIndex],
    ) -> Result<Round, ServeError> {
        std::thread::sleep(self.delay);
        self.rounds += 1;
        let mut ranking: Vec<(DatasetIndex, f32)> =
            pool.iter().map(|&i| (i, i.get() as f32)).collect();
        ranking.sort_by_key(|&(i, _)| std::cmp::Reverse(i));
        if self.rounds.is_multiple_of(2) {
            ranking.reverse();
        }
        Ok(Round {
            predictions: ranking
                .iter()
                .map(|&(i, s)| (i, (i.get() % 3, s)))
                .collect(),
            ranking,
            accuracy: Some((labels.len() as f64 / 100.0).min(1.0)),
            train_loss: 1.0,
            n_labelled: labels.len(),
            seconds: self.delay.as_secs_f64(),
        })
    }
}

pub fn items(n: usize, classes: usize) -> Items {
    let pixels = (0..n * 16).map(|i| (i * 7 % 256) as u8).collect();
    Items {
        images: ImageDataset::new(pixels, vec![0; n], [1, 4, 4], classes).expect("images"),
        files: None,
        classes: (0..classes).map(|c| format!("class{c}")).collect(),
        seed_labels: Vec::new(),
        test: None,
    }
}

pub fn store(dir: &Path, n: usize, classes: usize, retrain_every: usize) -> LabelStore {
    LabelStore::open(
        dir,
        StoreConfig {
            classes: (0..classes).map(|c| format!("class{c}")).collect(),
            n_items: n,
            seed_labels: Vec::new(),
            lease_ttl: Duration::from_secs(600),
            retrain_every,
            initial_order: (0..n).map(DatasetIndex::new).collect(),
        },
    )
    .expect("opens the store")
}

/// A running service and its server.
pub struct Running {
    pub service: Arc<Service>,
    pub server: Server,
    pub base: String,
}

pub fn start(
    dir: &Path,
    n: usize,
    classes: usize,
    retrain_every: usize,
    delay: Duration,
) -> Running {
    let (service, _worker) = Service::start(
        store(dir, n, classes, retrain_every),
        items(n, classes),
        Box::new(FakeScorer { rounds: 0, delay }),
        TOKEN.to_string(),
    )
    .expect("starts");
    let server =
        Server::start(Arc::clone(&service), "127.0.0.1:0".parse().expect("addr")).expect("listens");
    let base = format!("http://{}", server.addr());
    Running {
        service,
        server,
        base,
    }
}

/// An HTTP client with the token.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

/// POSTs `body` with the token; the status and the JSON answer, errors included.
pub fn post(agent: &ureq::Agent, url: &str, body: &Value) -> (u16, Value) {
    answer(
        agent
            .post(url)
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(body.clone()),
    )
}

/// GETs `url` with the token.
pub fn get(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    answer(
        agent
            .get(url)
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    )
}

pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match result {
        Ok(response) => (response.status(), response.into_json().expect("JSON")),
        Err(ureq::Error::Status(code, response)) => {
            (code, response.into_json().expect("JSON error"))
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

/// The names of the entries of `dir`, sorted.
pub fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
