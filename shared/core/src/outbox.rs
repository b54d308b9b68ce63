//! Domain events written in the same transaction as the change they describe (the outbox).

use linkcrm_events::{outbox_put, DomainEvent};
use linkcrm_storage::TxOp;
use serde_json::Value;

/// The outbox part of a transaction: `type` such as `workspace.created`, the workspace it
/// concerns, and the event's data. The item layout and sharding are `linkcrm_events::outbox`'s,
/// the ones the relay reads.
///
/// `type` must be in the event-type catalogue (`linkcrm_domain::event_types`, which says whether
/// webhooks may subscribe to it): an unlisted type fails debug builds (every test) at once, and is
/// logged as an error in release builds.
pub fn event(r#type: &str, workspace_id: Option<&str>, data: Value) -> TxOp {
    outbox_put(&domain_event(r#type, workspace_id, data))
}

/// The event itself, for a caller that needs its id (a delivery keyed by it).
pub fn domain_event(r#type: &str, workspace_id: Option<&str>, data: Value) -> DomainEvent {
    if linkcrm_domain::event_types::spec(r#type).is_none() {
        debug_assert!(false, "event type {type} is not in linkcrm_domain::event_types::CATALOGUE");
        tracing::error!(r#type, "an event type missing from the catalogue was written to the outbox");
    }
    DomainEvent::new(r#type, workspace_id.map(str::to_owned), data)
}
