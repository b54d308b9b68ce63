//! Which Apollo key a discovery uses, and what we know of its quota.
//!
//! A workspace may bring its own Apollo key (`PUT /v1/workspaces/{id}/integrations/apollo`, sealed
//! like mailbox passwords, never returned); otherwise discovery uses the platform's
//! (`LINKCRM_APOLLO_API_KEY`). When Apollo answers that a key's credits or plan quota are used up,
//! the key's scope is marked exhausted (`PROVIDER#apollo#<scope>` / `#quota`, for
//! `LINKCRM_APOLLO_QUOTA_RECHECK_SECS`, default an hour): new discoveries on that key are refused
//! at once with 422 `apollo_quota_exceeded` instead of being queued to fail. A later successful
//! search clears the mark.

use crate::error::ApiResult;
use crate::records::{self, obj};
use crate::App;
use linkcrm_storage::{Item, Key, TxOp};
use serde_json::json;

/// Where a discovery's Apollo calls are billed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The workspace's own key.
    Workspace(String),
    /// The platform's key.
    Platform,
}

impl Scope {
    fn name(&self) -> String {
        match self {
            Scope::Workspace(ws) => ws.clone(),
            Scope::Platform => "platform".into(),
        }
    }
}

pub fn integration_key(ws: &str) -> Key {
    crate::keys::apollo_integration(ws)
}

pub fn quota_key(scope: &Scope) -> Key {
    crate::keys::apollo_quota(&scope.name())
}

fn recheck_secs() -> i64 {
    std::env::var("LINKCRM_APOLLO_QUOTA_RECHECK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3600)
}

/// The workspace's own key, if it set one, with its scope; else the platform's scope.
pub async fn resolve(app: &App, ws: &str) -> ApiResult<(Scope, Option<String>)> {
    let item = app.store.get(&integration_key(ws)).await?;
    match own_key(app, item.as_ref()) {
        Some(key) => Ok((Scope::Workspace(ws.to_owned()), Some(key))),
        None => Ok((Scope::Platform, None)),
    }
}

/// The workspace's own key from its integration item, already read.
pub fn own_key(app: &App, item: Option<&Item>) -> Option<String> {
    item.and_then(|i| records::str_of(i, "apiKeySealed")).and_then(|s| app.open_sealed(s))
}

/// Which key a workspace's discoveries use and what is known of its quota.
pub struct KeyState {
    pub scope: Scope,
    /// The workspace's integration item, when it brought its own key.
    pub integration: Option<Item>,
    /// When the key in use was found out of quota, while that is still what we know.
    pub exhausted_at: Option<String>,
}

/// [`KeyState`] in one batch read (the integration and both quota marks), for the request path.
pub async fn state(app: &App, ws: &str) -> ApiResult<KeyState> {
    let keys = [integration_key(ws), quota_key(&Scope::Workspace(ws.to_owned())), quota_key(&Scope::Platform)];
    let found = app.store.batch_get(&keys).await?;
    let find = |k: &Key| found.iter().find(|i| Key::of(i).as_ref() == Some(k)).cloned();
    let integration = find(&keys[0]);
    let (scope, quota) = match integration {
        Some(_) => (Scope::Workspace(ws.to_owned()), find(&keys[1])),
        None => (Scope::Platform, find(&keys[2])),
    };
    let exhausted_at = quota.as_ref().and_then(|q| records::str_of(q, "exhaustedAt")).map(str::to_owned);
    Ok(KeyState { scope, integration, exhausted_at })
}

/// Marks the scope's quota exhausted (expires by itself after the recheck interval).
pub fn mark_exhausted_op(scope: &Scope) -> TxOp {
    let k = quota_key(scope);
    let ttl = linkcrm_storage::now_epoch() + recheck_secs();
    TxOp::put(obj(json!({ "PK": k.pk, "SK": k.sk, "entity": "providerQuota", "provider": "apollo",
                          "exhaustedAt": linkcrm_domain::time::now_string(), "ttl": ttl })))
}

/// Apollo answered a search on this scope: whatever we knew of an exhausted quota is over.
pub fn clear_op(scope: &Scope) -> TxOp {
    TxOp::delete(quota_key(scope))
}
