//! The outbox: events written in the same transaction as the state change they record.
//!
//! Item layout (primary index only, no TTL: an item lives until the relay acknowledges it):
//! `PK = OUTBOX#<shard>`, `SK = <event id>`, `entity = "outbox"`, `kind = "event"`,
//! `event = <envelope map>`, `createdAt`. Event ids are time-sortable, so a forward query of one
//! shard reads oldest first. Sharding spreads writes over [`OUTBOX_SHARDS`] partitions so a busy
//! platform does not funnel every transaction into one hot partition.

use crate::DomainEvent;
use linkcrm_storage::{Condition, Item, Key, TxOp, PK, SK};
use serde_json::Value;

pub const OUTBOX_SHARDS: u32 = 8;
pub const OUTBOX_PREFIX: &str = "OUTBOX#";
pub const ENTITY_OUTBOX: &str = "outbox";
pub const KIND_EVENT: &str = "event";

/// The shard of an event id. FNV-1a rather than std's hasher, whose output is not promised to stay
/// the same across Rust releases: a writer and a relay built apart must agree.
pub fn shard_of(event_id: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in event_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(OUTBOX_SHARDS)) as u32
}

pub fn shard_pk(shard: u32) -> String {
    format!("{OUTBOX_PREFIX}{shard}")
}

/// Every outbox partition, in shard order.
pub fn outbox_partitions() -> impl Iterator<Item = String> {
    (0..OUTBOX_SHARDS).map(shard_pk)
}

pub fn outbox_key(event_id: &str) -> Key {
    Key::new(shard_pk(shard_of(event_id)), event_id)
}

pub fn outbox_item(event: &DomainEvent) -> Item {
    let key = outbox_key(&event.id);
    let mut item = Item::new();
    item.insert(PK.into(), Value::String(key.pk));
    item.insert(SK.into(), Value::String(key.sk));
    item.insert("entity".into(), ENTITY_OUTBOX.into());
    item.insert("kind".into(), KIND_EVENT.into());
    item.insert("event".into(), Value::Object(event.to_map()));
    item.insert("createdAt".into(), event.created_at.clone().into());
    item
}

/// The transaction part that records `event` in the outbox. Add it to the transaction that makes
/// the state change. `NotExists` makes a reused event id fail the transaction instead of silently
/// replacing an unpublished event.
pub fn outbox_put(event: &DomainEvent) -> TxOp {
    TxOp::put_if(outbox_item(event), Condition::NotExists)
}

/// Why an item could not be read as an outbox event.
#[derive(Debug, thiserror::Error)]
pub enum OutboxItemError {
    #[error("not an outbox event item")]
    NotAnEvent,
    #[error("malformed outbox event: {0}")]
    Malformed(String),
}

/// Whether an item is an outbox event (as opposed to other outbox kinds or other entities).
pub fn is_outbox_event(item: &Item) -> bool {
    item.get("entity").and_then(Value::as_str) == Some(ENTITY_OUTBOX)
        && item.get("kind").and_then(Value::as_str) == Some(KIND_EVENT)
}

/// Reads the envelope back out of an outbox item, checking that the item's sort key is the
/// envelope's id, so acknowledging deletes exactly the item that was published. The shard is not
/// recomputed: the relay acknowledges the key it read, whichever shard a writer chose.
pub fn event_of(item: &Item) -> Result<DomainEvent, OutboxItemError> {
    if !is_outbox_event(item) {
        return Err(OutboxItemError::NotAnEvent);
    }
    let raw = item.get("event").cloned().ok_or_else(|| OutboxItemError::Malformed("no event attribute".into()))?;
    let event = DomainEvent::from_value(raw).map_err(|e| OutboxItemError::Malformed(e.to_string()))?;
    let key = Key::of(item).ok_or_else(|| OutboxItemError::Malformed("no key".into()))?;
    if !key.pk.starts_with(OUTBOX_PREFIX) || key.sk != event.id {
        return Err(OutboxItemError::Malformed(format!("key {key:?} does not match event {}", event.id)));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned values (computed independently with FNV-1a 64): writers and relays deployed from
        // different builds must keep agreeing on where an event lives.
        assert_eq!(shard_of("evt_01JD3M0X2Z6Q8R4T5V7W9Y0A1B"), 2);
        assert_eq!(shard_of("evt_01JD3M0X2Z6Q8R4T5V7W9Y0A1C"), 5);
        assert_eq!(shard_of("evt_01JD3M0X2Z6Q8R4T5V7W9Y0A1D"), 0);
        let mut counts = [0usize; OUTBOX_SHARDS as usize];
        for _ in 0..800 {
            let id = linkcrm_domain::new_id(linkcrm_domain::IdKind::Event);
            assert_eq!(shard_of(&id), shard_of(&id));
            counts[shard_of(&id) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50), "uneven spread {counts:?}");
    }

    #[test]
    fn outbox_item_round_trips() {
        let e = DomainEvent::new("workspace.created", Some("ws_1".into()), json!({"n": 1}));
        let TxOp::Put { item, cond } = outbox_put(&e) else { panic!("a put") };
        assert_eq!(cond, Some(Condition::NotExists));
        assert_eq!(item["PK"], json!(shard_pk(shard_of(&e.id))));
        assert_eq!(item["SK"], json!(e.id));
        assert_eq!(item["entity"], "outbox");
        assert_eq!(item["kind"], "event");
        assert!(!item.contains_key("ttl"));
        assert_eq!(event_of(&item).unwrap(), e);

        let mut moved = item.clone();
        moved.insert("SK".into(), json!("evt_other"));
        assert!(matches!(event_of(&moved), Err(OutboxItemError::Malformed(_))));
        let mut job = item;
        job.insert("kind".into(), json!("job"));
        assert!(matches!(event_of(&job), Err(OutboxItemError::NotAnEvent)));
    }
}
