use super::*;
use crate::outbox::{outbox_item, outbox_key, outbox_put, shard_of, shard_pk};
use crate::test_support::{InMemoryTestStore, RecordingBus};
use linkcrm_storage::{Condition, Key, TxOp};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

fn setup() -> (Arc<InMemoryTestStore>, Arc<RecordingBus>, Relay) {
    let store = Arc::new(InMemoryTestStore::default());
    let bus = Arc::new(RecordingBus::default());
    let relay = Relay::new(store.clone(), bus.clone());
    (store, bus, relay)
}

/// Commits `n` state changes, each with its event, the way a caller does.
async fn commit_events(store: &dyn Store, n: usize) -> Vec<DomainEvent> {
    let mut events = Vec::new();
    for i in 0..n {
        let e = DomainEvent::new("test.happened", Some("ws_1".into()), json!({ "i": i }));
        let mut state = Item::new();
        state.insert("PK".into(), json!(format!("THING#{}", e.id)));
        state.insert("SK".into(), json!("#META"));
        store.transact(vec![TxOp::put_if(state, Condition::NotExists), outbox_put(&e)]).await.unwrap();
        events.push(e);
    }
    events
}

#[tokio::test]
async fn drain_publishes_each_event_once_oldest_first_per_shard_and_empties_the_outbox() {
    let (store, bus, relay) = setup();
    let relay = relay.with_page_size(3);
    let events = commit_events(store.as_ref(), 40).await;
    assert_eq!(store.len(), 80);

    assert_eq!(relay.drain_once().await.unwrap(), 40);
    let ids = bus.ids();
    assert_eq!(ids.len(), 40);
    assert_eq!(ids.iter().collect::<HashSet<_>>(), events.iter().map(|e| &e.id).collect::<HashSet<_>>());
    for shard in 0..crate::OUTBOX_SHARDS {
        let in_shard: Vec<&String> = ids.iter().filter(|id| shard_of(id) == shard).collect();
        assert!(in_shard.windows(2).all(|w| w[0] < w[1]), "shard {shard} out of order");
    }
    assert_eq!(store.len(), 40, "only the state items remain");
    assert_eq!(relay.drain_once().await.unwrap(), 0);
    assert_eq!(bus.ids().len(), 40);
}

#[tokio::test]
async fn a_failed_publish_keeps_the_outbox_and_the_retry_delivers() {
    let (store, bus, relay) = setup();
    let events = commit_events(store.as_ref(), 5).await;
    // The bus is down for the whole drain (one failure per shard).
    bus.failures_left.store(crate::OUTBOX_SHARDS as usize, Ordering::SeqCst);
    assert!(matches!(relay.drain_once().await, Err(RelayError::Bus(_))));
    for e in &events {
        assert!(store.get(&outbox_key(&e.id)).await.unwrap().is_some(), "{} was dropped", e.id);
    }
    bus.failures_left.store(0, Ordering::SeqCst);
    assert_eq!(relay.drain_once().await.unwrap(), 5);
    assert_eq!(store.len(), 5);
}

#[tokio::test]
async fn malformed_and_foreign_items_are_left_alone_and_do_not_block_the_shard() {
    let (store, bus, relay) = setup();
    let good = DomainEvent::new("t", None, json!(1));
    // A malformed item sorting before the good one in the same shard.
    let mut bad = outbox_item(&good);
    bad.insert("SK".into(), json!("evt_0"));
    bad.insert("PK".into(), json!(shard_pk(shard_of(&good.id))));
    let mut job = outbox_item(&DomainEvent::new("t", None, json!(2)));
    job.insert("kind".into(), json!("job"));
    for item in [bad.clone(), job.clone(), outbox_item(&good)] {
        store.put(item, None).await.unwrap();
    }
    assert_eq!(relay.drain_once().await.unwrap(), 1);
    assert_eq!(bus.ids(), vec![good.id.clone()]);
    assert!(store.get(&Key::of(&bad).unwrap()).await.unwrap().is_some());
    assert!(store.get(&Key::of(&job).unwrap()).await.unwrap().is_some());
}

#[tokio::test]
async fn publish_only_republishes_the_same_events_until_acknowledged() {
    let (store, bus, relay) = setup();
    commit_events(store.as_ref(), 6).await;
    assert_eq!(relay.publish_only().await.unwrap(), 6);
    let first = bus.published.lock().unwrap().clone();
    assert_eq!(relay.drain_once().await.unwrap(), 6);
    let all = bus.published.lock().unwrap().clone();
    let mut again = all[6..].to_vec();
    let mut first_sorted = first.clone();
    again.sort_by(|a, b| a.id.cmp(&b.id));
    first_sorted.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(again, first_sorted, "the second publish carries identical envelopes");
}

