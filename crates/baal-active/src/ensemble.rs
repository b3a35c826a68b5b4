//! Deep ensembles as a posterior (baal's `EnsembleModelWrapper`): several predictors whose
//! predictions stack along the MC axis.

use std::ops::Range;
use std::sync::Arc;

use baal_bayesian::McSampler;
use burn::data::dataset::{Dataset, DatasetError};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{ActiveError, Result};
use crate::traits::Predictor;

/// Items predicted per window by default: each window holds every member's predictions of
/// its items at once.
pub const DEFAULT_ENSEMBLE_WINDOW: usize = 256;

/// `E` predictors (models trained from different initial weights or seeds, anywhere) as one
/// [`Predictor`]: `[N, C, E × T]`, column `e × T + t` being member `e`'s sample `t`.
///
/// Without MC sampling ([`EnsemblePredictor::new`], baal's default) each member predicts
/// once with its MC layers off ([`McSampler::deterministic`]), so the posterior's samples are
/// the `E` members; [`EnsemblePredictor::with_mc`] lets each member draw the sampler's `T`
/// MC samples instead (`E × T`). Members see the sampler's item keys, so an item's masks do
/// not depend on the window it comes in. Predictions stream window by window: only one
/// window's `[W, C, E × T]` lives at a time.
///
/// [`Trainer::ensemble`](crate::Trainer::ensemble) trains the members and predicts through
/// this type.
pub struct EnsemblePredictor<P> {
    members: Vec<P>,
    mc: bool,
    window: usize,
}

impl<P> EnsemblePredictor<P> {
    /// An ensemble of `members`, each predicting once with its MC layers off.
    ///
    /// # Errors
    /// No member.
    pub fn new(members: Vec<P>) -> Result<Self> {
        if members.is_empty() {
            return Err(ActiveError::InvalidConfig {
                what: "ensemble",
                reason: "an ensemble needs at least one member, got none".into(),
            });
        }
        Ok(Self::from_members(members, false))
    }

    /// Non-empty `members`, with or without MC sampling.
    pub(crate) fn from_members(members: Vec<P>, mc: bool) -> Self {
        Self {
            members,
            mc,
            window: DEFAULT_ENSEMBLE_WINDOW,
        }
    }

    /// Each member draws the sampler's `T` MC samples (`true`: `E × T` in all) instead of
    /// one deterministic prediction.
    #[must_use]
    pub fn with_mc(mut self, mc: bool) -> Self {
        self.mc = mc;
        self
    }

    /// Items per window (at least 1; 0 is taken as 1).
    #[must_use]
    pub fn with_window(mut self, items: usize) -> Self {
        self.window = items.max(1);
        self
    }

    /// The members.
    pub fn members(&self) -> &[P] {
        &self.members
    }
}

/// The sampler an ensemble member predicts with: `sampler` itself when members draw MC
/// samples (`mc`), its deterministic form otherwise.
pub(crate) fn member_sampler(sampler: &McSampler, mc: bool) -> McSampler {
    if mc {
        sampler.clone()
    } else {
        sampler.deterministic()
    }
}

impl<I, P: Predictor<I>> Predictor<I> for EnsemblePredictor<P> {
    fn predict(&self, sampler: &McSampler, items: &dyn Dataset<I>) -> Result<Tensor<3>> {
        let mut parts = Vec::new();
        self.predict_chunks(sampler, items, &mut |_, chunk| {
            parts.push(chunk);
            Ok(())
        })?;
        Ok(Tensor::cat(parts, 0))
    }

    fn predict_chunks(
        &self,
        sampler: &McSampler,
        items: &dyn Dataset<I>,
        on_chunk: &mut dyn FnMut(Range<usize>, Tensor<3>) -> Result<()>,
    ) -> Result<()> {
        let n = items.len();
        if n == 0 {
            return Err(ActiveError::Empty {
                what: "dataset to predict",
            });
        }
        let sampler = member_sampler(sampler, self.mc);
        let mut start = 0;
        while start < n {
            let range = start..(start + self.window).min(n);
            let window = Window {
                items,
                range: range.clone(),
            };
            // Each item keeps its key in the whole dataset, so its masks do not depend on
            // the window.
            let keys: Arc<[usize]> = match sampler.item_keys() {
                Some(keys) => keys[range.clone()].into(),
                None => range.clone().collect(),
            };
            let window_sampler = sampler.clone().with_item_keys(Some(keys));
            let parts = self
                .members
                .iter()
                .map(|member| member.predict(&window_sampler, &window))
                .collect::<Result<Vec<_>>>()?;
            on_chunk(range.clone(), Tensor::cat(parts, 2))?;
            start = range.end;
        }
        Ok(())
    }
}

/// Items `range` of a dataset, as a dataset.
struct Window<'a, I> {
    items: &'a dyn Dataset<I>,
    range: Range<usize>,
}

impl<I> Dataset<I> for Window<'_, I> {
    fn get(&self, index: usize) -> std::result::Result<I, DatasetError> {
        if index >= self.range.len() {
            return Err(DatasetError::new(std::io::Error::other(format!(
                "item {index} of a window of {} items",
                self.range.len()
            ))));
        }
        self.items.get(self.range.start + index)
    }

    fn len(&self) -> usize {
        self.range.len()
    }
}

