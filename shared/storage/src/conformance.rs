//! The conformance suite: the behaviour every `Store` adapter must show, written once.
//!
//! Each case takes a store and works in partitions of its own (a random prefix), so cases can share
//! one store. Adapters' test files instantiate every case with [`conformance_suite!`]:
//!
//! ```ignore
//! linkcrm_storage::conformance_suite!(my_store_factory().await);
//! ```

use crate::{Condition, Cursor, Index, Item, Key, Query, SortKey, Store, StoreError, TxOp, Update};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Generates one `#[tokio::test]` per case; `$factory` is an expression (may use `.await`)
/// evaluating to an `Arc<dyn Store>`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            reads_your_writes, conditional_writes, conditions_treat_expired_items_as_absent,
            update_actions, transaction_is_all_or_nothing, transaction_rejects_bad_requests,
            atomic_counters_under_concurrent_writers, optimistic_version_conflicts,
            sort_key_conditions, cursor_pagination_while_items_are_added, index_queries,
            query_filter_and_limit, ttl_hides_expired_items, item_size_limit, batch_get_many,
            update_of_expired_item_starts_afresh, paging_both_ways_on_table_and_index,
            transaction_with_max_and_expired_items, bad_keys_are_invalid, invalid_index_keys_are_refused,
            random_items_round_trip, projections_return_only_what_is_asked, delete_many_removes_every_key);
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: std::sync::Arc<dyn $crate::Store> = $factory;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

fn prefix() -> String {
    format!("t{}#", uuid_like())
}

fn uuid_like() -> String {
    linkcrm_domain::new_id(linkcrm_domain::IdKind::Request)
}

pub fn item(pk: &str, sk: &str, extra: Value) -> Item {
    let mut it = Item::new();
    it.insert("PK".into(), pk.into());
    it.insert("SK".into(), sk.into());
    if let Value::Object(m) = extra {
        it.extend(m);
    }
    it
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i["SK"].as_str().unwrap().to_owned()).collect()
}

/// Reads a whole partition page by page.
async fn read_all(store: &dyn Store, q: Query) -> Vec<Item> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(q.clone().after(cursor)).await.unwrap();
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

pub async fn reads_your_writes(store: Arc<dyn Store>) {
    let p = prefix();
    let pk = format!("{p}A");
    let it = item(&pk, "1", json!({"name": "Marina", "n": 42, "nested": {"list": [1, "two", true, null]}, "f": 1.5}));
    store.put(it.clone(), None).await.unwrap();
    assert_eq!(store.get(&Key::new(&pk, "1")).await.unwrap(), Some(it.clone()), "get returns what put wrote");
    let listed = store.query(Query::partition(&pk)).await.unwrap();
    assert_eq!(listed.items, vec![it.clone()], "query sees the write at once");
    let after = store.update(&Key::new(&pk, "1"), Update::new().set("name", "Mara"), None).await.unwrap();
    assert_eq!(after["name"], "Mara");
    assert_eq!(after["n"], 42, "update keeps other attributes");
    assert_eq!(store.get(&Key::new(&pk, "1")).await.unwrap().unwrap()["name"], "Mara");
    store.delete(&Key::new(&pk, "1"), None).await.unwrap();
    assert_eq!(store.get(&Key::new(&pk, "1")).await.unwrap(), None);
    // Deleting what is not there is not an error.
    store.delete(&Key::new(&pk, "1"), None).await.unwrap();
}

