#![recursion_limit = "256"]
//! The seed 003 dialect: the peer's "Backlink Outreach API" (`/api/v1/backlink-outreach/...`, and
//! `/api/backlink-outreach/...` where the peer's own code serves it) as a door over our
//! operations. Its route table ([`routes::ROUTES`]) names, per route, the fields it takes, the
//! operations it calls and the answer's shape; handlers only translate (names, statuses, shapes)
//! and call the executor with the caller's key, so a key can do here exactly what it can do in
//! `/v1`. docs/dialects/backlink-outreach.md has every mapping.
//!
//! - Auth: `Authorization: Bearer <our key>`; 401 `{"detail": "Not authenticated"}`.
//! - Workspace: `workspace_id` (query, or the JSON body) plays `X-Workspace-Id` for an agency
//!   key; for a workspace key, absent or `"default"` (the peer's default) means its own
//!   workspace, its own id too, and anything else is 404.
//! - Errors: `{"detail": …}`; validation is FastAPI's 422 list; a 500 says nothing more.
//! - A request counts once against the key's rate limit, however many operations it runs.

#![allow(clippy::result_large_err)]

mod handlers;
pub mod openapi;
pub mod routes;
pub mod shapes;
pub mod wire;

use axum::body::Body;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, MethodFilter, MethodRouter};
use axum::Router;
use linkcrm_core::context::{with_request_id, Caller};
use linkcrm_core::executor::{self, Call};
use linkcrm_core::App;
use linkcrm_domain::IdKind;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use wire::{Detail, Names};

/// The seed's prefix, and the one the peer's code serves.
pub const PREFIXES: [&str; 2] = ["/api/v1/backlink-outreach", "/api/backlink-outreach"];

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Lists the seed gives as plain arrays hold at most this many items.
pub const MAX_LIST_ITEMS: usize = 1000;

/// One request, authenticated and checked against its route.
pub struct Req {
    pub app: Arc<App>,
    pub caller: Caller,
    pub key: String,
    /// The workspace to name to the executor (`None`: the key's own).
    pub workspace: Option<String>,
    pub path: HashMap<String, String>,
    /// The query parameters the route takes, checked.
    pub query: Map<String, Value>,
    /// The body: the checked object (unknown fields dropped), or the array of a bulk route.
    pub body: Value,
    pub headers: axum::http::HeaderMap,
    /// Whether the key's rate limit was applied to this request yet: a request counts once,
    /// however many operations it runs.
    limited: std::sync::atomic::AtomicBool,
}

/// What a handler answers.
pub enum Out {
    Json(StatusCode, Value),
    Empty(StatusCode),
    Csv { filename: String, body: String },
}

impl Req {
    pub fn param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }

    fn call(&self, idempotency_key: Option<String>) -> Call {
        Call {
            key: self.key.clone(),
            workspace: Ok(self.workspace.clone()),
            if_match: None,
            idempotency_key: Ok(idempotency_key),
        }
    }

    /// Runs operation `name` with `input` as this request's caller; its answer's body, or its
    /// problem in the peer's shape (our field names spelt as `names` says).
    pub async fn op(&self, name: &str, input: Value, names: Names) -> Result<Value, Detail> {
        self.op_keyed(name, input, names, None).await
    }

    /// [`Req::op`] under an idempotency key (a retried send answers what the first did).
    pub async fn op_keyed(&self, name: &str, input: Value, names: Names, key: Option<String>) -> Result<Value, Detail> {
        let call = self.call(key);
        let first = !self.limited.swap(true, std::sync::atomic::Ordering::SeqCst);
        let outcome = if first {
            executor::execute_authenticated(&self.app, name, self.caller.clone(), &call, input).await
        } else {
            executor::execute_as(&self.app, name, self.caller.clone(), &call, input).await
        }
        .map_err(|e| wire::from_api(e, names))?;
        let status = outcome.response.status;
        let body = outcome.response.body.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            // A replayed problem: its stored body is ours; say it the peer's way.
            let code = body.get("code").and_then(Value::as_str).unwrap_or("error");
            let message = body.get("message").and_then(Value::as_str).unwrap_or("The request failed");
            let e = linkcrm_core::error::ApiError::new(status, "replayed", message.to_owned())
                .with_details(json!({ "code": code }));
            return Err(wire::from_api(e, names));
        }
        Ok(body)
    }

    /// Every item of a list operation, page after page, up to [`MAX_LIST_ITEMS`].
    pub async fn all(&self, name: &str, mut input: Value, names: Names) -> Result<Vec<Value>, Detail> {
        let mut out = Vec::new();
        loop {
            let page = self.op(name, input.clone(), names).await?;
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
}

/// The dialect's routes under both prefixes, its OpenAPI document, and its own 404/405.
pub fn router(app: Arc<App>) -> Router {
    let mut by_path: BTreeMap<String, (MethodRouter<Arc<App>>, Vec<&'static str>)> = BTreeMap::new();
    for prefix in PREFIXES {
        for (index, route) in routes::ROUTES.iter().enumerate() {
            let path = format!("{prefix}{}", route.path);
            let filter = MethodFilter::try_from(Method::from_bytes(route.method.as_bytes()).expect("method"))
                .expect("standard method");
            let handler =
                move |State(app): State<Arc<App>>, req: Request| async move { dispatch(app, index, req).await };
            let (entry, mut methods) = by_path.remove(&path).unwrap_or_default();
            methods.push(route.method);
            by_path.insert(path, (entry.on(filter, handler), methods));
        }
    }
    let mut router = Router::new();
    for (path, (methods_router, mut methods)) in by_path {
        methods.sort_unstable();
        methods.dedup();
        let allow = HeaderValue::from_str(&methods.join(", ")).expect("ascii");
        router = router.route(&path, methods_router.fallback(move || method_not_allowed(allow.clone())));
    }
    for prefix in PREFIXES {
        let document: Arc<std::sync::OnceLock<Value>> = Arc::default();
        router = router
            .route(
                &format!("{prefix}/openapi.json"),
                get(move || async move { axum::Json(document.get_or_init(openapi::document).clone()).into_response() }),
            )
            .route(&format!("{prefix}/{{*rest}}"), any(not_found));
    }
    router.with_state(app)
}

/// Every answer carries a request id, as the rest of the API's do.
fn stamped(mut resp: Response) -> Response {
    let id = linkcrm_domain::new_id(IdKind::Request);
    resp.headers_mut().insert("x-request-id", HeaderValue::from_str(&id).expect("ascii id"));
    resp
}

async fn not_found() -> Response {
    stamped(Detail::new(StatusCode::NOT_FOUND, "Not Found").into_response())
}

async fn method_not_allowed(allow: HeaderValue) -> Response {
    let mut resp = Detail::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
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
            Ok(Out::Csv { filename, body }) => {
                let mut resp = (StatusCode::OK, body).into_response();
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
                let name: String =
                    filename.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
                if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename={name}")) {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
                resp
            }
            Err(d) => d.into_response(),
        }
    })
    .await;
    resp.headers_mut().insert("x-request-id", HeaderValue::from_str(&request_id).expect("ascii id"));
    resp
}

