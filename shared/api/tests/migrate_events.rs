//! `linkcrm store migrate`: events written in the old five-index layout are found, moved to the
//! current three-index layout, and then read by every event list as if written today. A second
//! run finds nothing.

use axum::http::Method;
use linkcrm_api::crm::migrate;
use linkcrm_storage::{DynStore, Key, Update};
use linkcrm_testkit::http::{serve, Client};
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "sk_live_agency_migrate_events_key";

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        list["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn events_in_the_old_layout_are_moved_and_listed_again() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let agency = linkcrm_api::platform::create_agency(&store, "Migrating agency", Some(KEY.into())).await.unwrap().0;
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let agency_client = Client::new(&serve(linkcrm_api::router(&app)).await, KEY);
    let ws = agency_client.ok(Method::POST, "/v1/workspaces", Some(json!({"name": "old data"})), 201).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let client = agency_client.in_workspace(&ws);
    let rel_path = "/v1/link-building/crm/relationship";
    let rel = client.ok(Method::POST, rel_path, Some(json!({"domain": "engineering-blog.com"})), 201).await;
    let (rel_id, acct) = (rel["id"].as_str().unwrap().to_owned(), rel["accountId"].as_str().unwrap().to_owned());
    let mut events = Vec::new();
    for (i, t) in ["NOTE_ADDED", "EMAIL_SENT", "NOTE_ADDED"].iter().enumerate() {
        let body = json!({"relationshipId": rel_id, "type": t, "occurredAt": format!("2026-05-0{}T10:00:00Z", i + 1)});
        let e = client.ok(Method::POST, "/v1/link-building/crm/event", Some(body), 201).await;
        events.push(e["id"].as_str().unwrap().to_owned());
    }
    events.sort();

    // Put them back as the old layout stored them.
    for id in &events {
        let item = store.get(&Key::new(format!("EVT#{id}"), "#")).await.unwrap().unwrap();
        let sort = item["GSI1SK"].as_str().unwrap().to_owned();
        let old = Update::new()
            .set("GSI1PK", format!("REL#{rel_id}#EVTS"))
            .set("GSI3PK", format!("WS#{ws}#ACCT#{acct}#EVTS"))
            .set("GSI3SK", sort.clone())
            .set("GSI4PK", format!("AG#{}#ACCT#{acct}#EVTS", agency.id))
            .set("GSI4SK", sort)
            .set("GSI5PK", format!("ACCT#{acct}#EVTS"))
            .set("GSI5SK", id.clone());
        store.update(&Key::new(format!("EVT#{id}"), "#"), old, None).await.unwrap();
    }
    // And the account as it was before lists read `latestOrgContacts`: only the stamps.
    let acct_key = Key::new(format!("ACCT#{acct}"), "#META");
    let latest = store.get(&acct_key).await.unwrap().unwrap()["latestOrgContacts"].clone();
    assert_eq!(latest.as_array().map(Vec::len), Some(1), "the send stamped it: {latest}");
    store.update(&acct_key, Update::new().remove("latestOrgContacts"), None).await.unwrap();
    let by_rel = format!("/v1/link-building/crm/event?relationshipId={rel_id}");
    let by_acct = format!("/v1/link-building/crm/event?accountId={acct}");
    assert!(ids(&client.ok(Method::GET, &by_rel, None, 200).await).is_empty(), "the old layout is not read");

    let dry = migrate::event_indexes(&store, false).await.unwrap();
    assert_eq!((dry.events_to_move, dry.events_moved), (3, 0));
    assert_eq!((dry.accounts_to_fill, dry.accounts_filled), (1, 0));
    let done = migrate::event_indexes(&store, true).await.unwrap();
    assert_eq!((done.events_to_move, done.events_moved), (3, 3));
    assert_eq!((done.accounts_to_fill, done.accounts_filled), (1, 1));
    assert_eq!(store.get(&acct_key).await.unwrap().unwrap()["latestOrgContacts"], latest);

    assert_eq!(ids(&client.ok(Method::GET, &by_rel, None, 200).await), events);
    assert_eq!(ids(&client.ok(Method::GET, &by_acct, None, 200).await), events);
    // The agency view across workspaces (no X-Workspace-Id) reads the account partition.
    assert_eq!(ids(&agency_client.ok(Method::GET, &by_acct, None, 200).await), events);
    let item = store.get(&Key::new(format!("EVT#{}", events[0]), "#")).await.unwrap().unwrap();
    for gone in ["GSI3PK", "GSI3SK", "GSI5PK", "GSI5SK"] {
        assert!(!item.contains_key(gone), "{gone} left on the event");
    }
    // Replay reads the moved events: the account's facts match what the send stored.
    let report =
        linkcrm_api::crm::replay::run(&store, linkcrm_domain::derive::CoolingPolicy::default(), false).await.unwrap();
    assert_eq!(report.events, 3, "the account's replay read the three events through its moved partition: {report:?}");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);

    let again = migrate::event_indexes(&store, true).await.unwrap();
    assert_eq!((again.events_to_move, again.events_moved, again.accounts_to_fill), (0, 0, 0));
}
