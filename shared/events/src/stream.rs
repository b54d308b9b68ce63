//! DynamoDB Stream batches (the relay Lambda's input) turned into relay work, with
//! ReportBatchItemFailures answers.

use crate::outbox::ENTITY_OUTBOX;
use crate::Relay;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use linkcrm_storage::Item;

/// The outbox items a batch inserted, each with its record's sequence number, in stream order.
/// Other records (other entities, MODIFY, and the REMOVEs the relay's own acknowledgements cause)
/// are skipped. An outbox image that does not convert is logged and skipped: retrying cannot fix
/// it, and blocking the shard's stream on it would hold back every later event.
pub fn outbox_inserts(event: &Event) -> Vec<(Option<String>, Item)> {
    event
        .records
        .iter()
        .filter(|r| r.event_name == "INSERT" && is_outbox_image(r))
        .filter_map(|r| match serde_dynamo::from_item::<_, Item>(r.change.new_image.clone()) {
            Ok(item) => Some((r.change.sequence_number.clone(), item)),
            Err(e) => {
                tracing::error!(error = %e, event_id = %r.event_id, "skipping unreadable outbox image");
                None
            }
        })
        .collect()
}

fn is_outbox_image(r: &EventRecord) -> bool {
    matches!(r.change.new_image.get("entity"), Some(serde_dynamo::AttributeValue::S(s)) if s == ENTITY_OUTBOX)
}

/// Handles one stream batch. The batch publishes all-or-error, so on failure the answer names the
/// first outbox record: Lambda retries from there, and records before it (not outbox inserts)
/// need no redo.
pub async fn handle_stream_event(relay: &Relay, event: Event) -> DynamoDbEventResponse {
    let inserts = outbox_inserts(&event);
    let first_seq = inserts.first().and_then(|(seq, _)| seq.clone());
    let items = inserts.into_iter().map(|(_, item)| item).collect();
    let mut response = DynamoDbEventResponse::default();
    if let Err(e) = relay.handle_stream_items(items).await {
        tracing::warn!(error = %e, "relay batch failed; asking Lambda to retry it");
        let mut failure = DynamoDbBatchItemFailure::default();
        // Without a sequence number Lambda cannot checkpoint part of the batch; an empty
        // identifier makes it retry the whole batch, which is what we need.
        failure.item_identifier = Some(first_seq.unwrap_or_default());
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::outbox_item;
    use crate::test_support::{InMemoryTestStore, RecordingBus};
    use crate::DomainEvent;
    use linkcrm_storage::Store;
    use serde_json::json;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    fn record(name: &str, seq: &str, image: &Item) -> EventRecord {
        let mut r = EventRecord::default();
        r.event_name = name.into();
        r.event_id = format!("rec-{seq}");
        r.change.sequence_number = Some(seq.into());
        r.change.new_image = serde_dynamo::to_item(image).unwrap();
        r
    }

    #[tokio::test]
    async fn publishes_outbox_inserts_and_reports_the_first_on_failure() {
        let store = Arc::new(InMemoryTestStore::default());
        let bus = Arc::new(RecordingBus::default());
        let relay = Relay::new(store.clone(), bus.clone());
        let e1 = DomainEvent::new("a.b", Some("ws_1".into()), json!({"n": 1, "f": 1.5, "s": ["x"], "z": null}));
        let e2 = DomainEvent::new("a.c", None, json!({}));
        for e in [&e1, &e2] {
            store.put(outbox_item(e), None).await.unwrap();
        }
        let mut state = Item::new();
        state.insert("PK".into(), json!("WS#ws_1"));
        state.insert("SK".into(), json!("#META"));
        state.insert("entity".into(), json!("workspace"));
        let mut event = Event::default();
        event.records = vec![
            record("INSERT", "100", &state),
            record("INSERT", "101", &outbox_item(&e1)),
            record("REMOVE", "102", &outbox_item(&e1)),
            record("INSERT", "103", &outbox_item(&e2)),
        ];
        // The round trip through DynamoDB's attribute values keeps the envelope intact.
        let inserts = outbox_inserts(&event);
        assert_eq!(inserts.len(), 2);
        assert_eq!(crate::outbox::event_of(&inserts[0].1).unwrap(), e1);

        bus.failures_left.store(1, Ordering::SeqCst);
        let failed = handle_stream_event(&relay, event.clone()).await;
        let ids: Vec<_> = failed.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(ids, vec![Some("101".to_string())]);
        assert_eq!(store.len(), 2, "nothing acknowledged after a failed publish");

        let ok = handle_stream_event(&relay, event).await;
        assert!(ok.batch_item_failures.is_empty());
        assert_eq!(bus.ids(), vec![e1.id.clone(), e2.id.clone()]);
        assert_eq!(store.len(), 0);
    }
}
