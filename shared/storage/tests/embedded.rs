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
