//! The REST door: one axum route per entry of the route table, plus the cross-cutting middleware
//! (request id, structured access log, body limit, fallbacks as problem+json).

use crate::routes::{Route, Verb, V1};
use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, MethodFilter, MethodRouter};
use axum::Router;
use linkcrm_core::catalogue::{Family, OpResponse, OpSpec};
use linkcrm_core::context::with_request_id;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::executor::{self, Call};
use linkcrm_core::App;
use linkcrm_domain::IdKind;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Largest request body accepted (DynamoDB items are at most 400 KB anyway).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a door serves besides the operations' routes.
#[derive(Default)]
pub struct Extras {
    /// Pages of a context outside the operations (the unsubscribe page), merged in.
    pub pages: Option<Router<Arc<App>>>,
    /// The OpenAPI document as JSON, when the app's catalogue is not the whole API (a family
    /// function serves the document of every family); otherwise it is generated from the catalogue.
    pub openapi: Option<&'static str>,
}

/// The routes of some families (all of them for the local binary, one per Lambda function), plus
/// the health check and the problem+json answers to unknown paths and methods; the OpenAPI
/// document and the docs page go with the workspaces family. Routes whose operation the app's
/// catalogue lacks are left out (a function links only its own context); `extras` adds a
/// context's pages and a prepared OpenAPI document.
pub fn router_with(app: Arc<App>, families: &[Family], extras: Extras) -> Router {
    // Allow lists every method the API takes on a path, whichever function serves it.
    let mut allowed: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for route in V1 {
        allowed.entry(route.path).or_default().push(route.verb.as_str());
    }
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<App>>> = BTreeMap::new();
    for route in V1.iter().copied() {
        let Some(&index) = app.by_name.get(route.operation) else { continue };
        if !families.contains(&app.catalogue[index].family) {
            continue;
        }
        let filter = MethodFilter::try_from(route.verb.method()).expect("standard method");
        let handler =
            move |State(app): State<Arc<App>>, req: Request| async move { dispatch(app, index, route, req).await };
        let entry = by_path.remove(route.path).unwrap_or_default();
        by_path.insert(route.path, entry.on(filter, handler));
    }
    let mut router = Router::new();
    for (path, routes) in by_path {
        let mut methods = allowed[path].clone();
        methods.sort_unstable();
        methods.dedup();
        let allow = HeaderValue::from_str(&methods.join(", ")).expect("method names are ASCII");
        router = router.route(path, routes.fallback(move || method_not_allowed(allow.clone())));
    }
    if families.contains(&Family::Workspaces) {
        // Built on first request, not at start: generating every schema would lengthen each cold
        // start of the function by about 10 ms for a document few requests ask for.
        let document: Arc<std::sync::OnceLock<Value>> = Arc::default();
        let prepared = extras.openapi;
        router = router
            .route(
                "/openapi.json",
                get(move |State(app): State<Arc<App>>| async move {
                    let doc = document.get_or_init(|| match prepared {
                        Some(text) => serde_json::from_str(text).expect("the prepared OpenAPI document is JSON"),
                        None => crate::openapi::document(&app.catalogue, V1),
                    });
                    axum::Json(doc.clone()).into_response()
                }),
            )
            .route("/docs", get(docs));
    }
    if let Some(pages) = extras.pages {
        router = router.merge(pages);
    }
    router
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), ready))
        .layer(middleware::from_fn(request_context))
        .with_state(app)
}

