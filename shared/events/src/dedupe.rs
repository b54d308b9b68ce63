//! Consumer-side deduplication. Publishing is at-least-once, so a consumer sees an event id more
//! than once; it records the ids it has handled and skips repeats.

use linkcrm_storage::{now_epoch, Condition, Item, Key, Store, StoreError, TxOp, PK, SK, TTL};
use serde_json::Value;
use std::sync::Arc;

/// How long a seen-marker lives. Redeliveries come within minutes; a week leaves room for a relay
/// that was down for days.
pub const SEEN_TTL_SECS: i64 = 7 * 24 * 3600;

pub struct Deduper {
    store: Arc<dyn Store>,
    consumer: String,
}

impl Deduper {
    /// `consumer` names the consumer (e.g. `webhook-delivery`): each consumer dedupes separately.
    pub fn new(store: Arc<dyn Store>, consumer: impl Into<String>) -> Self {
        Deduper { store, consumer: consumer.into() }
    }

    pub fn key(&self, event_id: &str) -> Key {
        seen_key(&self.consumer, event_id)
    }

    /// True the first time this consumer asks about `event_id`, false afterwards (until the marker
    /// expires). The marker is written before the consumer acts, so a consumer that crashes after
    /// asking has lost that event; consumers whose effect is a store write should put
    /// [`Deduper::mark_op`] in the same transaction as the effect instead.
    pub async fn first_time(&self, event_id: &str) -> Result<bool, StoreError> {
        match self.store.put(seen_item(&self.consumer, event_id), Some(Condition::NotExists)).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The marker as a transaction part: the transaction fails with a condition failure if the
    /// event was already handled, so the effect and the marker commit together or not at all.
    pub fn mark_op(&self, event_id: &str) -> TxOp {
        TxOp::put_if(seen_item(&self.consumer, event_id), Condition::NotExists)
    }
}

pub fn seen_key(consumer: &str, event_id: &str) -> Key {
    Key::new(format!("SEEN#{consumer}#{event_id}"), "#")
}

fn seen_item(consumer: &str, event_id: &str) -> Item {
    let key = seen_key(consumer, event_id);
    let mut item = Item::new();
    item.insert(PK.into(), Value::String(key.pk));
    item.insert(SK.into(), Value::String(key.sk));
    item.insert("entity".into(), "seen".into());
    item.insert(TTL.into(), (now_epoch() + SEEN_TTL_SECS).into());
    item
}
