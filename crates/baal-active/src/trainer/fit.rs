//! Fitting: the shuffled passes of [`Trainer::fit`] (each ensemble member in turn, with early
//! stopping), the planned batches of [`Trainer::fit_batches`], and what a fit reports.

use std::time::Instant;

use baal_bayesian::{on_flex_workers, seeds};
use baal_data::LabelledItem;
use burn::data::dataset::Dataset;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Trainer;
use super::best_weights::BestWeights;
use crate::calibration::CalibrationReport;
use crate::error::{ActiveError, Result};
use crate::metrics::EvalMetrics;
use crate::traits::{Label, Trainable};

/// What one [`Trainer::fit`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Mean training loss (cross-entropy) over the last epoch.
    pub train_loss: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Gradient steps run.
    pub gradient_steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// With early stopping: the validation metrics of the weights kept, and the gradient step
    /// after which they were taken.
    #[serde(default)]
    pub validation: Option<(EvalMetrics, usize)>,
    /// With calibration ([`Trainer::with_calibration`]): the validation metrics before and
    /// after the map fitted after this fit.
    #[serde(default)]
    pub calibration: Option<CalibrationReport>,
}

impl FitReport {
    /// The report of an ensemble's fit from its members': the mean of their losses, the most
    /// epochs any ran, the gradient steps of all, the first member's validation (one member:
    /// its report).
    fn of_members(mut reports: Vec<FitReport>, seconds: f64) -> Self {
        if reports.len() == 1 {
            let mut report = reports.pop().expect("one report");
            report.seconds = seconds;
            return report;
        }
        let members = reports.len() as f64;
        Self {
            train_loss: reports.iter().map(|r| r.train_loss).sum::<f64>() / members,
            epochs: reports.iter().map(|r| r.epochs).max().unwrap_or(0),
            gradient_steps: reports.iter().map(|r| r.gradient_steps).sum(),
            seconds,
            validation: reports.swap_remove(0).validation,
            calibration: None,
        }
    }
}

