//! One run state: everything a run needs to resume, saved by one mechanism.
//!
//! The loop alone ([`ActiveLearningLoop::with_checkpoint`](crate::ActiveLearningLoop)) and the
//! [`Experiment`](crate::Experiment) both save a [`RunState`]: the dataset state (labels and
//! the dataset's random generator), the loop's state (steps, the heuristic's draw counter,
//! the query that waits for labels) and, for an experiment, its progress (step records, the
//! weights file, why it stopped). The labels live in one place only.

use std::path::Path;

use baal_data::{Checkpoint, DatasetIndex, DatasetState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};
use crate::record::StepRecord;

/// Version of [`RunState`]'s serialised form (1 was the experiment's own `state.json`).
pub const RUN_STATE_FORMAT_VERSION: u32 = 2;

/// The loop's part of a run: what makes a resumed loop continue as the original would have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopState {
    /// The heuristic's name, as a person reads it.
    pub heuristic: String,
    /// The heuristic's identity ([`Heuristic::identity`](baal_heuristics::Heuristic::identity):
    /// its name and every parameter that changes its ranking): a resume with a heuristic of
    /// another identity is refused. `None` in a state saved before identities were; such a
    /// state is resumed by a heuristic of the same name, as it was then.
    #[serde(default)]
    pub heuristic_identity: Option<serde_json::Value>,
    /// Items queried per step (a resume with another query size is refused).
    pub query_size: usize,
    /// Steps done: step `s` draws its MC masks with the sampler seed plus `s`.
    pub steps: u64,
    /// The heuristic's random draws so far ([`Heuristic::draws`](baal_heuristics::Heuristic::draws)).
    pub heuristic_draws: u64,
    /// The query that waits for a person's labels (dataset indices not labelled yet).
    pub pending: Vec<DatasetIndex>,
}

/// An experiment's progress, beside the loop's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentProgress {
    /// Every finished step.
    pub records: Vec<StepRecord>,
    /// The weights file kept between steps, when the trainer keeps its weights.
    pub weights: Option<String>,
    /// Why the experiment stopped, if it did.
    pub finished: Option<String>,
    /// With a stopping set ([`Experiment::with_stopping_set`](crate::Experiment::with_stopping_set)):
    /// the last step's model's predicted class of each of its items, which the next step's
    /// agreement compares with (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_predictions: Option<Vec<usize>>,
}

/// Everything needed to resume a run, written atomically (see [`Checkpoint`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "L: Serialize", deserialize = "L: DeserializeOwned"))]
pub struct RunState<L> {
    /// [`RUN_STATE_FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// The loop's state.
    pub active: LoopState,
    /// The dataset's state: every label given, in order, and its random generator.
    pub dataset: DatasetState<L>,
    /// The experiment's progress; `None` for a loop run on its own.
    #[serde(default)]
    pub experiment: Option<ExperimentProgress>,
}

impl<L: Serialize + DeserializeOwned> RunState<L> {
    /// A run state of the current format.
    pub fn new(
        active: LoopState,
        dataset: DatasetState<L>,
        experiment: Option<ExperimentProgress>,
    ) -> Self {
        Self {
            format_version: RUN_STATE_FORMAT_VERSION,
            active,
            dataset,
            experiment,
        }
    }

