//! Stored records of the webhooks context and how the API shows them.

use crate::keys;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::items;
use linkcrm_storage::{Item, Key};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Endpoints per owner (a workspace or an agency).
pub const MAX_ENDPOINTS: usize = 100;
/// How long deliveries, attempts and dead letters are kept (at least the 14 days `recover` reaches).
pub const RETENTION_DAYS: i64 = 30;
/// Response bodies are kept up to this many bytes.
pub const BODY_LIMIT: usize = 4 * 1024;

/// A webhook endpoint as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: String,
    /// The workspace id, or the agency id for an agency-wide endpoint.
    pub owner: String,
    pub agency_id: String,
    /// `Some` for a workspace's endpoint.
    pub workspace_id: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Agency endpoints only: deliver only these workspaces' events (empty: all).
    #[serde(default)]
    pub workspace_ids: Vec<String>,
    /// Agency endpoints only: deliver only events of workspaces carrying one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// Sealed `whsec_` secret.
    pub secret: String,
    /// The secret before the last rotation, sealed; it signs too until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<String>,
    /// When the endpoint started failing every attempt (cleared by any success).
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl Endpoint {
    pub fn key(&self) -> Key {
        keys::endpoint(&self.owner, &self.id)
    }

    pub fn item(&self) -> Item {
        let mut item = items::obj(serde_json::to_value(self).expect("an endpoint serialises"));
        let key = self.key();
        item.insert("PK".into(), key.pk.into());
        item.insert("SK".into(), key.sk.into());
        item.insert("entity".into(), "webhook".into());
        item
    }

    pub fn from_item(item: &Item) -> ApiResult<Endpoint> {
        Ok(items::parse("webhook", item)?)
    }

    /// Whether an event of type `event_type` in workspace `ws` (with `tags`) goes to this endpoint.
    pub fn wants(&self, event_type: &str, ws: Option<&str>, tags: &[String]) -> bool {
        if !self.active || !self.events.iter().any(|p| linkcrm_domain::event_types::matches(p, event_type)) {
            return false;
        }
        if self.workspace_id.is_some() {
            return true;
        }
        let ws_ok = self.workspace_ids.is_empty() || ws.is_some_and(|w| self.workspace_ids.iter().any(|x| x == w));
        let tag_ok = self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t));
        ws_ok && tag_ok
    }

    pub fn view(&self) -> Webhook {
        Webhook {
            id: self.id.clone(),
            url: self.url.clone(),
            events: self.events.clone(),
            description: self.description.clone(),
            workspace_id: self.workspace_id.clone(),
            agency_id: self.workspace_id.is_none().then(|| self.agency_id.clone()),
            workspace_ids: self.workspace_id.is_none().then(|| self.workspace_ids.clone()),
            tags: self.workspace_id.is_none().then(|| self.tags.clone()),
            active: self.active,
            disabled_reason: self.disabled_reason.clone(),
            disabled_at: self.disabled_at.clone(),
            failing_since: self.failing_since.clone(),
            previous_secret_expires_at: self
                .previous_secret_expires_at
                .clone()
                .filter(|t| *t > linkcrm_domain::time::now_string()),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            version: self.version,
            secret: None,
        }
    }
}

/// A webhook endpoint as the API shows it. `secret` only in the answers to create and
/// rotate-secret.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `whk_…`
    pub id: String,
    pub url: String,
    /// Event types, prefixes (`link_building.*`) or `*`.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// The workspace whose events it receives; absent for an agency webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The agency whose workspaces' events it receives (agency webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency_id: Option<String>,
    /// Agency webhooks: only these workspaces (empty: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_ids: Option<Vec<String>>,
    /// Agency webhooks: only workspaces with one of these tags (empty: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// False when disabled by its owner, by a 410 answer, or after failing for 5 days.
    pub active: bool,
    /// `disabled_by_user`, `gone` (the receiver answered 410) or `failing`.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// Since when every attempt has failed (null after any success).
    pub failing_since: Option<String>,
    /// While a rotated-out secret still signs (24 h after rotate-secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
    /// `whsec_…`: shown once, when created and when rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// An attempt is queued or due.
    Pending,
    Succeeded,
    /// Every attempt failed: in the dead-letter list.
    Dead,
    /// The endpoint was deleted or disabled before it succeeded.
    Cancelled,
}

