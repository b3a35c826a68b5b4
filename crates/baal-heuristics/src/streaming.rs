//! Scoring a pool chunk by chunk: what a selection needs is kept, the predictions are not.
//!
//! A [`PoolScorer`] takes the predictions of a pool in consecutive chunks (as the MC sampler
//! makes them) and keeps one score per item, plus, for heuristics that select jointly
//! (BatchBALD), the predictions of a bounded candidate set: the `M` items with the best
//! per-item scores (BALD for BatchBALD). Memory beyond the pool's own data is `O(N)` scores
//! plus `O(M·C·T)` candidate values, whatever `N` is. The result, [`PoolScores`], ranks or
//! selects like the heuristic on the whole pool; with `M ≥ N` the selection is the same.
//!
//! Scores of several parts of a pool (the shards of a cluster job) join with
//! [`PoolScores::concat`], which keeps the best `M` candidates of their union: the pool's top
//! `M` are among them, since each part kept its own top `M`.

use burn::tensor::{Int, Tensor, TensorData};

use crate::base::Heuristic;
use crate::error::{HeuristicError, Result};
use crate::predictions::Predictions;
use crate::ranking::{Orientation, Ranking, Selection, check_query_size};

/// The default size of the candidate set of a joint selection: this many candidates per item
/// of the query (BatchBALD picking 10 items keeps the 500 best items by BALD).
pub const DEFAULT_CANDIDATES_PER_PICK: usize = 50;

/// The candidate set of a joint selection: the best items by per-item score, with their
/// predictions `[M, C, T]`, in position order.
#[derive(Clone, Debug)]
pub struct Candidates {
    /// Positions in the scored predictions, ascending.
    positions: Vec<usize>,
    scores: Vec<f32>,
    /// `[m, C, T]` on the predictions' device; `None` while empty.
    probs: Option<Tensor<3>>,
}

impl Candidates {
    fn empty() -> Self {
        Self {
            positions: Vec::new(),
            scores: Vec::new(),
            probs: None,
        }
    }

    /// Builds a candidate set from its parts (read from a file, for instance): `positions`
    /// in the scored predictions (not `PoolIndex`es), their scores and predictions rows.
    ///
    /// # Errors
    /// Lengths that disagree with the predictions' rows, a position that repeats, or a
    /// non-finite score.
    pub fn new(positions: Vec<usize>, scores: Vec<f32>, probs: Option<Tensor<3>>) -> Result<Self> {
        let rows = probs.as_ref().map_or(0, |p| p.dims()[0]);
        if positions.len() != scores.len() || positions.len() != rows {
            return Err(HeuristicError::ShapeMismatch {
                what: "candidates",
                expected: format!(
                    "as many predictions rows as indices and scores ({})",
                    positions.len()
                ),
                got: vec![positions.len(), scores.len(), rows],
            });
        }
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore {
                item: positions[item],
                value,
            });
        }
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(HeuristicError::InvalidParameter {
                name: "candidates",
                reason: format!("pool item {} is a candidate twice", pair[0]),
            });
        }
        Ok(Self {
            positions,
            scores,
            probs,
        })
    }

    /// The candidates' positions in the scored predictions (the pool view or chunks that
    /// were scored, in order), not `PoolIndex`es/`DatasetIndex`es; ascending.
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// Their per-item scores.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// Their predictions `[M, C, T]`, `None` when there is no candidate.
    pub fn probs(&self) -> Option<&Tensor<3>> {
        self.probs.as_ref()
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there is no candidate.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Adds rows, then keeps the best `limit` of all (best score first, then lowest
    /// position) in position order.
    fn extend_and_keep(
        &mut self,
        mut parts: Vec<Candidates>,
        limit: usize,
        orientation: Orientation,
    ) {
        parts.insert(0, std::mem::replace(self, Self::empty()));
        let mut positions = Vec::new();
        let mut scores = Vec::new();
        let mut tensors = Vec::new();
        for part in parts {
            positions.extend(part.positions);
            scores.extend(part.scores);
            tensors.extend(part.probs);
        }
        let mut order: Vec<usize> = (0..positions.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            better(orientation, scores[a], scores[b]).then(positions[a].cmp(&positions[b]))
        });
        order.truncate(limit);
        order.sort_unstable_by_key(|&row| positions[row]);
        let probs = match tensors.len() {
            0 => None,
            _ => {
                let all = if tensors.len() == 1 {
                    tensors.pop().expect("one tensor")
                } else {
                    Tensor::cat(tensors, 0)
                };
                let rows = order.len();
                (rows > 0).then(|| {
                    let device = all.device();
                    let index = Tensor::<1, Int>::from_data(
                        TensorData::new(order.iter().map(|&r| r as i64).collect(), [rows]),
                        &device,
                    );
                    all.select(0, index)
                })
            }
        };
        *self = Self {
            positions: order.iter().map(|&row| positions[row]).collect(),
            scores: order.iter().map(|&row| scores[row]).collect(),
            probs,
        };
    }
}

