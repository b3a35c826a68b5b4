//! `export_labels` on state folders made by the store: rows, annotators, times, sources and
//! CSV quoting in each format, read while the store is open; outputs never written over.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baal_data::{Checkpoint, DatasetIndex, FolderShape};
use baal_serve::{
    Event, ExportFormat, Items, LabelJournal, LabelStore, PoolOptions, ServeError, ServedPool,
    StateSettings, StoreConfig, export_labels, load_folder, load_served_pool, rfc3339,
};
use serde_json::{Value, json};

use crate::common;

/// A class and an annotator that CSV must quote: a comma and a quote.
pub const ODD_CLASS: &str = "cat, \"big\"";
pub const ODD_ANNOTATOR: &str = "ann \"x\", y";

/// An array pool of 6 items, classes `plain` and [`ODD_CLASS`], item 0 a seed label of the
/// second.
pub fn array_items() -> Items {
    let mut items = common::items(6, 2);
    items.classes = vec!["plain".into(), ODD_CLASS.into()];
    items.seed_labels = vec![(DatasetIndex::new(0), 1)];
    items
}

/// Writes the state's `settings.json` for `items` and opens its store.
pub fn open_state(state: &Path, data: &str, items: &Items) -> LabelStore {
    std::fs::create_dir_all(state).expect("state folder");
    let settings = StateSettings {
        data: data.into(),
        classes: items.classes.clone(),
        n_items: items.len(),
        pool_size: None,
        seed: 0,
        seed_labels: Some(0),
        test_size: Some(1000),
    };
    Checkpoint::save(state.join("settings.json"), &settings).expect("settings");
    LabelStore::open(
        state,
        StoreConfig {
            classes: items.classes.clone(),
            n_items: items.len(),
            seed_labels: items.seed_labels.clone(),
            lease_ttl: Duration::from_secs(600),
            retrain_every: 100,
            initial_order: (0..items.len()).map(DatasetIndex::new).collect(),
        },
    )
    .expect("opens the store")
}

/// Labels of an array state: item 1 by [`ODD_ANNOTATOR`] on the page (class 1), item 2 by
/// `bob` then undone, item 5 from Label Studio (class 0). Returns the open store.
pub fn labelled_array_state(state: &Path) -> LabelStore {
    let mut store = open_state(state, "pool.npy", &array_items());
    let now = Instant::now();
    let lease = store.next(ODD_ANNOTATOR, None, now).expect("an item");
    assert_eq!(lease.item.get(), 1, "the seed item is not served");
    store
        .label(ODD_ANNOTATOR, lease.id, 1, now)
        .expect("labels");
    let lease = store.next("bob", None, now).expect("an item");
    assert_eq!(lease.item.get(), 2);
    store.label("bob", lease.id, 0, now).expect("labels");
    store.undo("bob").expect("undoes");
    store.label_external(5, 0, "ls", Some(9)).expect("labels");
    store
}

/// The time the journal gives the label of `item`, as the export writes it.
pub fn journal_time(state: &Path, item: usize) -> String {
    let events = LabelJournal::read(state.join("labels.journal")).expect("journal");
    events
        .iter()
        .rev()
        .find_map(|event| match event {
            Event::Label {
                item: labelled,
                at_ms,
                ..
            } if labelled.get() == item => Some(rfc3339(*at_ms)),
            _ => None,
        })
        .expect("a label event")
}