/// `model` with every float parameter initialised now.
///
/// Burn initialises a parameter lazily, at its first use, from the device generator's state
/// at that moment. Members built one after another after different `Device::seed`s therefore
/// only get those seeds' weights if they are initialised before the next seed: build each
/// member as `initialised(Config::init(&device))` right after seeding.
pub fn initialised<M: Module>(model: M) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // The first read runs the initialiser; every clone shares its result.
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

/// Which approximate posterior a run samples: the model's MC layers, a deep ensemble, or the
/// snapshots of one training (each with or without MC sampling of each member). Written `mc`,
/// `ensemble:E`, `ensemble:E+mc`, `snapshots:K` or `snapshots:K+mc` on command lines
/// (`cargo xtask reproduce --posterior ensemble:5`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Posterior {
    /// One model, `T` MC samples of its stochastic layers (MC dropout or DropConnect).
    #[default]
    Mc,
    /// `members` models trained from different initial weights and seeds.
    Ensemble {
        /// Number of members `E`, at least 2.
        members: usize,
        /// Each member draws `T` MC samples (`E × T` in all) instead of one deterministic
        /// prediction.
        mc: bool,
    },
    /// `snapshots` models from one training ([`Trainer::snapshot_ensemble`](crate::Trainer::snapshot_ensemble)).
    Snapshots {
        /// Number of snapshots `K`, at least 2.
        snapshots: usize,
        /// Each snapshot draws `T` MC samples (`K × T` in all) instead of one deterministic
        /// prediction.
        mc: bool,
    },
}

impl Posterior {
    /// Number of models to build and train: `E` for an ensemble, 1 otherwise (the snapshots
    /// come from one training).
    pub fn members(&self) -> usize {
        match self {
            Self::Mc | Self::Snapshots { .. } => 1,
            Self::Ensemble { members, .. } => *members,
        }
    }

    /// Number of models that predict: `E`, `K` snapshots, or 1.
    pub fn predictors(&self) -> usize {
        match self {
            Self::Mc => 1,
            Self::Ensemble { members, .. } => *members,
            Self::Snapshots { snapshots, .. } => *snapshots,
        }
    }

    /// Whether the members' MC layers sample ([`Trainer::with_ensemble_mc`](crate::Trainer::with_ensemble_mc)).
    pub fn samples_members(&self) -> bool {
        match self {
            Self::Mc => true,
            Self::Ensemble { mc, .. } | Self::Snapshots { mc, .. } => *mc,
        }
    }
}

impl std::fmt::Display for Posterior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mc => f.write_str("mc"),
            Self::Ensemble { members, mc: false } => write!(f, "ensemble:{members}"),
            Self::Ensemble { members, mc: true } => write!(f, "ensemble:{members}+mc"),
            Self::Snapshots { snapshots, mc } => {
                write!(f, "snapshots:{snapshots}{}", if *mc { "+mc" } else { "" })
            }
        }
    }
}

impl std::str::FromStr for Posterior {
    type Err = ActiveError;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: String| ActiveError::InvalidConfig {
            what: "posterior",
            reason,
        };
        if text == "mc" {
            return Ok(Self::Mc);
        }
        let (rest, snapshots) = match (
            text.strip_prefix("ensemble:"),
            text.strip_prefix("snapshots:"),
        ) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => {
                return Err(bad(format!(
                    "expected `mc`, `ensemble:E`, `ensemble:E+mc`, `snapshots:K` or \
                     `snapshots:K+mc`, got `{text}`"
                )));
            }
        };
        let (count, mc) = match rest.strip_suffix("+mc") {
            Some(count) => (count, true),
            None => (rest, false),
        };
        let members: usize = count.parse().map_err(|_| {
            bad(format!(
                "the number of members in `{text}` must be a whole number, got `{count}`"
            ))
        })?;
        if members < 2 {
            return Err(bad(format!(
                "an ensemble needs at least 2 members, got {members} in `{text}`"
            )));
        }
        Ok(if snapshots {
            Self::Snapshots {
                snapshots: members,
                mc,
            }
        } else {
            Self::Ensemble { members, mc }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posteriors_parse_and_print_back() {
        for text in [
            "mc",
            "ensemble:5",
            "ensemble:3+mc",
            "snapshots:4",
            "snapshots:2+mc",
        ] {
            let posterior: Posterior = text.parse().expect(text);
            assert_eq!(posterior.to_string(), text);
        }
        assert_eq!(
            "ensemble:5".parse::<Posterior>().expect("parses"),
            Posterior::Ensemble {
                members: 5,
                mc: false
            }
        );
        for bad in [
            "",
            "ensemble",
            "ensemble:",
            "ensemble:1",
            "ensemble:x",
            "mc:3",
            "ensemble:4+",
            "snapshots:1",
            "snapshot:3",
        ] {
            let error = bad.parse::<Posterior>().expect_err(bad).to_string();
            assert!(error.contains("posterior"), "{bad}: {error}");
        }
    }
}
