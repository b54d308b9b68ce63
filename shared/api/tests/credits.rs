//! The credit ledger's steps on a real store: reservations refuse what the pool cannot cover,
//! charges move only what was used, releases give everything back.

use linkcrm_api::credits::{self, Pool};
use linkcrm_storage::{DynStore, StoreError};
use std::sync::Arc;

async fn balance(store: &DynStore, pool: &Pool) -> (i64, i64, i64) {
    let item = store.get(&pool.key()).await.unwrap().unwrap();
    let n = |k: &str| item.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    (n("available"), n("reserved"), n("used"))
}

#[tokio::test]
async fn reserve_charge_release() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let pool = Pool::Workspace("ws_1".into());
    store.transact(credits::grant(&pool, "ws_1", 1000, Some("trial"))).await.unwrap();
    store.transact(credits::reserve(&pool, "ws_1", "link_building.crm.contact.discover", "inv_1", 800)).await.unwrap();
    assert_eq!(balance(&store, &pool).await, (200, 800, 0));
    // 0.4 more does not fit in the 0.2 left: the reservation (and anything with it) is refused.
    let r = store.transact(credits::reserve(&pool, "ws_1", "link_building.crm.contact.discover", "inv_2", 400)).await;
    assert!(matches!(r, Err(StoreError::ConditionFailed { op: Some(0) })), "{r:?}");
    let e = credits::insufficient(&store, &pool, "link_building.crm.contact.discover", 400).await;
    assert_eq!(e.status.as_u16(), 402);
    assert_eq!(e.details.as_ref().unwrap()["required"], 0.4);
    assert_eq!(e.details.as_ref().unwrap()["available"], 0.2);
    // Half the reserved work was done: only that is charged.
    store
        .transact(credits::charge(&pool, "ws_1", "link_building.crm.contact.discover", "inv_1", 800, 400))
        .await
        .unwrap();
    assert_eq!(balance(&store, &pool).await, (600, 0, 400));
    store.transact(credits::reserve(&pool, "ws_1", "link_building.campaign.send_email", "inv_3", 500)).await.unwrap();
    store.transact(credits::release(&pool, "ws_1", "link_building.campaign.send_email", "inv_3", 500)).await.unwrap();
    assert_eq!(balance(&store, &pool).await, (600, 0, 400), "released work costs nothing");
}
