//! Leases of pool items to annotators.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use baal_data::DatasetIndex;

/// A lease's identifier, unique within a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub u64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An item handed to an annotator until `expires_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The lease.
    pub id: LeaseId,
    /// The item to label.
    pub item: DatasetIndex,
    /// Who holds it.
    pub annotator: String,
    /// When it returns to the queue if not answered.
    pub expires_at: Instant,
    /// The item's score in the ranking it was served from.
    pub score: f32,
    /// The model version of that ranking.
    pub model_version: u64,
}

/// What a queue refuses, and why; a refused call changes nothing.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueueError {
    /// No lease has this id (never given, or given by another queue).
    #[error("lease {0} is unknown")]
    UnknownLease(LeaseId),
    /// The lease expired or was given back (skipped): its item went back to the queue.
    #[error("lease {0} expired or was given back; ask for the next item again")]
    Expired(LeaseId),
    /// The lease belongs to another annotator.
    #[error("lease {lease} belongs to another annotator, not {annotator}")]
    Foreign {
        /// The lease.
        lease: LeaseId,
        /// Who tried to use it.
        annotator: String,
    },
    /// The item is not labelled, so there is nothing to undo.
    #[error("item {0} is not labelled through this queue")]
    NotLabelled(DatasetIndex),
    /// A ranking that lists an item twice, or a score per item that does not match.
    #[error("invalid ranking: {0}")]
    InvalidRanking(String),
}

/// Hands out the items of a ranking, most informative first, one lease per item at a time.
///
/// Time is passed in (`now`), so that expiry is tested without sleeping. An annotator holds at
/// most one lease: asking again before answering returns the same lease. A completed lease
/// completes again without effect (a retried request), so a label is recorded once.
#[derive(Debug)]
pub struct LeaseQueue {
    ranking: Vec<(DatasetIndex, f32)>,
    /// Every item of `ranking` before this position is labelled: `next` starts here instead
    /// of stepping over the labelled head of the ranking at every call.
    labelled_head: usize,
    model_version: u64,
    ttl: Duration,
    next_id: u64,
    active: HashMap<LeaseId, Lease>,
    leased: HashMap<DatasetIndex, LeaseId>,
    completed: HashMap<LeaseId, Lease>,
    labelled: HashSet<DatasetIndex>,
    skipped: HashMap<String, HashSet<DatasetIndex>>,
}

