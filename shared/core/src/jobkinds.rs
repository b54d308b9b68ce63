//! The kinds of queued work and the queue each goes to: one map for the API (which enqueues), the
//! workers (which handle) and the relay (which forwards to SQS).

use crate::error::{ApiError, ApiResult};
use linkcrm_jobs::{Job, StoreQueue};
use linkcrm_storage::TxOp;
use serde_json::json;
use std::time::Duration;

/// The store queue the API enqueues to (the relay forwards each kind to its SQS queue).
pub const WORK_QUEUE: &str = "work";

/// Longest delay the queue takes for a job (SQS's 15 minutes); later sends are stored with their
/// visible time instead.
pub const MAX_JOB_DELAY: Duration = Duration::from_secs(15 * 60);

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Send one approved or automatic outreach email (`outreach::sending`).
    Send,
    /// Find contacts at accounts (`crm::discovery`).
    Discover,
    /// Expire an approval nobody decided in time (`approval_expiry`).
    ApprovalExpiry,
}

/// The SQS queue a kind goes to in AWS, by the name the relay and the template use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Send,
    Discover,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Send, JobKind::Discover, JobKind::ApprovalExpiry];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Send => "send",
            JobKind::Discover => "discover",
            JobKind::ApprovalExpiry => "approval_expiry",
        }
    }

    pub fn parse(kind: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Approval expiries ride the send queue: they settle send invocations.
    pub fn queue(self) -> Queue {
        match self {
            JobKind::Send | JobKind::ApprovalExpiry => Queue::Send,
            JobKind::Discover => Queue::Discover,
        }
    }
}

impl Queue {
    pub fn name(self) -> &'static str {
        match self {
            Queue::Send => "send",
            Queue::Discover => "discover",
        }
    }
}

/// The job for an invocation, committed in the same transaction. Sends scheduled later than the
/// queue's longest delay are stored with their visible time in the future; the store queue
/// delivers by visible time.
pub fn send_job_op(invocation: &str, schedule_at: Option<&str>) -> ApiResult<TxOp> {
    let job = Job::new(JobKind::Send.as_str(), json!({ "invocationId": invocation }));
    let at =
        schedule_at.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&chrono::Utc));
    let delay = at
        .map(|t| (t - chrono::Utc::now()).num_milliseconds().max(0) as u64)
        .map(Duration::from_millis)
        .unwrap_or_default();
    let op = match at {
        Some(t) if delay > MAX_JOB_DELAY => StoreQueue::enqueue_at_op(WORK_QUEUE, &job, t),
        _ => StoreQueue::enqueue_op(WORK_QUEUE, &job, delay),
    };
    op.map_err(|e| {
        tracing::error!(error = %e, "send job rejected by the queue");
        ApiError::internal()
    })
}
