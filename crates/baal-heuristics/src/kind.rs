//! The registry: every heuristic of this crate by its command-line name, with its parameters and
//! one `build`. `baal score`, the active-learning loop and the reproductions all use it, so a new
//! heuristic needs its own file plus one entry here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{
    Badge, Bald, BatchBald, Certainty, CoreSet, Entropy, Epig, Heuristic, HeuristicError, Margin,
    Random, Result, SamplingRule, StochasticSampling, Variance, VariationRatio,
};

/// A heuristic by name (kebab-case on the command line and in saved state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum HeuristicKind {
    /// BALD: mutual information between the label and the model's parameters.
    Bald,
    /// Entropy of the mean prediction.
    Entropy,
    /// BatchBALD: greedy batch selection of the query size (needs a query size).
    BatchBald,
    /// Uniformly random order (seeded).
    Random,
    /// Power sampling of a batch by BALD scores (needs a query size; `temperature`).
    PowerBald,
    /// Softmax sampling of a batch by BALD scores (needs a query size; `temperature`).
    SoftmaxBald,
    /// Rank-based sampling of a batch by BALD ranks (needs a query size; `temperature`).
    RankBald,
    /// Gap between the two most likely classes (smallest first).
    Margin,
    /// Probability of the most likely class (lowest first).
    Certainty,
    /// Variance over MC iterations, averaged over classes.
    Variance,
    /// Expected predictive information gain on a target set (needs target predictions).
    Epig,
    /// Share of MC samples that do not vote for the modal class.
    VariationRatio,
    /// Coreset (k-center greedy) on the model's embeddings of the pool, with the labelled
    /// items' embeddings as the first centres; reads no predictions (seeded first pick when
    /// nothing is labelled).
    Coreset,
    /// BADGE: k-means++ seeding on the gradient embeddings of the last layer (the model's
    /// embeddings and the MC-averaged predictions; seeded).
    Badge,
}

/// The parameters a heuristic may take; each kind reads the ones it needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeuristicParams {
    /// Items per query: BatchBALD's batch and the sampled heuristics' batch.
    pub query_size: Option<usize>,
    /// Seed of the random draws (random order, sampling, BatchBALD's configurations).
    pub seed: u64,
    /// Temperature of the sampled heuristics (1 by default).
    pub temperature: f64,
    /// BatchBALD's sampled label configurations per pick (`None`: its default, 500).
    pub batch_bald_samples: Option<usize>,
}

impl HeuristicParams {
    /// No query size, seed 0, temperature 1, BatchBALD's default samples.
    pub fn new() -> Self {
        Self {
            query_size: None,
            seed: 0,
            temperature: 1.0,
            batch_bald_samples: None,
        }
    }

    /// With `query_size` items per query.
    #[must_use]
    pub fn with_query_size(mut self, query_size: usize) -> Self {
        self.query_size = Some(query_size);
        self
    }

    /// With `seed`.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// With the sampled heuristics' `temperature`.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// With BatchBALD's `samples` label configurations per pick.
    #[must_use]
    pub fn with_batch_bald_samples(mut self, samples: usize) -> Self {
        self.batch_bald_samples = Some(samples);
        self
    }
}

impl Default for HeuristicParams {
    fn default() -> Self {
        Self::new()
    }
}

