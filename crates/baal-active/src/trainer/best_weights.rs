//! Early stopping's bookkeeping during one fit: the best weights so far.

use super::EarlyStoppingConfig;
use super::Trainer;
use crate::error::Result;
use crate::metrics::EvalMetrics;
use crate::traits::Trainable;

/// Early stopping's bookkeeping during one fit: the best weights so far, their metrics and
/// step, and how many checks have passed since they improved.
pub(super) struct BestWeights<'a, M> {
    config: Option<&'a EarlyStoppingConfig>,
    /// Gradient steps between checks.
    every: usize,
    best: Option<(EvalMetrics, usize, M)>,
    since_best: usize,
    pub(super) checked_at: usize,
    pub(super) stopped: bool,
}

impl<'a, M: Clone> BestWeights<'a, M> {
    pub(super) fn new(config: Option<&'a EarlyStoppingConfig>, steps_per_pass: usize) -> Self {
        let every = match config.map(|c| c.check_every) {
            Some(0) | None => steps_per_pass,
            Some(every) => every,
        };
        Self {
            config,
            every: every.max(1),
            best: None,
            since_best: 0,
            checked_at: 0,
            stopped: false,
        }
    }

    /// Whether early stopping is on.
    pub(super) fn watching(&self) -> bool {
        self.config.is_some()
    }

    /// Whether a check is due after gradient step `step`.
    pub(super) fn due(&self, step: usize) -> bool {
        self.watching() && step.is_multiple_of(self.every)
    }

    /// Validates `model` after gradient step `step`; keeps it if it is the best so far, and
    /// stops once `patience` checks in a row brought no improvement.
    pub(super) fn check<I>(&mut self, trainer: &Trainer<M, I>, model: &M, step: usize) -> Result<()>
    where
        M: Trainable,
        I: Clone + Send + Sync + 'static,
    {
        let (Some(config), Some(validation)) = (self.config, trainer.validation.as_ref()) else {
            return Ok(());
        };
        self.checked_at = step;
        let metrics = (validation.metrics)(trainer, model, validation)?;
        if self
            .best
            .as_ref()
            .is_none_or(|(best, ..)| config.improves(&metrics, best))
        {
            self.best = Some((metrics, step, model.clone()));
            self.since_best = 0;
        } else {
            self.since_best += 1;
            self.stopped = self.since_best >= config.patience;
        }
        Ok(())
    }

    /// Puts the best weights into `model`; their metrics and step, if any check ran.
    pub(super) fn take_into(self, model: &mut M) -> Option<(EvalMetrics, usize)> {
        let (metrics, step, best) = self.best?;
        *model = best;
        Some((metrics, step))
    }
}