#[test]
fn each_format_holds_the_standing_labels_with_annotator_time_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // The store stays open, as a running server would hold it.
    let _store = labelled_array_state(&state);
    let journal = std::fs::read(state.join("labels.journal")).expect("journal");
    let items = array_items();
    let pool = ServedPool {
        items: &items,
        data: Path::new("pool.npy"),
    };
    let (t1, t5) = (journal_time(&state, 1), journal_time(&state, 5));

    let json_out = dir.path().join("labels.json");
    let summary = export_labels(&state, Some(pool), ExportFormat::Json, &json_out).expect("json");
    assert_eq!(
        (summary.labels, summary.seed_labels, summary.images),
        (3, 1, 0)
    );
    let exported: Value =
        serde_json::from_slice(&std::fs::read(&json_out).expect("reads")).expect("JSON");
    assert_eq!(
        exported,
        json!([
            {"item": 0, "file": null, "class": ODD_CLASS, "class_index": 1, "annotator": "seed", "at": null, "source": "seed"},
            {"item": 1, "file": null, "class": ODD_CLASS, "class_index": 1, "annotator": ODD_ANNOTATOR, "at": t1, "source": "web"},
            {"item": 5, "file": null, "class": "plain", "class_index": 0, "annotator": "ls", "at": t5, "source": "label-studio"},
        ])
    );

    let csv_out = dir.path().join("labels.csv");
    export_labels(&state, Some(pool), ExportFormat::Csv, &csv_out).expect("csv");
    let csv = format!(
        "item,file,class,class_index,annotator,at,source\r\n\
         0,,\"cat, \"\"big\"\"\",1,seed,,seed\r\n\
         1,,\"cat, \"\"big\"\"\",1,\"ann \"\"x\"\", y\",{t1},web\r\n\
         5,,plain,0,ls,{t5},label-studio\r\n"
    );
    assert_eq!(std::fs::read_to_string(&csv_out).expect("reads"), csv);

    let folders = dir.path().join("folders");
    let summary =
        export_labels(&state, Some(pool), ExportFormat::Folders, &folders).expect("folders");
    assert_eq!(summary.images, 3);
    assert_eq!(
        common::sorted_names(&folders),
        [ODD_CLASS, "labels.csv", "plain"]
    );
    assert_eq!(
        common::sorted_names(&folders.join(ODD_CLASS)),
        ["0.png", "1.png"]
    );
    assert_eq!(common::sorted_names(&folders.join("plain")), ["5.png"]);
    for (class, item) in [(ODD_CLASS, 1), ("plain", 5)] {
        let file = folders.join(class).join(format!("{item}.png"));
        let png = std::fs::read(file).expect("an image");
        assert_eq!(png, items.picture(item).expect("picture").0, "item {item}");
    }
    assert_eq!(
        std::fs::read_to_string(folders.join("labels.csv")).expect("reads"),
        csv
    );
    assert_eq!(
        std::fs::read(state.join("labels.journal")).expect("journal"),
        journal,
        "the export wrote nothing into the state"
    );
    assert_eq!(
        common::sorted_names(&state),
        ["labels.journal", "settings.json"],
        "nothing made in the state folder"
    );

    // Without the pool: neither seed labels nor file names, and no folders.
    let bare = dir.path().join("bare.json");
    let summary = export_labels(&state, None, ExportFormat::Json, &bare).expect("json");
    assert_eq!((summary.labels, summary.seed_labels), (2, 0));
    let err = export_labels(&state, None, ExportFormat::Folders, &dir.path().join("f"))
        .expect_err("folders need the images");
    assert!(err.to_string().contains("needs the pool's images"), "{err}");
}

#[test]
fn an_existing_output_is_an_error_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    drop(labelled_array_state(&state));
    let items = array_items();
    let pool = ServedPool {
        items: &items,
        data: Path::new("pool.npy"),
    };
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).expect("mkdir");
    std::fs::write(busy.join("mine.txt"), "keep me").expect("writes");
    let file = dir.path().join("out.csv");
    std::fs::write(&file, "keep me too").expect("writes");
    for (format, output) in [
        (ExportFormat::Folders, &busy),
        (ExportFormat::Csv, &file),
        (ExportFormat::Json, &busy),
        (ExportFormat::Folders, &file),
    ] {
        let err = export_labels(&state, Some(pool), format, output).expect_err("exists");
        assert!(
            matches!(&err, ServeError::OutputExists { path } if path == output),
            "{format:?} over {}: {err}",
            output.display()
        );
        assert!(
            err.to_string().contains(&*output.to_string_lossy()),
            "{err}"
        );
    }
    assert_eq!(common::sorted_names(&busy), ["mine.txt"]);
    assert_eq!(
        std::fs::read_to_string(busy.join("mine.txt")).expect("reads"),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("reads"),
        "keep me too"
    );
    assert_eq!(
        common::sorted_names(dir.path()),
        ["busy", "out.csv", "state"],
        "no leftovers"
    );
    // An empty folder is taken.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    export_labels(&state, Some(pool), ExportFormat::Folders, &empty).expect("into it");
    assert_eq!(
        common::sorted_names(&empty),
        [ODD_CLASS, "labels.csv", "plain"]
    );
}

