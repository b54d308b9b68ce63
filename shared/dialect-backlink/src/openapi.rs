//! The dialect's OpenAPI document, made from its route table: each route's parameters and body
//! fields as checked, its success status and shape, and the peer's error bodies.

use crate::routes::{BodySpec, Route, Shape, ROUTES};
use crate::wire::schema_of;
use crate::PREFIXES;
use serde_json::{json, Map, Value};

fn nullable(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}

fn schemas() -> Value {
    let campaign = json!({
        "type": "object",
        "required": ["campaign_id", "name", "status", "created_at", "keywords"],
        "properties": {
            "campaign_id": { "type": "string", "description": "Our campaign id (`cmp_…`)." },
            "id": { "type": "string" },
            "name": { "type": "string" },
            "description": nullable("string"),
            "keywords": { "type": "array", "items": { "type": "string" } },
            "status": { "type": "string", "enum": ["active", "paused", "completed", "cancelled"] },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" },
            "lead_count": { "type": ["integer", "null"] },
            "sent_count": { "type": ["integer", "null"] },
            "replied_count": { "type": ["integer", "null"] },
            "placed_count": { "type": ["integer", "null"] }
        }
    });
    let mut with_leads = campaign.clone();
    with_leads["properties"]["leads"] = json!({ "type": "array", "items": { "$ref": "#/components/schemas/Lead" } });
    with_leads["required"] = json!(["campaign_id", "name", "status", "created_at", "keywords", "leads", "lead_count"]);
    let score = nullable("number");
    json!({
        "Campaign": campaign,
        "CampaignWithLeads": with_leads,
        "Lead": {
            "type": "object",
            "required": ["lead_id", "campaign_id", "website_url", "status", "created_at"],
            "properties": {
                "lead_id": { "type": "string", "description": "The workspace's relationship with the site (`rel_…`)." },
                "id": { "type": "string" },
                "campaign_id": { "type": "string" },
                "website_url": nullable("string"), "website_title": nullable("string"),
                "contact_email": nullable("string"), "quality_score": score, "relevance_score": score,
                "guest_post_likelihood": score, "source": nullable("string"),
                "status": { "type": "string", "enum": crate::routes::LEAD_STATUSES },
                "notes": nullable("string"), "created_at": nullable("string"),
                "url": nullable("string"), "domain": nullable("string"), "page_title": { "type": "string" },
                "snippet": { "type": "string" }, "email": nullable("string"), "confidence_score": { "type": "number" },
                "discovery_source": nullable("string"), "relationship_id": { "type": "string" },
                "account_id": nullable("string"), "contact_id": nullable("string"), "status_set_at": nullable("string")
            }
        },
        "BulkAdd": {
            "type": "object", "required": ["added", "skipped", "failed"],
            "properties": {
                "added": { "type": "integer" }, "skipped": { "type": "integer" },
                "failed": { "type": "array", "items": { "type": "string" }, "description": "`<index>: <url>: <why> (<code>)`" }
            }
        },
        "BulkStatus": {
            "type": "object", "required": ["updated", "failed"],
            "properties": { "updated": { "type": "integer" }, "failed": { "type": "array", "items": { "type": "string" } } }
        },
        "Email": {
            "type": "object", "required": ["subject", "body"],
            "properties": { "subject": { "type": "string" }, "body": { "type": "string" }, "credits_charged": { "type": "number" } }
        },
        "Suggestions": {
            "type": "object", "required": ["suggestions"],
            "properties": { "suggestions": { "type": "array", "items": { "type": "string" } }, "credits_charged": { "type": "number" } }
        },
        "Template": {
            "type": "object", "required": ["template_id", "name", "subject", "body", "placeholders"],
            "properties": {
                "template_id": { "type": "string" }, "id": { "type": "string" }, "name": { "type": "string" },
                "subject": { "type": "string" }, "body": { "type": "string" }, "category": nullable("string"),
                "placeholders": { "type": "array", "items": { "type": "string" } },
                "variables": { "type": "array", "items": { "type": "string" } },
                "subject_template": { "type": "string" }, "body_template": { "type": "string" },
                "created_at": { "type": "string" }, "updated_at": { "type": "string" }
            }
        },
        "Suppression": {
            "type": "object", "required": ["id", "email", "domain", "reason", "created_at"],
            "properties": {
                "id": { "type": "string" }, "email": nullable("string"), "domain": nullable("string"),
                "reason": nullable("string"), "source": nullable("string"), "created_at": nullable("string")
            }
        },
        "Policy": {
            "type": "object", "required": ["allowed", "reason", "legal_basis", "counts", "limits"],
            "properties": {
                "allowed": { "type": "boolean" }, "reason": { "type": "string" },
                "reasons": { "type": "array", "items": { "type": "string" } },
                "legal_basis": nullable("string"), "counts": { "type": "object" }, "limits": { "type": "object" },
                "notes": { "type": "array" }, "daily_user_count": { "type": "integer" },
                "daily_user_limit": { "type": "integer" }, "daily_domain_count": { "type": "integer" },
                "daily_domain_limit": { "type": "integer" }
            }
        },
        "Attempt": {
            "type": "object", "required": ["attempt_id", "lead_id", "campaign_id", "subject", "status"],
            "properties": {
                "attempt_id": { "type": "string", "description": "Our send invocation (`inv_…`)." },
                "id": { "type": "string" }, "lead_id": nullable("string"), "campaign_id": nullable("string"),
                "idempotency_key": nullable("string"), "sender_email": nullable("string"),
                "recipient_email": nullable("string"), "subject": nullable("string"),
                "status": { "type": "string", "enum": ["queued", "pending_approval", "sent", "blocked", "failed"] },
                "decision_reason": nullable("string"),
                "policy_reasons": { "type": "array", "items": { "type": "string" } },
                "sent_at": nullable("string"), "created_at": nullable("string"), "message_id": nullable("string"),
                "follow_up_step": nullable("integer")
            }
        },
        "FollowUp": {
            "type": "object", "required": ["schedule_id", "attempt_id", "scheduled_for", "sent"],
            "properties": {
                "schedule_id": { "type": "string" }, "attempt_id": nullable("string"), "lead_id": nullable("string"),
                "campaign_id": { "type": "string" }, "subject": nullable("string"), "scheduled_for": nullable("string"),
                "sent": { "type": "boolean" }, "status": { "type": "string" }, "step": nullable("integer")
            }
        },
        "Poll": {
            "type": "object", "required": ["replies_found", "failed"],
            "properties": { "replies_found": { "type": "integer" }, "failed": { "type": "integer" }, "mailboxes": { "type": "array" } }
        },
        "Reply": {
            "type": "object", "required": ["reply_id", "classification", "received_at"],
            "properties": {
                "reply_id": { "type": "string" }, "id": { "type": "string" }, "attempt_id": nullable("string"),
                "lead_id": nullable("string"), "campaign_id": { "type": "string" }, "from_email": nullable("string"),
                "subject": nullable("string"), "received_at": nullable("string"),
                "classification": { "type": "string", "enum": ["interested", "not_interested", "out_of_office", "replied"] },
                "linkcrm_class": nullable("string"), "body": nullable("string"), "inbound_message_id": nullable("string")
            }
        },
        "Analytics": {
            "type": "object",
            "required": ["campaign_id", "leads_by_status", "replies_by_classification", "rates", "daily_send_volume"],
            "properties": {
                "campaign_id": { "type": "string" }, "days": { "type": "integer" }, "total_leads": { "type": "integer" },
                "leads_by_status": { "type": "object", "additionalProperties": { "type": "integer" } },
                "total_attempts": { "type": "integer" }, "total_sends": { "type": "integer" },
                "total_replies": { "type": "integer" },
                "replies_by_classification": { "type": "object", "additionalProperties": { "type": "integer" } },
                "rates": { "type": "object", "additionalProperties": true },
                "response_rate": { "type": "number" }, "placement_rate": { "type": "number" },
                "daily_send_volume": { "type": "array", "items": { "type": "object", "properties": {
                    "date": { "type": "string" }, "count": { "type": "integer" } } } }
            }
        },
        "Snapshot": {
            "type": "object",
            "required": ["total_campaigns", "total_sends", "total_replies", "total_placements", "overall_response_rate", "overall_placement_rate"],
            "properties": {
                "total_campaigns": { "type": "integer" }, "total_sends": { "type": "integer" },
                "total_replies": { "type": "integer" }, "total_placements": { "type": "integer" },
                "overall_response_rate": { "type": "number" }, "overall_placement_rate": { "type": "number" },
                "send_volume": { "type": "integer" }, "response_rate": { "type": "number" },
                "placement_conversion": { "type": "number" }, "generated_at": { "type": "string" }
            }
        },
        "Discovery": {
            "type": "object", "required": ["results", "saved_to_campaign", "save_failed"],
            "properties": {
                "keyword": { "type": "string" }, "source": { "type": "string" }, "total_found": { "type": "integer" },
                "results": { "type": "array", "items": { "type": "object", "properties": {
                    "url": { "type": "string" }, "domain": { "type": "string" }, "title": nullable("string"),
                    "page_title": nullable("string"), "snippet": nullable("string"), "rank": { "type": "integer" },
                    "quality_score": { "type": "number" }, "relevance_score": { "type": "number" },
                    "guest_post_likelihood": { "type": "number" }, "confidence_score": { "type": "number" },
                    "domain_rating": nullable("number"), "organic_traffic": nullable("number"),
                    "signals": { "type": "array", "items": { "type": "string" } },
                    "has_guest_post_guidelines": { "type": "boolean" }, "discovery_source": { "type": "string" },
                    "account_id": nullable("string") } } },
                "saved_to_campaign": { "type": "integer" }, "save_failed": { "type": "integer" },
                "cached": { "type": "boolean" }, "credits_charged": { "type": "number" }
            }
        },
        "Detail": {
            "type": "object", "required": ["detail"],
            "properties": { "detail": { "type": "string" }, "reason": { "type": "string" }, "code": { "type": "string" } }
        },
        "ValidationError": {
            "type": "object", "required": ["detail"],
            "properties": { "detail": { "type": "array", "items": {
                "type": "object", "required": ["type", "loc", "msg"],
                "properties": { "type": { "type": "string" }, "loc": { "type": "array", "items": { "type": ["string", "integer"] } },
                                "msg": { "type": "string" }, "input": {}, "ctx": { "type": "object" } } } } }
        }
    })
}

