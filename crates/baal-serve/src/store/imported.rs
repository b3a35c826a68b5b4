//! Labels made elsewhere (a label file, see [`crate::read_label_file`]) added to the store:
//! all checked first, journalled in one synced write, then applied; a label the state holds
//! already wins over the file's.

use std::collections::HashMap;

use baal_data::DatasetIndex;
use serde::Serialize;

use super::{LabelStore, now_ms};
use crate::error::ServeError;
use crate::journal::{Event, Source};

/// A label of a label file, matched to the pool's items and classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedLabel {
    /// The item.
    pub item: DatasetIndex,
    /// Its class.
    pub class: usize,
    /// Who gave it, as the file says.
    pub annotator: String,
    /// When it was given, milliseconds since the Unix epoch, as the file says (`None`: the
    /// time of the import).
    pub at_ms: Option<u64>,
}

/// An item the file and the state label differently: the state's label was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ImportConflict {
    /// The item.
    pub item: usize,
    /// The class the state holds (kept).
    pub kept: usize,
    /// The class the file gives (not applied).
    pub imported: usize,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Labels added to the state.
    pub applied: usize,
    /// Labels of the file left out because their item had a label already (the conflicts
    /// included).
    pub skipped: usize,
    /// Those of the skipped labels whose class differs from the state's.
    pub conflicts: Vec<ImportConflict>,
}

impl LabelStore {
    /// Adds `labels` to the items that have no label yet, durably: every item and class is
    /// checked first, then the new labels are journalled (source [`Source::Import`], the file's
    /// annotator and time) in one synced write before any is applied. An item labelled
    /// already keeps its label (and counts as skipped; as a conflict too when the classes
    /// differ); when `labels` names an item twice, the first wins the same way.
    ///
    /// # Errors
    /// An unknown item or class (then nothing changed), or the journal cannot be written
    /// (then nothing changed either).
    pub fn import_labels(&mut self, labels: &[ImportedLabel]) -> Result<ImportSummary, ServeError> {
        for label in labels {
            self.check_item(label.item.get())?;
            self.check_class(label.class)?;
        }
        let now = now_ms();
        let mut summary = ImportSummary::default();
        let mut planned: HashMap<DatasetIndex, usize> = HashMap::new();
        let mut events = Vec::new();
        for label in labels {
            let held = self
                .labels
                .get(&label.item)
                .map(|info| info.class)
                .or_else(|| planned.get(&label.item).copied());
            if let Some(kept) = held {
                summary.skipped += 1;
                if kept != label.class {
                    summary.conflicts.push(ImportConflict {
                        item: label.item.get(),
                        kept,
                        imported: label.class,
                    });
                }
                continue;
            }
            planned.insert(label.item, label.class);
            events.push(Event::Label {
                item: label.item,
                class: label.class,
                annotator: label.annotator.clone(),
                at_ms: label.at_ms.unwrap_or(now),
                model_version: self.queue.model_version(),
                score: None,
                lease: None,
                source: Source::Import,
                annotation: None,
                annotation_updated_at: None,
            });
        }
        self.journal.append_all(&events)?;
        for event in &events {
            self.apply_event(event);
            self.count_new_label();
        }
        summary.applied = events.len();
        Ok(summary)
    }
}
