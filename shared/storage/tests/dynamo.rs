//! The DynamoDB adapter against a real DynamoDB API: moto's server on loopback, one table per
//! test.

use linkcrm_storage::dynamo::{DynamoStore, RequestCounts};
use linkcrm_storage::{
    now_epoch, Condition, Cursor, Index, Item, Key, Query, SortKey, Store, StoreError, TxOp, Update,
};
use linkcrm_testkit::{unique_table_name, Moto};
use serde_json::{json, Value};

async fn store(test: &str) -> DynamoStore {
    let moto = Moto::shared().expect("moto server");
    let store = DynamoStore::for_endpoint(&moto.endpoint, &unique_table_name(test));
    store.create_table().await.expect("create table");
    store.reset_request_counts();
    store
}

fn item(pk: &str, sk: &str, rest: Value) -> Item {
    let mut m = rest.as_object().cloned().unwrap_or_default();
    m.insert("PK".into(), pk.into());
    m.insert("SK".into(), sk.into());
    m
}

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

fn past() -> i64 {
    now_epoch() - 60
}

fn future() -> i64 {
    now_epoch() + 3600
}

fn cf() -> StoreError {
    StoreError::ConditionFailed { op: None }
}

#[tokio::test]
async fn put_get_round_trip_keeps_types() {
    let s = store("roundtrip").await;
    let it = item(
        "W#1",
        "LINK#1",
        json!({
            "big": 9_007_199_254_740_993_i64, // not representable as f64
            "neg": -42,
            "ratio": 0.25,
            "flag": true,
            "nothing": null,
            "empty": "",
            "text": "héllo ✓",
            "list": [1, "two", {"three": 3}, [], null],
            "nested": {"a": {"b": {"c": [1.5, -7]}}, "empty": {}},
        }),
    );
    s.put(it.clone(), None).await.unwrap();
    let got = s.get(&key("W#1", "LINK#1")).await.unwrap().expect("item");
    assert_eq!(got, it);
    assert_eq!(got["big"].as_i64(), Some(9_007_199_254_740_993));
    assert!(got["neg"].is_i64());
    assert_eq!(s.get(&key("W#1", "LINK#2")).await.unwrap(), None);
    assert_eq!(s.backend(), "dynamodb");
    assert_eq!(s.request_counts(), RequestCounts { put: 1, get: 2, ..Default::default() });
    s.reset_request_counts();
    assert_eq!(s.request_counts().total(), 0);
}

#[tokio::test]
async fn create_table_is_idempotent() {
    let s = store("idempotent").await;
    s.put(item("A", "1", json!({})), None).await.unwrap();
    s.create_table().await.unwrap();
    assert!(s.get(&key("A", "1")).await.unwrap().is_some());
}

#[tokio::test]
async fn expired_items_read_as_absent() {
    let s = store("ttl").await;
    s.put(item("P", "old", json!({"ttl": past()})), None).await.unwrap();
    s.put(item("P", "new", json!({"ttl": future()})), None).await.unwrap();
    s.put(item("P", "none", json!({})), None).await.unwrap();
    assert_eq!(s.get(&key("P", "old")).await.unwrap(), None);
    assert!(s.get(&key("P", "new")).await.unwrap().is_some());
    let page = s.query(Query::partition("P")).await.unwrap();
    let sks: Vec<&str> = page.items.iter().map(|i| i["SK"].as_str().unwrap()).collect();
    assert_eq!(sks, ["new", "none"]);
    let got = s.batch_get(&[key("P", "old"), key("P", "none")]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["SK"], "none");
}