fn shape_schema(shape: Shape) -> Option<Value> {
    let r = |n: &str| json!({ "$ref": format!("#/components/schemas/{n}") });
    let list = |n: &str| json!({ "type": "array", "maxItems": crate::MAX_LIST_ITEMS, "items": r(n) });
    Some(match shape {
        Shape::Campaign => r("Campaign"),
        Shape::CampaignWithLeads => r("CampaignWithLeads"),
        Shape::Campaigns => list("Campaign"),
        Shape::Lead => r("Lead"),
        Shape::BulkAdd => r("BulkAdd"),
        Shape::BulkStatus => r("BulkStatus"),
        Shape::Email => r("Email"),
        Shape::Suggestions => r("Suggestions"),
        Shape::Template => r("Template"),
        Shape::Templates => list("Template"),
        Shape::Suppression => r("Suppression"),
        Shape::Suppressions => list("Suppression"),
        Shape::Policy => r("Policy"),
        Shape::Attempt => r("Attempt"),
        Shape::Attempts => list("Attempt"),
        Shape::FollowUps => list("FollowUp"),
        Shape::Poll => r("Poll"),
        Shape::Replies => list("Reply"),
        Shape::Analytics => r("Analytics"),
        Shape::Snapshot => r("Snapshot"),
        Shape::Discovery => r("Discovery"),
        Shape::Empty | Shape::Csv => return None,
    })
}

