//! The operation catalogue: every capability as a named operation with typed input and output,
//! a required scope, a workspace rule and a credit cost. REST routes (and later MCP tools and
//! agency bulk actions) dispatch through it, so one behaviour has one implementation.

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::ids::{Id, IdSpec};
use axum::http::StatusCode;
use futures::future::BoxFuture;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;

/// Where an operation acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkspaceRule {
    /// Agency-level or addressed by a path `{id}` (workspace administration).
    None,
    /// Acts in one workspace: the key's own, or `X-Workspace-Id` for an agency key.
    Required,
    /// Like `Required`, but an agency key may omit `X-Workspace-Id` to cover all its workspaces.
    AgencyWide,
}

/// What an operation does, for doors that need to know: which status a success has by default,
/// whether it may be retried with an idempotency key, and (for MCP) its hints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads; changes nothing.
    Read,
    /// Makes a record (201 by default).
    Create,
    /// Changes a record in place.
    Update,
    /// Removes or archives a record.
    Delete,
    /// Does something that is not one of the above (queue work, approve, validate).
    Action,
}

impl Effect {
    pub fn writes(self) -> bool {
        self != Effect::Read
    }
}

/// The endpoint family an operation belongs to: one Lambda function serves each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Accounts, contacts, relationships, events, discovery.
    Crm,
    /// Mailboxes, sending, suppression, policy, inbound mail, unsubscribe.
    Outreach,
    /// Invocations and approvals.
    Agent,
    /// Agencies' workspaces, keys, credits, usage, integrations.
    Workspaces,
    /// Campaigns, their drafts and sends, templates and writing.
    Campaigns,
    /// The inbound negotiator: its settings, partner modes, eval gates, and replies to requests.
    Inbound,
    /// Webhook endpoints, their deliveries, dead letters and the event-type catalogue.
    Webhooks,
    /// The agency's tools: the audit log, bulk actions across workspaces and their schedules,
    /// integration health.
    Agency,
    /// Placed-link monitoring: monitored links, their checks and the monthly summary.
    Links,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::Crm,
        Family::Outreach,
        Family::Agent,
        Family::Workspaces,
        Family::Campaigns,
        Family::Inbound,
        Family::Webhooks,
        Family::Agency,
        Family::Links,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Crm => "crm",
            Family::Outreach => "outreach",
            Family::Agent => "agent",
            Family::Workspaces => "workspaces",
            Family::Campaigns => "campaigns",
            Family::Inbound => "inbound",
            Family::Webhooks => "webhooks",
            Family::Agency => "agency",
            Family::Links => "links",
        }
    }
}

/// What an operation returns: a status, a body (none for 204) and an optional ETag version.
pub struct Reply<T> {
    pub status: Option<StatusCode>,
    pub body: Option<T>,
    pub version: Option<i64>,
}

impl<T> Reply<T> {
    pub fn ok(body: T) -> Self {
        Reply { status: None, body: Some(body), version: None }
    }
    pub fn created(body: T) -> Self {
        Reply { status: Some(StatusCode::CREATED), body: Some(body), version: None }
    }
    pub fn with_version(mut self, v: i64) -> Self {
        self.version = Some(v);
        self
    }
}

impl Reply<()> {
    pub fn no_content() -> Self {
        Reply { status: Some(StatusCode::NO_CONTENT), body: None, version: None }
    }
}

/// A typed operation.
pub trait Operation: Send + Sync + 'static {
    /// Dotted name, e.g. `link_building.crm.relationship.list`.
    const NAME: &'static str;
    const EFFECT: Effect;
    const FAMILY: Family;
    /// Scope the key must hold; `None` for any valid key.
    const SCOPE: Option<&'static str>;
    const WORKSPACE: WorkspaceRule;
    /// Only an agency key may call it.
    const AGENCY_ONLY: bool = false;
    /// Credits charged per call, in thousandths (CRUD is free).
    const COST_MILLICREDITS: u64 = 0;
    /// The status of a successful answer when the operation does not set one per reply: 201 for
    /// a create, 200 otherwise, unless given here (202 for queued work, 200 for a POST action that
    /// creates nothing). The OpenAPI document states it.
    const SUCCESS: Option<StatusCode> = None;
    /// Other success statuses a reply may set (a create that finds its record already there
    /// answers 200 instead of 201). The OpenAPI document lists them.
    const ALSO_SUCCEEDS_WITH: &'static [StatusCode] = &[];
    const SUMMARY: &'static str;
    const TAG: &'static str;
    /// The output is a [`FileBody`]: doors that can answer a file (REST) answer its `body` with
    /// its content type, a `Content-Disposition` and a `Link: rel="next"` to the rest.
    const FILE: bool = false;
    type Input: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Send + 'static;

    fn run(ctx: Ctx, input: Self::Input) -> impl Future<Output = ApiResult<Reply<Self::Output>>> + Send;
}

