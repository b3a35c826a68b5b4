//! Labels made elsewhere, from a label file as [`export_labels`](crate::export_labels) writes
//! it (CSV or JSON), matched to a pool: items by `file` for an image-folder pool (when the
//! label has one), by `item` index otherwise; classes by name. Every label is checked before
//! any is used; [`LabelStore::import_labels`](crate::LabelStore::import_labels) applies them.

use std::collections::HashMap;
use std::path::Path;

use baal_data::DatasetIndex;
use serde_json::Value;

use crate::error::ServeError;
use crate::label_file::{ServedPool, parse_csv, parse_rfc3339};
use crate::store::ImportedLabel;

/// The annotator of a label whose file names none.
const NO_ANNOTATOR: &str = "import";

/// A label as the file gives it, before it is matched to the pool.
#[derive(Debug)]
struct RawLabel {
    item: Option<usize>,
    file: Option<String>,
    class: String,
    annotator: Option<String>,
    at_ms: Option<u64>,
}

/// Reads the label file at `path` and matches its labels to `pool`. The format is CSV or
/// JSON by the extension (`.csv`, `.json`), else by the content (JSON starts with `[`). A
/// label naming an item twice with the same class counts once. The annotator and time are
/// kept from the file (`import` and the time of the import when it has none); its
/// `class_index` and `source` are not used (class indices differ between pools).
///
/// # Errors
/// [`ServeError::LabelFile`], naming the file, the line (CSV) or entry (JSON) and what is
/// wrong: a malformed line, a missing column or field, an unknown file, an item index out of
/// range, an unknown class, the same item labelled with two classes, a bad time. The file
/// cannot be read: [`ServeError::Io`].
pub fn read_label_file(
    path: &Path,
    pool: ServedPool<'_>,
) -> Result<Vec<ImportedLabel>, ServeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServeError::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match extension.as_deref() {
        Some("json") => true,
        Some("csv") => false,
        _ => text.trim_start().starts_with('['),
    };
    let raw = if json {
        json_labels(path, text)?
    } else {
        csv_labels(path, text)?
    };
    match_labels(path, raw, pool)
}

fn bad(path: &Path, at: &str, reason: impl Into<String>) -> ServeError {
    ServeError::LabelFile {
        path: path.to_path_buf(),
        at: at.to_string(),
        reason: reason.into(),
    }
}

/// The labels of a CSV label file, each with its place (`line N`).
fn csv_labels(path: &Path, text: &str) -> Result<Vec<(String, RawLabel)>, ServeError> {
    let records =
        parse_csv(text).map_err(|(line, reason)| bad(path, &format!("line {line}"), reason))?;
    let Some((header, rows)) = records.split_first() else {
        return Err(bad(path, "line 1", "no header line: the file is empty"));
    };
    let column = |name: &str| header.fields.iter().position(|f| f.trim() == name);
    let class = column("class").ok_or_else(|| {
        bad(
            path,
            "line 1",
            format!(
                "no `class` column in the header ({})",
                header.fields.join(",")
            ),
        )
    })?;
    let (item, file) = (column("item"), column("file"));
    if item.is_none() && file.is_none() {
        return Err(bad(
            path,
            "line 1",
            "neither an `item` nor a `file` column in the header",
        ));
    }
    let (annotator, at) = (column("annotator"), column("at"));
    let mut labels = Vec::with_capacity(rows.len());
    for row in rows {
        let place = format!("line {}", row.line);
        if row.fields.len() != header.fields.len() {
            return Err(bad(
                path,
                &place,
                format!(
                    "{} field(s), the header has {}",
                    row.fields.len(),
                    header.fields.len()
                ),
            ));
        }
        let field = |index: Option<usize>| {
            index
                .map(|i| row.fields[i].clone())
                .filter(|value| !value.is_empty())
        };
        let label = RawLabel {
            item: field(item)
                .map(|text| {
                    text.trim().parse().map_err(|_| {
                        bad(
                            path,
                            &place,
                            format!("item {text:?} is not an index (a whole number)"),
                        )
                    })
                })
                .transpose()?,
            file: field(file),
            class: field(Some(class)).ok_or_else(|| bad(path, &place, "no class"))?,
            annotator: field(annotator),
            at_ms: field(at).map(|t| time(path, &place, &t)).transpose()?,
        };
        labels.push((place, label));
    }
    Ok(labels)
}

