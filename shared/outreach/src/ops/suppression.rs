//! `suppression.*`: a workspace's do-not-email list (seed 003's Suppression), and the platform's
//! hard bounces as they apply to it.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::{self, ListResponse};
use crate::suppression::{self, Channel, Kind, Provenance, Suppression, SuppressionSource};
use crate::{lenient, outbox};
use axum::http::StatusCode;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Query, StoreError, TxOp};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

const TAG: &str = "Suppression";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["email"], "properties": { "email": { "type": "string" } } }, { "required": ["domain"], "properties": { "domain": { "type": "string" } } }]))]
pub struct AddInput {
    /// An address to stop emailing…
    #[schemars(pattern(crate::rules::EMAIL))]
    pub email: Option<String>,
    /// …or a whole domain.
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub domain: Option<String>,
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
}

pub struct Add;
impl Operation for Add {
    const NAME: &'static str = "suppression.add";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Stop this workspace from emailing an address or a domain";
    const ALSO_SUCCEEDS_WITH: &'static [StatusCode] = &[StatusCode::OK];
    const TAG: &'static str = TAG;
    type Input = AddInput;
    type Output = Suppression;

    async fn run(ctx: Ctx, input: AddInput) -> ApiResult<Reply<Suppression>> {
        let ws = ctx.workspace().to_owned();
        let (kind, value) = suppression::target(input.email.as_deref(), input.domain.as_deref())?;
        let reason = crate::validate::text("reason", input.reason, 1000)?;
        let entry = Suppression {
            kind,
            value,
            workspace_id: Some(ws.clone()),
            source: SuppressionSource::Manual,
            reason,
            created_at: time::now_string(),
            provenance: Some(Provenance {
                workspace_id: Some(ws.clone()),
                channel: Channel::Api,
                message_id: None,
                inbound_message_id: None,
            }),
        };
        let ops = vec![
            TxOp::put_if(suppression::item(&entry, Some(&ctx.caller.agency_id)), Condition::NotExists),
            outbox::event("suppression.added", Some(&ws), json!(entry)),
        ];
        let reply = Reply::created(entry);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            // Already suppressed: adding it again changes nothing and says so.
            Err(StoreError::ConditionFailed { .. }) => {
                let existing = ctx
                    .app
                    .store
                    .get(&suppression::key(Some(&ws), kind, &reply.body.as_ref().ok_or_else(ApiError::internal)?.value))
                    .await?;
                let existing = existing.ok_or_else(ApiError::internal)?;
                Ok(Reply {
                    status: Some(StatusCode::OK),
                    ..Reply::ok(suppression::view(&existing, &ctx.caller.agency_id)?)
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Whether this address is suppressed for the workspace (its list and platform-wide
    /// bounces, by address and by domain).
    #[schemars(pattern(crate::rules::EMAIL))]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "suppression.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "The workspace's suppression list, or what blocks one address";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Suppression>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Suppression>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        if let Some(email) = &input.email {
            let (_, email) = suppression::target(Some(email), None)?;
            let data = suppression::blocking(&ctx.app.store, &ws, &email, &ctx.caller.agency_id).await?;
            return Ok(Reply::ok(ListResponse { data, next_cursor: None, total: None }));
        }
        let scope = format!("suppression.list#{ws}");
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let page =
            ctx.app.store.query(Query::partition(suppression::scope_pk(Some(&ws))).limit(limit).after(cursor)).await?;
        let data = page
            .items
            .iter()
            .map(|i| suppression::view(i, &ctx.caller.agency_id))
            .collect::<crate::error::DataResult<Vec<Suppression>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["email"], "properties": { "email": { "type": "string" } } }, { "required": ["domain"], "properties": { "domain": { "type": "string" } } }]))]
pub struct RemoveInput {
    #[schemars(pattern(crate::rules::EMAIL))]
    pub email: Option<String>,
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub domain: Option<String>,
}

pub struct Remove;
impl Operation for Remove {
    const NAME: &'static str = "suppression.remove";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Take an address or domain off the workspace's list (platform bounces stay)";
    const TAG: &'static str = TAG;
    type Input = RemoveInput;
    type Output = ();

    async fn run(ctx: Ctx, input: RemoveInput) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace().to_owned();
        let (kind, value) = suppression::target(input.email.as_deref(), input.domain.as_deref())?;
        let key = suppression::key(Some(&ws), kind, &value);
        let ops = vec![
            TxOp::Delete { key, cond: Some(Condition::Exists) },
            outbox::event("suppression.removed", Some(&ws), json!({ "kind": kind, "value": value })),
        ];
        match ctx.app.store.transact(ops).await {
            Ok(()) => Ok(Reply::no_content()),
            Err(StoreError::ConditionFailed { .. }) => {
                let what = if kind == Kind::Email { "suppressed address" } else { "suppressed domain" };
                Err(ApiError::not_found("suppression_not_found", what, &value))
            }
            Err(e) => Err(e.into()),
        }
    }
}