impl HeuristicKind {
    /// Every kind, in the order the help lists them.
    pub const ALL: &'static [HeuristicKind] = &[
        Self::Bald,
        Self::Entropy,
        Self::BatchBald,
        Self::Random,
        Self::PowerBald,
        Self::SoftmaxBald,
        Self::RankBald,
        Self::Margin,
        Self::Certainty,
        Self::Variance,
        Self::Epig,
        Self::VariationRatio,
        Self::Coreset,
        Self::Badge,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bald => "bald",
            Self::Entropy => "entropy",
            Self::BatchBald => "batch-bald",
            Self::Random => "random",
            Self::PowerBald => "power-bald",
            Self::SoftmaxBald => "softmax-bald",
            Self::RankBald => "rank-bald",
            Self::Margin => "margin",
            Self::Certainty => "certainty",
            Self::Variance => "variance",
            Self::Epig => "epig",
            Self::VariationRatio => "variation-ratio",
            Self::Coreset => "coreset",
            Self::Badge => "badge",
        }
    }

    /// Whether it picks a whole batch of the query size at once (BatchBALD, the sampled
    /// heuristics) rather than ranking the pool: it then needs a query size.
    ///
    /// The one table of this capability: [`build`](Self::build) asks it which kinds need a
    /// query size. Of these kinds, the one whose picks depend on each other (BatchBALD) says
    /// so once built, with its batch, through [`Heuristic::joint_batch`]; the sampled ones draw
    /// their batch from per-item scores, so they have no joint batch.
    pub fn selects_batches(self) -> bool {
        matches!(
            self,
            Self::BatchBald | Self::PowerBald | Self::SoftmaxBald | Self::RankBald
        )
    }

    /// Builds it with `params`.
    ///
    /// # Errors
    /// A batch heuristic without a query size or with a query size of 0, BatchBALD's samples of
    /// 0, a temperature that is not finite and positive.
    pub fn build(self, params: &HeuristicParams) -> Result<Box<dyn Heuristic>> {
        let query_size = || match params.query_size {
            Some(0) => Err(HeuristicError::InvalidParameter {
                name: "query_size",
                reason: format!("{} needs a query size of at least 1", self.name()),
            }),
            Some(k) => Ok(k),
            None => Err(HeuristicError::InvalidParameter {
                name: "query_size",
                reason: format!("{} needs a query size", self.name()),
            }),
        };
        if self.selects_batches() {
            query_size()?;
        }
        let sampled = |rule| -> Result<Box<dyn Heuristic>> {
            Ok(Box::new(StochasticSampling::new(
                Bald,
                rule,
                params.temperature,
                params.seed,
            )?))
        };
        Ok(match self {
            Self::Bald => Box::new(Bald),
            Self::Entropy => Box::new(Entropy),
            Self::BatchBald => {
                let mut batch_bald = BatchBald::new(query_size()?).with_seed(params.seed);
                if let Some(samples) = params.batch_bald_samples {
                    if samples == 0 {
                        return Err(HeuristicError::InvalidParameter {
                            name: "batch_bald_samples",
                            reason: "BatchBALD needs at least 1 sampled configuration".into(),
                        });
                    }
                    batch_bald = batch_bald.with_num_samples(samples);
                }
                Box::new(batch_bald)
            }
            Self::Random => Box::new(Random::new(params.seed)),
            Self::PowerBald => sampled(SamplingRule::Power)?,
            Self::SoftmaxBald => sampled(SamplingRule::Softmax)?,
            Self::RankBald => sampled(SamplingRule::Rank)?,
            Self::Margin => Box::new(Margin),
            Self::Certainty => Box::new(Certainty),
            Self::Variance => Box::new(Variance),
            Self::Epig => Box::new(Epig),
            Self::VariationRatio => Box::new(VariationRatio),
            Self::Coreset => Box::new(CoreSet::new(params.seed)),
            Self::Badge => Box::new(Badge::new(params.seed)),
        })
    }
}

