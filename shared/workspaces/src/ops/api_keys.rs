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
    #[schemars(length(min = 1), extend("items" = { "type": "string", "enum": ["crm:read", "crm:write", "campaigns:read", "campaigns:write", "webhooks:manage", "workspaces:admin"] }))]
    pub scopes: Option<Vec<String>>,
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
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::invalid_field("name", "invalid_request", "must be 1 to 100 characters"));
        }
        let scopes: Vec<String> = match input.scopes {
            None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
            Some(list) if list.is_empty() => {
                return Err(ApiError::invalid_field("scopes", "invalid_request", "name at least one scope"))
            }
            Some(list) => {
                let mut out: Vec<String> = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    if !SCOPES.contains(&s.as_str()) {
                        return Err(ApiError::invalid_field(
                            format!("scopes[{i}]"),
                            "invalid_request",
                            format!("unknown scope '{s}'; known: {}", SCOPES.join(", ")),
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
        if let Some(missing) = scopes.iter().find(|s| !ctx.caller.has_scope(s)) {
            return Err(ApiError::insufficient_scope(missing));
        }
        let secret = generate_secret(false);
        let key = new_api_key(name, &ctx.caller.agency_id, Some(&input.id), scopes, &secret);
        let mut ops = api_key_ops(&key, &secret);
        ops.push(outbox::event(
            "api_key.created",
            Some(&input.id),
            json!({ "keyId": key.id, "name": key.name, "scopes": key.scopes }),
        ));
        let reply = Reply::created(CreatedKey { api_key: key, key: secret });
        ctx.commit(ops, &reply).await?;
        Ok(reply)
    }
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
        let limit = list::limit(input.limit)?;
        let scope = format!("api_keys.list#{}", input.id);
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let pk = keys::key_owner_pk(&ctx.caller.agency_id, Some(&input.id));
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
        if pointer.get("revokedAt").is_some_and(|v| !v.is_null()) {
            return Ok(Reply::no_content());
        }
        let hash = pointer.get("hash").and_then(Value::as_str).unwrap_or_default().to_owned();
        let now = time::now_string();
        ctx.app
            .store
            .transact(vec![
                TxOp::update_if(pointer_key, Update::new().set("revokedAt", now.clone()), Condition::Exists),
                TxOp::update_if(keys::api_key_auth(&hash), Update::new().set("revokedAt", now), Condition::Exists),
                outbox::event("api_key.revoked", Some(&input.id), json!({ "keyId": input.key_id })),
            ])
            .await?;
        Ok(Reply::no_content())
    }
}
