//! Sharded scoring: a pool too large for one machine is split into `N` contiguous shards, each
//! scored by its own process (a Kubernetes Indexed Job, a SLURM array task), and a merge makes
//! the selection.
//!
//! Shard `i` of `N` scores pool positions `⌊len·i/N⌋ .. ⌊len·(i+1)/N⌋` ([`Shard::range`]). An
//! item's MC masks are keyed by its dataset index, so its scores do not depend on the shard it
//! falls in, and merging `N` shards gives the selection of one process scoring the whole pool.
//! A shard keeps one score per item and, for joint heuristics (BatchBALD), its own best `M`
//! candidates with their predictions; the pool's best `M` are among the union.
//!
//! On disk a shard result is a folder: `scores.npy` (`f32 [n]`), `indices.npy` (the items'
//! dataset indices, `i64 [n]`), for joint heuristics `candidates.npy` (pool positions,
//! `i64 [m]`), `candidate_scores.npy` and `candidate_probs.npy` (`f32 [m, C, T]`), and
//! `manifest.json`, written last, with the settings and each file's SHA-256.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use baal_bayesian::McSampler;
use baal_data::{NpyArray, npy, write_file_atomically};
use baal_heuristics::{Candidates, Heuristic, HeuristicKind, HeuristicParams, PoolScores};
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::active_loop::score_pool;
use crate::error::{ActiveError, Result};
use crate::traits::Predictor;

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
/// [`PoolScorer`](baal_heuristics::PoolScorer).
///
/// The sampler should draw consistent samples when the heuristic needs them
/// ([`Heuristic::needs_consistent_samples`]); heuristics that need a target set (EPIG) are
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
    if pool.len() != dataset_indices.len() {
        return Err(ActiveError::ShapeMismatch {
            what: "dataset indices of the pool",
            expected: format!("one per pool item ({})", pool.len()),
            got: vec![dataset_indices.len()],
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
    let keys = dataset_indices[range.clone()].to_vec();
    let part = Part {
        pool,
        range: range.clone(),
    };
    let scores = if heuristic.needs_predictions() {
        let keyed = sampler.clone().with_item_keys(Some(keys.clone().into()));
        score_pool(
            predictor,
            &keyed,
            &part,
            heuristic.as_ref(),
            None,
            plan.candidates,
        )
        .map_err(|error| match error {
            ActiveError::Heuristic(e) => ActiveError::Heuristic(e.offset_item(range.start)),
            other => other,
        })?
    } else {
        PoolScores::new(vec![0.0; range.len()], None, 0, heuristic.orientation())?
    };
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

/// The items `range` of a pool, as a dataset.
struct Part<'a, I> {
    pool: &'a dyn Dataset<I>,
    range: Range<usize>,
}

impl<I> Dataset<I> for Part<'_, I> {
    fn get(&self, index: usize) -> std::result::Result<I, burn::data::dataset::DatasetError> {
        self.pool.get(self.range.start + index)
    }

    fn len(&self) -> usize {
        self.range.len()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, in hex: what a shard's settings record of the model weights and data.
///
/// # Errors
/// The file cannot be read.
pub fn file_sha256(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| ActiveError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| ActiveError::io(path, e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

const MANIFEST: &str = "manifest.json";

impl ShardScores {
    /// Writes the shard's folder `dir` (created if missing): the data files first, each
    /// atomically, then `manifest.json` with their checksums, so that a folder with a manifest
    /// is whole.
    ///
    /// # Errors
    /// The folder cannot be written, or the candidates cannot be read back from the device.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ActiveError::io(dir, e))?;
        let mut files = BTreeMap::new();
        let indices: Vec<i64> = self.dataset_indices.iter().map(|&i| i as i64).collect();
        let mut put = |name: &str, bytes: Vec<u8>| -> Result<()> {
            write_file_atomically(&dir.join(name), &bytes)?;
            files.insert(name.to_string(), sha256_hex(&bytes));
            Ok(())
        };
        put(
            "scores.npy",
            npy::encode_f32(&[self.scores.len()], self.scores.scores()),
        )?;
        put("indices.npy", npy::encode_i64(&[indices.len()], &indices))?;
        if let Some(candidates) = self.scores.candidates() {
            let positions: Vec<i64> = candidates
                .pool_indices()
                .iter()
                .map(|&i| i as i64)
                .collect();
            put(
                "candidates.npy",
                npy::encode_i64(&[positions.len()], &positions),
            )?;
            put(
                "candidate_scores.npy",
                npy::encode_f32(&[candidates.len()], candidates.scores()),
            )?;
            let (dims, values) = match candidates.probs() {
                Some(probs) => (
                    probs.dims().to_vec(),
                    probs.clone().try_into_vec_as::<f32>().map_err(|e| {
                        ActiveError::InvalidConfig {
                            what: "candidate predictions",
                            reason: format!("cannot read them back from the device: {e:?}"),
                        }
                    })?,
                ),
                None => (vec![0, 0, 0], Vec::new()),
            };
            put("candidate_probs.npy", npy::encode_f32(&dims, &values))?;
        }
        self.manifest.files = files;
        let json = serde_json::to_vec_pretty(&self.manifest)?;
        write_file_atomically(&dir.join(MANIFEST), &json)?;
        Ok(())
    }

    /// Reads a shard's folder, checking every file against the manifest's checksum;
    /// candidate predictions go to `device`.
    ///
    /// # Errors
    /// A missing or altered file, a manifest of another format, or arrays that disagree with
    /// the manifest.
    pub fn read(dir: &Path, device: &Device) -> Result<Self> {
        let shards = |reason: String| ActiveError::Shards(format!("{}: {reason}", dir.display()));
        let manifest_path = dir.join(MANIFEST);
        let manifest: ShardManifest = serde_json::from_slice(
            &std::fs::read(&manifest_path).map_err(|e| ActiveError::io(&manifest_path, e))?,
        )
        .map_err(|e| shards(format!("{MANIFEST} is not a shard manifest: {e}")))?;
        if manifest.format != SHARD_FORMAT_VERSION {
            return Err(shards(format!(
                "format {} (this build reads {SHARD_FORMAT_VERSION})",
                manifest.format
            )));
        }
        let load = |name: &str| -> Result<NpyArray> {
            let expected = manifest
                .files
                .get(name)
                .ok_or_else(|| shards(format!("the manifest lists no {name}")))?;
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| ActiveError::io(&path, e))?;
            if &sha256_hex(&bytes) != expected {
                return Err(shards(format!(
                    "{name} does not match its checksum in the manifest (altered or partly \
                     written)"
                )));
            }
            NpyArray::parse(&bytes).map_err(|reason| shards(format!("{name}: {reason}")))
        };
        let n = manifest.range.len();
        let scores = load("scores.npy")?.to_f32();
        let indices = load("indices.npy")?
            .to_class_labels()
            .map_err(|reason| shards(format!("indices.npy: {reason}")))?;
        if scores.len() != n || indices.len() != n {
            return Err(shards(format!(
                "{} scores and {} indices for the {n} items of its range",
                scores.len(),
                indices.len()
            )));
        }
        let orientation = manifest.heuristic.build(&manifest.params())?.orientation();
        let candidates = if manifest.files.contains_key("candidates.npy") {
            let positions = load("candidates.npy")?
                .to_class_labels()
                .map_err(|reason| shards(format!("candidates.npy: {reason}")))?;
            let candidate_scores = load("candidate_scores.npy")?.to_f32();
            let probs = load("candidate_probs.npy")?;
            let probs = match *probs.shape.as_slice() {
                [0, ..] => None,
                [m, c, t] => Some(Tensor::<3>::from_data(
                    TensorData::new(probs.to_f32(), [m, c, t]),
                    device,
                )),
                _ => {
                    return Err(shards(format!(
                        "candidate_probs.npy has shape {:?}, not [M, C, T]",
                        probs.shape
                    )));
                }
            };
            Some(Candidates::new(positions, candidate_scores, probs)?)
        } else {
            None
        };
        let scores = PoolScores::new(scores, candidates, manifest.candidate_limit, orientation)?;
        Ok(Self {
            manifest,
            dataset_indices: indices,
            scores,
            source: Some(dir.to_path_buf()),
        })
    }

    fn name(&self) -> String {
        match &self.source {
            Some(dir) => format!(
                "shard {}/{} ({})",
                self.manifest.shard.index,
                self.manifest.shard.count,
                dir.display()
            ),
            None => format!(
                "shard {}/{}",
                self.manifest.shard.index, self.manifest.shard.count
            ),
        }
    }
}

/// The selection made from merged shards.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergedSelection {
    /// The heuristic.
    pub heuristic: HeuristicKind,
    /// Items in the pool.
    pub pool_len: usize,
    /// Shards merged.
    pub shards: usize,
    /// Dataset indices of the selected items, in selection order.
    pub query: Vec<usize>,
    /// Their scores (BatchBALD: the batch's mutual information after each pick).
    pub scores: Vec<f32>,
}

/// Checks that `shards` are the `N` shards of one pool scored with the same settings, each
/// once, then selects the query as one process scoring the whole pool would: top-k of the
/// per-item scores, or BatchBALD over the union of the shards' candidates.
///
/// # Errors
/// No shard, a missing or repeated shard, shards of different settings (naming the first
/// setting that differs), or ranges that do not tile the pool.
pub fn merge_shards(mut shards: Vec<ShardScores>) -> Result<MergedSelection> {
    let Some(first) = shards.first() else {
        return Err(ActiveError::Shards("no shard to merge".into()));
    };
    let count = first.manifest.shard.count;
    let reference = first.manifest.clone();
    let reference_name = first.name();
    for shard in &shards {
        if let Some(what) = difference(&reference, &shard.manifest) {
            return Err(ActiveError::Shards(format!(
                "{} and {reference_name} differ in {what}",
                shard.name()
            )));
        }
    }
    shards.sort_by_key(|s| s.manifest.shard.index);
    for pair in shards.windows(2) {
        if pair[0].manifest.shard.index == pair[1].manifest.shard.index {
            return Err(ActiveError::Shards(format!(
                "{} is given twice: {} and {}",
                format_args!("shard {}/{count}", pair[0].manifest.shard.index),
                pair[0].name(),
                pair[1].name()
            )));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !shards.iter().any(|s| s.manifest.shard.index == *i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(ActiveError::Shards(format!(
            "shard {} of the {count} is missing",
            missing.join(", ")
        )));
    }
    for shard in &shards {
        let expected = shard.manifest.shard.range(reference.pool_len);
        if shard.manifest.range != expected {
            return Err(ActiveError::Shards(format!(
                "{} covers pool items {:?}, not {expected:?}",
                shard.name(),
                shard.manifest.range
            )));
        }
    }
    let dataset_indices: Vec<usize> = shards
        .iter()
        .flat_map(|s| s.dataset_indices.iter().copied())
        .collect();
    let scores = PoolScores::concat(shards.into_iter().map(|s| s.scores).collect())?;
    let heuristic = reference.heuristic.build(&reference.params())?;
    let k = reference.query_size.min(scores.len());
    let selection = if heuristic.needs_predictions() {
        scores.select(heuristic.as_ref(), k)?
    } else {
        heuristic.select_without_predictions(scores.len(), k)?
    };
    Ok(MergedSelection {
        heuristic: reference.heuristic,
        pool_len: reference.pool_len,
        shards: count,
        query: selection
            .pool_indices
            .iter()
            .map(|&p| dataset_indices[p])
            .collect(),
        scores: selection.scores,
    })
}

/// The first field in which two manifests differ, other than the shard index, its range
/// and its files.
fn difference(a: &ShardManifest, b: &ShardManifest) -> Option<String> {
    let fields: [(&str, bool); 9] = [
        ("format", a.format == b.format),
        ("shard count", a.shard.count == b.shard.count),
        ("pool size", a.pool_len == b.pool_len),
        ("heuristic", a.heuristic == b.heuristic),
        ("query size", a.query_size == b.query_size),
        ("heuristic seed", a.heuristic_seed == b.heuristic_seed),
        ("temperature", a.temperature == b.temperature),
        (
            "BatchBALD samples",
            a.batch_bald_samples == b.batch_bald_samples,
        ),
        ("candidates", a.candidate_limit == b.candidate_limit),
    ];
    if let Some((name, _)) = fields.iter().find(|(_, same)| !same) {
        return Some((*name).to_string());
    }
    let keys: std::collections::BTreeSet<&String> =
        a.settings.keys().chain(b.settings.keys()).collect();
    keys.into_iter()
        .find(|key| a.settings.get(*key) != b.settings.get(*key))
        .map(|key| {
            format!(
                "{key} ({} vs {})",
                b.settings.get(key).map_or("unset", String::as_str),
                a.settings.get(key).map_or("unset", String::as_str)
            )
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