#[test]
fn a_class_that_cannot_be_a_folder_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut items = array_items();
    items.classes[0] = "cats/dogs".into();
    let mut store = open_state(&state, "pool.npy", &items);
    store.label_external(3, 0, "ls", None).expect("labels");
    let pool = ServedPool {
        items: &items,
        data: Path::new("pool.npy"),
    };
    let out = dir.path().join("out");
    let err = export_labels(&state, Some(pool), ExportFormat::Folders, &out).expect_err("unsafe");
    assert!(
        matches!(&err, ServeError::UnsafeClassName { class } if class == "cats/dogs"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(common::sorted_names(dir.path()), ["state"]);
}

/// A folder pool: `a.png`, `b.png`, `c.png` at the top, `cat/s.png` a seed label.
pub fn image_folder(root: &Path) -> PathBuf {
    let data = root.join("pictures");
    std::fs::create_dir_all(data.join("cat")).expect("mkdir");
    for (i, name) in ["a.png", "b.png", "c.png", "cat/s.png"]
        .into_iter()
        .enumerate()
    {
        let value = u8::try_from(40 * i).expect("small");
        image::GrayImage::from_pixel(3 + i as u32, 3, image::Luma([value]))
            .save(data.join(name))
            .expect("writes a PNG");
    }
    data
}

pub fn folder_items(data: &Path) -> Items {
    let classes = vec!["cat".to_string(), "dog".to_string()];
    let shape = FolderShape {
        channels: 1,
        size: 4,
    };
    load_folder(data, &classes, shape).expect("loads")
}

#[test]
fn a_folder_pool_exports_its_files_by_name_loaded_from_the_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = image_folder(dir.path());
    let state = dir.path().join("state");
    let items = folder_items(&data);
    let mut store = open_state(&state, &data.to_string_lossy(), &items);
    store
        .label_external(1, 1, "ls", None)
        .expect("b.png is a dog");
    store
        .label_external(0, 0, "ls", None)
        .expect("a.png is a cat");
    drop(store);
    let loaded = load_served_pool(&state, &PoolOptions::default()).expect("loads the pool");
    assert_eq!(loaded.items.seed_labels, vec![(DatasetIndex::new(3), 0)]);
    let out = dir.path().join("export");
    export_labels(&state, Some(loaded.pool()), ExportFormat::Folders, &out).expect("exports");
    assert_eq!(common::sorted_names(&out.join("cat")), ["a.png", "s.png"]);
    assert_eq!(common::sorted_names(&out.join("dog")), ["b.png"]);
    for (copy, original) in [
        ("cat/a.png", "a.png"),
        ("cat/s.png", "cat/s.png"),
        ("dog/b.png", "b.png"),
    ] {
        assert_eq!(
            std::fs::read(out.join(copy)).expect("copied"),
            std::fs::read(data.join(original)).expect("original"),
            "{copy} is the original file"
        );
    }
    let csv = std::fs::read_to_string(out.join("labels.csv")).expect("reads");
    let files: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(files, ["a.png", "b.png", "cat/s.png"]);

    // The settings name other data: refused, not exported wrongly.
    let other = common::items(4, 2);
    let pool = ServedPool {
        items: &other,
        data: &data,
    };
    let err = export_labels(
        &state,
        Some(pool),
        ExportFormat::Csv,
        &dir.path().join("x.csv"),
    )
    .expect_err("other data");
    assert!(
        err.to_string().contains("the state was made for 4 items"),
        "{err}"
    );
}

#[test]
fn a_state_resumes_with_its_recorded_settings_and_an_older_one_without_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorded = StateSettings {
        data: "fashion-mnist".into(),
        classes: vec!["a".into(), "b".into()],
        n_items: 10,
        pool_size: Some(10),
        seed: 3,
        seed_labels: Some(20),
        test_size: Some(500),
    };
    recorded
        .check_resume(&recorded, dir.path())
        .expect("the same settings resume");
    let other_seeds = StateSettings {
        seed_labels: Some(10),
        ..recorded.clone()
    };
    let refused = recorded
        .check_resume(&other_seeds, dir.path())
        .expect_err("other seed labels are other items");
    assert!(refused.to_string().contains("other settings"), "{refused}");
    // A settings.json written before the two were recorded has neither: not compared.
    let older: StateSettings = serde_json::from_value(json!({
        "data": "fashion-mnist", "classes": ["a", "b"], "n_items": 10, "pool_size": 10, "seed": 3
    }))
    .expect("an older settings.json parses");
    assert_eq!((older.seed_labels, older.test_size), (None, None));
    older
        .check_resume(&recorded, dir.path())
        .expect("an older state resumes");
    let other_seed = StateSettings {
        seed: 4,
        ..recorded.clone()
    };
    assert!(older.check_resume(&other_seed, dir.path()).is_err());
}

#[test]
fn an_export_takes_the_seed_label_settings_the_state_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let items = common::items(4, 2);
    let _store = open_state(&state, "missing-data-folder", &items);
    let options = PoolOptions {
        seed_labels: Some(5),
        ..PoolOptions::default()
    };
    let refused = load_served_pool(&state, &options).expect_err("the state recorded 0");
    assert!(
        refused
            .to_string()
            .contains("--seed-labels 5: the state was made with --seed-labels 0"),
        "{refused}"
    );
}
