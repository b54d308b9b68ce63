//! Integration health from what real calls did: each provider call a workspace's work makes
//! records its outcome (`WS#<ws>` / `#HEALTH#<integration>`), and `GET /v1/workspaces/{id}/health`
//! reads those records, never calling out per workspace listed.
//!
//! Writes are thrifty: a process writes an outcome only when the status changed or its last
//! write for that (workspace, integration) is over [`REFRESH`] old, and the write itself is
//! conditional on the same, so a busy workspace does not turn every provider call into a write.

use crate::App;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Update};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How stale a recorded outcome may get before the next call of the same status writes it again.
pub const REFRESH: Duration = Duration::from_secs(300);

pub const INTEGRATIONS: [&str; 4] = ["apollo", "ahrefs", "dataforseo", "llm"];

pub use crate::keys::integration_health as key;

/// What one call did.
pub enum Outcome<'a> {
    Ok,
    /// The call failed: a stable code (`provider_unavailable`, `provider_credentials_rejected`, …)
    /// and a message a tenant may read.
    Failed {
        code: &'a str,
        message: &'a str,
    },
}

/// (workspace, integration) → (last status written was healthy, when).
type Recent = Mutex<HashMap<(String, String), (bool, Instant)>>;

fn recent() -> &'static Recent {
    static RECENT: std::sync::OnceLock<Recent> = std::sync::OnceLock::new();
    RECENT.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records the outcome of a call to `integration` made for workspace `ws`. Never fails the
/// caller: a record that cannot be written is logged.
pub async fn record(app: &App, ws: &str, integration: &str, outcome: Outcome<'_>) {
    let ok = matches!(outcome, Outcome::Ok);
    let slot = (ws.to_owned(), integration.to_owned());
    {
        let mut recent = recent().lock().unwrap_or_else(|e| e.into_inner());
        if recent.get(&slot).is_some_and(|(was, at)| *was == ok && at.elapsed() < REFRESH) {
            return;
        }
        if recent.len() > 50_000 {
            recent.clear();
        }
        recent.insert(slot, (ok, Instant::now()));
    }
    let now = time::now();
    let epoch = now.timestamp();
    let status = if ok { "healthy" } else { "error" };
    let mut u = Update::new()
        .set("integration", integration)
        .set("status", status)
        .set("lastCheckedAt", time::format(now))
        .set("checkedEpoch", epoch);
    u = match outcome {
        Outcome::Ok => u.set("lastOkAt", time::format(now)),
        Outcome::Failed { code, message } => {
            u.set("lastError", json!({ "code": code, "message": message, "at": time::format(now) }))
        }
    };
    let other = if ok { "error" } else { "healthy" };
    let cond = Condition::Or(vec![
        Condition::AttrAbsent("checkedEpoch".into()),
        Condition::Below("checkedEpoch".into(), epoch - REFRESH.as_secs() as i64),
        Condition::Equals("status".into(), json!(other)),
    ]);
    match crate::audit::outside(app.store.update(&key(ws, integration), u, Some(cond))).await {
        Ok(_) => {}
        Err(e) if e.is_condition_failed() => {}
        Err(e) => tracing::warn!(ws, integration, error = %e, "could not record an integration's health"),
    }
}

/// Records what a provider call returned.
pub async fn observe<T>(app: &App, ws: &str, integration: &str, result: &Result<T, linkcrm_providers::ProviderError>) {
    record(app, ws, integration, Outcome::of_provider(result)).await
}

impl Outcome<'static> {
    /// What a provider call's result says.
    pub fn of_provider<T>(result: &Result<T, linkcrm_providers::ProviderError>) -> Outcome<'static> {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => {
                let (code, message) = failure(e);
                Outcome::Failed { code, message }
            }
        }
    }
}

/// A provider failure as health shows it: a stable code and a message a tenant may read.
pub fn failure(e: &linkcrm_providers::ProviderError) -> (&'static str, &'static str) {
    use linkcrm_providers::ProviderError as E;
    match e {
        E::RateLimited { .. } => ("rate_limited", "The provider is throttling our calls."),
        E::QuotaExceeded => ("quota_exceeded", "The account has no credits or quota left."),
        E::Unauthorized => ("credentials_rejected", "The provider rejected the API key."),
        E::Unavailable(_) => ("provider_unavailable", "The provider could not be reached or failed."),
        E::BadResponse(_) => ("bad_response", "The provider answered something unexpected."),
    }
}

/// How an integration is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NotConnected,
    Healthy,
    Warning,
    Error,
}

/// One integration's health as the API shows it.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `healthy`, `warning` (not used for a week, or failing but not yet given up on), `error`
    /// (its last call failed) or `not_connected`.
    pub status: Status,
    /// When a real call last told us something.
    pub last_checked_at: Option<String>,
    /// The last failure: `code`, `message`, `at`.
    pub last_error: Option<serde_json::Value>,
}

/// A recorded outcome older than this reads as `warning` (nothing has shown it still works).
pub const STALE: chrono::Duration = chrono::Duration::days(7);

impl Health {
    /// What a call (or probe) made just now found; `previous` is the last failure on record,
    /// kept when this one worked.
    pub fn now(outcome: &Outcome<'_>, previous: Option<serde_json::Value>) -> Health {
        let at = time::now_string();
        match outcome {
            Outcome::Ok => Health { status: Status::Healthy, last_checked_at: Some(at), last_error: previous },
            Outcome::Failed { code, message } => {
                let last_error = Some(json!({ "code": code, "message": message, "at": at }));
                Health { status: Status::Error, last_checked_at: Some(at), last_error }
            }
        }
    }

    /// From a recorded outcome (`record`).
    pub fn of_record(item: &linkcrm_storage::Item) -> Health {
        use crate::items::str_of;
        let checked = str_of(item, "lastCheckedAt").map(str::to_owned);
        let stale = checked.as_deref().and_then(time::parse).is_none_or(|t| time::now() - t > STALE);
        let status = match str_of(item, "status") {
            Some("error") => Status::Error,
            _ if stale => Status::Warning,
            _ => Status::Healthy,
        };
        Health { status, last_checked_at: checked, last_error: item.get("lastError").filter(|v| !v.is_null()).cloned() }
    }
}