/// The bearer token, or why there is none (always the seed's 401).
fn bearer(headers: &axum::http::HeaderMap) -> Result<String, Detail> {
    let raw = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(Detail::not_authenticated)?;
    let (scheme, token) = raw.trim().split_once(' ').ok_or_else(Detail::not_authenticated)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 256 {
        return Err(Detail::not_authenticated());
    }
    Ok(token.to_owned())
}

async fn serve(app: Arc<App>, route: &'static routes::Route, req: Request) -> Result<Out, Detail> {
    let (mut parts, body) = req.into_parts();
    let key = bearer(&parts.headers)?;
    app.ready().await.map_err(|e| wire::from_api(e.into(), &[]))?;
    let caller = linkcrm_core::auth::authenticate(&app, &key).await.map_err(|e| wire::from_api(e, &[]))?;
    let path: HashMap<String, String> =
        <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .map(|p| p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
            .unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).map_err(|_| {
        Detail::invalid(vec![Detail::problem(vec![json!("query")], "value_error", "Malformed query string", None)])
    })?;
    let raw_query: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let bytes = read_body(body).await?;
    let body = wire::body_json(&bytes)?;
    // `workspace_id` from the query, else the body.
    let named = raw_query
        .get("workspace_id")
        .and_then(Value::as_str)
        .or_else(|| body.get("workspace_id").and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "default")
        .map(str::to_owned);
    let workspace = match (&caller.key_workspace, named) {
        (_, None) => None,
        (Some(own), Some(n)) if *own == n => None,
        (Some(_), Some(_)) => return Err(Detail::not_found()),
        (None, Some(n)) => Some(n),
    };
    let query = wire::query(&raw_query, route.query)?;
    let body = match &route.body {
        routes::BodySpec::None => Value::Null,
        routes::BodySpec::Object(fields) => Value::Object(wire::body_object(&body, fields)?),
        routes::BodySpec::Array { fields, max } => {
            let Some(items) = body.as_array() else {
                let kind = if body.is_null() { "missing" } else { "list_type" };
                let msg = if body.is_null() { "Field required" } else { "Input should be a valid list" };
                return Err(Detail::invalid(vec![Detail::problem(vec![json!("body")], kind, msg, None)]));
            };
            if items.len() > *max {
                return Err(Detail::invalid(vec![Detail::problem(
                    vec![json!("body")],
                    "too_long",
                    format!("List should have at most {max} items after validation, not {}", items.len()),
                    None,
                )]));
            }
            let mut errors = Vec::new();
            let checked: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(i, item)| Value::Object(wire::object(item, fields, &[json!("body"), json!(i)], &mut errors)))
                .collect();
            if !errors.is_empty() {
                return Err(Detail::invalid(errors));
            }
            Value::Array(checked)
        }
    };
    let req =
        Req { app, caller, key, workspace, path, query, body, headers: parts.headers, limited: Default::default() };
    (route.handler)(&req).await
}

async fn read_body(body: Body) -> Result<bytes::Bytes, Detail> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        Detail::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request bodies are limited to {MAX_BODY_BYTES} bytes"))
    })?;
    Ok(bytes)
}
