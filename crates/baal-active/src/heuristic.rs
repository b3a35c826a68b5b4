//! Heuristics by name, rebuilt each step with a seed derived from the step so that a resumed
//! run draws what the original run drew.

use std::fmt;
use std::str::FromStr;

use baal_heuristics::{
    Bald, BatchBald, Certainty, Entropy, Epig, Heuristic, Margin, Random, StochasticSampling,
    Variance,
};
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};

/// The heuristics of baal-heuristics, by their command-line name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeuristicKind {
    /// [`Bald`].
    Bald,
    /// [`Entropy`].
    Entropy,
    /// [`BatchBald`] with the loop's query size.
    BatchBald,
    /// [`Random`].
    Random,
    /// [`StochasticSampling::power`] over BALD, temperature 1.
    PowerBald,
    /// [`Margin`].
    Margin,
    /// [`Certainty`].
    Certainty,
    /// [`Variance`].
    Variance,
    /// [`Epig`] (the loop needs a target set).
    Epig,
}

impl HeuristicKind {
    /// Every kind.
    pub const ALL: [HeuristicKind; 9] = [
        Self::Bald,
        Self::Entropy,
        Self::BatchBald,
        Self::Random,
        Self::PowerBald,
        Self::Margin,
        Self::Certainty,
        Self::Variance,
        Self::Epig,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bald => "bald",
            Self::Entropy => "entropy",
            Self::BatchBald => "batch-bald",
            Self::Random => "random",
            Self::PowerBald => "power-bald",
            Self::Margin => "margin",
            Self::Certainty => "certainty",
            Self::Variance => "variance",
            Self::Epig => "epig",
        }
    }

    /// Whether it reads the model's predictions (random does not).
    pub fn needs_predictions(self) -> bool {
        self != Self::Random
    }

    /// Builds it for one step; `seed` seeds the random ones.
    ///
    /// # Errors
    /// Invalid parameters (e.g. a zero query size for BatchBALD).
    pub fn build(self, query_size: usize, seed: u64) -> Result<Box<dyn Heuristic>> {
        Ok(match self {
            Self::Bald => Box::new(Bald),
            Self::Entropy => Box::new(Entropy),
            Self::BatchBald => {
                if query_size == 0 {
                    return Err(ActiveError::InvalidConfig {
                        what: "query size",
                        reason: "BatchBALD needs a query size of at least 1".into(),
                    });
                }
                Box::new(BatchBald::new(query_size).with_seed(seed))
            }
            Self::Random => Box::new(Random::new(seed)),
            Self::PowerBald => Box::new(StochasticSampling::power(Bald, 1.0, seed)?),
            Self::Margin => Box::new(Margin),
            Self::Certainty => Box::new(Certainty),
            Self::Variance => Box::new(Variance),
            Self::Epig => Box::new(Epig),
        })
    }
}

impl fmt::Display for HeuristicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HeuristicKind {
    type Err = ActiveError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| ActiveError::InvalidConfig {
                what: "heuristic",
                reason: format!(
                    "unknown heuristic '{s}'; use one of {}",
                    Self::ALL.map(HeuristicKind::name).join(", ")
                ),
            })
    }
}
