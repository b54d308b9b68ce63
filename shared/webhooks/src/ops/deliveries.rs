//! `webhooks.test|deliveries|recover|dead_letter.list|dead_letter.replay`.

use super::{load, owner, SCOPE, TAG};
use crate::records::{self, Attempt, DeadLetter, Delivery, DeliveryStatus};
use crate::{deliver, keys};
use axum::http::StatusCode;
use linkcrm_core::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::ids::{self, Id};
use linkcrm_core::list::ListResponse;
use linkcrm_core::{lenient, rules};
use linkcrm_domain::jobs::{JobKind, WEBHOOK_QUEUE};
use linkcrm_domain::{event_types, time, IdKind};
use linkcrm_events::DomainEvent;
use linkcrm_jobs::{Job, StoreQueue};
use linkcrm_storage::{Condition, Query, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The longest window `recover` resends.
pub const RECOVER_WINDOW_DAYS: i64 = 14;

pub struct Test;
impl Operation for Test {
    const NAME: &'static str = "webhooks.test";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SUMMARY: &'static str =
        "Send a signed webhook.test event to the endpoint now and answer the attempt's outcome (status code, duration, body)";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Webhook>;
    type Output = Attempt;

    async fn run(ctx: Ctx, input: IdInput<ids::Webhook>) -> ApiResult<Reply<Attempt>> {
        let e = load(&ctx, input.id.as_str()).await?;
        let event = DomainEvent::new(
            event_types::WEBHOOK_TEST,
            e.workspace_id.clone(),
            json!({ "webhookId": e.id, "message": "A test event from linkcrm: this endpoint receives signed deliveries." }),
        );
        let body = event.to_json();
        let outcome = deliver::post(&ctx.app, crate::sender(&ctx.app), &e, &event.id, &event.r#type, 1, &body).await;
        let a = Attempt {
            id: linkcrm_domain::new_id(IdKind::WebhookAttempt),
            message_id: linkcrm_domain::new_id(IdKind::WebhookMessage),
            event_id: event.id.clone(),
            event_type: event.r#type.clone(),
            attempt: 1,
            trigger: "test".into(),
            status: if outcome.succeeded() { "succeeded" } else { "failed" }.into(),
            url: e.url.clone(),
            response_status_code: outcome.status,
            response_body: outcome.body.clone(),
            duration_ms: outcome.duration.as_millis() as u64,
            error: outcome.error.clone(),
            next_attempt_at: None,
            attempted_at: time::now_string(),
        };
        let reply = Reply::ok(a.clone());
        ctx.commit(vec![TxOp::put(a.item(&e.id, records::retention_ttl()))], &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveriesInput {
    pub id: Id<ids::Webhook>,
    /// Only `succeeded` or only `failed` attempts.
    pub status: Option<AttemptStatus>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Succeeded,
    Failed,
}

pub struct Deliveries;
impl Operation for Deliveries {
    const NAME: &'static str = "webhooks.deliveries";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "A webhook's delivery attempts, newest first: status, response code, duration, response body (4 KB), next attempt";
    const TAG: &'static str = TAG;
    type Input = DeliveriesInput;
    type Output = ListResponse<Attempt>;

    async fn run(ctx: Ctx, input: DeliveriesInput) -> ApiResult<Reply<ListResponse<Attempt>>> {
        let e = load(&ctx, input.id.as_str()).await?;
        let limit = linkcrm_core::list::limit(input.limit)?;
        let scope = format!("webhooks.deliveries#{}", e.id);
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = Query::partition(keys::attempts_pk(&e.id)).backward().limit(limit).after(cursor);
        if let Some(s) = input.status {
            let s = match s {
                AttemptStatus::Succeeded => "succeeded",
                AttemptStatus::Failed => "failed",
            };
            q = q.filter(Condition::Equals("status".into(), json!(s)));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(Attempt::from_item).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverInput {
    pub id: Id<ids::Webhook>,
    /// Start of the window (at most 14 days before `until`, and within the 30 days kept).
    #[schemars(pattern(rules::TIMESTAMP))]
    pub since: String,
    /// End of the window (default now).
    #[schemars(pattern(rules::TIMESTAMP))]
    pub until: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recovering {
    pub webhook_id: String,
    /// `queued`: every delivery of the window that never succeeded is sent again, once, in the
    /// background; follow them in `GET /v1/webhooks/{id}/deliveries`.
    pub status: String,
    pub since: String,
    pub until: String,
}

pub struct Recover;
impl Operation for Recover {
    const NAME: &'static str = "webhooks.recover";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SUMMARY: &'static str =
        "Send again, once each, every delivery to this webhook that never succeeded in a window of at most 14 days (up to 10,000)";
    const TAG: &'static str = TAG;
    type Input = RecoverInput;
    type Output = Recovering;

    async fn run(ctx: Ctx, input: RecoverInput) -> ApiResult<Reply<Recovering>> {
        let e = load(&ctx, input.id.as_str()).await?;
        let now = time::now();
        let since = time::parse(&input.since)
            .ok_or_else(|| ApiError::invalid_field("since", "invalid_request", "must be an RFC 3339 time"))?;
        let until = match &input.until {
            Some(u) => time::parse(u)
                .ok_or_else(|| ApiError::invalid_field("until", "invalid_request", "must be an RFC 3339 time"))?,
            None => now,
        }
        .min(now);
        let window = |m: String| {
            let mut err = ApiError::invalid_field("since", "invalid_window", m);
            err.status = StatusCode::UNPROCESSABLE_ENTITY;
            err
        };
        if since >= until {
            return Err(window("since must be before until (and before now)".into()));
        }
        if until - since > chrono::Duration::days(RECOVER_WINDOW_DAYS) {
            return Err(window(format!("the window is at most {RECOVER_WINDOW_DAYS} days")));
        }
        if now - since > chrono::Duration::days(records::RETENTION_DAYS) {
            return Err(window(format!("deliveries are kept {} days; since is older", records::RETENTION_DAYS)));
        }
        let (since, until) = (time::format(since), time::format(until));
        let job = Job::new(
            JobKind::WebhookRecover.as_str(),
            json!({ "owner": e.owner, "endpointId": e.id, "since": since, "until": until }),
        );
        let op = StoreQueue::enqueue_op(WEBHOOK_QUEUE, &job, Duration::ZERO).map_err(|err| {
            tracing::error!(error = %err, "recover job rejected by the queue");
            ApiError::internal()
        })?;
        let reply = Reply::ok(Recovering { webhook_id: e.id, status: "queued".into(), since, until });
        ctx.commit(vec![op], &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLettersInput {
    /// Only this webhook's dead letters.
    pub webhook_id: Option<Id<ids::Webhook>>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct DeadLetters;
impl Operation for DeadLetters {
    const NAME: &'static str = "webhooks.dead_letter.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "Deliveries that failed every attempt, newest first (kept 30 days; a successful replay removes one)";
    const TAG: &'static str = TAG;
    type Input = DeadLettersInput;
    type Output = ListResponse<DeadLetter>;

    async fn run(ctx: Ctx, input: DeadLettersInput) -> ApiResult<Reply<ListResponse<DeadLetter>>> {
        let (owner, _) = owner(&ctx);
        let limit = linkcrm_core::list::limit(input.limit)?;
        let scope = format!("webhooks.dead_letter#{owner}");
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = Query::partition(keys::dead_letters_pk(&owner)).backward().limit(limit).after(cursor);
        if let Some(w) = &input.webhook_id {
            q = q.filter(Condition::Equals("webhookId".into(), json!(w.as_str())));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(DeadLetter::from_item).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replaying {
    /// `whmsg_…`
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    /// `queued`: one attempt, not retried on its own; the dead letter goes when it succeeds.
    pub status: String,
}

pub struct Replay;
impl Operation for Replay {
    const NAME: &'static str = "webhooks.dead_letter.replay";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SUMMARY: &'static str = "Send a dead-lettered delivery again (same webhook-id), once";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::WebhookMessage>;
    type Output = Replaying;

    async fn run(ctx: Ctx, input: IdInput<ids::WebhookMessage>) -> ApiResult<Reply<Replaying>> {
        let (owner, _) = owner(&ctx);
        let missing = || ApiError::not_found("dead_letter_not_found", "dead letter", input.id.as_str());
        let dl = match ctx.app.store.get(&keys::dead_letter(&owner, input.id.as_str())).await? {
            Some(item) => DeadLetter::from_item(&item)?,
            None => return Err(missing()),
        };
        let Some(item) = ctx.app.store.get(&keys::delivery(&dl.webhook_id, &dl.event_id)).await? else {
            return Err(missing());
        };
        let d = Delivery::from_item(&item)?;
        if ctx.app.store.get(&keys::endpoint(&owner, &dl.webhook_id)).await?.is_none() {
            return Err(records::not_found(&dl.webhook_id));
        }
        if d.status == DeliveryStatus::Pending {
            return Err(ApiError::conflict("replay_in_progress", "This delivery is being sent again already."));
        }
        if !deliver::resend(&ctx.app, &d).await? {
            return Err(ApiError::conflict("replay_in_progress", "This delivery is being sent again already."));
        }
        let mark = Update::new().set("replayedAt", time::now_string());
        if let Err(err) = ctx.app.store.update(&keys::dead_letter(&owner, &d.id), mark, Some(Condition::Exists)).await {
            if !err.is_condition_failed() {
                tracing::warn!(error = %err, "could not mark the dead letter replayed");
            }
        }
        Ok(Reply::ok(Replaying { id: d.id, webhook_id: dl.webhook_id, event_id: dl.event_id, status: "queued".into() }))
    }
}
