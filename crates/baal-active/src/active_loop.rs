//! The active-learning loop: predict on the pool, rank, label the top of the ranking.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use baal_bayesian::McSamplerConfig;
use baal_data::{ActiveLearningDataset, DatasetIndex, PoolView};
use baal_heuristics::{Heuristic, HeuristicKind, HeuristicParams, Orientation, Predictions};
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};
use crate::oracle::KnownLabels;
use crate::traits::Predictor;
use crate::traits::{Oracle, OracleOutcome};

/// Where the heuristic comes from.
enum HeuristicSource {
    /// One heuristic for every step.
    Fixed(Box<dyn Heuristic>),
    /// Rebuilt each step with seed `seed + step`, so that a resumed run continues as the
    /// original run did.
    PerStep { kind: HeuristicKind, seed: u64 },
}

/// What one [`ActiveLearningLoop::step`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The queried items (dataset indices), most informative first; empty when the pool was.
    pub query: Vec<DatasetIndex>,
    /// Whether the oracle labelled them (false: pending human labels).
    pub labelled: bool,
    /// Whether labelling can go on: the query was labelled and the pool still holds items.
    pub can_continue: bool,
    /// Pool items that were scored (the pool, or its random subset of `max_sample`).
    pub n_scored: usize,
    /// Mean heuristic score over the scored items, oriented so that higher is more
    /// uncertain (the negated mean for margin/certainty-like heuristics); `None` for random.
    pub mean_uncertainty: Option<f64>,
    /// Seconds spent MC-predicting the pool (and the target set).
    pub predict_seconds: f64,
    /// Seconds spent ranking.
    pub rank_seconds: f64,
    /// Seconds spent labelling and checkpointing.
    pub label_seconds: f64,
    /// The class the model predicted for each queried item before it was labelled (argmax of
    /// the MC-averaged probabilities), in query order.
    #[serde(default)]
    pub query_predicted_classes: Vec<usize>,
    /// Whether the pool was sampled with consistent MC samples (one network per iteration).
    #[serde(default)]
    pub consistent_samples: bool,
}

/// The loop of baal's `ActiveLearningLoop`: each [`step`](Self::step) MC-predicts the pool (or
/// a random subset of `max_sample` items), ranks it with the heuristic, has the [`Oracle`]
/// label the top `query_size` items and saves the dataset state when a checkpoint path is set.
///
/// Training is not part of the loop: train between steps with a [`Trainer`](crate::Trainer)
/// or your own code, then pass anything that implements [`Predictor`].
pub struct ActiveLearningLoop<I, L> {
    heuristic: HeuristicSource,
    query_size: usize,
    max_sample: Option<usize>,
    iterations: usize,
    sampler_seed: u64,
    oracle: Box<dyn Oracle<I, L>>,
    target: Option<Arc<dyn Dataset<I>>>,
    checkpoint: Option<PathBuf>,
    steps: u64,
    show_progress: bool,
    always_consistent: bool,
}

