//! Eight annotators label 1000 items over HTTP at once while the model retrains behind them:
//! no item is leased to two at once, none is lost, none is labelled twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{agent, post, start};
use serde_json::json;

#[test]
fn eight_annotators_label_a_thousand_items_each_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A retrain every 50 labels that takes 50 ms, so rankings swap under the annotators.
    let run = start(dir.path(), 1000, 10, 50, Duration::from_millis(50));
    let base = Arc::new(run.base.clone());
    let workers: Vec<_> = (0..8)
        .map(|a| {
            let base = Arc::clone(&base);
            std::thread::spawn(move || {
                let http = agent();
                let annotator = format!("annotator{a}");
                let mut leased = Vec::new();
                loop {
                    let (code, lease) = post(
                        &http,
                        &format!("{base}/api/next"),
                        &json!({"annotator": annotator}),
                    );
                    assert_eq!(code, 200, "{lease}");
                    if lease["lease"].is_null() {
                        return leased;
                    }
                    let item = lease["item"].as_u64().expect("item");
                    let class = item % 10;
                    let (code, done) = post(
                        &http,
                        &format!("{base}/api/label"),
                        &json!({"annotator": annotator, "lease": lease["lease"], "class": class}),
                    );
                    assert_eq!(code, 200, "{done}");
                    leased.push(item);
                }
            })
        })
        .collect();
    let per_annotator: Vec<Vec<u64>> = workers
        .into_iter()
        .map(|w| w.join().expect("annotator thread"))
        .collect();
    let all: Vec<u64> = per_annotator.iter().flatten().copied().collect();
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 1000, "every lease ended in one label");
    assert_eq!(unique.len(), 1000, "no item was leased to two annotators");
    assert!(
        per_annotator.iter().all(|items| items.len() > 20),
        "all eight took part: {:?}",
        per_annotator.iter().map(Vec::len).collect::<Vec<_>>()
    );

    let labels = run.service.store().labels();
    assert_eq!(labels.len(), 1000, "none lost");
    assert!(labels.iter().all(|(i, c)| i.get() % 10 == *c));
    let journal = std::fs::read_to_string(dir.path().join("labels.journal")).expect("journal");
    let mut times_labelled: HashMap<u64, usize> = HashMap::new();
    for line in journal.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line.split_once(' ').expect("crc json").1).expect("event");
        assert_eq!(event["event"], "label");
        *times_labelled
            .entry(event["item"].as_u64().expect("item"))
            .or_default() += 1;
    }
    assert_eq!(times_labelled.len(), 1000);
    assert!(
        times_labelled.values().all(|&n| n == 1),
        "none labelled twice"
    );
    assert!(
        run.service.status().model_version >= 2,
        "retrains ran meanwhile"
    );
}
