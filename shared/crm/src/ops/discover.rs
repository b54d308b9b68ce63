//! `link_building.crm.contact.discover`: Apollo contact discovery, as queued work. The request
//! creates an invocation (PENDING), reserves its estimated credits and enqueues the discovery job
//! in one transaction, and answers 202; the job (`crate::discovery`) does the searching.

use super::TAG_CONTACTS;
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::credits;
use crate::discovery::{self, JOB_KIND, QUEUE, SKILL};
use crate::error::{ApiError, ApiResult};
use crate::invocations::{self as inv};
use crate::write;
use axum::http::StatusCode;
use linkcrm_jobs::{Job, StoreQueue};
use linkcrm_storage::StoreError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Discover>()]
}

pub const MAX_ACCOUNTS: usize = 25;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoverInput {
    /// 1 to 25 account ids.
    #[schemars(length(min = 1, max = 25))]
    pub account_ids: Vec<crate::ids::Id<crate::ids::Account>>,
    #[serde(default)]
    #[schemars(length(max = 50), extend("items" = { "type": "string", "maxLength": 200 }))]
    pub roles: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 50), extend("items" = { "type": "string", "maxLength": 200 }))]
    pub seniority: Vec<String>,
}

pub struct Discover;
impl Operation for Discover {
    const NAME: &'static str = SKILL;
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = discovery::PER_ACCOUNT_MILLI as u64;
    const SUMMARY: &'static str =
        "Discover contacts via Apollo (queued: answers 202 with an invocation; 0.4 credits per account)";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = DiscoverInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: DiscoverInput) -> ApiResult<Reply<Value>> {
        let mut ids: Vec<String> = Vec::new();
        for id in input.account_ids.into_iter().map(String::from) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() || ids.len() > MAX_ACCOUNTS {
            return Err(ApiError::invalid_field(
                "accountIds",
                "invalid_request",
                format!("1 to {MAX_ACCOUNTS} account ids"),
            ));
        }
        for (field, list) in [("roles", &input.roles), ("seniority", &input.seniority)] {
            if list.len() > 50 || list.iter().any(|s| s.chars().count() > 200) {
                return Err(ApiError::invalid_field(field, "invalid_request", "at most 50 values of 200 characters"));
            }
        }
        for id in &ids {
            write::load_account(&ctx.app, id).await.map_err(|mut e| {
                if let Some(f) = e.errors.first_mut() {
                    f.field = "accountIds".into();
                }
                e
            })?;
        }
        let ws = ctx.workspace().to_owned();
        // Refused at once when the key this workspace would use is known to be out of quota.
        let keys = crate::apollo_keys::state(&ctx.app, &ws).await?;
        if let Some(since) = keys.exhausted_at {
            let whose = if keys.scope == crate::apollo_keys::Scope::Platform { "platform's" } else { "workspace's" };
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "apollo_quota_exceeded",
                format!("The {whose} Apollo credits or plan quota were exhausted at {since}; nothing was queued."),
            )
            .with_details(json!({ "provider": "apollo", "exhaustedAt": since })));
        }
        let pool = crate::workspace::pool_of(&crate::workspace::from_record(ctx.workspace_record())?);
        let (reserved, seconds) = discovery::estimate(ids.len());
        let id = inv::new_id();
        let mut item = inv::new_item(&inv::NewInvocation {
            id: &id,
            ws: &ws,
            skill: SKILL,
            input: json!({ "accountIds": ids, "roles": input.roles, "seniority": input.seniority }),
            pool: &pool,
            reserved_milli: reserved,
            duration_seconds: seconds,
        });
        item.insert("agencyId".into(), json!(ctx.caller.agency_id));
        let view = inv::view(&item);
        let job = Job::new(JOB_KIND, json!({ "invocationId": id }));
        let mut ops = vec![linkcrm_storage::TxOp::put_if(item, linkcrm_storage::Condition::NotExists)];
        ops.extend(credits::reserve(&pool, &ws, SKILL, &id, reserved));
        // The job is committed with the invocation, so it exists iff the invocation does: the
        // store queue the local binary's worker reads, and that the relay forwards to SQS in AWS.
        ops.push(StoreQueue::enqueue_op(QUEUE, &job, Duration::ZERO).map_err(|e| {
            tracing::error!(error = %e, "discover job rejected by the queue");
            ApiError::internal()
        })?);
        let body = json!({
            "invocationId": view["invocationId"], "agentId": view["agentId"], "skill": view["skill"],
            "status": view["status"], "estimatedCost": view["estimatedCost"],
            "links": { "self": format!("/v1/agent/invocations/{id}") },
        });
        let reply = Reply { status: Some(StatusCode::ACCEPTED), body: Some(body), version: None };
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            // The invocation and job keys are new: a failed condition is the credit reservation.
            Err(StoreError::ConditionFailed { .. }) => {
                Err(credits::insufficient(&ctx.app.store, &pool, SKILL, reserved).await)
            }
            Err(e) => Err(e.into()),
        }
    }
}
