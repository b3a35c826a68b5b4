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
///
/// Items are named by their position in the scored predictions (the pool view or chunk that
/// was scored), not by a `PoolIndex` or `DatasetIndex`: a caller maps a position back through
/// the view it scored (e.g. `PoolView::dataset_index`).
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    /// Positions in the scored predictions, most informative first.
    positions: Vec<usize>,
    scores: Vec<f32>,
}

impl Ranking {
    /// Orders pool items by `scores` (indexed by position in the scored predictions) in the
    /// direction `orientation`; equal scores keep their order, so the ranking is the same on
    /// every backend.
    ///
    /// # Errors
    /// A non-finite score.
    pub fn from_scores(scores: Vec<f32>, orientation: Orientation) -> Result<Self> {
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore { item, value });
        }
        // Keys whose unsigned order is the informativeness order (most informative first).
        let key = |s: f32| -> u32 {
            let bits = (if s == 0.0 { 0.0f32 } else { s }).to_bits();
            let ascending = if bits >> 31 == 1 {
                !bits
            } else {
                bits | 1 << 31
            };
            match orientation {
                Orientation::HigherIsMoreInformative => !ascending,
                Orientation::LowerIsMoreInformative => ascending,
            }
        };
        let keyed: Vec<(u32, u32)> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (key(s), i as u32))
            .collect();
        // A stable radix sort from position order: equal scores keep position order.
        let positions = radix_sort_by_key(keyed)
            .into_iter()
            .map(|(_, i)| i as usize)
            .collect();
        Ok(Self { positions, scores })
    }

    /// Builds a ranking from an order decided elsewhere (e.g. by sampling), checking that
    /// `positions` (positions in the scored predictions, most informative first) is a
    /// permutation of `0..scores.len()`.
    ///
    /// # Errors
    /// Indices that are not such a permutation.
    pub fn from_order(positions: Vec<usize>, scores: Vec<f32>) -> Result<Self> {
        let mut seen = vec![false; scores.len()];
        for &i in &positions {
            if i >= seen.len() || std::mem::replace(&mut seen[i], true) {
                return Err(HeuristicError::InvalidParameter {
                    name: "positions",
                    reason: format!(
                        "not a permutation of 0..{}: index {i} out of range or repeated",
                        scores.len()
                    ),
                });
            }
        }
        if positions.len() != scores.len() {
            return Err(HeuristicError::InvalidParameter {
                name: "positions",
                reason: format!("{} indices for {} scores", positions.len(), scores.len()),
            });
        }
        Ok(Self { positions, scores })
    }

    /// A joint selection's ranking: `picks` (positions, in selection order) first, then
    /// the other items by `pool_scores` (per-item scores, indexed by position) in the
    /// direction `orientation`. The ranking's scores are each pick's `pick_scores` and 0 for
    /// items not picked (as baal's BatchBALD).
    ///
    /// # Errors
    /// Picks and pick scores of different lengths, a pick outside the pool or picked twice,
    /// or a non-finite score.
    pub fn picks_first(
        picks: Vec<usize>,
        pick_scores: Vec<f32>,
        pool_scores: Vec<f32>,
        orientation: Orientation,
    ) -> Result<Self> {
        if picks.len() != pick_scores.len() {
            return Err(HeuristicError::InvalidParameter {
                name: "pick_scores",
                reason: format!("{} scores for {} picks", pick_scores.len(), picks.len()),
            });
        }
        let n = pool_scores.len();
        let rest = Self::from_scores(pool_scores, orientation)?;
        let mut scores = vec![0.0; n];
        let mut picked = vec![false; n];
        for (&i, &s) in picks.iter().zip(&pick_scores) {
            if i >= n {
                return Err(HeuristicError::InvalidParameter {
                    name: "picks",
                    reason: format!("pick {i} is outside the pool of {n} items"),
                });
            }
            scores[i] = s;
            picked[i] = true;
        }
        let mut order = picks;
        order.extend(rest.positions.iter().filter(|&&i| !picked[i]));
        Self::from_order(order, scores)
    }

    /// Every item's position in the scored predictions (the pool view or chunk that was
    /// scored), not a `PoolIndex`/`DatasetIndex`, most informative first.
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// The score of every pool item, indexed by position in the scored predictions (not by
    /// rank).
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// The positions of the `k` most informative items (all of them if the pool is smaller).
    pub fn top(&self, k: usize) -> &[usize] {
        &self.positions[..k.min(self.positions.len())]
    }

    /// Number of ranked items.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether no item was ranked.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Splits into `(positions, scores)`.
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.positions, self.scores)
    }
}

