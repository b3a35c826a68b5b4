//! The label journal: every label and undo, appended and synced before it is answered.
//!
//! One line per event: the CRC-32 of the JSON (8 hex digits), a space, the JSON, a newline.
//! Appending is `O(1)` whatever the number of labels (a snapshot rewritten per label would be
//! `O(labels)`), and a line is durable once [`LabelJournal::append`] returns. After a crash the
//! last line may be torn (written in part, without its newline): [`LabelJournal::open`] drops
//! it, since its request was never answered. A complete line that does not check out,
//! anywhere (the last one too), is corruption: an error naming the line, the file left alone.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use baal_data::DatasetIndex;
use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// Where a label came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The labelling page or the HTTP API, answering a lease.
    Web,
    /// A Label Studio annotation (webhook).
    LabelStudio,
    /// A label file made elsewhere (`baal serve --labels`, see [`crate::read_label_file`]).
    Import,
}

/// One event of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// `item` got `class` (a new label, or a changed one).
    Label {
        /// The item.
        item: DatasetIndex,
        /// Its class, below the number of classes.
        class: usize,
        /// Who labelled it.
        annotator: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
        /// The model version of the ranking the item was served from.
        model_version: u64,
        /// The item's score when it was served (`None` for labels not served by the queue).
        score: Option<f32>,
        /// The lease it answered (`None` for labels not served by the queue).
        lease: Option<u64>,
        /// Where the label came from.
        source: Source,
        /// The Label Studio annotation it came from, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation: Option<u64>,
        /// When that annotation was last updated (Label Studio's `updated_at`): an older
        /// delivery of it is ignored, after a restart too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation_updated_at: Option<String>,
    },
    /// The label of `item` was taken back.
    Unlabel {
        /// The item.
        item: DatasetIndex,
        /// Who took it back.
        annotator: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
        /// The Label Studio annotation that took it back (changed into a skip), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation: Option<u64>,
        /// When that annotation was last updated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation_updated_at: Option<String>,
    },
    /// A Label Studio annotation was deleted: the label it gave, if it still stands, is taken
    /// back, and later deliveries of the annotation are ignored.
    AnnotationDeleted {
        /// The annotation.
        annotation: u64,
        /// Who deleted it.
        annotator: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
}

/// An append-only, synced file of [`Event`]s.
#[derive(Debug)]
pub struct LabelJournal {
    path: PathBuf,
    file: File,
    len: u64,
}

impl LabelJournal {
    /// Opens (or creates) the journal at `path` and returns it with the events it holds, in
    /// order. A torn last line is cut off.
    ///
    /// # Errors
    /// The file cannot be read or written, or a line before the last is corrupt.
    pub fn open(path: impl AsRef<Path>) -> Result<(Self, Vec<Event>), ServeError> {
        let path = path.as_ref().to_path_buf();
        let io = |e| ServeError::io(&path, e);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (events, good) = parse(&bytes).map_err(|reason| ServeError::Corrupt {
            path: path.clone(),
            reason,
        })?;
        if good < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                dropped = bytes.len() - good,
                "the journal's last line was torn (a crash mid-write); it was never answered, dropping it"
            );
            file.set_len(good as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| ServeError::io(dir, e))?;
        }
        let len = good as u64;
        Ok((Self { path, file, len }, events))
    }

    /// The events of the journal at `path`, read without opening it for writing (a server may
    /// be running on it): nothing is created, cut or locked. A missing file holds no event; a
    /// torn last line (a write under way, or a crash) is left out, as [`open`](Self::open)
    /// would drop it.
    ///
    /// # Errors
    /// The file cannot be read, or a complete line is corrupt.
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<Event>, ServeError> {
        let path = path.as_ref();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ServeError::io(path, e)),
        };
        let (events, _) = parse(&bytes).map_err(|reason| ServeError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(events)
    }

    /// Appends `event` and syncs it to disk; when this returns `Ok`, the event survives a crash.
    /// On failure the file is cut back to its previous length.
    ///
    /// # Errors
    /// The write or the sync fails.
    pub fn append(&mut self, event: &Event) -> Result<(), ServeError> {
        self.append_all(std::slice::from_ref(event))
    }

    /// Appends `events` in one write and one sync (a batch of one request); on failure the file
    /// is cut back to its previous length, so that none of them stays.
    ///
    /// # Errors
    /// The write or the sync fails.
    pub fn append_all(&mut self, events: &[Event]) -> Result<(), ServeError> {
        if events.is_empty() {
            return Ok(());
        }
        let line: String = events.iter().map(encode).collect();
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Best effort: a torn line would be dropped at the next open anyway.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(ServeError::io(&self.path, e));
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn encode(event: &Event) -> String {
    // An `Event` always serialises: plain fields, string keys.
    let json = serde_json::to_string(event).unwrap_or_default();
    format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()))
}

/// The events of `bytes` and the length of its good prefix (shorter than `bytes` when the last
/// line is torn).
fn parse(bytes: &[u8]) -> Result<(Vec<Event>, usize), String> {
    let mut events = Vec::new();
    let mut start = 0;
    let mut line_no = 0;
    while start < bytes.len() {
        line_no += 1;
        let Some(end) = bytes[start..].iter().position(|&b| b == b'\n') else {
            // No newline: the last write stopped part-way.
            return Ok((events, start));
        };
        // A line with its newline was written whole: damage in it is corruption, never a
        // torn write, even on the last line.
        let line = &bytes[start..start + end];
        events.push(parse_line(line).map_err(|reason| format!("line {line_no}: {reason}"))?);
        start += end + 1;
    }
    Ok((events, start))
}

