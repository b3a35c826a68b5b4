//! What the model trains on between the loop's steps: every label, or only those of the last
//! few labelling steps (baal's `last_active_steps`, PR #174), e.g. to fine-tune the previous
//! step's model on the newest labels ([`TrainerConfig::reset_weights`](crate::TrainerConfig)
//! `false`).

use baal_data::{ActiveLearningDataset, LabelledView};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::active_loop::ActiveLearningLoop;
use crate::error::{ActiveError, Result};

impl<I, L> ActiveLearningLoop<I, L>
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// Trains on the labels of the last `steps` labelling steps only
    /// ([`ActiveLearningDataset::labelled_last_steps`]: steps count from 1, the initial labels
    /// are step 1 and each labelled query the next one; a query a person answers in several
    /// calls spans several steps). [`training_set`](Self::training_set) gives that view, and
    /// an [`Experiment`](crate::Experiment) trains on it. Default: every label.
    ///
    /// # Errors
    /// `steps` is 0.
    pub fn with_last_active_steps(mut self, steps: usize) -> Result<Self> {
        if steps == 0 {
            return Err(ActiveError::InvalidConfig {
                what: "last active steps",
                reason: "training needs the labels of at least the last step, got 0".into(),
            });
        }
        self.last_active_steps = Some(steps);
        Ok(self)
    }

    /// The number of last labelling steps whose labels train the model; `None`: every label.
    pub fn last_active_steps(&self) -> Option<usize> {
        self.last_active_steps
    }

    /// The labelled items to train on before the next [`step`](Self::step): the labels of
    /// the last [`last_active_steps`](Self::last_active_steps) steps, or every label.
    ///
    /// # Errors
    /// None with a loop built through its builders (they refuse 0 steps); the dataset's
    /// error otherwise.
    pub fn training_set(
        &self,
        dataset: &ActiveLearningDataset<I, L>,
    ) -> Result<LabelledView<I, L>> {
        Ok(match self.last_active_steps {
            Some(steps) => dataset.labelled_last_steps(steps)?,
            None => dataset.labelled(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::data::dataset::{Dataset, InMemDataset};
    use burn::tensor::Device;

    use crate::record::StepRecord;
    use crate::trainer::test_model::{Probe, batcher, dataset};
    use crate::{ActiveLearningLoop, Experiment, HeuristicKind, Trainer, TrainerConfig};

    type Loop = ActiveLearningLoop<[f32; 2], u8>;

    /// Three steps of an experiment that labels 3 random items a step after 5 initial
    /// ones, training one epoch of single-item batches: a fit's gradient steps are the
    /// items it trained on.
    fn run(active: Loop) -> Vec<StepRecord> {
        let device = Device::default();
        let config = TrainerConfig::new()
            .with_batch_size(1)
            .with_epochs(1)
            .with_eval_iterations(1);
        let trainer = Trainer::new(Probe::new(&device), &device, batcher(), config).expect("valid");
        let mut data = dataset(40);
        data.label_randomly(5).expect("initial labels");
        let test: Arc<dyn Dataset<[f32; 2]>> = Arc::new(InMemDataset::new(vec![[0.2, 0.8]; 4]));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut experiment = Experiment::new(
            dir.path(),
            trainer,
            active,
            data,
            test,
            Arc::new(|item: &[f32; 2]| usize::from(item[0] > item[1])),
        )
        .expect("experiment")
        .with_max_steps(3);
        experiment.run().expect("runs").records
    }

    fn random_loop() -> Loop {
        Loop::from_kind(HeuristicKind::Random, 3, 1).expect("valid")
    }

    /// (labelled, trained on, gradient steps) of each step.
    fn counts(records: &[StepRecord]) -> Vec<(usize, Option<usize>, usize)> {
        records
            .iter()
            .map(|r| (r.n_labelled, r.n_trained, r.train_steps))
            .collect()
    }

    #[test]
    fn the_last_step_alone_trains_the_model_with_k_1() {
        let window = run(random_loop().with_last_active_steps(1).expect("k = 1"));
        // The initial 5 labels (step 1), then each query's 3 alone.
        assert_eq!(
            counts(&window),
            [(5, Some(5), 5), (8, Some(3), 3), (11, Some(3), 3)]
        );
        let two = run(random_loop().with_last_active_steps(2).expect("k = 2"));
        assert_eq!(
            counts(&two),
            [(5, Some(5), 5), (8, Some(8), 8), (11, Some(6), 6)]
        );
        // k at least the number of steps: every label, as without the option.
        let wide = run(random_loop().with_last_active_steps(3).expect("k = 3"));
        let all = run(random_loop());
        assert_eq!(counts(&all), [(5, None, 5), (8, None, 8), (11, None, 11)]);
        let wide: Vec<_> = counts(&wide).into_iter().map(|(n, _, s)| (n, s)).collect();
        assert_eq!(wide, [(5, 5), (8, 8), (11, 11)]);
    }

    #[test]
    fn zero_last_steps_is_an_error() {
        let err = random_loop()
            .with_last_active_steps(0)
            .err()
            .expect("k = 0");
        assert!(err.to_string().contains("last active steps"), "{err}");
        assert_eq!(random_loop().last_active_steps(), None);
        assert_eq!(
            random_loop()
                .with_last_active_steps(4)
                .expect("k = 4")
                .last_active_steps(),
            Some(4)
        );
    }
}