/// Sorts `(key, value)` pairs by key, stably: four passes of an 8-bit counting sort (linear
/// time; a comparison sort of 50000 scores costs several times more).
fn radix_sort_by_key(mut items: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    let mut buffer = vec![(0u32, 0u32); items.len()];
    for shift in [0u32, 8, 16, 24] {
        let digit = |k: u32| ((k >> shift) & 0xff) as usize;
        let mut counts = [0usize; 257];
        for &(k, _) in &items {
            counts[digit(k) + 1] += 1;
        }
        if counts.contains(&items.len()) {
            continue; // every key shares this digit
        }
        for d in 0..256 {
            counts[d + 1] += counts[d];
        }
        for &item in &items {
            let slot = &mut counts[digit(item.0)];
            buffer[*slot] = item;
            *slot += 1;
        }
        std::mem::swap(&mut items, &mut buffer);
    }
    items
}

/// A batch of pool items chosen together, in the order they were chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// The chosen items' positions in the scored predictions (the pool view or chunk that
    /// was scored), not `PoolIndex`es/`DatasetIndex`es, in selection order.
    pub positions: Vec<usize>,
    /// The score of each pick, aligned with `positions`.
    pub scores: Vec<f32>,
    /// Every pool item's score under the heuristic's per-item scoring
    /// ([`Heuristic::scores`](crate::Heuristic::scores): BALD for BatchBALD, the base
    /// heuristic's for sampling), indexed by position: what a caller averages or logs
    /// without scoring the pool a second time.
    pub pool_scores: Vec<f32>,
}

impl Selection {
    /// The first `k` items of a ranking.
    pub fn from_ranking(ranking: &Ranking, k: usize) -> Result<Self> {
        check_query_size(k, ranking.len())?;
        let positions = ranking.top(k).to_vec();
        let scores = positions.iter().map(|&i| ranking.scores[i]).collect();
        Ok(Self {
            positions,
            scores,
            pool_scores: ranking.scores.clone(),
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
        assert_eq!(high.positions(), &[1, 3, 0, 4, 5, 2]);
        let low = Ranking::from_scores(scores, Orientation::LowerIsMoreInformative)
            .expect("finite scores");
        assert_eq!(low.positions(), &[2, 4, 5, 0, 1, 3]);
        assert_eq!(low.top(2), &[2, 4]);
    }

    #[test]
    fn radix_sort_matches_a_stable_comparison_sort() {
        let mut state = 12345u64;
        let scores: Vec<f32> = (0..5000)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Few distinct values, negatives and zeros of both signs: many ties.
                ((state >> 33) % 41) as f32 / 4.0 - 5.0
            })
            .chain([0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE])
            .collect();
        for orientation in [
            Orientation::HigherIsMoreInformative,
            Orientation::LowerIsMoreInformative,
        ] {
            let ranking = Ranking::from_scores(scores.clone(), orientation).expect("finite");
            // A stable comparison sort, with -0.0 equal to 0.0 (x + 0.0 maps -0.0 to 0.0).
            let mut expected: Vec<usize> = (0..scores.len()).collect();
            expected.sort_by(|&a, &b| {
                let (a, b) = (scores[a] + 0.0, scores[b] + 0.0);
                match orientation {
                    Orientation::HigherIsMoreInformative => b.total_cmp(&a),
                    Orientation::LowerIsMoreInformative => a.total_cmp(&b),
                }
            });
            assert_eq!(ranking.positions(), expected.as_slice());
        }
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
