//! The REST door: one axum route per catalogue operation, plus the cross-cutting middleware
//! (request id, structured access log, body limit, fallbacks as problem+json).

use crate::catalogue::{OpResponse, OpSpec};
use crate::context::{with_request_id, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Begin, Stored};
use crate::{auth, App};
use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, MethodFilter, MethodRouter};
use axum::Router;
use linkcrm_domain::IdKind;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Largest request body accepted (DynamoDB items are at most 400 KB anyway).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let mut by_path: BTreeMap<&'static str, (MethodRouter<Arc<App>>, Vec<String>)> = BTreeMap::new();
    for (index, spec) in app.catalogue.iter().enumerate() {
        let filter = MethodFilter::try_from(spec.method.clone()).expect("standard method");
        let handler = move |State(app): State<Arc<App>>, req: Request| async move { dispatch(app, index, req).await };
        let (entry, mut methods) = by_path.remove(spec.path).unwrap_or_default();
        methods.push(spec.method.to_string());
        by_path.insert(spec.path, (entry.on(filter, handler), methods));
    }
    let mut router = Router::new();
    for (path, (routes, mut methods)) in by_path {
        methods.sort_unstable();
        let allow = HeaderValue::from_str(&methods.join(", ")).expect("method names are ASCII");
        router = router.route(path, routes.fallback(move || method_not_allowed(allow.clone())));
    }
    router
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        // Keyless by design: the sealed token in the path names the workspace and the address.
        .route("/v1/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe_now))
        .fallback(not_found)
        .layer(middleware::from_fn(request_context))
        .with_state(app)
}

/// The workspace and address an unsubscribe token names, if it is one this server sealed.
fn unsubscribe_target(app: &App, token: &str) -> Option<(String, String)> {
    let text = app.open_token(crate::sending::UNSUBSCRIBE_SCOPE, token).ok()?;
    let (ws, email) = text.split_once('|')?;
    Some((ws.to_owned(), email.to_owned()))
}

fn unsubscribe_html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32rem;margin:3rem auto\"><h1>{title}</h1>{body}</body></html>"
    );
    (status, Html(page)).into_response()
}

fn not_an_unsubscribe_link() -> Response {
    unsubscribe_html(StatusCode::NOT_FOUND, "Link not found", "<p>This unsubscribe link is not valid.</p>")
}

/// GET: a confirmation page whose button POSTs back (mail scanners follow GET links; only the POST
/// unsubscribes).
async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    let Some((_, email)) = unsubscribe_target(&app, &token) else { return not_an_unsubscribe_link() };
    let email = email.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    unsubscribe_html(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop emails to <b>{email}</b>?</p><form method=\"post\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
}

/// POST (RFC 8058 one-click, or the page's button): adds the address to the workspace's
/// suppression list with source `unsubscribe`. Doing it twice is fine.
async fn unsubscribe_now(
    State(app): State<Arc<App>>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    use crate::suppression::{self, Channel, Kind, Provenance, Suppression, SuppressionSource};
    use linkcrm_storage::{Condition, StoreError, TxOp};
    let Some((ws, email)) = unsubscribe_target(&app, &token) else { return not_an_unsubscribe_link() };
    let entry = Suppression {
        kind: Kind::Email,
        value: email.clone(),
        workspace_id: Some(ws.clone()),
        source: SuppressionSource::Unsubscribe,
        reason: Some("Unsubscribe link".into()),
        created_at: linkcrm_domain::time::now_string(),
        provenance: Some(Provenance {
            workspace_id: Some(ws.clone()),
            channel: Channel::UnsubscribeLink,
            message_id: None,
            inbound_message_id: None,
        }),
    };
    let ops = vec![
        TxOp::put_if(suppression::item(&entry, None), Condition::NotExists),
        crate::outbox::event("suppression.added", Some(&ws), serde_json::json!(entry)),
    ];
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => unsubscribe_html(
            StatusCode::OK,
            "Unsubscribed",
            "<p>You will not receive further emails from this sender.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe could not be stored");
            unsubscribe_html(StatusCode::SERVICE_UNAVAILABLE, "Try again", "<p>Please try again in a moment.</p>")
        }
    }
}

async fn openapi(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.openapi.clone()).into_response()
}

async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint. See /openapi.json.")
}

/// 405 with the methods the path does take (RFC 9110 15.5.6).
async fn method_not_allowed(allow: HeaderValue) -> Response {
    let mut resp = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("This endpoint does not accept that method; it takes {}.", allow.to_str().unwrap_or_default()),
    )
    .into_response();
    resp.headers_mut().insert(header::ALLOW, allow);
    resp
}

