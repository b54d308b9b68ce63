//! The seed 004 dialect: a peer's general sales "CRM HTTP API" (`/api/crm/...`) as a door over
//! our operations. Its route table ([`routes::ROUTES`]) names, per route, the operations it calls
//! and what it answers; handlers only translate names, ids and shapes and call the executor with
//! the caller's key, so a key can do here exactly what it can do in `/v1`.
//! docs/dialects/crm.md has every mapping.
//!
//! - Auth: `Authorization: Bearer <key>` (`ak_` keys with `read:crm`/`write:crm`, or any of ours).
//! - Entity: `entityId` (query, JSON body, or `x-entity-id`) is the UUID of the workspace's
//!   `ws_` id. A workspace key's must be its own (403 `entityId does not match this API key`);
//!   absent means its own. An agency key names one of its workspaces with it.
//! - Ids: every id is the decoded, hyphenated UUID of our prefixed id, and is accepted back.
//! - Errors: `{"error": "…"}` with the status of the problem; lists are
//!   `{<plural>: [...], page, pageSize, total}`.
//! - A request counts once against the key's rate limit, however many operations it runs.

#![allow(clippy::result_large_err)]

mod handlers;
pub mod ids;
pub mod openapi;
pub mod routes;

use axum::extract::{RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, MethodFilter, MethodRouter};
use axum::Router;
use linkcrm_core::context::{with_request_id, Caller};
use linkcrm_core::error::ApiError;
use linkcrm_core::executor::{self, Call};
use linkcrm_core::App;
use linkcrm_domain::IdKind;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const PREFIX: &str = "/api/crm";

const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A list reads at most this many items of ours to page and count them.
pub const MAX_LIST_ITEMS: usize = 5000;
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 200;

/// The dialect's error: `{"error": message}` with a status.
#[derive(Debug)]
pub struct Error {
    pub status: StatusCode,
    pub message: String,
}