fn operation(route: &Route) -> Value {
    let detail = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Detail" } } } });
    let mut params: Vec<Value> = Vec::new();
    for seg in route.path.split('/').filter(|s| s.starts_with('{')) {
        let name = seg.trim_matches(|c| c == '{' || c == '}');
        params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
    }
    for f in route.query {
        params.push(json!({ "name": f.name, "in": "query", "required": f.required, "schema": schema_of(f) }));
    }
    let mut responses = Map::new();
    let success = match (route.shape, shape_schema(route.shape)) {
        (Shape::Csv, _) => Some(json!({ "description": "CSV file (RFC 4180, header row)",
                                        "content": { "text/csv": { "schema": { "type": "string" } } } })),
        (_, Some(s)) => Some(json!({ "description": "Success", "content": { "application/json": { "schema": s } } })),
        (_, None) => Some(json!({ "description": "Done; no content" })),
    };
    if let Some(s) = success {
        responses.insert(route.status.to_string(), s);
    }
    responses.insert("401".into(), detail("Not authenticated"));
    responses.insert("403".into(), detail("Not allowed for this key, or blocked by policy (with `reason`)"));
    responses.insert("404".into(), detail("Resource not found"));
    responses.insert(
        "422".into(),
        json!({ "description": "Validation error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ValidationError" } } } }),
    );
    responses.insert("500".into(), detail("An internal error occurred"));
    let mut op = json!({
        "operationId": format!("{}_{}", route.method.to_lowercase(), route.path.replace(['/', '{', '}', '-'], "_").trim_matches('_')),
        "summary": route.summary,
        "description": format!("Calls {}.", route.operations.join(", ")),
        "tags": [route.tag],
        "parameters": params,
        "responses": responses,
        "security": [{ "bearer": [] }],
    });
    let body = match &route.body {
        BodySpec::None => None,
        BodySpec::Object(fields) => Some(object_schema(fields)),
        BodySpec::Array { fields, max } => {
            Some(json!({ "type": "array", "maxItems": max, "items": object_schema(fields) }))
        }
    };
    if let Some(b) = body {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": b } } });
    }
    op
}

fn object_schema(fields: &[crate::wire::Field]) -> Value {
    let props: Map<String, Value> = fields.iter().map(|f| (f.name.to_owned(), schema_of(f))).collect();
    let required: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    json!({ "type": "object", "properties": props, "required": required })
}

/// The document: the seed's prefix (the peer code's prefix serves the same routes).
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let path = format!("{}{}", PREFIXES[0], route.path);
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "linkcrm: Backlink Outreach API (seed 003 dialect)",
            "version": "1",
            "description": "The peer's Backlink Outreach API over linkcrm's operations. Every route is also served under /api/backlink-outreach. Lists given as arrays hold at most 1,000 items. See docs/dialects/backlink-outreach.md."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "A linkcrm API key." } }
        }
    })
}
