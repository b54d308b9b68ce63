//! The in-process bus against a real HTTP sink.
mod common;

use async_trait::async_trait;
use common::CaptureSink;
use linkcrm_events::{BusError, DomainEvent, EventBus, EventHandler, InProcessBus};
use serde_json::json;
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn posts_each_envelope_with_its_id_and_fails_on_non_2xx() {
    let sink = CaptureSink::start().await;
    let bus = InProcessBus::with_sink(&sink.url);
    let mut watcher = bus.subscribe();
    let events: Vec<DomainEvent> =
        (0..3).map(|i| DomainEvent::new("link_building.link.placed", Some("ws_1".into()), json!({ "i": i }))).collect();

    bus.publish(&events).await.unwrap();
    let got = sink.deliveries();
    assert_eq!(got.len(), 3);
    for (d, e) in got.iter().zip(&events) {
        assert_eq!(d.id_header, e.id);
        assert_eq!(serde_json::from_str::<DomainEvent>(&d.body).unwrap(), *e);
        let raw: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(raw["type"], "link_building.link.placed");
        assert_eq!(raw["workspaceId"], "ws_1");
        assert!(raw["createdAt"].is_string());
    }
    for e in &events {
        assert_eq!(watcher.recv().await.unwrap(), *e);
    }

    sink.answer_with(503);
    assert!(matches!(bus.publish(&events[..1]).await, Err(BusError::Unavailable(_))));
    sink.answer_with(400);
    assert!(matches!(bus.publish(&events[..1]).await, Err(BusError::Refused { .. })));
    // A failed publish is not shown to watchers.
    assert!(watcher.try_recv().is_err());
    assert_eq!(sink.deliveries().len(), 3);

    // Nobody listening: a network error.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/events", listener.local_addr().unwrap());
    drop(listener);
    let err = InProcessBus::with_sink(dead).publish(&events).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err}");
}

struct Flaky {
    seen: Mutex<Vec<String>>,
    fail: Mutex<bool>,
}

#[async_trait]
impl EventHandler for Flaky {
    async fn handle(&self, event: &DomainEvent) -> Result<(), BusError> {
        if *self.fail.lock().unwrap() {
            return Err(BusError::Unavailable("handler down".into()));
        }
        self.seen.lock().unwrap().push(event.id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_handler_fails_the_publish() {
    let bus = InProcessBus::new();
    let handler = Arc::new(Flaky { seen: Mutex::new(vec![]), fail: Mutex::new(true) });
    bus.register(handler.clone());
    let e = DomainEvent::new("workspace.created", None, json!({}));
    assert!(bus.publish(std::slice::from_ref(&e)).await.is_err());
    *handler.fail.lock().unwrap() = false;
    bus.publish(std::slice::from_ref(&e)).await.unwrap();
    assert_eq!(*handler.seen.lock().unwrap(), vec![e.id]);
}
