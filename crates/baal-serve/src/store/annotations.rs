//! Label Studio's annotations in the store. A request's annotations are checked as a batch
//! (items, classes, annotation ids) before any is applied, journalled in one write, then
//! applied in memory by the same code that replays the journal: a refused request changes
//! nothing.
//!
//! Deliveries are ordered per annotation by Label Studio's `updated_at`: a redelivered older
//! version of an annotation (a webhook retried late) is ignored, and so is any delivery of a
//! deleted annotation. One annotation labels one item: an id sent again for another item is
//! refused, so that deleting the annotation takes back exactly the label it gave.

use std::collections::HashMap;

use baal_data::DatasetIndex;
use serde::Serialize;

use super::{LabelStore, Labelled, now_ms};
use crate::error::ServeError;
use crate::journal::{Event, Source};

/// What the store knows of a Label Studio annotation.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AnnotationState {
    /// The item it labels.
    pub item: DatasetIndex,
    /// When it was last updated, as delivered.
    pub updated_at: Option<String>,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl AnnotationState {
    pub(super) fn new(item: DatasetIndex, updated_at: Option<String>) -> Self {
        Self {
            item,
            updated_at,
            deleted: false,
        }
    }
}

/// A Label Studio annotation as delivered: what it says about one item.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// The item its task names.
    pub item: usize,
    /// The class it chose; `None` for a skip (a cancelled annotation), which takes back only
    /// the label this same annotation gave.
    pub class: Option<usize>,
    /// Who made it.
    pub annotator: String,
    /// Its id; without one it is applied as it comes, never ordered nor taken back.
    pub id: Option<u64>,
    /// Label Studio's `updated_at` of this version of it.
    pub updated_at: Option<String>,
}

/// What became of one annotation of a batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnnotationOutcome {
    /// The item holds the annotation's class.
    Labelled(Labelled),
    /// A skip: whether it took back the label the annotation had given.
    Skipped {
        /// The item.
        item: usize,
        /// Always true.
        skipped: bool,
        /// Whether a label was taken back.
        unlabelled: bool,
    },
    /// Nothing done, and why (an older version of the annotation, or a deleted one).
    Ignored {
        /// The item.
        item: usize,
        /// Why.
        ignored: &'static str,
    },
}

/// A sortable form of an ISO-8601 UTC time (`2026-12-01T10:05:00.123456Z`): its date and
/// time digits, then its fraction in nanoseconds; `None` for anything else (then deliveries
/// are not ordered).
fn time_key(text: &str) -> Option<(u64, u32)> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits: String = whole.chars().filter(char::is_ascii_digit).collect();
    let separators = whole.chars().filter(|c| !c.is_ascii_digit()).count();
    if digits.len() != 14 || separators != 5 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{:0<9}", &fraction[..fraction.len().min(9)]);
    Some((digits.parse().ok()?, nanos.parse().ok()?))
}

/// Whether a delivery of `incoming` is older than the version `known` already applied.
fn is_stale(incoming: Option<&str>, known: Option<&str>) -> bool {
    match (incoming.and_then(time_key), known.and_then(time_key)) {
        (Some(incoming), Some(known)) => incoming < known,
        _ => false,
    }
}

/// What a batch does, decided before anything is written.
enum Plan {
    Write(Event),
    Same(usize, usize),
    Skip(usize),
    Ignore(usize, &'static str),
}

impl LabelStore {
    /// Applies Label Studio annotations, all or none: every item, class and annotation id is
    /// checked first; then the changes are journalled in one synced write and applied.
    /// Returns what became of each annotation, and whether a retrain is due now.
    ///
    /// # Errors
    /// An unknown item or class, an annotation id that labelled another item (then nothing
    /// changed); or the journal cannot be written (then nothing changed either).
    pub fn apply_annotations(
        &mut self,
        batch: &[Annotation],
    ) -> Result<(Vec<AnnotationOutcome>, bool), ServeError> {
        let plans = self.plan(batch)?;
        let events: Vec<Event> = plans
            .iter()
            .filter_map(|plan| match plan {
                Plan::Write(event) => Some(event.clone()),
                _ => None,
            })
            .collect();
        self.journal.append_all(&events)?;
        let mut outcomes = Vec::with_capacity(plans.len());
        let mut retrain = false;
        for plan in plans {
            outcomes.push(match plan {
                Plan::Write(event) => self.apply_planned(&event, &mut retrain),
                Plan::Same(item, class) => AnnotationOutcome::Labelled(self.labelled(
                    DatasetIndex::new(item),
                    class,
                    false,
                )),
                Plan::Skip(item) => AnnotationOutcome::Skipped {
                    item,
                    skipped: true,
                    unlabelled: false,
                },
                Plan::Ignore(item, ignored) => AnnotationOutcome::Ignored { item, ignored },
            });
        }
        Ok((outcomes, retrain))
    }

