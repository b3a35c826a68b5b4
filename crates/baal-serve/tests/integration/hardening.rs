//! What an outside probe of `baal serve` found (issue 25), each through the real router on
//! 127.0.0.1: undo and Label Studio labels, refused batches, the token before the body,
//! timeouts and a connection cap, `/health` under a wrong token, Label Studio annotator names,
//! JSON 404/405 answers, webhooks that are not objects, numbers written oddly, percent-encoded
//! and lower-case credentials, redelivered annotations and reused annotation ids.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baal_serve::Service;
use baal_serve::http::{Server, ServerConfig};
use serde_json::{Value, json};

use crate::common::{self, FakeScorer, TOKEN, agent, get, post, start};

fn task(id: u64, item: usize) -> Value {
    json!({"id": id, "data": {"item": item}})
}

fn annotation(id: u64, choice: &str) -> Value {
    json!({"id": id, "completed_by": 1, "result": [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [choice]}}]})
}

/// POSTs `body` without credentials (Label Studio's webhooks carry the token in the path).
fn post_plain(url: &str, body: &Value) -> (u16, Value) {
    common::answer(agent().post(url).send_json(body.clone()))
}

fn labels(base: &str) -> Value {
    get(&agent(), &format!("{base}/api/labels")).1
}

#[test]
fn undo_never_takes_back_a_label_studio_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let http = agent();
    let (_, next) = post(
        &http,
        &format!("{}/api/next", run.base),
        &json!({"annotator": "alice"}),
    );
    let item = next["item"].as_u64().expect("an item") as usize;
    let (code, _) = post(
        &http,
        &format!("{}/api/label", run.base),
        &json!({"annotator": "alice", "lease": next["lease"], "class": 0}),
    );
    assert_eq!(code, 200);
    let (code, _) = post_plain(
        &format!("{}/ls/{TOKEN}/webhook", run.base),
        &json!({"action": "ANNOTATION_CREATED", "task": task(1, item), "annotation": annotation(50, "class2")}),
    );
    assert_eq!(code, 200);
    let undo = |base: &str| {
        post(
            &agent(),
            &format!("{base}/api/undo"),
            &json!({"annotator": "alice"}),
        )
    };
    let (code, answer) = undo(&run.base);
    assert_eq!(
        (code, answer["code"].clone()),
        (409, json!("nothing-to-undo"))
    );
    assert_eq!(labels(&run.base)[0]["class"], 2);
    // The same after a restart (the journal replayed).
    drop(run);
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let (code, _) = undo(&run.base);
    assert_eq!(code, 409);
    assert_eq!(labels(&run.base)[0]["class"], 2);
    assert_eq!(labels(&run.base)[0]["source"], "label-studio");
}

#[test]
fn a_refused_batch_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let ls = |path: &str| format!("{}/ls/{TOKEN}{path}", run.base);
    let (code, answer) = post_plain(
        &ls("/webhook"),
        &json!({
            "action": "ANNOTATIONS_CREATED",
            "task": [task(1, 4), task(2, 5)],
            "annotation": [
                {"task": 1, "id": 11, "completed_by": 1, "result": [{"value": {"choices": ["class1"]}}]},
                {"task": 2, "id": 12, "completed_by": 1, "result": [{"value": {"choices": ["NoSuchClass"]}}]}
            ]
        }),
    );
    assert_eq!(code, 400, "{answer}");
    assert_eq!(labels(&run.base), json!([]), "item 4 was not labelled");
    let (code, answer) = post_plain(
        &ls("/train"),
        &json!({"annotations": [
            {"id": 1, "data": {"item": 4}, "annotations": [annotation(21, "class1")]},
            {"id": 2, "data": {"item": 99999}, "annotations": [annotation(22, "class1")]}
        ]}),
    );
    assert_eq!(code, 404, "{answer}");
    assert_eq!(labels(&run.base), json!([]));
    let journal = std::fs::read(dir.path().join("labels.journal")).expect("journal");
    assert!(journal.is_empty(), "nothing journalled");
}

/// Sends `head` (without its blank line) and whatever part of a body; the status code of the
/// answer, or `None` when none came within `wait`.
fn status_within(addr: SocketAddr, head: &str, body: &[u8], wait: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .expect("writes the head");
    stream.write_all(body).expect("writes the body");
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).ok()?;
    std::str::from_utf8(&answer[9..12]).ok()?.parse().ok()
}

#[test]
fn label_studio_routes_check_the_token_before_reading_a_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let addr = run.server.addr();
    let big = "Content-Type: application/json\r\nContent-Length: 10000000";
    // A wrong token in the path, a wrong password, no credentials: 401 at once, the 10 MB
    // body never sent.
    for head in [
        format!("POST /ls/wrongtoken/webhook HTTP/1.1\r\nHost: x\r\n{big}"),
        format!("POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTp3cm9uZw==\r\n{big}"),
        format!("POST /setup HTTP/1.1\r\nHost: x\r\n{big}"),
        format!("POST /api/label HTTP/1.1\r\nHost: x\r\n{big}"),
    ] {
        assert_eq!(
            status_within(addr, &head, b"{", Duration::from_secs(3)),
            Some(401),
            "{head}"
        );
    }
    // The webhook's own limit fits its payloads: 2 MB is refused before it is read.
    let head = format!(
        "POST /ls/{TOKEN}/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000"
    );
    assert_eq!(
        status_within(addr, &head, b"{", Duration::from_secs(3)),
        Some(413)
    );
}

