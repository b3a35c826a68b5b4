//! Retraining and scoring: [`Scorer`] is what the background worker calls; [`ZooScorer`]
//! trains a model of the zoo on the labels (from fresh weights, or from a model folder's), measures it on
//! the test split, ranks the pool with any heuristic and hands back the model to keep.

use std::collections::HashMap;
use std::time::Instant;

use baal_active::{Classifier, EvalMetrics, FitReport, Predictor, Trainer, TrainerConfig};
use baal_bayesian::{McSamplerConfig, SeedPlan, on_flex_workers, seeds};
use baal_data::{DatasetIndex, LabelledItem};
use baal_heuristics::{Heuristic, Predictions};
use baal_zoo::folder::{MODEL_CARD_FORMAT, ModelCard, TrainMetrics};
use baal_zoo::images::{NormalizedImage, NormalizedImages, normalized_batcher};
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor};

use crate::error::ServeError;
use crate::models::{CardContext, InitModel, TrainedModel};
use crate::store::Round;

/// Trains a model on the labels and ranks the pool: one model round. Runs on the service's
/// background thread, never on a request's.
pub trait Scorer: Send + 'static {
    /// Trains on `labels` (items and classes) and ranks `pool` (the items without a label).
    ///
    /// # Errors
    /// Training or scoring failed; the service keeps its current ranking.
    fn round(
        &mut self,
        labels: &[(DatasetIndex, usize)],
        pool: &[DatasetIndex],
    ) -> Result<Round, ServeError>;

    /// Ranks `pool` with a model given at start, without training (round 0, run once when
    /// the service starts); `None` (the default): no such model, the initial order stays
    /// until the first retrain.
    fn initial_round(&mut self, pool: &[DatasetIndex]) -> Option<Result<Round, ServeError>> {
        let _ = pool;
        None
    }

    /// The model the last successful [`round`](Self::round) trained, for the service to
    /// keep (taken once); `None` (the default) for a scorer whose models are not kept.
    fn take_model(&mut self) -> Option<TrainedModel> {
        None
    }
}

/// A zoo model, trained each round from the same starting weights (fresh ones, or a model
/// folder's: as baal's loop resets to the initial weights), MC-sampled on the pool and
/// ranked with a heuristic.
pub struct ZooScorer {
    /// Every item, normalised once.
    pub images: NormalizedImages,
    /// The test split, normalised (accuracy is reported when present).
    pub test: Option<NormalizedImages>,
    /// Number of classes.
    pub classes: usize,
    /// The model.
    pub model: ModelKind,
    /// The heuristic.
    pub heuristic: Box<dyn Heuristic>,
    /// MC iterations of the pool predictions.
    pub iterations: usize,
    /// The training recipe.
    pub trainer: TrainerConfig,
    /// Seed of the weights and masks; round `r` uses [`seeds::nth`]`(seed, r)`.
    pub seed: u64,
    /// Where it runs.
    pub device: Device,
    /// Rounds run so far.
    pub rounds: u64,
    /// What the cards of its models say about the data; `None`: its models are not kept
    /// ([`take_model`](Scorer::take_model) gives none).
    pub card: Option<CardContext>,
    /// The model folder every round starts training from (`--init-model`), which also ranks
    /// the pool before the first retrain; `None`: fresh weights.
    pub init: Option<InitModel>,
    /// The model of the last round until the service takes it (`None` to start with).
    pub last_model: Option<TrainedModel>,
}

impl Scorer for ZooScorer {
    fn round(
        &mut self,
        labels: &[(DatasetIndex, usize)],
        pool: &[DatasetIndex],
    ) -> Result<Round, ServeError> {
        let seed = seeds::nth(self.seed, self.rounds);
        self.rounds += 1;
        self.run(labels, pool, seed, true)
    }

    fn initial_round(&mut self, pool: &[DatasetIndex]) -> Option<Result<Round, ServeError>> {
        if self.init.is_none() || pool.is_empty() {
            return None;
        }
        let seed = SeedPlan::new(self.seed).stream("initial-model");
        Some(self.run(&[], pool, seed, false))
    }

