//! The active-learning loop: predict on the pool, rank, label the top of the ranking.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use baal_bayesian::{McSampler, McSamplerConfig, Progress, seeds};
use baal_data::{ActiveLearningDataset, DatasetIndex, PoolView};
use baal_heuristics::{
    ClassProbabilities, EmbeddingInput, EmbeddingSource, Embeddings, Heuristic, HeuristicKind,
    HeuristicParams, Orientation, PoolScorer, PoolScores, Predictions, Selection,
};
use burn::data::dataset::Dataset;
use burn::tensor::Tensor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::embeddings_file::EmbeddingSink;
use crate::error::{ActiveError, Result};
use crate::oracle::KnownLabels;
use crate::run_state::{LoopState, RunState};
use crate::traits::Predictor;
use crate::traits::{Oracle, OracleOutcome};
use crate::uncertainty::UncertaintyStep;

/// Bytes of embeddings a loop keeps in memory by default (256 MiB).
const DEFAULT_EMBEDDING_MEMORY: usize = 256 << 20;

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
    /// uncertain (the negated mean for margin/certainty-like heuristics); `None` for random
    /// and for the heuristics that select by embeddings (Coreset, BADGE).
    pub mean_uncertainty: Option<f64>,
    /// Seconds spent MC-predicting the pool (and the target set), and embedding it for the
    /// heuristics that select by embeddings: the model's forward passes.
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
/// label the top `query_size` items and saves the [`RunState`] when a checkpoint path is set.
///
/// A query the oracle leaves unlabelled ([`PendingQueue`](crate::PendingQueue)) waits in
/// [`pending`](Self::pending) until [`label`](Self::label) records a person's answers; it is
/// part of the saved state, so it survives a restart ([`resume`](Self::resume)).
///
/// Training is not part of the loop: train between steps with a [`Trainer`](crate::Trainer)
/// or your own code on [`training_set`](Self::training_set) (every label, or those of the
/// last steps: [`with_last_active_steps`](Self::with_last_active_steps)), then pass anything
/// that implements [`Predictor`].
pub struct ActiveLearningLoop<I, L> {
    heuristic: Box<dyn Heuristic>,
    query_size: usize,
    max_sample: Option<usize>,
    iterations: usize,
    sampler_seed: u64,
    oracle: Box<dyn Oracle<I, L>>,
    target: Option<Arc<dyn Dataset<I>>>,
    checkpoint: Option<PathBuf>,
    steps: u64,
    pending: Vec<DatasetIndex>,
    progress: Option<Arc<dyn Progress>>,
    always_consistent: bool,
    /// Candidates kept for joint heuristics (`None`: their default).
    candidates: Option<usize>,
    /// Where each step's scores are logged (baal's `uncertainty_folder`).
    uncertainty_folder: Option<PathBuf>,
    /// Train on the labels of this many last labelling steps only (see `training_set.rs`).
    pub(crate) last_active_steps: Option<usize>,
    /// Bytes of embeddings (Coreset, BADGE) held in memory before they go to a file.
    embedding_memory: usize,
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
        Self::with_heuristic(Box::new(heuristic), query_size)
    }

    /// A loop whose heuristic is built from `kind` with `seed` for its random draws (random
    /// order, sampling, BatchBALD's configurations); the draw counter is part of the loop's
    /// state, so a resumed run draws what the original would have.
    ///
    /// # Errors
    /// A query size of 0, or parameters `kind` refuses.
    pub fn from_kind(kind: HeuristicKind, query_size: usize, seed: u64) -> Result<Self> {
        let params = HeuristicParams::new()
            .with_query_size(query_size)
            .with_seed(seed);
        Self::with_heuristic(kind.build(&params)?, query_size)
    }

    fn with_heuristic(heuristic: Box<dyn Heuristic>, query_size: usize) -> Result<Self> {
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
            pending: Vec::new(),
            progress: None,
            always_consistent: false,
            candidates: None,
            uncertainty_folder: None,
            last_active_steps: None,
            embedding_memory: DEFAULT_EMBEDDING_MEMORY,
        })
    }

    /// Scores a random subset of at most `max_sample` pool items each step (baal's
    /// `max_sample`), drawn with the dataset's seeded generator.
    pub fn with_max_sample(mut self, max_sample: usize) -> Self {
        self.max_sample = Some(max_sample);
        self
    }

    /// Keeps the pool's embeddings (for Coreset and BADGE: `N · D` floats) in memory up to
    /// `bytes`, and beyond that in a temporary file read back a chunk at a time, so that a pool
    /// whose embeddings exceed memory is selected from as its predictions are scored (the
    /// default: 256 MiB, a million items of 64 features).
    pub fn with_embedding_memory(mut self, bytes: usize) -> Self {
        self.embedding_memory = bytes;
        self
    }

    /// MC iterations T of the pool predictions (default 20).
    pub fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Seed of the MC masks (step `s` uses [`seeds::nth`]`(seed, s)`).
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

    /// How many candidates a joint heuristic (BatchBALD) keeps while the pool streams by:
    /// the best `candidates` items by its per-item score (BALD), whose predictions it selects
    /// from. Default:
    /// [`DEFAULT_CANDIDATES_PER_PICK`](baal_heuristics::DEFAULT_CANDIDATES_PER_PICK) per item of the query. Memory beyond
    /// the pool's data is one score per pool item plus `candidates × C × T` predictions; with
    /// `candidates` at least the pool size the selection is BatchBALD's over the whole pool.
    pub fn with_candidates(mut self, candidates: usize) -> Self {
        self.candidates = Some(candidates);
        self
    }

    /// Logs what the heuristic saw at every step into `folder` (baal's `uncertainty_folder`):
    /// `step-NNNN/` with the scored items' dataset indices, their scores and the query, as
    /// `.npy` arrays (see [`UncertaintyStep`](crate::UncertaintyStep), which reads them back).
    pub fn with_uncertainty_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.uncertainty_folder = Some(folder.into());
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

    /// Saves the [`RunState`] (dataset state and the loop's state) atomically to `path` after
    /// each step and each [`label`](Self::label); [`resume`](Self::resume) reads it back.
    pub fn with_checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Reports the progress of the pool's MC sampling to `receiver` (e.g. the facade's
    /// terminal bar, `baal::progress::TerminalProgress`).
    pub fn with_progress(mut self, receiver: Arc<dyn Progress>) -> Self {
        self.progress = Some(receiver);
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

    /// The heuristic's name.
    pub fn heuristic_name(&self) -> &'static str {
        self.heuristic.name()
    }

    /// Whether a checkpoint path is set.
    pub(crate) fn has_checkpoint(&self) -> bool {
        self.checkpoint.is_some()
    }

    /// The query that waits for a person's labels: dataset indices the oracle left unlabelled
    /// at the last step and no [`label`](Self::label) has answered yet.
    pub fn pending(&self) -> &[DatasetIndex] {
        &self.pending
    }

    /// The loop's part of the run state.
    pub fn state(&self) -> LoopState {
        LoopState {
            heuristic: self.heuristic.name().to_string(),
            heuristic_identity: Some(self.heuristic.identity()),
            query_size: self.query_size,
            steps: self.steps,
            heuristic_draws: self.heuristic.draws(),
            pending: self.pending.clone(),
        }
    }

    /// Continues from a saved loop state, or says why it does not fit this loop (another
    /// heuristic, the same with other parameters, or another query size). A state saved
    /// before heuristics had an identity is compared by the heuristic's name, as it was then.
    pub(crate) fn restore(&mut self, state: LoopState) -> std::result::Result<(), String> {
        let identity = self.heuristic.identity();
        let (same_heuristic, saved, current) = match &state.heuristic_identity {
            Some(saved) => (*saved == identity, saved.to_string(), identity.to_string()),
            None => (
                state.heuristic == self.heuristic.name(),
                state.heuristic.clone(),
                self.heuristic.name().to_string(),
            ),
        };
        if !same_heuristic || state.query_size != self.query_size {
            return Err(format!(
                "it was run with heuristic {saved} and query size {}, not {current} and {}; use \
                 another folder",
                state.query_size, self.query_size
            ));
        }
        self.steps = state.steps;
        self.heuristic.set_draws(state.heuristic_draws);
        self.pending = state.pending;
        Ok(())
    }

    /// Resumes from the run state at the checkpoint path, if the file exists: the dataset
    /// and the loop continue where the saved run was. Returns whether it resumed.
    ///
    /// # Errors
    /// No checkpoint path is set, the file is unreadable, or it holds a run of another
    /// heuristic, query size or dataset.
    pub fn resume(&mut self, dataset: &mut ActiveLearningDataset<I, L>) -> Result<bool> {
        let Some(path) = self.checkpoint.clone() else {
            return Err(ActiveError::InvalidConfig {
                what: "checkpoint",
                reason: "resume reads the checkpoint: set one with with_checkpoint".into(),
            });
        };
        if !path.exists() {
            return Ok(false);
        }
        let state = RunState::<L>::load(&path)?;
        let refuse = |reason: String| ActiveError::Resume {
            path: path.clone(),
            reason,
        };
        // Check the loop's part first, so that a refused resume leaves the dataset alone.
        let before = self.state();
        self.restore(state.active).map_err(refuse)?;
        if let Err(e) = dataset.restore(state.dataset) {
            self.restore(before).map_err(refuse)?;
            return Err(e.into());
        }
        Ok(true)
    }

    /// Records a person's labels for pending items and returns once they are saved (when a
    /// checkpoint is set). Items answered leave [`pending`](Self::pending).
    ///
    /// # Errors
    /// A label for an item that is not pending, two labels for one item (nothing is labelled
    /// then), a label the dataset refuses, or the checkpoint cannot be written.
    pub fn label(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        labels: impl IntoIterator<Item = (DatasetIndex, L)>,
    ) -> Result<()> {
        let labels: Vec<(DatasetIndex, L)> = labels.into_iter().collect();
        let seen = crate::oracle::check_answers(&self.pending, &labels).map_err(|reason| {
            ActiveError::InvalidConfig {
                what: "labels",
                reason,
            }
        })?;
        dataset.label_many_with(labels)?;
        self.pending.retain(|index| !seen.contains(index));
        self.save(dataset)
    }

    /// Writes the run state to the checkpoint, if one is set.
    fn save(&self, dataset: &ActiveLearningDataset<I, L>) -> Result<()> {
        match &self.checkpoint {
            Some(path) => RunState::new(self.state(), dataset.state(), None).save(path),
            None => Ok(()),
        }
    }

    /// One step: predict, rank, query, label, checkpoint.
    ///
    /// The pool is MC-predicted only when the heuristic reads predictions
    /// ([`Heuristic::needs_predictions`]), the target set only when it needs one
    /// ([`Heuristic::needs_target`]), and both with consistent samples when it needs them
    /// ([`Heuristic::needs_consistent_samples`]) or the loop asks for them always. A query
    /// still pending from the last step is dropped: its items are back in the pool.
    ///
    /// # Errors
    /// A heuristic needing a target set without one, prediction or
    /// ranking errors, labels the dataset refuses, an unwritable checkpoint.
    pub fn step(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        predictor: &dyn Predictor<I>,
    ) -> Result<StepOutcome> {
        self.pending.clear();
        if dataset.n_unlabelled() == 0 {
            return Ok(StepOutcome::nothing_to_query());
        }
        let target_set = self.target_set()?;
        let pool: PoolView<I> = match self.max_sample {
            Some(max) => dataset.pool_subset(max)?,
            None => dataset.pool(),
        };
        let mut scored = self.predict_pool(predictor, &pool, target_set)?;
        let ranked = if self.heuristic.needs_embeddings() {
            // The forward passes count as prediction, the selection as ranking.
            let started = Instant::now();
            let embedded = self.embed_pool(predictor, &scored.sampler, &pool, dataset)?;
            scored.seconds += started.elapsed().as_secs_f64();
            self.select_by_embeddings(&embedded, &pool)?
        } else {
            self.rank(&pool, scored.scores.as_ref())?
        };
        self.log_uncertainty(&pool, &ranked)?;
        let query_predicted_classes = if predictor.classifies() {
            query_predictions(
                predictor,
                &scored.sampler,
                &pool,
                &ranked.selection.positions,
            )?
        } else {
            Vec::new() // segmentation and regression have no class per item
        };
        let RankedQuery {
            query,
            mean_uncertainty,
            seconds: rank_seconds,
            ..
        } = ranked;
        let started = Instant::now();
        let labelled = self.label_query(dataset, &query)?;
        let label_seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            heuristic = self.heuristic.name(),
            queried = query.len(),
            labelled,
            n_labelled = dataset.n_labelled(),
            predict_seconds = scored.seconds,
            rank_seconds,
            "active-learning step"
        );
        Ok(StepOutcome {
            can_continue: labelled && dataset.n_unlabelled() > 0,
            query,
            labelled,
            n_scored: pool.len(),
            mean_uncertainty,
            predict_seconds: scored.seconds,
            rank_seconds,
            label_seconds,
            query_predicted_classes,
            consistent_samples: scored.consistent_samples,
        })
    }

    /// The step's predict phase: MC-predicts the target set (when the heuristic needs one)
    /// and streams the pool through the heuristic's scorer (when it reads predictions).
    fn predict_pool(
        &self,
        predictor: &dyn Predictor<I>,
        pool: &PoolView<I>,
        target_set: Option<&dyn Dataset<I>>,
    ) -> Result<ScoredPool> {
        let started = Instant::now();
        let consistent_samples =
            self.always_consistent || self.heuristic.needs_consistent_samples();
        let mut sampler = McSamplerConfig::new(self.iterations)
            .with_seed(seeds::nth(self.sampler_seed, self.steps))
            .with_consistent(consistent_samples)
            .init()?;
        if let Some(receiver) = &self.progress {
            sampler = sampler.with_progress(receiver.clone());
        }
        // Targets first (a bounded set, kept whole); then the pool streams through the
        // scorer, which keeps one score per item (and BatchBALD's candidates), with each
        // item's masks keyed by its dataset index.
        let target = match target_set {
            Some(_) if !predictor.classifies() => {
                return Err(ActiveError::InvalidConfig {
                    what: "target set",
                    reason: format!(
                        "heuristic {} reads class probabilities of a target set, which this \
                         predictor (segmentation or regression) does not give",
                        self.heuristic.name()
                    ),
                });
            }
            Some(target) => Some(Predictions::from_probs(
                predictor.predict(&sampler, target)?,
            )?),
            None => None,
        };
        let pool_sampler = sampler.clone().with_item_keys(Some(
            pool.dataset_indices().iter().map(|d| d.get()).collect(),
        ));
        // The heuristics that select by embeddings read predictions their own way.
        let scores = if self.heuristic.needs_predictions() && !self.heuristic.needs_embeddings() {
            Some(score_pool(
                predictor,
                &pool_sampler,
                pool,
                self.heuristic.as_ref(),
                target.as_ref(),
                self.candidates,
            )?)
        } else {
            None // random and precomputed scores read only the pool size: skip the model
        };
        Ok(ScoredPool {
            sampler,
            consistent_samples,
            scores,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The step's select phase: the top `query_size` of the pool by `scores` (or the
    /// heuristic's own draw when it reads no predictions), as dataset indices.
    fn rank(&self, pool: &PoolView<I>, scores: Option<&PoolScores>) -> Result<RankedQuery> {
        let started = Instant::now();
        let k = self.query_size.min(pool.len());
        let selection = match scores {
            Some(scores) => scores.select(self.heuristic.as_ref(), k)?,
            None => self.heuristic.select_without_predictions(pool.len(), k)?,
        };
        let mean_uncertainty = scores
            .is_some()
            .then(|| self.oriented_mean(&selection.pool_scores));
        RankedQuery::new(pool, selection, mean_uncertainty, started)
    }

    /// What a heuristic that selects by embeddings (Coreset, BADGE) reads: the predictor's
    /// embeddings of the pool, of the labelled items (read as the pool is) when the heuristic
    /// reads them, and the pool's MC-averaged probabilities when it reads predictions. The
    /// embeddings are held in memory up to the loop's embedding memory, beyond it in a
    /// temporary file; the predictions are read a chunk at a time.
    fn embed_pool(
        &self,
        predictor: &dyn Predictor<I>,
        sampler: &McSampler,
        pool: &PoolView<I>,
        dataset: &ActiveLearningDataset<I, L>,
    ) -> Result<EmbeddedPool> {
        let limit = self.embedding_memory;
        let pool_embeddings = embed_all(predictor, pool, limit)?;
        let labelled = if self.heuristic.needs_labelled_embeddings() && dataset.n_labelled() > 0 {
            Some(embed_all(predictor, &dataset.labelled_as_pool(), limit)?)
        } else {
            None
        };
        let probabilities = if self.heuristic.needs_predictions() {
            let pool_sampler = sampler.clone().with_item_keys(Some(
                pool.dataset_indices().iter().map(|d| d.get()).collect(),
            ));
            let (mut values, mut classes) = (Vec::new(), 0);
            predictor.predict_pool_chunks(&pool_sampler, pool, &mut |_, chunk| {
                let mean = ClassProbabilities::from_predictions(&chunk)?;
                classes = mean.classes();
                values.extend(mean.into_vec());
                Ok(())
            })?;
            Some(ClassProbabilities::new(values, [pool.len(), classes])?)
        } else {
            None
        };
        Ok(EmbeddedPool {
            pool: pool_embeddings,
            labelled,
            probabilities,
        })
    }

    /// The select phase of a heuristic that selects by embeddings, on what
    /// [`embed_pool`](Self::embed_pool) gave.
    fn select_by_embeddings(
        &self,
        embedded: &EmbeddedPool,
        pool: &PoolView<I>,
    ) -> Result<RankedQuery> {
        let started = Instant::now();
        let k = self.query_size.min(pool.len());
        let mut input = EmbeddingInput::new(embedded.pool.as_ref());
        if let Some(labelled) = &embedded.labelled {
            input = input.with_labelled(labelled.as_ref());
        }
        if let Some(probabilities) = &embedded.probabilities {
            input = input.with_probabilities(probabilities);
        }
        let selection = self.heuristic.select_with_embeddings(&input, k)?;
        RankedQuery::new(pool, selection, None, started)
    }

    /// Writes what the heuristic saw at this step into the uncertainty folder, if one is set.
    fn log_uncertainty(&self, pool: &PoolView<I>, ranked: &RankedQuery) -> Result<()> {
        if let Some(folder) = &self.uncertainty_folder {
            UncertaintyStep::new(
                self.steps,
                self.heuristic.name(),
                self.heuristic.orientation(),
                pool.dataset_indices(),
                ranked.selection.pool_scores.clone(),
                ranked.query.clone(),
            )?
            .write(folder)?;
        }
        Ok(())
    }

    /// The target set, when the heuristic needs one.
    fn target_set(&self) -> Result<Option<&dyn Dataset<I>>> {
        match (self.heuristic.needs_target(), &self.target) {
            (false, _) => Ok(None),
            (true, Some(target)) => Ok(Some(target.as_ref())),
            (true, None) => Err(ActiveError::InvalidConfig {
                what: "target set",
                reason: format!(
                    "heuristic {} needs predictions on a target set: give one with \
                     ActiveLearningLoop::with_target",
                    self.heuristic.name()
                ),
            }),
        }
    }

    /// The mean score, oriented so that higher is more uncertain.
    fn oriented_mean(&self, scores: &[f32]) -> f64 {
        let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len().max(1) as f64;
        match self.heuristic.orientation() {
            Orientation::HigherIsMoreInformative => mean,
            Orientation::LowerIsMoreInformative => -mean,
        }
    }

    /// Has the oracle label `query`, keeps it pending if the oracle did not, counts the step
    /// and saves the run state. Returns whether the query was labelled.
    fn label_query(
        &mut self,
        dataset: &mut ActiveLearningDataset<I, L>,
        query: &[DatasetIndex],
    ) -> Result<bool> {
        let outcome = self.oracle.label(dataset, query)?;
        let labelled = matches!(outcome, OracleOutcome::Labelled(_));
        if !labelled {
            self.pending = query.to_vec();
        }
        self.steps += 1;
        self.save(dataset)?;
        Ok(labelled)
    }
}

/// What a step's predict phase gives its select phase.
struct ScoredPool {
    /// The step's sampler (the pool's is this one keyed by dataset index).
    sampler: McSampler,
    /// Whether the samples are consistent (one network per iteration).
    consistent_samples: bool,
    /// The pool's scores; `None` when the heuristic reads no predictions.
    scores: Option<PoolScores>,
    /// Seconds spent MC-predicting the pool (and the target set).
    seconds: f64,
}

/// A pool's embeddings, the labelled items' and the pool's class probabilities, as the
/// heuristic reads them.
struct EmbeddedPool {
    pool: Box<dyn EmbeddingSource>,
    labelled: Option<Box<dyn EmbeddingSource>>,
    probabilities: Option<ClassProbabilities>,
}

/// What a step's select phase chose.
struct RankedQuery {
    /// The heuristic's pick: positions in the scored pool view and their scores.
    selection: Selection,
    /// The picked items as dataset indices, most informative first.
    query: Vec<DatasetIndex>,
    /// The oriented mean score of the scored items; `None` without predictions.
    mean_uncertainty: Option<f64>,
    /// Seconds spent ranking.
    seconds: f64,
}

impl RankedQuery {
    /// The query of `selection` (positions in `pool`), ranked since `started`.
    fn new<I: Send + Sync>(
        pool: &PoolView<I>,
        selection: Selection,
        mean_uncertainty: Option<f64>,
        started: Instant,
    ) -> Result<Self> {
        let query = selection
            .positions
            .iter()
            .map(|&position| pool.dataset_index(position))
            .collect::<baal_data::Result<Vec<DatasetIndex>>>()?;
        Ok(Self {
            selection,
            query,
            mean_uncertainty,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

impl StepOutcome {
    /// The outcome of a step on an empty pool.
    fn nothing_to_query() -> Self {
        Self {
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
        }
    }
}

/// Scores `items` with `heuristic` while `predictor` predicts them under `sampler`, batch by
/// batch: what the loop, `baal score` and a shard keep of a pool (see
/// [`PoolScorer`](baal_heuristics::PoolScorer)). `candidates` bounds a joint heuristic's
/// candidate set (`None`: its default).
///
/// # Errors
/// A heuristic that does not read predictions or lacks its target, a prediction error, or a
/// chunk that is not valid probabilities (the error names the item's position in `items`).
pub fn score_pool<I>(
    predictor: &dyn Predictor<I>,
    sampler: &baal_bayesian::McSampler,
    items: &dyn Dataset<I>,
    heuristic: &dyn Heuristic,
    target: Option<&Predictions>,
    candidates: Option<usize>,
) -> Result<baal_heuristics::PoolScores> {
    let mut scorer = PoolScorer::new(heuristic, target, candidates)?;
    predictor.predict_pool_chunks(sampler, items, &mut |_, chunk| Ok(scorer.push(&chunk)?))?;
    Ok(scorer.finish())
}

/// Every embedding `predictor` gives of `items`, `[N, D]`, in order: in memory up to `limit`
/// bytes, beyond that in a temporary file read back a chunk at a time.
fn embed_all<I>(
    predictor: &dyn Predictor<I>,
    items: &dyn Dataset<I>,
    limit: usize,
) -> Result<Box<dyn EmbeddingSource>> {
    let mut sink = EmbeddingSink::new(items.len(), limit);
    predictor.embed_chunks(items, &mut |_, chunk| {
        sink.push(Embeddings::from_tensor(chunk)?)
    })?;
    sink.finish()
}

/// What the model thought of its picks before they were labelled: a few forward passes of the
/// queried items only, for every heuristic alike.
fn query_predictions<I: Send + Sync>(
    predictor: &dyn Predictor<I>,
    sampler: &baal_bayesian::McSampler,
    pool: &PoolView<I>,
    positions: &[usize],
) -> Result<Vec<usize>> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let items = Positions { pool, positions };
    predicted_classes(predictor.predict(sampler, &items)?)
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
///
/// # Errors
/// The classes cannot be read back from the device.
pub fn predicted_classes(probs: Tensor<3>) -> Result<Vec<usize>> {
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
    use crate::oracle::PendingQueue;
    use baal_heuristics::Bald;
    use burn::data::dataset::InMemDataset;
    use burn::tensor::{Device, TensorData};
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Loop = ActiveLearningLoop<u8, u8>;

    /// Each item's class probabilities depend on the item alone: `[x/255, 1 - x/255]`.
    struct ByValue;

    impl Predictor<u8> for ByValue {
        fn predict(
            &self,
            sampler: &baal_bayesian::McSampler,
            items: &dyn Dataset<u8>,
        ) -> Result<Tensor<3>> {
            let t = sampler.iterations();
            let mut values = Vec::new();
            for i in 0..items.len() {
                let x = f32::from(items.get(i).expect("item")) / 255.0;
                let shift = 0.1 * (i % 3) as f32 * x * (1.0 - x);
                for class in [x, 1.0 - x] {
                    for step in 0..t {
                        let sign = if (class == x) == (step % 2 == 0) {
                            1.0
                        } else {
                            -1.0
                        };
                        values.push(class + sign * shift);
                    }
                }
            }
            Ok(Tensor::from_data(
                TensorData::new(values, [items.len(), 2, t]),
                &Device::default(),
            ))
        }
    }

    /// [`ByValue`]'s predictions, and each item's embedding its value, `[x]`.
    struct Line;

    impl Predictor<u8> for Line {
        fn predict(
            &self,
            sampler: &baal_bayesian::McSampler,
            items: &dyn Dataset<u8>,
        ) -> Result<Tensor<3>> {
            ByValue.predict(sampler, items)
        }

        fn embed_chunks(
            &self,
            items: &dyn Dataset<u8>,
            on_chunk: &mut dyn FnMut(std::ops::Range<usize>, Tensor<2>) -> Result<()>,
        ) -> Result<()> {
            let values: Vec<f32> = (0..items.len())
                .map(|i| f32::from(items.get(i).expect("item")))
                .collect();
            let embeddings = Tensor::from_data(
                TensorData::new(values, [items.len(), 1]),
                &Device::default(),
            );
            on_chunk(0..items.len(), embeddings)
        }
    }

    #[test]
    fn coreset_in_the_loop_starts_from_the_labelled_items_embeddings() {
        // Items 0..=8, item 0 labelled: k-center greedy on the line picks 8 (8 from 0),
        // then 4 (4 from both 0 and 8; every other item is nearer one of them).
        let mut data = ActiveLearningDataset::new(InMemDataset::new((0..9u8).collect()))
            .with_known_labels(|&x: &u8| u8::from(x > 4));
        data.label_dataset_indices(&[DatasetIndex::new(0)])
            .expect("label");
        let mut active = Loop::from_kind(HeuristicKind::Coreset, 2, 0).expect("valid");
        let outcome = active.step(&mut data, &Line).expect("step");
        assert_eq!(outcome.query, [DatasetIndex::new(8), DatasetIndex::new(4)]);
        assert_eq!(outcome.mean_uncertainty, None);
        assert_eq!(data.n_labelled(), 3);
        // The next step's centres are 0, 4 and 8: 2 (or 6) is 2 from the nearest.
        let outcome = active.step(&mut data, &Line).expect("step");
        assert_eq!(outcome.query.len(), 2);
        for index in &outcome.query {
            assert!([2, 6].contains(&index.get()), "{index}");
        }
        // With no memory for embeddings they go through a temporary file: the same picks.
        let mut data = ActiveLearningDataset::new(InMemDataset::new((0..9u8).collect()))
            .with_known_labels(|&x: &u8| u8::from(x > 4));
        data.label_dataset_indices(&[DatasetIndex::new(0)])
            .expect("label");
        let mut spilling = Loop::from_kind(HeuristicKind::Coreset, 2, 0)
            .expect("valid")
            .with_embedding_memory(0);
        let outcome = spilling.step(&mut data, &Line).expect("step");
        assert_eq!(outcome.query, [DatasetIndex::new(8), DatasetIndex::new(4)]);
    }

    /// [`Line`], taking 30 ms to embed.
    struct SlowLine;

    impl Predictor<u8> for SlowLine {
        fn predict(
            &self,
            sampler: &baal_bayesian::McSampler,
            items: &dyn Dataset<u8>,
        ) -> Result<Tensor<3>> {
            Line.predict(sampler, items)
        }

        fn embed_chunks(
            &self,
            items: &dyn Dataset<u8>,
            on_chunk: &mut dyn FnMut(std::ops::Range<usize>, Tensor<2>) -> Result<()>,
        ) -> Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(30));
            Line.embed_chunks(items, on_chunk)
        }
    }

    #[test]
    fn embedding_the_pool_counts_as_prediction_not_ranking() {
        let mut data = dataset();
        data.label_randomly(5).expect("initial labels");
        let mut active = Loop::from_kind(HeuristicKind::Coreset, 3, 0).expect("valid");
        let outcome = active.step(&mut data, &SlowLine).expect("step");
        // Two embeddings (the pool, the labelled items) of 30 ms each.
        assert!(outcome.predict_seconds >= 0.06, "{outcome:?}");
        assert!(outcome.rank_seconds < 0.03, "{outcome:?}");
    }

    #[test]
    fn badge_in_the_loop_picks_distinct_pool_items() {
        let mut data = dataset();
        data.label_randomly(5).expect("initial labels");
        let mut active = Loop::from_kind(HeuristicKind::Badge, 6, 1).expect("valid");
        let labelled = data.labelled_dataset_indices();
        let outcome = active.step(&mut data, &Line).expect("step");
        assert_eq!(outcome.query.len(), 6);
        let mut distinct = outcome.query.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 6);
        assert!(outcome.query.iter().all(|i| !labelled.contains(i)));
    }

    #[test]
    fn a_predictor_without_embeddings_is_an_error_for_coreset_and_labels_nothing() {
        let mut data = dataset();
        data.label_randomly(5).expect("initial labels");
        for kind in [HeuristicKind::Coreset, HeuristicKind::Badge] {
            let mut active = Loop::from_kind(kind, 3, 0).expect("valid");
            let err = active.step(&mut data, &ByValue).expect_err("no embeddings");
            assert!(err.to_string().contains("embeddings"), "{kind}: {err}");
            assert_eq!(data.n_labelled(), 5);
        }
    }

    fn dataset() -> ActiveLearningDataset<u8, u8> {
        ActiveLearningDataset::new(InMemDataset::new((0..60u8).map(|x| x * 4).collect()))
            .with_known_labels(|&x: &u8| u8::from(x > 120))
            .with_seed(3)
    }

    /// BALD that counts how often it scores the pool.
    struct Counting(std::sync::Arc<AtomicUsize>);

    impl Heuristic for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn orientation(&self) -> Orientation {
            Orientation::HigherIsMoreInformative
        }
        fn score_tensor(
            &self,
            predictions: &Predictions,
            target: Option<&Predictions>,
        ) -> baal_heuristics::Result<Tensor<1>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Bald.score_tensor(predictions, target)
        }
    }

    #[test]
    fn a_step_scores_the_pool_once() {
        // Before, the loop scored the pool a second time for the mean uncertainty.
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let mut data = dataset();
        data.label_randomly(4).expect("labels");
        let mut active = Loop::new(Counting(count.clone()), 3)
            .expect("valid")
            .with_iterations(4);
        let outcome = active.step(&mut data, &ByValue).expect("step");
        assert_eq!(count.load(Ordering::Relaxed), 1);
        // The mean uncertainty is still the mean of every scored item's BALD.
        let mean = outcome.mean_uncertainty.expect("scored");
        assert!(mean > 0.0 && mean.is_finite(), "{mean}");
    }

    #[test]
    fn random_acquisition_reads_no_predictions() {
        struct Refuses;
        impl Predictor<u8> for Refuses {
            fn predict(
                &self,
                sampler: &baal_bayesian::McSampler,
                items: &dyn Dataset<u8>,
            ) -> Result<Tensor<3>> {
                // Only the picks (3 items) may be predicted, never the pool.
                assert!(items.len() <= 3, "the pool was predicted: {}", items.len());
                ByValue.predict(sampler, items)
            }
        }
        let mut data = dataset();
        let mut active = Loop::from_kind(HeuristicKind::Random, 3, 5).expect("valid");
        let outcome = active.step(&mut data, &Refuses).expect("step");
        assert_eq!(outcome.query.len(), 3);
        assert_eq!(outcome.mean_uncertainty, None);
        let expected = baal_heuristics::Random::new(5)
            .select_without_predictions(60, 3)
            .expect("select");
        let positions = expected.positions;
        let got: Vec<usize> = outcome.query.iter().map(|i| i.get()).collect();
        assert_eq!(
            got, positions,
            "nothing labelled before: pool = dataset order"
        );
    }

    #[test]
    fn a_resumed_loop_draws_and_waits_as_the_original() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.json");
        let build = || {
            Loop::from_kind(HeuristicKind::Random, 3, 9)
                .expect("valid")
                .with_checkpoint(&path)
        };
        // The original: three steps in one process.
        let mut original_data = dataset();
        let mut original = Loop::from_kind(HeuristicKind::Random, 3, 9).expect("valid");
        let mut queries = Vec::new();
        for _ in 0..3 {
            queries.push(
                original
                    .step(&mut original_data, &ByValue)
                    .expect("step")
                    .query,
            );
        }
        // The same run, stopped after two steps and resumed in a new loop.
        let mut data = dataset();
        let mut first = build();
        assert!(!first.resume(&mut data).expect("no state yet"));
        for query in &queries[..2] {
            assert_eq!(&first.step(&mut data, &ByValue).expect("step").query, query);
        }
        let mut data = dataset();
        let mut resumed = build();
        assert!(resumed.resume(&mut data).expect("resumes"));
        assert_eq!(data.n_labelled(), 6);
        assert_eq!(resumed.steps(), 2);
        assert_eq!(
            resumed.step(&mut data, &ByValue).expect("step").query,
            queries[2]
        );
    }

    #[test]
    fn a_pending_query_survives_a_restart_and_takes_only_its_answers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.json");
        let build = || {
            Loop::new(Bald, 2)
                .expect("valid")
                .with_iterations(4)
                .with_oracle(PendingQueue)
                .with_checkpoint(&path)
        };
        let mut data = dataset();
        let mut active = build();
        let outcome = active.step(&mut data, &ByValue).expect("step");
        assert!(!outcome.labelled);
        assert_eq!(active.pending(), outcome.query.as_slice());
        // A restart: the pending query comes back from the checkpoint.
        let mut data = dataset();
        let mut resumed = build();
        assert!(resumed.resume(&mut data).expect("resumes"));
        assert_eq!(resumed.pending(), outcome.query.as_slice());
        // A label for an item nobody asked about is refused and labels nothing.
        let foreign = (0..60)
            .map(DatasetIndex::new)
            .find(|i| !outcome.query.contains(i))
            .expect("an item not queried");
        let err = resumed
            .label(&mut data, [(outcome.query[0], 1), (foreign, 0)])
            .expect_err("foreign item");
        assert!(err.to_string().contains(&foreign.to_string()), "{err}");
        assert_eq!(data.n_labelled(), 0);
        resumed
            .label(&mut data, [(outcome.query[0], 1)])
            .expect("labels");
        assert_eq!(resumed.pending(), &outcome.query[1..]);
        // The answer is durable: another restart sees it and the rest still pending.
        let mut data = dataset();
        let mut again = build();
        assert!(again.resume(&mut data).expect("resumes"));
        assert_eq!(data.n_labelled(), 1);
        assert_eq!(again.pending(), &outcome.query[1..]);
    }

    #[test]
    fn resuming_with_another_heuristic_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.json");
        let mut data = dataset();
        let mut active = Loop::new(Bald, 2)
            .expect("valid")
            .with_iterations(4)
            .with_checkpoint(&path);
        active.step(&mut data, &ByValue).expect("step");
        let mut fresh = dataset();
        let mut other = Loop::from_kind(HeuristicKind::Entropy, 2, 0)
            .expect("valid")
            .with_checkpoint(&path);
        let err = other.resume(&mut fresh).expect_err("another heuristic");
        assert!(err.to_string().contains("bald"), "{err}");
        assert_eq!(fresh.n_labelled(), 0);
        assert_eq!(other.steps(), 0);
    }

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