/// A service on a server with short timeouts and a cap of `max_connections`.
fn start_strict(dir: &std::path::Path, max_connections: usize) -> (Arc<Service>, Server) {
    let (service, _worker) = Service::start(
        common::store(dir, 10, 3, 100),
        common::items(10, 3),
        Box::new(FakeScorer {
            rounds: 0,
            delay: Duration::ZERO,
        }),
        TOKEN.to_string(),
    )
    .expect("starts");
    let config = ServerConfig {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        max_connections,
    };
    let server = Server::start_with(
        Arc::clone(&service),
        "127.0.0.1:0".parse().expect("addr"),
        config,
    )
    .expect("listens");
    (service, server)
}

/// Whether the server closed `stream` within `wait` (a read that ends, or fails other than by
/// our own timeout).
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_slow_and_surplus_connections_are_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_service, server) = start_strict(dir.path(), 3);
    let addr = server.addr();

    // An idle connection is closed after the header timeout.
    let mut idle = TcpStream::connect(addr).expect("connects");
    assert!(closed_within(&mut idle, Duration::from_secs(3)), "idle");

    // Headers trickled a byte at a time are cut at the header timeout, not served.
    let mut slow = TcpStream::connect(addr).expect("connects");
    let started = Instant::now();
    let head =
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut = false;
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    assert!(
        cut || closed_within(&mut slow, Duration::from_secs(2)),
        "slow headers"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body that stalls is answered 408 at the body timeout.
    let head = format!(
        "POST /api/next HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100"
    );
    assert_eq!(
        status_within(addr, &head, b"{\"annotator\"", Duration::from_secs(3)),
        Some(408)
    );

    // Three connections are the cap: a fourth is answered 503 and closed; once one closes,
    // the next is served.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr).expect("connects"))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let request = format!("GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}");
    assert_eq!(
        status_within(addr, &request, b"", Duration::from_secs(2)),
        Some(503)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        status_within(addr, &request, b"", Duration::from_secs(2)),
        Some(200)
    );
    server.stop().expect("stops");
}

#[test]
fn health_under_a_wrong_token_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let http = agent();
    let code = |url: String| match http.get(&url).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(code(format!("{}/ls/{TOKEN}/health", run.base)), 200);
    assert_eq!(code(format!("{}/ls/mistyped/health", run.base)), 401);
    assert_eq!(code(format!("{}/health", run.base)), 200);
}

#[test]
fn label_studio_annotator_names_are_cleaned_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let long = format!("{}@example.org", "a".repeat(200_000));
    for (item, email) in [
        (1, long.as_str()),
        (2, "bob\u{0007}\u{202e}evil\u{200f}@x.org"),
    ] {
        let mut annotation = annotation(100 + item as u64, "class1");
        annotation["completed_by"] = json!({"id": 7, "email": email});
        let (code, _) = post_plain(
            &format!("{}/ls/{TOKEN}/webhook", run.base),
            &json!({"action": "ANNOTATION_CREATED", "task": task(item as u64, item), "annotation": annotation}),
        );
        assert_eq!(code, 200);
    }
    let labels = labels(&run.base);
    let names: Vec<&str> = labels
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l["annotator"].as_str().expect("a name"))
        .collect();
    assert!(names[0].chars().count() <= 80, "{}", names[0].len());
    assert!(names[0].starts_with("label-studio:aaaa"));
    assert_eq!(names[1], "label-studio:bob_evil_@x.org");
    let journal = std::fs::read_to_string(dir.path().join("labels.journal")).expect("journal");
    assert!(journal.len() < 2000, "{} bytes", journal.len());
}

#[test]
fn unknown_routes_and_methods_answer_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let http = agent();
    let (code, answer) = get(&http, &format!("{}/no/such/route", run.base));
    assert_eq!((code, answer["code"].clone()), (404, json!("not-found")));
    let (code, answer) = get(&http, &format!("{}/api/label", run.base));
    assert_eq!(
        (code, answer["code"].clone()),
        (405, json!("method-not-allowed"))
    );
}

#[test]
fn webhooks_that_say_nothing_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let url = format!("{}/ls/{TOKEN}/webhook", run.base);
    let (code, answer) = post_plain(&url, &json!([{"action": "ANNOTATION_CREATED"}]));
    assert_eq!(code, 400, "{answer}");
    assert!(answer["error"].as_str().expect("why").contains("object"));
    let (code, answer) = post_plain(&url, &json!({"task": task(1, 1)}));
    assert_eq!(code, 400, "{answer}");
    assert!(answer["error"].as_str().expect("why").contains("action"));
    // An event of no concern to the model is still fine.
    let (code, _) = post_plain(&url, &json!({"action": "PROJECT_UPDATED"}));
    assert_eq!(code, 200);
}

