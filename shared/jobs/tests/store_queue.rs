//! The conformance suite on the store-kept queue over the embedded (redb) store, plus what only a
//! durable queue shows.

use linkcrm_jobs::conformance::StaleAck;
use linkcrm_jobs::{Job, JobQueue, StoreQueue};
use linkcrm_storage::embedded::EmbeddedStore;
use linkcrm_storage::{Query, Store};
use std::sync::Arc;
use std::time::Duration;

/// A store of its own per case (in a temp dir the OS cleans), so cases cannot see each other.
async fn fresh(max_receives: u32) -> Arc<dyn JobQueue> {
    let dir = tempfile::tempdir().unwrap().keep();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.join("store.redb")).unwrap());
    Arc::new(StoreQueue::new(store, "send", max_receives))
}

linkcrm_jobs::queue_conformance_suite!(fresh, StaleAck::Refused);

#[tokio::test]
async fn queues_sharing_a_store_keep_apart_and_use_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap());
    let send = StoreQueue::new(store.clone(), "send", 3);
    let discover = StoreQueue::new(store.clone(), "discover", 3);
    let job = Job::new("send", serde_json::json!({"n": 1}));
    send.enqueue(&job, Duration::ZERO).await.unwrap();
    assert!(discover.receive(10, Duration::from_secs(1), Duration::ZERO).await.unwrap().is_empty());

    let items = store.query(Query::partition("JOBQ#send")).await.unwrap().items;
    assert_eq!(items.len(), 1);
    let sk = items[0]["SK"].as_str().unwrap();
    assert!(sk.ends_with(&format!("Z#{}", job.id)), "SK is <visible-at RFC 3339>#<job id>: {sk}");
    assert_eq!(items[0]["receives"], 0);

    let got = send.receive(10, Duration::from_secs(30), Duration::ZERO).await.unwrap();
    let items = store.query(Query::partition("JOBQ#send")).await.unwrap().items;
    assert!(items[0]["SK"].as_str().unwrap() > sk, "a receive moves the job later in the partition");
    assert_eq!(items[0]["receives"], 1);
    send.ack(&got[0].receipt).await.unwrap();
    assert!(store.query(Query::partition("JOBQ#send")).await.unwrap().items.is_empty(), "ack deletes the item");
}

#[tokio::test]
async fn dead_letters_are_read_forward_from_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap());
    let q = StoreQueue::new(store, "send", 1);
    let jobs: Vec<Job> = (0..3).map(|n| Job::new("send", serde_json::json!({ "n": n }))).collect();
    for j in &jobs {
        q.enqueue(j, Duration::ZERO).await.unwrap();
    }
    // Each is received once (the limit) and never acked: the next receive dead-letters them.
    assert_eq!(q.receive(10, Duration::ZERO, Duration::ZERO).await.unwrap().len(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(q.receive(10, Duration::from_secs(30), Duration::ZERO).await.unwrap().is_empty());

    let first = q.dead_letters_after(None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = q.dead_letters_after(Some(&first[1].0), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    let mut seen: Vec<String> = first.iter().chain(&rest).map(|(_, j)| j.id.clone()).collect();
    seen.sort();
    let mut ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    ids.sort();
    assert_eq!(seen, ids, "each dead letter once, none skipped");
    assert!(q.dead_letters_after(Some(&rest[0].0), 2).await.unwrap().is_empty());
}
