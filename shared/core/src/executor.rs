//! The executor: what every door does around an operation, in one place. A door (REST, and later
//! MCP, the dialects and agency bulk actions) turns its wire format into a [`Call`] and an input
//! JSON object, and gets back the operation's answer or an [`ApiError`] to render its own way.
//!
//! In order: authenticate the key, refuse a non-agency key where only an agency key may act,
//! check the scope, rate-limit the key, resolve and load the workspace (into [`Ctx`]), read
//! `If-Match`, claim the idempotency key (or replay its answer), run the operation, and record
//! the answer for the key's retries. Credits are checked by the operations that cost them, in the
//! transaction that reserves them.

use crate::catalogue::{OpResponse, OpSpec};
use crate::context::{Caller, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Begin, Pending, Stored};
use crate::{auth, App};
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::Arc;

/// What a door learned about the caller, besides the input.
#[derive(Clone, Debug)]
pub struct Call {
    /// The API key's secret.
    pub key: String,
    /// The workspace the caller named (`X-Workspace-Id`, or a tool's `workspace` argument), or
    /// why what it sent cannot be read. Looked at only by workspace-scoped operations.
    pub workspace: ApiResult<Option<String>>,
    /// `If-Match` as sent (`"3"`, `W/"3"`, `3` or `*`).
    pub if_match: Option<String>,
    /// The idempotency key as sent, or why it cannot be read. Looked at only by writes.
    pub idempotency_key: ApiResult<Option<String>>,
}

impl Call {
    /// A call with just a key (no workspace named, no preconditions, no idempotency key).
    pub fn with_key(key: impl Into<String>) -> Call {
        Call { key: key.into(), workspace: Ok(None), if_match: None, idempotency_key: Ok(None) }
    }

    pub fn in_workspace(mut self, ws: impl Into<String>) -> Call {
        self.workspace = Ok(Some(ws.into()));
        self
    }
}

/// A caller let through to an operation: who, and in which (loaded) workspace.
pub struct Admitted {
    pub caller: Caller,
    workspace: Option<Arc<auth::WorkspaceRecord>>,
}

/// An operation's answer, and whether it is a replay of an earlier answer to the same
/// idempotency key.
pub struct Outcome {
    pub response: OpResponse,
    pub replayed: bool,
}

impl App {
    /// The operation called `name`, if the catalogue has it.
    pub fn operation(&self, name: &str) -> Option<&OpSpec> {
        self.by_name.get(name).map(|&i| &self.catalogue[i])
    }
}

/// Everything before the input is read: key, agency rule, scope, rate limit, workspace.
pub async fn admit(app: &App, spec: &OpSpec, call: &Call) -> ApiResult<Admitted> {
    app.ready().await?;
    let caller = auth::authenticate(app, &call.key).await?;
    admit_caller(app, spec, caller, call, true).await
}

/// [`admit`] for a caller already authenticated (a bulk action's parts, run for the agency key
/// that asked): the agency rule, the scope and the workspace, without the rate limit, which the
/// asking request already passed.
pub async fn admit_as(app: &App, spec: &OpSpec, caller: Caller, call: &Call) -> ApiResult<Admitted> {
    app.ready().await?;
    admit_caller(app, spec, caller, call, false).await
}

