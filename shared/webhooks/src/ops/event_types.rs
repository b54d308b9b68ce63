//! `webhooks.event_types`: the catalogue endpoints may subscribe to, each with the JSON schema of
//! its envelope.

use super::TAG;
use linkcrm_core::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::ApiResult;
use linkcrm_domain::event_types;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypesInput {}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    pub r#type: String,
    pub description: String,
    /// JSON Schema (2020-12) of the delivered envelope `{type, id, createdAt, workspaceId, data}`.
    pub schema: Value,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EventTypeList {
    pub data: Vec<EventType>,
}

/// `GET /v1/webhooks/event-types`.
pub struct ListEventTypes;
impl Operation for ListEventTypes {
    const NAME: &'static str = "webhooks.event_types";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Webhooks;
    const SCOPE: Option<&'static str> = None;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Every event type a webhook can subscribe to, with the JSON schema of its payload";
    const TAG: &'static str = TAG;
    type Input = EventTypesInput;
    type Output = EventTypeList;

    async fn run(_ctx: Ctx, _input: EventTypesInput) -> ApiResult<Reply<EventTypeList>> {
        let data = event_types::CATALOGUE
            .iter()
            .filter(|s| event_types::is_subscribable(s.name))
            .map(|s| EventType {
                r#type: s.name.into(),
                description: s.description.into(),
                schema: envelope_schema(s.name),
            })
            .collect();
        Ok(Reply::ok(EventTypeList { data }))
    }
}

fn envelope_schema(name: &str) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "type": "object",
        "required": ["type", "id", "createdAt", "workspaceId", "data"],
        "properties": {
            "type": { "const": name },
            "id": { "type": "string", "pattern": "^evt_[0-9A-Z]{26}$", "description": "The event id; also the webhook-id header, the same on every attempt" },
            "createdAt": { "type": "string", "format": "date-time" },
            "workspaceId": { "type": ["string", "null"], "description": "The workspace the event happened in (null for agency-level events)" },
            "data": data_schema(name),
        },
    })
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

/// The `data` of each type. Changes carry `previous` (the fields before) and the resource
/// `version` where the resource has one.
fn data_schema(name: &str) -> Value {
    let s = json!({ "type": "string" });
    let sn = json!({ "type": ["string", "null"] });
    let resource = |what: &str| json!({ "type": "object", "description": format!("The {what} as the REST API shows it at commit") });
    match name {
        "link_building.link.placed" => obj(
            &["relationshipId", "accountId", "eventId"],
            json!({ "relationshipId": s, "accountId": s, "eventId": s, "linkUrl": sn, "occurredAt": s,
                    "relationship": resource("relationship"), "version": { "type": "integer" } }),
        ),
        n if n.starts_with("link_building.link.") => obj(
            &["linkId", "relationshipId", "state", "previous", "link", "check", "version"],
            json!({ "linkId": s, "relationshipId": s, "accountId": s, "state": s,
                    "previous": { "type": "object", "properties": { "state": s } },
                    "eventId": { "type": ["string", "null"], "description": "The relationship event (LINK_LOST, LINK_RESTORED, LINK_CHANGED)" },
                    "link": resource("monitored link"), "check": resource("check that found the change"),
                    "version": { "type": "integer" } }),
        ),
        "link_building.relationship.status_changed" => obj(
            &["relationshipId", "accountId", "from", "to", "eventId"],
            json!({ "relationshipId": s, "accountId": s, "from": s, "to": s, "eventId": s,
                    "previous": { "type": "object", "properties": { "status": s } },
                    "relationship": resource("relationship"), "version": { "type": "integer" } }),
        ),
        n if n.starts_with("link_building.email.") || n == "link_building.event.created" => obj(
            &["id", "relationshipId", "type", "occurredAt"],
            json!({ "id": s, "relationshipId": s, "accountId": s, "type": s, "occurredAt": s, "contactId": sn,
                    "subject": sn, "metadata": { "type": ["object", "null"] } }),
        ),
        n if n.starts_with("link_building.campaign.") => obj(
            &["id", "campaign", "version"],
            json!({ "id": s, "type": s, "name": s, "from": s, "to": s, "reason": sn,
                    "campaign": resource("campaign"), "version": { "type": "integer" },
                    "previous": { "type": "object", "properties": { "status": s } } }),
        ),
        n if n.starts_with("agent.invocation.") => obj(
            &["invocationId", "status"],
            json!({ "invocationId": s, "status": s, "skill": s, "approvalId": sn, "result": {}, "error": {} }),
        ),
        "link_building.account.do_not_contact" => {
            obj(&["accountId", "domain"], json!({ "accountId": s, "domain": s, "eventId": s, "reason": sn }))
        }
        "webhook.endpoint.disabled" => {
            obj(&["webhook", "reason"], json!({ "webhook": resource("webhook"), "reason": s }))
        }
        "webhook.test" => obj(&["webhookId"], json!({ "webhookId": s, "message": s })),
        n if n.starts_with("link_building.relationship.") => resource("relationship"),
        n if n.starts_with("link_building.contact.") => resource("contact"),
        n if n.starts_with("link_building.account.") => obj(&["accountId"], json!({ "accountId": s, "domain": s })),
        "link_building.inbound.received" => obj(
            &["id", "message"],
            json!({ "id": s, "matched": { "type": "boolean" }, "relationshipId": sn, "class": sn, "intent": sn,
                    "eventId": sn, "message": resource("inbound message") }),
        ),
        "link_building.inbound.negotiated" | "link_building.inbound.escalated" => obj(
            &["id", "outcome", "message"],
            json!({ "id": s, "outcome": s, "intent": sn, "relationshipId": sn, "reason": sn, "decidedBy": {},
                    "invocationId": sn, "approvalId": sn,
                    "message": resource("inbound message, with the decision as `negotiation`"),
                    "previous": { "type": "object", "properties": { "negotiation": {} } } }),
        ),
        "link_building.inbound.settings.updated" => obj(
            &["settings", "version"],
            json!({ "enabled": { "type": "boolean" }, "autonomous": { "type": "boolean" }, "campaignId": sn,
                    "settings": resource("inbound settings"), "previous": { "type": ["object", "null"] },
                    "version": { "type": "integer" } }),
        ),
        n if n.starts_with("link_building.inbound.eval_gate.") => obj(
            &["id", "version"],
            json!({ "id": s, "version": { "type": "integer" }, "gate": resource("eval gate"),
                    "previous": { "type": "object", "description": "The gate before (updated, deleted)" } }),
        ),
        n if n.starts_with("suppression.") => resource("suppression entry"),
        n if n.starts_with("workspace.") => resource("workspace"),
        _ => json!({ "type": "object" }),
    }
}