pub async fn conditional_writes(store: Arc<dyn Store>) {
    let pk = format!("{}C", prefix());
    let k = Key::new(&pk, "x");
    let fresh = item(&pk, "x", json!({"version": 1, "count": 5, "state": "open"}));
    store.put(fresh.clone(), Some(Condition::NotExists)).await.unwrap();
    let again = store.put(item(&pk, "x", json!({"version": 9})), Some(Condition::NotExists)).await;
    assert!(matches!(again, Err(StoreError::ConditionFailed { .. })), "second create is refused: {again:?}");
    assert_eq!(store.get(&k).await.unwrap(), Some(fresh.clone()), "a failed condition writes nothing");

    let missing = Key::new(&pk, "missing");
    let r = store.update(&missing, Update::new().set("a", 1), Some(Condition::Exists)).await;
    assert!(r.unwrap_err().is_condition_failed());
    assert_eq!(store.get(&missing).await.unwrap(), None, "a refused update does not create the item");
    assert!(store.delete(&missing, Some(Condition::Exists)).await.unwrap_err().is_condition_failed());
    // A quota check passes on a counter that does not exist yet, and creates it.
    let counter = Key::new(&pk, "counter");
    store.update(&counter, Update::new().add("count", 1), Some(Condition::Below("count".into(), 1))).await.unwrap();
    let r = store.update(&counter, Update::new().add("count", 1), Some(Condition::Below("count".into(), 1))).await;
    assert!(r.unwrap_err().is_condition_failed(), "the second add would pass the quota");

    let cases: Vec<(Condition, bool)> = vec![
        (Condition::Exists, true),
        (Condition::Equals("state".into(), json!("open")), true),
        (Condition::Equals("state".into(), json!("closed")), false),
        (Condition::Equals("count".into(), json!(5.0)), true),
        (Condition::AttrAbsent("archivedAt".into()), true),
        (Condition::AttrAbsent("state".into()), false),
        (Condition::AttrPresent("state".into()), true),
        (Condition::AttrPresent("archivedAt".into()), false),
        (Condition::AtLeast("count".into(), 5), true),
        (Condition::AtLeast("count".into(), 6), false),
        (Condition::AtLeast("absent".into(), 0), false),
        (Condition::Below("count".into(), 6), true),
        (Condition::Below("count".into(), 5), false),
        (Condition::Below("absent".into(), 0), true),
        (Condition::Below("state".into(), 9), false),
        (Condition::VersionEquals(1), true),
        (Condition::VersionEquals(2), false),
        (Condition::And(vec![Condition::VersionEquals(1), Condition::AtLeast("count".into(), 1)]), true),
        (Condition::And(vec![Condition::VersionEquals(1), Condition::AtLeast("count".into(), 9)]), false),
        (Condition::Or(vec![Condition::VersionEquals(7), Condition::AtLeast("count".into(), 1)]), true),
        (Condition::Or(vec![Condition::VersionEquals(7), Condition::NotExists]), false),
        (Condition::And(vec![Condition::VersionEquals(1)]), true),
        (Condition::Or(vec![Condition::And(vec![Condition::Exists])]), true),
    ];
    for (i, (cond, expect)) in cases.into_iter().enumerate() {
        let r = store.update(&k, Update::new().set("probe", i as i64), Some(cond.clone())).await;
        assert_eq!(r.is_ok(), expect, "condition {cond:?} should {}hold: {r:?}", if expect { "" } else { "not " });
        if !expect {
            assert!(r.unwrap_err().is_condition_failed());
        }
    }
    // AttrAbsent holds on a missing item (nothing to carry the attribute).
    store.put(item(&pk, "y", json!({})), Some(Condition::AttrAbsent("state".into()))).await.unwrap();
    assert!(store.delete(&k, Some(Condition::VersionEquals(2))).await.unwrap_err().is_condition_failed());
    store.delete(&k, Some(Condition::VersionEquals(1))).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), None);
}

pub async fn conditions_treat_expired_items_as_absent(store: Arc<dyn Store>) {
    let pk = format!("{}E", prefix());
    let past = crate::now_epoch() - 10;
    store.put(item(&pk, "old", json!({"ttl": past, "state": "open"})), None).await.unwrap();
    let k = Key::new(&pk, "old");
    assert!(store
        .update(&k, Update::new().set("x", 1), Some(Condition::Exists))
        .await
        .unwrap_err()
        .is_condition_failed());
    assert!(store
        .update(&k, Update::new().set("x", 1), Some(Condition::Equals("state".into(), json!("open"))))
        .await
        .unwrap_err()
        .is_condition_failed());
    // Creating over an expired item succeeds: it no longer exists.
    store.put(item(&pk, "old", json!({"state": "new"})), Some(Condition::NotExists)).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().unwrap()["state"], "new");
}