/// `Less` when score `a` ranks before score `b`.
fn better(orientation: Orientation, a: f32, b: f32) -> std::cmp::Ordering {
    match orientation {
        Orientation::HigherIsMoreInformative => b.total_cmp(&a),
        Orientation::LowerIsMoreInformative => a.total_cmp(&b),
    }
}

/// What a selection needs from a pool's predictions: every item's score and, for joint
/// selection, the candidate set. Made by a [`PoolScorer`] or joined from parts with
/// [`PoolScores::concat`].
#[derive(Clone, Debug)]
pub struct PoolScores {
    scores: Vec<f32>,
    candidates: Option<Candidates>,
    candidate_limit: usize,
    orientation: Orientation,
}

impl PoolScores {
    /// Builds pool scores from their parts: `scores` indexed by position in the scored
    /// predictions, `candidates` (for joint selection) with positions below `scores.len()`.
    ///
    /// # Errors
    /// A non-finite score, a candidate outside the pool, more candidates than `candidate_limit`.
    pub fn new(
        scores: Vec<f32>,
        candidates: Option<Candidates>,
        candidate_limit: usize,
        orientation: Orientation,
    ) -> Result<Self> {
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore { item, value });
        }
        if let Some(candidates) = &candidates {
            if let Some(&item) = candidates.positions.iter().find(|&&i| i >= scores.len()) {
                return Err(HeuristicError::InvalidParameter {
                    name: "candidates",
                    reason: format!(
                        "candidate {item} is outside the pool of {} items",
                        scores.len()
                    ),
                });
            }
            if candidates.len() > candidate_limit {
                return Err(HeuristicError::InvalidParameter {
                    name: "candidates",
                    reason: format!(
                        "{} candidates for a limit of {candidate_limit}",
                        candidates.len()
                    ),
                });
            }
        }
        Ok(Self {
            scores,
            candidates,
            candidate_limit,
            orientation,
        })
    }

    /// Joins the scores of consecutive parts of a pool (part 0 first): positions of part
    /// `i` follow those of parts `0 .. i`. Joint candidates are the best
    /// `candidate_limit` of the parts' candidates.
    ///
    /// # Errors
    /// No part, or parts that disagree on the orientation, the candidate limit or whether
    /// they hold candidates.
    pub fn concat(parts: Vec<PoolScores>) -> Result<Self> {
        let Some(first) = parts.first() else {
            return Err(HeuristicError::InvalidParameter {
                name: "parts",
                reason: "no pool scores to join".into(),
            });
        };
        let (orientation, limit, joint) = (
            first.orientation,
            first.candidate_limit,
            first.candidates.is_some(),
        );
        if let Some((i, _)) = parts.iter().enumerate().find(|(_, p)| {
            p.orientation != orientation
                || p.candidate_limit != limit
                || p.candidates.is_some() != joint
        }) {
            return Err(HeuristicError::InvalidParameter {
                name: "parts",
                reason: format!(
                    "part {i} differs from part 0 in orientation, candidate limit or joint candidates"
                ),
            });
        }
        let mut scores = Vec::with_capacity(parts.iter().map(|p| p.scores.len()).sum());
        let mut shifted = Vec::new();
        for part in parts {
            let offset = scores.len();
            scores.extend(part.scores);
            if let Some(mut candidates) = part.candidates {
                for index in &mut candidates.positions {
                    *index += offset;
                }
                shifted.push(candidates);
            }
        }
        let candidates = if joint {
            let mut all = Candidates::empty();
            all.extend_and_keep(shifted, limit, orientation);
            Some(all)
        } else {
            None
        };
        Ok(Self {
            scores,
            candidates,
            candidate_limit: limit,
            orientation,
        })
    }

    /// Every pool item's per-item score, indexed by position in the scored predictions.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// The candidate set of a joint selection (`None` for per-item heuristics).
    pub fn candidates(&self) -> Option<&Candidates> {
        self.candidates.as_ref()
    }

    /// The largest number of candidates kept.
    pub fn candidate_limit(&self) -> usize {
        self.candidate_limit
    }

    /// Which end of the scores is informative.
    pub fn orientation(&self) -> Orientation {
        self.orientation
    }

    /// Number of pool items scored.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no item was scored.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The `k` items to label next, in selection order, as `heuristic` would select them from
    /// the whole pool (joint heuristics select among the candidates).
    ///
    /// # Errors
    /// `k` is zero or larger than the pool (or than the candidate set), or the heuristic's
    /// own error.
    pub fn select(&self, heuristic: &dyn Heuristic, k: usize) -> Result<Selection> {
        check_query_size(k, self.scores.len())?;
        match &self.candidates {
            None => heuristic.select_scores(self.scores.clone(), k),
            Some(candidates) => {
                let probs = candidates
                    .probs
                    .clone()
                    .ok_or(HeuristicError::QueryTooLarge {
                        requested: k,
                        available: 0,
                    })?;
                let selection = heuristic.select(&Predictions::from_probs(probs)?, None, k)?;
                Ok(Selection {
                    positions: selection
                        .positions
                        .iter()
                        .map(|&row| candidates.positions[row])
                        .collect(),
                    scores: selection.scores,
                    pool_scores: self.scores.clone(),
                })
            }
        }
    }

    /// The whole pool ordered as `heuristic`'s ranking of it: per-item heuristics by their
    /// scores; joint heuristics their picks first (see [`Heuristic::joint_batch`]), then the
    /// rest of the pool by per-item score.
    ///
    /// # Errors
    /// As [`PoolScores::select`].
    pub fn rank(&self, heuristic: &dyn Heuristic) -> Result<Ranking> {
        match (&self.candidates, heuristic.joint_batch()) {
            (Some(candidates), Some(batch)) => {
                let k = batch.min(candidates.len()).min(self.scores.len());
                let selection = self.select(heuristic, k)?;
                Ranking::picks_first(
                    selection.positions,
                    selection.scores,
                    self.scores.clone(),
                    self.orientation,
                )
            }
            _ => heuristic.rank_scores(self.scores.clone()),
        }
    }
}