impl<M, I> Trainer<M, I>
where
    M: Trainable,
    I: Clone + Send + Sync + 'static,
{
    /// Every labelled item with its class index, checked against the model's classes.
    fn read_labelled<L: Label<M::Target>>(
        &self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
    ) -> Result<Vec<(I, M::Target)>> {
        let n = labelled.len();
        if n == 0 {
            return Err(ActiveError::Empty {
                what: "labelled set",
            });
        }
        let mut items = Vec::with_capacity(n);
        for index in 0..n {
            let entry = labelled.get(index).map_err(|e| ActiveError::Item {
                what: "labelled set",
                index,
                message: e.to_string(),
            })?;
            let target = entry.label.target();
            self.model()
                .check_target(&target)
                .map_err(|reason| ActiveError::BadTarget {
                    what: "labelled",
                    index,
                    reason,
                })?;
            items.push((entry.item, target));
        }
        Ok(items)
    }

    /// One gradient step of `model` on the items at `batch` at `learning_rate`; returns the
    /// updated model and the batch's mean loss (still on the device). On flex it runs on
    /// flex's own threads ([`on_flex_workers`]).
    fn train_step(
        &self,
        model: M,
        optimizer: &mut ModuleOptimizer,
        items: &[(I, M::Target)],
        batch: &[usize],
        learning_rate: f64,
    ) -> (M, Tensor<1>) {
        let inputs: Vec<I> = batch.iter().map(|&i| items[i].0.clone()).collect();
        let targets: Vec<M::Target> = batch.iter().map(|&i| items[i].1.clone()).collect();
        let (batcher, device) = (&self.batcher, &self.device);
        on_flex_workers(device, move || {
            let input = batcher(inputs, device);
            let loss = model.training_loss(input, &targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = optimizer.step(learning_rate, model, grads);
            (model, loss)
        })
    }

    /// Trains on the given batches of `labelled`, in order (indices into the labelled view;
    /// any size, repeats allowed) instead of the configured shuffled passes, and returns
    /// every step's loss. Weights are reset first when the config says so; weight decay per
    /// label, the device seed and the fit count behave as in [`Trainer::fit`], and the
    /// learning-rate schedule spans the batches given; epochs, the sample budget and early
    /// stopping do not apply. For checks against another framework
    /// fed the same batches (`cargo xtask parity-torch`) and for users who plan their own
    /// batches.
    ///
    /// # Errors
    /// As [`Trainer::fit`], plus an empty batch list, an empty batch, an index outside the
    /// labelled set, or a warm-up of at least as many steps as there are batches.
    pub fn fit_batches<L: Label<M::Target>>(
        &mut self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
        batches: &[Vec<usize>],
    ) -> Result<(FitReport, Vec<f32>)> {
        let started = Instant::now();
        let items = self.read_labelled(labelled)?;
        let n = items.len();
        if batches.is_empty() {
            return Err(ActiveError::InvalidConfig {
                what: "batches",
                reason: "no batch to train on".into(),
            });
        }
        if let Some(step) = batches.iter().position(Vec::is_empty) {
            return Err(ActiveError::InvalidConfig {
                what: "batches",
                reason: format!("batch {step} is empty"),
            });
        }
        if let Some((step, &index)) = batches
            .iter()
            .enumerate()
            .find_map(|(step, b)| b.iter().find(|&&i| i >= n).map(|i| (step, i)))
        {
            return Err(ActiveError::InvalidConfig {
                what: "batches",
                reason: format!(
                    "batch {step} holds item {index}, but the labelled set has {n} items"
                ),
            });
        }
        if self.snapshots > 0 {
            return Err(ActiveError::InvalidConfig {
                what: "snapshots",
                reason: "fit_batches trains every member on the batches given; a snapshot \
                         ensemble's members come from one training: use fit"
                    .into(),
            });
        }
        let rates = self.config.learning_rates_over(batches.len())?;
        let seed = self.start_fit();
        let mut models = Vec::with_capacity(self.models.len());
        let mut values = Vec::with_capacity(batches.len() * self.models.len());
        let mut train_loss = 0.0;
        for (member, model) in self.models.iter().enumerate() {
            let mut optimizer = self.start_member(seed, member, n);
            let mut model = model.clone();
            let mut losses = Vec::with_capacity(batches.len());
            for (step, batch) in batches.iter().enumerate() {
                let (next, loss) =
                    self.train_step(model, &mut optimizer, &items, batch, rates.at(step));
                model = next;
                losses.push(loss);
            }
            let (member_values, member_loss) = read_losses(losses, 1)?;
            values.extend(member_values);
            train_loss += member_loss / self.models.len() as f64;
            models.push(model);
        }
        self.models = models;
        let report = FitReport {
            train_loss,
            epochs: 1,
            gradient_steps: batches.len() * self.models.len(),
            seconds: started.elapsed().as_secs_f64(),
            validation: None,
            calibration: None,
        };
        Ok((report, values))
    }

    /// What every fit starts with: the weights reset (when the config says so) and the fit
    /// counted; returns this fit's seed.
    fn start_fit(&mut self) -> u64 {
        if self.config.reset_weights {
            self.reset_weights();
        }
        // A fit changes the weights the calibration map was fitted for.
        self.calibrator = None;
        let seed = seeds::nth(self.config.seed, self.fits);
        self.fits += 1;
        seed
    }

    /// What training member `member` on `n` labelled items starts with: the device seeded
    /// with the member's seed (the fit's seed for the first member, so that a single model
    /// trains as it always did) and a fresh optimizer whose L2 penalty is divided by `n` with
    /// weight decay per label.
    fn start_member(&self, fit_seed: u64, member: usize, n: usize) -> ModuleOptimizer {
        self.device.seed(seeds::member(fit_seed, member));
        let decay_divisor = if self.config.weight_decay_per_label {
            n as f32
        } else {
            1.0
        };
        self.config.optimizer.init(decay_divisor)
    }

    /// Trains on `labelled` (after resetting the weights when the config says so).
    ///
    /// # Errors
    /// The labelled set is empty, an item cannot be read, a label is not below the model's
    /// number of classes, the loss is not finite.
    pub fn fit<L: Label<M::Target>>(
        &mut self,
        labelled: &dyn Dataset<LabelledItem<I, L>>,
    ) -> Result<FitReport> {
        let started = Instant::now();
        let items = self.read_labelled(labelled)?;
        let n = items.len();
        for (on, what) in [
            (self.config.early_stopping.is_some(), "early stopping"),
            (self.calibration.is_some(), "calibration"),
        ] {
            if on && self.validation.is_none() {
                return Err(ActiveError::InvalidConfig {
                    what,
                    reason: "it needs a validation set: give one with Trainer::with_validation"
                        .into(),
                });
            }
        }
        let seed = self.start_fit();
        let mut models = Vec::with_capacity(self.models.len());
        let mut reports = Vec::with_capacity(self.models.len());
        if self.snapshots > 0 {
            // One training; the trained model first, then the earlier snapshots.
            let (model, report, mut snapshots) =
                self.fit_member(self.models[0].clone(), &items, seed, 0, self.snapshots)?;
            snapshots.pop(); // the trained model itself
            models.push(model);
            models.extend(snapshots);
            reports.push(report);
        } else {
            for (member, model) in self.models.iter().enumerate() {
                let (model, report, _) = self.fit_member(model.clone(), &items, seed, member, 1)?;
                models.push(model);
                reports.push(report);
            }
        }
        self.models = models;
        let mut report = FitReport::of_members(reports, started.elapsed().as_secs_f64());
        if let Some(after_fit) = self.after_fit {
            report.calibration = after_fit(self)?;
        }
        tracing::debug!(?report, labelled = n, "fit");
        Ok(report)
    }

    /// Trains member `member` (starting from `model`) on `items` in fit `fit_seed`: shuffled
    /// passes, early stopping when configured. With `cycles` ≥ 2 (a snapshot ensemble) the
    /// fit's steps split into that many equal parts, each running the learning-rate schedule
    /// over its own length, and the model at the end of each part comes back too (the last
    /// is the trained model); with 1, none.
    fn fit_member(
        &self,
        mut model: M,
        items: &[(I, M::Target)],
        fit_seed: u64,
        member: usize,
        cycles: usize,
    ) -> Result<(M, FitReport, Vec<M>)> {
        let started = Instant::now();
        let n = items.len();
        let mut optimizer = self.start_member(fit_seed, member, n);
        let mut rng = ChaCha8Rng::seed_from_u64(seeds::member(fit_seed, member));
        let batch_size = self.config.batch_size.min(n);
        let steps_per_pass = n.div_ceil(batch_size);
        let total_steps = self.config.gradient_steps(n);
        if total_steps < cycles {
            return Err(ActiveError::InvalidConfig {
                what: "snapshots",
                reason: format!(
                    "a fit of {total_steps} gradient steps cannot keep {cycles} snapshots: raise \
                     min_gradient_steps or take fewer snapshots"
                ),
            });
        }
        // Part `c` ends after step `ends[c]`; each runs the schedule over its own length.
        let ends: Vec<usize> = (1..=cycles).map(|c| total_steps * c / cycles).collect();
        let (mut cycle, mut cycle_start) = (0, 0);
        let mut rates = self.config.learning_rates_over(ends[0])?;
        let mut snapshots = Vec::new();
        let mut best = BestWeights::new(self.config.early_stopping.as_ref(), steps_per_pass);
        let progress = self.progress.start("training", total_steps, "steps");
        let mut order: Vec<usize> = (0..n).collect();
        let (mut train_loss, mut step, mut passes) = (f64::NAN, 0, 0);
        while step < total_steps && !best.stopped {
            order.shuffle(&mut rng);
            passes += 1;
            let mut losses = Vec::with_capacity(steps_per_pass);
            for batch in order.chunks(batch_size) {
                if step == total_steps || best.stopped {
                    break;
                }
                let rate = rates.at(step - cycle_start);
                let (next, loss) = self.train_step(model, &mut optimizer, items, batch, rate);
                model = next;
                losses.push(loss);
                step += 1;
                if cycles > 1 && step == ends[cycle] {
                    snapshots.push(model.clone());
                    if cycle + 1 < cycles {
                        cycle_start = step;
                        cycle += 1;
                        rates = self.config.learning_rates_over(ends[cycle] - cycle_start)?;
                    }
                }
                if best.due(step) {
                    best.check(self, &model, step)?;
                }
            }
            progress.advance(losses.len());
            // One read back per pass.
            train_loss = read_losses(losses, passes)?.1;
        }
        drop(progress);
        // The weights after the last step compete too when no check saw them.
        if best.watching() && !best.stopped && best.checked_at != step {
            best.check(self, &model, step)?;
        }
        let validation = best.take_into(&mut model);
        let report = FitReport {
            train_loss,
            epochs: passes,
            gradient_steps: step,
            seconds: started.elapsed().as_secs_f64(),
            validation,
            calibration: None,
        };
        Ok((model, report, snapshots))
    }
}

/// Reads the batch losses of pass `pass` back from the device (one read for all of them):
/// each loss and their mean.
///
/// # Errors
/// The losses cannot be read, or their mean is not finite (training diverged).
fn read_losses(losses: Vec<Tensor<1>>, pass: usize) -> Result<(Vec<f32>, f64)> {
    let values = Tensor::cat(losses, 0)
        .try_into_vec_as::<f32>()
        .map_err(|e| ActiveError::InvalidConfig {
            what: "training loss",
            reason: format!("cannot read it back from the device: {e:?}"),
        })?;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    if !mean.is_finite() {
        return Err(ActiveError::Diverged {
            loss: mean,
            epoch: pass,
        });
    }
    Ok((values, mean))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use burn::tensor::{Device, Tensor};

    use super::super::test_model::{IDLE, Probe, batcher, dataset};
    use crate::trainer::{LrSchedule, OptimizerConfig, Trainer, TrainerConfig};
    use crate::traits::InputBatcher;

    /// One fit of a fresh probe on 8 labels, one batch a step; `idle` after it.
    fn idle_after(config: TrainerConfig) -> Vec<f32> {
        let device = Device::default();
        let mut data = dataset(16);
        data.label_randomly(8).expect("labels");
        let mut trainer =
            Trainer::new(Probe::new(&device), &device, batcher(), config).expect("valid");
        trainer.fit(&data.labelled()).expect("fit");
        trainer.model().idle()
    }

    #[test]
    fn on_flex_every_training_step_runs_on_a_thread_of_flex_pool() {
        let device = Device::flex();
        let threads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&threads);
        let recording: InputBatcher<[f32; 2], Tensor<2>> = Arc::new(move |items, device| {
            seen.lock()
                .expect("not poisoned")
                .push(rayon::current_thread_index());
            batcher()(items, device)
        });
        let mut data = dataset(16);
        data.label_randomly(8).expect("labels");
        let config = four_steps(OptimizerConfig::adam(1e-2));
        let mut trainer =
            Trainer::new(Probe::new(&device), &device, recording, config).expect("valid");
        trainer.fit(&data.labelled()).expect("fit");
        let threads = threads.lock().expect("not poisoned");
        assert_eq!(threads.len(), 4, "one batch a step");
        assert!(
            threads.iter().all(Option::is_some),
            "steps ran outside flex's pool: {threads:?}"
        );
    }

    /// Four steps a fit: 4 epochs of one batch of 8.
    fn four_steps(optimizer: OptimizerConfig) -> TrainerConfig {
        TrainerConfig::new()
            .with_optimizer(optimizer)
            .with_batch_size(8)
            .with_epochs(4)
    }

    #[test]
    fn adamw_shrinks_a_zero_gradient_weight_by_one_minus_lr_wd_each_step() {
        let (lr, wd) = (0.1, 0.5);
        let config = four_steps(OptimizerConfig::adamw(lr, wd as f32));
        let shrink = (1.0 - lr * wd).powi(4);
        let got = idle_after(config.clone());
        for (value, initial) in got.iter().zip(IDLE) {
            let expected = f64::from(initial) * shrink;
            assert!((f64::from(*value) - expected).abs() < 1e-6, "{got:?}");
        }
        // With a schedule, each step shrinks by its own rate: warm-up η/2, then a cosine
        // over the 3 steps left: η, 3η/4, η/4.
        let scheduled = config
            .with_lr_schedule(LrSchedule::Cosine { min_lr: 0.0 })
            .with_warmup_steps(1);
        let rates = scheduled.learning_rates(8).expect("valid");
        let expected_rates = [lr / 2.0, lr, 0.75 * lr, 0.25 * lr];
        let shrink: f64 = expected_rates
            .iter()
            .enumerate()
            .map(|(t, &rate)| {
                assert!((rates.at(t) - rate).abs() < 1e-15, "step {t}");
                1.0 - rate * wd
            })
            .product();
        let got = idle_after(scheduled);
        for (value, initial) in got.iter().zip(IDLE) {
            let expected = f64::from(initial) * shrink;
            assert!((f64::from(*value) - expected).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn adams_l2_penalty_is_not_decoupled_decay() {
        // Adam divides the penalty's gradient λw by its own root mean square: each step
        // moves the weight by about the rate, whatever its size, instead of shrinking it.
        let adam = four_steps(OptimizerConfig::Adam {
            learning_rate: 0.1,
            weight_decay: 0.5,
            epsilon: OptimizerConfig::BURN_ADAM_EPSILON,
        });
        let got = idle_after(adam);
        for (value, initial) in got.iter().zip(IDLE) {
            // 4 steps of about 0.1 each (a little less as the gradients shrink).
            let expected = initial - 0.4 * initial.signum();
            assert!((value - expected).abs() < 0.02, "{got:?}");
        }
        let adamw = idle_after(four_steps(OptimizerConfig::adamw(0.1, 0.5)));
        assert!((adamw[0] - got[0]).abs() > 0.1, "{adamw:?} vs {got:?}");
    }

    #[test]
    fn the_default_schedule_is_the_constant_rate_at_every_step() {
        let config = TrainerConfig::default();
        let lr = config.optimizer.learning_rate();
        for labelled in [1, 20, 300] {
            let rates = config.learning_rates(labelled).expect("valid");
            assert_eq!(rates.total_steps(), config.gradient_steps(labelled));
            for step in 0..rates.total_steps() {
                assert_eq!(rates.at(step).to_bits(), lr.to_bits(), "step {step}");
            }
        }
        // And a fit's idle weight with it is Adam's without decay: untouched.
        assert_eq!(idle_after(config.with_batch_size(8).with_epochs(2)), IDLE);
    }

    /// `idle` of each member after one fit of a snapshot ensemble of `snapshots` on 8
    /// labels, trained with `config`.
    fn snapshot_idles(config: TrainerConfig, snapshots: usize) -> Vec<Vec<f32>> {
        let device = Device::default();
        let mut data = dataset(16);
        data.label_randomly(8).expect("labels");
        let mut trainer =
            Trainer::snapshot_ensemble(Probe::new(&device), snapshots, &device, batcher(), config)
                .expect("valid");
        let report = trainer.fit(&data.labelled()).expect("fit");
        assert_eq!(
            report.gradient_steps, 4,
            "one training, not one per snapshot"
        );
        trainer.members().iter().map(Probe::idle).collect()
    }

    fn close(got: &[f32], expected: f64) {
        for (value, initial) in got.iter().zip(IDLE) {
            let want = f64::from(initial) * expected;
            assert!((f64::from(*value) - want).abs() < 1e-6, "{got:?} vs {want}");
        }
    }

    #[test]
    fn a_snapshot_ensemble_keeps_the_model_at_the_end_of_each_part_of_one_fit() {
        let (lr, wd) = (0.1, 0.5);
        // 4 steps, 2 snapshots: after step 2, and the trained model after step 4. AdamW
        // shrinks the idle weight by 1 - lr wd a step, which dates each snapshot.
        let idles = snapshot_idles(four_steps(OptimizerConfig::adamw(lr, wd as f32)), 2);
        assert_eq!(idles.len(), 2);
        let step = 1.0 - lr * wd;
        close(&idles[0], step.powi(4)); // the trained model first
        close(&idles[1], step.powi(2));
        // The cosine restarts in each part of 2 steps: rates lr, lr/2, then again.
        let cosine = four_steps(OptimizerConfig::adamw(lr, wd as f32))
            .with_lr_schedule(LrSchedule::Cosine { min_lr: 0.0 });
        let idles = snapshot_idles(cosine, 2);
        let part = (1.0 - lr * wd) * (1.0 - lr / 2.0 * wd);
        close(&idles[0], part * part);
        close(&idles[1], part);
        // 4 snapshots of 4 steps: one a step.
        let idles = snapshot_idles(four_steps(OptimizerConfig::adamw(lr, wd as f32)), 4);
        for (member, steps) in idles.iter().zip([4, 1, 2, 3]) {
            close(member, step.powi(steps));
        }
    }

    #[test]
    fn snapshot_ensembles_predict_with_every_snapshot_and_refuse_what_they_cannot_do() {
        let device = Device::default();
        let config = four_steps(OptimizerConfig::adamw(0.1, 0.1));
        let build = |snapshots, config: TrainerConfig| {
            Trainer::snapshot_ensemble(Probe::new(&device), snapshots, &device, batcher(), config)
        };
        let err = build(1, config.clone()).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("at least 2")));
        let early = config
            .clone()
            .with_early_stopping(Some(crate::EarlyStoppingConfig::new(2)));
        let err = build(2, early).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("early stopping")));
        // A fit of 4 steps cannot keep 5 snapshots.
        let mut data = dataset(16);
        data.label_randomly(8).expect("labels");
        let mut five = build(5, config.clone()).expect("valid");
        let err = five.fit(&data.labelled()).expect_err("too few steps");
        assert!(err.to_string().contains("5 snapshots"), "{err}");
        let err = five
            .fit_batches(&data.labelled(), &[vec![0]])
            .expect_err("one training");
        assert!(err.to_string().contains("snapshot"), "{err}");
        // Each of 3 snapshots is one sample of the posterior (MC off), as an ensemble's members.
        let mut three = build(3, config.with_min_gradient_steps(6)).expect("valid");
        assert_eq!(three.snapshots(), 3);
        three.fit(&data.labelled()).expect("fit");
        let sampler = baal_bayesian::McSamplerConfig::new(7)
            .init()
            .expect("valid");
        let probs =
            crate::Predictor::predict(&three, &sampler, &dataset(5).pool()).expect("predicts");
        assert_eq!(probs.dims(), [5, 2, 3]);
    }

    #[test]
    fn a_warmup_as_long_as_the_planned_batches_is_refused() {
        let device = Device::default();
        let mut data = dataset(8);
        data.label_randomly(4).expect("labels");
        let config = four_steps(OptimizerConfig::adamw(0.1, 0.1)).with_warmup_steps(2);
        let mut trainer =
            Trainer::new(Probe::new(&device), &device, batcher(), config).expect("valid");
        let err = trainer
            .fit_batches(&data.labelled(), &[vec![0, 1], vec![2, 3]])
            .expect_err("no step left after the warm-up");
        assert!(err.to_string().contains("warm-up"), "{err}");
        let (report, losses) = trainer
            .fit_batches(&data.labelled(), &[vec![0], vec![1], vec![2]])
            .expect("one step after the warm-up");
        assert_eq!((report.gradient_steps, losses.len()), (3, 3));
    }
}