/// A file an operation answers (an export): REST sends `body` as the response itself; a door
/// that speaks JSON only sends this object.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileBody {
    pub content_type: String,
    pub filename: String,
    pub body: String,
    /// Rows in this part.
    pub rows: u64,
    /// The cursor to the next part, when the file did not fit in this one.
    pub next_cursor: Option<String>,
}

/// The erased result every door maps to its own wire format.
pub struct OpResponse {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub version: Option<i64>,
}

pub struct OpSpec {
    pub name: &'static str,
    pub effect: Effect,
    pub family: Family,
    pub scope: Option<&'static str>,
    pub workspace: WorkspaceRule,
    pub agency_only: bool,
    pub cost_millicredits: u64,
    pub summary: &'static str,
    pub tag: &'static str,
    pub input_schema: fn(&mut SchemaGenerator) -> Schema,
    pub output_schema: fn(&mut SchemaGenerator) -> Schema,
    pub default_status: StatusCode,
    pub also_succeeds_with: &'static [StatusCode],
    /// The output is a [`FileBody`].
    pub file: bool,
    pub run: fn(Ctx, Value) -> BoxFuture<'static, ApiResult<OpResponse>>,
}

fn success_status<O: Operation>() -> StatusCode {
    O::SUCCESS.unwrap_or(if O::EFFECT == Effect::Create { StatusCode::CREATED } else { StatusCode::OK })
}

impl OpSpec {
    pub fn of<O: Operation>() -> OpSpec {
        OpSpec {
            name: O::NAME,
            effect: O::EFFECT,
            family: O::FAMILY,
            scope: O::SCOPE,
            workspace: O::WORKSPACE,
            agency_only: O::AGENCY_ONLY,
            cost_millicredits: O::COST_MILLICREDITS,
            summary: O::SUMMARY,
            tag: O::TAG,
            input_schema: |g| g.subschema_for::<O::Input>(),
            output_schema: |g| g.subschema_for::<O::Output>(),
            default_status: success_status::<O>(),
            also_succeeds_with: O::ALSO_SUCCEEDS_WITH,
            file: O::FILE,
            run: |ctx, input| {
                Box::pin(async move {
                    let input: O::Input = parse_input(input)?;
                    let reply = O::run(ctx, input).await?;
                    let default = success_status::<O>();
                    let body = match reply.body {
                        Some(b) => Some(serde_json::to_value(b).map_err(|e| {
                            tracing::error!(error = %e, "output does not serialise");
                            ApiError::internal()
                        })?),
                        None => None,
                    };
                    let status = reply.status.unwrap_or(if body.is_none() { StatusCode::NO_CONTENT } else { default });
                    Ok(OpResponse { status, body, version: reply.version })
                })
            },
        }
    }
}

/// The input of an operation addressed only by the `{id}` in its path: an id of kind `K`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, bound = "")]
pub struct IdInput<K: IdSpec> {
    pub id: Id<K>,
}

impl<K: IdSpec> JsonSchema for IdInput<K> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("IdInputFor{}", K::NAME).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": { "id": generator.subschema_for::<Id<K>>() },
            "required": ["id"],
            "additionalProperties": false,
        })
    }
}

/// Deserialises an operation's input, turning serde's complaint into a field-level 400.
pub fn parse_input<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let (field, message) = describe_serde_error(&path, &inner);
        let mut err = ApiError::bad_request("invalid_request", format!("Invalid request: {field}: {message}"));
        err.errors.push(FieldError { field, code: "invalid".into(), message });
        err
    })
}

/// serde says "unknown field `x`, expected one of ..." at the parent path; name the field itself.
fn describe_serde_error(path: &str, message: &str) -> (String, String) {
    let quoted = |m: &str| m.split('`').nth(1).map(str::to_owned);
    let join = |leaf: String| if path == "." || path.is_empty() { leaf } else { format!("{path}.{leaf}") };
    if message.starts_with("unknown field") {
        if let Some(f) = quoted(message) {
            // serde_path_to_error already ends the path with the unknown field.
            let field = if path == f || path.ends_with(&format!(".{f}")) { path.to_owned() } else { join(f) };
            return (field, "unknown field".into());
        }
    }
    if message.starts_with("missing field") {
        if let Some(f) = quoted(message) {
            return (join(f), "is required".into());
        }
    }
    let field = if path == "." || path.is_empty() { "body".to_owned() } else { path.to_owned() };
    (field, message.to_owned())
}