impl Error {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }
    pub fn bad(message: impl Into<String>) -> Error {
        Error::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found() -> Error {
        Error::new(StatusCode::NOT_FOUND, "Not found")
    }
    pub fn unauthorized() -> Error {
        Error::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
}

impl From<ApiError> for Error {
    /// Our problem, said the dialect's way: same status, its message (field errors name the
    /// field), and our ids in it as UUIDs.
    fn from(e: ApiError) -> Error {
        let message = if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE {
            "Internal server error".to_owned()
        } else {
            ids::uuids_in_text(&e.message)
        };
        Error { status: e.status, message }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub type Result<T = Out> = std::result::Result<T, Error>;

/// What a handler answers.
pub enum Out {
    Json(StatusCode, Value),
    Empty(StatusCode),
}

/// One request, authenticated, its entity resolved.
pub struct Req {
    pub app: Arc<App>,
    pub caller: Caller,
    pub key: String,
    /// The workspace's `ws_` id.
    pub workspace: String,
    pub path: HashMap<String, String>,
    pub query: Map<String, Value>,
    pub body: Map<String, Value>,
    limited: std::sync::atomic::AtomicBool,
}

impl Req {
    pub fn param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or_default()
    }

    /// A query parameter (strings as sent).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    /// A body field, unless absent or null.
    pub fn b(&self, name: &str) -> Option<&Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    /// Whether the body names the field at all (a PATCH's `null` clears it).
    pub fn has(&self, name: &str) -> bool {
        self.body.contains_key(name)
    }

    /// A body string field.
    pub fn b_str(&self, name: &str) -> Result<Option<&str>> {
        match self.b(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::bad(format!("{name} must be a string"))),
        }
    }

    fn call(&self, idempotency_key: Option<String>) -> Call {
        Call {
            key: self.key.clone(),
            workspace: Ok(Some(self.workspace.clone())),
            if_match: None,
            idempotency_key: Ok(idempotency_key),
        }
    }

    /// Runs operation `name` with `input` as this request's caller: its answer's body and status.
    pub async fn op_status(&self, name: &str, input: Value) -> Result<(StatusCode, Value)> {
        let call = self.call(None);
        let first = !self.limited.swap(true, std::sync::atomic::Ordering::SeqCst);
        let outcome = if first {
            executor::execute_authenticated(&self.app, name, self.caller.clone(), &call, input).await
        } else {
            executor::execute_as(&self.app, name, self.caller.clone(), &call, input).await
        }
        .map_err(entity_error)?;
        let status = outcome.response.status;
        let body = outcome.response.body.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            let message = body.get("message").and_then(Value::as_str).unwrap_or("The request failed");
            return Err(Error::from(ApiError::new(status, "replayed", message.to_owned())));
        }
        Ok((status, body))
    }

    pub async fn op(&self, name: &str, input: Value) -> Result<Value> {
        Ok(self.op_status(name, input).await?.1)
    }

    /// Every item of a list operation, page after page, up to [`MAX_LIST_ITEMS`].
    pub async fn all(&self, name: &str, mut input: Value) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        input["limit"] = json!(200);
        loop {
            let page = self.op(name, input.clone()).await?;
            if let Some(items) = page.get("data").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) if out.len() < MAX_LIST_ITEMS => input["cursor"] = json!(c),
                _ => break,
            }
        }
        out.truncate(MAX_LIST_ITEMS);
        Ok(out)
    }

    /// `page` (from 1) and `pageSize` (default 50, at most 200); without `page`, the legacy
    /// `limit` caps the page size.
    pub fn paging(&self) -> Result<(usize, usize)> {
        let num = |name: &str| -> Result<Option<usize>> {
            match self.q(name) {
                None => Ok(None),
                Some(s) => s
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(Some)
                    .ok_or_else(|| Error::bad(format!("{name} must be a whole number of at least 1"))),
            }
        };
        let page = num("page")?;
        let mut size = num("pageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
        if page.is_none() {
            if let Some(l) = num("limit")? {
                size = size.min(l);
            }
        }
        if size > MAX_PAGE_SIZE {
            return Err(Error::bad(format!("pageSize must be at most {MAX_PAGE_SIZE}")));
        }
        Ok((page.unwrap_or(1), size))
    }

    /// One page of `items` as `{<plural>: [...], page, pageSize, total}`.
    pub fn page(&self, plural: &str, items: Vec<Value>) -> Result {
        let (page, size) = self.paging()?;
        let total = items.len();
        let slice: Vec<Value> = items.into_iter().skip((page - 1) * size).take(size).collect();
        Ok(Out::Json(StatusCode::OK, json!({ plural: slice, "page": page, "pageSize": size, "total": total })))
    }
}

/// A workspace the executor refuses (not the agency's, archived) reads as the entity rule says.
fn entity_error(e: ApiError) -> Error {
    match e.code {
        "workspace_not_found" | "workspace_forbidden" | "forbidden_workspace" => {
            Error::new(StatusCode::FORBIDDEN, "entityId does not match this API key")
        }
        "insufficient_scope" => Error::new(StatusCode::FORBIDDEN, ids::uuids_in_text(&e.message)),
        _ => e.into(),
    }
}

