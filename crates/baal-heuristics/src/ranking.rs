//! Rankings and selections: what leaves the device after scoring.

use crate::error::{HeuristicError, Result};

/// Which end of a heuristic's scores is the informative one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    /// The highest score is the most informative item (BALD, entropy, variance, ...).
    HigherIsMoreInformative,
    /// The lowest score is the most informative item (margin, certainty).
    LowerIsMoreInformative,
}

impl Orientation {
    /// Whether score `a` is strictly more informative than score `b`.
    pub fn prefers(self, a: f32, b: f32) -> bool {
        match self {
            Orientation::HigherIsMoreInformative => a > b,
            Orientation::LowerIsMoreInformative => a < b,
        }
    }
}

/// The pool ordered from the most to the least informative item, with every item's score.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    pool_indices: Vec<usize>,
    scores: Vec<f32>,
}

impl Ranking {
    /// Orders pool items by `scores` (indexed by pool index) in the direction `orientation`;
    /// equal scores keep pool order, so the ranking is the same on every backend.
    ///
    /// # Errors
    /// A non-finite score.
    pub fn from_scores(scores: Vec<f32>, orientation: Orientation) -> Result<Self> {
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore { item, value });
        }
        let mut pool_indices: Vec<usize> = (0..scores.len()).collect();
        // Sort on keys whose integer order is the float order: cheaper than `total_cmp`
        // closures, and the index breaks ties deterministically.
        let key = |s: f32| -> u32 {
            let bits = s.to_bits();
            if bits >> 31 == 1 {
                !bits
            } else {
                bits | 1 << 31
            }
        };
        let mut keyed: Vec<(u32, u32)> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let k = key(if s == 0.0 { 0.0 } else { s });
                let k = match orientation {
                    Orientation::HigherIsMoreInformative => !k,
                    Orientation::LowerIsMoreInformative => k,
                };
                (k, i as u32)
            })
            .collect();
        keyed.sort_unstable();
        for (slot, (_, i)) in pool_indices.iter_mut().zip(keyed) {
            *slot = i as usize;
        }
        Ok(Self {
            pool_indices,
            scores,
        })
    }

    /// Builds a ranking from an order decided elsewhere (e.g. by sampling), checking that
    /// `pool_indices` is a permutation of `0..scores.len()`.
    ///
    /// # Errors
    /// Indices that are not such a permutation.
    pub fn from_order(pool_indices: Vec<usize>, scores: Vec<f32>) -> Result<Self> {
        let mut seen = vec![false; scores.len()];
        for &i in &pool_indices {
            if i >= seen.len() || std::mem::replace(&mut seen[i], true) {
                return Err(HeuristicError::InvalidParameter {
                    name: "pool_indices",
                    reason: format!(
                        "not a permutation of 0..{}: index {i} out of range or repeated",
                        scores.len()
                    ),
                });
            }
        }
        if pool_indices.len() != scores.len() {
            return Err(HeuristicError::InvalidParameter {
                name: "pool_indices",
                reason: format!("{} indices for {} scores", pool_indices.len(), scores.len()),
            });
        }
        Ok(Self {
            pool_indices,
            scores,
        })
    }

    /// Pool indices, most informative first.
    pub fn pool_indices(&self) -> &[usize] {
        &self.pool_indices
    }

    /// The score of every pool item, indexed by pool index (not by rank).
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// The `k` most informative pool indices (all of them if the pool is smaller).
    pub fn top(&self, k: usize) -> &[usize] {
        &self.pool_indices[..k.min(self.pool_indices.len())]
    }

    /// Number of ranked items.
    pub fn len(&self) -> usize {
        self.pool_indices.len()
    }

    /// Whether no item was ranked.
    pub fn is_empty(&self) -> bool {
        self.pool_indices.is_empty()
    }

    /// Splits into `(pool_indices, scores)`.
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.pool_indices, self.scores)
    }
}

/// A batch of pool items chosen together, in the order they were chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Chosen pool indices, in selection order.
    pub pool_indices: Vec<usize>,
    /// The score of each pick, aligned with `pool_indices`.
    pub scores: Vec<f32>,
}

impl Selection {
    /// The first `k` items of a ranking.
    pub fn from_ranking(ranking: &Ranking, k: usize) -> Result<Self> {
        check_query_size(k, ranking.len())?;
        let pool_indices = ranking.top(k).to_vec();
        let scores = pool_indices.iter().map(|&i| ranking.scores[i]).collect();
        Ok(Self {
            pool_indices,
            scores,
        })
    }
}

/// Errors unless `1 <= k <= available`.
pub(crate) fn check_query_size(k: usize, available: usize) -> Result<()> {
    if k == 0 {
        return Err(HeuristicError::InvalidParameter {
            name: "query_size",
            reason: "must be at least 1".into(),
        });
    }
    if k > available {
        return Err(HeuristicError::QueryTooLarge {
            requested: k,
            available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_orientation_with_stable_ties() {
        let scores = vec![0.5, 2.0, -1.0, 2.0, 0.0, -0.0];
        let high = Ranking::from_scores(scores.clone(), Orientation::HigherIsMoreInformative)
            .expect("finite scores");
        assert_eq!(high.pool_indices(), &[1, 3, 0, 4, 5, 2]);
        let low = Ranking::from_scores(scores, Orientation::LowerIsMoreInformative)
            .expect("finite scores");
        assert_eq!(low.pool_indices(), &[2, 4, 5, 0, 1, 3]);
        assert_eq!(low.top(2), &[2, 4]);
    }

    #[test]
    fn rejects_non_finite_scores() {
        let err = Ranking::from_scores(vec![0.0, f32::NAN], Orientation::HigherIsMoreInformative)
            .expect_err("NaN score");
        assert!(matches!(
            err,
            HeuristicError::NonFiniteScore { item: 1, .. }
        ));
    }

    #[test]
    fn from_order_checks_permutation() {
        assert!(Ranking::from_order(vec![1, 0], vec![0.0, 1.0]).is_ok());
        assert!(Ranking::from_order(vec![1, 1], vec![0.0, 1.0]).is_err());
        assert!(Ranking::from_order(vec![0], vec![0.0, 1.0]).is_err());
        assert!(Ranking::from_order(vec![0, 2], vec![0.0, 1.0]).is_err());
    }
}
