//! Approvals expire at their `timeoutAt`: the waiting invocation becomes CANCELLED with
//! `error.code = "approval_expired"`, its credit reservation is released and the approval's status
//! becomes `expired`, all in one transaction (`expire_ops`).
//!
//! Two ways get there, whichever comes first:
//! - actively: the transaction that raises an approval also enqueues an `approval_expiry` job on
//!   the store queue, visible at `timeoutAt` (`job_op`); `handle` runs it;
//! - lazily: approving or rejecting after `timeoutAt` expires the approval there and answers 409
//!   `approval_expired` (`ops::approvals`).
//!
//! Both are conditional on the invocation's version and on the approval still being pending, so
//! they never both apply, and neither overrides an approval, rejection or cancel that won.

use crate::approvals;
use crate::credits;
use crate::error::{ApiError, DataResult};
use crate::invocations::{self as inv};
use crate::items as records;
use crate::App;
use linkcrm_jobs::{HandlerError, Job, StoreQueue};
use linkcrm_storage::{Item, StoreError, TxOp};
use serde_json::{json, Value};
use std::time::Duration;

pub const JOB_KIND: &str = linkcrm_domain::jobs::JobKind::ApprovalExpiry.as_str();
/// The store queue the local binary's worker consumes (shared with sends and discovery).
pub const QUEUE: &str = crate::jobkinds::WORK_QUEUE;
pub const ERROR_CODE: &str = "approval_expired";

/// The expiry job for a new approval item, visible at its `timeoutAt`, for the approval's own
/// transaction.
pub fn job_op(approval: &Item) -> DataResult<TxOp> {
    let at = timeout_at(approval).ok_or_else(|| records::corrupt("approval", "no timeoutAt"))?;
    let job = Job::new(
        JOB_KIND,
        json!({ "invocationId": records::str_of(approval, "invocationId"),
                "approvalId": records::str_of(approval, "approvalId") }),
    );
    Ok(StoreQueue::enqueue_at_op(QUEUE, &job, at)?)
}

pub fn timeout_at(approval: &Item) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = records::str_of(approval, "timeoutAt")?;
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Whether the approval's time is up.
pub fn is_due(approval: &Item) -> bool {
    timeout_at(approval).is_some_and(|t| t <= chrono::Utc::now())
}

/// The invocation's `error` once expired.
pub fn problem(approval: &Item) -> Value {
    let at = records::str_of(approval, "timeoutAt").unwrap_or("its timeout");
    inv::problem(409, ERROR_CODE, &format!("Nobody approved or rejected this send before {at}; it was cancelled."))
}

/// 409 `approval_expired` for an approve or reject that came too late.
pub fn too_late(invocation: &str, approval: Option<&Item>) -> ApiError {
    let at = approval.and_then(|a| records::str_of(a, "timeoutAt"));
    ApiError::conflict(
        ERROR_CODE,
        format!("The approval of invocation '{invocation}' expired; the invocation was cancelled."),
    )
    .with_details(json!({ "status": inv::Status::Cancelled, "timeoutAt": at }))
}

/// Whether an invocation ended by expiry.
pub fn expired(invocation: &Item) -> bool {
    inv::status(invocation) == inv::Status::Cancelled
        && invocation.get("error").and_then(|e| e.get("code")).and_then(Value::as_str) == Some(ERROR_CODE)
}

/// WAITING_APPROVAL → CANCELLED (`approval_expired`), the approval → `expired`, the reservation
/// released: one transaction, conditional on the invocation's version and the approval pending.
pub fn expire_ops(invocation: &Item, approval: &Item) -> DataResult<Vec<TxOp>> {
    let pool = inv::pool_of_item(invocation)?;
    let ws = records::str_of(invocation, "workspaceId").unwrap_or_default();
    let skill = records::str_of(invocation, "skill").unwrap_or_default();
    let id = records::str_of(invocation, "invocationId").unwrap_or_default();
    let reserved = records::int_of(invocation, "reservedMilli").unwrap_or(0);
    let error = problem(approval);
    let mut ops = vec![inv::transition(invocation, inv::Status::Cancelled, vec![("error", error.clone())])];
    ops.extend(inv::status_event(invocation, inv::Status::Cancelled, &[("error", error)]));
    ops.extend(approvals::close_op(invocation, approvals::Status::Expired, vec![]));
    ops.extend(credits::release(&pool, ws, skill, id, reserved));
    Ok(ops)
}

fn retry(job: &Job, e: &dyn std::fmt::Display) -> HandlerError {
    tracing::warn!(job = %job.id, error = %e, "approval expiry will be retried");
    HandlerError::Retry { after: Duration::from_secs(2) }
}

/// Handles one `approval_expiry` job. Idempotent: does nothing once the invocation is no longer
/// waiting for this approval (approved, rejected, cancelled or already expired).
pub async fn handle(app: &App, job: &Job) -> Result<(), HandlerError> {
    let field = |k: &str| job.payload.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(id), Some(approval_id)) = (field("invocationId"), field("approvalId")) else {
        return Err(HandlerError::Fail("approval_expiry job without invocationId and approvalId".into()));
    };
    let Some(item) = app.store.get(&inv::key(&id)).await.map_err(|e| retry(job, &e))? else { return Ok(()) };
    if inv::status(&item) != inv::Status::WaitingApproval || records::str_of(&item, "approvalId") != Some(&approval_id)
    {
        return Ok(());
    }
    let Some(approval) = app.store.get(&approvals::key(&approval_id)).await.map_err(|e| retry(job, &e))? else {
        return Ok(());
    };
    if records::str_of(&approval, "status") != Some(approvals::Status::Pending.as_str()) {
        return Ok(());
    }
    if let Some(at) = timeout_at(&approval).filter(|t| *t > chrono::Utc::now()) {
        // Delivered early (clocks): look again when it is due.
        let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        return Err(HandlerError::Retry { after: left.min(Duration::from_secs(15 * 60)) + Duration::from_millis(50) });
    }
    let ops = expire_ops(&item, &approval)?;
    match app.store.transact(ops).await {
        Ok(()) => {
            tracing::info!(invocation = %id, approval = %approval_id, "approval expired; invocation cancelled");
            Ok(())
        }
        // Approved, rejected or cancelled meanwhile: the next delivery finds it settled.
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
            Err(HandlerError::Retry { after: Duration::from_millis(200) })
        }
        Err(e) => Err(retry(job, &e)),
    }
}