/// The dialect's routes, its OpenAPI document, and its own 404/405.
pub fn router(app: Arc<App>) -> Router {
    let mut by_path: BTreeMap<String, (MethodRouter<Arc<App>>, Vec<&'static str>)> = BTreeMap::new();
    for (index, route) in routes::ROUTES.iter().enumerate() {
        let path = format!("{PREFIX}{}", route.path);
        let filter = MethodFilter::try_from(Method::from_bytes(route.method.as_bytes()).expect("method"))
            .expect("standard method");
        let handler = move |State(app): State<Arc<App>>, req: Request| async move { dispatch(app, index, req).await };
        let (entry, mut methods) = by_path.remove(&path).unwrap_or_default();
        methods.push(route.method);
        by_path.insert(path, (entry.on(filter, handler), methods));
    }
    let mut router = Router::new();
    for (path, (methods_router, mut methods)) in by_path {
        methods.sort_unstable();
        methods.dedup();
        let allow = HeaderValue::from_str(&methods.join(", ")).expect("ascii");
        router = router.route(&path, methods_router.fallback(move || method_not_allowed(allow.clone())));
    }
    let document: Arc<std::sync::OnceLock<Value>> = Arc::default();
    router
        .route(
            &format!("{PREFIX}/openapi.json"),
            get(move || async move { axum::Json(document.get_or_init(openapi::document).clone()).into_response() }),
        )
        .route(&format!("{PREFIX}/{{*rest}}"), any(not_found))
        .with_state(app)
}

fn stamped(mut resp: Response) -> Response {
    let id = linkcrm_domain::new_id(IdKind::Request);
    resp.headers_mut().insert("x-request-id", HeaderValue::from_str(&id).expect("ascii id"));
    resp
}

async fn not_found() -> Response {
    stamped(Error::not_found().into_response())
}

async fn method_not_allowed(allow: HeaderValue) -> Response {
    let mut resp = Error::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response();
    resp.headers_mut().insert(header::ALLOW, allow);
    stamped(resp)
}

async fn dispatch(app: Arc<App>, index: usize, req: Request) -> Response {
    let request_id = linkcrm_domain::new_id(IdKind::Request);
    let route = &routes::ROUTES[index];
    let mut resp = with_request_id(request_id.clone(), async move {
        match serve(app, route, req).await {
            Ok(Out::Json(status, body)) => (status, axum::Json(body)).into_response(),
            Ok(Out::Empty(status)) => status.into_response(),
            Err(e) => e.into_response(),
        }
    })
    .await;
    resp.headers_mut().insert("x-request-id", HeaderValue::from_str(&request_id).expect("ascii id"));
    resp
}

fn bearer(headers: &axum::http::HeaderMap) -> Result<String> {
    let raw = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(Error::unauthorized)?;
    let (scheme, token) = raw.trim().split_once(' ').ok_or_else(Error::unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 256 {
        return Err(Error::unauthorized());
    }
    Ok(token.to_owned())
}

/// The workspace a request acts in, from `entityId` (query, body, header) and the key.
fn entity(
    caller: &Caller,
    query: &Map<String, Value>,
    body: &Map<String, Value>,
    headers: &axum::http::HeaderMap,
) -> Result<String> {
    let named = query
        .get("entityId")
        .and_then(Value::as_str)
        .or_else(|| body.get("entityId").and_then(Value::as_str))
        .or_else(|| headers.get("x-entity-id").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let named = match named {
        None => None,
        Some(raw) => Some(ids::to_ours(IdKind::Workspace, raw).ok_or_else(|| Error::bad("entityId must be a UUID"))?),
    };
    match (&caller.key_workspace, named) {
        (Some(own), None) => Ok(own.clone()),
        (Some(own), Some(n)) if *own == n => Ok(n),
        (Some(_), Some(_)) => Err(Error::new(StatusCode::FORBIDDEN, "entityId does not match this API key")),
        (None, Some(n)) => Ok(n),
        (None, None) => Err(Error::bad("entityId is required with an agency key")),
    }
}

async fn serve(app: Arc<App>, route: &'static routes::Route, req: Request) -> Result {
    let (mut parts, body) = req.into_parts();
    let key = bearer(&parts.headers)?;
    app.ready().await.map_err(|e| Error::from(ApiError::from(e)))?;
    let caller = linkcrm_core::auth::authenticate(&app, &key).await.map_err(Error::from)?;
    let path: HashMap<String, String> =
        <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .map(|p| p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
            .unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
        .map_err(|_| Error::bad("The query string is malformed"))?;
    let query: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        Error::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request bodies are limited to {MAX_BODY_BYTES} bytes"))
    })?;
    let body: Map<String, Value> = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(Error::bad("The body must be a JSON object")),
            Err(_) => return Err(Error::bad("The body is not valid JSON")),
        }
    };
    let workspace = entity(&caller, &query, &body, &parts.headers)?;
    let req = Req { app, caller, key, workspace, path, query, body, limited: Default::default() };
    (route.handler)(&req).await
}
