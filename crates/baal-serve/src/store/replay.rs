//! What each journalled [`Event`] does to the labels: one home for it, used by the store (at
//! open and after a write) and by [`LabelStore::read_labels`], which replays a state folder
//! without opening it for writing (an export while a server runs on it).

use std::collections::HashMap;
use std::path::Path;

use baal_data::DatasetIndex;

use super::annotations::AnnotationState;
use super::{LabelInfo, LabelStore};
use crate::error::ServeError;
use crate::journal::{Event, LabelJournal};

/// The journal's file name in a state folder.
pub(super) const JOURNAL: &str = "labels.journal";

/// What an event did to the labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// The item holds a (new or changed) label.
    Labelled(DatasetIndex),
    /// The item's label was taken back.
    Unlabelled(DatasetIndex),
}

impl LabelInfo {
    /// A label the data came with.
    pub(super) fn seed(class: usize) -> Self {
        Self {
            class,
            annotator: "seed".into(),
            source: None,
            at_ms: None,
            annotation: None,
        }
    }
}

/// Applies `event` to `labels` and the Label Studio `annotations` (an annotation's deletion
/// takes back its label only if that label still stands) and says what changed.
pub(super) fn apply_to_labels(
    labels: &mut HashMap<DatasetIndex, LabelInfo>,
    annotations: &mut HashMap<u64, AnnotationState>,
    event: &Event,
) -> Option<Change> {
    match event {
        Event::Label {
            item,
            class,
            annotator,
            at_ms,
            source,
            annotation,
            annotation_updated_at,
            ..
        } => {
            if let Some(id) = annotation {
                annotations.insert(
                    *id,
                    AnnotationState::new(*item, annotation_updated_at.clone()),
                );
            }
            let info = LabelInfo {
                class: *class,
                annotator: annotator.clone(),
                source: Some(*source),
                at_ms: Some(*at_ms),
                annotation: *annotation,
            };
            labels.insert(*item, info);
            Some(Change::Labelled(*item))
        }
        Event::Unlabel {
            item,
            annotation,
            annotation_updated_at,
            ..
        } => {
            if let Some(state) = annotation.and_then(|id| annotations.get_mut(&id)) {
                state.updated_at.clone_from(annotation_updated_at);
            }
            labels.remove(item);
            Some(Change::Unlabelled(*item))
        }
        Event::AnnotationDeleted { annotation, .. } => {
            let state = annotations.get_mut(annotation)?;
            state.deleted = true;
            let item = state.item;
            if labels.get(&item).and_then(|l| l.annotation) != Some(*annotation) {
                return None;
            }
            labels.remove(&item);
            Some(Change::Unlabelled(item))
        }
    }
}

/// Checks that the item and class `event` names exist in a pool of `n_items` items of
/// `classes`.
pub(super) fn check_event(
    event: &Event,
    n_items: usize,
    classes: &[String],
) -> Result<(), ServeError> {
    match event {
        Event::Label { item, class, .. } => {
            check_class(*class, classes)?;
            check_item(item.get(), n_items).map(drop)
        }
        Event::Unlabel { item, .. } => check_item(item.get(), n_items).map(drop),
        Event::AnnotationDeleted { .. } => Ok(()),
    }
}

/// `item` as a dataset index of a pool of `n_items` items.
pub(super) fn check_item(item: usize, n_items: usize) -> Result<DatasetIndex, ServeError> {
    if item < n_items {
        Ok(DatasetIndex::new(item))
    } else {
        Err(ServeError::UnknownItem { item, len: n_items })
    }
}

/// Checks that `class` is one of `classes`.
pub(super) fn check_class(class: usize, classes: &[String]) -> Result<(), ServeError> {
    if class < classes.len() {
        Ok(())
    } else {
        Err(ServeError::UnknownClass {
            class: class.to_string(),
            names: classes.to_vec(),
        })
    }
}

impl LabelStore {
    /// The labels the state folder `dir` holds for a pool of `n_items` items of `classes`,
    /// in item order: its journal replayed over `seed_labels`, as [`open`](Self::open) would
    /// hold them, but read without opening anything for writing (nothing is created, cut or
    /// locked: a server may be running on the folder). A label being written at this moment
    /// (a torn last line) is left out.
    ///
    /// # Errors
    /// The journal cannot be read or is corrupt, or it (or a seed label) names an item or
    /// class this pool does not have.
    pub fn read_labels(
        dir: &Path,
        classes: &[String],
        n_items: usize,
        seed_labels: &[(DatasetIndex, usize)],
    ) -> Result<Vec<(DatasetIndex, LabelInfo)>, ServeError> {
        let mut labels = HashMap::new();
        for &(item, class) in seed_labels {
            check_item(item.get(), n_items)?;
            check_class(class, classes)?;
            labels.insert(item, LabelInfo::seed(class));
        }
        let path = dir.join(JOURNAL);
        let mut annotations = HashMap::new();
        for event in LabelJournal::read(&path)? {
            check_event(&event, n_items, classes).map_err(|e| ServeError::Corrupt {
                path: path.clone(),
                reason: format!("{e} (is this the state of other data?)"),
            })?;
            apply_to_labels(&mut labels, &mut annotations, &event);
        }
        let mut labels: Vec<_> = labels.into_iter().collect();
        labels.sort_unstable_by_key(|&(item, _)| item);
        Ok(labels)
    }
}
