//! Bulk actions: one operation run once per workspace of an agency, through the executor, with the
//! asking key's scopes and each workspace's credit rules.
//!
//! A bulk action is a parent invocation (`inv_…`, `BULK#<id>` / `#`) and one result per workspace
//! (`BULK#<id>` / `WS#<ws>`). Reads over at most [`SYNC_LIMIT`] workspaces run in the request and
//! answer their results at once. Anything else answers 202 with the parent WAITING_CHILDREN and
//! runs as jobs: a `bulk_fan` job queues one `bulk_child` job per workspace, a chunk at a time
//! (the parent's `enqueued` count is the checkpoint, so a fan job run again resumes where it
//! stopped); each child runs the operation with the idempotency key `bulk:<parent>:<ws>` (so a
//! redelivered child never runs a write twice), then records its result and moves the parent's
//! counters in one transaction, made once; the child that completes the count ends the parent
//! (SUCCEEDED when at least one child succeeded, else FAILED; CONTRACT "Enumerations").

use axum::http::StatusCode;
use linkcrm_core::context::Caller;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::executor::{self, Call};
use linkcrm_core::ids::{self, Id};
use linkcrm_core::items::{self, obj};
use linkcrm_core::keys;
use linkcrm_core::App;
use linkcrm_domain::jobs::{JobKind, WORK_QUEUE};
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job, StoreQueue};
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp, Update};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Reads over at most this many workspaces answer in the request.
pub const SYNC_LIMIT: usize = 50;
/// Workspaces one bulk action may cover.
pub const MAX_WORKSPACES: usize = 500;
/// Child jobs queued per transaction by the fan job.
const CHUNK: usize = 50;

pub use crate::keys::{bulk_child as child_key, bulk_parent as parent_key};

/// One workspace's part of a bulk action.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildResult {
    pub workspace_id: String,
    /// `succeeded` or `failed`; `pending` while it has not run.
    pub status: String,
    /// The operation's answer, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The problem it answered (`code`, `message`, `status`, `details`), when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// A bulk action as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkAction {
    /// The parent invocation (`inv_…`).
    pub invocation_id: String,
    /// `SUCCEEDED`, `FAILED` (every workspace failed) or `WAITING_CHILDREN`.
    pub status: String,
    pub action: String,
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// One per workspace, in the order they were resolved.
    pub results: Vec<ChildResult>,
    /// The scheduled bulk action that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// Who asked, and what: what the parent record keeps for its children.
pub struct Ask<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    pub config: Value,
    pub workspaces: Vec<String>,
    pub schedule_id: Option<String>,
}

fn problem(e: &ApiError) -> Value {
    json!({ "status": e.status.as_u16(), "code": e.code, "message": e.message, "details": e.details })
}

fn parent_item(id: &str, ask: &Ask<'_>, status: &str, now: &str) -> Item {
    let k = parent_key(id);
    obj(json!({
        "PK": k.pk, "SK": k.sk, "entity": "bulkAction", "invocationId": id,
        "agencyId": ask.caller.agency_id, "keyId": ask.caller.key_id, "keyHash": ask.caller.key_hash,
        "action": ask.action, "config": ask.config, "workspaceIds": ask.workspaces,
        "total": ask.workspaces.len(), "enqueued": 0, "done": 0, "succeeded": 0, "failed": 0,
        "status": status, "scheduleId": ask.schedule_id, "createdAt": now, "updatedAt": now, "finishedAt": null,
    }))
}

fn child_item(id: &str, r: &ChildResult, now: &str) -> Item {
    let k = child_key(id, &r.workspace_id);
    let mut item = obj(json!(r));
    item.insert("PK".into(), k.pk.into());
    item.insert("SK".into(), k.sk.into());
    item.insert("entity".into(), "bulkResult".into());
    item.insert("at".into(), now.into());
    item
}

/// Runs `action` in workspace `ws` for `caller`, through the executor.
async fn run_one(
    app: &Arc<App>,
    caller: Caller,
    action: &str,
    ws: &str,
    config: &Value,
    idem: Option<String>,
) -> ChildResult {
    let call =
        Call { key: String::new(), workspace: Ok(Some(ws.to_owned())), if_match: None, idempotency_key: Ok(idem) };
    // Path parameters and the body are one object: the config is the operation's input.
    match executor::execute_as(app, action, caller, &call, config.clone()).await {
        Ok(out) => ChildResult {
            workspace_id: ws.to_owned(),
            status: "succeeded".into(),
            result: Some(out.response.body.unwrap_or(Value::Null)),
            error: None,
        },
        Err(e) => {
            ChildResult { workspace_id: ws.to_owned(), status: "failed".into(), result: None, error: Some(problem(&e)) }
        }
    }
}

