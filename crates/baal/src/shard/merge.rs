//! The merge: checks that shard results are the `N` shards of one pool scored with the same
//! settings, then selects as one process scoring the whole pool would.

use baal_active::{ActiveError, Result};
use baal_heuristics::{HeuristicKind, PoolScores};
use serde::Serialize;

use super::{ShardManifest, ShardScores};

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
            .positions
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::shard::{SHARD_FORMAT_VERSION, Shard};

    fn manifest(index: usize, settings: &[(&str, &str)]) -> ShardManifest {
        let shard = Shard::new(index, 2).expect("valid shard");
        ShardManifest {
            format: SHARD_FORMAT_VERSION,
            shard,
            pool_len: 10,
            range: shard.range(10),
            heuristic: HeuristicKind::Bald,
            query_size: 3,
            heuristic_seed: 0,
            temperature: 1.0,
            batch_bald_samples: None,
            candidate_limit: 0,
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            files: BTreeMap::new(),
        }
    }

    #[test]
    fn difference_names_the_first_field_or_setting_that_differs() {
        let a = manifest(0, &[("model", "cnn"), ("weights sha256", "ab")]);
        let mut b = manifest(1, &[("model", "cnn"), ("weights sha256", "ab")]);
        b.files.insert("scores.npy".into(), "cd".into());
        assert_eq!(
            difference(&a, &b),
            None,
            "index, range and files may differ"
        );
        let other_model = manifest(1, &[("model", "mlp"), ("weights sha256", "ab")]);
        assert_eq!(
            difference(&a, &other_model).as_deref(),
            Some("model (mlp vs cnn)")
        );
        let no_weights = manifest(1, &[("model", "cnn")]);
        assert_eq!(
            difference(&a, &no_weights).as_deref(),
            Some("weights sha256 (unset vs ab)")
        );
        b.query_size = 4;
        b.temperature = 2.0;
        assert_eq!(difference(&a, &b).as_deref(), Some("query size"));
    }

    #[test]
    fn merging_no_shard_is_an_error() {
        let error = merge_shards(Vec::new()).expect_err("nothing to merge");
        assert_eq!(error.to_string(), "shards: no shard to merge");
    }
}
