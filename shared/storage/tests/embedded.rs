//! The conformance suite on the embedded (redb) adapter, plus what only a file-backed store shows.

use linkcrm_storage::embedded::EmbeddedStore;
use linkcrm_storage::{Key, Store};
use std::sync::Arc;

fn fresh() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(EmbeddedStore::open(dir.join("store.redb")).unwrap())
}

linkcrm_storage::conformance_suite!(fresh());

#[tokio::test]
async fn committed_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let item = linkcrm_storage::conformance::item("P", "S", serde_json::json!({"n": 1}));
        store.put(item, None).await.unwrap();
    }
    // The writer thread holds the database until its channel closes; give it a moment to exit.
    let mut reopened = None;
    for _ in 0..50 {
        match EmbeddedStore::open(&path) {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let store = reopened.expect("store reopens");
    assert_eq!(store.get(&Key::new("P", "S")).await.unwrap().unwrap()["n"], 1);
}

#[tokio::test]
async fn expired_items_are_purged_with_their_index_entries() {
    use linkcrm_storage::{Index, Query, Update};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("store.redb")).unwrap();
    let now = linkcrm_storage::now_epoch();
    let item = |sk: &str, ttl: i64| {
        linkcrm_storage::conformance::item("P", sk, serde_json::json!({"ttl": ttl, "GSI1PK": "IDX", "GSI1SK": sk}))
    };
    store.put(item("gone", now - 5), None).await.unwrap();
    store.put(item("live", now + 3600), None).await.unwrap();
    store.put(item("moved", now - 5), None).await.unwrap();
    // Given a new TTL later: the old expiry entry must not purge it.
    store.update(&Key::new("P", "moved"), Update::new().set("ttl", now + 3600), None).await.unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0, "nothing left to purge");
    let rest = store.query(Query::partition("P")).await.unwrap();
    let sks: Vec<&str> = rest.items.iter().map(|i| i["SK"].as_str().unwrap()).collect();
    assert_eq!(sks, vec!["live", "moved"]);
    let indexed = store.query(Query::index(Index::Gsi1, "IDX")).await.unwrap();
    // `moved` was expired when updated, so it was re-created bare (no index keys); `gone` left
    // the index with the item.
    let indexed: Vec<&str> = indexed.items.iter().map(|i| i["SK"].as_str().unwrap()).collect();
    assert_eq!(indexed, vec!["live"], "the purged item left its index too");
    // Overwriting an expired item resurrects nothing stale: the new item has no TTL.
    store.put(item("gone", now + 10), None).await.unwrap();
    store.put(linkcrm_storage::conformance::item("P", "gone", serde_json::json!({})), None).await.unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert!(store.get(&Key::new("P", "gone")).await.unwrap().is_some());
}
