//! `webhooks.create|list|get|update|delete|rotate_secret`: a workspace's or an agency's endpoints.

use super::{load, owner, SCOPE, TAG};
use crate::records::{self, Endpoint, Webhook};
use crate::{client, keys, signing};
use axum::http::StatusCode;
use linkcrm_core::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::ids::{self, Id};
use linkcrm_core::list::ListResponse;
use linkcrm_core::{lenient, outbox, rules};
use linkcrm_domain::{event_types, time, IdKind};
use linkcrm_storage::{Condition, Query, StoreError, TxOp};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A URL the schema accepts; what it must also be (https, a host, no credentials) is checked by
/// the operation (422 `invalid_webhook_url`).
const URL: &str = r"^https?://[^\s/?#]{1,253}(/[!-~]{0,1500})?$";

/// An event type, a prefix such as `link_building.*`, or `*`: the schema lists every accepted
/// value, so a name outside the catalogue is refused as a 400 by the schema itself.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct EventPattern(pub String);

impl<'de> Deserialize<'de> for EventPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if event_types::valid_pattern(&s) {
            Ok(EventPattern(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "unknown event type `{}`: GET /v1/webhooks/event-types lists them (prefixes such as link_building.* and * work too)",
                s.chars().take(100).collect::<String>()
            )))
        }
    }
}

/// Every pattern `valid_pattern` accepts.
pub fn all_patterns() -> Vec<String> {
    let mut out = vec!["*".to_owned()];
    for s in event_types::CATALOGUE.iter().filter(|s| event_types::is_subscribable(s.name)) {
        let parts: Vec<&str> = s.name.split('.').collect();
        for n in 1..parts.len() {
            let p = format!("{}.*", parts[..n].join("."));
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out.push(s.name.to_owned());
    }
    out
}

impl JsonSchema for EventPattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WebhookEventPattern".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An event type, a prefix ending in .* (link_building.*), or * for all",
            "enum": all_patterns(),
        })
    }
}

fn patterns(list: Vec<EventPattern>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in list {
        if !out.contains(&p.0) {
            out.push(p.0);
        }
    }
    out
}

fn check_url(ctx: &Ctx, url: &str) -> ApiResult<()> {
    if url.len() > 2048 || !regex::Regex::new(URL).expect("a valid pattern").is_match(url) {
        return Err(ApiError::invalid_field("url", "invalid_request", "must be an http(s) URL"));
    }
    match client::url_problem(url, client::allow_http()) {
        Some(why) => Err(unprocessable("url", "invalid_webhook_url", why)),
        None => {
            // An IP literal the guard refuses is refused now; names are vetted at each delivery.
            let host = reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                if ctx.app.config.guard().check_ip(ip).is_some() {
                    return Err(unprocessable(
                        "url",
                        "webhook_url_not_allowed",
                        "this address is not allowed: the endpoint must have a public internet address",
                    ));
                }
            }
            Ok(())
        }
    }
}

fn unprocessable(field: &str, code: &'static str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid_field(field, code, message);
    e.status = StatusCode::UNPROCESSABLE_ENTITY;
    e
}

