//! `agent.approvals.*` and approve/reject on invocations: the human gate in front of outside-world
//! steps (today: outreach sends under `approvalPolicy.outreach_send = require_approval`).
//!
//! Item `APPR#<id>` / `#`, on GSI1 as `WS#<ws>#APPRS` / `<raisedAt>#<id>`, with `status` pending,
//! approved, rejected, cancelled or expired. Approving moves the invocation WAITING_APPROVAL →
//! PENDING and enqueues its job in one transaction; rejecting moves it to CANCELLED (with
//! `error.code = "rejected"` and the reason) and releases the reservation. Cancelling a waiting
//! invocation marks its approval cancelled.
//!
//! An approval expires at `timeoutAt` (raised + `LINKCRM_APPROVAL_TIMEOUT_SECS`, default 7 days):
//! see `crate::approval_expiry`. Approving or rejecting after that answers 409
//! `approval_expired` (and performs the expiry if the scheduled job has not yet).

use crate::approval_expiry;
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::credits;
use crate::error::{ApiError, ApiResult};
use crate::invocations::{self as inv};
use crate::items as records;
use crate::lenient;
use crate::list::{self, ListResponse};
use axum::http::StatusCode;

use linkcrm_storage::{Condition, Index, Item, Query, StoreError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

const TAG: &str = "Agent: approvals";
pub use crate::approvals::{close_op, key, new_item, timeout, workspace_pk, Status};

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<List>(), OpSpec::of::<Get>(), OpSpec::of::<Approve>(), OpSpec::of::<Reject>()]
}

