//! The HTTP API end to end on 127.0.0.1: leases, labels, skip, undo, status, images, errors,
//! background retrains, restarts, and Label Studio's protocol.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{TOKEN, agent, answer, get, post, start};
use serde_json::{Value, json};

fn journal_len(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("labels.journal"))
        .expect("journal")
        .lines()
        .count()
}

#[test]
fn label_skip_undo_and_status_through_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 20, 3, 100, Duration::ZERO);
    let http = agent();
    let url = |path: &str| format!("{}{path}", run.base);

    let (code, a) = post(&http, &url("/api/next"), &json!({"annotator": "ann"}));
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["item"], 0, "the initial order first");
    let (_, b) = post(&http, &url("/api/next"), &json!({"annotator": "bob"}));
    assert_eq!(b["item"], 1, "never the item another holds");
    let (_, again) = post(&http, &url("/api/next"), &json!({"annotator": "ann"}));
    assert_eq!(
        again["lease"], a["lease"],
        "asking again gives the same lease"
    );
    let (_, preload) = post(
        &http,
        &url("/api/next"),
        &json!({"annotator": "ann", "except": a["lease"]}),
    );
    assert_eq!(preload["item"], 2, "the item to preload");

    let label = json!({"annotator": "ann", "lease": a["lease"], "class": 2});
    let (code, done) = post(&http, &url("/api/label"), &label);
    assert_eq!(code, 200, "{done}");
    assert_eq!(
        (done["item"].clone(), done["n_labelled"].clone()),
        (json!(0), json!(1))
    );
    // A retried request: same answer, nothing written twice.
    let (code, retried) = post(&http, &url("/api/label"), &label);
    assert_eq!((code, retried), (200, done));
    assert_eq!(journal_len(dir.path()), 1);
    // Labelled by name, too.
    let (code, _) = post(
        &http,
        &url("/api/label"),
        &json!({"annotator": "bob", "lease": b["lease"], "class": "class1"}),
    );
    assert_eq!(code, 200);

    let (code, _) = post(
        &http,
        &url("/api/skip"),
        &json!({"annotator": "ann", "lease": preload["lease"]}),
    );
    assert_eq!(code, 200);
    let (_, next) = post(&http, &url("/api/next"), &json!({"annotator": "ann"}));
    assert_eq!(next["item"], 3, "not the skipped item");

    let (code, undone) = post(&http, &url("/api/undo"), &json!({"annotator": "ann"}));
    assert_eq!(code, 200, "{undone}");
    assert_eq!(
        (undone["item"].clone(), undone["class"].clone()),
        (json!(0), json!(2))
    );
    let (code, err) = post(&http, &url("/api/undo"), &json!({"annotator": "ann"}));
    assert_eq!((code, err["code"].clone()), (409, json!("nothing-to-undo")));

    let (_, status) = get(&http, &url("/api/status"));
    assert_eq!(status["n_labelled"], 1);
    assert_eq!(status["n_pool"], 19);
    assert_eq!(status["classes"], json!(["class0", "class1", "class2"]));
    let (_, labels) = get(&http, &url("/api/labels"));
    assert_eq!(
        labels,
        json!([{"item": 1, "class": 1, "class_name": "class1", "annotator": "bob", "source": "web"}])
    );

    let image = http
        .get(&url(&format!("/api/items/1/image?token={TOKEN}")))
        .call()
        .expect("image");
    assert_eq!(image.content_type(), "image/png");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut image.into_reader(), &mut bytes).expect("bytes");
    assert_eq!(&bytes[1..4], b"PNG");
}

