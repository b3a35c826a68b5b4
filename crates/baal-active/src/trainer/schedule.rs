//! Learning-rate schedules: the rate of every gradient step of a fit, worked out from the
//! fit's step count before it starts (PyTorch's `CosineAnnealingLR` and `StepLR`, stepped once
//! per gradient step, after an optional linear warm-up).
//!
//! Burn has schedulers (`burn::lr_scheduler`), but they are stateful iterators, and its
//! cosine refuses rates above 1; the rate of step `t` here is a closed formula of `t` and the
//! fit's length, so that a test can check every rate by hand and a fit needs no scheduler
//! state.

use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};

/// How the learning rate changes over the gradient steps of one fit (after the warm-up of
/// [`TrainerConfig::warmup_steps`](super::TrainerConfig::warmup_steps), see
/// [`LearningRates`] for the formulas). Every fit starts the schedule again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The optimizer's learning rate at every step (the default).
    #[default]
    Constant,
    /// The rate times `gamma` every `every_steps` steps (PyTorch's `StepLR`, stepped per
    /// gradient step): `η γ^⌊t / every_steps⌋`.
    Step {
        /// Steps between two decays (at least 1).
        every_steps: usize,
        /// The factor of each decay, in (0, 1].
        gamma: f64,
    },
    /// Half a cosine from the rate down towards `min_lr` over the fit's steps (PyTorch's
    /// `CosineAnnealingLR` with `T_max` the fit's steps after warm-up, stepped per gradient
    /// step): `η_min + (η − η_min)(1 + cos(π t / T)) / 2`. The first step runs at the
    /// full rate; `min_lr` itself would be step `T`'s, one past the last.
    Cosine {
        /// The floor, in [0, learning rate].
        min_lr: f64,
    },
}

impl LrSchedule {
    /// Whether this is [`LrSchedule::Constant`].
    pub fn is_constant(&self) -> bool {
        *self == Self::Constant
    }