#[tokio::test]
async fn stream_items_publish_only_outbox_events_and_acknowledge_them() {
    let (store, bus, relay) = setup();
    let events = commit_events(store.as_ref(), 3).await;
    let mut items: Vec<Item> = events.iter().map(outbox_item).collect();
    let mut other = Item::new();
    other.insert("PK".into(), json!("THING#x"));
    other.insert("SK".into(), json!("#META"));
    items.insert(1, other);
    relay.handle_stream_items(items).await.unwrap();
    assert_eq!(bus.ids(), events.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn run_drains_on_wake_and_stops_on_shutdown() {
    let (store, bus, relay) = setup();
    // A long poll interval: only the wake-up can explain a prompt publish.
    let relay = relay.with_poll_interval(Duration::from_secs(3600));
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(relay.run(wake.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(50)).await;
    commit_events(store.as_ref(), 2).await;
    // notify_waiters, as the embedded store signals commits: it keeps no permit, so this only
    // works because the relay registered its interest before it drained.
    wake.notify_waiters();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while bus.ids().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the wake-up did not drain");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("run stops on shutdown").unwrap();
}

#[tokio::test]
async fn run_backs_off_after_errors_and_recovers() {
    let (store, bus, relay) = setup();
    let relay = relay.with_poll_interval(Duration::from_millis(10));
    commit_events(store.as_ref(), 1).await;
    bus.failures_left.store(3, Ordering::SeqCst);
    let (stop, stopped) = watch::channel(false);
    let started = tokio::time::Instant::now();
    let task = tokio::spawn(relay.run(Arc::new(Notify::new()), stopped));
    while bus.ids().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "never recovered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Three failures back off 20 + 40 + 80 ms before the fourth attempt succeeds.
    assert!(started.elapsed() >= Duration::from_millis(140), "retried without backing off");
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("run stops when the sender is dropped").unwrap();
}

#[tokio::test]
async fn deduper_lets_each_id_through_once_per_consumer() {
    let store: Arc<InMemoryTestStore> = Arc::new(InMemoryTestStore::default());
    let a = crate::Deduper::new(store.clone(), "webhooks");
    let b = crate::Deduper::new(store.clone(), "search-index");
    assert!(a.first_time("evt_1").await.unwrap());
    assert!(!a.first_time("evt_1").await.unwrap());
    assert!(a.first_time("evt_2").await.unwrap());
    assert!(b.first_time("evt_1").await.unwrap());
    let marker = store.get(&a.key("evt_1")).await.unwrap().unwrap();
    let ttl = marker["ttl"].as_i64().unwrap();
    let week = crate::dedupe::SEEN_TTL_SECS;
    assert!((ttl - linkcrm_storage::now_epoch() - week).abs() < 5);
    // As a transaction part it refuses a second effect.
    let err = store.transact(vec![a.mark_op("evt_2")]).await.unwrap_err();
    assert!(err.is_condition_failed());
}

/// Holds the first publish until released, so a test can commit while a drain is in progress.
struct GateBus {
    inner: RecordingBus,
    entered: Notify,
    release: Notify,
    held: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EventBus for GateBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        if !self.held.swap(true, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.publish(events).await
    }
}

#[tokio::test]
async fn a_commit_signalled_during_a_drain_is_not_missed() {
    let store = Arc::new(InMemoryTestStore::default());
    let bus = Arc::new(GateBus {
        inner: RecordingBus::default(),
        entered: Notify::new(),
        release: Notify::new(),
        held: false.into(),
    });
    let relay = Relay::new(store.clone(), bus.clone()).with_poll_interval(Duration::from_secs(3600));
    let wake = Arc::new(Notify::new());
    let (_stop, stopped) = watch::channel(false);
    // The first event in the last shard, the late one in the first: the drain in progress has
    // passed the late one's shard, so only the wake-up can get it published.
    store.transact(vec![outbox_put(&event_in_shard(crate::OUTBOX_SHARDS - 1))]).await.unwrap();
    let task = tokio::spawn(relay.run(wake.clone(), stopped));
    bus.entered.notified().await;
    // The relay is inside a drain: commit more and signal as the embedded store does.
    let late = event_in_shard(0);
    store.transact(vec![outbox_put(&late)]).await.unwrap();
    wake.notify_waiters();
    bus.release.notify_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !bus.inner.ids().contains(&late.id) {
        assert!(tokio::time::Instant::now() < deadline, "the signal sent during the drain was lost");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
}

fn event_in_shard(shard: u32) -> DomainEvent {
    loop {
        let e = DomainEvent::new("t", None, json!({}));
        if shard_of(&e.id) == shard {
            return e;
        }
    }
}

#[tokio::test]
async fn a_refused_event_holds_back_its_shard_only() {
    let (store, bus, relay) = setup();
    let relay = relay.with_page_size(1);
    let poison = event_in_shard(0);
    let (behind, elsewhere) = (event_in_shard(0), event_in_shard(5));
    for e in [&poison, &behind, &elsewhere] {
        store.transact(vec![outbox_put(e)]).await.unwrap();
    }
    *bus.poison.lock().unwrap() = Some(poison.id.clone());
    assert!(matches!(relay.drain_once().await, Err(RelayError::Bus(BusError::Refused { .. }))));
    // The later event of the same shard waits (order within a shard holds); the other shard went.
    assert_eq!(bus.ids(), vec![elsewhere.id.clone()]);
    assert!(store.get(&outbox_key(&behind.id)).await.unwrap().is_some());
    *bus.poison.lock().unwrap() = None;
    assert_eq!(relay.drain_once().await.unwrap(), 2);
    assert_eq!(bus.ids(), vec![elsewhere.id, poison.id, behind.id]);
}

#[tokio::test]
async fn an_event_in_another_shard_than_ours_is_published_and_acknowledged_where_it_is() {
    let (store, bus, relay) = setup();
    // As a writer with another shard function would have put it.
    let e = DomainEvent::new("t", None, json!({}));
    let mut item = outbox_item(&e);
    let foreign = shard_pk((shard_of(&e.id) + 1) % crate::OUTBOX_SHARDS);
    item.insert("PK".into(), json!(foreign));
    store.put(item, None).await.unwrap();
    assert_eq!(relay.drain_once().await.unwrap(), 1);
    assert_eq!(bus.ids(), vec![e.id.clone()]);
    assert_eq!(store.len(), 0, "acknowledged at the key it was read from");
}
