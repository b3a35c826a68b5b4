//! Label Studio's ML-backend protocol: `GET /health`, `POST /setup`, `POST /predict`,
//! `POST /webhook` and the legacy `POST /train`.
//!
//! Label Studio calls the backend's URL with these suffixes. Connect it with
//! `http://127.0.0.1:PORT/ls/<token>` as the URL: Label Studio also sends its webhooks (the
//! annotations) to `<url>/webhook` without the backend's credentials, so the token travels in
//! the path. The root routes (`/predict`, ...) take the token as basic-auth password instead.
//!
//! A task names its item by `data.item` (an index), or by an image URL of this service
//! (`.../api/items/<index>/image`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{call, parse_json, plain_index};
use crate::error::ServeError;
use crate::service::Service;
use crate::store::Annotation;

type Svc = State<Arc<Service>>;
type Body = Result<Bytes, BytesRejection>;

/// A protocol call: the JSON request to the JSON answer.
type Call = fn(&Service, Value) -> Result<Value, ServeError>;

pub(super) fn routes() -> Router<Arc<Service>> {
    let calls: [(&str, Call); 4] = [
        ("setup", setup),
        ("predict", predict),
        ("webhook", webhook),
        ("train", train),
    ];
    // The gate checked the token (in the path, a header or the query) before the body.
    calls.into_iter().fold(
        Router::new()
            .route("/health", get(health))
            .route("/ls/{token}/health", get(health)),
        |router, (name, f)| {
            router
                .route(
                    &format!("/{name}"),
                    post(move |s: Svc, b: Body| async move { answer(s, b, f).await }),
                )
                .route(
                    &format!("/ls/{{token}}/{name}"),
                    post(move |s: Svc, b: Body| async move { answer(s, b, f).await }),
                )
        },
    )
}

/// Parses the JSON body and runs `f` on the service.
async fn answer(State(service): Svc, body: Body, f: Call) -> Result<Response, ServeError> {
    let request: Value = parse_json(body)?;
    let answer = call(&service, move |s| f(s, request)).await?;
    Ok(axum::Json(answer).into_response())
}

fn model_version(version: u64) -> String {
    format!("baal-v{version}")
}

async fn health(State(service): Svc) -> Response {
    let version = service.store().model_version();
    axum::Json(json!({
        "status": "UP",
        "model_class": "baal",
        "model_version": model_version(version),
    }))
    .into_response()
}

/// The `name` and `toName` of the labelling config's `<Choices>`, and its choices' values.
#[derive(Debug, PartialEq)]
struct ChoicesTag {
    from_name: String,
    to_name: String,
    values: Vec<String>,
}

/// Reads the first `<Choices ...>` tag of a Label Studio labelling config and its `<Choice>`
/// values (a scan of attributes, enough for the configs this backend serves).
fn choices_tag(config: &str) -> Option<ChoicesTag> {
    let start = config.find("<Choices")?;
    let tag_end = start + config[start..].find('>')?;
    let tag = &config[start..tag_end];
    let body_end = config[tag_end..]
        .find("</Choices>")
        .map_or(config.len(), |e| tag_end + e);
    let values = config[tag_end..body_end]
        .split("<Choice")
        .skip(1)
        .filter_map(|choice| attribute(choice.split('>').next().unwrap_or_default(), "value"))
        .collect();
    Some(ChoicesTag {
        from_name: attribute(tag, "name")?,
        to_name: attribute(tag, "toName")?,
        values,
    })
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().last();
        let after = rest[at + name.len()..].trim_start();
        if before.is_some_and(char::is_whitespace)
            && let Some(value) = after.strip_prefix('=')
        {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let value = &value[1..];
                return Some(value[..value.find(quote)?].to_string());
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// The labelling config's `<Choices>`, checked against the service's classes.
fn checked_choices(service: &Service, config: &str) -> Result<ChoicesTag, ServeError> {
    let tag = choices_tag(config).ok_or_else(|| {
        ServeError::BadRequest(
            "the labelling config has no <Choices name=... toName=...>: this backend classifies images".into(),
        )
    })?;
    let store = service.store();
    let unknown: Vec<&String> = tag
        .values
        .iter()
        .filter(|v| !store.classes().contains(v))
        .collect();
    if !unknown.is_empty() {
        return Err(ServeError::BadRequest(format!(
            "the labelling config's choices {unknown:?} are not classes of this service ({})",
            store.classes().join(", ")
        )));
    }
    Ok(tag)
}

fn setup(service: &Service, request: Value) -> Result<Value, ServeError> {
    let schema = request
        .get("schema")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ServeError::BadRequest("setup needs `schema`, the labelling config".into())
        })?;
    checked_choices(service, schema)?;
    let version = service.store().model_version();
    Ok(json!({ "model_version": model_version(version) }))
}

