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

/// Waits until the writer thread of a dropped store has let go of the file.
async fn released(path: &std::path::Path) {
    for _ in 0..100 {
        match redb::Database::open(path) {
            Ok(db) => {
                drop(db);
                return;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    panic!("the store file stays open");
}

/// A store written before the binary encoding (items as JSON text) keeps reading, and
/// `compact` rewrites its items, removes expired ones with their index entries, and leaves a file
/// no larger than before that reads back the same.
#[tokio::test]
async fn compaction_reencodes_old_items_and_drops_expired_ones() {
    use linkcrm_storage::{Index, Query};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let items: Vec<serde_json::Map<String, serde_json::Value>> = (0..300)
        .map(|i| {
            linkcrm_storage::conformance::item(
                "P",
                &format!("S{i:04}"),
                json!({"n": i, "note": "x".repeat(200), "GSI1PK": "G", "GSI1SK": format!("{i:04}")}),
            )
        })
        .collect();
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let gone = linkcrm_storage::conformance::item("P", "expired", json!({"ttl": 1, "GSI1PK": "G", "GSI1SK": "z"}));
        store.put(gone, None).await.unwrap();
    }
    released(&path).await;
    {
        // Items as the JSON-text version of the store wrote them (key: PK, NUL, SK).
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(redb::TableDefinition::<&[u8], &[u8]>::new("items")).unwrap();
            let mut g = tx.open_table(redb::TableDefinition::<&[u8], &[u8]>::new("GSI1")).unwrap();
            for item in &items {
                let sk = item["SK"].as_str().unwrap();
                let key = [b"P".as_slice(), &[0], sk.as_bytes()].concat();
                t.insert(key.as_slice(), serde_json::to_vec(item).unwrap().as_slice()).unwrap();
                let isk = item["GSI1SK"].as_str().unwrap();
                let ikey = [b"G".as_slice(), &[0], isk.as_bytes(), &[0], key.as_slice()].concat();
                g.insert(ikey.as_slice(), [].as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let got = store.get(&Key::new("P", "S0007")).await.unwrap().unwrap();
        assert_eq!(got, items[7], "an item in JSON text reads as before");
    }
    released(&path).await;
    let report = linkcrm_storage::embedded::compact(&path).unwrap();
    assert_eq!((report.items_reencoded, report.expired_removed), (300, 1), "{report:?}");
    assert!(report.bytes_after <= report.bytes_before, "{report:?}");

    let store = EmbeddedStore::open(&path).unwrap();
    let page = store.query(Query::index(Index::Gsi1, "G").limit(1000)).await.unwrap();
    assert_eq!(page.items, items, "every item reads back the same, through its index too");
    assert!(store.get(&Key::new("P", "expired")).await.unwrap().is_none());
}

/// Churn leaves a file mostly empty; the policy sees it, and compaction gives the space back
/// with every surviving item (and its index entries) intact.
#[tokio::test]
async fn a_churned_file_is_seen_as_wasteful_and_compaction_gives_the_space_back() {
    use linkcrm_storage::embedded::{compact, should_compact, usage};
    use linkcrm_storage::{Index, Query, TxOp};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let item = |i: usize| {
        linkcrm_storage::conformance::item(
            "C",
            &format!("{i:05}"),
            json!({"body": "y".repeat(1500), "GSI2PK": "CI", "GSI2SK": format!("{i:05}")}),
        )
    };
    {
        let store = EmbeddedStore::open(&path).unwrap();
        for chunk in (0..4000).collect::<Vec<_>>().chunks(100) {
            store.transact(chunk.iter().map(|i| TxOp::put(item(*i))).collect()).await.unwrap();
        }
        // Most of it goes again, as outbox items, jobs and expired records do.
        let gone: Vec<Key> = (0..4000).filter(|i| i % 10 != 0).map(|i| Key::new("C", format!("{i:05}"))).collect();
        store.delete_many(&gone).await.unwrap();
    }
    released(&path).await;
    let before = usage(&path).unwrap();
    assert!(before.waste() > 0.5, "{before:?}");
    assert!(should_compact(&before, 0, 0.5));
    assert!(!should_compact(&before, before.file_bytes + 1, 0.5), "small files are left alone");

    let report = compact(&path).unwrap();
    let after = usage(&path).unwrap();
    assert!(after.file_bytes * 2 < before.file_bytes, "{report:?} {after:?}");
    // (A file this small keeps a fixed overhead of headers and allocator state.)
    assert!(after.waste() < before.waste(), "{before:?} {after:?}");
    let store = EmbeddedStore::open(&path).unwrap();
    let left = store.query(Query::index(Index::Gsi2, "CI").limit(1000)).await.unwrap();
    assert_eq!(left.items, (0..4000).filter(|i| i % 10 == 0).map(item).collect::<Vec<_>>());
}

/// A rebuild that cannot finish (here: its scratch file cannot be created) leaves the store in
/// place with everything in it (the purge of expired items before the rebuild may have
/// committed; nothing else changes).
#[tokio::test]
async fn a_compaction_that_fails_leaves_the_store_as_it_was() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.put(linkcrm_storage::conformance::item("K", "1", json!({"n": 1})), None).await.unwrap();
    }
    released(&path).await;
    std::fs::create_dir(path.with_extension("redb.compacting")).unwrap();
    assert!(linkcrm_storage::embedded::compact(&path).is_err());
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.get(&Key::new("K", "1")).await.unwrap().unwrap()["n"], 1);
}
