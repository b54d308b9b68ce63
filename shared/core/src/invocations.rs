//! Invocations: one record per piece of queued, billed work (a skill run by the workspace's agent).
//!
//! Item `INV#<id>` / `#`, indexed on GSI1 as `WS#<ws>#INVS` / `<createdAt>#<id>` so a workspace
//! lists its invocations newest first. Every status change is conditional on `version`, so two
//! workers (a redelivered job) can never both move the same invocation, and a credit charge or
//! release rides in the same transaction as the status change that justifies it.

use crate::credits::{self, Pool};
use crate::error::{ApiError, ApiResult, DataResult};
use crate::items::{self as records, obj};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Item, TxOp, Update};
use serde_json::{json, Value};

pub use linkcrm_domain::enums::InvocationStatus as Status;

pub use crate::keys::{invocation as key, invocations_pk as workspace_pk};

/// One agent per workspace: its id is derived from the workspace id, so it needs no record.
pub fn agent_id(ws: &str) -> String {
    format!("agt_{}", ws.strip_prefix("ws_").unwrap_or(ws))
}

/// What `new_item` needs.
pub struct NewInvocation<'a> {
    pub id: &'a str,
    pub ws: &'a str,
    pub skill: &'a str,
    pub input: Value,
    pub pool: &'a Pool,
    pub reserved_milli: i64,
    pub duration_seconds: i64,
}

pub fn new_id() -> String {
    linkcrm_domain::new_id(IdKind::Invocation)
}

pub fn pool_attrs(pool: &Pool) -> (&'static str, &str) {
    match pool {
        Pool::Workspace(w) => ("workspace", w.as_str()),
        Pool::Agency(a) => ("agency", a.as_str()),
    }
}

pub fn pool_of_item(item: &Item) -> DataResult<Pool> {
    let id = records::str_of(item, "poolId").ok_or_else(|| records::corrupt("invocation", "no poolId"))?.to_owned();
    Ok(match records::str_of(item, "poolKind") {
        Some("agency") => Pool::Agency(id),
        _ => Pool::Workspace(id),
    })
}

pub fn new_item(n: &NewInvocation<'_>) -> Item {
    let k = key(n.id);
    let now = time::now_string();
    let (kind, pool_id) = pool_attrs(n.pool);
    obj(json!({
        "PK": k.pk, "SK": k.sk, "entity": "invocation",
        "GSI1PK": workspace_pk(n.ws), "GSI1SK": format!("{now}#{}", n.id),
        "invocationId": n.id, "agentId": agent_id(n.ws), "skill": n.skill, "status": Status::Pending,
        "workspaceId": n.ws, "input": n.input,
        "estimatedCost": { "credits": credits::as_credits(n.reserved_milli), "durationSeconds": n.duration_seconds },
        "reservedMilli": n.reserved_milli, "creditsUsed": null, "result": null, "error": null,
        "poolKind": kind, "poolId": pool_id,
        "createdAt": now, "updatedAt": now, "version": 1,
    }))
}

pub fn version(item: &Item) -> i64 {
    records::int_of(item, "version").unwrap_or(1)
}
/// The stored status (an item without one, or with a value no version wrote, reads as PENDING).
pub fn status(item: &Item) -> Status {
    records::str_of(item, "status").and_then(Status::parse).unwrap_or(Status::Pending)
}

/// Moves the invocation from the version read to `status`, setting `extra` too.
pub fn transition(item: &Item, status: Status, extra: Vec<(&str, Value)>) -> TxOp {
    let id = records::str_of(item, "invocationId").unwrap_or_default();
    let mut u = Update::new().set("status", status).set("updatedAt", time::now_string()).add("version", 1);
    for (k, v) in extra {
        u = u.set(k, v);
    }
    TxOp::update_if(key(id), u, Condition::VersionEquals(version(item)))
}