#[test]
fn bad_requests_get_4xx_json_errors_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let http = agent();
    let url = |path: &str| format!("{}{path}", run.base);
    let (_, lease) = post(&http, &url("/api/next"), &json!({"annotator": "ann"}));
    let before = get(&http, &url("/api/status")).1;

    let no_token = answer(
        http.post(&url("/api/next"))
            .send_json(json!({"annotator": "x"})),
    );
    assert_eq!(
        (no_token.0, no_token.1["code"].clone()),
        (401, json!("unauthorized"))
    );
    let wrong_token = answer(
        http.get(&url("/api/status"))
            .set("Authorization", "Bearer nottherighttoken")
            .call(),
    );
    assert_eq!(wrong_token.0, 401);
    let image = answer(http.get(&url("/api/items/0/image")).call());
    assert_eq!(image.0, 401, "images need the token too");

    let cases = [
        (
            json!({"annotator": "ann", "lease": lease["lease"], "class": 3}),
            400,
            "unknown-class",
        ),
        (
            json!({"annotator": "ann", "lease": lease["lease"], "class": "dog"}),
            400,
            "unknown-class",
        ),
        (
            json!({"annotator": "ann", "lease": 9_007_199_254_740_000_u64, "class": 0}),
            404,
            "unknown-lease",
        ),
        (
            json!({"annotator": "bob", "lease": lease["lease"], "class": 0}),
            403,
            "foreign-lease",
        ),
        (
            json!({"annotator": "", "lease": lease["lease"], "class": 0}),
            400,
            "bad-request",
        ),
        (
            json!({"annotator": "ann", "lease": "x", "class": 0}),
            400,
            "bad-request",
        ),
        (
            json!({"annotator": "ann", "lease": lease["lease"], "class": 0, "extra": 1}),
            400,
            "bad-request",
        ),
    ];
    for (body, status, code) in cases {
        let (got, err) = post(&http, &url("/api/label"), &body);
        assert_eq!(
            (got, err["code"].as_str()),
            (status, Some(code)),
            "{body}: {err}"
        );
        assert!(err["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let malformed = answer(
        http.post(&url("/api/label"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string("{not json"),
    );
    assert_eq!(
        (malformed.0, malformed.1["code"].clone()),
        (400, json!("bad-request"))
    );
    // A body over the limit is refused from its announced length, before it is read.
    let oversized = {
        use std::io::{Read, Write};
        let addr = run.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connects");
        write!(
            stream,
            "POST /api/next HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"annotator\": \""
        )
        .expect("writes the start");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    };
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    assert!(oversized.contains("\"too-large\""), "{oversized}");
    let missing = get(&http, &url("/api/items/10/image"));
    assert_eq!(
        (missing.0, missing.1["code"].clone()),
        (404, json!("unknown-item"))
    );

    assert_eq!(get(&http, &url("/api/status")).1, before, "nothing changed");
    assert!(!dir.path().join("labels.journal").exists() || journal_len(dir.path()) == 0);
    // The lease still works after all that.
    let (code, _) = post(
        &http,
        &url("/api/label"),
        &json!({"annotator": "ann", "lease": lease["lease"], "class": 0}),
    );
    assert_eq!(code, 200);
}

fn wait_for_version(http: &ureq::Agent, base: &str, version: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = get(http, &format!("{base}/api/status"));
        if status["model_version"].as_u64() >= Some(version) && status["training"] == false {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no model version {version}: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_n_labels_a_background_retrain_swaps_in_a_new_ranking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 30, 3, 3, Duration::from_millis(300));
    let http = agent();
    let url = |path: &str| format!("{}{path}", run.base);
    for _ in 0..3 {
        let (_, lease) = post(&http, &url("/api/next"), &json!({"annotator": "ann"}));
        let started = Instant::now();
        let (code, _) = post(
            &http,
            &url("/api/label"),
            &json!({"annotator": "ann", "lease": lease["lease"], "class": 1}),
        );
        assert_eq!(code, 200);
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "labels never wait for training"
        );
    }
    let status = wait_for_version(&http, &run.base, 1);
    assert_eq!(status["history"][0]["n_labelled"], 3);
    assert_eq!(status["history"][0]["accuracy"], 0.03);
    let (_, next) = post(&http, &url("/api/next"), &json!({"annotator": "ann"}));
    assert_eq!(
        next["item"], 29,
        "the fake model ranks the highest index first"
    );
    assert_eq!(next["model_version"], 1);
    let (code, _) = post(&http, &url("/api/retrain"), &json!({}));
    assert_eq!(code, 200);
    wait_for_version(&http, &run.base, 2);
}

#[test]
fn labels_survive_a_restart_and_the_queue_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = agent();
    let mut labelled = Vec::new();
    {
        let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
        for class in 0..3 {
            let (_, lease) = post(
                &http,
                &format!("{}/api/next", run.base),
                &json!({"annotator": "ann"}),
            );
            post(
                &http,
                &format!("{}/api/label", run.base),
                &json!({"annotator": "ann", "lease": lease["lease"], "class": class}),
            );
            labelled.push((lease["item"].clone(), class));
        }
        post(
            &http,
            &format!("{}/api/undo", run.base),
            &json!({"annotator": "ann"}),
        );
        labelled.pop();
        run.server.stop().expect("stops");
    }
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let (_, labels) = get(&http, &format!("{}/api/labels", run.base));
    let got: Vec<(Value, u64)> = labels
        .as_array()
        .expect("list")
        .iter()
        .map(|l| (l["item"].clone(), l["class"].as_u64().expect("class")))
        .collect();
    assert_eq!(
        got,
        labelled
            .iter()
            .map(|(i, c)| (i.clone(), *c as u64))
            .collect::<Vec<_>>()
    );
    // Undo reaches back over the restart.
    let (code, undone) = post(
        &http,
        &format!("{}/api/undo", run.base),
        &json!({"annotator": "ann"}),
    );
    assert_eq!((code, undone["item"].clone()), (200, labelled[1].0.clone()));
    let (_, status) = get(&http, &format!("{}/api/status", run.base));
    assert_eq!(
        (status["n_labelled"].clone(), status["n_pool"].clone()),
        (json!(1), json!(9))
    );
    let (_, next) = post(
        &http,
        &format!("{}/api/next", run.base),
        &json!({"annotator": "ann"}),
    );
    assert_ne!(
        next["item"], labelled[0].0,
        "the queue goes on without the labelled item"
    );
}

const CONFIG: &str = r#"<View><Image name="image" value="$image"/><Choices name="choice" toName="image"><Choice value="class0"/><Choice value="class1"/><Choice value="class2"/></Choices></View>"#;

#[test]
fn a_request_refused_before_its_body_is_read_closes_its_connection() {
    // The server does not read a refused request's body, so the connection cannot carry
    // another request; without `Connection: close` a pooling client sent its next request on
    // it and got "Unexpected EOF" (a flaky failure of the test below in CI).
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 12, 3, 2, Duration::ZERO);
    let http = agent();
    // A small body, sent with the head: a large one would race the server's early answer
    // (the client still writing when the connection closes). 413 and 408 take the same path.
    let url = format!("{}/ls/wrongtoken/predict", run.base);
    match http.post(&url).send_json(json!({"tasks": []})) {
        Err(ureq::Error::Status(code, response)) => {
            assert_eq!(code, 401);
            assert_eq!(response.header("connection"), Some("close"));
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // The same client's next request gets its answer.
    let (code, _) = common::answer(http.get(&format!("{}/ls/{TOKEN}/health", run.base)).call());
    assert_eq!(code, 200);
}

#[test]
fn label_studio_protocol_predicts_and_takes_annotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 12, 3, 2, Duration::ZERO);
    let http = agent();
    let ls = |path: &str| format!("{}/ls/{TOKEN}{path}", run.base);

    let health: Value = http
        .get(&ls("/health"))
        .call()
        .expect("health")
        .into_json()
        .expect("json");
    assert_eq!(health["status"], "UP");
    let (code, setup) = common::answer(
        http.post(&ls("/setup"))
            .send_json(json!({"project": "1.1", "schema": CONFIG})),
    );
    assert_eq!(
        (code, setup["model_version"].clone()),
        (200, json!("baal-v0"))
    );
    let bad_schema = CONFIG.replace("class2", "horse");
    let (code, err) = common::answer(
        http.post(&ls("/setup"))
            .send_json(json!({"schema": bad_schema})),
    );
    assert_eq!(code, 400);
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("horse")),
        "{err}"
    );
    let wrong = common::answer(
        http.post(&format!("{}/ls/wrongtoken/predict", run.base))
            .send_json(json!({"tasks": []})),
    );
    assert_eq!(wrong.0, 401);

    let task = |id: u64, item: usize| json!({"id": id, "data": {"image": format!("/api/items/{item}/image"), "item": item}});
    let annotation = |id: u64, choice: &str| json!({"id": id, "completed_by": 1, "result": [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [choice]}}]});
    for (id, item, choice) in [(100, 4, "class2"), (101, 5, "class0")] {
        let (code, done) = common::answer(http.post(&ls("/webhook")).send_json(json!({
            "action": "ANNOTATION_CREATED", "task": task(id, item), "annotation": annotation(id + 1000, choice)
        })));
        assert_eq!(code, 200, "{done}");
    }
    let (_, labels) = get(&http, &format!("{}/api/labels", run.base));
    assert_eq!(labels[0]["item"], 4);
    assert_eq!(labels[0]["class"], 2);
    assert_eq!(labels[0]["source"], "label-studio");
    assert_eq!(labels[0]["annotator"], "label-studio:1");

    // Two labels make a retrain due: predictions with scores and the new version follow.
    wait_for_version(&http, &run.base, 1);
    let (code, predicted) = common::answer(
        http.post(&ls("/predict"))
            .send_json(json!({"tasks": [task(1, 7), task(2, 4)], "label_config": CONFIG})),
    );
    assert_eq!(code, 200, "{predicted}");
    let first = &predicted["results"][0];
    assert_eq!(first["model_version"], "baal-v1");
    assert_eq!(first["score"], 7.0);
    assert_eq!(first["result"][0]["value"]["choices"][0], "class1", "7 % 3");
    assert_eq!(first["result"][0]["from_name"], "choice");
    assert_eq!(
        predicted["results"][1]["result"][0]["value"]["choices"][0], "class2",
        "the label of a labelled item"
    );

    let (code, _) = common::answer(http.post(&ls("/webhook")).send_json(json!({
        "action": "ANNOTATION_UPDATED", "task": task(100, 4), "annotation": annotation(1100, "class1")
    })));
    assert_eq!(code, 200);
    let (_, labels) = get(&http, &format!("{}/api/labels", run.base));
    assert_eq!(labels[0]["class"], 1, "updated");
    let (code, deleted) = common::answer(http.post(&ls("/webhook")).send_json(json!({
        "action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1101}]
    })));
    assert_eq!((code, deleted["unlabelled"].clone()), (200, json!([5])));
    let (_, labels) = get(&http, &format!("{}/api/labels", run.base));
    assert_eq!(labels.as_array().map(Vec::len), Some(1));
    let (code, err) = common::answer(http.post(&ls("/webhook")).send_json(json!({
        "action": "ANNOTATION_CREATED", "task": task(9, 99), "annotation": annotation(9, "class0")
    })));
    assert_eq!((code, err["code"].clone()), (404, json!("unknown-item")));
    let (code, _) = common::answer(
        http.post(&ls("/webhook"))
            .send_json(json!({"action": "START_TRAINING", "project": {"id": 1}})),
    );
    assert_eq!(code, 200);
    wait_for_version(&http, &run.base, 2);
}