pub async fn update_actions(store: Arc<dyn Store>) {
    let pk = format!("{}U", prefix());
    let k = Key::new(&pk, "acct");
    // An update of a missing item creates it.
    let it = store
        .update(
            &k,
            Update::new()
                .add("attempts", 1)
                .set_if_absent("firstContactedAt", "2026-05-08T09:00:00Z")
                .max("lastContactedAt", "2026-05-08T09:00:00Z")
                .min("earliest", "2026-05-08T09:00:00Z")
                .max("score", 10),
            None,
        )
        .await
        .unwrap();
    assert_eq!(it["PK"], json!(pk));
    assert_eq!(it["attempts"], 1);
    assert_eq!(it["firstContactedAt"], "2026-05-08T09:00:00Z");
    let it = store
        .update(
            &k,
            Update::new()
                .add("attempts", 2)
                .set_if_absent("firstContactedAt", "2026-06-01T00:00:00Z")
                .max("lastContactedAt", "2026-05-07T00:00:00Z")
                .min("earliest", "2026-05-07T00:00:00Z")
                .min("low", 7)
                .max("score", 12),
            None,
        )
        .await
        .unwrap();
    assert_eq!(it["attempts"], 3);
    assert_eq!(it["firstContactedAt"], "2026-05-08T09:00:00Z", "set-if-absent keeps the first value");
    assert_eq!(it["lastContactedAt"], "2026-05-08T09:00:00Z", "max keeps the later time");
    assert_eq!(it["score"], 12, "max takes the larger number");
    assert_eq!(it["earliest"], "2026-05-07T00:00:00Z", "min keeps the earlier time");
    assert_eq!(it["low"], 7, "min sets a missing attribute");
    let it = store.update(&k, Update::new().min("earliest", "2026-06-01T00:00:00Z").min("low", 3), None).await.unwrap();
    assert_eq!((it["earliest"].as_str(), it["low"].as_i64()), (Some("2026-05-07T00:00:00Z"), Some(3)));
    let it = store
        .update(
            &k,
            Update::new().add("attempts", -1).max("lastContactedAt", "2026-05-22T10:00:00Z").remove("score"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(it["attempts"], 2);
    assert_eq!(it["lastContactedAt"], "2026-05-22T10:00:00Z");
    assert!(!it.contains_key("score"));
    assert_eq!(store.get(&k).await.unwrap(), Some(it));
    // Max with a condition: the condition still guards the whole update.
    let r = store
        .update(&k, Update::new().max("lastContactedAt", "2027-01-01T00:00:00Z"), Some(Condition::VersionEquals(3)))
        .await;
    assert!(r.unwrap_err().is_condition_failed());
    assert_eq!(store.get(&k).await.unwrap().unwrap()["lastContactedAt"], "2026-05-22T10:00:00Z");
}

pub async fn transaction_is_all_or_nothing(store: Arc<dyn Store>) {
    let pk = format!("{}T", prefix());
    store.put(item(&pk, "rel", json!({"version": 1, "status": "PROSPECTING"})), None).await.unwrap();
    store.put(item(&pk, "guard", json!({})), None).await.unwrap();
    let ops = vec![
        TxOp::put(item(&pk, "evt1", json!({"type": "STATUS_CHANGED"}))),
        TxOp::update_if(
            Key::new(&pk, "rel"),
            Update::new().set("status", "LINK_PLACED").add("version", 1),
            Condition::VersionEquals(1),
        ),
        TxOp::put_if(item(&pk, "guard", json!({})), Condition::NotExists),
    ];
    let r = store.transact(ops).await;
    assert_eq!(r, Err(StoreError::ConditionFailed { op: Some(2) }), "the failing part is named");
    assert_eq!(store.get(&Key::new(&pk, "evt1")).await.unwrap(), None, "no part of a failed transaction is written");
    assert_eq!(store.get(&Key::new(&pk, "rel")).await.unwrap().unwrap()["status"], "PROSPECTING");

    let ops = vec![
        TxOp::put(item(&pk, "evt1", json!({"type": "STATUS_CHANGED"}))),
        TxOp::update_if(
            Key::new(&pk, "rel"),
            Update::new().set("status", "LINK_PLACED").add("version", 1),
            Condition::VersionEquals(1),
        ),
        TxOp::check(Key::new(&pk, "guard"), Condition::Exists),
        TxOp::Delete { key: Key::new(&pk, "guard2"), cond: Some(Condition::NotExists) },
    ];
    store.transact(ops).await.unwrap();
    assert!(store.get(&Key::new(&pk, "evt1")).await.unwrap().is_some());
    let rel = store.get(&Key::new(&pk, "rel")).await.unwrap().unwrap();
    assert_eq!((rel["status"].as_str(), rel["version"].as_i64()), (Some("LINK_PLACED"), Some(2)));

    // A failing condition check alone also aborts.
    let r = store
        .transact(vec![TxOp::put(item(&pk, "evt2", json!({}))), TxOp::check(Key::new(&pk, "nope"), Condition::Exists)])
        .await;
    assert_eq!(r, Err(StoreError::ConditionFailed { op: Some(1) }));
    assert_eq!(store.get(&Key::new(&pk, "evt2")).await.unwrap(), None);
}

pub async fn transaction_rejects_bad_requests(store: Arc<dyn Store>) {
    let pk = format!("{}B", prefix());
    let dup = vec![TxOp::put(item(&pk, "a", json!({}))), TxOp::update(Key::new(&pk, "a"), Update::new().set("x", 1))];
    assert!(matches!(store.transact(dup).await, Err(StoreError::Invalid(_))));
    let many: Vec<TxOp> = (0..101).map(|i| TxOp::put(item(&pk, &format!("{i:03}"), json!({})))).collect();
    assert!(matches!(store.transact(many).await, Err(StoreError::Invalid(_))));
    assert!(store.query(Query::partition(&pk)).await.unwrap().items.is_empty());
}

pub async fn atomic_counters_under_concurrent_writers(store: Arc<dyn Store>) {
    let pk = format!("{}N", prefix());
    let k = Key::new(&pk, "counter");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (store, k) = (store.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let stamp = format!("2026-05-{:02}T00:00:00Z", 1 + (w * 5 + i) % 28);
                store
                    .update(
                        &k,
                        Update::new()
                            .add("n", 1)
                            .max("last", stamp.clone())
                            .min("earliest", stamp)
                            .set_if_absent("first", format!("w{w}")),
                        None,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let it = store.get(&k).await.unwrap().unwrap();
    assert_eq!(it["n"], 80, "no increment is lost");
    assert_eq!(it["last"], "2026-05-28T00:00:00Z", "max ends at the largest value written");
    assert_eq!(it["earliest"], "2026-05-01T00:00:00Z", "min ends at the smallest value written");
    assert!(it["first"].as_str().unwrap().starts_with('w'));
}

pub async fn optimistic_version_conflicts(store: Arc<dyn Store>) {
    let pk = format!("{}V", prefix());
    let k = Key::new(&pk, "rel");
    store.put(item(&pk, "rel", json!({"version": 1, "notes": []})), None).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (store, k) = (store.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for _ in 0..4 {
                let cur = store.get(&k).await.unwrap().unwrap();
                let v = cur["version"].as_i64().unwrap();
                let mut notes = cur["notes"].as_array().unwrap().clone();
                notes.push(json!(w));
                match store
                    .update(
                        &k,
                        Update::new().set("notes", Value::Array(notes)).add("version", 1),
                        Some(Condition::VersionEquals(v)),
                    )
                    .await
                {
                    Ok(_) => wins += 1,
                    Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            wins
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap();
    }
    let it = store.get(&k).await.unwrap().unwrap();
    assert!(wins >= 1);
    assert_eq!(it["version"].as_i64().unwrap(), 1 + wins, "every successful write bumped the version once");
    assert_eq!(it["notes"].as_array().unwrap().len() as i64, wins, "no successful write was lost");
}

pub async fn sort_key_conditions(store: Arc<dyn Store>) {
    let pk = format!("{}S", prefix());
    for sk in ["a", "b", "ba", "bb", "c", "EVT#01", "EVT#02", "EVT#10"] {
        store.put(item(&pk, sk, json!({})), None).await.unwrap();
    }
    let q = |sk: SortKey| Query::partition(&pk).sk(sk).limit(100);
    let cases = [
        (SortKey::All, vec!["EVT#01", "EVT#02", "EVT#10", "a", "b", "ba", "bb", "c"]),
        (SortKey::Prefix("EVT#".into()), vec!["EVT#01", "EVT#02", "EVT#10"]),
        (SortKey::Prefix("b".into()), vec!["b", "ba", "bb"]),
        (SortKey::Between("b".into(), "ba".into()), vec!["b", "ba"]),
        (SortKey::AtLeast("ba".into()), vec!["ba", "bb", "c"]),
        (SortKey::After("ba".into()), vec!["bb", "c"]),
        (SortKey::AtMost("b".into()), vec!["EVT#01", "EVT#02", "EVT#10", "a", "b"]),
        (SortKey::Before("b".into()), vec!["EVT#01", "EVT#02", "EVT#10", "a"]),
    ];
    for (sk, expect) in cases {
        let got = sks(&store.query(q(sk.clone())).await.unwrap().items);
        assert_eq!(got, expect, "forward {sk:?}");
        let back = sks(&store.query(q(sk.clone()).backward()).await.unwrap().items);
        let mut rev = expect.clone();
        rev.reverse();
        assert_eq!(back, rev, "backward {sk:?}");
    }
    // Another partition that shares a prefix of this one's name stays out.
    store.put(item(&format!("{pk}X"), "a", json!({})), None).await.unwrap();
    assert_eq!(store.query(q(SortKey::All)).await.unwrap().items.len(), 8);
}

pub async fn cursor_pagination_while_items_are_added(store: Arc<dyn Store>) {
    for forward in [true, false] {
        let pk = format!("{}P", prefix());
        let originals: Vec<String> = (0..40).map(|i| format!("k{:03}", i * 2)).collect();
        for sk in &originals {
            store.put(item(&pk, sk, json!({})), None).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut round = 0;
        loop {
            let page = store.query(Query::partition(&pk).forward(forward).limit(7).after(cursor)).await.unwrap();
            seen.extend(sks(&page.items));
            // Writers keep adding items between pages, before and after the reader's position.
            for j in 0..3 {
                let odd = format!("k{:03}", ((round * 13 + j * 29) % 80) | 1);
                store.put(item(&pk, &odd, json!({})), None).await.unwrap();
            }
            round += 1;
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no item is returned twice");
        for o in &originals {
            assert!(seen.contains(o), "item {o} present from the start was not skipped");
        }
        let mut ordered = seen.clone();
        ordered.sort();
        if !forward {
            ordered.reverse();
        }
        assert_eq!(seen, ordered, "pages follow sort-key order");
    }
}

pub async fn index_queries(store: Arc<dyn Store>) {
    let p = prefix();
    let by_status = format!("{p}WS#1#STATUS");
    for (id, status, at) in
        [("r1", "ENGAGED", "2026-05-01"), ("r2", "ENGAGED", "2026-05-03"), ("r3", "PLACED", "2026-05-02")]
    {
        let it = item(
            &format!("{p}WS#1"),
            &format!("REL#{id}"),
            json!({"GSI1PK": format!("{by_status}#{status}"), "GSI1SK": at, "GSI2PK": format!("{p}ALL"), "GSI2SK": at}),
        );
        store.put(it, None).await.unwrap();
    }
    // Sparse: an item without index attributes is not in the index.
    store.put(item(&format!("{p}WS#1"), "META", json!({})), None).await.unwrap();

    let engaged = store.query(Query::index(Index::Gsi1, format!("{by_status}#ENGAGED")).backward()).await.unwrap();
    assert_eq!(sks(&engaged.items), vec!["REL#r2", "REL#r1"], "newest first through the index");
    let all = store
        .query(Query::index(Index::Gsi2, format!("{p}ALL")).sk(SortKey::AtLeast("2026-05-02".into())))
        .await
        .unwrap();
    assert_eq!(sks(&all.items), vec!["REL#r3", "REL#r2"]);
    let paged = read_all(store.as_ref(), Query::index(Index::Gsi2, format!("{p}ALL")).limit(1)).await;
    assert_eq!(sks(&paged), vec!["REL#r1", "REL#r3", "REL#r2"], "index pages with cursors");

    // Changing an index key moves the item; removing it drops the item from the index.
    let k = Key::new(format!("{p}WS#1"), "REL#r1");
    store.update(&k, Update::new().set("GSI1PK", format!("{by_status}#PLACED")), None).await.unwrap();
    let placed = store.query(Query::index(Index::Gsi1, format!("{by_status}#PLACED"))).await.unwrap();
    assert_eq!(sks(&placed.items), vec!["REL#r1", "REL#r3"]);
    assert_eq!(store.query(Query::index(Index::Gsi1, format!("{by_status}#ENGAGED"))).await.unwrap().items.len(), 1);
    store.update(&k, Update::new().remove("GSI2PK"), None).await.unwrap();
    store.delete(&Key::new(format!("{p}WS#1"), "REL#r2"), None).await.unwrap();
    let all = store.query(Query::index(Index::Gsi2, format!("{p}ALL"))).await.unwrap();
    assert_eq!(sks(&all.items), vec!["REL#r3"]);
}

pub async fn query_filter_and_limit(store: Arc<dyn Store>) {
    let pk = format!("{}F", prefix());
    for i in 0..10 {
        store.put(item(&pk, &format!("{i:02}"), json!({"even": i % 2 == 0})), None).await.unwrap();
    }
    let q = Query::partition(&pk).filter(Condition::Equals("even".into(), json!(true)));
    let first = store.query(q.clone().limit(4)).await.unwrap();
    assert_eq!(sks(&first.items), vec!["00", "02"], "the limit counts examined items, as DynamoDB's does");
    assert!(first.cursor.is_some());
    let all = read_all(store.as_ref(), q.limit(3)).await;
    assert_eq!(sks(&all), vec!["00", "02", "04", "06", "08"]);
}

pub async fn ttl_hides_expired_items(store: Arc<dyn Store>) {
    let pk = format!("{}L", prefix());
    let now = crate::now_epoch();
    store.put(item(&pk, "gone", json!({"ttl": now - 1})), None).await.unwrap();
    store.put(item(&pk, "live", json!({"ttl": now + 3600})), None).await.unwrap();
    store.put(item(&pk, "plain", json!({})), None).await.unwrap();
    assert_eq!(store.get(&Key::new(&pk, "gone")).await.unwrap(), None);
    assert!(store.get(&Key::new(&pk, "live")).await.unwrap().is_some());
    assert_eq!(sks(&store.query(Query::partition(&pk)).await.unwrap().items), vec!["live", "plain"]);
    let got = store.batch_get(&[Key::new(&pk, "gone"), Key::new(&pk, "live")]).await.unwrap();
    assert_eq!(sks(&got), vec!["live"]);
}

pub async fn item_size_limit(store: Arc<dyn Store>) {
    let pk = format!("{}Z", prefix());
    let big = "x".repeat(crate::table::table().max_item_bytes + 1);
    let r = store.put(item(&pk, "big", json!({ "body": big })), None).await;
    assert!(matches!(r, Err(StoreError::ItemTooLarge { .. })), "{r:?}");
    let r = store.transact(vec![TxOp::put(item(&pk, "big", json!({ "body": big })))]).await;
    assert!(matches!(r, Err(StoreError::ItemTooLarge { .. })), "{r:?}");
    assert_eq!(store.get(&Key::new(&pk, "big")).await.unwrap(), None);
    let fits = "y".repeat(300 * 1024);
    store.put(item(&pk, "fits", json!({ "body": fits })), None).await.unwrap();
    assert_eq!(store.get(&Key::new(&pk, "fits")).await.unwrap().unwrap()["body"].as_str().unwrap().len(), fits.len());
}

pub async fn batch_get_many(store: Arc<dyn Store>) {
    let pk = format!("{}G", prefix());
    let mut ops = Vec::new();
    for i in 0..150 {
        ops.push(TxOp::put(item(&pk, &format!("{i:03}"), json!({"i": i}))));
        if ops.len() == 50 {
            store.transact(std::mem::take(&mut ops)).await.unwrap();
        }
    }
    let mut keys: Vec<Key> = (0..150).rev().map(|i| Key::new(&pk, format!("{i:03}"))).collect();
    keys.insert(10, Key::new(&pk, "missing"));
    let got = store.batch_get(&keys).await.unwrap();
    assert_eq!(got.len(), 150);
    let order: Vec<i64> = got.iter().map(|i| i["i"].as_i64().unwrap()).collect();
    assert_eq!(order, (0..150).rev().collect::<Vec<_>>(), "results follow the order of the keys asked for");
}

fn past() -> i64 {
    crate::now_epoch() - 60
}

fn future() -> i64 {
    crate::now_epoch() + 3600
}

/// Updating an item whose TTL has passed starts from nothing: none of its old attributes survive,
/// with Add, with Max, and with a TTL the update sets itself; a condition needing the item fails.
pub async fn update_of_expired_item_starts_afresh(store: Arc<dyn Store>) {
    let p = format!("{}E", prefix());
    let k = Key::new(&p, "1");
    store.put(item(&p, "1", json!({"count": 7, "stale": true, "ttl": past()})), None).await.unwrap();
    let got = store.update(&k, Update::new().add("count", 1), None).await.unwrap();
    assert_eq!(got, item(&p, "1", json!({"count": 1})));
    assert_eq!(store.get(&k).await.unwrap(), Some(got));

    store.put(item(&p, "2", json!({"hi": 100, "stale": 1, "ttl": past()})), None).await.unwrap();
    let t = future();
    let got = store.update(&Key::new(&p, "2"), Update::new().max("hi", 3).set("ttl", t), None).await.unwrap();
    assert_eq!(got, item(&p, "2", json!({"hi": 3, "ttl": t})));

    store.put(item(&p, "3", json!({"version": 1, "ttl": past()})), None).await.unwrap();
    let res =
        store.update(&Key::new(&p, "3"), Update::new().add("version", 1), Some(Condition::VersionEquals(1))).await;
    assert_eq!(res, Err(StoreError::ConditionFailed { op: None }));
}

/// Pages of 3 through 8 items, forward and backward, on the table and on an index, through the
/// cursor's encoded form; and paging inside a sort-key range.
pub async fn paging_both_ways_on_table_and_index(store: Arc<dyn Store>) {
    let p = prefix();
    let (part, index_part) = (format!("{p}Q"), format!("{p}G"));
    let all: Vec<&str> = vec!["a#01", "a#02", "a#03", "a#10", "ab", "b#01", "b#02", "c"];
    let mut ops: Vec<TxOp> = all
        .iter()
        .enumerate()
        .map(|(i, sk)| {
            TxOp::put(item(&format!("{p}QI"), &format!("id{i}"), json!({"GSI1PK": index_part, "GSI1SK": sk})))
        })
        .collect();
    ops.extend(all.iter().map(|sk| TxOp::put(item(&part, sk, json!({})))));
    store.transact(ops).await.unwrap();
    for (index, pk, attr) in [(Index::Primary, &part, "SK"), (Index::Gsi1, &index_part, "GSI1SK")] {
        for forward in [true, false] {
            let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<Cursor>);
            loop {
                let c = cursor.take().map(|c| Cursor::decode(&c.encode()).expect("cursor decodes"));
                let page =
                    store.query(Query::index(index, pk.as_str()).forward(forward).limit(3).after(c)).await.unwrap();
                assert!(page.items.len() <= 3);
                pages += 1;
                items.extend(page.items);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
                assert!(pages < 20, "paging does not end");
            }
            let got: Vec<&str> = items.iter().map(|i| i[attr].as_str().unwrap()).collect();
            let mut want = all.clone();
            if !forward {
                want.reverse();
            }
            assert_eq!(got, want, "{index:?} forward={forward}");
            assert!(pages >= 3, "{pages} pages for 8 items by 3");
        }
    }
    let q = Query::partition(part.as_str()).sk(SortKey::Prefix("a".into())).limit(2);
    assert_eq!(read_all(store.as_ref(), q).await.len(), 5);
}

/// A transaction's updates: Max on a timestamp, Add on an expired item (which starts afresh), Max
/// creating an item; a Max that changes nothing still holds its part's condition.
pub async fn transaction_with_max_and_expired_items(store: Arc<dyn Store>) {
    let p = format!("{}T", prefix());
    let k = |sk: &str| Key::new(&p, sk);
    store.put(item(&p, "m", json!({"hi": "2024-01-02T00:00:00Z"})), None).await.unwrap();
    store.put(item(&p, "e", json!({"count": 9, "ttl": past()})), None).await.unwrap();
    store
        .transact(vec![
            TxOp::update(k("m"), Update::new().max("hi", "2024-03-01T00:00:00Z")),
            TxOp::update(k("e"), Update::new().add("count", 1)),
            TxOp::update(k("n"), Update::new().max("hi", 1)),
        ])
        .await
        .unwrap();
    assert_eq!(store.get(&k("m")).await.unwrap().unwrap()["hi"], json!("2024-03-01T00:00:00Z"));
    assert_eq!(store.get(&k("e")).await.unwrap(), Some(item(&p, "e", json!({"count": 1}))));
    assert_eq!(store.get(&k("n")).await.unwrap(), Some(item(&p, "n", json!({"hi": 1}))));
    let res = store
        .transact(vec![
            TxOp::update_if(k("m"), Update::new().max("hi", "2000-01-01T00:00:00Z"), Condition::Exists),
            TxOp::update_if(k("gone"), Update::new().max("hi", 1), Condition::Exists),
        ])
        .await;
    assert_eq!(res, Err(StoreError::ConditionFailed { op: Some(1) }));
    assert_eq!(store.get(&k("gone")).await.unwrap(), None);
}

/// Empty keys, a missing sort key and a NUL in a key are refused before anything is stored.
pub async fn bad_keys_are_invalid(store: Arc<dyn Store>) {
    let p = prefix();
    assert!(matches!(store.get(&Key::new("", "x")).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.put(item(&p, "", json!({})), None).await, Err(StoreError::Invalid(_))));
    let mut no_sk = Item::new();
    no_sk.insert("PK".into(), p.clone().into());
    assert!(matches!(store.put(no_sk, None).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.batch_get(&[Key::new(&p, "a\0")]).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.delete(&Key::new(&p, ""), None).await, Err(StoreError::Invalid(_))));
}

/// An index key attribute that is not a non-empty string is refused by every write path (not
/// indexed by one adapter and silently skipped by another); one of a pair alone is fine (sparse).
pub async fn invalid_index_keys_are_refused(store: Arc<dyn Store>) {
    let p = prefix();
    for bad in [json!(5), json!(""), json!(true), json!({"a": 1}), json!("a\u{0}b")] {
        let it = item(&p, "1", json!({"GSI1PK": bad, "GSI1SK": "x"}));
        assert!(matches!(store.put(it.clone(), None).await, Err(StoreError::Invalid(_))), "put {bad}");
        assert!(matches!(store.transact(vec![TxOp::put(it)]).await, Err(StoreError::Invalid(_))), "tx {bad}");
        let set = Update::new().set("GSI2SK", bad.clone());
        assert!(matches!(store.update(&Key::new(&p, "2"), set.clone(), None).await, Err(StoreError::Invalid(_))));
        assert!(matches!(
            store.transact(vec![TxOp::update(Key::new(&p, "2"), set)]).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert_eq!(store.get(&Key::new(&p, "1")).await.unwrap(), None);
    assert_eq!(store.get(&Key::new(&p, "2")).await.unwrap(), None);
    // Half a pair: stored, in no index.
    store.put(item(&p, "3", json!({"GSI3PK": format!("{p}I")})), None).await.unwrap();
    let page = store.query(Query::index(Index::Gsi3, format!("{p}I"))).await.unwrap();
    assert!(page.items.is_empty());
}

/// Items of every shape the tables hold (strings of any text, integers over the whole `i64`
/// range, prices and ratings as decimals, booleans, nulls, lists, nested maps, names the
/// encodings know and names they do not), generated from a fixed seed: each reads back exactly
/// as written, alone, through a batch and through an index.
pub async fn random_items_round_trip(store: Arc<dyn Store>) {
    let p = prefix();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut written = Vec::new();
    for i in 0..60 {
        let mut it =
            item(&format!("{p}R"), &format!("{i:03}"), json!({"GSI1PK": format!("{p}G"), "GSI1SK": format!("{i:03}")}));
        for _ in 0..rng.below(12) {
            let name = rng.name();
            if !name.starts_with("GSI") && name != "PK" && name != "SK" && name != "ttl" {
                it.insert(name, rng.value(3));
            }
        }
        store.put(it.clone(), None).await.unwrap();
        written.push(it);
    }
    for it in &written {
        let got = store.get(&Key::of(it).unwrap()).await.unwrap().unwrap();
        assert_eq!(&got, it, "read back as written");
    }
    let keys: Vec<Key> = written.iter().map(|i| Key::of(i).unwrap()).collect();
    let mut batch = store.batch_get(&keys).await.unwrap();
    batch.sort_by(|a, b| a["SK"].as_str().cmp(&b["SK"].as_str()));
    assert_eq!(batch, written, "a batch reads the same");
    let page = store.query(Query::index(Index::Gsi1, format!("{p}G")).limit(100)).await.unwrap();
    assert_eq!(page.items, written, "an index reads the same");
}

/// xorshift64*: a fixed sequence without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            " ",
            "#",
            "é",
            "日本",
            "🙂",
            "\"",
            "\\",
            "\n",
            "\t",
            "\u{7f}",
            "ünïcødé",
            "x@y.com",
            "https://e.com/?q=1&r=2",
        ];
        (0..self.below(8)).map(|_| PIECES[self.below(PIECES.len() as u64) as usize]).collect()
    }

    fn name(&mut self) -> String {
        const KNOWN: &[&str] =
            &["status", "notes", "metadata", "domainRating", "recentSends", "priceGuestPost", "email"];
        if self.below(2) == 0 {
            KNOWN[self.below(KNOWN.len() as u64) as usize].to_owned()
        } else {
            format!("x{}", self.text())
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        let kinds = if depth == 0 { 6 } else { 8 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 1),
            2 => Value::from(self.next() as i64),
            3 => Value::from(self.below(1000) as i64 - 500),
            // Decimals as prices and ratings have them (DynamoDB numbers hold 38 digits).
            4 => json!((self.below(10_000_000) as f64) / 100.0 + 0.5),
            5 => Value::String(self.text()),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object((0..self.below(4)).map(|_| (self.name(), self.value(depth - 1))).collect()),
        }
    }
}

/// `batch_get_attrs` and `Query::attrs` return the asked attributes with the item's key (and
/// `ttl`); filters still see the whole item; cursors still work through an index; expired items
/// stay hidden.
pub async fn projections_return_only_what_is_asked(store: Arc<dyn Store>) {
    let p = prefix();
    let pk = format!("{p}P");
    let now = crate::now_epoch();
    for i in 0..6 {
        let mut extra = json!({
            "name": format!("n{i}"), "big": "z".repeat(2000), "n": i, "even": i % 2 == 0,
            "nested": {"a": [1, 2, {"b": null}]},
            "GSI1PK": format!("{p}IDX"), "GSI1SK": format!("{i:02}"),
        });
        if i == 5 {
            extra["ttl"] = json!(now - 10);
        }
        store.put(item(&pk, &format!("{i:02}"), extra), None).await.unwrap();
    }
    let keys: Vec<Key> = (0..7).map(|i| Key::new(&pk, format!("{i:02}"))).collect();
    let got = store.batch_get_attrs(&keys, &["name", "nested", "absent"]).await.unwrap();
    assert_eq!(got.len(), 5, "missing and expired items are left out");
    assert_eq!(
        Value::Object(got[1].clone()),
        json!({"PK": pk, "SK": "01", "name": "n1", "nested": {"a": [1, 2, {"b": null}]}}),
        "exactly the projection and the key"
    );
    assert_eq!(sks(&got), vec!["00", "01", "02", "03", "04"]);

    // A query: the filter reads an attribute that is not projected.
    let q = Query::partition(&pk).filter(Condition::Equals("even".into(), json!(true))).attrs(&["n"]);
    let page = store.query(q).await.unwrap();
    assert_eq!(
        page.items.iter().map(|i| Value::Object(i.clone())).collect::<Vec<_>>(),
        vec![
            json!({"PK": pk, "SK": "00", "n": 0}),
            json!({"PK": pk, "SK": "02", "n": 2}),
            json!({"PK": pk, "SK": "04", "n": 4}),
        ]
    );
    // Through an index, page by page: the cursor works though the index keys are not projected.
    let paged =
        read_all(store.as_ref(), Query::index(Index::Gsi1, format!("{p}IDX")).backward().limit(2).attrs(&["name"]))
            .await;
    assert_eq!(sks(&paged), vec!["04", "03", "02", "01", "00"]);
    for it in &paged {
        let mut names: Vec<&str> = it.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, vec!["PK", "SK", "name"]);
    }
    // `ttl` comes back with the projection when the item has one.
    store.put(item(&pk, "t", json!({"ttl": now + 3600, "name": "t", "big": "q"})), None).await.unwrap();
    let got = store.batch_get_attrs(&[Key::new(&pk, "t")], &["name"]).await.unwrap();
    assert_eq!(Value::Object(got[0].clone()), json!({"PK": pk, "SK": "t", "ttl": now + 3600, "name": "t"}));
}

/// `delete_many` removes every key given (more than one request's worth, with repeats and absent
/// keys), and the items' index entries with them.
pub async fn delete_many_removes_every_key(store: Arc<dyn Store>) {
    let p = prefix();
    let pk = format!("{p}D");
    let mut ops = Vec::new();
    for i in 0..130 {
        ops.push(TxOp::put(item(
            &pk,
            &format!("{i:03}"),
            json!({"GSI1PK": format!("{p}DI"), "GSI1SK": format!("{i:03}")}),
        )));
        if ops.len() == 65 {
            store.transact(std::mem::take(&mut ops)).await.unwrap();
        }
    }
    let mut keys: Vec<Key> = (0..120).map(|i| Key::new(&pk, format!("{i:03}"))).collect();
    keys.push(Key::new(&pk, "005"));
    keys.push(Key::new(&pk, "absent"));
    store.delete_many(&keys).await.unwrap();
    let left = read_all(store.as_ref(), Query::partition(&pk)).await;
    assert_eq!(sks(&left), (120..130).map(|i| format!("{i:03}")).collect::<Vec<_>>());
    let indexed = read_all(store.as_ref(), Query::index(Index::Gsi1, format!("{p}DI"))).await;
    assert_eq!(indexed.len(), 10);
    store.delete_many(&[]).await.unwrap();
}
