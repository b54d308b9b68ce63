//! `workspaces.api_keys.*`: a workspace's keys. The secret is shown once, at creation.

use crate::auth::{self, generate_secret};
use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::{self, ListResponse};
use crate::platform::{api_key_ops, new_api_key};
use crate::{keys, lenient, outbox};
use linkcrm_domain::platform::{ApiKey, SCOPES};
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Key, Query, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Scopes a new workspace key gets when none are named: everything but administration.
const DEFAULT_SCOPES: &[&str] = &["crm:read", "crm:write", "campaigns:read", "campaigns:write", "webhooks:manage"];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    /// What the key is for, e.g. "Slack digest".
    #[schemars(length(max = 100), pattern(crate::rules::NOT_BLANK))]
    pub name: String,
    /// Any of crm:read, crm:write, campaigns:read, campaigns:write, webhooks:manage,
    /// workspaces:admin. Defaults to all but workspaces:admin.
    #[schemars(length(min = 1), extend("items" = { "type": "string", "enum": ["crm:read", "crm:write", "campaigns:read", "campaigns:write", "webhooks:manage", "workspaces:admin", "read:crm", "write:crm"] }))]
    pub scopes: Option<Vec<String>>,
    /// `sk` (default): an `sk_live_` key with this API's scopes. `ak`: an `ak_` key for the
    /// seed 004 dialect (`/api/crm`), with its scopes `read:crm` and `write:crm` (both by default).
    pub format: Option<KeyFormat>,
    /// The workspace member the key acts for (`me`).
    pub member_id: Option<crate::ids::Id<crate::ids::Member>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    Sk,
    Ak,
}

/// A new key: the record plus its secret, returned only this once.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret. It is stored only as a hash and never shown again.
    pub key: String,
}

async fn active_workspace(ctx: &Ctx, id: &str) -> ApiResult<()> {
    let record = auth::authorize_workspace(&ctx.app, &ctx.caller, id).await?;
    if !record.active() {
        return Err(ApiError::forbidden("workspace_archived", format!("Workspace '{id}' is archived.")));
    }
    Ok(())
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "workspaces.api_keys.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Create a workspace API key (the secret is returned once)";
    const TAG: &'static str = "API keys";
    type Input = CreateInput;
    type Output = CreatedKey;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<CreatedKey>> {
        active_workspace(&ctx, &input.id).await?;
        let format = input.format.unwrap_or(KeyFormat::Sk);
        if let Some(m) = &input.member_id {
            if ctx.app.store.get(&keys::member(&input.id, m)).await?.is_none() {
                return Err(ApiError::not_found("member_not_found", "member", m));
            }
        }
        let member = input.member_id.map(|m| m.to_string());
        issue(&ctx, Some(&input.id), &input.name, input.scopes, DEFAULT_SCOPES, format, member).await
    }
}

/// Checks a new key's name and scopes and commits it; `workspace` `None` makes an agency key.
async fn issue(
    ctx: &Ctx,
    workspace: Option<&str>,
    name: &str,
    scopes: Option<Vec<String>>,
    default_scopes: &[&str],
    format: KeyFormat,
    member: Option<String>,
) -> ApiResult<Reply<CreatedKey>> {
    let ak_scopes: Vec<&str> = auth::AK_SCOPES.iter().map(|(n, _)| *n).collect();
    let (known, default_scopes): (Vec<&str>, &[&str]) = match format {
        KeyFormat::Sk => (SCOPES.to_vec(), default_scopes),
        KeyFormat::Ak => (ak_scopes.clone(), &ak_scopes),
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field("name", "invalid_request", "must be 1 to 100 characters"));
    }
    let scopes: Vec<String> = match scopes {
        None => default_scopes.iter().map(|s| s.to_string()).collect(),
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid_field("scopes", "invalid_request", "name at least one scope"))
        }
        Some(list) => {
            let mut out: Vec<String> = Vec::new();
            for (i, s) in list.iter().enumerate() {
                if !known.contains(&s.as_str()) {
                    let what = if format == KeyFormat::Ak { "an ak_ key's scopes are" } else { "known" };
                    return Err(ApiError::invalid_field(
                        format!("scopes[{i}]"),
                        "invalid_request",
                        format!("unknown scope '{s}'; {what}: {}", known.join(", ")),
                    ));
                }
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            out
        }
    };
    // A key cannot hand out more than it holds.
    let granted: Vec<&str> = scopes
        .iter()
        .flat_map(|s| match auth::AK_SCOPES.iter().find(|(n, _)| n == s) {
            Some((_, grants)) => grants.to_vec(),
            None => vec![s.as_str()],
        })
        .collect();
    if let Some(missing) = granted.iter().find(|s| !ctx.caller.has_scope(s)) {
        return Err(ApiError::insufficient_scope(missing));
    }
    let secret = match format {
        KeyFormat::Ak => auth::generate_ak_secret(),
        KeyFormat::Sk => generate_secret(workspace.is_none()),
    };
    let mut key = new_api_key(name, &ctx.caller.agency_id, workspace, scopes, &secret);
    key.member_id = member;
    let mut ops = api_key_ops(&key, &secret);
    ops.push(outbox::event(
        "api_key.created",
        workspace,
        json!({ "keyId": key.id, "name": key.name, "scopes": key.scopes, "agencyKey": workspace.is_none() }),
    ));
    let reply = Reply::created(CreatedKey { api_key: key, key: secret });
    ctx.commit(ops, &reply).await?;
    Ok(reply)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn parse_key(pointer: &linkcrm_storage::Item, auth_item: Option<&linkcrm_storage::Item>) -> ApiResult<ApiKey> {
    let mut key: ApiKey = <ApiKey as serde::Deserialize>::deserialize(pointer).map_err(|e| {
        tracing::error!(error = %e, "stored key does not parse");
        ApiError::internal()
    })?;
    if let Some(a) = auth_item {
        key.last_used_at = a.get("lastUsedAt").and_then(Value::as_str).map(str::to_owned);
    }
    Ok(key)
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "workspaces.api_keys.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "List a workspace's API keys (never their secrets), newest first";
    const TAG: &'static str = "API keys";
    type Input = ListInput;
    type Output = ListResponse<ApiKey>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<ApiKey>>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        list_keys(&ctx, Some(&input.id), input.limit, input.cursor).await
    }
}

