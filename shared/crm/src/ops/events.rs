//! `link_building.crm.event.*`: the log every status is derived from.

use super::{text, time_param, TAG_EVENTS};
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::lenient;
use crate::list::{self, ListResponse};
use crate::records::{self, event_view};
use crate::write::{self, load_relationship, NewEvent, Ride};
use axum::http::StatusCode;
use linkcrm_domain::crm::Event;
use linkcrm_domain::enums::{EventType, PipelineStatus, ReplyClass};
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Index, Item, Query, SortKey};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Create>(), OpSpec::of::<List>(), OpSpec::of::<Get>()]
}

/// Events a client may record by hand. The rest are the system's own (sending, bounces,
/// account-scoped changes) and come from the actions that cause them.
const MANUAL: &[EventType] = &[
    EventType::NoteAdded,
    EventType::CallScheduled,
    EventType::EmailReceived,
    EventType::EmailSent,
    EventType::LinkPlaced,
    EventType::Rejected,
    EventType::ContactResearch,
    EventType::StatusChanged,
];
/// The types a client may record (the others are the system's).
fn manual_types(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = MANUAL.iter().map(|t| t.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

/// How far in the future `occurredAt` may be (clock skew), in seconds.
const FUTURE_SKEW_SECS: i64 = 300;
const METADATA_MAX_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
// What some types need in `metadata`, said in the schema too: STATUS_CHANGED its `to`, LINK_PLACED
// the live link's `linkUrl`, EMAIL_RECEIVED a known `replyClass` if any.
#[schemars(extend("allOf" = [
    { "if": { "properties": { "type": { "const": "STATUS_CHANGED" } } },
      "then": { "required": ["metadata"], "properties": { "metadata": { "type": "object", "required": ["to"],
                "properties": { "to": { "enum": ["PROSPECTING", "APPROVED_TO_CONTACT", "QUEUED", "CONTACTED_BY_US", "CONTACTED_BY_OTHER_ORG", "ACTIVELY_ENGAGED", "LINK_PLACED", "NOT_INTERESTED", "INACTIVE"] } } } } } },
    { "if": { "properties": { "type": { "const": "LINK_PLACED" } } },
      "then": { "required": ["metadata"], "properties": { "metadata": { "type": "object", "required": ["linkUrl"],
                "properties": { "linkUrl": { "type": "string", "pattern": crate::rules::HTTP_URL } } } } } },
    { "if": { "properties": { "type": { "const": "EMAIL_RECEIVED" } } },
      "then": { "properties": { "metadata": { "anyOf": [{ "type": "null" }, { "type": "object",
                "properties": { "replyClass": { "enum": ["interested", "not_interested", "asks_price", "out_of_office", "unsubscribe", "bounce", "other"] } } }] } } } }
]))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    pub relationship_id: crate::ids::Id<crate::ids::Relationship>,
    #[schemars(schema_with = "manual_types")]
    pub r#type: EventType,
    pub contact_id: Option<crate::ids::Id<crate::ids::Contact>>,
    #[schemars(length(max = 998))]
    pub subject: Option<String>,
    #[schemars(length(max = 100000))]
    pub content: Option<String>,
    /// Free-form object. LINK_PLACED needs `linkUrl`; STATUS_CHANGED needs `to`; EMAIL_RECEIVED
    /// may carry `replyClass` (an `out_of_office` reply changes no status).
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub metadata: Option<Value>,
    /// When it happened, for out-of-band events recorded later; now by default.
    #[schemars(pattern(crate::rules::TIMESTAMP))]
    pub occurred_at: Option<String>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.crm.event.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Record a note, a status change or an out-of-band interaction";
    const TAG: &'static str = TAG_EVENTS;
    type Input = CreateInput;
    type Output = Event;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Event>> {
        let ws = ctx.workspace().to_owned();
        if !MANUAL.contains(&input.r#type) {
            return Err(ApiError::invalid_field(
                "type",
                "invalid_request",
                format!("{} events are recorded by the system, not by hand", input.r#type),
            ));
        }
        let mut metadata = match input.metadata {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(ApiError::invalid_field("metadata", "invalid_request", "must be an object")),
        };
        if metadata.as_ref().is_some_and(|m| Value::Object(m.clone()).to_string().len() > METADATA_MAX_BYTES) {
            return Err(ApiError::invalid_field(
                "metadata",
                "invalid_request",
                format!("at most {METADATA_MAX_BYTES} bytes"),
            ));
        }
        let meta_str = |k: &str| metadata.as_ref().and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_owned);
        match input.r#type {
            EventType::LinkPlaced => {
                let ok = meta_str("linkUrl").is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
                if !ok {
                    return Err(ApiError::invalid_field(
                        "metadata.linkUrl",
                        "invalid_request",
                        "LINK_PLACED needs the live link's http(s) URL",
                    ));
                }
            }
            EventType::StatusChanged if meta_str("to").as_deref().and_then(PipelineStatus::parse).is_none() => {
                return Err(ApiError::invalid_field(
                    "metadata.to",
                    "invalid_request",
                    "STATUS_CHANGED needs the new status in metadata.to",
                ));
            }
            EventType::EmailReceived => {
                if let Some(c) = meta_str("replyClass") {
                    if ReplyClass::parse(&c).is_none() {
                        return Err(ApiError::invalid_field(
                            "metadata.replyClass",
                            "invalid_request",
                            format!("unknown reply class '{c}'"),
                        ));
                    }
                }
            }
            _ => {}
        }
        let occurred_at = match &input.occurred_at {
            None => None,
            Some(raw) => {
                let t = time::parse(raw).ok_or_else(|| {
                    ApiError::invalid_field("occurredAt", "invalid_request", "must be an RFC 3339 time")
                })?;
                if (t - time::now()).num_seconds() > FUTURE_SKEW_SECS {
                    return Err(ApiError::invalid_field("occurredAt", "invalid_request", "cannot be in the future"));
                }
                Some(time::format(t))
            }
        };
        let rel = load_relationship(&ctx.app, &ws, &input.relationship_id).await?;
        if let Some(cid) = &input.contact_id {
            let contact = ctx
                .app
                .store
                .get(&keys::contact(cid))
                .await?
                .ok_or_else(|| ApiError::not_found("contact_not_found", "contact", cid))?;
            if records::str_of(&contact, "accountId") != Some(rel.account_id()) {
                return Err(super::contacts::contact_not_at_account(rel.account_id()));
            }
        }
        if input.r#type == EventType::StatusChanged {
            // Who changed it, and from what: the log says so whichever door it came through.
            let m = metadata.get_or_insert_with(Default::default);
            m.insert("from".into(), json!(rel.status()));
            m.insert("keyId".into(), json!(ctx.caller.key_id));
        }
        let new = NewEvent {
            r#type: input.r#type,
            contact_id: input.contact_id.map(String::from),
            subject: text("subject", input.subject, 998)?,
            content: text("content", input.content, 100_000)?,
            metadata: metadata.map(Value::Object),
            occurred_at,
        };
        let (agency, rel_id) = (&ctx.caller.agency_id, &input.relationship_id);
        // With an Idempotency-Key, the answer rides in the event's transaction (rebuilt around
        // each attempt's event), so a retry after a crash replays it instead of logging twice.
        let mut ride = Ride::default();
        if let Some(pending) = ctx.idempotency.clone() {
            ride.ops = Some(Box::new(move |event: &Item| {
                let view = serde_json::to_value(event_view(event)?).map_err(|e| records::corrupt("event", e))?;
                Ok(vec![pending.done_part(Some(StatusCode::CREATED), Some(view), None)])
            }));
        }
        let item = write::record_event(&ctx.app, agency, &ws, rel_id, new, ride, Some(rel)).await?;
        if let Some(pending) = &ctx.idempotency {
            pending.mark_committed();
        }
        Ok(Reply::created(event_view(&item)?))
    }
}