/// One event's delivery to one endpoint, as stored (`WHDLV#<whk>` / `<event id>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// `whmsg_…`
    pub id: String,
    pub endpoint_id: String,
    pub owner: String,
    pub event_id: String,
    pub event_type: String,
    pub workspace_id: Option<String>,
    /// The exact body every attempt sends (the envelope as JSON text).
    pub body: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// A manual resend (replay, recover): one attempt, never retried on its own.
    #[serde(default)]
    pub manual: bool,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub ttl: i64,
}

impl Delivery {
    pub fn key(&self) -> Key {
        keys::delivery(&self.endpoint_id, &self.event_id)
    }

    pub fn item(&self) -> Item {
        let mut item = items::obj(serde_json::to_value(self).expect("a delivery serialises"));
        let key = self.key();
        item.insert("PK".into(), key.pk.into());
        item.insert("SK".into(), key.sk.into());
        item.insert("entity".into(), "webhookDelivery".into());
        item
    }

    pub fn from_item(item: &Item) -> ApiResult<Delivery> {
        Ok(items::parse("webhook delivery", item)?)
    }
}

/// One attempt to deliver, as the API shows it (`GET /v1/webhooks/{id}/deliveries`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// `whatt_…`
    pub id: String,
    /// `whmsg_…`: the delivery (one event to this endpoint) the attempt belongs to.
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: u32,
    /// `scheduled`, `manual` (replay, recover) or `test`.
    pub trigger: String,
    /// `succeeded` or `failed`.
    pub status: String,
    pub url: String,
    pub response_status_code: Option<u16>,
    /// The response body, at most 4 KB.
    pub response_body: Option<String>,
    pub duration_ms: u64,
    /// Why it failed without an answer (timeout, connection refused, address not allowed).
    pub error: Option<String>,
    /// When the next attempt of this delivery is due; null when none will follow.
    pub next_attempt_at: Option<String>,
    pub attempted_at: String,
}

impl Attempt {
    pub fn item(&self, endpoint: &str, ttl: i64) -> Item {
        let mut item = items::obj(serde_json::to_value(self).expect("an attempt serialises"));
        let key = keys::attempt(endpoint, &self.id);
        item.insert("PK".into(), key.pk.into());
        item.insert("SK".into(), key.sk.into());
        item.insert("entity".into(), "webhookAttempt".into());
        item.insert("ttl".into(), ttl.into());
        item
    }

    pub fn from_item(item: &Item) -> ApiResult<Attempt> {
        Ok(items::parse("webhook attempt", item)?)
    }
}

/// A delivery that used every attempt (`GET /v1/webhooks/dead-letter`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// `whmsg_…`: replay it with `POST /v1/webhooks/dead-letter/{id}/replay`.
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub workspace_id: Option<String>,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub failed_at: String,
    /// The event as it was to be delivered.
    pub payload: Value,
    /// When it was last replayed (it leaves the list once a replay succeeds).
    pub replayed_at: Option<String>,
}

impl DeadLetter {
    pub fn item(&self, owner: &str, ttl: i64) -> Item {
        let mut item = items::obj(serde_json::to_value(self).expect("a dead letter serialises"));
        let key = keys::dead_letter(owner, &self.id);
        item.insert("PK".into(), key.pk.into());
        item.insert("SK".into(), key.sk.into());
        item.insert("entity".into(), "webhookDeadLetter".into());
        item.insert("ttl".into(), ttl.into());
        item
    }

    pub fn from_item(item: &Item) -> ApiResult<DeadLetter> {
        Ok(items::parse("webhook dead letter", item)?)
    }
}

/// Epoch seconds `RETENTION_DAYS` from now.
pub fn retention_ttl() -> i64 {
    chrono::Utc::now().timestamp() + RETENTION_DAYS * 86_400
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("webhook_not_found", "webhook", id)
}
