//! The trainer's settings in `profile.json`: the [`TrainerConfig`]'s own JSON, less the
//! settings added after the first reproductions (learning-rate schedule, warm-up) while they
//! keep their defaults. A runs folder's `profile.json` is compared as text with the profile's,
//! so earlier runs still match a profile that uses neither (as with the profile's own
//! optional settings, which are skipped when unset).
//!
//! Every field of [`TrainerConfig`] is listed once here, in its JSON's order: a field added there
//! fails to compile here until it is given its place.

use baal::active::{EarlyStoppingConfig, LrSchedule, OptimizerConfig, TrainerConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// [`TrainerConfig`]'s fields, in the order its JSON has them (Burn's `Config` writes the
/// optional ones first).
#[derive(Serialize, Deserialize)]
struct TrainerJson {
    samples_per_fit: Option<usize>,
    early_stopping: Option<EarlyStoppingConfig>,
    optimizer: OptimizerConfig,
    batch_size: usize,
    epochs: usize,
    min_gradient_steps: usize,
    reset_weights: bool,
    eval_iterations: usize,
    eval_batch_size: usize,
    seed: u64,
    weight_decay_per_label: bool,
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    lr_schedule: LrSchedule,
    #[serde(default, skip_serializing_if = "is_zero")]
    warmup_steps: usize,
}

fn is_zero(steps: &usize) -> bool {
    *steps == 0
}

impl From<TrainerConfig> for TrainerJson {
    fn from(config: TrainerConfig) -> Self {
        let TrainerConfig {
            optimizer,
            batch_size,
            epochs,
            min_gradient_steps,
            reset_weights,
            eval_iterations,
            eval_batch_size,
            seed,
            weight_decay_per_label,
            samples_per_fit,
            early_stopping,
            lr_schedule,
            warmup_steps,
        } = config;
        Self {
            optimizer,
            batch_size,
            epochs,
            min_gradient_steps,
            reset_weights,
            eval_iterations,
            eval_batch_size,
            seed,
            weight_decay_per_label,
            samples_per_fit,
            early_stopping,
            lr_schedule,
            warmup_steps,
        }
    }
}

impl From<TrainerJson> for TrainerConfig {
    fn from(json: TrainerJson) -> Self {
        Self {
            optimizer: json.optimizer,
            batch_size: json.batch_size,
            epochs: json.epochs,
            min_gradient_steps: json.min_gradient_steps,
            reset_weights: json.reset_weights,
            eval_iterations: json.eval_iterations,
            eval_batch_size: json.eval_batch_size,
            seed: json.seed,
            weight_decay_per_label: json.weight_decay_per_label,
            samples_per_fit: json.samples_per_fit,
            early_stopping: json.early_stopping,
            lr_schedule: json.lr_schedule,
            warmup_steps: json.warmup_steps,
        }
    }
}

/// Writes `config` as [`TrainerConfig`] does, without a constant schedule or a zero warm-up.
///
/// # Errors
/// The serializer's.
pub(crate) fn serialize<S: Serializer>(
    config: &TrainerConfig,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    TrainerJson::from(config.clone()).serialize(serializer)
}

/// Reads what [`serialize`] writes, and [`TrainerConfig`]'s own JSON.
///
/// # Errors
/// The deserializer's.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<TrainerConfig, D::Error> {
    TrainerJson::deserialize(deserializer).map(TrainerConfig::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(config: &TrainerConfig) -> String {
        let mut out = Vec::new();
        serialize(config, &mut serde_json::Serializer::pretty(&mut out)).expect("json");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn default_settings_write_what_the_trainer_wrote_before_schedules() {
        let config = TrainerConfig::new().with_samples_per_fit(Some(6400));
        let own = serde_json::to_string_pretty(&config).expect("json");
        // The trainer's own JSON ends with the new settings; without them it is the old text.
        let tail = ",\n  \"lr_schedule\": \"constant\",\n  \"warmup_steps\": 0\n}";
        let before = own.strip_suffix(tail).expect("the new settings come last");
        assert_eq!(written(&config), format!("{before}\n}}"));
        // Both read back, the old text with the defaults.
        let text = written(&config);
        let mut reader = serde_json::Deserializer::from_str(&text);
        assert_eq!(deserialize(&mut reader).expect("reads"), config);
        let mut reader = serde_json::Deserializer::from_str(&own);
        assert_eq!(deserialize(&mut reader).expect("reads"), config);
    }

    #[test]
    fn a_schedule_and_a_warmup_are_written_and_read() {
        let config = TrainerConfig::new()
            .with_optimizer(OptimizerConfig::adamw(1e-3, 1e-2))
            .with_lr_schedule(LrSchedule::Cosine { min_lr: 1e-5 })
            .with_warmup_steps(10);
        let json = written(&config);
        assert!(
            json.contains("\"cosine\"") && json.contains("\"warmup_steps\": 10"),
            "{json}"
        );
        let mut reader = serde_json::Deserializer::from_str(&json);
        assert_eq!(deserialize(&mut reader).expect("reads"), config);
    }
}
