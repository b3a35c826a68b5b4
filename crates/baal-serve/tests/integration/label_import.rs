//! `read_label_file` and `LabelStore::import_labels`: exported labels go back into a fresh
//! state and survive a restart; a state's own labels win; a bad line names itself and
//! nothing is applied.

use std::path::Path;

use baal_data::DatasetIndex;
use baal_serve::{
    ExportFormat, ImportConflict, ImportSummary, LabelInfo, ServeError, ServedPool, Source,
    export_labels, parse_rfc3339, read_label_file,
};

use crate::label_export::{
    ODD_ANNOTATOR, ODD_CLASS, array_items, folder_items, image_folder, labelled_array_state,
    open_state,
};

/// (item, class, annotator, time) of each label.
fn summary(labels: &[(DatasetIndex, LabelInfo)]) -> Vec<(usize, usize, String, Option<u64>)> {
    labels
        .iter()
        .map(|(item, info)| (item.get(), info.class, info.annotator.clone(), info.at_ms))
        .collect()
}

#[test]
fn exported_labels_go_into_a_fresh_state_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let original = summary(&labelled_array_state(&state).label_list());
    let items = array_items();
    let pool = ServedPool {
        items: &items,
        data: Path::new("pool.npy"),
    };
    for format in [ExportFormat::Csv, ExportFormat::Json] {
        let file = dir.path().join(format!("labels.{format:?}").to_lowercase());
        export_labels(&state, Some(pool), format, &file).expect("exports");
        // A fresh state of the same pool, without its seed label: all three come in.
        let mut fresh_items = array_items();
        fresh_items.seed_labels.clear();
        let fresh = dir.path().join(format!("fresh-{format:?}"));
        let mut store = open_state(&fresh, "pool.npy", &fresh_items);
        let labels = read_label_file(&file, pool).expect("reads");
        let before = std::time::SystemTime::now();
        let done = store.import_labels(&labels).expect("imports");
        assert_eq!(
            done,
            ImportSummary {
                applied: 3,
                skipped: 0,
                conflicts: Vec::new()
            }
        );
        drop(store);
        let store = open_state(&fresh, "pool.npy", &fresh_items);
        let replayed = store.label_list();
        assert!(
            replayed
                .iter()
                .all(|(_, l)| l.source == Some(Source::Import))
        );
        let mut expected = original.clone();
        // The seed label had no time: it gets the import's.
        let seed_time = replayed[0].1.at_ms.expect("a time");
        let since_epoch = before
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        assert!(u128::from(seed_time) >= since_epoch, "{format:?}");
        expected[0].3 = Some(seed_time);
        assert_eq!(summary(&replayed), expected, "{format:?}");
        assert_eq!(replayed[1].1.annotator, ODD_ANNOTATOR);
    }
    // Into the state that has them: all skipped, none in conflict.
    let mut fresh_items = array_items();
    fresh_items.seed_labels.clear();
    let mut store = open_state(&dir.path().join("fresh-Csv"), "pool.npy", &fresh_items);
    let file = dir.path().join("labels.csv");
    let labels = read_label_file(&file, pool).expect("reads");
    assert_eq!(store.import_labels(&labels).expect("again").skipped, 3);
}

#[test]
fn a_state_keeps_its_own_labels_and_reports_the_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let items = array_items();
    let mut store = open_state(&dir.path().join("state"), "pool.npy", &items);
    store.label_external(2, 0, "ann", None).expect("labels");
    let file = dir.path().join("labels.csv");
    std::fs::write(
        &file,
        format!(
            "item,class,annotator,at\n\
             0,\"{odd}\",x,\n\
             2,\"{odd}\",x,2026-01-02T03:04:05.678Z\n\
             3,plain,,2026-01-02T03:04:05.678+01:00\n\
             3,plain,again,\n",
            odd = ODD_CLASS.replace('"', "\"\"")
        ),
    )
    .expect("writes");
    let pool = ServedPool {
        items: &items,
        data: Path::new("pool.npy"),
    };
    let labels = read_label_file(&file, pool).expect("reads");
    assert_eq!(labels.len(), 3, "the same label twice counts once");
    let done = store.import_labels(&labels).expect("imports");
    let conflict = ImportConflict {
        item: 2,
        kept: 0,
        imported: 1,
    };
    assert_eq!(
        done,
        ImportSummary {
            applied: 1,
            skipped: 2,
            conflicts: vec![conflict]
        }
    );
    let three = store.label_of(DatasetIndex::new(3)).expect("imported");
    assert_eq!((three.class, three.annotator.as_str()), (0, "import"));
    assert_eq!(three.at_ms, parse_rfc3339("2026-01-02T02:04:05.678Z"));
    assert_eq!(
        store.label_of(DatasetIndex::new(2)).map(|l| l.class),
        Some(0)
    );
    assert_eq!(
        store
            .label_of(DatasetIndex::new(0))
            .map(|l| l.annotator.as_str()),
        Some("seed")
    );
}