/// The item a task names: `data.item`, or an image URL `.../items/<index>/image`.
fn task_item(task: &Value) -> Result<usize, ServeError> {
    let data = task.get("data").unwrap_or(&Value::Null);
    let id = task.get("id").cloned().unwrap_or(Value::Null);
    let from_field = match data.get("item") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Some(Value::String(s)) => plain_index(s),
        _ => None,
    };
    let from_url = || {
        data.as_object()?.values().find_map(|v| {
            let url = v.as_str()?;
            let (_, rest) = url.rsplit_once("/items/")?;
            plain_index(rest.split('/').next()?)
        })
    };
    from_field.or_else(from_url).ok_or_else(|| {
        ServeError::BadRequest(format!(
            "task {id}: its data names no item (`item`, or an image URL .../items/<index>/image)"
        ))
    })
}

/// The most tasks one `/predict` call takes (Label Studio sends a page of tasks at a time).
pub const MAX_PREDICT_TASKS: usize = 10_000;

fn predict(service: &Service, request: Value) -> Result<Value, ServeError> {
    let tasks = request
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| ServeError::BadRequest("predict needs `tasks`, a list".into()))?;
    if tasks.len() > MAX_PREDICT_TASKS {
        return Err(ServeError::BadRequest(format!(
            "{} tasks in one predict call: at most {MAX_PREDICT_TASKS}, send fewer at a time",
            tasks.len()
        )));
    }
    let config = request
        .get("label_config")
        .and_then(Value::as_str)
        .unwrap_or("<Choices name=\"choice\" toName=\"image\"></Choices>");
    let tag = checked_choices(service, config)?;
    let items = tasks.iter().map(task_item).collect::<Result<Vec<_>, _>>()?;
    // The lock only for what the answers need, not while they are written.
    let (predictions, version, classes, labels) = {
        let store = service.store();
        if let Some(&item) = items.iter().find(|&&item| item >= store.n_items()) {
            return Err(ServeError::UnknownItem {
                item,
                len: store.n_items(),
            });
        }
        let predictions = store.predictions();
        let labels: Vec<Option<usize>> = items
            .iter()
            .map(|&item| {
                let index = baal_data::DatasetIndex::new(item);
                if predictions.contains_key(&index) {
                    None
                } else {
                    store.label_of(index).map(|l| l.class)
                }
            })
            .collect();
        (
            predictions,
            model_version(store.model_version()),
            store.classes().to_vec(),
            labels,
        )
    };
    let results: Vec<Value> = items
        .iter()
        .zip(labels)
        .map(|(&item, label)| {
            let guess = predictions
                .get(&baal_data::DatasetIndex::new(item))
                .map(|&(class, score)| (class, Some(score)))
                .or_else(|| label.map(|class| (class, None)));
            match guess {
                Some((class, score)) => json!({
                    "result": [{
                        "from_name": tag.from_name,
                        "to_name": tag.to_name,
                        "type": "choices",
                        "value": { "choices": [classes[class]] },
                    }],
                    "score": score,
                    "model_version": version,
                }),
                // No model yet: nothing to suggest.
                None => json!({ "result": [], "model_version": version }),
            }
        })
        .collect();
    Ok(json!({ "results": results }))
}

