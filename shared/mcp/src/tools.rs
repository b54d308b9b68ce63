//! Tools from the catalogue, and the handler rmcp calls.

use crate::{Authed, McpConfig};
use linkcrm_core::catalogue::{Effect, OpSpec};
use linkcrm_core::error::ApiError;
use linkcrm_core::executor::{self, Call};
use linkcrm_core::App;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The anchor's names for today's operations (CONTRACT "Names and ids").
const ALIASES: &[(&str, &str)] = &[
    ("agent.approval.approve", "agent.invocations.approve"),
    ("agent.approval.reject", "agent.invocations.reject"),
    ("agent.approval.list", "agent.approvals.list"),
];

/// A tool's name: the operation's, with `.` as `_` (clients accept `^[a-zA-Z0-9_-]{1,64}$`).
pub fn tool_name(op: &str) -> String {
    op.replace('.', "_")
}

/// One operation as a tool.
struct Entry {
    spec_index: usize,
    tool: Tool,
}

/// The tools, built once per process from the catalogue.
struct Tools {
    entries: Vec<Entry>,
    /// Tool name, dotted name and aliases → entry.
    by_name: HashMap<String, usize>,
}

/// The MCP server: cheap to clone (one per request, stateless).
#[derive(Clone)]
pub struct Server {
    app: Arc<App>,
    tools: Arc<Tools>,
    config: McpConfig,
}

impl Server {
    pub fn new(app: Arc<App>, config: McpConfig) -> Server {
        let mut entries = Vec::new();
        let mut by_name = HashMap::new();
        for (i, spec) in app.catalogue.iter().enumerate() {
            by_name.insert(tool_name(spec.name), entries.len());
            by_name.insert(spec.name.to_owned(), entries.len());
            entries.push(Entry { spec_index: i, tool: tool_of(spec) });
        }
        for (alias, op) in ALIASES {
            if let Some(&e) = by_name.get(*op) {
                by_name.insert((*alias).to_owned(), e);
                by_name.insert(tool_name(alias), e);
            }
        }
        Server { app, tools: Arc::new(Tools { entries, by_name }), config }
    }

    fn spec(&self, e: &Entry) -> &OpSpec {
        &self.app.catalogue[e.spec_index]
    }
}

/// The input schema as the OpenAPI document has it, every subschema inlined (tools carry no
/// `$ref`), plus `workspace` and, on writes, `idempotencyKey`.
pub fn input_schema(spec: &OpSpec) -> Map<String, Value> {
    let mut schema = inlined(spec.input_schema);
    if schema.get("type").is_none() {
        schema.insert("type".into(), json!("object"));
    }
    let props = schema.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(p) = props {
        p.insert(
            "workspace".into(),
            json!({ "type": "string", "description": "The workspace to act in (ws_…): for an agency key, instead of the connection's X-Workspace-Id." }),
        );
        if spec.effect.writes() {
            p.insert(
                "idempotencyKey".into(),
                json!({ "type": "string", "pattern": "^[!-~]{1,255}$", "description": "Retrying with the same key does the work once (REST's Idempotency-Key)." }),
            );
        }
    }
    schema
}

/// A type's schema as the OpenAPI document has it, with every `$ref` replaced by the schema it
/// names (keywords beside a `$ref`, a field's own `description` or `default`, kept).
fn inlined(f: fn(&mut schemars::SchemaGenerator) -> schemars::Schema) -> Map<String, Value> {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let root = f(&mut generator).to_value();
    let defs = generator.definitions().clone();
    match resolve(&root, &defs, 0) {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("allOf".into(), json!([other]));
            m
        }
    }
}

/// Deeper than any input type nests: a recursive type stops here (as "any value").
const MAX_DEPTH: usize = 32;

fn resolve(v: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let name = r.rsplit('/').next().unwrap_or_default();
                let mut out = match defs.get(name) {
                    Some(d) if depth < MAX_DEPTH => resolve(d, defs, depth + 1),
                    _ => json!({}),
                };
                if let Value::Object(o) = &mut out {
                    for (k, x) in m.iter().filter(|(k, _)| k.as_str() != "$ref") {
                        o.insert(k.clone(), resolve(x, defs, depth));
                    }
                }
                return out;
            }
            Value::Object(m.iter().map(|(k, x)| (k.clone(), resolve(x, defs, depth))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, defs, depth)).collect()),
        other => other.clone(),
    }
}

/// The tool for one operation.
fn tool_of(spec: &OpSpec) -> Tool {
    let read = spec.effect == Effect::Read;
    let annotations = ToolAnnotations::new()
        .read_only(read)
        .destructive(spec.effect == Effect::Delete)
        .idempotent(matches!(spec.effect, Effect::Read | Effect::Update | Effect::Delete))
        .open_world(open_world(spec));
    let mut tool = Tool::new(tool_name(spec.name), spec.summary, Arc::new(input_schema(spec)))
        .with_title(spec.name)
        .with_annotations(annotations);
    // Queued work answers with its invocation (waited on), files with the file object: their
    // answers are not the operation's output type, so they declare none.
    let queued = spec.default_status == axum::http::StatusCode::ACCEPTED;
    if !queued && !spec.file {
        let out = inlined(spec.output_schema);
        if out.get("type") == Some(&json!("object")) {
            tool = tool.with_raw_output_schema(Arc::new(out));
        }
    }
    tool
}

/// Whether the tool reaches outside linkcrm: sends mail, or calls a paid data provider.
fn open_world(spec: &OpSpec) -> bool {
    spec.cost_millicredits > 0
        || ["send", "discover", "research", "respond", "emails.", "serp_outreach.start", "competitor_outreach.start"]
            .iter()
            .any(|w| spec.name.contains(w))
}

