//! The event envelope: what the outbox stores, the bus carries and webhook subscribers receive.
//!
//! Its JSON is the anchor's webhook envelope (`{ type, id, createdAt, workspaceId, data }`), so the
//! delivery worker can forward it as is.

use linkcrm_domain::{new_id, IdKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    /// Dotted type, e.g. `workspace.created`, `link_building.link.placed`.
    pub r#type: String,
    /// `evt_…`; consumers dedupe on it, since publishing is at-least-once.
    pub id: String,
    /// RFC 3339 UTC, when the event was created (inside the committing transaction).
    pub created_at: String,
    /// `None` for platform-level events that belong to no workspace. Serialized as `null` so every
    /// envelope has the same shape.
    pub workspace_id: Option<String>,
    pub data: Value,
}

impl DomainEvent {
    /// A new event with a fresh, time-sortable id, created now.
    pub fn new(r#type: impl Into<String>, workspace_id: Option<String>, data: Value) -> Self {
        DomainEvent {
            r#type: r#type.into(),
            id: new_id(IdKind::Event),
            created_at: linkcrm_domain::time::now_string(),
            workspace_id,
            data,
        }
    }

    /// The envelope as JSON text (what goes over the wire).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serializes")
    }

    /// The envelope as a JSON object (what the outbox item stores).
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        match serde_json::to_value(self).expect("an envelope always serializes") {
            Value::Object(m) => m,
            _ => unreachable!("a struct serializes to an object"),
        }
    }

    pub fn from_value(v: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_the_webhook_envelope() {
        let e = DomainEvent::new("workspace.created", Some("ws_1".into()), json!({"name": "Acme"}));
        assert!(linkcrm_domain::id::is_id(IdKind::Event, &e.id));
        assert!(chrono::DateTime::parse_from_rfc3339(&e.created_at).is_ok());
        assert!(e.created_at.ends_with('Z'));
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec!["type", "id", "createdAt", "workspaceId", "data"];
        expected.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(v["type"], "workspace.created");
        assert_eq!(v["workspaceId"], "ws_1");
        assert_eq!(DomainEvent::from_value(v).unwrap(), e);

        let platform = DomainEvent::new("agency.created", None, json!({}));
        assert_eq!(serde_json::to_value(&platform).unwrap()["workspaceId"], Value::Null);
    }

    #[test]
    fn fresh_events_have_distinct_increasing_ids() {
        let a = DomainEvent::new("t", None, Value::Null);
        let b = DomainEvent::new("t", None, Value::Null);
        assert!(a.id < b.id);
    }
}