#[test]
fn folder_labels_match_by_file_whatever_the_item_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = image_folder(dir.path());
    let items = folder_items(&data);
    let pool = ServedPool {
        items: &items,
        data: &data,
    };
    // Item indices of another folder: the files decide.
    let file = dir.path().join("labels.json");
    std::fs::write(
        &file,
        r#"[{"item": 7, "file": "c.png", "class": "dog"},
            {"item": 0, "file": "cat/s.png", "class": "cat", "annotator": "z"},
            {"item": 1, "file": null, "class": "dog"}]"#,
    )
    .expect("writes");
    let labels = read_label_file(&file, pool).expect("reads");
    let matched: Vec<(usize, usize)> = labels.iter().map(|l| (l.item.get(), l.class)).collect();
    assert_eq!(matched, [(2, 1), (3, 0), (1, 1)]);
    let mut store = open_state(&dir.path().join("state"), &data.to_string_lossy(), &items);
    let done = store.import_labels(&labels).expect("imports");
    assert_eq!(
        (done.applied, done.skipped),
        (2, 1),
        "s.png is a seed label already"
    );
}

#[test]
fn a_bad_line_is_named_and_nothing_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = image_folder(dir.path());
    let folder = folder_items(&data);
    let array = array_items();
    let array_pool = ServedPool {
        items: &array,
        data: Path::new("pool.npy"),
    };
    let folder_pool = ServedPool {
        items: &folder,
        data: &data,
    };
    let header = "item,file,class,class_index,annotator,at,source\n";
    let cases: [(&str, &str, ServedPool<'_>, &str, &str); 8] = [
        (
            "unknown-class.csv",
            "1,,plain,0,a,,web\n2,,horse,0,a,,web\n",
            array_pool,
            "line 3",
            "the class \"horse\" is not one of the pool's (plain, cat, \"big\")",
        ),
        (
            "unknown-file.csv",
            "0,a.png,cat,0,a,,web\n0,zebra.png,cat,0,a,,web\n",
            folder_pool,
            "line 3",
            "the file \"zebra.png\" is not in the pool",
        ),
        (
            "out-of-range.csv",
            "1,,plain,0,a,,web\n6,,plain,0,a,,web\n",
            array_pool,
            "line 3",
            "item 6 is out of range: the pool holds 6 items",
        ),
        (
            "duplicate.csv",
            "4,,plain,0,a,,web\n1,,plain,0,a,,web\n4,,\"cat, \"\"big\"\"\",1,a,,web\n",
            array_pool,
            "line 4",
            "item 4 is labelled \"cat, \\\"big\\\"\" here and \"plain\" at line 2",
        ),
        (
            "malformed.csv",
            "1,,plain,0,a,,web\n2,,pl\"ain,0,a,,web\n",
            array_pool,
            "line 3",
            "a quote inside an unquoted field",
        ),
        (
            "short.csv",
            "1,,plain,0,a,,web\n2,,plain\n",
            array_pool,
            "line 3",
            "3 field(s), the header has 7",
        ),
        (
            "bad-time.csv",
            "1,,plain,0,a,yesterday,web\n",
            array_pool,
            "line 2",
            "the time \"yesterday\" is not an RFC 3339 time",
        ),
        (
            "entries.json",
            "",
            array_pool,
            "entry 2",
            "the class \"horse\" is not one of the pool's",
        ),
    ];
    for (name, body, pool, at, reason) in cases {
        let path = dir.path().join(name);
        let text = if name.ends_with(".json") {
            r#"[{"item": 1, "class": "plain"}, {"item": 2, "class": "horse"}]"#.to_string()
        } else {
            format!("{header}{body}")
        };
        std::fs::write(&path, text).expect("writes");
        let err = read_label_file(&path, pool).expect_err(name);
        let ServeError::LabelFile {
            path: named,
            at: place,
            reason: why,
        } = &err
        else {
            panic!("{name}: {err}");
        };
        assert_eq!((named, place.as_str()), (&path, at), "{name}: {err}");
        assert!(why.starts_with(reason), "{name}: {why}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
    // Nothing reaches the store before every line is good; the store checks again.
    let state = dir.path().join("state");
    let mut store = open_state(&state, "pool.npy", &array);
    let journal = std::fs::read(state.join("labels.journal")).expect("journal");
    let bad = [
        baal_serve::ImportedLabel {
            item: DatasetIndex::new(1),
            class: 0,
            annotator: "a".into(),
            at_ms: None,
        },
        baal_serve::ImportedLabel {
            item: DatasetIndex::new(2),
            class: 2,
            annotator: "a".into(),
            at_ms: None,
        },
    ];
    assert!(matches!(
        store.import_labels(&bad),
        Err(ServeError::UnknownClass { .. })
    ));
    assert_eq!(store.n_labelled(), 1, "the seed label alone");
    assert_eq!(
        std::fs::read(state.join("labels.journal")).expect("journal"),
        journal
    );
}