/// One page of a workspace's keys, or (`workspace` `None`) of the agency's own.
async fn list_keys(
    ctx: &Ctx,
    workspace: Option<&str>,
    limit: Option<u32>,
    cursor: Option<String>,
) -> ApiResult<Reply<ListResponse<ApiKey>>> {
    let limit = list::limit(limit)?;
    let scope = format!("api_keys.list#{}", workspace.unwrap_or(&ctx.caller.agency_id));
    let cursor = ctx.app.open_cursor(&scope, cursor.as_deref())?;
    let pk = keys::key_owner_pk(&ctx.caller.agency_id, workspace);
    let page = ctx.app.store.query(Query::partition(pk).backward().limit(limit).after(cursor)).await?;
    // lastUsedAt lives on the lookup item, which every request touches.
    let auth_keys: Vec<Key> =
        page.items.iter().filter_map(|p| p.get("hash").and_then(Value::as_str)).map(keys::api_key_auth).collect();
    let auth_items = ctx.app.store.batch_get(&auth_keys).await?;
    let data = page
        .items
        .iter()
        .map(|p| {
            let hash = p.get("hash").and_then(Value::as_str).unwrap_or_default();
            let auth_item = auth_items
                .iter()
                .find(|a| a.get("PK").and_then(Value::as_str) == Some(&crate::keys::api_key_auth(hash).pk));
            parse_key(p, auth_item)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    pub key_id: crate::ids::Id<crate::ids::ApiKey>,
}

pub struct Revoke;
impl Operation for Revoke {
    const NAME: &'static str = "workspaces.api_keys.revoke";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Revoke a key; it stops working on the next request";
    const TAG: &'static str = "API keys";
    type Input = RevokeInput;
    type Output = ();

    async fn run(ctx: Ctx, input: RevokeInput) -> ApiResult<Reply<()>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let pointer_key = keys::api_key_pointer(&ctx.caller.agency_id, Some(&input.id), &input.key_id);
        let pointer = ctx
            .app
            .store
            .get(&pointer_key)
            .await?
            .ok_or_else(|| ApiError::not_found("api_key_not_found", "API key", &input.key_id))?;
        revoke(&ctx, Some(&input.id), pointer_key, &pointer, Vec::new()).await
    }
}

/// Marks the key revoked on its record and on the lookup every request reads, so it stops
/// working on the next request. `guard` adds conditions to the same transaction.
async fn revoke(
    ctx: &Ctx,
    workspace: Option<&str>,
    pointer_key: Key,
    pointer: &linkcrm_storage::Item,
    guard: Vec<TxOp>,
) -> ApiResult<Reply<()>> {
    if pointer.get("revokedAt").is_some_and(|v| !v.is_null()) {
        return Ok(Reply::no_content());
    }
    let key_id = pointer_key.sk.clone();
    let hash = pointer.get("hash").and_then(Value::as_str).unwrap_or_default().to_owned();
    let now = time::now_string();
    let mut ops = guard;
    ops.extend([
        TxOp::update_if(pointer_key, Update::new().set("revokedAt", now.clone()), Condition::Exists),
        TxOp::update_if(keys::api_key_auth(&hash), Update::new().set("revokedAt", now), Condition::Exists),
        outbox::event("api_key.revoked", workspace, json!({ "keyId": key_id, "agencyKey": workspace.is_none() })),
    ]);
    ctx.app.store.transact(ops).await?;
    Ok(Reply::no_content())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgencyCreateInput {
    /// What the key is for, e.g. "Reporting robot".
    #[schemars(length(max = 100), pattern(crate::rules::NOT_BLANK))]
    pub name: String,
    /// Defaults to every scope. An agency key may act in every workspace of the agency.
    #[schemars(length(min = 1), extend("items" = { "type": "string", "enum": ["crm:read", "crm:write", "campaigns:read", "campaigns:write", "webhooks:manage", "workspaces:admin"] }))]
    pub scopes: Option<Vec<String>>,
}

pub struct AgencyCreate;
impl Operation for AgencyCreate {
    const NAME: &'static str = "agency.api_keys.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Create another agency key (the secret is returned once), e.g. to rotate keys";
    const TAG: &'static str = "API keys";
    type Input = AgencyCreateInput;
    type Output = CreatedKey;

    async fn run(ctx: Ctx, input: AgencyCreateInput) -> ApiResult<Reply<CreatedKey>> {
        issue(&ctx, None, &input.name, input.scopes, SCOPES, KeyFormat::Sk, None).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgencyListInput {
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct AgencyList;
impl Operation for AgencyList {
    const NAME: &'static str = "agency.api_keys.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "List the agency's own keys (never their secrets), newest first";
    const TAG: &'static str = "API keys";
    type Input = AgencyListInput;
    type Output = ListResponse<ApiKey>;

    async fn run(ctx: Ctx, input: AgencyListInput) -> ApiResult<Reply<ListResponse<ApiKey>>> {
        list_keys(&ctx, None, input.limit, input.cursor).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgencyRevokeInput {
    pub key_id: crate::ids::Id<crate::ids::ApiKey>,
}

pub struct AgencyRevoke;
impl Operation for AgencyRevoke {
    const NAME: &'static str = "agency.api_keys.revoke";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Revoke an agency key; it stops working on the next request and the \
                                   bulk-action schedules it created pause at their next run";
    const TAG: &'static str = "API keys";
    type Input = AgencyRevokeInput;
    type Output = ();

    async fn run(ctx: Ctx, input: AgencyRevokeInput) -> ApiResult<Reply<()>> {
        let agency = ctx.caller.agency_id.clone();
        let pointer_key = keys::api_key_pointer(&agency, None, &input.key_id);
        let pointer = ctx
            .app
            .store
            .get(&pointer_key)
            .await?
            .ok_or_else(|| ApiError::not_found("api_key_not_found", "API key", &input.key_id))?;
        // The agency must keep a key that works: the last live one cannot be revoked (create
        // another first). The transaction also checks that another key is still live, so two
        // revocations racing for the last two keys cannot both commit.
        let live = live_agency_keys(&ctx, &agency).await?;
        let other = live.iter().find(|(id, _)| id.as_str() != input.key_id.as_str());
        let Some((_, other_hash)) = other else {
            if pointer.get("revokedAt").is_some_and(|v| !v.is_null()) {
                return Ok(Reply::no_content());
            }
            return Err(ApiError::conflict(
                "last_agency_key",
                "This is the agency's last working key; create another agency key before revoking it.",
            ));
        };
        let guard = vec![TxOp::check(keys::api_key_auth(other_hash), Condition::AttrAbsent("revokedAt".into()))];
        revoke(&ctx, None, pointer_key, &pointer, guard).await.map_err(|e| {
            if e.code == "conflict" {
                ApiError::conflict(
                    "last_agency_key",
                    "Another key was revoked at the same time; list the keys and try again.",
                )
            } else {
                e
            }
        })
    }
}

/// The agency's keys that still work: (id, hash).
async fn live_agency_keys(ctx: &Ctx, agency: &str) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            ctx.app.store.query(Query::partition(keys::key_owner_pk(agency, None)).limit(200).after(cursor)).await?;
        for p in &page.items {
            if p.get("revokedAt").is_none_or(Value::is_null) {
                let id = p.get("SK").and_then(Value::as_str).unwrap_or_default().to_owned();
                out.push((id, p.get("hash").and_then(Value::as_str).unwrap_or_default().to_owned()));
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}