/// Runs a read in every workspace now (at most [`SYNC_LIMIT`], 8 at a time) and records the
/// finished parent with its results in one transaction.
pub async fn run_now(app: &Arc<App>, ask: Ask<'_>, extra: Vec<TxOp>) -> ApiResult<BulkAction> {
    use futures::StreamExt;
    let id = linkcrm_core::invocations::new_id();
    let results: Vec<ChildResult> = futures::stream::iter(ask.workspaces.clone())
        .map(|ws| {
            let (app, caller, action, config) =
                (app.clone(), ask.caller.clone(), ask.action.to_owned(), ask.config.clone());
            async move { run_one(&app, caller, &action, &ws, &config, None).await }
        })
        .buffered(8)
        .collect()
        .await;
    let now = time::now_string();
    let succeeded = results.iter().filter(|r| r.status == "succeeded").count() as u64;
    let failed = results.len() as u64 - succeeded;
    let status = if succeeded > 0 || results.is_empty() { "SUCCEEDED" } else { "FAILED" };
    let mut parent = parent_item(&id, &ask, status, &now);
    parent.insert("enqueued".into(), json!(results.len()));
    parent.insert("done".into(), json!(results.len()));
    parent.insert("succeeded".into(), json!(succeeded));
    parent.insert("failed".into(), json!(failed));
    parent.insert("finishedAt".into(), json!(now));
    // The answers can be large: each result is its own item, written a transaction at a time.
    let mut ops = vec![TxOp::put_if(parent, Condition::NotExists)];
    ops.extend(extra);
    app.store.transact(ops).await?;
    for chunk in results.chunks(25) {
        app.store.transact(chunk.iter().map(|r| TxOp::put(child_item(&id, r, &now))).collect()).await?;
    }
    Ok(BulkAction {
        invocation_id: id,
        status: status.into(),
        action: ask.action.to_owned(),
        total: results.len() as u64,
        succeeded,
        failed,
        results,
        schedule_id: ask.schedule_id.clone(),
        created_at: now.clone(),
        finished_at: Some(now),
    })
}

/// The transaction parts that start a bulk action as jobs: the parent (WAITING_CHILDREN) and
/// its fan job. Answers the parent's id.
pub fn start_ops(ask: &Ask<'_>) -> ApiResult<(String, Vec<TxOp>)> {
    let id = linkcrm_core::invocations::new_id();
    let now = time::now_string();
    let fan = Job::new(JobKind::BulkFan.as_str(), json!({ "parentId": id }));
    let job = StoreQueue::enqueue_op(WORK_QUEUE, &fan, Duration::ZERO).map_err(|e| {
        tracing::error!(error = %e, "bulk fan job rejected by the queue");
        ApiError::internal()
    })?;
    Ok((id.clone(), vec![TxOp::put_if(parent_item(&id, ask, "WAITING_CHILDREN", &now), Condition::NotExists), job]))
}