/// Scores a pool chunk by chunk, keeping one score per item and, for joint heuristics, a
/// bounded candidate set (see [`PoolScores`]).
///
/// ```
/// use baal_heuristics::{BatchBald, Heuristic, PoolScorer, Predictions};
/// use burn::tensor::{Device, Distribution, Tensor};
/// use burn::tensor::activation::softmax;
///
/// # fn main() -> Result<(), baal_heuristics::HeuristicError> {
/// let device = Device::default();
/// let probs = softmax(Tensor::<3>::random([40, 3, 8], Distribution::Default, &device), 1);
/// let batch_bald = BatchBald::new(4);
/// // Keep the 10 best items by BALD as BatchBALD's candidates.
/// let mut scorer = PoolScorer::new(&batch_bald, None, Some(10))?;
/// for start in (0..40).step_by(16) {
///     let len = 16.min(40 - start);
///     scorer.push(&Predictions::from_probs(probs.clone().narrow(0, start, len))?)?;
/// }
/// let scores = scorer.finish();
/// assert_eq!(scores.candidates().map(|c| c.len()), Some(10));
/// assert_eq!(scores.select(&batch_bald, 4)?.positions.len(), 4);
/// # Ok(())
/// # }
/// ```
pub struct PoolScorer<'a> {
    heuristic: &'a dyn Heuristic,
    target: Option<&'a Predictions>,
    scores: Vec<f32>,
    joint: Option<JointState>,
}

/// Candidates of a joint selection while the pool streams by.
struct JointState {
    limit: usize,
    kept: Candidates,
    /// Rows waiting to be compacted into `kept`.
    pending: Vec<Candidates>,
    pending_rows: usize,
    /// The worst score among `limit` kept candidates, once there are that many: a later item
    /// (higher position) needs a strictly better score to enter.
    threshold: Option<f32>,
}