    /// Checks the schedule against the optimizer's `learning_rate`.
    ///
    /// # Errors
    /// A step schedule with `every_steps` 0 or `gamma` outside (0, 1]; a cosine whose
    /// `min_lr` is negative, not finite or above `learning_rate`.
    pub fn check(&self, learning_rate: f64) -> Result<()> {
        match *self {
            Self::Constant => Ok(()),
            Self::Step { every_steps, gamma } => {
                if every_steps == 0 {
                    return Err(invalid(
                        "step schedule",
                        "every_steps must be at least 1, got 0".into(),
                    ));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(invalid(
                        "step schedule",
                        format!(
                            "gamma multiplies the rate at each decay: it must be in (0, 1], got {gamma}"
                        ),
                    ));
                }
                Ok(())
            }
            Self::Cosine { min_lr } => {
                if !(min_lr.is_finite() && (0.0..=learning_rate).contains(&min_lr)) {
                    return Err(invalid(
                        "cosine schedule",
                        format!(
                            "min_lr must be in [0, the learning rate {learning_rate}], got {min_lr}"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

fn invalid(what: &'static str, reason: String) -> ActiveError {
    ActiveError::InvalidConfig { what, reason }
}

/// The learning rate of every gradient step of one fit: `W` warm-up steps, then the
/// [`LrSchedule`] over the remaining `T − W` of the fit's `T` steps.
///
/// With `η` the optimizer's rate, step `t` (counted from 0) runs at
///
/// - `η (t + 1) / (W + 1)` while `t < W` (a straight line from 0 up to `η`, which step `W`
///   reaches: PyTorch's `LinearLR(start_factor = 1/(W+1), total_iters = W)`), then, with
///   `s = t − W` and `S = T − W`,
/// - constant: `η`;
/// - step: `η γ^⌊s / every_steps⌋`;
/// - cosine: `η_min + (η − η_min)(1 + cos(π s / S)) / 2`.
///
/// ```
/// use baal_active::{LearningRates, LrSchedule};
///
/// // Cosine from 1e-2 to 0 over 4 steps.
/// let rates = LearningRates::new(1e-2, LrSchedule::Cosine { min_lr: 0.0 }, 0, 4)?;
/// let every: Vec<f64> = (0..4).map(|t| rates.at(t)).collect();
/// let expected = [1e-2, 8.5355339e-3, 5e-3, 1.4644661e-3];
/// for (rate, want) in every.iter().zip(expected) {
///     assert!((rate - want).abs() < 1e-10, "{rate} vs {want}");
/// }
/// # Ok::<(), baal_active::ActiveError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LearningRates {
    learning_rate: f64,
    schedule: LrSchedule,
    warmup_steps: usize,
    total_steps: usize,
}

impl LearningRates {
    /// The rates of a fit of `total_steps` gradient steps at `learning_rate`, warmed up over
    /// `warmup_steps`, then following `schedule`.
    ///
    /// # Errors
    /// A learning rate that is not a positive number, a schedule its
    /// [`check`](LrSchedule::check) refuses, no step, or a warm-up that leaves no step of
    /// the fit to the schedule (`warmup_steps ≥ total_steps`).
    pub fn new(
        learning_rate: f64,
        schedule: LrSchedule,
        warmup_steps: usize,
        total_steps: usize,
    ) -> Result<Self> {
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(invalid(
                "learning rate",
                format!("must be a positive number, got {learning_rate}"),
            ));
        }
        schedule.check(learning_rate)?;
        if total_steps == 0 {
            return Err(invalid(
                "learning-rate schedule",
                "a fit needs at least one gradient step, got 0".into(),
            ));
        }
        if warmup_steps >= total_steps {
            return Err(invalid(
                "warm-up",
                format!(
                    "{warmup_steps} warm-up steps leave nothing of a fit of {total_steps} \
                     gradient steps: warm up over fewer steps than the fit runs"
                ),
            ));
        }
        Ok(Self {
            learning_rate,
            schedule,
            warmup_steps,
            total_steps,
        })
    }

    /// Gradient steps of the fit.
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// The learning rate of gradient step `step` (from 0). Steps past the fit's end follow
    /// the same formula (a cosine climbs back up, as PyTorch's does).
    pub fn at(&self, step: usize) -> f64 {
        let eta = self.learning_rate;
        let warmup = self.warmup_steps;
        if step < warmup {
            return eta * (step + 1) as f64 / (warmup + 1) as f64;
        }
        let since = step - warmup;
        match self.schedule {
            // The rate as given: a constant schedule trains as before schedules existed.
            LrSchedule::Constant => eta,
            LrSchedule::Step { every_steps, gamma } => {
                let decays = i32::try_from(since / every_steps).unwrap_or(i32::MAX);
                eta * gamma.powi(decays)
            }
            LrSchedule::Cosine { min_lr } => {
                let span = (self.total_steps - warmup) as f64;
                let phase = std::f64::consts::PI * since as f64 / span;
                min_lr + (eta - min_lr) * (1.0 + phase.cos()) / 2.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(schedule: LrSchedule, eta: f64, warmup: usize, total: usize) -> Vec<f64> {
        let plan = LearningRates::new(eta, schedule, warmup, total).expect("valid");
        (0..total).map(|t| plan.at(t)).collect()
    }

    fn assert_close(got: &[f64], expected: &[f64]) {
        assert_eq!(got.len(), expected.len(), "{got:?} vs {expected:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (g - e).abs() <= 1e-12 * e.abs().max(1e-3),
                "{got:?} vs {expected:?}"
            );
        }
    }

    #[test]
    fn constant_is_the_rate_itself_at_every_step() {
        let got = rates(LrSchedule::Constant, 1e-3, 0, 7);
        // Bit for bit: the rate a fit passed to the optimizer before schedules existed.
        assert!(
            got.iter().all(|&r| r.to_bits() == 1e-3_f64.to_bits()),
            "{got:?}"
        );
    }

    #[test]
    fn cosine_follows_pytorchs_cosine_annealing_with_t_max_the_fit() {
        // cos(π/4) = √2/2: 1e-2 · (1 ± √2/2) / 2.
        let half_root_two = std::f64::consts::FRAC_1_SQRT_2;
        let got = rates(LrSchedule::Cosine { min_lr: 0.0 }, 1e-2, 0, 4);
        assert_close(
            &got,
            &[
                1e-2,
                1e-2 * (1.0 + half_root_two) / 2.0,
                5e-3,
                1e-2 * (1.0 - half_root_two) / 2.0,
            ],
        );
        assert!((got[1] - 8.5355e-3).abs() < 1e-7 && (got[3] - 1.4645e-3).abs() < 1e-7);
        // A floor: 1e-3 + 9e-3 · (1 + cos(π t / 2)) / 2 over 2 steps.
        let floored = rates(LrSchedule::Cosine { min_lr: 1e-3 }, 1e-2, 0, 2);
        assert_close(&floored, &[1e-2, 5.5e-3]);
    }

    #[test]
    fn step_multiplies_by_gamma_every_n_steps() {
        let step = LrSchedule::Step {
            every_steps: 2,
            gamma: 0.5,
        };
        assert_close(&rates(step, 0.1, 0, 5), &[0.1, 0.1, 0.05, 0.05, 0.025]);
    }

    #[test]
    fn warmup_climbs_linearly_then_the_schedule_runs_over_the_rest() {
        // W = 3: η/4, η/2, 3η/4, then a constant η.
        assert_close(
            &rates(LrSchedule::Constant, 0.2, 3, 5),
            &[0.05, 0.1, 0.15, 0.2, 0.2],
        );
        // W = 1, then a cosine over the remaining 2 steps: η/2, η, η/2.
        assert_close(
            &rates(LrSchedule::Cosine { min_lr: 0.0 }, 0.2, 1, 3),
            &[0.1, 0.2, 0.1],
        );
        // W = 2, then steps counted from the end of the warm-up.
        let step = LrSchedule::Step {
            every_steps: 1,
            gamma: 0.1,
        };
        assert_close(
            &rates(step, 1.0, 2, 5),
            &[1.0 / 3.0, 2.0 / 3.0, 1.0, 0.1, 0.01],
        );
    }

    #[test]
    fn bad_schedules_are_errors_that_say_what_is_wrong() {
        let refused = |schedule: LrSchedule, eta: f64, warmup: usize, total: usize| {
            LearningRates::new(eta, schedule, warmup, total)
                .expect_err("refused")
                .to_string()
        };
        let step = |every_steps, gamma| LrSchedule::Step { every_steps, gamma };
        let cosine = |min_lr| LrSchedule::Cosine { min_lr };
        assert!(refused(step(0, 0.5), 0.1, 0, 5).contains("every_steps"));
        for gamma in [0.0, -0.5, 1.5, f64::NAN] {
            assert!(
                refused(step(1, gamma), 0.1, 0, 5).contains("gamma"),
                "{gamma}"
            );
        }
        for min_lr in [-1e-3, 0.2, f64::NAN, f64::INFINITY] {
            assert!(
                refused(cosine(min_lr), 0.1, 0, 5).contains("min_lr"),
                "{min_lr}"
            );
        }
        for eta in [0.0, -1e-3, f64::NAN] {
            assert!(refused(LrSchedule::Constant, eta, 0, 5).contains("learning rate"));
        }
        assert!(refused(LrSchedule::Constant, 0.1, 5, 5).contains("warm-up"));
        assert!(refused(LrSchedule::Constant, 0.1, 0, 0).contains("at least one"));
        // The edges that are fine: gamma 1, min_lr equal to the rate, W = T − 1.
        assert!(LearningRates::new(0.1, step(1, 1.0), 4, 5).is_ok());
        assert!(LearningRates::new(0.1, cosine(0.1), 0, 5).is_ok());
    }

    #[test]
    fn schedules_read_and_write_as_kebab_case_json() {
        for (schedule, json) in [
            (LrSchedule::Constant, r#""constant""#),
            (
                LrSchedule::Step {
                    every_steps: 3,
                    gamma: 0.5,
                },
                r#"{"step":{"every_steps":3,"gamma":0.5}}"#,
            ),
            (
                LrSchedule::Cosine { min_lr: 0.0 },
                r#"{"cosine":{"min_lr":0.0}}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&schedule).expect("json"), json);
            let read: LrSchedule = serde_json::from_str(json).expect("reads");
            assert_eq!(read, schedule);
        }
    }
}
