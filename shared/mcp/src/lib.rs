//! The MCP door: every operation of the catalogue as a tool, for AI assistants, over the same
//! executor as REST (auth, scope, workspace, idempotency, credits, audit), with rmcp's streamable
//! HTTP server mounted at `/mcp`.
//!
//! - Stateless: no session is kept between requests (rmcp's `NeverSessionManager`), so any
//!   instance answers any request, as on Lambda. Protocol versions: what rmcp negotiates
//!   (2024-11-05 to 2025-11-25, and 2026-07-28, which drops the handshake and sessions), since
//!   clients in use speak 2025-03-26 to 2025-11-25 and a stateless server serves them all alike.
//! - Bearer auth on every request: a missing or unknown key is 401 with `WWW-Authenticate`
//!   before the protocol layer sees the request. The workspace is `X-Workspace-Id` per
//!   connection or a `workspace` argument per call.
//! - `tools/list` shows the tools the key's scopes allow, filtered by `namespace` (the first
//!   segment of the operation name: `params.namespace`, as the anchor's clients send it, or
//!   `?namespace=` on the URL).
//! - A tool's name is the operation's with `.` as `_` (clients refuse dots); `tools/call`
//!   accepts the dotted name and the anchor's `agent.approval.*` aliases too.

#![allow(clippy::result_large_err)]

mod tools;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use linkcrm_core::context::Caller;
use linkcrm_core::App;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub use tools::{tool_name, Server};

/// How the door serves.
#[derive(Clone, Debug)]
pub struct McpConfig {
    /// Answer with plain JSON (API Gateway's HTTP API cannot stream); otherwise a call that
    /// waits for queued work streams progress notifications (the local binary).
    pub json_response: bool,
    /// `Host` names accepted (others are refused, against DNS rebinding), port aside: loopback by
    /// default; `LINKCRM_MCP_ALLOWED_HOSTS` (comma-separated) adds the API's domain, and an entry
    /// `*.example.com` accepts any name under it (`*.execute-api.<region>.amazonaws.com`).
    pub allowed_hosts: Vec<String>,
    /// How long a tool call waits for the invocation it queued before answering with it to poll
    /// (`LINKCRM_MCP_WAIT_SECS`, 20: API Gateway ends a request at 30 s).
    pub wait: Duration,
}

impl McpConfig {
    fn from_env(json_response: bool) -> McpConfig {
        let mut allowed_hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        if let Ok(v) = std::env::var("LINKCRM_MCP_ALLOWED_HOSTS") {
            allowed_hosts.extend(v.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from));
        }
        let wait = std::env::var("LINKCRM_MCP_WAIT_SECS").ok().and_then(|v| v.trim().parse::<f64>().ok());
        let wait = Duration::from_secs_f64(wait.unwrap_or(20.0).clamp(0.0, 25.0));
        McpConfig { json_response, allowed_hosts, wait }
    }

    /// The local binary: may stream.
    pub fn local() -> McpConfig {
        McpConfig::from_env(false)
    }

    /// Behind API Gateway: JSON answers only.
    pub fn lambda() -> McpConfig {
        McpConfig::from_env(true)
    }
}

/// What the auth layer learnt about a request, for the tools (through the request's extensions,
/// which rmcp hands to the handler with the HTTP request's parts).
#[derive(Clone)]
pub(crate) struct Authed {
    pub key: String,
    pub caller: Caller,
    /// `X-Workspace-Id`, when sent.
    pub workspace: Option<String>,
    /// The `tools/list` namespace filter, when given.
    pub namespace: Option<String>,
}

/// The request's id, for the tools (rmcp runs the handler outside the request's task).
#[derive(Clone)]
pub(crate) struct RequestId(pub String);

/// `/mcp`, for merging into the API's router.
pub fn router(app: Arc<App>, config: McpConfig) -> axum::Router {
    let server = Server::new(app.clone(), config.clone());
    let http = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(config.json_response)
        // The auth layer checks `Host` (with wildcards, which rmcp's own check lacks).
        .disable_allowed_hosts();
    let service =
        StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), http);
    let hosts = Arc::new(config.allowed_hosts);
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state((app, hosts), authenticate))
}