fn authed(context: &RequestContext<RoleServer>) -> Result<Authed, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Authed>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("the request was not authenticated", None))
}

/// A tool error carrying the problem object REST would answer with.
fn tool_error(problem: Value) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(problem.to_string())]);
    r.structured_content = Some(problem);
    r
}

fn api_error(e: &ApiError, request_id: &str) -> CallToolResult {
    tool_error(e.body(request_id))
}

/// The invocation an answer points at, when it queued work.
fn invocation_of(body: &Value) -> Option<String> {
    let id = body["invocationId"]
        .as_str()
        .or(body["invocation"]["id"].as_str())
        .or(body["id"].as_str().filter(|i| i.starts_with("inv_")))?;
    Some(id.to_owned())
}

/// Statuses after which an invocation will not move without a person.
fn settled(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED" | "CANCELLED" | "WAITING_APPROVAL" | "REJECTED" | "EXPIRED")
}

impl Server {
    /// Waits (at most `config.wait`) for a queued invocation to settle; the latest view of it.
    async fn wait_for(
        &self,
        caller: &linkcrm_core::context::Caller,
        call: &Call,
        id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Option<Value> {
        let started = Instant::now();
        let token = context.meta.get_progress_token();
        let mut latest = None;
        let mut step = 0u32;
        loop {
            let got = executor::execute_authenticated(
                &self.app,
                "agent.invocations.get",
                caller.clone(),
                call,
                json!({ "id": id }),
            )
            .await;
            if let Ok(o) = got {
                let inv = o.response.body.unwrap_or(Value::Null);
                let status = inv["status"].as_str().unwrap_or_default().to_owned();
                latest = Some(inv);
                // Where the answer can stream, each look at the invocation is a progress report.
                if let (Some(token), false) = (&token, self.config.json_response) {
                    step += 1;
                    let p = ProgressNotificationParam::new(token.clone(), f64::from(step))
                        .with_message(format!("invocation {id} is {status}"));
                    let _ = context.peer.notify_progress(p).await;
                }
                if settled(&status) {
                    return latest;
                }
            }
            if started.elapsed() >= self.config.wait {
                return latest;
            }
            tokio::time::sleep(Duration::from_millis(250).min(self.config.wait.saturating_sub(started.elapsed())))
                .await;
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("linkcrm", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "linkcrm: a link-building CRM. Every REST operation is a tool named after it (dots as \
                 underscores). Agency keys pass `workspace` (ws_…) or send X-Workspace-Id. Writes take an \
                 optional `idempotencyKey`. Errors carry the API's problem object (code, message, details).",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let a = authed(&context)?;
        let namespace = a.namespace.as_deref().map(str::trim).filter(|n| !n.is_empty());
        let tools = self
            .tools
            .entries
            .iter()
            .filter(|e| {
                let spec = self.spec(e);
                (!spec.agency_only || a.caller.is_agency())
                    && spec.scope.is_none_or(|s| a.caller.has_scope(s))
                    && namespace.is_none_or(|n| spec.name.split('.').next() == Some(n))
            })
            .map(|e| e.tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.call(request, context).await.map(CallToolResponse::from)
    }
}

impl Server {
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let a = authed(&context)?;
        let Some(&e) = self.tools.by_name.get(request.name.as_ref()) else {
            return Err(McpError::invalid_params(format!("unknown tool '{}'", request.name), None));
        };
        let spec = self.spec(&self.tools.entries[e]);
        // The request's id (the auth layer's) rides along in the request's parts.
        let request_id = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<crate::RequestId>())
            .map(|r| r.0.clone())
            .unwrap_or_else(|| linkcrm_domain::new_id(linkcrm_domain::IdKind::Request));
        let mut args = request.arguments.unwrap_or_default();
        let text = |v: Option<Value>, field: &str| -> Result<Option<String>, ApiError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(ApiError::invalid_field(field, "invalid_request", "must be a string")),
            }
        };
        let workspace = match text(args.remove("workspace"), "workspace") {
            Ok(w) => w.or(a.workspace.clone()),
            Err(e) => return Ok(api_error(&e, &request_id)),
        };
        let idempotency_key = match text(args.remove("idempotencyKey"), "idempotencyKey") {
            Ok(k) => k,
            Err(e) => return Ok(api_error(&e, &request_id)),
        };
        let call =
            Call { key: a.key.clone(), workspace: Ok(workspace), if_match: None, idempotency_key: Ok(idempotency_key) };
        let app = self.app.clone();
        let name = spec.name;
        let caller = a.caller.clone();
        let outcome = linkcrm_core::context::with_request_id(request_id.clone(), async move {
            executor::execute_authenticated(&app, name, caller, &call, Value::Object(args)).await.map(|o| (o, call))
        })
        .await;
        let (outcome, call) = match outcome {
            Ok(o) => o,
            Err(e) => return Ok(api_error(&e, &request_id)),
        };
        let status = outcome.response.status;
        let mut body = outcome.response.body.unwrap_or_else(|| json!({}));
        if !status.is_success() {
            // An idempotent replay of an earlier refusal.
            return Ok(tool_error(body));
        }
        if status == axum::http::StatusCode::ACCEPTED {
            if let Some(id) = invocation_of(&body) {
                if let Some(inv) = self.wait_for(&a.caller, &call, &id, &context).await {
                    if let Value::Object(m) = &mut body {
                        m.insert("invocation".into(), inv);
                    }
                }
            }
        }
        if !body.is_object() {
            body = json!({ "result": body });
        }
        Ok(CallToolResult::structured(body))
    }
}