impl LeaseQueue {
    /// An empty queue whose leases last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ranking: Vec::new(),
            labelled_head: 0,
            model_version: 0,
            ttl,
            next_id: 0,
            active: HashMap::new(),
            leased: HashMap::new(),
            completed: HashMap::new(),
            labelled: HashSet::new(),
            skipped: HashMap::new(),
        }
    }

    /// Swaps in the ranking of model `version` (items most informative first, with their
    /// scores). Leases already given stay valid; items already labelled are never served.
    ///
    /// # Errors
    /// An item listed twice.
    pub fn set_ranking(
        &mut self,
        ranking: Vec<(DatasetIndex, f32)>,
        version: u64,
    ) -> Result<(), QueueError> {
        let mut seen = HashSet::with_capacity(ranking.len());
        if let Some((item, _)) = ranking.iter().find(|(item, _)| !seen.insert(*item)) {
            return Err(QueueError::InvalidRanking(format!(
                "item {item} is listed twice"
            )));
        }
        self.ranking = ranking;
        self.labelled_head = 0;
        self.model_version = version;
        Ok(())
    }

    /// Numbers its leases from `first` on: a service numbers them from the clock at each
    /// start, so that a page left open across a restart holds leases the new queue calls
    /// expired, never leases of other items.
    pub fn with_first_id(mut self, first: u64) -> Self {
        self.next_id = self.next_id.max(first);
        self
    }

    /// The model version of the current ranking.
    pub fn model_version(&self) -> u64 {
        self.model_version
    }

    /// Items labelled through this queue.
    pub fn labelled(&self) -> &HashSet<DatasetIndex> {
        &self.labelled
    }

    /// Marks `items` labelled already (e.g. the seed set, or labels restored after a restart).
    pub fn mark_labelled(&mut self, items: impl IntoIterator<Item = DatasetIndex>) {
        self.labelled.extend(items);
    }

    /// Returns the expired leases' items to the queue.
    fn expire(&mut self, now: Instant) {
        let expired: Vec<LeaseId> = self
            .active
            .values()
            .filter(|lease| lease.expires_at <= now)
            .map(|lease| lease.id)
            .collect();
        for id in expired {
            if let Some(lease) = self.active.remove(&id) {
                self.leased.remove(&lease.item);
            }
        }
    }

    /// The next item for `annotator`: the lease it holds, else the most informative item that
    /// is not labelled, not leased to anyone and not skipped by it; `None` when there is none.
    pub fn next(&mut self, annotator: &str, now: Instant) -> Option<Lease> {
        self.next_except(annotator, None, now)
    }

    /// As [`next`](Self::next), but a lease other than `except`: a page that shows lease
    /// `except` preloads the item after it. An annotator so holds at most two leases.
    pub fn next_except(
        &mut self,
        annotator: &str,
        except: Option<LeaseId>,
        now: Instant,
    ) -> Option<Lease> {
        self.expire(now);
        if let Some(lease) = self
            .active
            .values()
            .filter(|l| l.annotator == annotator && Some(l.id) != except)
            .min_by_key(|l| l.id)
        {
            return Some(lease.clone());
        }
        let skipped = self.skipped.get(annotator);
        while self
            .ranking
            .get(self.labelled_head)
            .is_some_and(|(item, _)| self.labelled.contains(item))
        {
            self.labelled_head += 1;
        }
        let &(item, score) = self.ranking[self.labelled_head..]
            .iter()
            .find(|(item, _)| {
                !self.labelled.contains(item)
                    && !self.leased.contains_key(item)
                    && !skipped.is_some_and(|s| s.contains(item))
            })?;
        let id = LeaseId(self.next_id);
        self.next_id += 1;
        let lease = Lease {
            id,
            item,
            annotator: annotator.to_string(),
            expires_at: now + self.ttl,
            score,
            model_version: self.model_version,
        };
        self.active.insert(id, lease.clone());
        self.leased.insert(item, id);
        Some(lease)
    }

    /// The active lease `id` of `annotator`, or why it cannot be used.
    fn held(&mut self, id: LeaseId, annotator: &str, now: Instant) -> Result<Lease, QueueError> {
        self.expire(now);
        let lease = match (self.active.get(&id), id.0 < self.next_id) {
            (Some(lease), _) => lease,
            (None, true) => return Err(QueueError::Expired(id)),
            (None, false) => return Err(QueueError::UnknownLease(id)),
        };
        if lease.annotator != annotator {
            return Err(QueueError::Foreign {
                lease: id,
                annotator: annotator.to_string(),
            });
        }
        Ok(lease.clone())
    }

    /// What [`complete`](Self::complete) would do with lease `id` of `annotator`, without
    /// doing it: `Ok((lease, false))` for a lease it would complete, `Ok((lease, true))` for one
    /// completed already, or the error it would give.
    ///
    /// # Errors
    /// An unknown, expired or foreign lease.
    pub fn check(
        &mut self,
        id: LeaseId,
        annotator: &str,
        now: Instant,
    ) -> Result<(Lease, bool), QueueError> {
        if let Some(done) = self.completed.get(&id) {
            return if done.annotator == annotator {
                Ok((done.clone(), true))
            } else {
                Err(QueueError::Foreign {
                    lease: id,
                    annotator: annotator.to_string(),
                })
            };
        }
        Ok((self.held(id, annotator, now)?, false))
    }

    /// Ends the lease on `item`, if any (the item was labelled elsewhere, e.g. in Label
    /// Studio): its holder's label is then refused as expired.
    pub fn revoke(&mut self, item: DatasetIndex) {
        if let Some(id) = self.leased.remove(&item) {
            self.active.remove(&id);
        }
    }

    /// Number of items leased now.
    pub fn leased(&self) -> usize {
        self.leased.len()
    }

    /// Completes lease `id` of `annotator` (its item is labelled) and returns it. Completing
    /// the same lease again returns it again and changes nothing.
    ///
    /// # Errors
    /// An unknown, expired or foreign lease.
    pub fn complete(
        &mut self,
        id: LeaseId,
        annotator: &str,
        now: Instant,
    ) -> Result<Lease, QueueError> {
        if let Some(done) = self.completed.get(&id) {
            return if done.annotator == annotator {
                Ok(done.clone())
            } else {
                Err(QueueError::Foreign {
                    lease: id,
                    annotator: annotator.to_string(),
                })
            };
        }
        let lease = self.held(id, annotator, now)?;
        self.active.remove(&id);
        self.leased.remove(&lease.item);
        self.labelled.insert(lease.item);
        self.completed.insert(id, lease.clone());
        Ok(lease)
    }

    /// Gives lease `id` back without a label: the item goes to other annotators, never again
    /// to this one.
    ///
    /// # Errors
    /// An unknown, expired or foreign lease.
    pub fn skip(&mut self, id: LeaseId, annotator: &str, now: Instant) -> Result<(), QueueError> {
        let lease = self.held(id, annotator, now)?;
        self.active.remove(&id);
        self.leased.remove(&lease.item);
        self.skipped
            .entry(annotator.to_string())
            .or_default()
            .insert(lease.item);
        Ok(())
    }

    /// Takes back the label of `item` (an undo): it returns to the queue.
    ///
    /// # Errors
    /// The item is not labelled.
    pub fn unlabel(&mut self, item: DatasetIndex) -> Result<(), QueueError> {
        if !self.labelled.remove(&item) {
            return Err(QueueError::NotLabelled(item));
        }
        // The item may sit in the labelled head: scan from the start again.
        self.labelled_head = 0;
        self.completed.retain(|_, lease| lease.item != item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(n: usize) -> (LeaseQueue, Instant) {
        let mut queue = LeaseQueue::new(Duration::from_secs(60));
        let ranking = (0..n)
            .map(|i| (DatasetIndex::new(i), (n - i) as f32))
            .collect();
        queue.set_ranking(ranking, 1).expect("valid ranking");
        (queue, Instant::now())
    }

    #[test]
    fn two_annotators_never_hold_the_same_item() {
        let (mut queue, now) = queue(3);
        let a = queue.next("ann", now).expect("an item");
        let b = queue.next("bob", now).expect("an item");
        assert_eq!(
            (a.item.get(), b.item.get()),
            (0, 1),
            "most informative first"
        );
        assert_eq!(a.score, 3.0);
        // Asking again before answering gives the same lease.
        assert_eq!(queue.next("ann", now), Some(a.clone()));
        let c = queue.next("cid", now).expect("the last item");
        assert_eq!(c.item.get(), 2);
        assert_eq!(queue.next("dee", now), None, "everything is leased");
    }

    #[test]
    fn a_page_preloads_a_second_lease_and_no_more() {
        let (mut queue, now) = queue(4);
        let a = queue.next("ann", now).expect("an item");
        let b = queue
            .next_except("ann", Some(a.id), now)
            .expect("a second item");
        assert_ne!(a.item, b.item);
        assert_eq!(queue.next_except("ann", Some(a.id), now), Some(b.clone()));
        assert_eq!(queue.next("ann", now), Some(a.clone()), "the oldest first");
        queue.complete(a.id, "ann", now).expect("labels");
        assert_eq!(queue.next("ann", now), Some(b.clone()), "the preloaded one");
        assert_eq!(queue.leased(), 1);
    }

    #[test]
    fn an_expired_lease_returns_its_item_and_cannot_be_completed() {
        let (mut queue, now) = queue(2);
        let a = queue.next("ann", now).expect("an item");
        let later = now + Duration::from_secs(61);
        let b = queue.next("bob", later).expect("the expired item again");
        assert_eq!(b.item, a.item);
        assert_eq!(
            queue.complete(a.id, "ann", later),
            Err(QueueError::Expired(a.id))
        );
        assert!(
            queue.labelled().is_empty(),
            "a refused call changes nothing"
        );
        assert_eq!(
            queue.complete(b.id, "bob", later).expect("valid").item,
            a.item
        );
    }

    #[test]
    fn a_label_answers_one_lease_once() {
        let (mut queue, now) = queue(3);
        let a = queue.next("ann", now).expect("an item");
        assert!(matches!(
            queue.complete(a.id, "bob", now),
            Err(QueueError::Foreign { .. })
        ));
        assert_eq!(
            queue.complete(LeaseId(99), "ann", now),
            Err(QueueError::UnknownLease(LeaseId(99)))
        );
        let done = queue.complete(a.id, "ann", now).expect("valid");
        // A retried request: the same answer, nothing labelled twice.
        assert_eq!(queue.complete(a.id, "ann", now).expect("idempotent"), done);
        assert_eq!(queue.labelled().len(), 1);
        let next = queue.next("ann", now).expect("the next item");
        assert_ne!(next.item, a.item);
    }

    #[test]
    fn skip_passes_the_item_to_others_and_undo_returns_it() {
        let (mut queue, now) = queue(2);
        let a = queue.next("ann", now).expect("an item");
        queue.skip(a.id, "ann", now).expect("skips");
        let b = queue.next("ann", now).expect("another item");
        assert_ne!(b.item, a.item, "never the skipped item again");
        let c = queue.next("bob", now).expect("the skipped item");
        assert_eq!(c.item, a.item);
        queue.complete(c.id, "bob", now).expect("labels");
        assert!(queue.unlabel(b.item).is_err(), "b is not labelled");
        queue.unlabel(c.item).expect("undo");
        assert!(!queue.labelled().contains(&c.item));
        let again = queue.next("bob", now).expect("back in the queue");
        assert_eq!(again.item, c.item);
    }

    #[test]
    fn a_new_ranking_keeps_leases_and_skips_labelled_items() {
        let (mut queue, now) = queue(4);
        let a = queue.next("ann", now).expect("an item");
        queue.mark_labelled([DatasetIndex::new(3)]);
        let reversed = (0..4)
            .rev()
            .map(|i| (DatasetIndex::new(i), i as f32))
            .collect();
        queue.set_ranking(reversed, 2).expect("valid");
        let b = queue.next("bob", now).expect("an item");
        assert_eq!(b.item.get(), 2, "3 is labelled, 0 is leased");
        assert_eq!(b.model_version, 2);
        assert_eq!(
            queue
                .complete(a.id, "ann", now)
                .expect("still valid")
                .model_version,
            1
        );
        let twice = vec![(DatasetIndex::new(1), 0.0), (DatasetIndex::new(1), 0.0)];
        assert!(matches!(
            queue.set_ranking(twice, 3),
            Err(QueueError::InvalidRanking(_))
        ));
        assert_eq!(queue.model_version(), 2);
    }

    #[test]
    fn errors_name_leases_by_number() {
        assert_eq!(
            QueueError::Expired(LeaseId(7)).to_string(),
            "lease 7 expired or was given back; ask for the next item again"
        );
        assert_eq!(
            QueueError::UnknownLease(LeaseId(99)).to_string(),
            "lease 99 is unknown"
        );
    }
}
