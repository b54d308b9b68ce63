//! Domain events written in the same transaction as the change they describe (the outbox).

use linkcrm_events::{outbox_put, DomainEvent};
use linkcrm_storage::TxOp;
use serde_json::Value;

/// The outbox part of a transaction: `type` such as `workspace.created`, the workspace it
/// concerns, and the event's data. The item layout and sharding are `linkcrm_events::outbox`'s,
/// the ones the relay reads.
pub fn event(r#type: &str, workspace_id: Option<&str>, data: Value) -> TxOp {
    outbox_put(&DomainEvent::new(r#type, workspace_id.map(str::to_owned), data))
}