impl<I, L> ActiveLearningLoop<I, L>
where
    I: Send + Sync + 'static,
    L: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// A loop labelling `query_size` items a step chosen by `heuristic`, with known labels as
    /// the oracle, 20 MC iterations and the whole pool scored.
    ///
    /// # Errors
    /// A query size of 0.
    pub fn new(heuristic: impl Heuristic + 'static, query_size: usize) -> Result<Self> {
        Self::with_source(HeuristicSource::Fixed(Box::new(heuristic)), query_size)
    }

    /// A loop whose heuristic is rebuilt each step from `kind` with seed `seed + step`: random
    /// heuristics then draw the same on a resumed run.
    ///
    /// # Errors
    /// A query size of 0, or parameters `kind` refuses (checked by building it once).
    pub fn from_kind(kind: HeuristicKind, query_size: usize, seed: u64) -> Result<Self> {
        kind.build(
            &HeuristicParams::new()
                .with_query_size(query_size)
                .with_seed(seed),
        )?;
        Self::with_source(HeuristicSource::PerStep { kind, seed }, query_size)
    }

    fn with_source(heuristic: HeuristicSource, query_size: usize) -> Result<Self> {
        if query_size == 0 {
            return Err(ActiveError::InvalidConfig {
                what: "query size",
                reason: "a step must query at least one item, got 0".into(),
            });
        }
        Ok(Self {
            heuristic,
            query_size,
            max_sample: None,
            iterations: 20,
            sampler_seed: 0,
            oracle: Box::new(KnownLabels),
            target: None,
            checkpoint: None,
            steps: 0,
            show_progress: false,
            always_consistent: false,
        })
    }

    /// Scores a random subset of at most `max_sample` pool items each step (baal's
    /// `max_sample`), drawn with the dataset's seeded generator.
    pub fn with_max_sample(mut self, max_sample: usize) -> Self {
        self.max_sample = Some(max_sample);
        self
    }

    /// MC iterations T of the pool predictions (default 20).
    pub fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Seed of the MC masks (step `s` uses `seed + s`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.sampler_seed = seed;
        self
    }

    /// Draws consistent MC samples (iteration `t` is one network for every pool and target
    /// item) for every heuristic, not only for those that need them
    /// ([`Heuristic::needs_consistent_samples`]: BatchBALD, EPIG), which always get them.
    pub fn with_consistent_samples(mut self, always: bool) -> Self {
        self.always_consistent = always;
        self
    }

    /// Who labels the queries (default: [`KnownLabels`]).
    pub fn with_oracle(mut self, oracle: impl Oracle<I, L> + 'static) -> Self {
        self.oracle = Box::new(oracle);
        self
    }

    /// Target inputs for EPIG (items from the distribution the model will be used on).
    pub fn with_target(mut self, target: Arc<dyn Dataset<I>>) -> Self {
        self.target = Some(target);
        self
    }

    /// Saves the dataset state atomically to `path` after each labelling.
    pub fn with_checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Shows the MC sampler's progress bar.
    pub fn with_show_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }

    /// Items queried per step.
    pub fn query_size(&self) -> usize {
        self.query_size
    }

    /// Steps done.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step counter (a resumed run continues its seeds from there).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// The heuristic's name.
    pub fn heuristic_name(&self) -> &'static str {
        match &self.heuristic {
            HeuristicSource::Fixed(h) => h.name(),
            HeuristicSource::PerStep { kind, .. } => kind.name(),
        }
    }

    /// One step: predict, rank, query, label, checkpoint.
    ///
    /// The pool is MC-predicted only when the heuristic reads predictions
    /// ([`Heuristic::needs_predictions`]), the target set only when it needs one
    /// ([`Heuristic::needs_target`]), and both with consistent samples when it needs them
    /// ([`Heuristic::needs_consistent_samples`]) or the loop asks for them always.
    ///
    /// # Errors
    /// A heuristic needing a target set without one, prediction or
    /// ranking errors, labels the dataset refuses, an unwritable checkpoint.
    pub fn step(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        predictor: &dyn Predictor<I>,
    ) -> Result<StepOutcome> {
        if dataset.n_unlabelled() == 0 {
            return Ok(StepOutcome {
                query: Vec::new(),
                labelled: false,
                can_continue: false,
                n_scored: 0,
                mean_uncertainty: None,
                predict_seconds: 0.0,
                rank_seconds: 0.0,
                label_seconds: 0.0,
                query_predicted_classes: Vec::new(),
                consistent_samples: false,
            });
        }
        let step_seed = self.sampler_seed.wrapping_add(self.steps);
        let built;
        let heuristic: &dyn Heuristic = match &self.heuristic {
            HeuristicSource::Fixed(heuristic) => heuristic.as_ref(),
            HeuristicSource::PerStep { kind, seed } => {
                let params = HeuristicParams::new()
                    .with_query_size(self.query_size)
                    .with_seed(seed.wrapping_add(self.steps));
                built = kind.build(&params)?;
                built.as_ref()
            }
        };
        let target_set = match (heuristic.needs_target(), &self.target) {
            (false, _) => None,
            (true, Some(target)) => Some(target.as_ref()),
            (true, None) => {
                return Err(ActiveError::InvalidConfig {
                    what: "target set",
                    reason: format!(
                        "heuristic {} needs predictions on a target set: give one with \
                         ActiveLearningLoop::with_target",
                        heuristic.name()
                    ),
                });
            }
        };
        let pool: PoolView<I> = match self.max_sample {
            Some(max) => dataset.pool_subset(max)?,
            None => dataset.pool(),
        };
        let started = Instant::now();
        let needs_predictions = heuristic.needs_predictions();
        let consistent_samples = self.always_consistent || heuristic.needs_consistent_samples();
        let sampler = McSamplerConfig::new(self.iterations)
            .with_seed(step_seed)
            .with_consistent(consistent_samples)
            .with_show_progress(self.show_progress)
            .init()?;
        let predictions = if needs_predictions {
            Predictions::from_probs(predictor.predict(&sampler, &pool)?)?
        } else {
            // Random reads only the pool size: skip the model.
            let device = Device::default();
            Predictions::from_probs(Tensor::ones([pool.len(), 1, 1], &device))?
        };
        let target = match target_set {
            Some(target) => Some(Predictions::from_probs(
                predictor.predict(&sampler, target)?,
            )?),
            None => None,
        };
        let predict_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let k = self.query_size.min(pool.len());
        let selection = heuristic.select(&predictions, target.as_ref(), k)?;
        let mean_uncertainty = if needs_predictions {
            let scores = heuristic.scores(&predictions, target.as_ref())?;
            let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len() as f64;
            Some(match heuristic.orientation() {
                Orientation::HigherIsMoreInformative => mean,
                Orientation::LowerIsMoreInformative => -mean,
            })
        } else {
            None
        };
        let query = selection
            .pool_indices
            .iter()
            .map(|&position| pool.dataset_index(position))
            .collect::<baal_data::Result<Vec<DatasetIndex>>>()?;
        let rank_seconds = started.elapsed().as_secs_f64();
        // What the model thought of its picks before they were labelled: a few forward passes
        // of the queried items only, for every heuristic alike.
        let query_items = Positions {
            pool: &pool,
            positions: &selection.pool_indices,
        };
        let query_predicted_classes = if query_items.is_empty() {
            Vec::new()
        } else {
            predicted_classes(predictor.predict(&sampler, &query_items)?)?
        };
        let started = Instant::now();
        let outcome = self.oracle.label(dataset, &query)?;
        let labelled = matches!(outcome, OracleOutcome::Labelled(_));
        if labelled && let Some(path) = &self.checkpoint {
            dataset.save_checkpoint(path)?;
        }
        let label_seconds = started.elapsed().as_secs_f64();
        self.steps += 1;
        tracing::info!(
            heuristic = heuristic.name(),
            queried = query.len(),
            labelled,
            n_labelled = dataset.n_labelled(),
            predict_seconds,
            rank_seconds,
            "active-learning step"
        );
        Ok(StepOutcome {
            can_continue: labelled && dataset.n_unlabelled() > 0,
            query,
            labelled,
            n_scored: pool.len(),
            mean_uncertainty,
            predict_seconds,
            rank_seconds,
            label_seconds,
            query_predicted_classes,
            consistent_samples,
        })
    }
}