pub use crate::catalogue::IdInput;

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.crm.event.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one event (this workspace's, or an account-scoped one)";
    const TAG: &'static str = TAG_EVENTS;
    type Input = IdInput<crate::ids::Event>;
    type Output = Event;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Event>) -> ApiResult<Reply<Event>> {
        let item = ctx.app.store.get(&keys::event(&input.id)).await?;
        let visible = item.as_ref().is_some_and(|i| {
            // Account-scoped events are shared knowledge; relationship events are private.
            i.get("relationshipId").is_none_or(Value::is_null)
                || records::str_of(i, "organizationId") == Some(ctx.workspace())
        });
        match item {
            Some(i) if visible && records::str_of(&i, "entity") == Some("event") => Ok(Reply::ok(event_view(&i)?)),
            _ => Err(ApiError::not_found("event_not_found", "event", &input.id)),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub relationship_id: Option<crate::ids::Id<crate::ids::Relationship>>,
    /// With an agency key and no X-Workspace-Id: this partner's events across all the agency's
    /// workspaces, each carrying its `organizationId`.
    pub account_id: Option<crate::ids::Id<crate::ids::Account>>,
    /// Comma-separated event types.
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(with = "Option<String>", pattern(r"^(NOTE_ADDED|CALL_SCHEDULED|EMAIL_RECEIVED|EMAIL_SENT|LINK_PLACED|REJECTED|CONTACT_RESEARCH|STATUS_CHANGED|EMAIL_BOUNCED|EMAIL_OPENED|SEND_BLOCKED|SEND_UNCERTAIN|PRICE_UPDATED|DO_NOT_CONTACT_SET|METRICS_REFRESHED)(,(NOTE_ADDED|CALL_SCHEDULED|EMAIL_RECEIVED|EMAIL_SENT|LINK_PLACED|REJECTED|CONTACT_RESEARCH|STATUS_CHANGED|EMAIL_BOUNCED|EMAIL_OPENED|SEND_BLOCKED|SEND_UNCERTAIN|PRICE_UPDATED|DO_NOT_CONTACT_SET|METRICS_REFRESHED))*$"))]
    pub r#type: Option<Vec<String>>,
    /// By `occurredAt`, inclusive (RFC 3339 or a date).
    #[schemars(pattern(crate::rules::TIME))]
    pub since: Option<String>,
    #[schemars(pattern(crate::rules::TIME))]
    pub until: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    #[schemars(extend("enum" = ["asc", "desc"]))]
    pub order: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.event.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str = "List events by relationship, account, type and time";
    const TAG: &'static str = TAG_EVENTS;
    type Input = ListInput;
    type Output = ListResponse<Event>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Event>>> {
        let limit = list::limit(input.limit)?;
        let forward = match input.order.as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(_) => return Err(ApiError::invalid_field("order", "invalid_request", "must be asc or desc")),
        };
        let types = input
            .r#type
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|t| {
                        EventType::parse(t).ok_or_else(|| {
                            ApiError::invalid_field("type", "invalid_request", format!("unknown event type '{t}'"))
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()
            })
            .transpose()?;
        let since = input.since.as_deref().map(|s| time_param("since", s)).transpose()?;
        let until = input.until.as_deref().map(|s| time_param("until", s)).transpose()?;
        let partition = match (&ctx.workspace_id, &input.relationship_id, &input.account_id) {
            (Some(ws), Some(rel), _) => {
                let r = load_relationship(&ctx.app, ws, rel).await.map_err(|e| {
                    if e.code == "invalid_request" { ApiError::invalid_field("relationshipId", "invalid_request", "is not a relationship id") } else { e }
                })?;
                if input.account_id.as_deref().is_some_and(|a| a != r.account_id()) {
                    return Ok(Reply::ok(ListResponse { data: vec![], next_cursor: None, total: None }));
                }
                (Index::Gsi1, keys::relationship_events_pk(ws, r.account_id()), String::new())
            }
            (Some(ws), None, Some(acct)) => (Index::Gsi1, keys::relationship_events_pk(ws, acct), String::new()),
            (Some(ws), None, None) => (Index::Gsi2, keys::workspace_events_pk(ws), String::new()),
            // The account's partition holds every agency's events; this agency's are a prefix.
            (None, None, Some(acct)) => {
                (Index::Gsi4, keys::account_events_pk(acct), keys::agency_events_prefix(&ctx.caller.agency_id))
            }
            (None, _, _) => {
                return Err(ApiError::bad_request(
                    "workspace_required",
                    "An agency key must name the workspace with X-Workspace-Id, except to list one account's events (accountId) across its workspaces.",
                ))
            }
        };
        // A window that closes before it opens holds nothing (and is no key range a store takes).
        if since.as_ref().zip(until.as_ref()).is_some_and(|(s, u)| s > u) {
            return Ok(Reply::ok(ListResponse { data: vec![], next_cursor: None, total: None }));
        }
        // Sort keys are `<prefix><time>#<id>`; `~` sorts after the `#<id>` that follows the time
        // (and after every time).
        let pre = &partition.2;
        let sk = match (&since, &until) {
            (None, None) if pre.is_empty() => SortKey::All,
            (None, None) => SortKey::Prefix(pre.clone()),
            (Some(s), None) if pre.is_empty() => SortKey::AtLeast(s.clone()),
            (Some(s), None) => SortKey::Between(format!("{pre}{s}"), format!("{pre}~")),
            (None, Some(u)) if pre.is_empty() => SortKey::AtMost(format!("{u}~")),
            (None, Some(u)) => SortKey::Between(pre.clone(), format!("{pre}{u}~")),
            (Some(s), Some(u)) => SortKey::Between(format!("{pre}{s}"), format!("{pre}{u}~")),
        };
        let mut q = Query::index(partition.0, partition.1.clone()).sk(sk).forward(forward).limit(limit);
        if let Some(ts) = &types {
            q = q.filter(Condition::Or(ts.iter().map(|t| Condition::Equals("type".into(), json!(t))).collect()));
        }
        let scope = format!(
            "event.list#{}#{}#{:?}#{:?}#{:?}#{forward}",
            ctx.caller.agency_id, partition.1, types, since, until
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let page = ctx.app.store.query(q.after(cursor)).await?;
        let data = page.items.iter().map(event_view).collect::<crate::error::DataResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}
