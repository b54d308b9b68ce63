//! API keys: generation, hashing, lookup, and which workspace a request may act in. Reading
//! them off a wire format is each door's business (`linkcrm_http::headers` for REST).

use crate::catalogue::WorkspaceRule;
use crate::context::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{keys, App};
use linkcrm_domain::IdKind;
use linkcrm_storage::{Item, Update};
use serde_json::Value;
use sha2::{Digest, Sha256};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// lastUsedAt is refreshed at most this often, so reads do not each cost a write.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// A new secret: `sk_live_agency_…` or `sk_live_…` followed by 40 random base62 characters.
pub fn generate_secret(agency: bool) -> String {
    secret_with_prefix(if agency { "sk_live_agency_" } else { "sk_live_" })
}

/// Scopes of the seed 004 dialect's `ak_` keys, and what each grants here: `read:crm` reads the
/// CRM and campaigns (outbound email connections), `write:crm` writes them (sends included).
pub const AK_SCOPES: &[(&str, &[&str])] =
    &[("read:crm", &["crm:read", "campaigns:read"]), ("write:crm", &["crm:write", "campaigns:write"])];

/// A new `ak_` secret (a workspace key in the seed 004 dialect's format).
pub fn generate_ak_secret() -> String {
    secret_with_prefix("ak_")
}

fn secret_with_prefix(prefix: &str) -> String {
    let mut out = String::from(prefix);
    let mut produced = 0;
    while produced < 40 {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("the OS provides randomness");
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            if b < 248 && produced < 40 {
                out.push(BASE62[(b % 62) as usize] as char);
                produced += 1;
            }
        }
    }
    out
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The shown part of a secret, enough to recognise it in a list.
pub fn display_prefix(secret: &str) -> String {
    let keep = if secret.starts_with("sk_live_agency_") {
        19
    } else if secret.starts_with("ak_") {
        7
    } else {
        12
    };
    format!("{}…", secret.chars().take(keep).collect::<String>())
}

/// Resolves the caller from the bearer key: one consistent read, so a revoked key fails on the
/// very next request.
pub async fn authenticate(app: &App, secret: &str) -> ApiResult<Caller> {
    authenticate_hash(app, &hash_secret(secret)).await
}

/// As [`authenticate`], from the key's stored hash (work done later for a caller).
pub async fn authenticate_hash(app: &App, hash: &str) -> ApiResult<Caller> {
    let key = keys::api_key_auth(hash);
    let item = app.store.get(&key).await?.ok_or_else(|| ApiError::unauthorized("Unknown API key."))?;
    if item.get("revokedAt").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::unauthorized("This API key has been revoked."));
    }
    let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
    let caller = Caller {
        key_id: s("keyId").unwrap_or_default(),
        agency_id: s("agencyId").unwrap_or_default(),
        key_workspace: s("workspaceId"),
        scopes: item
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        key_hash: hash.to_owned(),
        member_id: s("memberId"),
    };
    touch_last_used(app, &key, &item).await;
    Ok(caller)
}

async fn touch_last_used(app: &App, key: &linkcrm_storage::Key, item: &Item) {
    let now = linkcrm_domain::time::now();
    let stale = item
        .get("lastUsedAt")
        .and_then(Value::as_str)
        .and_then(linkcrm_domain::time::parse)
        .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_GRANULARITY_SECS);
    if stale {
        let update = Update::new().set("lastUsedAt", linkcrm_domain::time::format(now));
        if let Err(e) = app.store.update(key, update, Some(linkcrm_storage::Condition::Exists)).await {
            tracing::warn!(error = %e, "could not record lastUsedAt");
        }
    }
}

/// A workspace record as stored, with what authorisation needs.
pub struct WorkspaceRecord {
    pub item: Item,
}

impl WorkspaceRecord {
    pub fn id(&self) -> &str {
        self.item.get("id").and_then(Value::as_str).unwrap_or_default()
    }
    pub fn agency_id(&self) -> &str {
        self.item.get("agencyId").and_then(Value::as_str).unwrap_or_default()
    }
    pub fn active(&self) -> bool {
        self.item.get("active").and_then(Value::as_bool).unwrap_or(true)
    }
    pub fn version(&self) -> i64 {
        self.item.get("version").and_then(Value::as_i64).unwrap_or(1)
    }
}

/// Checks that `id` is a workspace this caller may address, and loads it.
/// A workspace key may only ever address its own workspace; an agency key only its own agency's.
pub async fn authorize_workspace(app: &App, caller: &Caller, id: &str) -> ApiResult<WorkspaceRecord> {
    if !crate::ids::well_formed(IdKind::Workspace, id) {
        return Err(ApiError::invalid_field(
            "workspaceId",
            "invalid_request",
            format!("'{id}' is not a workspace id (ws_…)."),
        ));
    }
    if let Some(own) = &caller.key_workspace {
        if own != id {
            return Err(forbidden_workspace(id));
        }
    }
    let item = app
        .store
        .get(&keys::workspace(id))
        .await?
        .ok_or_else(|| ApiError::not_found("workspace_not_found", "workspace", id))?;
    let record = WorkspaceRecord { item };
    if record.agency_id() != caller.agency_id {
        return Err(forbidden_workspace(id));
    }
    Ok(record)
}

fn forbidden_workspace(id: &str) -> ApiError {
    ApiError::forbidden("workspace_forbidden", format!("This key cannot act in workspace '{id}'."))
        .with_details(serde_json::json!({ "workspaceId": id }))
}

/// The workspace a workspace-scoped request acts in, from the key or the one the caller named,
/// loaded: it must be the caller's and active.
pub async fn resolve_workspace(
    app: &App,
    caller: &Caller,
    rule: WorkspaceRule,
    named: &ApiResult<Option<String>>,
) -> ApiResult<Option<WorkspaceRecord>> {
    if rule == WorkspaceRule::None {
        return Ok(None);
    }
    let id = match (&caller.key_workspace, named.clone()?) {
        (Some(own), None) => own.clone(),
        (Some(_), Some(h)) | (None, Some(h)) => h,
        (None, None) if rule == WorkspaceRule::AgencyWide => return Ok(None),
        (None, None) => {
            return Err(ApiError::bad_request(
                "workspace_required",
                "An agency key must name the workspace with the X-Workspace-Id header.",
            ))
        }
    };
    let record = authorize_workspace(app, caller, &id).await?;
    if !record.active() {
        return Err(ApiError::forbidden("workspace_archived", format!("Workspace '{id}' is archived.")));
    }
    Ok(Some(record))
}