/// Every condition kind, against an absent, a live and an expired item, through every kind of
/// conditional write; the expected outcome is `Condition::holds` on the live view.
#[tokio::test]
async fn conditions_match_reference_semantics() {
    let s = store("conditions").await;
    let conditions = vec![
        Condition::Exists,
        Condition::NotExists,
        Condition::Equals("status".into(), json!("open")),
        Condition::Equals("status".into(), json!("closed")),
        Condition::Equals("n".into(), json!(5.0)),
        Condition::Equals("tags".into(), json!(["a", "b"])),
        Condition::Equals("tags".into(), json!(["b", "a"])),
        Condition::Equals("meta".into(), json!({"k": 1, "l": [true]})),
        Condition::Equals("none".into(), Value::Null),
        Condition::Equals("status".into(), Value::Null),
        Condition::AttrAbsent("status".into()),
        Condition::AttrAbsent("missing".into()),
        Condition::AttrPresent("status".into()),
        Condition::AttrPresent("missing".into()),
        Condition::AtLeast("n".into(), 5),
        Condition::AtLeast("n".into(), 6),
        Condition::AtLeast("status".into(), 0),
        Condition::VersionEquals(3),
        Condition::VersionEquals(4),
        Condition::And(vec![Condition::Exists, Condition::VersionEquals(3)]),
        Condition::And(vec![Condition::Exists, Condition::VersionEquals(4)]),
        Condition::Or(vec![Condition::NotExists, Condition::VersionEquals(3)]),
        Condition::Or(vec![Condition::NotExists, Condition::AtLeast("n".into(), 9)]),
        Condition::And(vec![]),
        Condition::Or(vec![]),
    ];
    let body = json!({
        "status": "open", "n": 5, "version": 3, "tags": ["a", "b"],
        "meta": {"l": [true], "k": 1}, "none": null,
    });
    let live = item("C", "x", body.clone());
    let mut expired = live.clone();
    expired.insert("ttl".into(), past().into());
    let states: [(&str, Option<&Item>); 3] = [("absent", None), ("live", Some(&live)), ("expired", Some(&expired))];
    let k = key("C", "x");
    let mut checked = 0;
    for (state, stored) in states {
        for cond in &conditions {
            let expect = cond.holds(if state == "live" { Some(&live) } else { None });
            for write in ["put", "update", "delete", "check"] {
                s.delete(&k, None).await.unwrap();
                if let Some(it) = stored {
                    s.put(it.clone(), None).await.unwrap();
                }
                let c = Some(cond.clone());
                let res = match write {
                    "put" => s.put(item("C", "x", json!({"w": 1})), c).await,
                    "update" => s.update(&k, Update::new().set("w", 1), c).await.map(drop),
                    "delete" => s.delete(&k, c).await,
                    _ => s.transact(vec![TxOp::check(k.clone(), cond.clone())]).await,
                };
                let ctx = format!("{write} with {cond:?} on {state} item");
                if expect {
                    assert_eq!(res, Ok(()), "{ctx}");
                } else {
                    let want = match write {
                        "check" => StoreError::ConditionFailed { op: Some(0) },
                        _ => cf(),
                    };
                    assert_eq!(res, Err(want), "{ctx}");
                }
                let after = s.get(&k).await.unwrap();
                let want_after = match (write, expect) {
                    ("put", true) => Some(item("C", "x", json!({"w": 1}))),
                    ("update", true) => {
                        // An expired item is absent: the update starts from nothing.
                        let mut base = if state == "live" { live.clone() } else { item("C", "x", json!({})) };
                        base.insert("w".into(), 1.into());
                        Some(base)
                    }
                    ("delete", true) => None,
                    _ => (state == "live").then(|| live.clone()),
                };
                assert_eq!(after, want_after, "state after {ctx}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * conditions.len() * 4);
}

#[tokio::test]
async fn update_actions() {
    let s = store("update").await;
    let k = key("U", "1");

    // A missing item is created; Add starts from 0.
    let got = s.update(&k, Update::new().add("count", 2).set("name", "a"), None).await.unwrap();
    assert_eq!(got, item("U", "1", json!({"count": 2, "name": "a"})));
    let got = s.update(&k, Update::new().add("count", -5), None).await.unwrap();
    assert_eq!(got["count"], json!(-3));

    // SetIfAbsent keeps an existing value.
    let got = s.update(&k, Update::new().set_if_absent("name", "b").set_if_absent("first", "x"), None).await.unwrap();
    assert_eq!((got["name"].clone(), got["first"].clone()), (json!("a"), json!("x")));

    // Remove, and the returned item is what is stored.
    let got = s.update(&k, Update::new().remove("first"), None).await.unwrap();
    assert!(!got.contains_key("first"));
    assert_eq!(s.get(&k).await.unwrap(), Some(got));

    // Add on a string is refused, changing nothing.
    let err = s.update(&k, Update::new().add("name", 1), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    // Actions on one attribute apply in order.
    let got = s.update(&k, Update::new().set("seq", 10).add("seq", 5), None).await.unwrap();
    assert_eq!(got["seq"], json!(15));
    let got = s.update(&k, Update::new().add("seq", 1).remove("seq").set_if_absent("seq", 0), None).await.unwrap();
    assert_eq!(got["seq"], json!(0));

    // Updates refuse to move an item.
    let err = s.update(&k, Update::new().set("PK", "other"), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    // A condition that requires the item prevents creation.
    let missing = key("U", "missing");
    let err = s.update(&missing, Update::new().add("count", 1), Some(Condition::Exists)).await;
    assert_eq!(err, Err(cf()));
    assert_eq!(s.get(&missing).await.unwrap(), None);

    // An empty update creates a bare item, and leaves an existing one as it is.
    let got = s.update(&missing, Update::new(), None).await.unwrap();
    assert_eq!(got, item("U", "missing", json!({})));
    let got = s.update(&k, Update::new(), Some(Condition::AtLeast("count".into(), -3))).await.unwrap();
    assert_eq!(got["count"], json!(-3));
}

#[tokio::test]
async fn update_max_numbers_and_timestamps() {
    let s = store("max").await;
    let k = key("M", "1");
    let got = s.update(&k, Update::new().max("n", 5).max("at", "2024-05-01T10:00:00Z"), None).await.unwrap();
    assert_eq!((got["n"].clone(), got["at"].clone()), (json!(5), json!("2024-05-01T10:00:00Z")));

    let got = s.update(&k, Update::new().max("n", 3).max("at", "2024-04-30T23:59:59Z"), None).await.unwrap();
    assert_eq!((got["n"].clone(), got["at"].clone()), (json!(5), json!("2024-05-01T10:00:00Z")));

    let got =
        s.update(&k, Update::new().max("n", 12).max("at", "2024-05-01T10:00:01Z").add("hits", 1), None).await.unwrap();
    assert_eq!(got, item("M", "1", json!({"n": 12, "at": "2024-05-01T10:00:01Z", "hits": 1})));

    // A Max that changes nothing is answered from the read alone.
    s.reset_request_counts();
    let got = s.update(&k, Update::new().max("n", 1), Some(Condition::Exists)).await.unwrap();
    assert_eq!(got["n"], json!(12));
    assert_eq!(s.request_counts(), RequestCounts { get: 1, ..Default::default() });
    let res = s.update(&k, Update::new().max("n", 1), Some(Condition::VersionEquals(1))).await;
    assert_eq!(res, Err(cf()));

    // The caller's condition still decides when a Max does write.
    let res = s.update(&k, Update::new().max("n", 99), Some(Condition::AtLeast("n".into(), 50))).await;
    assert_eq!(res, Err(cf()));
    assert_eq!(s.get(&k).await.unwrap().unwrap()["n"], json!(12));

    // Values Max cannot order (booleans here) never replace an existing one.
    s.put(item("M", "3", json!({"flag": false})), None).await.unwrap();
    let got = s.update(&key("M", "3"), Update::new().max("flag", true).add("n", 1), None).await.unwrap();
    assert_eq!(got, item("M", "3", json!({"flag": false, "n": 1})));
    let got = s.update(&key("M", "3"), Update::new().max("n", "a").max("new", true), None).await.unwrap();
    assert_eq!(got, item("M", "3", json!({"flag": false, "n": 1, "new": true})));

    // Max over a null replaces it.
    s.put(item("M", "2", json!({"n": null})), None).await.unwrap();
    let got = s.update(&key("M", "2"), Update::new().max("n", 1), None).await.unwrap();
    assert_eq!(got["n"], json!(1));
}

/// Concurrent Max and Add on one item: the guarded read-compute-write retries, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_max_and_add() {
    let s = store("max-race").await;
    let k = key("R", "1");
    let tasks: Vec<_> = (0..12i64)
        .map(|i| {
            let (s, k) = (s.clone(), k.clone());
            let v = (i * 7) % 12; // every value 0..12 once, in scrambled order
            tokio::spawn(async move {
                let at = format!("2024-01-01T00:00:{v:02}Z");
                let update = Update::new().max("n", v).max("at", at).add("adds", 1);
                // Half alone, half as a transaction part: both plan Max from a read.
                match i % 2 {
                    0 => s.update(&k, update, None).await.map(drop),
                    _ => s.transact(vec![TxOp::update(k, update)]).await,
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("update");
    }
    let got = s.get(&k).await.unwrap().unwrap();
    assert_eq!(got["n"], json!(11));
    assert_eq!(got["at"], json!("2024-01-01T00:00:11Z"));
    assert_eq!(got["adds"], json!(12));
}

async fn seed_sorted(s: &DynamoStore) -> Vec<String> {
    let sks: Vec<String> =
        ["a#01", "a#02", "a#03", "a#10", "ab", "b#01", "b#02", "c"].into_iter().map(String::from).collect();
    let ops = sks
        .iter()
        .enumerate()
        .map(|(i, sk)| {
            TxOp::put(item("QI", &format!("id{i}"), json!({"GSI1PK": "G", "GSI1SK": sk, "n": i, "odd": i % 2 == 1})))
        })
        .chain(sks.iter().map(|sk| TxOp::put(item("Q", sk, json!({})))))
        .collect();
    s.transact(ops).await.unwrap();
    // Someone else's partition, which no query may return.
    s.put(item("Q2", "a#01", json!({"GSI1PK": "G2", "GSI1SK": "a#01"})), None).await.unwrap();
    sks
}

fn sort_keys() -> Vec<SortKey> {
    let s = String::from;
    vec![
        SortKey::All,
        SortKey::Prefix(s("a#")),
        SortKey::Prefix(s("a")),
        SortKey::Prefix(s("zz")),
        SortKey::Prefix(s("")),
        SortKey::Between(s("a#02"), s("b#01")),
        SortKey::Between(s("a#03"), s("a#03")),
        SortKey::Between(s("b"), s("a")),
        SortKey::Between(s(""), s("a#02")),
        SortKey::AtLeast(s("ab")),
        SortKey::After(s("ab")),
        SortKey::AtMost(s("ab")),
        SortKey::Before(s("ab")),
        SortKey::Before(s("")),
        SortKey::After(s("")),
    ]
}

#[tokio::test]
async fn query_every_sort_key_on_table_and_index() {
    let s = store("query").await;
    let all = seed_sorted(&s).await;
    for (index, pk, attr) in [(Index::Primary, "Q", "SK"), (Index::Gsi1, "G", "GSI1SK")] {
        for sk in sort_keys() {
            for forward in [true, false] {
                let q = Query::index(index, pk).sk(sk.clone()).forward(forward);
                let page = s.query(q).await.unwrap();
                let got: Vec<&str> = page.items.iter().map(|i| i[attr].as_str().unwrap()).collect();
                let mut want: Vec<&str> = all.iter().map(String::as_str).filter(|k| sk.matches(k)).collect();
                if !forward {
                    want.reverse();
                }
                assert_eq!(got, want, "{index:?} {sk:?} forward={forward}");
                assert!(page.cursor.is_none(), "{index:?} {sk:?}: one page holds all");
            }
        }
    }
}

async fn all_pages(s: &DynamoStore, q: Query) -> (Vec<Item>, usize) {
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<Cursor>);
    loop {
        // Through the encoded form, as the API hands it to clients.
        let c = cursor.map(|c| Cursor::decode(&c.encode()).expect("cursor decodes"));
        let page = s.query(q.clone().after(c)).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= q.limit);
        items.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return (items, pages),
        }
        assert!(pages < 50, "paging does not end");
    }
}

#[tokio::test]
async fn query_filters_after_limit() {
    let s = store("filter").await;
    seed_sorted(&s).await;
    // Filters apply to the examined items: a page of 4 examined, of which 2 are odd.
    let q = Query::index(Index::Gsi1, "G").limit(4).filter(Condition::Equals("odd".into(), json!(true)));
    let page = s.query(q.clone()).await.unwrap();
    let ns: Vec<i64> = page.items.iter().map(|i| i["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [1, 3]);
    let (items, _) = all_pages(&s, q).await;
    let ns: Vec<i64> = items.iter().map(|i| i["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [1, 3, 5, 7]);

    let q = Query::partition("QI")
        .prefix("id")
        .filter(Condition::Or(vec![Condition::AtLeast("n".into(), 6), Condition::AttrAbsent("odd".into())]));
    let ns: Vec<i64> = s.query(q).await.unwrap().items.iter().map(|i| i["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [6, 7]);

    // Filters on key attributes (which DynamoDB refuses server-side) still work.
    let q = Query::index(Index::Gsi1, "G").filter(Condition::Equals("GSI1SK".into(), json!("ab")));
    let page = s.query(q).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0]["n"], json!(4));

    // Expired items are dropped from filtered pages too.
    s.put(item("QI", "id9", json!({"n": 9, "ttl": past()})), None).await.unwrap();
    let q = Query::partition("QI").prefix("id").filter(Condition::AtLeast("n".into(), 7));
    let ns: Vec<i64> = s.query(q).await.unwrap().items.iter().map(|i| i["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [7]);
}

#[tokio::test]
async fn query_rejects_bad_requests() {
    let s = store("query-bad").await;
    let err = s.query(Query::partition("Q").limit(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    let mut last = std::collections::BTreeMap::new();
    last.insert("PK".to_owned(), "Q".to_owned());
    let err = s.query(Query::partition("Q").after(Some(Cursor { last }))).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn batch_get_many_keys_in_order() {
    let s = store("batch").await;
    let ops: Vec<TxOp> = (0..100).map(|i| TxOp::put(item("B", &format!("{i:03}"), json!({"i": i})))).collect();
    s.transact(ops).await.unwrap();
    let ops: Vec<TxOp> =
        (100..230).step_by(2).map(|i| TxOp::put(item("B", &format!("{i:03}"), json!({"i": i})))).collect();
    s.transact(ops).await.unwrap();
    s.put(item("B", "expired", json!({"ttl": past()})), None).await.unwrap();

    // 250 keys, reversed, with absent, expired and repeated ones.
    let mut keys: Vec<Key> = (0..248).rev().map(|i| key("B", &format!("{i:03}"))).collect();
    keys.push(key("B", "expired"));
    keys.push(key("B", "005"));
    s.reset_request_counts();
    let got = s.batch_get(&keys).await.unwrap();
    let want: Vec<i64> = (0..248).rev().filter(|i| *i < 100 || (*i < 230 && i % 2 == 0)).chain([5]).collect();
    let is: Vec<i64> = got.iter().map(|i| i["i"].as_i64().unwrap()).collect();
    assert_eq!(is, want);
    assert_eq!(s.request_counts().batch_get, 3);
    assert_eq!(s.batch_get(&[]).await.unwrap(), Vec::<Item>::new());
}

#[tokio::test]
async fn transact_all_or_nothing() {
    let s = store("tx").await;
    s.put(item("T", "a", json!({"version": 1})), None).await.unwrap();
    s.put(item("T", "c", json!({"keep": true})), None).await.unwrap();
    s.put(item("T", "d", json!({"locked": true})), None).await.unwrap();

    let ops = |d_cond: Condition| {
        vec![
            TxOp::update_if(key("T", "a"), Update::new().add("version", 1).max("hi", 5), Condition::VersionEquals(1)),
            TxOp::put_if(item("T", "b", json!({"new": true})), Condition::NotExists),
            TxOp::delete(key("T", "c")),
            TxOp::check(key("T", "d"), d_cond),
        ]
    };
    let before = s.query(Query::partition("T")).await.unwrap().items;
    let res = s.transact(ops(Condition::AttrAbsent("locked".into()))).await;
    assert_eq!(res, Err(StoreError::ConditionFailed { op: Some(3) }));
    assert_eq!(s.query(Query::partition("T")).await.unwrap().items, before, "nothing applied");

    s.transact(ops(Condition::AttrPresent("locked".into()))).await.unwrap();
    let after = s.query(Query::partition("T")).await.unwrap().items;
    assert_eq!(
        after,
        vec![
            item("T", "a", json!({"version": 2, "hi": 5})),
            item("T", "b", json!({"new": true})),
            item("T", "d", json!({"locked": true})),
        ]
    );

    // The failing part's index is reported, whichever it is.
    let res = s
        .transact(vec![
            TxOp::put(item("T", "x", json!({}))),
            TxOp::update_if(key("T", "a"), Update::new().add("version", 1), Condition::VersionEquals(1)),
        ])
        .await;
    assert_eq!(res, Err(StoreError::ConditionFailed { op: Some(1) }));
    assert_eq!(s.get(&key("T", "x")).await.unwrap(), None);
}

#[tokio::test]
async fn transact_rejects_malformed_requests() {
    let s = store("tx-bad").await;
    let err = s.transact(vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    let twice = vec![TxOp::put(item("T", "1", json!({}))), TxOp::delete(key("T", "1"))];
    assert!(matches!(s.transact(twice).await.unwrap_err(), StoreError::Invalid(_)));
    let many: Vec<TxOp> = (0..101).map(|i| TxOp::put(item("T", &i.to_string(), json!({})))).collect();
    assert!(matches!(s.transact(many).await.unwrap_err(), StoreError::Invalid(_)));
    assert_eq!(s.request_counts().transact, 0);
}

#[tokio::test]
async fn items_too_large_are_refused() {
    let s = store("large").await;
    let big = "x".repeat(300 * 1024);
    let err = s.put(item("L", "1", json!({ "a": big, "b": big })), None).await.unwrap_err();
    assert!(matches!(err, StoreError::ItemTooLarge { size } if size > 600 * 1024), "{err:?}");
    let err = s.transact(vec![TxOp::put(item("L", "1", json!({ "a": big, "b": big })))]).await.unwrap_err();
    assert!(matches!(err, StoreError::ItemTooLarge { .. }), "{err:?}");
    assert_eq!(s.request_counts().total(), 0, "refused before sending");

    // An update that grows a stored item past the limit: only DynamoDB can tell.
    s.put(item("L", "2", json!({ "a": big })), None).await.unwrap();
    let err = s.update(&key("L", "2"), Update::new().set("b", big.clone()), None).await.unwrap_err();
    assert!(matches!(err, StoreError::ItemTooLarge { .. }), "{err:?}");
    assert!(!s.get(&key("L", "2")).await.unwrap().unwrap().contains_key("b"));
}

/// The conformance suite's bad keys (tests/dynamo_conformance.rs runs it too), refused here before
/// a single request reaches DynamoDB.
#[tokio::test]
async fn bad_keys_are_refused_before_any_request() {
    let s = std::sync::Arc::new(store("badkey").await);
    linkcrm_storage::conformance::bad_keys_are_invalid(s.clone()).await;
    assert_eq!(s.request_counts().total(), 0);
}

#[tokio::test]
async fn backend_failures_are_classified() {
    // No table: a deployment error, not a retryable one.
    let moto = Moto::shared().unwrap();
    let s = DynamoStore::for_endpoint(&moto.endpoint, &unique_table_name("no-such-table"));
    let err = s.get(&key("A", "1")).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");

    // Nothing listening: retryable.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = DynamoStore::for_endpoint(&format!("http://127.0.0.1:{port}"), "t");
    let err = s.get(&key("A", "1")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