async fn admit_caller(app: &App, spec: &OpSpec, caller: Caller, call: &Call, limit: bool) -> ApiResult<Admitted> {
    if spec.agency_only && !caller.is_agency() {
        return Err(ApiError::forbidden("agency_key_required", "Only an agency key may call this endpoint."));
    }
    if let Some(scope) = spec.scope {
        if !caller.has_scope(scope) {
            return Err(ApiError::insufficient_scope(scope));
        }
    }
    if let Err(wait) = if limit { app.limiter.check(&caller.key_id) } else { Ok(()) } {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests; retry in {wait} s."),
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let workspace = auth::resolve_workspace(app, &caller, spec.workspace, &call.workspace).await?.map(Arc::new);
    Ok(Admitted { caller, workspace })
}

/// Runs an admitted call with its input: `If-Match`, idempotency, the operation.
pub async fn run(app: &Arc<App>, spec: &OpSpec, admitted: Admitted, call: &Call, input: Value) -> ApiResult<Outcome> {
    let if_match = if_match(call.if_match.as_deref())?;
    let workspace_id = admitted.workspace.as_ref().map(|w| w.id().to_owned());
    let key_id = admitted.caller.key_id.clone();
    let pending = match call.idempotency_key.clone() {
        Ok(Some(raw)) if spec.effect.writes() => {
            idempotency::validate_key(&raw)?;
            let fp = idempotency::fingerprint(spec.name, workspace_id.as_deref(), &input);
            match idempotency::begin(app, &key_id, workspace_id.as_deref(), &raw, fp).await? {
                Begin::Replay(stored) => return Ok(replayed(stored)),
                Begin::Proceed(guard) => Some(Pending::new(guard, spec.default_status)),
            }
        }
        Err(e) if spec.effect.writes() => return Err(e),
        _ => None,
    };
    // Writes are audited: the operation's first committed write carries the entry.
    let audit = spec.effect.writes().then(|| {
        let key = call.idempotency_key.clone().ok().flatten();
        crate::audit::new_entry(
            spec.name,
            &admitted.caller,
            workspace_id.as_deref(),
            crate::audit::targets_of(&input),
            key,
        )
    });
    let ctx = Ctx {
        app: app.clone(),
        caller: admitted.caller,
        workspace_id,
        workspace_record: admitted.workspace,
        if_match,
        idempotency: pending.clone(),
    };

    let outcome = match audit {
        Some(entry) => crate::audit::scope(entry, (spec.run)(ctx, input)).await,
        None => (spec.run)(ctx, input).await,
    };
    if let Some(pending) = pending {
        // An operation that committed its answer with its change has recorded it, whatever it
        // returned after (a retry replays the committed answer).
        let committed = pending.committed();
        let guard = pending.into_guard();
        match &outcome {
            _ if committed => {}
            Ok(r) => {
                idempotency::finish(
                    app,
                    guard,
                    &Stored { status: r.status.as_u16(), body: r.body.clone(), version: r.version },
                )
                .await
            }
            // Client errors that will not change on retry are replayed too; conflicts, rate limits
            // and server errors are not, so a retry can succeed.
            Err(e)
                if e.status.is_client_error()
                    && ![StatusCode::CONFLICT, StatusCode::TOO_MANY_REQUESTS, StatusCode::PRECONDITION_FAILED]
                        .contains(&e.status) =>
            {
                let body = Some(e.body(&crate::context::current_request_id()));
                idempotency::finish(app, guard, &Stored { status: e.status.as_u16(), body, version: None }).await
            }
            Err(_) => idempotency::abandon(app, guard).await,
        }
    }
    Ok(Outcome { response: outcome?, replayed: false })
}

/// Runs the operation called `name` for a caller already authenticated (see [`admit_as`]): what
/// a bulk action does once per workspace.
pub async fn execute_as(app: &Arc<App>, name: &str, caller: Caller, call: &Call, input: Value) -> ApiResult<Outcome> {
    let spec = app.operation(name).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_operation", format!("There is no operation '{name}'."))
    })?;
    let admitted = admit_as(app, spec, caller, call).await?;
    run(app, spec, admitted, call, input).await
}

/// [`execute`] for a door that authenticated its request itself (MCP checks the key before the
/// protocol layer sees the request): the same path without reading the key again; the rate
/// limit applies.
pub async fn execute_authenticated(
    app: &Arc<App>,
    name: &str,
    caller: Caller,
    call: &Call,
    input: Value,
) -> ApiResult<Outcome> {
    let spec = app.operation(name).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_operation", format!("There is no operation '{name}'."))
    })?;
    app.ready().await?;
    let admitted = admit_caller(app, spec, caller, call, true).await?;
    run(app, spec, admitted, call, input).await
}

/// Admits and runs the operation called `name`: the whole door-independent path.
pub async fn execute(app: &Arc<App>, name: &str, call: &Call, input: Value) -> ApiResult<Outcome> {
    let spec = app.operation(name).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_operation", format!("There is no operation '{name}'."))
    })?;
    let admitted = admit(app, spec, call).await?;
    run(app, spec, admitted, call, input).await
}

fn replayed(mut stored: Stored) -> Outcome {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    // A replayed error names this request, so the body and the request id agree.
    if let Some(Value::Object(body)) = stored.body.as_mut().filter(|_| status.is_client_error()) {
        body.insert("requestId".into(), crate::context::current_request_id().into());
    }
    Outcome { response: OpResponse { status, body: stored.body, version: stored.version }, replayed: true }
}

/// `If-Match: "3"` (or `W/"3"`, or `3`) as the version number 3. `If-Match: *` matches any current
/// version (RFC 9110 13.1.1): it asks only that the resource exist, which every update needs anyway.
fn if_match(raw: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(text) = raw.map(str::trim) else { return Ok(None) };
    if text == "*" {
        return Ok(None);
    }
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i64>().map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "If-Match must be an ETag this API returned.",
        )
    })
}