/// Agency-only filters: the workspaces must be the agency's.
async fn check_filters(ctx: &Ctx, ws: &Option<String>, ids: &[String], tags: &[String]) -> ApiResult<()> {
    if ws.is_some() && (!ids.is_empty() || !tags.is_empty()) {
        return Err(unprocessable(
            if ids.is_empty() { "tags" } else { "workspaceIds" },
            "agency_webhook_only",
            "workspaceIds and tags filter an agency webhook (an agency key without X-Workspace-Id)",
        ));
    }
    for id in ids {
        let found = ctx.app.store.get(&linkcrm_core::keys::workspace(id)).await?;
        let ours = found.as_ref().and_then(|i| linkcrm_core::items::str_of(i, "agencyId"))
            == Some(ctx.caller.agency_id.as_str());
        if !ours {
            return Err(unprocessable(
                "workspaceIds",
                "workspace_not_found",
                format!("{id} is not a workspace of this agency"),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    /// Where events are POSTed: https (http only where `LINKCRM_WEBHOOK_ALLOW_HTTP` allows it).
    #[schemars(pattern(URL), length(max = 2048))]
    pub url: String,
    /// Event types, prefixes (`link_building.*`) or `*`; at least one.
    #[schemars(length(min = 1, max = 60))]
    pub events: Vec<EventPattern>,
    #[schemars(length(max = 500), pattern(rules::ONE_LINE))]
    pub description: Option<String>,
    /// Agency webhooks: only these workspaces' events.
    #[schemars(length(max = 100))]
    pub workspace_ids: Option<Vec<Id<ids::Workspace>>>,
    /// Agency webhooks: only events of workspaces with one of these tags.
    #[schemars(length(max = 20))]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Tag(#[schemars(pattern(rules::TAG))] pub String);

fn tags_of(t: Option<Vec<Tag>>) -> ApiResult<Vec<String>> {
    let re = regex::Regex::new(rules::TAG).expect("a valid pattern");
    let mut out = Vec::new();
    for Tag(t) in t.unwrap_or_default() {
        if !re.is_match(&t) {
            return Err(ApiError::invalid_field("tags", "invalid_request", "tags are 1-64 of A-Z a-z 0-9 : _ . / -"));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn description_of(d: Option<String>) -> ApiResult<Option<String>> {
    linkcrm_core::validate::header_text("description", d, 500)
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "webhooks.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "Register a webhook endpoint (an agency key without X-Workspace-Id registers an agency webhook); its whsec_ secret is shown once";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Webhook;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Webhook>> {
        let (owner, ws) = owner(&ctx);
        check_url(&ctx, &input.url)?;
        let events = patterns(input.events);
        if events.is_empty() {
            return Err(ApiError::invalid_field("events", "invalid_request", "name at least one event type"));
        }
        let workspace_ids: Vec<String> =
            input.workspace_ids.unwrap_or_default().into_iter().map(|i| i.into_string()).collect();
        let tags = tags_of(input.tags)?;
        check_filters(&ctx, &ws, &workspace_ids, &tags).await?;
        let description = description_of(input.description)?;
        let existing =
            ctx.app.store.query(Query::partition(keys::endpoints_pk(&owner)).limit(100).attrs(&["id"])).await?;
        if existing.items.len() >= records::MAX_ENDPOINTS {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_webhooks",
                format!("A workspace or agency has at most {} webhooks.", records::MAX_ENDPOINTS),
            ));
        }
        let secret = signing::new_secret();
        let now = time::now_string();
        let e = Endpoint {
            id: linkcrm_domain::new_id(IdKind::Webhook),
            owner,
            agency_id: ctx.caller.agency_id.clone(),
            workspace_id: ws,
            url: input.url,
            events,
            description,
            workspace_ids,
            tags,
            active: true,
            disabled_reason: None,
            disabled_at: None,
            secret: ctx.app.seal(&secret),
            previous_secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        let mut view = e.view();
        view.secret = Some(secret);
        let reply = Reply::created(view).with_version(1);
        ctx.commit(vec![TxOp::put_if(e.item(), Condition::NotExists)], &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "webhooks.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "The webhooks of the workspace (or, for an agency key without X-Workspace-Id, the agency's), newest first; no secrets";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Webhook>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Webhook>>> {
        let (owner, _) = owner(&ctx);
        let limit = linkcrm_core::list::limit(input.limit)?;
        let scope = format!("webhooks.list#{owner}");
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let page = ctx
            .app
            .store
            .query(Query::partition(keys::endpoints_pk(&owner)).backward().limit(limit).after(cursor))
            .await?;
        let data =
            page.items.iter().map(|i| Endpoint::from_item(i).map(|e| e.view())).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "webhooks.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str = "One webhook (no secret)";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Webhook>;
    type Output = Webhook;

    async fn run(ctx: Ctx, input: IdInput<ids::Webhook>) -> ApiResult<Reply<Webhook>> {
        let e = load(&ctx, input.id.as_str()).await?;
        let v = e.version;
        Ok(Reply::ok(e.view()).with_version(v))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: Id<ids::Webhook>,
    #[schemars(pattern(URL), length(max = 2048))]
    pub url: Option<String>,
    #[schemars(length(min = 1, max = 60))]
    pub events: Option<Vec<EventPattern>>,
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", length(max = 500), pattern(rules::ONE_LINE))]
    pub description: Option<Option<String>>,
    /// False pauses deliveries (`disabled_by_user`); true re-enables a disabled endpoint.
    pub active: Option<bool>,
    #[schemars(length(max = 100))]
    pub workspace_ids: Option<Vec<Id<ids::Workspace>>>,
    #[schemars(length(max = 20))]
    pub tags: Option<Vec<Tag>>,
}

pub struct Update;
impl Operation for Update {
    const NAME: &'static str = "webhooks.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "Change a webhook's url, events, description, filters, or pause/re-enable it (active)";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = Webhook;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Webhook>> {
        let before = load(&ctx, input.id.as_str()).await?;
        if let Some(v) = ctx.if_match {
            if v != before.version {
                return Err(ApiError::precondition_failed(before.version));
            }
        }
        let mut e = before.clone();
        if let Some(url) = input.url {
            check_url(&ctx, &url)?;
            e.url = url;
        }
        if let Some(ev) = input.events {
            e.events = patterns(ev);
            if e.events.is_empty() {
                return Err(ApiError::invalid_field("events", "invalid_request", "name at least one event type"));
            }
        }
        if let Some(d) = input.description {
            e.description = description_of(d)?;
        }
        if input.workspace_ids.is_some() || input.tags.is_some() {
            let ids: Vec<String> = match input.workspace_ids {
                Some(v) => v.into_iter().map(|i| i.into_string()).collect(),
                None => e.workspace_ids.clone(),
            };
            let tags = match input.tags {
                Some(t) => tags_of(Some(t))?,
                None => e.tags.clone(),
            };
            check_filters(&ctx, &e.workspace_id, &ids, &tags).await?;
            e.workspace_ids = ids;
            e.tags = tags;
        }
        let now = time::now_string();
        match input.active {
            Some(true) if !e.active => {
                e.active = true;
                e.disabled_reason = None;
                e.disabled_at = None;
                e.failing_since = None;
            }
            Some(false) if e.active => {
                e.active = false;
                e.disabled_reason = Some("disabled_by_user".into());
                e.disabled_at = Some(now.clone());
            }
            _ => {}
        }
        e.updated_at = now;
        e.version = before.version + 1;
        let reply = Reply::ok(e.view()).with_version(e.version);
        let put = TxOp::put_if(e.item(), Condition::VersionEquals(before.version));
        match ctx.commit(vec![put], &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. }) => {
                let now = load(&ctx, input.id.as_str()).await?;
                Err(ApiError::precondition_failed(now.version))
            }
            Err(err) => Err(err.into()),
        }
    }
}

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "webhooks.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str = "Delete a webhook; attempts still queued for it are cancelled";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Webhook>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<ids::Webhook>) -> ApiResult<Reply<()>> {
        let e = load(&ctx, input.id.as_str()).await?;
        let reply = Reply::no_content();
        ctx.commit(vec![TxOp::Delete { key: e.key(), cond: Some(Condition::Exists) }], &reply).await.map_err(
            |err| match err {
                StoreError::ConditionFailed { .. } => records::not_found(&e.id),
                other => other.into(),
            },
        )?;
        Ok(reply)
    }
}

pub struct RotateSecret;
impl Operation for RotateSecret {
    const NAME: &'static str = "webhooks.rotate_secret";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SUMMARY: &'static str =
        "Give a webhook a new whsec_ secret (shown once); the old one keeps signing beside it for 24 hours";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Webhook>;
    type Output = Webhook;

    async fn run(ctx: Ctx, input: IdInput<ids::Webhook>) -> ApiResult<Reply<Webhook>> {
        let before = load(&ctx, input.id.as_str()).await?;
        let secret = signing::new_secret();
        let now = chrono::Utc::now();
        let mut e = before.clone();
        e.previous_secret = Some(before.secret.clone());
        e.previous_secret_expires_at = Some(time::format(now + chrono::Duration::hours(24)));
        e.secret = ctx.app.seal(&secret);
        e.updated_at = time::format(now);
        e.version = before.version + 1;
        let mut view = e.view();
        view.secret = Some(secret);
        let reply = Reply::ok(view).with_version(e.version);
        let ops = vec![
            TxOp::put_if(e.item(), Condition::VersionEquals(before.version)),
            outbox::event(
                "webhook.secret_rotated",
                e.workspace_id.as_deref(),
                json!({ "webhookId": e.id, "agencyId": e.agency_id, "previousSecretExpiresAt": e.previous_secret_expires_at }),
            ),
        ];
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(ApiError::conflict("conflict", "The webhook changed while its secret was rotated; try again."))
            }
            Err(err) => Err(err.into()),
        }
    }
}