    /// Applies one journalled event of a batch and says what it did.
    fn apply_planned(&mut self, event: &Event, retrain: &mut bool) -> AnnotationOutcome {
        let new = match event {
            Event::Label { item, .. } => !self.labels.contains_key(item),
            _ => false,
        };
        self.apply_event(event);
        match event {
            Event::Label { item, class, .. } => {
                if new && self.count_new_label() {
                    *retrain = true;
                }
                AnnotationOutcome::Labelled(self.labelled(*item, *class, false))
            }
            Event::Unlabel { item, .. } => AnnotationOutcome::Skipped {
                item: item.get(),
                skipped: true,
                unlabelled: true,
            },
            // Never planned: deletions go through delete_annotations.
            Event::AnnotationDeleted { .. } => AnnotationOutcome::Ignored {
                item: 0,
                ignored: "deleted",
            },
        }
    }

    /// Checks every annotation of `batch` and decides, in order, what each does, on a scratch
    /// copy of the labels and annotations it touches; changes nothing.
    fn plan(&self, batch: &[Annotation]) -> Result<Vec<Plan>, ServeError> {
        let mut labels: HashMap<DatasetIndex, Option<(usize, Option<u64>)>> = HashMap::new();
        let mut states: HashMap<u64, AnnotationState> = HashMap::new();
        let mut plans = Vec::with_capacity(batch.len());
        for annotation in batch {
            let item = self.check_item(annotation.item)?;
            if let Some(class) = annotation.class {
                self.check_class(class)?;
            }
            let label = *labels
                .entry(item)
                .or_insert_with(|| self.labels.get(&item).map(|l| (l.class, l.annotation)));
            let state = match annotation.id {
                Some(id) => states
                    .get(&id)
                    .or_else(|| self.annotations.get(&id))
                    .cloned(),
                None => None,
            };
            if let (Some(id), Some(state)) = (annotation.id, &state)
                && state.item != item
            {
                return Err(ServeError::AnnotationElsewhere {
                    annotation: id,
                    labelled: state.item.get(),
                    item: item.get(),
                });
            }
            if let Some(state) = &state {
                if state.deleted {
                    plans.push(Plan::Ignore(item.get(), "deleted"));
                    continue;
                }
                if is_stale(
                    annotation.updated_at.as_deref(),
                    state.updated_at.as_deref(),
                ) {
                    plans.push(Plan::Ignore(item.get(), "stale"));
                    continue;
                }
            }
            let plan = self.plan_one(annotation, item, label);
            if let (Some(id), Plan::Write(_)) = (annotation.id, &plan) {
                states.insert(
                    id,
                    AnnotationState::new(item, annotation.updated_at.clone()),
                );
            }
            match &plan {
                Plan::Write(Event::Label { class, .. }) => {
                    labels.insert(item, Some((*class, annotation.id)));
                }
                Plan::Write(Event::Unlabel { .. }) => {
                    labels.insert(item, None);
                }
                _ => {}
            }
            plans.push(plan);
        }
        Ok(plans)
    }

