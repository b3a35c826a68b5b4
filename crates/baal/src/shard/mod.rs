//! Sharded scoring, the tool's side: a pool too large for one machine is split into `N`
//! contiguous shards, each scored by its own process (a Kubernetes Indexed Job, a SLURM array
//! task; `baal predict --shard`), and a merge makes the selection (`baal merge`).
//!
//! Shard `i` of `N` scores pool positions `⌊len·i/N⌋ .. ⌊len·(i+1)/N⌋` ([`Shard::range`]). An
//! item's MC masks are keyed by its dataset index, so its scores do not depend on the shard it
//! falls in, and merging `N` shards gives the selection of one process scoring the whole pool.
//! A shard keeps one score per item and, for joint heuristics (BatchBALD), its own best `M`
//! candidates with their predictions; the pool's best `M` are among the union.
//!
//! The scoring itself is the library's ([`score_pool_range`] in baal-active, for any
//! [`Predictor`]); this module adds what a tool needs around it: which shard a process is
//! ([`Shard::parse`], [`Shard::from_env`] for the schedulers' variables), the shard's folder
//! and its manifest ([`ShardScores::write`] / [`ShardScores::read`]), and the checked merge
//! ([`merge_shards`]).
//!
//! On disk a shard result is a folder: `scores.npy` (`f32 [n]`), `indices.npy` (the items'
//! dataset indices, `i64 [n]`), for joint heuristics `candidates.npy` (pool positions,
//! `i64 [m]`), `candidate_scores.npy` and `candidate_probs.npy` (`f32 [m, C, T]`), and
//! `manifest.json`, written last, with the settings and each file's SHA-256.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use baal_active::{ActiveError, Predictor, Result, score_pool_range};
use baal_bayesian::McSampler;
use baal_heuristics::{HeuristicKind, HeuristicParams, PoolScores};
use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

mod files;
mod merge;

/// SHA-256 of a file, in hex: what a shard's settings record of the model weights and data.
pub use baal_data::checksum::file_sha256;
pub use merge::{MergedSelection, merge_shards};

/// Version of the shard folder's layout.
pub const SHARD_FORMAT_VERSION: u32 = 1;

/// Shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards the pool is split into.
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// `count` is 0 or `index` is not below it.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(ActiveError::InvalidConfig {
                what: "shard",
                reason: format!("shard {index} of {count}: the index must be below the count"),
            });
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N` (shard `I` of `N`, from 0), or `auto` to read them from the scheduler's
    /// environment ([`Shard::from_env`]).
    ///
    /// # Errors
    /// Text that is neither, or an index not below the count.
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim() == "auto" {
            return Self::from_env(|name| std::env::var(name).ok());
        }
        let bad = || ActiveError::InvalidConfig {
            what: "shard",
            reason: format!("'{text}' is not I/N (shard I of N, from 0) or auto"),
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index = index.trim().parse().map_err(|_| bad())?;
        let count = count.trim().parse().map_err(|_| bad())?;
        Self::new(index, count)
    }

    /// The shard a cluster scheduler gave this process, from its environment (`var` reads a
    /// variable):
    ///
    /// - SLURM job arrays: `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` (0 if unset)
    ///   of `SLURM_ARRAY_TASK_COUNT`;
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` of `BAAL_SHARD_COUNT` (Kubernetes
    ///   does not tell a pod the Job's completions: set the variable to the same number);
    /// - `BAAL_SHARD_INDEX` of `BAAL_SHARD_COUNT`, for any other scheduler.
    ///
    /// # Errors
    /// None of these is set, a value is not a number, or the index is not below the count.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|value| {
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| ActiveError::InvalidConfig {
                            what: "shard",
                            reason: format!("{name}={value} is not a non-negative integer"),
                        })
                })
                .transpose()
        };
        let (index, count) = if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or(ActiveError::InvalidConfig {
                what: "shard",
                reason: "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into(),
            })?;
            (id.checked_sub(min), count)
        } else {
            let index = match number("JOB_COMPLETION_INDEX")? {
                Some(index) => index,
                None => number("BAAL_SHARD_INDEX")?.ok_or(ActiveError::InvalidConfig {
                    what: "shard",
                    reason: "--shard auto found none of SLURM_ARRAY_TASK_ID (SLURM), \
                             JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or BAAL_SHARD_INDEX"
                        .into(),
                })?,
            };
            let count = number("BAAL_SHARD_COUNT")?.ok_or(ActiveError::InvalidConfig {
                what: "shard",
                reason: "set BAAL_SHARD_COUNT to the number of shards (a Kubernetes Job's \
                         completions)"
                    .into(),
            })?;
            (Some(index), count)
        };
        let index = index.ok_or(ActiveError::InvalidConfig {
            what: "shard",
            reason: "SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN".into(),
        })?;
        Self::new(index, count)
    }

    /// The pool positions of this shard in a pool of `len` items: contiguous, sizes differing
    /// by at most one, together covering the pool once.
    pub fn range(&self, len: usize) -> Range<usize> {
        let at = |i: usize| (len as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

/// What a shard was made with. Shards merge only when everything but the shard index agrees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// [`SHARD_FORMAT_VERSION`].
    pub format: u32,
    /// Which shard.
    pub shard: Shard,
    /// Items in the whole pool.
    pub pool_len: usize,
    /// Pool positions this shard scored.
    pub range: Range<usize>,
    /// The heuristic.
    pub heuristic: HeuristicKind,
    /// Items to select.
    pub query_size: usize,
    /// Seed of the heuristic's draws.
    pub heuristic_seed: u64,
    /// The sampled heuristics' temperature.
    pub temperature: f64,
    /// BatchBALD's sampled configurations per pick (`None`: its default).
    pub batch_bald_samples: Option<usize>,
    /// Candidates kept by a joint heuristic (0 for the others).
    pub candidate_limit: usize,
    /// Everything else that must agree: model, weights' checksum, data, MC iterations, the
    /// sampler's seed, ... (chosen by the caller).
    pub settings: BTreeMap<String, String>,
    /// Each data file of the folder and its SHA-256 (hex).
    pub files: BTreeMap<String, String>,
}

impl ShardManifest {
    /// The heuristic's parameters.
    pub fn params(&self) -> HeuristicParams {
        let mut params = HeuristicParams::new()
            .with_query_size(self.query_size)
            .with_seed(self.heuristic_seed)
            .with_temperature(self.temperature);
        params.batch_bald_samples = self.batch_bald_samples;
        params
    }
}

/// One shard's result: its manifest, the dataset index of each item and the scores.
#[derive(Clone, Debug)]
pub struct ShardScores {
    /// Settings and checksums.
    pub manifest: ShardManifest,
    /// The dataset index of each scored item, in pool order.
    pub dataset_indices: Vec<usize>,
    /// Scores, with pool positions relative to the shard's first item.
    pub scores: PoolScores,
    /// The folder it was read from, for error messages.
    pub source: Option<PathBuf>,
}

/// How to score a shard: the heuristic, its query and the settings that must agree.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    /// Which shard.
    pub shard: Shard,
    /// The heuristic and its parameters (the query size is required).
    pub heuristic: HeuristicKind,
    /// Its parameters.
    pub params: HeuristicParams,
    /// Candidates for a joint heuristic (`None`: its default).
    pub candidates: Option<usize>,
    /// Settings recorded in the manifest (model, weights' checksum, data, ...).
    pub settings: BTreeMap<String, String>,
}

