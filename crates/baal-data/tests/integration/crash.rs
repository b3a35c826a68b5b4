//! Labels survive SIGKILL: a child process labels and checkpoints in a loop and is killed at
//! random points; the last checkpoint must load and hold every label saved before the kill.
//!
//! The child is this test binary itself, re-run with `CHILD_DIR_ENV` set so that
//! `crash_child` does the labelling (without it, `crash_child` returns at once).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use baal_data::{ActiveLearningDataset, Checkpoint, DatasetIndex, DatasetState};
use burn::data::dataset::InMemDataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_DIR_ENV: &str = "BAAL_DATA_CRASH_CHILD_DIR";
const ITEMS: usize = 100_000;

fn dataset() -> ActiveLearningDataset<u32, u64> {
    ActiveLearningDataset::new(InMemDataset::new((0..ITEMS as u32).collect()))
}

/// The label the "person" gives to item `i`.
fn label_for(i: usize) -> u64 {
    (i as u64).wrapping_mul(2_654_435_761) % 1000
}

#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let path = Path::new(&dir).join("labels.ckpt");
    let mut data = dataset();
    for i in 0..ITEMS {
        data.label_with(DatasetIndex::new(i), label_for(i))
            .expect("labels");
        data.save_checkpoint(&path).expect("saves");
        // Printed only once the checkpoint holding label i is durable.
        println!("saved {i}");
    }
}

#[test]
fn checkpoints_survive_sigkill_at_random_points() {
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut rounds_with_saves = 0;
    for round in 0..8 {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(&exe)
            .args([
                &baal_test_support::test_name(module_path!(), "crash_child"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns the child");
        std::thread::sleep(Duration::from_millis(rng.random_range(30..300)));
        child.kill().expect("sends SIGKILL");
        child.wait().expect("reaps the child");
        let mut output = String::new();
        child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_string(&mut output)
            .expect("reads the child's output");
        let last_saved = output
            .lines()
            .filter_map(|line| line.strip_prefix("saved "))
            .filter_map(|n| n.trim().parse::<usize>().ok())
            .max();

        let path = dir.path().join("labels.ckpt");
        let Some(last_saved) = last_saved else {
            continue;
        };
        rounds_with_saves += 1;
        eprintln!(
            "round {round}: killed after {} reported saves",
            last_saved + 1
        );
        let state: DatasetState<u64> = Checkpoint::load(&path)
            .unwrap_or_else(|e| panic!("round {round}: last checkpoint does not load: {e}"));
        // Every label reported saved is there; one more may be (killed before printing).
        assert!(
            state.labelled.len() == last_saved + 1 || state.labelled.len() == last_saved + 2,
            "round {round}: {} labels in the checkpoint, {} reported saved",
            state.labelled.len(),
            last_saved + 1
        );
        for (i, record) in state.labelled.iter().enumerate() {
            assert_eq!(record.dataset_index, DatasetIndex::new(i), "round {round}");
            assert_eq!(record.label, label_for(i), "round {round}");
        }
        let mut resumed = dataset();
        resumed
            .restore(state)
            .expect("the checkpoint fits the dataset");
        assert_eq!(resumed.n_labelled(), resumed.current_step());
    }
    assert!(
        rounds_with_saves >= 4,
        "only {rounds_with_saves} rounds got to save"
    );
}