/// Gives every request an id (in errors, logs and `x-request-id`) and logs one JSON line for it.
async fn request_context(req: Request, next: Next) -> Response {
    let request_id = linkcrm_domain::new_id(IdKind::Request);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let mut resp = with_request_id(request_id.clone(), next.run(req)).await;
    let status = resp.status().as_u16();
    tracing::info!(
        target: "access",
        requestId = %request_id,
        method = %method,
        path = %path,
        status,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp.headers_mut().insert("x-request-id", HeaderValue::from_str(&request_id).expect("ascii id"));
    resp
}

async fn dispatch(app: Arc<App>, index: usize, req: Request) -> Response {
    let spec = &app.catalogue[index];
    match run_http(&app, spec, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn run_http(app: &Arc<App>, spec: &OpSpec, req: Request) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let headers = parts.headers.clone();
    let caller = auth::authenticate(app, &headers).await?;
    if spec.agency_only && !caller.is_agency() {
        return Err(ApiError::forbidden("agency_key_required", "Only an agency key may call this endpoint."));
    }
    if let Some(scope) = spec.scope {
        if !caller.has_scope(scope) {
            return Err(ApiError::insufficient_scope(scope));
        }
    }
    if let Err(wait) = app.limiter.check(&caller.key_id) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests; retry in {wait} s."),
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let workspace_id = auth::resolve_workspace(app, &caller, spec.workspace, &headers).await?;

    let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let bytes = read_body(body).await?;
    let input = build_input(spec, params, &query, &bytes)?;
    let if_match = if_match(&headers)?;
    let ctx = Ctx { app: app.clone(), caller: caller.clone(), workspace_id: workspace_id.clone(), if_match };

    let idem = match headers.get("idempotency-key") {
        Some(v) if spec.method != Method::GET => {
            let raw = v
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid_request", "Malformed Idempotency-Key header."))?;
            idempotency::validate_key(raw)?;
            let fp = idempotency::fingerprint(
                spec.method.as_str(),
                parts.uri.path(),
                &query,
                workspace_id.as_deref(),
                &bytes,
            );
            match idempotency::begin(app, &caller.key_id, workspace_id.as_deref(), raw, fp).await? {
                Begin::Replay(stored) => return Ok(replayed(stored)),
                Begin::Proceed(guard) => Some(guard),
            }
        }
        _ => None,
    };

    let outcome = (spec.run)(ctx, input).await;
    if let Some(guard) = idem {
        match &outcome {
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
    Ok(to_response(outcome?))
}

/// Reads the body up to the limit. Past it, the rest is read and dropped (up to a bound) before
/// answering 413, so the client sees the answer instead of a connection closed mid-upload.
async fn read_body(body: Body) -> ApiResult<bytes::Bytes> {
    use futures::StreamExt;
    const DRAIN_LIMIT: usize = 16 * MAX_BODY_BYTES;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_request("invalid_request", "The request body could not be read."))?;
        seen += chunk.len();
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request bodies are limited to {MAX_BODY_BYTES} bytes."),
        ));
    }
    Ok(buf.freeze())
}

fn replayed(mut stored: Stored) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    // A replayed error names this request, so the body and x-request-id agree.
    if let Some(Value::Object(body)) = stored.body.as_mut().filter(|_| status.is_client_error()) {
        body.insert("requestId".into(), crate::context::current_request_id().into());
    }
    let mut resp = to_response(OpResponse { status, body: stored.body, version: stored.version });
    if status.is_client_error() {
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    }
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

fn to_response(r: OpResponse) -> Response {
    let mut resp = match r.body {
        Some(body) => (r.status, axum::Json(body)).into_response(),
        None => (r.status, Body::empty()).into_response(),
    };
    if let Some(v) = r.version {
        resp.headers_mut().insert(header::ETAG, HeaderValue::from_str(&format!("\"{v}\"")).expect("ascii"));
    }
    resp
}

/// `If-Match: "3"` (or `W/"3"`, or `3`) as the version number 3. `If-Match: *` matches any current
/// version (RFC 9110 13.1.1): it asks only that the resource exist, which every PATCH needs anyway.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = v.to_str().unwrap_or("").trim();
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

/// `36670.0` as `36670`: JSON (and JSON Schema's `integer`) does not tell 1.0 from 1, but the
/// input types do.
fn whole_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(m) => m.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Merges path parameters, query parameters (GET/DELETE) or the JSON body (POST/PATCH) into the
/// one JSON object the operation's input deserialises from.
fn build_input(spec: &OpSpec, params: Option<RawPathParams>, query: &str, body: &[u8]) -> ApiResult<Value> {
    let mut obj = Map::new();
    let body_method = spec.method == Method::POST || spec.method == Method::PATCH || spec.method == Method::PUT;
    if body_method {
        if !query.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_request",
                "This endpoint takes its arguments in the JSON body, not the query string.",
            ));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::invalid_field("body", "malformed_json", "the body is not UTF-8"))?;
        if !text.trim().is_empty() {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(mut m)) => {
                    m.values_mut().for_each(whole_numbers);
                    obj = m
                }
                Ok(_) => {
                    return Err(ApiError::invalid_field("body", "invalid_request", "the body must be a JSON object"))
                }
                Err(e) => {
                    return Err(ApiError::invalid_field("body", "malformed_json", format!("malformed JSON: {e}")))
                }
            }
        }
    } else {
        if !body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("invalid_request", "This endpoint takes no request body."));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::bad_request("invalid_request", "Malformed query string."))?;
        // `?email=` says nothing: an empty parameter is the same as an absent one.
        for (k, v) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
            if obj.insert(k.clone(), Value::String(v)).is_some() {
                return Err(ApiError::invalid_field(
                    k,
                    "invalid_request",
                    "given more than once; use a comma-separated list",
                ));
            }
        }
    }
    for (name, value) in params.iter().flat_map(|p| p.iter()) {
        if obj.insert(name.to_owned(), Value::String(value.to_owned())).is_some() {
            return Err(ApiError::invalid_field(
                name,
                "invalid_request",
                "is part of the path and may not be repeated in the request",
            ));
        }
    }
    Ok(Value::Object(obj))
}