/// The class an annotation chose; `None` for a cancelled (skipped) annotation.
fn annotation_class(service: &Service, annotation: &Value) -> Result<Option<usize>, ServeError> {
    if annotation.get("was_cancelled").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let choice = annotation
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|r| r.pointer("/value/choices/0").and_then(Value::as_str))
        .ok_or_else(|| ServeError::BadRequest("the annotation has no choices result".into()))?;
    Ok(Some(service.store().class_named(choice)?))
}

/// The longest annotator name kept from Label Studio (after `label-studio:`).
const ANNOTATOR_CHARS: usize = 64;

/// Who made `annotation`: `label-studio:` and the user's email or id, cleaned as the page's
/// names are (letters, digits, spaces and `_.@-+`; any other run of characters, controls and
/// direction marks included, becomes one `_`) and cut at 64 characters.
fn annotator(annotation: &Value) -> String {
    let raw = match annotation.get("completed_by") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Object(user)) => match user.get("email").or_else(|| user.get("id")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let mut name = String::new();
    for c in raw.chars() {
        if name.chars().count() >= ANNOTATOR_CHARS {
            break;
        }
        if c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | '@' | '-' | '+') {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    if name.is_empty() {
        "label-studio".into()
    } else {
        format!("label-studio:{name}")
    }
}

/// What `annotation` of `task` says, checked (its item named, its choice a class).
fn annotation_of(
    service: &Service,
    task: &Value,
    annotation: &Value,
) -> Result<Annotation, ServeError> {
    Ok(Annotation {
        item: task_item(task)?,
        class: annotation_class(service, annotation)?,
        annotator: annotator(annotation),
        id: annotation.get("id").and_then(Value::as_u64),
        updated_at: annotation
            .get("updated_at")
            .and_then(Value::as_str)
            .map(String::from),
    })
}

/// Applies a checked batch and answers what became of each annotation.
fn apply(service: &Service, batch: &[Annotation]) -> Result<Value, ServeError> {
    let outcomes = service.apply_annotations(batch)?;
    Ok(json!({ "applied": outcomes }))
}

fn webhook(service: &Service, request: Value) -> Result<Value, ServeError> {
    let Some(event) = request.as_object() else {
        return Err(ServeError::BadRequest(
            "a webhook is a JSON object with an `action`".into(),
        ));
    };
    let action = event
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| ServeError::BadRequest("the webhook has no `action`".into()))?;
    match action {
        "ANNOTATION_CREATED" | "ANNOTATION_UPDATED" => {
            let task = event
                .get("task")
                .ok_or_else(|| ServeError::BadRequest(format!("{action} without `task`")))?;
            let annotation = event
                .get("annotation")
                .ok_or_else(|| ServeError::BadRequest(format!("{action} without `annotation`")))?;
            // One annotation: its outcome itself.
            let mut outcomes =
                service.apply_annotations(&[annotation_of(service, task, annotation)?])?;
            Ok(outcomes.pop().map_or(Value::Null, |outcome| json!(outcome)))
        }
        "ANNOTATIONS_CREATED" => {
            let tasks = event.get("task").and_then(Value::as_array);
            let annotations = event.get("annotation").and_then(Value::as_array);
            let (Some(tasks), Some(annotations)) = (tasks, annotations) else {
                return Err(ServeError::BadRequest(
                    "ANNOTATIONS_CREATED needs lists `task` and `annotation`".into(),
                ));
            };
            let batch = annotations
                .iter()
                .map(|annotation| {
                    let task_id = annotation.get("task");
                    let task = tasks
                        .iter()
                        .find(|t| t.get("id") == task_id)
                        .ok_or_else(|| {
                            ServeError::BadRequest(format!("no task {task_id:?} for an annotation"))
                        })?;
                    annotation_of(service, task, annotation)
                })
                .collect::<Result<Vec<_>, _>>()?;
            apply(service, &batch)
        }
        "ANNOTATIONS_DELETED" | "ANNOTATION_DELETED" => {
            let annotations = event
                .get("annotations")
                .and_then(Value::as_array)
                .cloned()
                .or_else(|| event.get("annotation").map(|a| vec![a.clone()]))
                .unwrap_or_default();
            // Only the annotation that gave an item's label takes it back: deleting an older
            // annotation of a task another annotation labelled since leaves the label.
            let ids: Vec<u64> = annotations
                .iter()
                .filter_map(|a| a.get("id").and_then(Value::as_u64))
                .collect();
            let unlabelled = service.delete_annotations(&ids, "label-studio")?;
            Ok(json!({ "unlabelled": unlabelled }))
        }
        "START_TRAINING" => {
            service.request_retrain();
            Ok(json!({ "retrain": "requested" }))
        }
        // Other events (projects, tasks) do not concern the model.
        _ => Ok(json!({ "ignored": action })),
    }
}

