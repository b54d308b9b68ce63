//! The conformance suite of the `EventBus` port: what every adapter (the in-process bus, EventBridge)
//! must show, written once. Each adapter's test supplies the bus and a way to see what a subscriber
//! received (a watcher for the in-process bus; an SQS queue behind a rule for EventBridge). Test
//! builds only (the `conformance` feature).

use crate::{BusError, DomainEvent, EventBus};
use async_trait::async_trait;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a subscriber of the bus received.
#[async_trait]
pub trait Received: Send + Sync {
    /// Waits until at least `n` events arrived since the last call (or `wait` passed), then returns
    /// every event that arrived, in arrival order.
    async fn take(&self, n: usize, wait: Duration) -> Vec<DomainEvent>;
}

fn events(n: usize, ws: &str) -> Vec<DomainEvent> {
    (0..n).map(|i| DomainEvent::new("link_building.link.placed", Some(ws.into()), json!({ "i": i }))).collect()
}

fn by_id(events: &[DomainEvent]) -> BTreeMap<String, DomainEvent> {
    events.iter().map(|e| (e.id.clone(), e.clone())).collect()
}

/// Each published event reaches subscribers once, whole: id, type, workspace, data, time.
pub async fn publishes_each_event_whole(bus: &dyn EventBus, seen: &dyn Received) {
    let sent = events(3, "ws_conformance_a");
    bus.publish(&sent).await.expect("publish");
    let got = seen.take(3, Duration::from_secs(10)).await;
    assert_eq!(by_id(&got), by_id(&sent));
    assert_eq!(got.len(), 3, "each once");
}

/// More events than one request carries (EventBridge takes ten per PutEvents) all arrive.
pub async fn large_batches_arrive_whole(bus: &dyn EventBus, seen: &dyn Received) {
    let sent = events(23, "ws_conformance_b");
    bus.publish(&sent).await.expect("publish");
    let got = seen.take(23, Duration::from_secs(15)).await;
    assert_eq!(by_id(&got), by_id(&sent));
}

/// Nothing to publish is not an error, and sends nothing.
pub async fn an_empty_publish_is_a_no_op(bus: &dyn EventBus, seen: &dyn Received) {
    bus.publish(&[]).await.expect("empty publish");
    assert!(seen.take(1, Duration::from_millis(500)).await.is_empty());
}

/// At least once: publishing an event again (a relay retry) delivers it again with the same id,
/// for consumers to dedupe.
pub async fn a_republished_event_keeps_its_id(bus: &dyn EventBus, seen: &dyn Received) {
    let sent = events(1, "ws_conformance_c");
    bus.publish(&sent).await.expect("publish");
    bus.publish(&sent).await.expect("publish again");
    let got = seen.take(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|e| *e == sent[0]));
}

/// A bus that cannot be reached fails the publish as retryable, so the relay keeps the outbox item.
pub async fn an_unreachable_bus_is_unavailable(broken: &dyn EventBus) {
    let err = broken.publish(&events(1, "ws_conformance_d")).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err}");
}
