//! `Idempotency-Key` on writes: the first request runs; a retry with the same key and body gets
//! the first response again; the same key with another body is 409 `idempotency_key_reused`; a
//! duplicate that arrives while the first still runs is 409 `idempotency_in_progress`.
//!
//! A record goes `started` (with a lease) then `done` (with the response), and expires after 24 h.
//! An operation that can commits the `done` record in its own transaction
//! ([`Ctx::commit`](crate::context::Ctx::commit)), so a process that dies
//! after the commit leaves a record a retry replays. For the others the executor writes it after
//! the operation returns; if the process dies between the two, the lease runs out and a retry may
//! run the operation again (ADR 0004).

use crate::error::{ApiError, ApiResult};
use crate::{keys, App};
use axum::http::StatusCode;
use linkcrm_storage::{Condition, Item, StoreError, TxOp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const RECORD_TTL_SECS: i64 = 24 * 3600;
const LEASE_SECS: i64 = 60;

#[derive(Clone)]
pub struct Guard {
    scope: String,
    token: String,
    fingerprint: String,
}

#[derive(Clone, Debug)]
pub struct Stored {
    pub status: u16,
    pub body: Option<Value>,
    pub version: Option<i64>,
}

pub enum Begin {
    Proceed(Guard),
    Replay(Stored),
}

/// The started record of the request an operation runs for, so the operation can commit the
/// `done` record (its answer) in its own transaction.
pub struct Pending {
    guard: Guard,
    default_status: StatusCode,
    committed: AtomicBool,
}

impl Pending {
    pub fn new(guard: Guard, default_status: StatusCode) -> Arc<Pending> {
        Arc::new(Pending { guard, default_status, committed: AtomicBool::new(false) })
    }

    /// The part that turns the record `done` with this answer, conditional on the request still
    /// holding it (a request that lost its lease to a retry commits nothing). The status is the
    /// one the executor would give the reply: `status`, else 204 without a body, else the
    /// operation's success status.
    pub fn done_part(&self, status: Option<StatusCode>, body: Option<Value>, version: Option<i64>) -> TxOp {
        let status = status.unwrap_or(if body.is_none() { StatusCode::NO_CONTENT } else { self.default_status });
        let item = done_item(&self.guard, &Stored { status: status.as_u16(), body, version });
        TxOp::put_if(item, Condition::Equals("token".into(), self.guard.token.clone().into()))
    }

    /// The operation committed a transaction holding [`done_part`](Self::done_part).
    pub fn mark_committed(&self) {
        self.committed.store(true, Ordering::SeqCst);
    }

    /// Whether the operation committed its answer with its change.
    pub fn committed(&self) -> bool {
        self.committed.load(Ordering::SeqCst)
    }

    pub fn into_guard(self: Arc<Self>) -> Guard {
        match Arc::try_unwrap(self) {
            Ok(p) => p.guard,
            Err(shared) => shared.guard.clone(),
        }
    }
}

/// Checks the header's value: 1 to 255 visible ASCII characters.
pub fn validate_key(raw: &str) -> ApiResult<()> {
    if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        ));
    }
    Ok(())
}

/// What makes two requests "the same": the operation, the workspace and the input's JSON value
/// (path, query and body merged), with object keys sorted so that neither whitespace nor key order
/// matters.
pub fn fingerprint(operation: &str, workspace: Option<&str>, input: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(input, &mut canonical);
    let mut h = Sha256::new();
    for part in [operation.as_bytes(), workspace.unwrap_or("-").as_bytes(), canonical.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub async fn begin(
    app: &App,
    key_id: &str,
    workspace: Option<&str>,
    idem_key: &str,
    fingerprint: String,
) -> ApiResult<Begin> {
    let scope =
        format!("{key_id}#{}#{}", workspace.unwrap_or("-"), &hex::encode(Sha256::digest(idem_key.as_bytes()))[..32]);
    let token = linkcrm_domain::new_id(linkcrm_domain::IdKind::Request);
    let guard = Guard { scope, token, fingerprint };
    let fresh = started_item(&guard);
    match app.store.put(fresh.clone(), Some(Condition::NotExists)).await {
        Ok(()) => return Ok(Begin::Proceed(guard)),
        Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let key = keys::idempotency(&guard.scope);
    let Some(existing) = app.store.get(&key).await? else {
        // Expired between our write and read: try once more.
        app.store.put(fresh, Some(Condition::NotExists)).await.map_err(|_| in_progress())?;
        return Ok(Begin::Proceed(guard));
    };
    if existing.get("fingerprint").and_then(Value::as_str) != Some(guard.fingerprint.as_str()) {
        return Err(ApiError::conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request; use a new key.",
        ));
    }
    if existing.get("state").and_then(Value::as_str) == Some("done") {
        let stored = existing.get("response").cloned().unwrap_or(Value::Null);
        return Ok(Begin::Replay(Stored {
            status: stored.get("status").and_then(Value::as_u64).unwrap_or(200) as u16,
            body: stored.get("body").cloned().filter(|b| !b.is_null()),
            version: stored.get("version").and_then(Value::as_i64),
        }));
    }
    let lease = existing.get("leaseUntil").and_then(Value::as_i64).unwrap_or(0);
    if lease > linkcrm_storage::now_epoch() {
        return Err(in_progress());
    }
    // The first attempt died mid-flight: take over its record, unless someone else just did.
    let taken = Condition::Equals("token".into(), existing.get("token").cloned().unwrap_or(Value::Null));
    app.store.put(started_item(&guard), Some(taken)).await.map_err(|_| in_progress())?;
    Ok(Begin::Proceed(guard))
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
}

fn started_item(g: &Guard) -> Item {
    let now = linkcrm_storage::now_epoch();
    let key = keys::idempotency(&g.scope);
    let v = json!({
        "PK": key.pk, "SK": key.sk, "entity": "idempotency", "state": "started", "token": g.token,
        "fingerprint": g.fingerprint, "leaseUntil": now + LEASE_SECS, "ttl": now + RECORD_TTL_SECS,
    });
    v.as_object().cloned().expect("object")
}

/// Records the response for replays. Failing to record is logged, not surfaced: the request did
/// succeed, and a retry would only find the lease.
pub async fn finish(app: &App, g: Guard, stored: &Stored) {
    let item = done_item(&g, stored);
    if let Err(e) = app.store.put(item, Some(Condition::Equals("token".into(), g.token.clone().into()))).await {
        tracing::warn!(error = %e, "could not record idempotent response");
    }
}

fn done_item(g: &Guard, stored: &Stored) -> Item {
    let mut item = started_item(g);
    item.insert("state".into(), "done".into());
    item.insert("response".into(), json!({ "status": stored.status, "body": stored.body, "version": stored.version }));
    item
}

/// Forgets a started record after a failure that changed nothing, so the client may retry.
pub async fn abandon(app: &App, g: Guard) {
    let key = keys::idempotency(&g.scope);
    if let Err(e) = app.store.delete(&key, Some(Condition::Equals("token".into(), g.token.into()))).await {
        tracing::warn!(error = %e, "could not release idempotency record");
    }
}