fn parse_line(line: &[u8]) -> Result<Event, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (crc, json) = text
        .split_once(' ')
        .ok_or_else(|| "no checksum before the event".to_string())?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum {crc:?}"))?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("not an event: {e}"))
}

/// Syncs the folder `dir` (an empty path is the current folder), so that a file created or
/// renamed in it survives a crash; nothing to do off Unix.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(item: usize, class: usize) -> Event {
        Event::Label {
            item: DatasetIndex::new(item),
            class,
            annotator: "ann".into(),
            at_ms: 1,
            model_version: 2,
            score: Some(0.5),
            lease: Some(3),
            source: Source::Web,
            annotation: None,
            annotation_updated_at: None,
        }
    }

    #[test]
    fn events_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.journal");
        let (mut journal, events) = LabelJournal::open(&path).expect("opens");
        assert!(events.is_empty());
        journal.append(&label(4, 1)).expect("appends");
        let undo = Event::Unlabel {
            item: DatasetIndex::new(4),
            annotator: "ann".into(),
            at_ms: 2,
            annotation: None,
            annotation_updated_at: None,
        };
        journal.append(&undo).expect("appends");
        drop(journal);
        let (_, events) = LabelJournal::open(&path).expect("reopens");
        assert_eq!(events, vec![label(4, 1), undo]);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.journal");
        let (mut journal, _) = LabelJournal::open(&path).expect("opens");
        journal.append(&label(1, 0)).expect("appends");
        drop(journal);
        let whole = std::fs::read(&path).expect("reads");
        let torn = encode(&label(2, 0));
        for cut in [5, torn.len() - 1] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&torn.as_bytes()[..cut]);
            std::fs::write(&path, &bytes).expect("writes");
            let (mut journal, events) = LabelJournal::open(&path).expect("a torn tail is fine");
            assert_eq!(events, vec![label(1, 0)], "cut at {cut}");
            journal.append(&label(3, 1)).expect("appends after the cut");
            drop(journal);
            let (_, events) = LabelJournal::open(&path).expect("reopens");
            assert_eq!(events, vec![label(1, 0), label(3, 1)]);
            std::fs::write(&path, &whole).expect("restores");
        }
    }

    #[test]
    fn a_complete_damaged_last_line_is_corruption_and_the_file_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.journal");
        let mut text = encode(&label(1, 0));
        text.push_str(&encode(&label(2, 1)).replace("\"class\":1", "\"class\":7"));
        std::fs::write(&path, &text).expect("writes");
        let err = LabelJournal::open(&path).expect_err("corrupt");
        assert!(
            err.to_string().contains("line 2: checksum mismatch"),
            "{err}"
        );
        assert_eq!(err.code(), "corrupt-state");
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), text);
    }

    #[test]
    fn read_leaves_the_file_alone_and_skips_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.journal");
        assert_eq!(LabelJournal::read(&path).expect("no file"), Vec::new());
        assert!(!path.exists(), "read creates nothing");
        let mut text = encode(&label(1, 0));
        let torn = encode(&label(2, 1));
        text.push_str(&torn[..torn.len() - 1]);
        std::fs::write(&path, &text).expect("writes");
        assert_eq!(LabelJournal::read(&path).expect("reads"), vec![label(1, 0)]);
        assert_eq!(
            std::fs::read_to_string(&path).expect("reads"),
            text,
            "not cut"
        );
    }

    #[test]
    fn journals_written_before_the_import_source_still_parse() {
        let old = r#"{"event":"label","item":3,"class":1,"annotator":"ann","at_ms":5,"model_version":0,"score":null,"lease":null,"source":"label-studio"}"#;
        let event = parse_line(format!("{:08x} {old}", crc32fast::hash(old.as_bytes())).as_bytes())
            .expect("parses");
        assert!(matches!(
            event,
            Event::Label {
                source: Source::LabelStudio,
                ..
            }
        ));
        let mut imported = label(4, 0);
        if let Event::Label { source, .. } = &mut imported {
            *source = Source::Import;
        }
        assert!(encode(&imported).contains(r#""source":"import""#));
        assert_eq!(
            parse(encode(&imported).as_bytes()).expect("parses").0,
            vec![imported]
        );
    }

    #[test]
    fn a_batch_is_one_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.journal");
        let (mut journal, _) = LabelJournal::open(&path).expect("opens");
        journal
            .append_all(&[label(1, 0), label(2, 1)])
            .expect("appends");
        journal.append_all(&[]).expect("nothing to append");
        drop(journal);
        let (_, events) = LabelJournal::open(&path).expect("reopens");
        assert_eq!(events, vec![label(1, 0), label(2, 1)]);
    }

    #[test]
    fn a_corrupt_line_before_the_last_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.journal");
        let mut text = encode(&label(1, 0));
        text.push_str(&encode(&label(2, 1)).replace("\"class\":1", "\"class\":7"));
        text.push_str(&encode(&label(3, 1)));
        std::fs::write(&path, text).expect("writes");
        let err = LabelJournal::open(&path).expect_err("corrupt");
        assert!(
            err.to_string().contains("line 2: checksum mismatch"),
            "{err}"
        );
    }
}