/// Whether `host` (a `Host` header or URI authority) is one of `allowed`.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    // `[::1]:3000`, `127.0.0.1:3000`, `example.com`.
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default().to_owned()
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
            _ => host.clone(),
        }
    };
    allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        match a.strip_prefix("*.") {
            Some(suffix) => name.len() > suffix.len() && name.ends_with(&format!(".{suffix}")),
            None => name == a,
        }
    })
}

/// The largest JSON-RPC message read to find a `tools/list` namespace.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Gives every MCP request an id (`x-request-id`, in problems and in the audit log), then
/// authenticates it.
async fn authenticate(
    State((app, hosts)): State<(Arc<App>, Arc<Vec<String>>)>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let request_id = linkcrm_domain::new_id(linkcrm_domain::IdKind::Request);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let allowed = host.as_deref().is_some_and(|h| host_allowed(h, &hosts));
    let mut resp = linkcrm_core::context::with_request_id(request_id.clone(), async move {
        if allowed {
            admit(app, req, next).await
        } else {
            problem(&linkcrm_core::error::ApiError::forbidden(
                "host_not_allowed",
                "This host name is not one the MCP endpoint serves (LINKCRM_MCP_ALLOWED_HOSTS).",
            ))
        }
    })
    .await;
    if let Ok(v) = header::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn admit(app: Arc<App>, req: Request<Body>, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let header_str =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).map(String::from);
    let key = header_str(header::AUTHORIZATION.as_str())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        })
        .filter(|k| !k.is_empty());
    let workspace = header_str("x-workspace-id").filter(|w| !w.is_empty());
    let mut namespace = parts.uri.query().and_then(|q| {
        q.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "namespace").map(|(_, v)| v.to_owned())
    });
    let Some(key) = key else {
        return unauthorized("missing_api_key", "Send the API key as `Authorization: Bearer <key>`.", false);
    };
    let caller = match linkcrm_core::auth::authenticate(&app, &key).await {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => return unauthorized(e.code, &e.message, true),
        Err(e) => return problem(&e),
    };
    // `tools/list` takes `params.namespace`, which the protocol's own types do not keep: read it
    // here, from the message itself.
    let body = if parts.method == Method::POST && namespace.is_none() {
        let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                let e = linkcrm_core::error::ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "An MCP message is at most 4 MB.",
                );
                return problem(&e);
            }
        };
        if let Ok(msg) = serde_json::from_slice::<Value>(&bytes) {
            if msg.get("method").and_then(Value::as_str) == Some("tools/list") {
                let p = &msg["params"];
                namespace = p["namespace"].as_str().or(p["_meta"]["namespace"].as_str()).map(str::to_owned);
            }
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(Authed { key, caller, workspace, namespace });
    parts.extensions.insert(RequestId(linkcrm_core::context::current_request_id()));
    next.run(Request::from_parts(parts, body)).await
}

fn problem(e: &linkcrm_core::error::ApiError) -> Response {
    let body = e.body(&linkcrm_core::context::current_request_id());
    (e.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// 401 with the challenge MCP clients look for.
fn unauthorized(code: &'static str, message: &str, invalid: bool) -> Response {
    let e = linkcrm_core::error::ApiError::new(StatusCode::UNAUTHORIZED, code, message.to_owned());
    let challenge = if invalid {
        r#"Bearer realm="linkcrm", error="invalid_token", error_description="unknown or revoked API key""#
    } else {
        r#"Bearer realm="linkcrm""#
    };
    let mut resp = problem(&e);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(challenge));
    resp
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn hosts_match_by_name_port_aside_with_wildcards() {
        let allowed: Vec<String> =
            ["localhost", "127.0.0.1", "::1", "*.execute-api.us-east-1.amazonaws.com"].map(String::from).to_vec();
        for ok in
            ["localhost:3000", "127.0.0.1", "[::1]:3000", "abc123.execute-api.us-east-1.amazonaws.com", "LOCALHOST"]
        {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in ["evil.example", "execute-api.us-east-1.amazonaws.com", "localhost.evil.example", "127.0.0.2:3000"] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
