//! Retraining and scoring: [`Scorer`] is what the background worker calls; [`ZooScorer`]
//! trains a model of the zoo on the labels, measures it on the test split and ranks the pool
//! with any heuristic.

use std::collections::HashMap;
use std::time::Instant;

use baal_active::{Classifier, Trainer, TrainerConfig};
use baal_bayesian::{McSamplerConfig, seeds};
use baal_data::{DatasetIndex, LabelledItem};
use baal_heuristics::{Heuristic, Predictions};
use baal_zoo::images::{NormalizedImage, NormalizedImages, normalized_batcher};
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor};

use crate::error::ServeError;
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
}

/// A zoo model, trained from scratch each round (as baal's loop resets weights), MC-sampled on
/// the pool and ranked with a heuristic.
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
}

impl Scorer for ZooScorer {
    fn round(
        &mut self,
        labels: &[(DatasetIndex, usize)],
        pool: &[DatasetIndex],
    ) -> Result<Round, ServeError> {
        let started = Instant::now();
        let seed = seeds::nth(self.seed, self.rounds);
        self.rounds += 1;
        self.device.seed(seed);
        let shape = self.images.shape();
        let visitor = RoundVisitor {
            scorer: self,
            labels,
            pool,
            seed,
        };
        let mut round = self
            .model
            .build(shape, self.classes, &self.device.clone(), visitor)
            .map_err(|e| ServeError::Model(e.to_string()))??;
        round.seconds = started.elapsed().as_secs_f64();
        Ok(round)
    }
}

struct RoundVisitor<'a> {
    scorer: &'a ZooScorer,
    labels: &'a [(DatasetIndex, usize)],
    pool: &'a [DatasetIndex],
    seed: u64,
}

impl ModelVisitor for RoundVisitor<'_> {
    type Output = Result<Round, ServeError>;

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        let s = self.scorer;
        let model_error = |e: &dyn std::fmt::Display| ServeError::Model(e.to_string());
        let mut trainer = Trainer::new(
            model,
            &s.device,
            normalized_batcher(),
            s.trainer.clone().with_seed(self.seed),
        )
        .map_err(|e| model_error(&e))?;
        let labelled = LabelledSubset {
            images: &s.images,
            labels: self.labels,
        };
        let fit = trainer.fit(&labelled).map_err(|e| model_error(&e))?;
        let accuracy = match &s.test {
            Some(test) => Some(
                trainer
                    .evaluate(test, &|item: &NormalizedImage| usize::from(item.label))
                    .map_err(|e| model_error(&e))?
                    .accuracy,
            ),
            None => None,
        };
        let mut round = Round {
            accuracy,
            train_loss: fit.train_loss,
            n_labelled: self.labels.len(),
            ..Round::default()
        };
        if self.pool.is_empty() {
            return Ok(round);
        }
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
            let probs = baal_active::Predictor::predict(&trainer, &sampler, &pool)
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
        Ok(round)
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