    fn take_model(&mut self) -> Option<TrainedModel> {
        self.last_model.take()
    }
}

impl ZooScorer {
    /// Builds the model (from the initial weights, if any), trains it on `labels` when
    /// `train`, measures it and ranks `pool`; keeps a trained model for
    /// [`take_model`](Scorer::take_model).
    fn run(
        &mut self,
        labels: &[(DatasetIndex, usize)],
        pool: &[DatasetIndex],
        seed: u64,
        train: bool,
    ) -> Result<Round, ServeError> {
        let started = Instant::now();
        self.last_model = None;
        self.device.seed(seed);
        let shape = self.images.shape();
        let visitor = RoundVisitor {
            scorer: self,
            labels,
            pool,
            seed,
            train,
        };
        let (kind, classes, device) = (self.model, self.classes, self.device.clone());
        // On flex, on flex's own threads (`on_flex_workers`), as `baal train` runs.
        let (mut round, model) =
            on_flex_workers(&device, || kind.build(shape, classes, &device, visitor))
                .map_err(|e| ServeError::Model(e.to_string()))??;
        round.seconds = started.elapsed().as_secs_f64();
        self.last_model = model;
        Ok(round)
    }

    /// The card of a model trained in a round of `seed` on `labelled` labels.
    fn card(
        &self,
        context: &CardContext,
        fit: &FitReport,
        evaluation: Option<EvalMetrics>,
        labelled: usize,
        seed: u64,
    ) -> ModelCard {
        ModelCard {
            format: MODEL_CARD_FORMAT,
            model: self.model,
            image_shape: self.images.shape(),
            classes: context.classes.clone(),
            normalization: context.normalization.clone(),
            metrics: TrainMetrics {
                train_loss: fit.train_loss,
                epochs_run: fit.epochs,
                gradient_steps: fit.gradient_steps,
                seconds: fit.seconds,
                validation_items: self.test.as_ref().map_or(0, Dataset::len),
                validation: evaluation,
            },
            data: context.data.clone(),
            labelled,
            seed,
            epochs: self.trainer.epochs,
            min_steps: self.trainer.min_gradient_steps,
            version: None,
            init_model: self.init.as_ref().map(|init| init.folder.dir.clone()),
        }
    }
}

struct RoundVisitor<'a> {
    scorer: &'a ZooScorer,
    labels: &'a [(DatasetIndex, usize)],
    pool: &'a [DatasetIndex],
    seed: u64,
    train: bool,
}

fn model_error(e: &dyn std::fmt::Display) -> ServeError {
    ServeError::Model(e.to_string())
}

impl ModelVisitor for RoundVisitor<'_> {
    type Output = Result<(Round, Option<TrainedModel>), ServeError>;

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        let s = self.scorer;
        let model = match &s.init {
            Some(init) => model.try_load_record(init.weights.clone()).map_err(|e| {
                ServeError::Model(format!("{}: {e}", init.folder.weights.display()))
            })?,
            None => model,
        };
        let mut trainer = Trainer::new(
            model,
            &s.device,
            normalized_batcher(),
            s.trainer.clone().with_seed(self.seed),
        )
        .map_err(|e| model_error(&e))?;
        let fit = if self.train {
            let labelled = LabelledSubset {
                images: &s.images,
                labels: self.labels,
            };
            Some(trainer.fit(&labelled).map_err(|e| model_error(&e))?)
        } else {
            None
        };
        let evaluation = match &s.test {
            Some(test) => Some(
                trainer
                    .evaluate(test, &|item: &NormalizedImage| usize::from(item.label))
                    .map_err(|e| model_error(&e))?,
            ),
            None => None,
        };
        let initial_loss = s.init.as_ref().map(|i| i.folder.card.metrics.train_loss);
        let mut round = Round {
            accuracy: evaluation.map(|e| e.accuracy),
            train_loss: fit
                .as_ref()
                .map_or(initial_loss.unwrap_or(0.0), |f| f.train_loss),
            n_labelled: self.labels.len(),
            ..Round::default()
        };
        if !self.pool.is_empty() {
            self.rank(&trainer, &mut round)?;
        }
        let kept = match (&fit, &s.card, &s.init) {
            (Some(fit), Some(context), _) => Some(TrainedModel {
                weights: trainer.inference_model().into_record(),
                card: s.card(context, fit, evaluation, self.labels.len(), self.seed),
            }),
            // Round 0 of --init-model: the model that ranked the pool is the init model,
            // kept as it is so that /api/model names the model behind the current ranking.
            (None, Some(_), Some(init)) => Some(TrainedModel {
                weights: trainer.inference_model().into_record(),
                card: ModelCard {
                    init_model: Some(init.folder.dir.clone()),
                    ..init.folder.card.clone()
                },
            }),
            _ => None,
        };
        Ok((round, kept))
    }
}

