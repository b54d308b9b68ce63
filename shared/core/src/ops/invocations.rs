//! `agent.invocations.*`: read and cancel the workspace's invocations.

use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::invocations::{self as inv};
use crate::list::{self, ListResponse};
use crate::{lenient, validate::time_param};
use axum::http::StatusCode;
use linkcrm_storage::{Condition, Index, Query, SortKey, StoreError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

const TAG: &str = "Agent: invocations";

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Get>(), OpSpec::of::<List>(), OpSpec::of::<Cancel>()]
}

pub use crate::catalogue::IdInput;

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "agent.invocations.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agent;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one invocation: status, estimated cost, credits used, result or error";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Invocation>;
    type Output = Value;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Invocation>) -> ApiResult<Reply<Value>> {
        let item = inv::load(&ctx.app.store, Some(ctx.workspace()), &input.id).await?;
        Ok(Reply::ok(inv::view(&item)).with_version(inv::version(&item)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub skill: Option<String>,
    /// One of PENDING, RUNNING, WAITING_APPROVAL, SUCCEEDED, FAILED, CANCELLED.
    #[schemars(extend("enum" = ["PENDING", "RUNNING", "WAITING_APPROVAL", "SUCCEEDED", "FAILED", "CANCELLED"]))]
    pub status: Option<String>,
    /// Only invocations created at or after this time.
    #[schemars(pattern(crate::rules::TIME))]
    pub since: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "agent.invocations.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agent;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List the workspace's invocations, newest first";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Value>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Value>>> {
        let limit = list::limit(input.limit)?;
        if let Some(s) = &input.status {
            if inv::Status::parse(s).is_none() {
                return Err(ApiError::invalid_field("status", "invalid_request", "not an invocation status"));
            }
        }
        let ws = ctx.workspace();
        let scope = format!(
            "{}#{ws}#{}#{}#{}",
            List::NAME,
            input.skill.as_deref().unwrap_or(""),
            input.status.as_deref().unwrap_or(""),
            input.since.as_deref().unwrap_or("")
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = Query::index(Index::Gsi1, inv::workspace_pk(ws)).backward().limit(limit).after(cursor);
        if let Some(since) = &input.since {
            q = q.sk(SortKey::AtLeast(time_param("since", since)?));
        }
        let mut filters = Vec::new();
        if let Some(s) = input.skill {
            filters.push(Condition::Equals("skill".into(), json!(s)));
        }
        if let Some(s) = input.status {
            filters.push(Condition::Equals("status".into(), json!(s)));
        }
        if !filters.is_empty() {
            q = q.filter(Condition::And(filters));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(inv::view).collect();
        let next_cursor = ctx.app.seal_cursor(&scope, page.cursor);
        Ok(Reply::ok(ListResponse { data, next_cursor, total: None }))
    }
}

pub struct Cancel;
impl Operation for Cancel {
    const NAME: &'static str = "agent.invocations.cancel";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Agent;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Cancel a PENDING or WAITING_APPROVAL invocation and release its reserved credits";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Invocation>;
    type Output = Value;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Invocation>) -> ApiResult<Reply<Value>> {
        let ws = ctx.workspace();
        for _ in 0..3 {
            let item = inv::load(&ctx.app.store, Some(ws), &input.id).await?;
            if ![inv::Status::Pending, inv::Status::WaitingApproval].contains(&inv::status(&item)) {
                return Err(ApiError::conflict(
                    "invalid_state",
                    format!("Invocation '{}' is {} and can no longer be cancelled.", input.id, inv::status(&item)),
                )
                .with_details(json!({ "status": inv::status(&item) })));
            }
            let mut ops = inv::cancel_ops(&item)?;
            // Only a waiting invocation still has an open approval (an approved one is PENDING).
            if inv::status(&item) == inv::Status::WaitingApproval {
                ops.extend(crate::approvals::close_op(&item, crate::approvals::Status::Cancelled, vec![]));
            }
            match ctx.app.store.transact(ops).await {
                // The worker claimed it (or another cancel won) in between: read it again.
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    let item = inv::load(&ctx.app.store, Some(ws), &input.id).await?;
                    let reply = Reply { status: Some(StatusCode::OK), body: Some(inv::view(&item)), version: None };
                    return Ok(reply.with_version(inv::version(&item)));
                }
            }
        }
        Err(ApiError::conflict("conflict", "The invocation changed while this request ran; read it again."))
    }
}
