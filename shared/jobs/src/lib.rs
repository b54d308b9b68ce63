//! The `JobQueue` port: queued work (sends, discovery) with retries and a dead-letter queue.
//!
//! Two adapters keep the same semantics, checked by one suite (`conformance`, behind the feature of
//! that name):
//! - [`sqs::SqsQueue`]: an SQS standard queue and its dead-letter queue (AWS, worker Lambdas).
//! - [`store_queue::StoreQueue`]: a durable queue kept in the `Store` (the local binary).
//!
//! Delivery is at least once on both: a job whose worker stops before acking comes back after its
//! visibility timeout, so handlers must be idempotent (dedupe on [`Job::id`]). A job that keeps
//! failing moves to the dead-letter queue on the first receive that finds it already received
//! `max_receives` times (SQS's redrive rule), so nothing is retried for ever.
//! [`worker::run_worker`] is the consuming loop the local binary and the tests share.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod forward;
pub mod lambda;
pub mod sqs;
pub mod store_queue;
pub mod worker;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use forward::{Forwarded, Forwarder};
pub use sqs::{parse_lambda_record, SqsQueue};
pub use store_queue::StoreQueue;
pub use worker::{run_worker, HandlerError, WorkerOptions};

/// SQS's longest `DelaySeconds`. Longer schedules wait in the outbox relay, not in the queue.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS's longest visibility timeout; also the longest `release` delay.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// SQS's largest `MaxNumberOfMessages`.
pub const MAX_BATCH: usize = 10;
/// Job ids travel in store keys and receipts: keep them short and printable.
const MAX_ID_LEN: usize = 256;

/// One unit of queued work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `job_…` or an id the caller chooses so that handlers can dedupe a redelivery (or a job the
    /// outbox relay enqueued twice) on it.
    pub id: String,
    /// What the job does: `"send"`, `"discover"`, ...
    pub kind: String,
    pub payload: serde_json::Value,
}

impl Job {
    /// A job with a fresh, time-sortable `job_` id.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Job { id: linkcrm_domain::new_id(linkcrm_domain::IdKind::Job), kind: kind.into(), payload }
    }

    pub(crate) fn validate(&self) -> Result<(), JobError> {
        let printable = |s: &str| s.chars().all(|c| !c.is_control());
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN || !printable(&self.id) {
            return Err(JobError::Invalid(format!("job id must be 1 to {MAX_ID_LEN} printable characters")));
        }
        if self.kind.is_empty() || !printable(&self.kind) {
            return Err(JobError::Invalid("job kind must be non-empty and printable".into()));
        }
        Ok(())
    }
}

/// One receipt of a job by a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub job: Job,
    /// Opaque handle naming this receipt, for `ack` and `release`.
    pub receipt: String,
    /// How many times the job has been received, this time included (1 on the first delivery).
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum JobError {
    /// A delay beyond [`MAX_DELAY`]: the outbox relay must hold such a job until it is due.
    #[error("delay exceeds the queue's 15-minute limit")]
    DelayTooLong,
    /// The receipt is not the job's latest delivery (it was redelivered, acked or released
    /// since). Only adapters that can tell say so; see each adapter's `ack`.
    #[error("stale receipt: the job was redelivered or finished since")]
    StaleReceipt,
    /// The backend could not be reached or throttled us: retry later.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The request is malformed (bad id, batch size, receipt, oversized job): a bug, not retryable.
    #[error("invalid queue request: {0}")]
    Invalid(String),
    #[error("queue failure: {0}")]
    Internal(String),
}

#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Makes the job visible after `delay` (at most [`MAX_DELAY`], else `DelayTooLong`).
    async fn enqueue(&self, job: &Job, delay: Duration) -> Result<(), JobError>;

    /// Up to `max` (1..=10) visible jobs, each hidden for `visibility` after this receive; waits up
    /// to `wait` (long poll) when none is visible, returning as soon as one is.
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, JobError>;

    /// Done: removes the job. Never removes a newer delivery's job on an adapter that can tell a
    /// stale receipt (see the adapters' docs for what each does).
    async fn ack(&self, receipt: &str) -> Result<(), JobError>;

    /// Not done: the job becomes visible again after `delay` (a retry with backoff). The receive
    /// already counted towards the dead-letter limit.
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), JobError>;

    /// Up to `max` jobs in the dead-letter queue, oldest first where the backend keeps an order.
    /// Reading does not remove them.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Job>, JobError>;
}

/// Checks shared by both adapters' `receive`.
pub(crate) fn validate_receive(max: usize, visibility: Duration) -> Result<(), JobError> {
    if !(1..=MAX_BATCH).contains(&max) {
        return Err(JobError::Invalid(format!("receive takes 1 to {MAX_BATCH} jobs, not {max}")));
    }
    if visibility > MAX_VISIBILITY {
        return Err(JobError::Invalid("visibility timeout over 12 hours".into()));
    }
    Ok(())
}

pub(crate) fn validate_release(delay: Duration) -> Result<(), JobError> {
    if delay > MAX_VISIBILITY {
        return Err(JobError::Invalid("release delay over 12 hours".into()));
    }
    Ok(())
}