    /// What `annotation` does to `item`, whose label is `label` (class, annotation) now.
    fn plan_one(
        &self,
        annotation: &Annotation,
        item: DatasetIndex,
        label: Option<(usize, Option<u64>)>,
    ) -> Plan {
        match annotation.class {
            Some(class) if label == Some((class, annotation.id)) && annotation.id.is_some() => {
                Plan::Same(item.get(), class)
            }
            Some(class) if annotation.id.is_none() && label.map(|l| l.0) == Some(class) => {
                Plan::Same(item.get(), class)
            }
            Some(class) => {
                let score = self.predictions.get(&item).map(|&(_, score)| score);
                Plan::Write(Event::Label {
                    item,
                    class,
                    annotator: annotation.annotator.clone(),
                    at_ms: now_ms(),
                    model_version: self.queue.model_version(),
                    score,
                    lease: None,
                    source: Source::LabelStudio,
                    annotation: annotation.id,
                    annotation_updated_at: annotation.updated_at.clone(),
                })
            }
            None if annotation.id.is_some() && label.and_then(|l| l.1) == annotation.id => {
                Plan::Write(Event::Unlabel {
                    item,
                    annotator: annotation.annotator.clone(),
                    at_ms: now_ms(),
                    annotation: annotation.id,
                    annotation_updated_at: annotation.updated_at.clone(),
                })
            }
            None => Plan::Skip(item.get()),
        }
    }

    /// Deletes Label Studio annotations `ids`: the labels they gave that still stand are taken
    /// back, and later deliveries of them are ignored; ids this store never saw are passed
    /// over. Returns the items unlabelled.
    ///
    /// # Errors
    /// The journal cannot be written (then nothing changed).
    pub fn delete_annotations(
        &mut self,
        ids: &[u64],
        annotator: &str,
    ) -> Result<Vec<DatasetIndex>, ServeError> {
        let events: Vec<Event> = ids
            .iter()
            .filter(|id| self.annotations.get(id).is_some_and(|s| !s.deleted))
            .map(|&annotation| Event::AnnotationDeleted {
                annotation,
                annotator: annotator.to_string(),
                at_ms: now_ms(),
            })
            .collect();
        self.journal.append_all(&events)?;
        let mut unlabelled = Vec::new();
        for event in &events {
            let before = self.labels.len();
            if let Event::AnnotationDeleted { annotation, .. } = event
                && let Some(state) = self.annotations.get(annotation)
            {
                let item = state.item;
                self.apply_event(event);
                if self.labels.len() < before {
                    unlabelled.push(item);
                }
            }
        }
        Ok(unlabelled)
    }

    /// The item Label Studio annotation `id` labelled, if this store saw it.
    pub fn annotation_item(&self, id: u64) -> Option<DatasetIndex> {
        self.annotations.get(&id).map(|state| state.item)
    }

    /// Labels `item` as `class` for Label Studio annotation `annotation` (see
    /// [`apply_annotations`](Self::apply_annotations), a batch of one).
    ///
    /// # Errors
    /// As [`apply_annotations`](Self::apply_annotations).
    pub fn label_external(
        &mut self,
        item: usize,
        class: usize,
        annotator: &str,
        annotation: Option<u64>,
    ) -> Result<Labelled, ServeError> {
        let (outcomes, retrain) = self.apply_annotations(&[Annotation {
            item,
            class: Some(class),
            annotator: annotator.to_string(),
            id: annotation,
            updated_at: None,
        }])?;
        match outcomes.into_iter().next() {
            Some(AnnotationOutcome::Labelled(labelled)) => Ok(Labelled {
                retrain,
                ..labelled
            }),
            _ => Ok(self.labelled(DatasetIndex::new(item), class, retrain)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_as_instants() {
        let key = |t| time_key(t).expect("a time");
        assert!(key("2026-12-01T10:00:00.123456789Z") < key("2026-12-01T10:00:00.5Z"));
        assert!(key("2026-12-01T10:00:00.000001Z") < key("2026-12-01T10:00:00.1Z"));
        assert!(key("2026-12-01T09:59:59.999Z") < key("2026-12-01T10:00:00Z"));
        assert_eq!(time_key("yesterday"), None);
        assert!(!is_stale(Some("2026-01-01T00:00:00Z"), None));
        assert!(is_stale(
            Some("2026-01-01T00:00:00Z"),
            Some("2026-01-02T00:00:00Z")
        ));
        assert!(!is_stale(Some("junk"), Some("2026-01-02T00:00:00Z")));
    }
}