#[test]
fn numbers_are_plain_decimals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let http = agent();
    let (_, next) = post(
        &http,
        &format!("{}/api/next", run.base),
        &json!({"annotator": "ann"}),
    );
    for class in ["+1", "01", " 1", "1.0"] {
        let (code, answer) = post(
            &http,
            &format!("{}/api/label", run.base),
            &json!({"annotator": "ann", "lease": next["lease"], "class": class}),
        );
        assert_eq!(
            (code, answer["code"].clone()),
            (400, json!("unknown-class")),
            "{class:?}"
        );
    }
    let (code, _) = post_plain(
        &format!("{}/ls/{TOKEN}/webhook", run.base),
        &json!({"action": "ANNOTATION_CREATED", "task": {"id": 1, "data": {"item": "+5"}}, "annotation": annotation(1, "class0")}),
    );
    assert_eq!(code, 400);
    let (code, _) = get(&http, &format!("{}/api/items/+5/image", run.base));
    assert_eq!(code, 400);
    assert_eq!(labels(&run.base), json!([]));
}

#[test]
fn credentials_are_read_as_http_writes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let http = agent();
    let status = |request: ureq::Request| match request.call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    let url = format!("{}/api/status", run.base);
    // The token with its first letter percent-encoded.
    let first = TOKEN.as_bytes()[0];
    let encoded = format!("%{first:02X}{}", &TOKEN[1..]);
    assert_eq!(status(http.get(&format!("{url}?token={encoded}"))), 200);
    assert_eq!(
        status(
            http.get(&url)
                .set("Authorization", &format!("bearer {TOKEN}"))
        ),
        200
    );
    assert_eq!(
        status(
            http.get(&url)
                .set("Authorization", &format!("BEARER {TOKEN}"))
        ),
        200
    );
    assert_eq!(status(http.get(&format!("{url}?token=%zz"))), 401);
}

#[test]
fn a_redelivered_older_annotation_does_not_set_the_class_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let url = format!("{}/ls/{TOKEN}/webhook", run.base);
    let at = |choice: &str, updated: &str| {
        let mut a = annotation(7, choice);
        a["updated_at"] = json!(updated);
        a
    };
    for (action, choice, updated) in [
        (
            "ANNOTATION_CREATED",
            "class0",
            "2026-12-01T10:00:00.000000Z",
        ),
        (
            "ANNOTATION_UPDATED",
            "class2",
            "2026-12-01T10:05:00.000000Z",
        ),
        // Label Studio retries the first delivery late.
        (
            "ANNOTATION_CREATED",
            "class0",
            "2026-12-01T10:00:00.000000Z",
        ),
    ] {
        let (code, answer) = post_plain(
            &url,
            &json!({"action": action, "task": task(1, 3), "annotation": at(choice, updated)}),
        );
        assert_eq!(code, 200, "{answer}");
    }
    assert_eq!(labels(&run.base)[0]["class"], 2);
    // The same after a restart.
    drop(run);
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let url = format!("{}/ls/{TOKEN}/webhook", run.base);
    let (code, _) = post_plain(
        &url,
        &json!({"action": "ANNOTATION_UPDATED", "task": task(1, 3), "annotation": at("class1", "2026-12-01T10:01:00.000000Z")}),
    );
    assert_eq!(code, 200);
    assert_eq!(labels(&run.base)[0]["class"], 2);
}

#[test]
fn an_annotation_id_labels_one_item_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let url = format!("{}/ls/{TOKEN}/webhook", run.base);
    let (code, _) = post_plain(
        &url,
        &json!({"action": "ANNOTATION_CREATED", "task": task(1, 3), "annotation": annotation(9, "class1")}),
    );
    assert_eq!(code, 200);
    let (code, answer) = post_plain(
        &url,
        &json!({"action": "ANNOTATION_CREATED", "task": task(2, 4), "annotation": annotation(9, "class1")}),
    );
    assert_eq!(
        (code, answer["code"].clone()),
        (409, json!("annotation-elsewhere")),
        "{answer}"
    );
    // The first item stays deletable through its annotation.
    let (code, answer) = post_plain(
        &url,
        &json!({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 9}]}),
    );
    assert_eq!((code, answer["unlabelled"].clone()), (200, json!([3])));
    assert_eq!(labels(&run.base), json!([]));
}

#[test]
fn predict_takes_a_bounded_number_of_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), 10, 3, 100, Duration::ZERO);
    let tasks: Vec<Value> = (0..10_001).map(|i| task(i, 1)).collect();
    let (code, answer) = post_plain(
        &format!("{}/ls/{TOKEN}/predict", run.base),
        &json!({"tasks": tasks}),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"].as_str().expect("why").contains("10000"),
        "{answer}"
    );
}