impl fmt::Display for HeuristicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HeuristicKind {
    type Err = HeuristicError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| HeuristicError::InvalidParameter {
                name: "heuristic",
                reason: format!(
                    "unknown heuristic '{s}'; use one of {}",
                    Self::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name_and_serde() {
        for &kind in HeuristicKind::ALL {
            assert_eq!(kind.name().parse::<HeuristicKind>().expect("known"), kind);
            assert_eq!(kind.to_string(), kind.name());
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        let err = "bold".parse::<HeuristicKind>().expect_err("unknown");
        assert!(
            err.to_string().contains("use one of bald, entropy"),
            "{err}"
        );
    }

    #[test]
    fn every_kind_builds_with_a_query_size_and_reports_its_name() {
        let params = HeuristicParams::new().with_query_size(3).with_seed(7);
        for &kind in HeuristicKind::ALL {
            let heuristic = kind.build(&params).expect("builds");
            assert!(!heuristic.name().is_empty());
            // What a heuristic needs comes from the heuristic itself, not from its name.
            let reads_no_predictions = [HeuristicKind::Random, HeuristicKind::Coreset];
            assert_eq!(
                heuristic.needs_predictions(),
                !reads_no_predictions.contains(&kind)
            );
            assert_eq!(heuristic.needs_target(), kind == HeuristicKind::Epig);
            assert_eq!(
                heuristic.needs_embeddings(),
                matches!(kind, HeuristicKind::Coreset | HeuristicKind::Badge)
            );
        }
    }

    #[test]
    fn only_batch_kinds_need_a_query_size_and_only_batch_bald_selects_jointly() {
        let params = HeuristicParams::new().with_query_size(3);
        for &kind in HeuristicKind::ALL {
            let heuristic = kind.build(&params).expect("builds");
            // A joint batch is a batch of the query size, of a kind that selects batches.
            match heuristic.joint_batch() {
                Some(batch) => assert!(kind.selects_batches() && batch == 3, "{kind}"),
                None => assert_ne!(kind, HeuristicKind::BatchBald),
            }
            assert_eq!(
                kind.build(&HeuristicParams::new()).is_ok(),
                !kind.selects_batches(),
                "{kind}"
            );
        }
    }

    #[test]
    fn identities_tell_every_parameter_that_ranks_apart() {
        let params = HeuristicParams::new().with_query_size(3).with_seed(7);
        let identity = |kind: HeuristicKind, params: HeuristicParams| {
            kind.build(&params).expect("builds").identity()
        };
        let all: Vec<_> = HeuristicKind::ALL
            .iter()
            .map(|&kind| identity(kind, params))
            .collect();
        for (i, (a, &kind)) in all.iter().zip(HeuristicKind::ALL).enumerate() {
            let built = kind.build(&params).expect("builds");
            assert_eq!(a["name"], built.name(), "{kind}");
            assert!(all[i + 1..].iter().all(|b| a != b), "{kind}: {a}");
            // Saved and read back, an identity is equal to itself (floats included).
            let json = serde_json::to_string(a).expect("serialises");
            let read: serde_json::Value = serde_json::from_str(&json).expect("parses");
            assert_eq!(&read, a);
        }
        let power = |p: HeuristicParams| identity(HeuristicKind::PowerBald, p);
        assert_eq!(power(params), power(params));
        assert_ne!(power(params), power(params.with_temperature(0.1)));
        assert_ne!(power(params), power(params.with_seed(8)));
        assert_eq!(power(params)["temperature"], 1.0);
        let batch_bald = |p: HeuristicParams| identity(HeuristicKind::BatchBald, p);
        assert_ne!(
            batch_bald(params),
            batch_bald(params.with_batch_bald_samples(9))
        );
        assert_ne!(batch_bald(params), batch_bald(params.with_query_size(4)));
        let random = |p: HeuristicParams| identity(HeuristicKind::Random, p);
        assert_ne!(random(params), random(params.with_seed(8)));
        // The name does not tell the base heuristic of power sampling; the identity does.
        let power_entropy = StochasticSampling::power(Entropy, 1.0, 7).expect("valid");
        assert_eq!(power_entropy.name(), "power-sampling");
        assert_ne!(power_entropy.identity(), power(params));
        let combine = |weights: Vec<f32>| {
            crate::CombineHeuristics::new(vec![Box::new(Bald), Box::new(Entropy)], weights)
                .expect("valid")
                .identity()
        };
        assert_ne!(combine(vec![1.0, 1.0]), combine(vec![1.0, 3.0]));
        assert_eq!(combine(vec![1.0, 1.0]), combine(vec![2.0, 2.0]));
    }

    #[test]
    fn bad_parameters_are_errors_naming_them() {
        let reason = |kind: HeuristicKind, params: HeuristicParams| match kind.build(&params) {
            Err(HeuristicError::InvalidParameter { name, reason }) => format!("{name}: {reason}"),
            Err(other) => panic!("expected an invalid parameter, got {other}"),
            Ok(_) => panic!("expected an error for {kind}"),
        };
        for &kind in HeuristicKind::ALL.iter().filter(|k| k.selects_batches()) {
            assert!(reason(kind, HeuristicParams::new()).contains("needs a query size"));
            let zero = HeuristicParams::new().with_query_size(0);
            assert!(reason(kind, zero).contains("at least 1"));
        }
        let params = HeuristicParams::new().with_query_size(2);
        assert!(
            reason(HeuristicKind::BatchBald, params.with_batch_bald_samples(0))
                .starts_with("batch_bald_samples")
        );
        assert!(
            HeuristicKind::SoftmaxBald
                .build(&params.with_temperature(-1.0))
                .is_err()
        );
        // Per-item heuristics need no query size.
        assert!(HeuristicKind::Bald.build(&HeuristicParams::new()).is_ok());
    }
}