impl RoundVisitor<'_> {
    /// Ranks the pool with the heuristic (on MC predictions of `predictor` when it needs
    /// them) into `round`: its ranking and the model's guess per item.
    fn rank<P: Predictor<NormalizedImage>>(
        &self,
        predictor: &P,
        round: &mut Round,
    ) -> Result<(), ServeError> {
        let s = self.scorer;
        let heuristic = &s.heuristic;
        let (order, scores, predicted) = if heuristic.needs_predictions() {
            let sampler = McSamplerConfig::new(s.iterations)
                .with_seed(self.seed)
                .with_consistent(heuristic.needs_consistent_samples())
                .init()
                .map_err(|e| model_error(&e))?;
            let pool = Subset {
                images: &s.images,
                items: self.pool,
            };
            let probs = predictor
                .predict(&sampler, &pool)
                .map_err(|e| model_error(&e))?;
            let predicted =
                baal_active::predicted_classes(probs.clone()).map_err(|e| model_error(&e))?;
            let predictions = Predictions::from_probs(probs).map_err(|e| model_error(&e))?;
            let ranking = heuristic
                .rank(&predictions, None)
                .map_err(|e| model_error(&e))?;
            let (order, scores) = ranking.into_parts();
            (order, scores, Some(predicted))
        } else {
            let scores = heuristic
                .scores_without_predictions(self.pool.len())
                .map_err(|e| model_error(&e))?;
            let ranking = baal_heuristics::Ranking::from_scores(scores, heuristic.orientation())
                .map_err(|e| model_error(&e))?;
            let (order, scores) = ranking.into_parts();
            (order, scores, None)
        };
        round.ranking = order.iter().map(|&p| (self.pool[p], scores[p])).collect();
        round.predictions = self
            .pool
            .iter()
            .enumerate()
            .map(|(p, &item)| {
                let class = predicted.as_ref().map_or(0, |c: &Vec<usize>| c[p]);
                (item, (class, scores[p]))
            })
            .collect::<HashMap<_, _>>();
        Ok(())
    }
}

/// The labelled items with the service's labels, for the trainer.
struct LabelledSubset<'a> {
    images: &'a NormalizedImages,
    labels: &'a [(DatasetIndex, usize)],
}

impl Dataset<LabelledItem<NormalizedImage, usize>> for LabelledSubset<'_> {
    fn get(&self, index: usize) -> Result<LabelledItem<NormalizedImage, usize>, DatasetError> {
        let &(item, label) = self
            .labels
            .get(index)
            .ok_or_else(|| out_of_range(index, self.labels.len()))?;
        Ok(LabelledItem {
            item: self.images.get(item.get())?,
            label,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Some items of the dataset, in the given order.
struct Subset<'a> {
    images: &'a NormalizedImages,
    items: &'a [DatasetIndex],
}

impl Dataset<NormalizedImage> for Subset<'_> {
    fn get(&self, index: usize) -> Result<NormalizedImage, DatasetError> {
        let item = self
            .items
            .get(index)
            .ok_or_else(|| out_of_range(index, self.items.len()))?;
        self.images.get(item.get())
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

fn out_of_range(index: usize, len: usize) -> DatasetError {
    DatasetError::new(baal_data::DataError::IndexOutOfRange {
        kind: "subset",
        index,
        len,
    })
}