/// The legacy training call: every task with its annotations; the latest annotation of each
/// task is applied (all checked first), then a retrain is requested.
fn train(service: &Service, request: Value) -> Result<Value, ServeError> {
    let tasks = request
        .get("annotations")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ServeError::BadRequest("train needs `annotations`, a list of tasks".into())
        })?;
    let batch = tasks
        .iter()
        .filter_map(|task| {
            let annotation = task.get("annotations")?.as_array()?.last()?;
            Some(annotation_of(service, task, annotation))
        })
        .collect::<Result<Vec<_>, _>>()?;
    apply(service, &batch)?;
    service.request_retrain();
    Ok(json!({ "applied": batch.len(), "job": null }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use baal_data::{DatasetIndex, ImageDataset};

    use super::*;
    use crate::items::Items;
    use crate::scorer::Scorer;
    use crate::store::{LabelStore, Round, StoreConfig};

    /// A scorer for tests that never train (a retrain would fail and keep the ranking).
    struct NoModel;

    impl Scorer for NoModel {
        fn round(
            &mut self,
            _labels: &[(DatasetIndex, usize)],
            _pool: &[DatasetIndex],
        ) -> Result<Round, ServeError> {
            Err(ServeError::Model("no model in these tests".into()))
        }
    }

    const CLASSES: [&str; 3] = ["cat", "dog", "bird"];

    /// A service of 4 blank items and [`CLASSES`], its state in `dir`.
    fn start_service(dir: &Path) -> Arc<Service> {
        let n = 4;
        let classes: Vec<String> = CLASSES.iter().map(|c| (*c).to_string()).collect();
        let store = LabelStore::open(
            dir,
            StoreConfig {
                classes: classes.clone(),
                n_items: n,
                seed_labels: Vec::new(),
                lease_ttl: Duration::from_secs(60),
                retrain_every: 100,
                initial_order: (0..n).map(DatasetIndex::new).collect(),
            },
        )
        .expect("store");
        let items = Items {
            images: ImageDataset::new(vec![0; n * 4], vec![0; n], [1, 2, 2], CLASSES.len())
                .expect("images"),
            files: None,
            classes,
            seed_labels: Vec::new(),
            test: None,
        };
        let (service, _worker) =
            Service::start(store, items, Box::new(NoModel), "t".repeat(16)).expect("service");
        service
    }

    /// An `ANNOTATION_CREATED` (or `_UPDATED`) webhook of annotation `id` of `user` on the
    /// task of `item`: `choice`, or a skip when `None`.
    fn annotation_hook(
        action: &str,
        id: u64,
        user: u64,
        item: usize,
        choice: Option<&str>,
    ) -> Value {
        let result = choice.map_or_else(Vec::new, |c| {
            vec![json!({
                "from_name": "choice", "to_name": "image", "type": "choices",
                "value": {"choices": [c]},
            })]
        });
        json!({
            "action": action,
            "task": {"id": 100 + item, "data": {"image": "http://x/img.png", "item": item}},
            "annotation": {
                "id": id, "task": 100 + item, "completed_by": user,
                "result": result, "was_cancelled": choice.is_none(),
            },
        })
    }

    fn deleted_hook(ids: &[u64]) -> Value {
        let annotations: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
        json!({"action": "ANNOTATIONS_DELETED", "annotations": annotations})
    }

    fn label(service: &Service, item: usize) -> Option<(String, Option<u64>)> {
        let store = service.store();
        store
            .label_of(DatasetIndex::new(item))
            .map(|l| (store.classes()[l.class].clone(), l.annotation))
    }

    #[test]
    fn another_annotators_skip_leaves_a_label() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = start_service(dir.path());
        let created = |id, user, choice| annotation_hook("ANNOTATION_CREATED", id, user, 2, choice);
        webhook(&service, created(1, 7, Some("dog"))).expect("label");
        let answer = webhook(&service, created(2, 8, None)).expect("skip");
        assert_eq!(answer["unlabelled"], json!(false), "{answer}");
        assert_eq!(label(&service, 2), Some(("dog".into(), Some(1))));
        // The labelling annotation changed into a skip takes its label back.
        let updated = annotation_hook("ANNOTATION_UPDATED", 1, 7, 2, None);
        let answer = webhook(&service, updated).expect("skip");
        assert_eq!(answer["unlabelled"], json!(true), "{answer}");
        assert_eq!(label(&service, 2), None);
        assert_eq!(service.status().n_labelled, 0);
    }

    #[test]
    fn only_the_annotation_that_gave_a_label_takes_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = start_service(dir.path());
        let created = |id, user, choice| annotation_hook("ANNOTATION_CREATED", id, user, 3, choice);
        webhook(&service, created(1, 7, Some("dog"))).expect("first annotation");
        webhook(&service, created(2, 8, Some("bird"))).expect("second annotation");
        assert_eq!(label(&service, 3), Some(("bird".into(), Some(2))));
        // The older annotation is deleted: the newer one's label stands.
        let answer = webhook(&service, deleted_hook(&[1])).expect("delete");
        assert_eq!(answer["unlabelled"], json!([]), "{answer}");
        assert_eq!(label(&service, 3), Some(("bird".into(), Some(2))));
        // Unknown annotations are ignored; the labelling one takes the label back.
        let answer = webhook(&service, deleted_hook(&[99, 2])).expect("delete");
        assert_eq!(answer["unlabelled"], json!([3]), "{answer}");
        assert_eq!(label(&service, 3), None);
        // The journal replays to the same state.
        drop(service);
        let service = start_service(dir.path());
        assert_eq!(label(&service, 3), None);
        assert_eq!(service.status().n_labelled, 0);
    }

    #[test]
    fn the_choices_tag_is_read_from_a_labelling_config() {
        let config = r#"<View>
  <Image name="image" value="$image"/>
  <Choices name="choice" toName="image" choice="single">
    <Choice value="T-shirt/top"/><Choice  value='Coat' />
  </Choices>
</View>"#;
        assert_eq!(
            choices_tag(config),
            Some(ChoicesTag {
                from_name: "choice".into(),
                to_name: "image".into(),
                values: vec!["T-shirt/top".into(), "Coat".into()],
            })
        );
        assert_eq!(choices_tag("<View><Image name=\"i\"/></View>"), None);
    }

    #[test]
    fn a_task_names_its_item_by_field_or_image_url() {
        assert_eq!(
            task_item(&json!({"id": 1, "data": {"item": 7}})).ok(),
            Some(7)
        );
        assert_eq!(
            task_item(&json!({"id": 1, "data": {"item": "8"}})).ok(),
            Some(8)
        );
        let by_url =
            json!({"id": 2, "data": {"image": "http://127.0.0.1:1/api/items/42/image?token=x"}});
        assert_eq!(task_item(&by_url).ok(), Some(42));
        let err = task_item(&json!({"id": 3, "data": {"text": "hello"}})).expect_err("no item");
        assert!(err.to_string().contains("task 3"), "{err}");
    }
}
