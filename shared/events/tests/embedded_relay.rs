//! The relay on the embedded (redb) store: committed events reach the bus once and the outbox
//! empties; the local relay task wakes on commits.
mod common;

use async_trait::async_trait;
use common::{commit_events, outbox_len};
use linkcrm_events::{BusError, DomainEvent, EventHandler, InProcessBus, Relay};
use linkcrm_storage::embedded::EmbeddedStore;
use linkcrm_storage::{Key, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Counter(Mutex<HashMap<String, usize>>);

#[async_trait]
impl EventHandler for Counter {
    async fn handle(&self, event: &DomainEvent) -> Result<(), BusError> {
        *self.0.lock().unwrap().entry(event.id.clone()).or_default() += 1;
        Ok(())
    }
}

fn store() -> (tempfile::TempDir, Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap());
    (dir, store)
}

#[tokio::test]
async fn drain_publishes_every_committed_event_once_and_empties_the_outbox() {
    let (_dir, store) = store();
    let bus = Arc::new(InProcessBus::new());
    let counter = Arc::new(Counter::default());
    bus.register(counter.clone());
    let events = commit_events(store.as_ref(), 250).await;
    assert_eq!(outbox_len(store.as_ref()).await, 250);

    // A small page makes every shard take several pages.
    let relay = Relay::new(store.clone(), bus).with_page_size(10);
    assert_eq!(relay.drain_once().await.unwrap(), 250);

    let seen = counter.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 250);
    for e in &events {
        assert_eq!(seen.get(&e.id), Some(&1), "{} published {:?} times", e.id, seen.get(&e.id));
    }
    assert_eq!(outbox_len(store.as_ref()).await, 0);
    // Acknowledging removed only the outbox items, not the state they were committed with.
    let state = store.get(&Key::new(format!("THING#{}", events[0].id), "#META")).await.unwrap();
    assert!(state.is_some());
    assert_eq!(relay.drain_once().await.unwrap(), 0);
}

#[tokio::test]
async fn the_relay_task_publishes_on_commit_without_waiting_for_the_poll() {
    let (_dir, store) = store();
    let bus = Arc::new(InProcessBus::new());
    let mut watcher = bus.subscribe();
    // An hour between polls: only the store's commit signal can explain a prompt publish.
    let relay = Relay::new(store.clone(), bus).with_poll_interval(Duration::from_secs(3600));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(relay.run(store.commit_notify(), stopped));

    for round in 0..3 {
        let events = commit_events(store.as_ref(), 4).await;
        for _ in 0..4 {
            let got = tokio::time::timeout(Duration::from_secs(5), watcher.recv())
                .await
                .unwrap_or_else(|_| panic!("round {round}: commit did not wake the relay"))
                .unwrap();
            assert!(events.contains(&got));
        }
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    assert_eq!(outbox_len(store.as_ref()).await, 0);
}
