//! Shared pieces of the integration tests: an HTTP capture sink and outbox helpers.
#![allow(dead_code)] // each test binary uses a different subset

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use linkcrm_events::outbox::outbox_partitions;
use linkcrm_events::{outbox_put, DomainEvent};
use linkcrm_storage::{Condition, Item, Query, Store, TxOp};
use serde_json::json;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// One POST the sink received: the `linkcrm-event-id` header and the raw body.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id_header: String,
    pub body: String,
}

#[derive(Default)]
struct SinkState {
    deliveries: Mutex<Vec<Delivery>>,
    status: AtomicU16,
}

/// An HTTP server on loopback that records every POST to `/events` and answers with a settable
/// status (200 unless told otherwise). It lives as long as the test's runtime.
pub struct CaptureSink {
    pub url: String,
    state: Arc<SinkState>,
}

impl CaptureSink {
    pub async fn start() -> Self {
        let state = Arc::new(SinkState { status: AtomicU16::new(200), ..Default::default() });
        let app = axum::Router::new().route("/events", post(record)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        CaptureSink { url, state }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().unwrap().clone()
    }

    pub fn answer_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }
}

async fn record(State(state): State<Arc<SinkState>>, headers: HeaderMap, body: String) -> StatusCode {
    let status = StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap();
    if status.is_success() {
        let id_header = headers.get("linkcrm-event-id").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        state.deliveries.lock().unwrap().push(Delivery { id_header, body });
    }
    status
}

/// Commits `n` state changes, each with its event in the same transaction, as callers do.
pub async fn commit_events(store: &dyn Store, n: usize) -> Vec<DomainEvent> {
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let event = DomainEvent::new("test.thing.created", Some("ws_test".into()), json!({ "i": i }));
        let mut state = Item::new();
        state.insert("PK".into(), json!(format!("THING#{}", event.id)));
        state.insert("SK".into(), json!("#META"));
        state.insert("entity".into(), json!("thing"));
        store.transact(vec![TxOp::put_if(state, Condition::NotExists), outbox_put(&event)]).await.unwrap();
        events.push(event);
    }
    events
}

/// How many items the outbox holds, over all shards.
pub async fn outbox_len(store: &dyn Store) -> usize {
    let mut n = 0;
    for pk in outbox_partitions() {
        let mut cursor = None;
        loop {
            let page = store.query(Query::partition(&pk).after(cursor)).await.unwrap();
            n += page.items.len();
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    n
}