/// The outbox event of an invocation moving to `status` (`agent.invocation.awaiting_approval`,
/// `completed`, `failed`, `cancelled`), committed with the move: a snapshot of the invocation as
/// the move leaves it, with `previous` and `version`. `None` for the other statuses.
pub fn status_event(item: &Item, status: Status, changes: &[(&str, Value)]) -> Option<TxOp> {
    let r#type = match status {
        Status::WaitingApproval => "agent.invocation.awaiting_approval",
        Status::Succeeded => "agent.invocation.completed",
        Status::Failed => "agent.invocation.failed",
        Status::Cancelled => "agent.invocation.cancelled",
        _ => return None,
    };
    let ws = records::str_of(item, "workspaceId");
    let before = self::status(item);
    let mut after = item.clone();
    for (k, v) in changes {
        after.insert((*k).to_owned(), v.clone());
    }
    after.insert("status".into(), json!(status));
    let new_version = if before == status { version(item) } else { version(item) + 1 };
    after.insert("version".into(), json!(new_version));
    let mut data = view(&after);
    data["previous"] = if before == status { Value::Null } else { json!({ "status": before }) };
    Some(crate::outbox::event(r#type, ws, data))
}

/// The problem an invocation carries in `error`.
pub fn problem(status: u16, code: &str, message: &str) -> Value {
    json!({ "type": format!("https://linkcrm.dev/errors/{code}"), "code": code, "status": status,
            "message": message, "details": {} })
}

/// The client's view: the stored item without keys and bookkeeping.
pub fn view(item: &Item) -> Value {
    let mut v = item.clone();
    for k in ["PK", "SK", "GSI1PK", "GSI1SK", "entity", "reservedMilli", "poolKind", "poolId"] {
        v.remove(k);
    }
    Value::Object(v)
}

pub async fn load(store: &linkcrm_storage::DynStore, ws: Option<&str>, id: &str) -> ApiResult<Item> {
    let not_found = || ApiError::not_found("invocation_not_found", "Invocation", id);
    if !id.starts_with("inv_") {
        return Err(not_found());
    }
    let item = store.get(&key(id)).await?.ok_or_else(not_found)?;
    if let Some(ws) = ws {
        if records::str_of(&item, "workspaceId") != Some(ws) {
            return Err(not_found());
        }
    }
    Ok(item)
}

/// Cancels a PENDING (or WAITING_APPROVAL) invocation and gives back its reservation, in one transaction.
pub fn cancel_ops(item: &Item) -> DataResult<Vec<TxOp>> {
    let pool = pool_of_item(item)?;
    let ws = records::str_of(item, "workspaceId").unwrap_or_default();
    let skill = records::str_of(item, "skill").unwrap_or_default();
    let id = records::str_of(item, "invocationId").unwrap_or_default();
    let reserved = records::int_of(item, "reservedMilli").unwrap_or(0);
    let mut ops = vec![transition(item, Status::Cancelled, vec![])];
    ops.extend(status_event(item, Status::Cancelled, &[]));
    ops.extend(credits::release(&pool, ws, skill, id, reserved));
    Ok(ops)
}

/// Finishes a RUNNING invocation: charges `used` of the reservation (releasing the rest).
pub fn finish_ops(item: &Item, status: Status, used: i64, result: Value, error: Value) -> DataResult<Vec<TxOp>> {
    let pool = pool_of_item(item)?;
    let ws = records::str_of(item, "workspaceId").unwrap_or_default();
    let skill = records::str_of(item, "skill").unwrap_or_default();
    let id = records::str_of(item, "invocationId").unwrap_or_default();
    let reserved = records::int_of(item, "reservedMilli").unwrap_or(0);
    let changes = vec![("creditsUsed", credits::as_credits(used)), ("result", result), ("error", error)];
    let mut ops = vec![transition(item, status, changes.clone())];
    ops.extend(status_event(item, status, &changes));
    if used > 0 {
        ops.extend(credits::charge(&pool, ws, skill, id, reserved, used));
    } else {
        ops.extend(credits::release(&pool, ws, skill, id, reserved));
    }
    Ok(ops)
}

/// The outcome a job reaches: `status` with `used` of the reservation charged (the rest released),
/// its result and error.
pub struct Outcome {
    pub status: Status,
    pub used: i64,
    pub result: Value,
    pub error: Value,
}

/// Commits a job's finish of its invocation, with `extra` parts in the same transaction. A finish
/// that lost to another (the version moved: a concurrent run finished, or it was cancelled) is no
/// error, the other one counts; a store failure asks for a retry.
pub async fn commit_finish(
    app: &crate::App,
    item: &Item,
    outcome: Outcome,
    extra: Vec<TxOp>,
) -> Result<(), linkcrm_jobs::HandlerError> {
    use linkcrm_jobs::HandlerError;
    let Outcome { status, used, result, error } = outcome;
    let mut ops = finish_ops(item, status, used, result, error)?;
    ops.extend(extra);
    match app.store.transact(ops).await {
        Ok(()) | Err(linkcrm_storage::StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => {
            let id = records::str_of(item, "invocationId").unwrap_or_default();
            tracing::warn!(invocation = id, error = %e, "could not finish the invocation; the job will be retried");
            Err(HandlerError::Retry { after: std::time::Duration::from_secs(2) })
        }
    }
}