/// `text` as milliseconds since the Unix epoch.
fn time(path: &Path, place: &str, text: &str) -> Result<u64, ServeError> {
    parse_rfc3339(text).ok_or_else(|| {
        bad(
            path,
            place,
            format!(
                "the time {text:?} is not an RFC 3339 time from 1970 on (2026-03-04T05:06:07Z)"
            ),
        )
    })
}

/// The labels of a JSON label file (a list of objects), each with its place (`entry N`).
fn json_labels(path: &Path, text: &str) -> Result<Vec<(String, RawLabel)>, ServeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            path,
            &format!("line {}", e.line()),
            format!("not JSON: {e}"),
        )
    })?;
    let Value::Array(entries) = value else {
        return Err(bad(path, "line 1", "not a JSON list of labels"));
    };
    let mut labels = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let place = format!("entry {}", n + 1);
        let Value::Object(fields) = entry else {
            return Err(bad(path, &place, "not an object"));
        };
        let text = |name: &str| -> Result<Option<String>, ServeError> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(bad(
                    path,
                    &place,
                    format!("`{name}` is {other}, not a string"),
                )),
            }
        };
        let item = match fields.get("item") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| bad(path, &place, format!("`item` is {value}, not an index")))?,
            ),
        };
        let label = RawLabel {
            item,
            file: text("file")?,
            class: text("class")?.ok_or_else(|| bad(path, &place, "no class"))?,
            annotator: text("annotator")?,
            at_ms: text("at")?.map(|t| time(path, &place, &t)).transpose()?,
        };
        labels.push((place, label));
    }
    Ok(labels)
}

/// Matches each label to an item and a class of `pool`.
fn match_labels(
    path: &Path,
    raw: Vec<(String, RawLabel)>,
    pool: ServedPool<'_>,
) -> Result<Vec<ImportedLabel>, ServeError> {
    let n_items = pool.items.len();
    let files: Option<HashMap<String, usize>> = match pool.items.files {
        Some(_) => Some(
            (0..n_items)
                .map(|i| Ok(pool.file_name(i)?.map(|name| (name, i))))
                .filter_map(Result::transpose)
                .collect::<Result<_, ServeError>>()?,
        ),
        None => None,
    };
    let classes = &pool.items.classes;
    let mut seen: HashMap<DatasetIndex, (usize, String)> = HashMap::new();
    let mut labels = Vec::with_capacity(raw.len());
    for (place, label) in raw {
        let item = item_of(path, &place, &label, files.as_ref(), n_items)?;
        let class = class_of(path, &place, &label, classes)?;
        let item = DatasetIndex::new(item);
        if let Some((first_class, first_place)) = seen.get(&item) {
            if *first_class != class {
                return Err(bad(
                    path,
                    &place,
                    format!(
                        "item {} is labelled {:?} here and {:?} at {first_place}",
                        item.get(),
                        label.class,
                        classes[*first_class]
                    ),
                ));
            }
            continue;
        }
        seen.insert(item, (class, place));
        labels.push(ImportedLabel {
            item,
            class,
            annotator: label.annotator.unwrap_or_else(|| NO_ANNOTATOR.to_string()),
            at_ms: label.at_ms,
        });
    }
    Ok(labels)
}

/// The pool item a label names: by file in an image folder, else by index.
fn item_of(
    path: &Path,
    place: &str,
    label: &RawLabel,
    files: Option<&HashMap<String, usize>>,
    n_items: usize,
) -> Result<usize, ServeError> {
    match (files, &label.file, label.item) {
        (Some(files), Some(file), _) => files
            .get(file)
            .copied()
            .ok_or_else(|| bad(path, place, format!("the file {file:?} is not in the pool"))),
        (_, _, Some(item)) if item < n_items => Ok(item),
        (_, _, Some(item)) => Err(bad(
            path,
            place,
            format!("item {item} is out of range: the pool holds {n_items} items"),
        )),
        (None, Some(file), None) => Err(bad(
            path,
            place,
            format!(
                "the file {file:?} cannot be matched: the pool is not an image folder, and the label has no item index"
            ),
        )),
        (_, None, None) => Err(bad(path, place, "neither an item nor a file")),
    }
}

/// The index of the label's class among the pool's.
fn class_of(
    path: &Path,
    place: &str,
    label: &RawLabel,
    classes: &[String],
) -> Result<usize, ServeError> {
    classes
        .iter()
        .position(|c| *c == label.class)
        .ok_or_else(|| {
            bad(
                path,
                place,
                format!(
                    "the class {:?} is not one of the pool's ({})",
                    label.class,
                    classes.join(", ")
                ),
            )
        })
}