fn view(item: &Item) -> Value {
    let mut v = item.clone();
    for k in ["PK", "SK", "GSI1PK", "GSI1SK", "entity"] {
        v.remove(k);
    }
    Value::Object(v)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// pending (default), approved, rejected, cancelled, expired or all.
    #[schemars(extend("enum" = ["pending", "approved", "rejected", "cancelled", "expired", "all"]))]
    pub status: Option<String>,
    pub skill: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "agent.approvals.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agent;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List the workspace's approvals (pending by default), newest first";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Value>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Value>>> {
        let limit = list::limit(input.limit)?;
        let status = input.status.unwrap_or_else(|| Status::Pending.as_str().to_owned());
        if status != "all" && Status::parse(&status).is_none() {
            return Err(ApiError::invalid_field("status", "invalid_request", "not an approval status"));
        }
        let ws = ctx.workspace();
        let scope = format!("{}#{ws}#{status}#{}", List::NAME, input.skill.as_deref().unwrap_or(""));
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = Query::index(Index::Gsi1, workspace_pk(ws)).backward().limit(limit).after(cursor);
        let mut filters = Vec::new();
        if status != "all" {
            filters.push(Condition::Equals("status".into(), json!(status)));
        }
        if let Some(s) = input.skill {
            filters.push(Condition::Equals("skill".into(), json!(s)));
        }
        if !filters.is_empty() {
            q = q.filter(Condition::And(filters));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(view).collect();
        let next_cursor = ctx.app.seal_cursor(&scope, page.cursor);
        Ok(Reply::ok(ListResponse { data, next_cursor, total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalIdInput {
    pub approval_id: crate::ids::Id<crate::ids::Approval>,
}

async fn load(ctx: &Ctx, id: &str) -> ApiResult<Item> {
    let not_found = || ApiError::not_found("approval_not_found", "Approval", id);
    if !id.starts_with("appr_") {
        return Err(not_found());
    }
    let item = ctx.app.store.get(&key(id)).await?.ok_or_else(not_found)?;
    if records::str_of(&item, "workspaceId") != Some(ctx.workspace()) {
        return Err(not_found());
    }
    Ok(item)
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "agent.approvals.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agent;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one approval with the preview of what it lets happen";
    const TAG: &'static str = TAG;
    type Input = ApprovalIdInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: ApprovalIdInput) -> ApiResult<Reply<Value>> {
        Ok(Reply::ok(view(&load(&ctx, &input.approval_id).await?)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveInput {
    /// The invocation id (path).
    pub id: crate::ids::Id<crate::ids::Invocation>,
    /// Replaces the subject before sending.
    #[schemars(length(max = 998), pattern(crate::rules::ONE_LINE))]
    pub subject: Option<String>,
    /// Replaces the body before sending.
    #[schemars(length(max = 100000))]
    pub body: Option<String>,
}

fn waiting(item: &Item, id: &str) -> ApiResult<()> {
    if approval_expiry::expired(item) {
        return Err(approval_expiry::too_late(id, None));
    }
    if inv::status(item) != inv::Status::WaitingApproval {
        return Err(ApiError::conflict(
            "invalid_state",
            format!("Invocation '{id}' is {} and is not waiting for approval.", inv::status(item)),
        )
        .with_details(json!({ "status": inv::status(item) })));
    }
    Ok(())
}

async fn reply(ctx: &Ctx, id: &str) -> ApiResult<Reply<Value>> {
    let item = inv::load(&ctx.app.store, Some(ctx.workspace()), id).await?;
    Ok(Reply { status: Some(StatusCode::OK), body: Some(inv::view(&item)), version: None }
        .with_version(inv::version(&item)))
}

/// Whether the invocation's approval is still open (`Ok(true)`). Past its `timeoutAt` it is
/// expired here, in case the scheduled expiry has not run yet, and the caller gets 409
/// `approval_expired`. `Ok(false)` when that expiry lost a race: read the invocation again.
async fn approval_open(ctx: &Ctx, item: &Item, id: &str) -> ApiResult<bool> {
    let Some(approval_id) = records::str_of(item, "approvalId") else { return Ok(true) };
    let approval = ctx.app.store.get(&key(approval_id)).await?.ok_or_else(ApiError::internal)?;
    if !approval_expiry::is_due(&approval) {
        return Ok(true);
    }
    match ctx.app.store.transact(approval_expiry::expire_ops(item, &approval)?).await {
        Ok(()) => Err(approval_expiry::too_late(id, Some(&approval))),
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn changed() -> ApiError {
    ApiError::conflict("conflict", "The invocation changed while this request ran; read it again.")
}

pub struct Approve;
impl Operation for Approve {
    const NAME: &'static str = "agent.invocations.approve";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Agent;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Approve a WAITING_APPROVAL invocation, optionally editing the subject and body";
    const TAG: &'static str = TAG;
    type Input = ApproveInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: ApproveInput) -> ApiResult<Reply<Value>> {
        approve(&ctx, &input.id, input.subject, input.body).await
    }
}

/// Approves invocation `id` of the caller's workspace (optionally editing subject and body): the
/// one path for `agent.invocations.approve` and a campaign's bulk approval.
pub async fn approve(ctx: &Ctx, id: &str, subject: Option<String>, body: Option<String>) -> ApiResult<Reply<Value>> {
    let input = IdOnly { id };
    {
        let subject = crate::validate::header_text("subject", subject, 998)?;
        let body = crate::validate::text("body", body, 100_000)?;
        for _ in 0..3 {
            let item = inv::load(&ctx.app.store, Some(ctx.workspace()), input.id).await?;
            waiting(&item, input.id)?;
            if !approval_open(ctx, &item, input.id).await? {
                continue;
            }
            let mut new_input = item.get("input").cloned().unwrap_or_else(|| json!({}));
            let mut edits = json!({});
            if let Some(s) = &subject {
                new_input["subject"] = json!(s);
                edits["subject"] = json!(s);
            }
            if let Some(b) = &body {
                new_input["body"] = json!(b);
                edits["body"] = json!(b);
            }
            let schedule = new_input.get("scheduleAt").and_then(Value::as_str).map(str::to_owned);
            let mut ops = vec![inv::transition(&item, inv::Status::Pending, vec![("input", new_input)])];
            ops.extend(close_op(&item, Status::Approved, vec![("edits", edits)]));
            // A campaign's draft is queued by its campaign's job (`close_op`), after the events.
            if crate::approvals::campaign_of(&item).is_none() {
                ops.push(crate::jobkinds::send_job_op(input.id, schedule.as_deref())?);
            }
            match ctx.app.store.transact(ops).await {
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
                Ok(()) => return reply(ctx, input.id).await,
            }
        }
        Err(changed())
    }
}

struct IdOnly<'a> {
    id: &'a str,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectInput {
    /// The invocation id (path).
    pub id: crate::ids::Id<crate::ids::Invocation>,
    #[schemars(length(max = 2000))]
    pub reason: Option<String>,
}

pub struct Reject;
impl Operation for Reject {
    const NAME: &'static str = "agent.invocations.reject";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Agent;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Reject a WAITING_APPROVAL invocation: it ends CANCELLED (error code rejected) and its credits are released";
    const TAG: &'static str = TAG;
    type Input = RejectInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: RejectInput) -> ApiResult<Reply<Value>> {
        reject(&ctx, &input.id, input.reason).await
    }
}

/// Rejects invocation `id` of the caller's workspace: the one path for `agent.invocations.reject`
/// and a campaign's bulk rejection.
pub async fn reject(ctx: &Ctx, id: &str, reason: Option<String>) -> ApiResult<Reply<Value>> {
    let input = IdOnly { id };
    {
        let reason = crate::validate::text("reason", reason, 2000)?;
        for _ in 0..3 {
            let item = inv::load(&ctx.app.store, Some(ctx.workspace()), input.id).await?;
            waiting(&item, input.id)?;
            if !approval_open(ctx, &item, input.id).await? {
                continue;
            }
            let pool = inv::pool_of_item(&item)?;
            let ws = records::str_of(&item, "workspaceId").unwrap_or_default();
            let skill = records::str_of(&item, "skill").unwrap_or_default();
            let reserved = records::int_of(&item, "reservedMilli").unwrap_or(0);
            let message = reason.clone().unwrap_or_else(|| "Rejected by a reviewer".into());
            let error = inv::problem(409, "rejected", &message);
            let mut ops = vec![inv::transition(&item, inv::Status::Cancelled, vec![("error", error.clone())])];
            ops.extend(inv::status_event(&item, inv::Status::Cancelled, &[("error", error)]));
            ops.extend(close_op(&item, Status::Rejected, vec![("rejectionReason", json!(reason))]));
            ops.extend(credits::release(&pool, ws, skill, input.id, reserved));
            match ctx.app.store.transact(ops).await {
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
                Ok(()) => return reply(ctx, input.id).await,
            }
        }
        Err(changed())
    }
}