    /// Writes the state to `path` atomically: after a crash the file holds the previous state
    /// or this one, whole.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(Checkpoint::save(path, self)?)
    }

    /// Reads the state saved at `path`.
    ///
    /// # Errors
    /// A missing, foreign, truncated or corrupt file, or a format version this crate does not
    /// read.
    pub fn load(path: &Path) -> Result<Self> {
        let state: Self = Checkpoint::load(path)?;
        if state.format_version != RUN_STATE_FORMAT_VERSION {
            return Err(ActiveError::Resume {
                path: path.to_path_buf(),
                reason: format!(
                    "run state format {} is not the supported {RUN_STATE_FORMAT_VERSION}",
                    state.format_version
                ),
            });
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActiveLearningLoop;
    use baal_data::ActiveLearningDataset;
    use baal_heuristics::{Bald, Entropy, Heuristic, StochasticSampling};
    use burn::data::dataset::InMemDataset;
    use serde_json::Value;

    fn state() -> RunState<u8> {
        let mut dataset = ActiveLearningDataset::new(InMemDataset::new((0..8u8).collect()))
            .with_known_labels(|&x: &u8| x % 3);
        dataset.label_randomly(3).expect("labels");
        let active = LoopState {
            heuristic: "random".into(),
            heuristic_identity: Some(serde_json::json!({ "name": "random", "seed": 3 })),
            query_size: 2,
            steps: 4,
            heuristic_draws: 4,
            pending: vec![DatasetIndex::new(7)],
        };
        RunState::new(active, dataset.state(), None)
    }

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        let saved = state();
        saved.save(&path).expect("saves");
        assert_eq!(RunState::<u8>::load(&path).expect("loads"), saved);
        let mut old = saved;
        old.format_version = 1;
        old.save(&path).expect("saves");
        let err = RunState::<u8>::load(&path).expect_err("format 1");
        assert!(err.to_string().contains("format 1"), "{err}");
    }

    fn power(base: impl Heuristic + 'static, temperature: f64, seed: u64) -> Box<dyn Heuristic> {
        Box::new(StochasticSampling::power(base, temperature, seed).expect("valid"))
    }

    /// Saves the state of a fresh loop of `heuristic` (query size 2) at `path`, with
    /// `identity` as the saved identity when given (`Some(None)`: a state of before).
    fn save_loop(path: &Path, heuristic: Box<dyn Heuristic>, identity: Option<Option<Value>>) {
        let mut active = ActiveLearningLoop::<u8, u8>::new(heuristic, 2)
            .expect("valid")
            .state();
        if let Some(identity) = identity {
            active.heuristic_identity = identity;
        }
        let dataset = state().dataset;
        RunState::new(active, dataset, None)
            .save(path)
            .expect("saves");
    }

    /// Resumes a loop of `heuristic` (query size 2) from `path`.
    fn resume(path: &Path, heuristic: Box<dyn Heuristic>) -> Result<bool> {
        let mut dataset = ActiveLearningDataset::new(InMemDataset::new((0..8u8).collect()))
            .with_known_labels(|&x: &u8| x % 3);
        ActiveLearningLoop::<u8, u8>::new(heuristic, 2)?
            .with_checkpoint(path)
            .resume(&mut dataset)
    }

    #[test]
    fn a_resume_with_other_parameters_of_the_same_heuristic_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        save_loop(&path, power(Bald, 0.7, 5), None);
        assert!(resume(&path, power(Bald, 0.7, 5)).expect("the same heuristic"));
        // Each of these has the name of the saved one, power-sampling, which is all that
        // was compared before.
        let err = resume(&path, power(Bald, 1.0, 5)).expect_err("another temperature");
        let message = err.to_string();
        assert!(message.contains(r#""temperature":0.7"#), "{message}");
        assert!(message.contains(r#""temperature":1.0"#), "{message}");
        resume(&path, power(Entropy, 0.7, 5)).expect_err("another base heuristic");
        resume(&path, power(Bald, 0.7, 6)).expect_err("another seed");
        resume(&path, Box::new(Bald)).expect_err("another heuristic");
    }

    #[test]
    fn a_state_saved_before_identities_is_compared_by_name() {
        // Such a state has no heuristic_identity at all.
        let json = r#"{"heuristic":"power-sampling","query_size":2,"steps":1,
            "heuristic_draws":1,"pending":[]}"#;
        let old: LoopState = serde_json::from_str(json).expect("an old loop state");
        assert_eq!(old.heuristic_identity, None);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        save_loop(&path, power(Bald, 0.7, 5), Some(None));
        // The name is all it holds, so the temperature cannot be checked.
        assert!(resume(&path, power(Bald, 1.0, 5)).expect("the same name"));
        let err = resume(&path, Box::new(Bald)).expect_err("another name");
        assert!(
            err.to_string()
                .contains("run with heuristic power-sampling and query size 2, not bald"),
            "{err}"
        );
    }
}