/// A bulk action by id, for the agency that started it.
pub async fn load(app: &App, agency: &str, id: &str) -> ApiResult<BulkAction> {
    let missing = || ApiError::not_found("bulk_action_not_found", "bulk action", id);
    let parent = app.store.get(&parent_key(id)).await?.ok_or_else(missing)?;
    if items::str_of(&parent, "agencyId") != Some(agency) {
        return Err(missing());
    }
    let mut found: Vec<ChildResult> = Vec::new();
    let mut cursor = None;
    loop {
        let q = Query::partition(parent_key(id).pk).prefix(crate::keys::BULK_CHILD_PREFIX).limit(200).after(cursor);
        let page = app.store.query(q).await?;
        for i in &page.items {
            found.push(items::parse("bulk result", i)?);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let order: Vec<String> = parent
        .get("workspaceIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let results = order
        .iter()
        .map(|ws| {
            found.iter().find(|r| &r.workspace_id == ws).cloned().unwrap_or(ChildResult {
                workspace_id: ws.clone(),
                status: "pending".into(),
                result: None,
                error: None,
            })
        })
        .collect();
    let n = |k: &str| items::int_of(&parent, k).unwrap_or(0).max(0) as u64;
    Ok(BulkAction {
        invocation_id: id.to_owned(),
        status: items::str_of(&parent, "status").unwrap_or("WAITING_CHILDREN").to_owned(),
        action: items::str_of(&parent, "action").unwrap_or_default().to_owned(),
        total: n("total"),
        succeeded: n("succeeded"),
        failed: n("failed"),
        results,
        schedule_id: items::str_of(&parent, "scheduleId").map(str::to_owned),
        created_at: items::str_of(&parent, "createdAt").unwrap_or_default().to_owned(),
        finished_at: items::str_of(&parent, "finishedAt").map(str::to_owned),
    })
}

fn retry(e: &dyn std::fmt::Debug) -> HandlerError {
    tracing::warn!(error = ?e, "bulk action job will be retried");
    HandlerError::Retry { after: Duration::from_secs(2) }
}

/// Runs a `bulk_fan` job: queues the children not queued yet, a chunk per transaction.
pub async fn fan(app: &App, job: &Job) -> Result<(), HandlerError> {
    let Some(id) = job.payload.get("parentId").and_then(Value::as_str) else {
        return Err(HandlerError::Fail("bulk_fan job without parentId".into()));
    };
    loop {
        let Some(parent) = app.store.get(&parent_key(id)).await.map_err(|e| retry(&e))? else { return Ok(()) };
        let all: Vec<String> = parent
            .get("workspaceIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let from = items::int_of(&parent, "enqueued").unwrap_or(0).max(0) as usize;
        if from >= all.len() {
            return Ok(());
        }
        let to = (from + CHUNK).min(all.len());
        let mut ops = vec![TxOp::update_if(
            parent_key(id),
            Update::new().set("enqueued", to as i64).set("updatedAt", time::now_string()),
            Condition::Equals("enqueued".into(), json!(from)),
        )];
        for ws in &all[from..to] {
            let child = Job::new(JobKind::BulkChild.as_str(), json!({ "parentId": id, "workspaceId": ws }));
            ops.push(StoreQueue::enqueue_op(WORK_QUEUE, &child, Duration::ZERO).map_err(|e| retry(&e))?);
        }
        match app.store.transact(ops).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(retry(&e)),
        }
    }
}

/// Runs a `bulk_child` job: the operation in one workspace, its result and the parent's counters
/// in one transaction (made once), and the parent's end when it was the last.
pub async fn child(app: &Arc<App>, job: &Job) -> Result<(), HandlerError> {
    let (Some(id), Some(ws)) =
        (job.payload.get("parentId").and_then(Value::as_str), job.payload.get("workspaceId").and_then(Value::as_str))
    else {
        return Err(HandlerError::Fail("bulk_child job without parentId or workspaceId".into()));
    };
    let Some(parent) = app.store.get(&parent_key(id)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    if items::str_of(&parent, "status") != Some("WAITING_CHILDREN") {
        return Ok(());
    }
    if app.store.get(&child_key(id, ws)).await.map_err(|e| retry(&e))?.is_none() {
        let action = items::str_of(&parent, "action").unwrap_or_default().to_owned();
        let config = parent.get("config").cloned().unwrap_or_else(|| json!({}));
        let hash = items::str_of(&parent, "keyHash").unwrap_or_default();
        let result = match linkcrm_core::auth::authenticate_hash(app, hash).await {
            Ok(caller) => {
                // Writes carry an idempotency key of their own: a child run again replays its
                // first answer instead of acting twice.
                let writes = app.operation(&action).is_some_and(|s| s.effect.writes());
                let idem = writes.then(|| format!("bulk:{id}:{ws}"));
                run_one(app, caller, &action, ws, &config, idem).await
            }
            Err(e) if e.status.is_server_error() => return Err(retry(&e)),
            Err(e) => ChildResult {
                workspace_id: ws.to_owned(),
                status: "failed".into(),
                result: None,
                error: Some(problem(&e)),
            },
        };
        let now = time::now_string();
        let ok = result.status == "succeeded";
        let ops = vec![
            TxOp::put_if(child_item(id, &result, &now), Condition::NotExists),
            TxOp::update_if(
                parent_key(id),
                Update::new()
                    .add("done", 1)
                    .add(if ok { "succeeded" } else { "failed" }, 1)
                    .set("updatedAt", now.clone()),
                Condition::Equals("status".into(), json!("WAITING_CHILDREN")),
            ),
        ];
        match app.store.transact(ops).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(retry(&e)),
        }
    }
    finish_if_done(app, id).await.map_err(|e| retry(&e))
}

/// Ends the parent when every child has reported (whichever child sees it first; the status
/// condition makes it once).
async fn finish_if_done(app: &App, id: &str) -> Result<(), StoreError> {
    let Some(parent) = app.store.get(&parent_key(id)).await? else { return Ok(()) };
    let n = |k: &str| items::int_of(&parent, k).unwrap_or(0);
    if items::str_of(&parent, "status") != Some("WAITING_CHILDREN") || n("done") < n("total") {
        return Ok(());
    }
    let status = if n("succeeded") > 0 { "SUCCEEDED" } else { "FAILED" };
    let now = time::now_string();
    let u = Update::new().set("status", status).set("finishedAt", now.clone()).set("updatedAt", now);
    match app
        .store
        .update(&parent_key(id), u, Some(Condition::Equals("status".into(), json!("WAITING_CHILDREN"))))
        .await
    {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A `bulk_child` job given up (it kept failing, or its worker died on the last delivery): its
/// workspace's result is recorded as failed, so the parent still ends.
pub async fn give_up_child(app: &App, job: &Job, why: &str) -> Result<(), HandlerError> {
    let (Some(id), Some(ws)) =
        (job.payload.get("parentId").and_then(Value::as_str), job.payload.get("workspaceId").and_then(Value::as_str))
    else {
        return Ok(());
    };
    let now = time::now_string();
    let e = ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "job_failed", why.to_owned());
    let r =
        ChildResult { workspace_id: ws.to_owned(), status: "failed".into(), result: None, error: Some(problem(&e)) };
    let ops = vec![
        TxOp::put_if(child_item(id, &r, &now), Condition::NotExists),
        TxOp::update_if(
            parent_key(id),
            Update::new().add("done", 1).add("failed", 1).set("updatedAt", now),
            Condition::Equals("status".into(), json!("WAITING_CHILDREN")),
        ),
    ];
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(retry(&e)),
    }
    finish_if_done(app, id).await.map_err(|e| retry(&e))
}

/// The workspaces a bulk action covers: `"all"`, a list of ids, or `{"tags": [...]}` (any of them).
#[derive(Debug)]
pub enum Workspaces {
    All,
    Ids(Vec<String>),
    Tags(Vec<String>),
}

impl<'de> Deserialize<'de> for Workspaces {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let ws_id = |x: &Value| {
            x.as_str()
                .filter(|s| linkcrm_core::ids::well_formed(linkcrm_domain::IdKind::Workspace, s))
                .map(str::to_owned)
                .ok_or_else(|| D::Error::custom("workspace ids are ws_… strings"))
        };
        match v {
            Value::String(s) if s == "all" => Ok(Workspaces::All),
            Value::Array(a) if !a.is_empty() && a.len() <= MAX_WORKSPACES => {
                let mut ids: Vec<String> = Vec::new();
                for x in &a {
                    let id = ws_id(x)?;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                Ok(Workspaces::Ids(ids))
            }
            Value::Object(m) if m.len() == 1 && m.contains_key("tags") => {
                let tags = m["tags"]
                    .as_array()
                    .filter(|a| !a.is_empty() && a.len() <= 20)
                    .ok_or_else(|| D::Error::custom("tags is a list of 1 to 20 tags"))?;
                let re = regex::Regex::new(linkcrm_core::rules::TAG).expect("a valid pattern");
                let mut out = Vec::new();
                for t in tags {
                    let t = t
                        .as_str()
                        .filter(|t| re.is_match(t))
                        .ok_or_else(|| D::Error::custom("tags are 1-64 of A-Z a-z 0-9 : _ . / -"))?;
                    out.push(t.to_owned());
                }
                Ok(Workspaces::Tags(out))
            }
            _ => Err(D::Error::custom(r#"expected "all", a list of 1 to 500 workspace ids, or {"tags": [...]}"#)),
        }
    }
}

impl JsonSchema for Workspaces {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BulkWorkspaces".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let id = g.subschema_for::<Id<ids::Workspace>>();
        schemars::json_schema!({
            "description": "\"all\", a list of workspace ids, or {\"tags\": [...]} (workspaces with any of the tags)",
            "oneOf": [
                { "const": "all" },
                { "type": "array", "items": id, "minItems": 1, "maxItems": MAX_WORKSPACES, "uniqueItems": true },
                { "type": "object", "additionalProperties": false, "required": ["tags"],
                  "properties": { "tags": { "type": "array", "minItems": 1, "maxItems": 20, "uniqueItems": true,
                                            "items": { "type": "string", "pattern": linkcrm_core::rules::TAG } } } },
            ],
        })
    }
}

/// The agency's active workspaces the target names, in a stable order.
pub async fn resolve_for(app: &linkcrm_core::App, agency: &str, target: &Workspaces) -> ApiResult<Vec<String>> {
    let agency = &agency.to_owned();
    let pointers = |pk: String| async move {
        let mut out: Vec<(String, bool)> = Vec::new();
        let mut cursor = None;
        loop {
            let page = app.store.query(Query::partition(pk.clone()).limit(500).after(cursor)).await?;
            for i in &page.items {
                let ws = items::str_of(i, "workspaceId").or(items::str_of(i, "SK")).unwrap_or_default().to_owned();
                let active = i.get("active").and_then(Value::as_bool).unwrap_or(true);
                out.push((ws, active));
            }
            match page.cursor {
                Some(c) if out.len() <= MAX_WORKSPACES * 4 => cursor = Some(c),
                _ => return Ok::<_, ApiError>(out),
            }
        }
    };
    let mut ids: Vec<String> = Vec::new();
    match target {
        Workspaces::All => {
            for (ws, active) in pointers(keys::agency_workspaces_pk(agency)).await? {
                if active && !ids.contains(&ws) {
                    ids.push(ws);
                }
            }
        }
        Workspaces::Tags(tags) => {
            for t in tags {
                for (ws, active) in pointers(keys::tag_pk(agency, t)).await? {
                    if active && !ids.contains(&ws) {
                        ids.push(ws);
                    }
                }
            }
        }
        Workspaces::Ids(list) => {
            let found = app.store.batch_get(&list.iter().map(|w| keys::workspace(w)).collect::<Vec<_>>()).await?;
            for ws in list {
                let item = found.iter().find(|i| items::str_of(i, "id") == Some(ws.as_str()));
                match item {
                    Some(i) if items::str_of(i, "agencyId") == Some(agency.as_str()) => {
                        if i.get("active").and_then(Value::as_bool) == Some(false) {
                            return Err(unprocessable("workspaces", "workspace_archived", format!("{ws} is archived")));
                        }
                        ids.push(ws.clone());
                    }
                    _ => {
                        return Err(unprocessable(
                            "workspaces",
                            "workspace_not_found",
                            format!("{ws} is not a workspace of this agency"),
                        ))
                    }
                }
            }
        }
    }
    if ids.len() > MAX_WORKSPACES {
        return Err(unprocessable(
            "workspaces",
            "too_many_workspaces",
            format!("A bulk action covers at most {} workspaces; this one names {}.", MAX_WORKSPACES, ids.len()),
        ));
    }
    Ok(ids)
}

pub(crate) fn unprocessable(field: &str, code: &'static str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid_field(field, code, message);
    e.status = StatusCode::UNPROCESSABLE_ENTITY;
    e
}

/// A `bulk_fan` job given up: the workspaces it had not queued yet are recorded as failed, so the
/// parent still ends (with what the queued children report).
pub async fn give_up_fan(app: &App, job: &Job, why: &str) -> Result<(), HandlerError> {
    let Some(id) = job.payload.get("parentId").and_then(Value::as_str) else { return Ok(()) };
    let Some(parent) = app.store.get(&parent_key(id)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    let all: Vec<String> = parent
        .get("workspaceIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let from = items::int_of(&parent, "enqueued").unwrap_or(0).max(0) as usize;
    for ws in all.iter().skip(from) {
        let child = Job::new(JobKind::BulkChild.as_str(), json!({ "parentId": id, "workspaceId": ws }));
        give_up_child(app, &child, why).await?;
    }
    Ok(())
}