/// Nothing is served before the app's server secret is loaded (see `App::starting`); a store
/// that cannot be read answers 503 with Retry-After, like any other store outage.
async fn ready(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match app.ready().await {
        Ok(()) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
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

async fn dispatch(app: Arc<App>, index: usize, route: Route, req: Request) -> Response {
    let spec = &app.catalogue[index];
    match run_http(&app, spec, route, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// HTTP to the executor and back: headers become a [`Call`], path, query and body become the
/// input. Nothing here decides anything about the operation.
async fn run_http(app: &Arc<App>, spec: &OpSpec, route: Route, req: Request) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let headers = &parts.headers;
    let call = Call {
        key: crate::headers::bearer(headers)?.to_owned(),
        workspace: crate::headers::workspace_header(headers),
        if_match: headers.get(header::IF_MATCH).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        idempotency_key: match headers.get("idempotency-key") {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| ApiError::bad_request("invalid_request", "Malformed Idempotency-Key header.")),
        },
    };
    let admitted = executor::admit(app, spec, &call).await?;
    let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
    let query = parts.uri.query().unwrap_or("");
    let bytes = read_body(body).await?;
    let input = build_input(route.verb, params, query, &bytes)?;
    let outcome = executor::run(app, spec, admitted, &call, input.clone()).await?;
    let replayed = outcome.replayed;
    let client_error = outcome.response.status.is_client_error();
    let mut resp = if spec.file && outcome.response.status.is_success() && app.config.stream_files {
        streamed_file(app.clone(), spec.name, call, input, outcome.response)
    } else if spec.file && outcome.response.status.is_success() {
        file_response(outcome.response, parts.uri.path(), query)
    } else {
        to_response(outcome.response)
    };
    if replayed {
        if client_error {
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        }
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
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

/// The local binary's export: the first part, then each next part as the operation answers it
/// (asked again with the cursor the part before gave), streamed as one response. A part that
/// fails ends the stream early (the client sees a cut-off body, as with any broken download).
fn streamed_file(app: Arc<App>, op: &'static str, call: Call, input: Value, first: OpResponse) -> Response {
    use futures::StreamExt;
    let Some(file) = first.body.and_then(|b| serde_json::from_value::<linkcrm_core::catalogue::FileBody>(b).ok())
    else {
        tracing::error!("a file operation answered something that is not a file");
        return ApiError::internal().into_response();
    };
    let (content_type, filename) = (file.content_type.clone(), file.filename.clone());
    let state = (Some(file.body), file.next_cursor, app, call, input);
    let parts = futures::stream::unfold(state, move |(body, next, app, call, input)| async move {
        if let Some(b) = body {
            return Some((Ok::<_, std::io::Error>(bytes::Bytes::from(b)), (None, next, app, call, input)));
        }
        let cursor = next?;
        let spec = app.operation(op)?;
        let mut input = input;
        input["cursor"] = Value::String(cursor);
        let admitted = executor::admit(&app, spec, &call).await.ok()?;
        let outcome = executor::run(&app, spec, admitted, &call, input.clone()).await.ok()?;
        let file =
            outcome.response.body.and_then(|b| serde_json::from_value::<linkcrm_core::catalogue::FileBody>(b).ok())?;
        Some((Ok(bytes::Bytes::from(file.body)), (None, file.next_cursor, app, call, input)))
    })
    .boxed();
    let mut resp = (first.status, Body::from_stream(parts)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let name: String = filename.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// An operation's file (`FileBody`) as the response itself, with a `Link` to the next part.
fn file_response(r: OpResponse, path: &str, query: &str) -> Response {
    let Some(file) = r.body.and_then(|b| serde_json::from_value::<linkcrm_core::catalogue::FileBody>(b).ok()) else {
        tracing::error!("a file operation answered something that is not a file");
        return ApiError::internal().into_response();
    };
    let mut resp = (r.status, file.body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let name: String =
        file.filename.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(next) = file.next_cursor {
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "cursor")
            .collect();
        pairs.push(("cursor".into(), next));
        let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?{q}>; rel=\"next\"")) {
            h.insert(header::LINK, v);
        }
    }
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
fn build_input(verb: Verb, params: Option<RawPathParams>, query: &str, body: &[u8]) -> ApiResult<Value> {
    let mut obj = Map::new();
    if verb.has_body() {
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