/// Some positions of a pool view, as a dataset.
struct Positions<'a, I> {
    pool: &'a PoolView<I>,
    positions: &'a [usize],
}

impl<I: Send + Sync> Dataset<I> for Positions<'_, I> {
    fn get(&self, index: usize) -> std::result::Result<I, burn::data::dataset::DatasetError> {
        self.pool.get(self.positions[index])
    }

    fn len(&self) -> usize {
        self.positions.len()
    }
}

/// The argmax over classes of the MC-averaged probabilities `[N, C, T]`, one per item.
fn predicted_classes(probs: Tensor<3>) -> Result<Vec<usize>> {
    let [n, _, _] = probs.dims();
    let classes = probs
        .mean_dim(2)
        .argmax(1)
        .reshape([n])
        .try_into_vec_as::<i64>()
        .map_err(|e| ActiveError::InvalidConfig {
            what: "query predictions",
            reason: format!("cannot read them back from the device: {e:?}"),
        })?;
    Ok(classes.into_iter().map(|c| c as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baal_heuristics::Bald;

    type Loop = ActiveLearningLoop<u8, u8>;

    #[test]
    fn a_bad_query_size_is_an_error_when_the_loop_is_built() {
        // Before, a query size of 0 was accepted here and refused only at the first step.
        let err = Loop::new(Bald, 0).err().expect("query size 0");
        assert!(err.to_string().contains("query size"), "{err}");
        assert!(Loop::from_kind(HeuristicKind::Bald, 0, 1).is_err());
        // The kind's own parameters are checked by building it once.
        assert!(Loop::from_kind(HeuristicKind::BatchBald, 3, 1).is_ok());
        assert!(Loop::new(Bald, 1).is_ok());
    }
}
