//! Queued work from the API: the store queue jobs are committed to, and the job op for an
//! invocation. The kinds and the SQS queue of each are `linkcrm_domain::jobs`.

use crate::error::{ApiError, ApiResult};
use linkcrm_jobs::{Job, StoreQueue};
use linkcrm_storage::TxOp;
use serde_json::json;
use std::time::Duration;

/// Longest delay the queue takes for a job (SQS's 15 minutes); later sends are stored with their
/// visible time instead.
pub const MAX_JOB_DELAY: Duration = Duration::from_secs(15 * 60);

pub use linkcrm_domain::jobs::{JobKind, Queue, WORK_QUEUE};

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

/// The job that carries a decision on a campaign's draft into its campaign (see
/// `approvals::close_op`). Its id is fixed by the invocation: one decision per draft.
pub fn campaign_draft_op(
    invocation: &str,
    campaign: &str,
    decision: linkcrm_domain::enums::ApprovalStatus,
) -> ApiResult<TxOp> {
    let job = Job::new(
        JobKind::CampaignDraft.as_str(),
        json!({ "invocationId": invocation, "campaignId": campaign, "decision": decision }),
    );
    StoreQueue::enqueue_op(WORK_QUEUE, &job, Duration::ZERO).map_err(|e| {
        tracing::error!(error = %e, "campaign draft job rejected by the queue");
        ApiError::internal()
    })
}

/// The job that tells a campaign one of its sends went out (committed with the send's EMAIL_SENT),
/// so that it schedules the relationship's next follow-up.
pub fn campaign_sent_op(invocation: &str, campaign: &str) -> Result<TxOp, linkcrm_jobs::JobError> {
    let job = Job::new(
        JobKind::CampaignStep.as_str(),
        json!({ "step": "sent", "invocationId": invocation, "campaignId": campaign }),
    );
    StoreQueue::enqueue_op(WORK_QUEUE, &job, Duration::ZERO)
}

/// The job that looks at a campaign's bounce rate after one of its sends bounced hard (committed
/// with the EMAIL_BOUNCED), so that the campaign can pause itself.
pub fn campaign_bounce_check_op(campaign: &str) -> Result<TxOp, linkcrm_jobs::JobError> {
    let job = Job::new(JobKind::CampaignStep.as_str(), json!({ "step": "bounce_check", "campaignId": campaign }));
    StoreQueue::enqueue_op(WORK_QUEUE, &job, Duration::ZERO)
}

/// The job that has the inbound negotiator decide on a request (committed with the message), at
/// once or, for a request held by a gate, at `at`.
pub fn inbound_negotiate_op(
    message: &str,
    workspace: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<TxOp, linkcrm_jobs::JobError> {
    let job = Job::new(JobKind::InboundNegotiate.as_str(), json!({ "messageId": message, "workspaceId": workspace }));
    match at {
        Some(t) if t - chrono::Utc::now() > chrono::Duration::from_std(MAX_JOB_DELAY).unwrap_or_default() => {
            StoreQueue::enqueue_at_op(WORK_QUEUE, &job, t)
        }
        Some(t) => {
            let delay = (t - chrono::Utc::now()).to_std().unwrap_or_default();
            StoreQueue::enqueue_op(WORK_QUEUE, &job, delay)
        }
        None => StoreQueue::enqueue_op(WORK_QUEUE, &job, Duration::ZERO),
    }
}
