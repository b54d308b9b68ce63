//! `workspaces.bulk_action` (`POST /v1/workspaces/bulk-action`) and `workspaces.bulk_action.get`.

use super::{SCOPE, TAG};
use crate::bulk::{self, resolve_for, unprocessable, Ask, BulkAction, Workspaces};
use axum::http::StatusCode;
use linkcrm_core::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::ids;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

pub const NAME: &str = "workspaces.bulk_action";

/// An operation name.
const ACTION: &str = r"^[a-z_]+(\.[a-z_]+)+$";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkInput {
    /// The operation to run in each workspace (one that acts in a workspace), by name:
    /// `link_building.campaign.list`, `link_building.crm.relationship.create`, ...
    #[schemars(pattern(ACTION), length(max = 100))]
    pub action: String,
    pub workspaces: Workspaces,
    /// The operation's input (its path parameters and body in one object).
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
    /// Run on a schedule instead of now: `daily:HH:MM` or `weekly:mon:09:00`.
    #[schemars(pattern(crate::schedule::PATTERN))]
    pub schedule: Option<String>,
    /// The schedule's time zone (IANA); default the agency's, else UTC.
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
}

/// The action must be an operation that acts in one workspace, and not a bulk action.
pub fn check_action(ctx: &Ctx, action: &str) -> ApiResult<linkcrm_core::catalogue::Effect> {
    if action == NAME || action.starts_with("workspaces.bulk_action.") {
        return Err(ApiError::invalid_field(
            "action",
            "invalid_request",
            "a bulk action cannot run another bulk action",
        ));
    }
    let spec = ctx.app.operation(action).ok_or_else(|| {
        unprocessable("action", "unknown_action", format!("'{action}' is not an operation of the catalogue"))
    })?;
    if spec.workspace == linkcrm_core::catalogue::WorkspaceRule::None {
        return Err(unprocessable(
            "action",
            "not_a_workspace_action",
            format!("'{action}' does not act in one workspace, so it cannot run per workspace"),
        ));
    }
    Ok(spec.effect)
}

pub struct Run;
impl Operation for Run {
    const NAME: &'static str = NAME;
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const ALSO_SUCCEEDS_WITH: &'static [StatusCode] = &[StatusCode::OK, StatusCode::CREATED];
    const SUMMARY: &'static str = "Run one operation in many workspaces through the executor: reads over up to 50 workspaces answer at once (200), others run as a parent invocation with one child per workspace (202); with schedule, store a scheduled bulk action (201)";
    const TAG: &'static str = TAG;
    type Input = BulkInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: BulkInput) -> ApiResult<Reply<Value>> {
        let effect = check_action(&ctx, &input.action)?;
        let config = Value::Object(input.config.unwrap_or_default());
        if let Some(schedule) = &input.schedule {
            return crate::ops::schedules::create(
                &ctx,
                &input.action,
                &input.workspaces,
                config,
                schedule,
                input.time_zone.as_deref(),
            )
            .await;
        }
        if input.time_zone.is_some() {
            return Err(ApiError::invalid_field("timeZone", "invalid_request", "timeZone goes with schedule"));
        }
        let workspaces = resolve_for(&ctx.app, &ctx.caller.agency_id, &input.workspaces).await?;
        let ask = Ask { caller: &ctx.caller, action: &input.action, config, workspaces, schedule_id: None };
        if effect == Effect::Read && ask.workspaces.len() <= bulk::SYNC_LIMIT {
            let done = bulk::run_now(&ctx.app, ask, vec![]).await?;
            return Ok(Reply {
                status: Some(StatusCode::OK),
                ..Reply::ok(serde_json::to_value(done).expect("serialises"))
            });
        }
        let (id, ops) = bulk::start_ops(&ask)?;
        let answer = BulkAction {
            invocation_id: id,
            status: "WAITING_CHILDREN".into(),
            action: input.action.clone(),
            total: ask.workspaces.len() as u64,
            succeeded: 0,
            failed: 0,
            results: ask
                .workspaces
                .iter()
                .map(|w| bulk::ChildResult {
                    workspace_id: w.clone(),
                    status: "pending".into(),
                    result: None,
                    error: None,
                })
                .collect(),
            schedule_id: None,
            created_at: linkcrm_domain::time::now_string(),
            finished_at: None,
        };
        let reply = Reply {
            status: Some(StatusCode::ACCEPTED),
            ..Reply::ok(serde_json::to_value(answer).expect("serialises"))
        };
        ctx.commit(ops, &reply).await?;
        Ok(reply)
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "workspaces.bulk_action.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "A bulk action: its status and each workspace's result or error";
    const TAG: &'static str = TAG;
    type Input = linkcrm_core::catalogue::IdInput<ids::Invocation>;
    type Output = BulkAction;

    async fn run(ctx: Ctx, input: linkcrm_core::catalogue::IdInput<ids::Invocation>) -> ApiResult<Reply<BulkAction>> {
        Ok(Reply::ok(bulk::load(&ctx.app, &ctx.caller.agency_id, input.id.as_str()).await?))
    }
}