/// Scores shard `plan.shard` of `pool` (whose item `i` has dataset index
/// `dataset_indices[i]`) with `predictor` under `sampler`: the shard's items are MC-predicted
/// batch by batch, keyed by their dataset indices, and streamed through a
/// [`PoolScorer`](baal_heuristics::PoolScorer) ([`score_pool_range`]).
///
/// The sampler should draw consistent samples when the heuristic needs them
/// ([`Heuristic::needs_consistent_samples`](baal_heuristics::Heuristic::needs_consistent_samples)); heuristics that need a target set (EPIG) are
/// refused.
///
/// # Errors
/// A heuristic the plan cannot build or that needs a target, a pool and index list of
/// different lengths, an empty shard, or a prediction or scoring error.
pub fn score_shard<I>(
    predictor: &dyn Predictor<I>,
    sampler: &McSampler,
    pool: &dyn Dataset<I>,
    dataset_indices: &[usize],
    plan: &ShardPlan,
) -> Result<ShardScores> {
    let heuristic = plan.heuristic.build(&plan.params)?;
    let query_size = plan.params.query_size.ok_or(ActiveError::InvalidConfig {
        what: "shard plan",
        reason: "the query size is required (the merge selects that many items)".into(),
    })?;
    if heuristic.needs_target() {
        return Err(ActiveError::InvalidConfig {
            what: "shard plan",
            reason: format!(
                "{} needs target predictions, which sharded scoring does not take",
                heuristic.name()
            ),
        });
    }
    let range = plan.shard.range(pool.len());
    if range.is_empty() {
        return Err(ActiveError::InvalidConfig {
            what: "shard",
            reason: format!(
                "shard {} of {} holds no item of a pool of {}: use fewer shards",
                plan.shard.index,
                plan.shard.count,
                pool.len()
            ),
        });
    }
    let scores = score_pool_range(
        predictor,
        sampler,
        pool,
        dataset_indices,
        range.clone(),
        heuristic.as_ref(),
        plan.candidates,
    )?;
    let keys = dataset_indices[range.clone()].to_vec();
    Ok(ShardScores {
        manifest: ShardManifest {
            format: SHARD_FORMAT_VERSION,
            shard: plan.shard,
            pool_len: pool.len(),
            range,
            heuristic: plan.heuristic,
            query_size,
            heuristic_seed: plan.params.seed,
            temperature: plan.params.temperature,
            batch_bald_samples: plan.params.batch_bald_samples,
            candidate_limit: scores.candidate_limit(),
            settings: plan.settings.clone(),
            files: BTreeMap::new(),
        },
        dataset_indices: keys,
        scores,
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_pool() {
        for len in [0, 1, 7, 100, 1_000_003] {
            for count in 1..=9 {
                let mut next = 0;
                for index in 0..count {
                    let range = Shard::new(index, count).expect("valid").range(len);
                    assert_eq!(range.start, next);
                    assert!(range.len() <= len / count + 1);
                    next = range.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn shards_parse_from_text_and_the_schedulers_environment() {
        assert_eq!(
            Shard::parse("2/4").expect("valid"),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_string())
            }
        }
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        assert_eq!(
            Shard::from_env(env(&slurm)).expect("slurm"),
            Shard { index: 1, count: 3 }
        );
        let k8s = [("JOB_COMPLETION_INDEX", "0"), ("BAAL_SHARD_COUNT", "8")];
        assert_eq!(
            Shard::from_env(env(&k8s)).expect("k8s"),
            Shard { index: 0, count: 8 }
        );
        let error = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")]))
            .expect_err("no count")
            .to_string();
        assert!(error.contains("BAAL_SHARD_COUNT"), "{error}");
        let error = Shard::from_env(env(&[])).expect_err("nothing").to_string();
        assert!(error.contains("JOB_COMPLETION_INDEX"), "{error}");
        assert!(Shard::from_env(env(&[("BAAL_SHARD_INDEX", "x")])).is_err());
    }
}