impl<'a> PoolScorer<'a> {
    /// A scorer for `heuristic` (with `target` predictions for heuristics that need them).
    ///
    /// `candidates` bounds the candidate set of joint heuristics
    /// ([`Heuristic::joint_batch`]); `None` keeps [`DEFAULT_CANDIDATES_PER_PICK`] per item of
    /// the heuristic's batch. Per-item heuristics keep no candidates.
    ///
    /// # Errors
    /// A heuristic that needs a target set without one, one that does not read predictions
    /// (score it with [`Heuristic::select_without_predictions`]), or a candidate bound below
    /// the heuristic's batch.
    pub fn new(
        heuristic: &'a dyn Heuristic,
        target: Option<&'a Predictions>,
        candidates: Option<usize>,
    ) -> Result<Self> {
        if !heuristic.needs_predictions() {
            return Err(HeuristicError::InvalidParameter {
                name: "heuristic",
                reason: format!(
                    "{} does not read predictions; select with select_without_predictions",
                    heuristic.name()
                ),
            });
        }
        if heuristic.needs_target() && target.is_none() {
            return Err(HeuristicError::MissingTarget {
                heuristic: heuristic.name(),
            });
        }
        let joint = match heuristic.joint_batch() {
            None => None,
            Some(batch) => {
                let limit =
                    candidates.unwrap_or(batch.max(1).saturating_mul(DEFAULT_CANDIDATES_PER_PICK));
                if limit < batch || limit == 0 {
                    return Err(HeuristicError::InvalidParameter {
                        name: "candidates",
                        reason: format!(
                            "{} selects {batch} items jointly; keep at least that many candidates, \
                             got {limit}",
                            heuristic.name()
                        ),
                    });
                }
                Some(JointState {
                    limit,
                    kept: Candidates::empty(),
                    pending: Vec::new(),
                    pending_rows: 0,
                    threshold: None,
                })
            }
        };
        Ok(Self {
            heuristic,
            target,
            scores: Vec::new(),
            joint,
        })
    }

    /// Scores the next chunk of the pool: its items follow the items pushed so far.
    ///
    /// # Errors
    /// The heuristic's error, a non-finite score (naming the item's position), or
    /// predictions a joint heuristic cannot keep (not `[n, C, T]` probabilities).
    pub fn push(&mut self, chunk: &Predictions) -> Result<()> {
        let offset = self.scores.len();
        let scores = self.heuristic.scores(chunk, self.target)?;
        if scores.len() != chunk.len() {
            return Err(HeuristicError::ShapeMismatch {
                what: "chunk scores",
                expected: format!("one score per item ({})", chunk.len()),
                got: vec![scores.len()],
            });
        }
        if let Some((item, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(HeuristicError::NonFiniteScore {
                item: offset + item,
                value,
            });
        }
        let orientation = self.heuristic.orientation();
        if let Some(joint) = &mut self.joint {
            let entering: Vec<usize> = (0..scores.len())
                .filter(|&i| {
                    joint.threshold.is_none_or(|worst| {
                        better(orientation, scores[i], worst) == std::cmp::Ordering::Less
                    })
                })
                .collect();
            if !entering.is_empty() {
                let [n, c, p, t] = chunk.values().dims();
                if p != 1 {
                    return Err(HeuristicError::PositionsUnsupported {
                        heuristic: self.heuristic.name(),
                        positions: p,
                    });
                }
                let probs = chunk.values().clone().reshape([n, c, t]);
                let rows = entering.len();
                let probs = if rows == n {
                    probs
                } else {
                    let index = Tensor::<1, Int>::from_data(
                        TensorData::new(entering.iter().map(|&i| i as i64).collect(), [rows]),
                        &probs.device(),
                    );
                    probs.select(0, index)
                };
                joint.pending.push(Candidates {
                    positions: entering.iter().map(|&i| offset + i).collect(),
                    scores: entering.iter().map(|&i| scores[i]).collect(),
                    probs: Some(probs),
                });
                joint.pending_rows += rows;
                if joint.pending_rows >= joint.limit {
                    joint.compact(orientation);
                }
            }
        }
        self.scores.extend(scores);
        Ok(())
    }

    /// Number of pool items scored so far.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no chunk was pushed.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The pool's scores (and candidates), ready to rank or select.
    pub fn finish(self) -> PoolScores {
        let orientation = self.heuristic.orientation();
        let (candidates, limit) = match self.joint {
            None => (None, 0),
            Some(mut joint) => {
                joint.compact(orientation);
                (Some(joint.kept), joint.limit)
            }
        };
        PoolScores {
            scores: self.scores,
            candidates,
            candidate_limit: limit,
            orientation,
        }
    }
}

impl JointState {
    fn compact(&mut self, orientation: Orientation) {
        let pending = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.kept.extend_and_keep(pending, self.limit, orientation);
        if self.kept.len() == self.limit {
            self.threshold = self
                .kept
                .scores
                .iter()
                .copied()
                .max_by(|&a, &b| better(orientation, a, b));
        }
    }
}
