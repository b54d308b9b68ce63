//! Domain events written in the same transaction as the change they describe (the outbox).

use linkcrm_domain::IdKind;
use linkcrm_storage::{Condition, Item, TxOp};
use serde_json::{json, Value};

pub const OUTBOX_SHARDS: u64 = 8;

/// The outbox part of a transaction: `type` such as `workspace.created`, the workspace it
/// concerns, and the event's data.
pub fn event(r#type: &str, workspace_id: Option<&str>, data: Value) -> TxOp {
    let id = linkcrm_domain::new_id(IdKind::Event);
    let created_at = linkcrm_domain::time::now_string();
    let shard = id.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)) % OUTBOX_SHARDS;
    let item: Item = json!({
        "PK": format!("OUTBOX#{shard}"), "SK": id, "entity": "outbox", "kind": "event", "createdAt": created_at,
        "event": { "type": r#type, "id": id, "createdAt": created_at, "workspaceId": workspace_id, "data": data },
    })
    .as_object()
    .cloned()
    .expect("object");
    TxOp::put_if(item, Condition::NotExists)
}
