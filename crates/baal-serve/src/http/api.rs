//! The labelling API (`/api/...`) and the page (`/`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::{call, parse_json, plain_index};
use crate::error::ServeError;
use crate::queue::LeaseId;
use crate::service::Service;

type Svc = State<Arc<Service>>;
type Body = Result<Bytes, BytesRejection>;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/api/status", get(status))
        .route("/api/labels", get(labels))
        .route("/api/next", post(next))
        .route("/api/label", post(label))
        .route("/api/skip", post(skip))
        .route("/api/undo", post(undo))
        .route("/api/retrain", post(retrain))
        .route("/api/model", get(model))
        .route("/api/items/{item}/image", get(image))
}

const PAGE: &str = include_str!("../../page/index.html");
const SCRIPT: &str = include_str!("../../page/app.js");
const STYLE: &str = include_str!("../../page/style.css");

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// A class by number (`3`) or by name (`"coat"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ClassRef {
    Index(usize),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NextRequest {
    annotator: String,
    /// A lease the page shows already: the answer is another one (the item to preload).
    #[serde(default)]
    except: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoRequest {
    annotator: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelRequest {
    annotator: String,
    lease: u64,
    class: ClassRef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipRequest {
    annotator: String,
    lease: u64,
}

#[derive(Serialize)]
struct NextResponse {
    lease: Option<u64>,
    item: Option<usize>,
    score: Option<f32>,
    model_version: u64,
    expires_in_ms: Option<u64>,
    image: Option<String>,
    /// Why there is no item (when `lease` is null).
    reason: Option<&'static str>,
}

/// An annotator's name: 1 to 64 letters, digits, spaces or `_.@-`.
fn check_annotator(name: &str) -> Result<(), ServeError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ServeError::BadRequest(format!(
            "annotator {name:?}: 1 to 64 letters, digits, spaces or _.@-"
        )))
    }
}

fn class_index(service: &Service, class: &ClassRef) -> Result<usize, ServeError> {
    let store = service.store();
    match class {
        ClassRef::Index(i) => store.class_named(&i.to_string()),
        ClassRef::Name(name) => store.class_named(name),
    }
}

async fn status(State(service): Svc) -> Result<Response, ServeError> {
    let status = call(&service, |s| Ok(s.status())).await?;
    Ok(axum::Json(status).into_response())
}

async fn labels(State(service): Svc) -> Result<Response, ServeError> {
    let labels = call(&service, |s| {
        let store = s.store();
        Ok(store
            .label_list()
            .into_iter()
            .map(|(item, info)| {
                serde_json::json!({
                    "item": item.get(),
                    "class": info.class,
                    "class_name": store.classes()[info.class],
                    "annotator": info.annotator,
                    "source": info.source,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(axum::Json(labels).into_response())
}

async fn next(State(service): Svc, body: Body) -> Result<Response, ServeError> {
    let request: NextRequest = parse_json(body)?;
    check_annotator(&request.annotator)?;
    let response = call(&service, move |s| {
        let now = std::time::Instant::now();
        let mut store = s.store();
        let lease = store.next(&request.annotator, request.except.map(LeaseId), now);
        Ok(match lease {
            Some(lease) => NextResponse {
                lease: Some(lease.id.0),
                item: Some(lease.item.get()),
                score: Some(lease.score),
                model_version: lease.model_version,
                expires_in_ms: Some(
                    u64::try_from(lease.expires_at.saturating_duration_since(now).as_millis())
                        .unwrap_or(u64::MAX),
                ),
                image: Some(format!("/api/items/{}/image", lease.item.get())),
                reason: None,
            },
            None => NextResponse {
                lease: None,
                item: None,
                score: None,
                model_version: store.model_version(),
                expires_in_ms: None,
                image: None,
                reason: Some(if store.n_labelled() == store.n_items() {
                    "every item is labelled"
                } else {
                    "every unlabelled item is leased to someone else or skipped by you"
                }),
            },
        })
    })
    .await?;
    Ok(axum::Json(response).into_response())
}

async fn label(State(service): Svc, body: Body) -> Result<Response, ServeError> {
    let request: LabelRequest = parse_json(body)?;
    check_annotator(&request.annotator)?;
    let labelled = call(&service, move |s| {
        let class = class_index(s, &request.class)?;
        s.label(&request.annotator, LeaseId(request.lease), class)
    })
    .await?;
    Ok(axum::Json(labelled).into_response())
}

async fn skip(State(service): Svc, body: Body) -> Result<Response, ServeError> {
    let request: SkipRequest = parse_json(body)?;
    check_annotator(&request.annotator)?;
    call(&service, move |s| {
        s.skip(&request.annotator, LeaseId(request.lease))
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "skipped": request.lease })).into_response())
}

async fn undo(State(service): Svc, body: Body) -> Result<Response, ServeError> {
    let request: UndoRequest = parse_json(body)?;
    check_annotator(&request.annotator)?;
    let undone = call(&service, move |s| s.undo(&request.annotator)).await?;
    Ok(axum::Json(undone).into_response())
}

async fn retrain(State(service): Svc) -> Result<Response, ServeError> {
    service.request_retrain();
    Ok(axum::Json(serde_json::json!({ "retrain": "requested" })).into_response())
}

/// The latest kept model: `{"version", "path", "card"}`, or 404 before the first.
async fn model(State(service): Svc) -> Response {
    match service.model() {
        Some(kept) => axum::Json(kept.as_ref()).into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": "no model is kept yet: the first retrain writes one (none with --keep-models 0)",
                "code": "no-model",
            })),
        )
            .into_response(),
    }
}

async fn image(State(service): Svc, Path(item): Path<String>) -> Result<Response, ServeError> {
    let item = plain_index(&item)
        .ok_or_else(|| ServeError::BadRequest(format!("item {item:?} is not an index")))?;
    let (bytes, kind) = call(&service, move |s| s.items().picture(item)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}
