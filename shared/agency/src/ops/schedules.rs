//! Scheduled bulk actions (`bsch_…`): `POST /v1/workspaces/bulk-action` with `schedule` stores
//! one; `/v1/workspaces/bulk-action/schedules` lists, reads, pauses/resumes and deletes them; a
//! one-minute tick ([`run_due`]) starts the due ones from the index of due schedules (GSI3
//! `BSCH#DUE`, sorted by next run; no Scan). A schedule whose key was revoked is paused.
//!
//! The records and the tick are `crate::schedule`'s.

use super::{SCOPE, TAG};
use crate::bulk::{resolve_for, unprocessable, Workspaces};
use crate::keys;
use crate::schedule::{self, item_of, parse_item, tz_of, workspaces_value, Schedule};
use axum::http::StatusCode;
use chrono::Utc;
use linkcrm_core::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::ids;
use linkcrm_core::items;
use linkcrm_core::list::ListResponse;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// Stores a scheduled bulk action (the `schedule` form of `POST /v1/workspaces/bulk-action`).
pub async fn create(
    ctx: &Ctx,
    action: &str,
    workspaces: &Workspaces,
    config: Value,
    spec: &str,
    time_zone: Option<&str>,
) -> ApiResult<Reply<Value>> {
    let parsed = schedule::parse(spec)
        .ok_or_else(|| ApiError::invalid_field("schedule", "invalid_request", "daily:HH:MM or weekly:mon:HH:MM"))?;
    // The agency's zone when it has one, else UTC.
    let agency = ctx.app.store.get(&linkcrm_core::keys::agency(&ctx.caller.agency_id)).await?;
    let zone = time_zone
        .map(str::to_owned)
        .or_else(|| agency.as_ref().and_then(|a| items::str_of(a, "timeZone")).map(str::to_owned))
        .unwrap_or_else(|| "UTC".into());
    let tz = tz_of(&zone)?;
    // Names must resolve now (a list of ids is checked); "all" and tags are resolved per run.
    resolve_for(&ctx.app, &ctx.caller.agency_id, workspaces).await?;
    let existing = ctx
        .app
        .store
        .query(Query::partition(keys::schedules_pk(&ctx.caller.agency_id)).limit(101).attrs(&["id"]))
        .await?;
    if existing.items.len() >= 100 {
        return Err(unprocessable(
            "schedule",
            "too_many_schedules",
            "An agency has at most 100 scheduled bulk actions.",
        ));
    }
    let now = time::now_string();
    let s = Schedule {
        id: linkcrm_domain::new_id(IdKind::BulkSchedule),
        action: action.to_owned(),
        workspaces: workspaces_value(workspaces),
        config,
        schedule: spec.to_owned(),
        time_zone: zone,
        status: "active".into(),
        paused_reason: None,
        next_run_at: Some(time::format(schedule::next_after(parsed, tz, Utc::now()))),
        last_run_at: None,
        last_invocation_id: None,
        key_id: ctx.caller.key_id.clone(),
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    let reply = Reply {
        status: Some(StatusCode::CREATED),
        ..Reply::ok(serde_json::to_value(&s).expect("serialises")).with_version(1)
    };
    ctx.commit(
        vec![TxOp::put_if(item_of(&s, &ctx.caller.agency_id, &ctx.caller.key_hash), Condition::NotExists)],
        &reply,
    )
    .await?;
    Ok(reply)
}

async fn load(ctx: &Ctx, id: &str) -> ApiResult<Item> {
    ctx.app
        .store
        .get(&keys::schedule(&ctx.caller.agency_id, id))
        .await?
        .ok_or_else(|| ApiError::not_found("schedule_not_found", "scheduled bulk action", id))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    #[serde(default, deserialize_with = "linkcrm_core::lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "workspaces.bulk_action.schedules.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "The agency's scheduled bulk actions, newest first";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Schedule>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Schedule>>> {
        let limit = linkcrm_core::list::limit(input.limit)?;
        let scope = format!("bsch#{}", ctx.caller.agency_id);
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let q = Query::partition(keys::schedules_pk(&ctx.caller.agency_id)).backward().limit(limit).after(cursor);
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(parse_item).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "workspaces.bulk_action.schedules.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "One scheduled bulk action";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::BulkSchedule>;
    type Output = Schedule;

    async fn run(ctx: Ctx, input: IdInput<ids::BulkSchedule>) -> ApiResult<Reply<Schedule>> {
        let s = parse_item(&load(&ctx, input.id.as_str()).await?)?;
        let v = s.version;
        Ok(Reply::ok(s).with_version(v))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: linkcrm_core::ids::Id<ids::BulkSchedule>,
    /// `paused` stops it; `active` resumes it from the next due time.
    pub status: Option<ScheduleStatus>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Active,
    Paused,
}

pub struct UpdateSchedule;
impl Operation for UpdateSchedule {
    const NAME: &'static str = "workspaces.bulk_action.schedules.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Pause or resume a scheduled bulk action";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = Schedule;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Schedule>> {
        let item = load(&ctx, input.id.as_str()).await?;
        let mut s = parse_item(&item)?;
        if let Some(v) = ctx.if_match {
            if v != s.version {
                return Err(ApiError::precondition_failed(s.version));
            }
        }
        let before = s.version;
        match input.status {
            Some(ScheduleStatus::Paused) if s.status == "active" => {
                s.status = "paused".into();
                s.paused_reason = Some("paused_by_user".into());
            }
            Some(ScheduleStatus::Active) if s.status == "paused" => {
                // Resuming under a revoked key would only pause it again: refuse.
                let hash = items::str_of(&item, "keyHash").unwrap_or_default();
                if linkcrm_core::auth::authenticate_hash(&ctx.app, hash).await.is_err() {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "key_revoked",
                        "The key that created this schedule was revoked; create it again with a live key.",
                    ));
                }
                let spec = schedule::parse(&s.schedule).ok_or_else(ApiError::internal)?;
                s.status = "active".into();
                s.paused_reason = None;
                s.next_run_at = Some(time::format(schedule::next_after(spec, tz_of(&s.time_zone)?, Utc::now())));
            }
            _ => {}
        }
        s.version = before + 1;
        s.updated_at = time::now_string();
        let hash = items::str_of(&item, "keyHash").unwrap_or_default().to_owned();
        let reply = Reply::ok(s.clone()).with_version(s.version);
        match ctx
            .commit(
                vec![TxOp::put_if(item_of(&s, &ctx.caller.agency_id, &hash), Condition::VersionEquals(before))],
                &reply,
            )
            .await
        {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. }) => Err(ApiError::precondition_failed(before + 1)),
            Err(e) => Err(e.into()),
        }
    }
}

pub struct DeleteSchedule;
impl Operation for DeleteSchedule {
    const NAME: &'static str = "workspaces.bulk_action.schedules.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Delete a scheduled bulk action (runs already started finish)";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::BulkSchedule>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<ids::BulkSchedule>) -> ApiResult<Reply<()>> {
        load(&ctx, input.id.as_str()).await?;
        let reply = Reply::no_content();
        ctx.commit(
            vec![TxOp::Delete {
                key: keys::schedule(&ctx.caller.agency_id, input.id.as_str()),
                cond: Some(Condition::Exists),
            }],
            &reply,
        )
        .await
        .map_err(|e| match e {
            StoreError::ConditionFailed { .. } => {
                ApiError::not_found("schedule_not_found", "scheduled bulk action", input.id.as_str())
            }
            other => other.into(),
        })?;
        Ok(reply)
    }
}
