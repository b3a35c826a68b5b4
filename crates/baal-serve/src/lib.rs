//! The labelling service's core (issue 12, first piece): which pool item each annotator labels
//! next. [`LeaseQueue`] hands out the most informative items of the current ranking as leases
//! with an expiry, so that two annotators never hold the same item, an abandoned item returns
//! to the queue, and a label answers exactly one lease. The HTTP API, the web page and the
//! Label Studio backend build on it.

mod queue;

pub use queue::{Lease, LeaseId, LeaseQueue, QueueError};
