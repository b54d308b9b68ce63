//! Replay equals live: random operations from several workspaces (some at once) through the real
//! router, then every relationship, account and campaign (its members' attribution and counters)
//! rebuilt from events alone must match what the live write path stored. Many cases on the embedded store, a few on DynamoDB (moto).

use axum::body::Body;
use axum::http::{Method, Request};
use linkcrm_api::crm::replay;
use linkcrm_domain::derive::CoolingPolicy;
use linkcrm_storage::DynStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_replay_property_key";
const WORKSPACES: usize = 3;
const DOMAINS: [&str; 3] = ["engineering-blog.com", "devleadweekly.com", "pm-weekly.io"];

#[derive(Clone, Debug)]
enum Op {
    Event { ws: usize, acct: usize, kind: usize, day: u32, out_of_office: bool },
    Status { ws: usize, acct: usize, status: usize },
    Price { ws: usize, acct: usize, price: u32 },
    DoNotContact { ws: usize, acct: usize },
}

const KINDS: [&str; 7] =
    ["EMAIL_SENT", "EMAIL_SENT", "EMAIL_RECEIVED", "NOTE_ADDED", "CALL_SCHEDULED", "LINK_PLACED", "REJECTED"];
const STATUSES: [&str; 5] = ["PROSPECTING", "QUEUED", "ACTIVELY_ENGAGED", "NOT_INTERESTED", "APPROVED_TO_CONTACT"];

fn op() -> impl Strategy<Value = Op> {
    let w = 0..WORKSPACES;
    let a = 0..DOMAINS.len();
    prop_oneof![
        6 => (w.clone(), a.clone(), 0..KINDS.len(), 1u32..28, proptest::bool::weighted(0.15))
            .prop_map(|(ws, acct, kind, day, out_of_office)| Op::Event { ws, acct, kind, day, out_of_office }),
        2 => (w.clone(), a.clone(), 0..STATUSES.len()).prop_map(|(ws, acct, status)| Op::Status { ws, acct, status }),
        1 => (w.clone(), a.clone(), 100u32..900).prop_map(|(ws, acct, price)| Op::Price { ws, acct, price }),
        1 => (w, a).prop_map(|(ws, acct)| Op::DoNotContact { ws, acct }),
    ]
}

struct World {
    router: axum::Router,
    store: DynStore,
    workspaces: Vec<String>,
    /// rels[ws][acct]
    rels: Vec<Vec<String>>,
    accounts: Vec<String>,
    /// One custom campaign per workspace, with its three relationships.
    campaigns: Vec<String>,
}

async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    ws: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(path).header("Authorization", format!("Bearer {KEY}"));
    if let Some(ws) = ws {
        req = req.header("X-Workspace-Id", ws);
    }
    let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn world(store: DynStore) -> World {
    linkcrm_api::platform::create_agency(&store, "Replay agency", Some(KEY.into())).await.unwrap();
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let router = linkcrm_api::router(&app);
    let mut workspaces = Vec::new();
    for i in 0..WORKSPACES {
        let (s, b) = call(&router, Method::POST, "/v1/workspaces", None, Some(json!({"name": format!("ws{i}")}))).await;
        assert_eq!(s, 201, "{b}");
        workspaces.push(b["id"].as_str().unwrap().to_owned());
    }
    let mut rels = Vec::new();
    let mut accounts = vec![String::new(); DOMAINS.len()];
    for ws in &workspaces {
        let mut row = Vec::new();
        for (a, d) in DOMAINS.iter().enumerate() {
            let path = "/v1/link-building/crm/relationship";
            let (s, b) = call(&router, Method::POST, path, Some(ws), Some(json!({"domain": d}))).await;
            assert_eq!(s, 201, "{b}");
            accounts[a] = b["accountId"].as_str().unwrap().to_owned();
            row.push(b["id"].as_str().unwrap().to_owned());
        }
        rels.push(row);
    }
    let mut campaigns = Vec::new();
    for (ws, row) in workspaces.iter().zip(&rels) {
        let body = json!({"type": "custom", "name": "Replayed", "relationshipIds": row});
        let (s, b) = call(&router, Method::POST, "/v1/link-building/campaign", Some(ws), Some(body)).await;
        assert_eq!(s, 201, "{b}");
        campaigns.push(b["id"].as_str().unwrap().to_owned());
    }
    World { router, store, workspaces, rels, accounts, campaigns }
}

async fn apply(w: &World, op: &Op) -> u16 {
    match op {
        Op::Event { ws, acct, kind, day, out_of_office } => {
            let mut body = json!({
                "relationshipId": w.rels[*ws][*acct], "type": KINDS[*kind],
                "occurredAt": format!("2026-05-{day:02}T10:00:00Z"),
            });
            match KINDS[*kind] {
                // The first EMAIL_SENT of KINDS is the campaign's send, the second a send outside it.
                "EMAIL_SENT" if *kind == 0 => body["metadata"] = json!({"campaignId": w.campaigns[*ws]}),
                "LINK_PLACED" => body["metadata"] = json!({"linkUrl": "https://example.com/post"}),
                "EMAIL_RECEIVED" if *out_of_office => body["metadata"] = json!({"replyClass": "out_of_office"}),
                _ => {}
            }
            call(&w.router, Method::POST, "/v1/link-building/crm/event", Some(&w.workspaces[*ws]), Some(body)).await.0
        }
        Op::Status { ws, acct, status } => {
            let path = format!("/v1/link-building/crm/relationship/{}", w.rels[*ws][*acct]);
            call(&w.router, Method::PATCH, &path, Some(&w.workspaces[*ws]), Some(json!({"status": STATUSES[*status]})))
                .await
                .0
        }
        Op::Price { ws, acct, price } => {
            let path = format!("/v1/link-building/crm/account/{}", w.accounts[*acct]);
            call(&w.router, Method::PATCH, &path, Some(&w.workspaces[*ws]), Some(json!({"priceLinkInsertion": price})))
                .await
                .0
        }
        Op::DoNotContact { ws, acct } => {
            let path = format!("/v1/link-building/crm/account/{}/do-not-contact", w.accounts[*acct]);
            call(
                &w.router,
                Method::POST,
                &path,
                Some(&w.workspaces[*ws]),
                Some(json!({"reason": "asked to be removed"})),
            )
            .await
            .0
        }
    }
}

/// Runs the batches (each batch's operations at once) and checks replay against live state.
async fn replay_matches_live(store: DynStore, batches: Vec<Vec<Op>>) {
    let w = world(store).await;
    for batch in &batches {
        let results = futures::future::join_all(batch.iter().map(|op| apply(&w, op))).await;
        for (op, status) in batch.iter().zip(results) {
            // 409: lost a race too often (the operation then changed nothing).
            assert!([200, 201, 409].contains(&status), "{op:?} answered {status}");
        }
    }
    let report = replay::run(&w.store, CoolingPolicy::from_env(), false).await.unwrap();
    assert_eq!(report.accounts, DOMAINS.len());
    assert_eq!(report.relationships, WORKSPACES * DOMAINS.len());
    assert_eq!(report.campaigns, WORKSPACES);
    assert!(report.mismatches.is_empty(), "replay differs from live state: {:#?}", report.mismatches);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn batches() -> impl Strategy<Value = Vec<Vec<Op>>> {
    proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]
    #[test]
    fn replay_equals_live_on_the_embedded_store(batches in batches()) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
            replay_matches_live(store, batches).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, .. ProptestConfig::default() })]
    #[test]
    fn replay_equals_live_on_dynamodb(batches in batches()) {
        runtime().block_on(async {
            let moto = linkcrm_testkit::Moto::shared().unwrap();
            let table = linkcrm_testkit::unique_table_name("replay");
            let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&moto.endpoint, &table);
            store.create_table().await.unwrap();
            replay_matches_live(Arc::new(store), batches).await;
        });
    }
}

/// Replay notices a derived field that no event explains, and repairs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_detects_and_repairs_drift() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let w = world(store.clone()).await;
    apply(&w, &Op::Event { ws: 0, acct: 0, kind: 0, day: 3, out_of_office: false }).await;
    let rel_key = linkcrm_api::crm::keys::relationship(&w.rels[0][0]);
    store.update(&rel_key, linkcrm_storage::Update::new().set("status", "LINK_PLACED"), None).await.unwrap();
    let acct_key = linkcrm_api::crm::keys::account(&w.accounts[0]);
    store.update(&acct_key, linkcrm_storage::Update::new().add("contactAttemptCount", 5), None).await.unwrap();
    apply(&w, &Op::Price { ws: 1, acct: 1, price: 450 }).await;
    let price_key = linkcrm_api::crm::keys::account(&w.accounts[1]);
    store.update(&price_key, linkcrm_storage::Update::new().set("priceLinkInsertion", 999), None).await.unwrap();
    let report = replay::run(&store, CoolingPolicy::default(), true).await.unwrap();
    let kinds: Vec<&str> = report.mismatches.iter().map(|m| m.kind).collect();
    assert_eq!(kinds.len(), 3, "{:#?}", report.mismatches);
    assert!(kinds.contains(&"account") && kinds.contains(&"relationship"));
    assert_eq!(report.repaired, 3);
    let again = replay::run(&store, CoolingPolicy::default(), false).await.unwrap();
    assert!(again.mismatches.is_empty(), "{:#?}", again.mismatches);
    let rel = store.get(&rel_key).await.unwrap().unwrap();
    assert_eq!(rel["status"], "CONTACTED_BY_US");
    assert_eq!(
        store.get(&price_key).await.unwrap().unwrap()["priceLinkInsertion"],
        450,
        "prices come back from the log"
    );
}

/// A campaign counter no event explains is a mismatch replay reports (so the property above
/// can fail on campaigns too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_notices_a_campaign_counter_no_event_explains() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let w = world(store.clone()).await;
    apply(&w, &Op::Event { ws: 0, acct: 0, kind: 0, day: 3, out_of_office: false }).await;
    let clean = replay::run(&store, CoolingPolicy::default(), false).await.unwrap();
    assert!(clean.mismatches.is_empty(), "{:#?}", clean.mismatches);
    let key = linkcrm_api::crm::keys::campaign(&w.campaigns[0]);
    assert_eq!(store.get(&key).await.unwrap().unwrap()["sent"], 1, "the campaign's send counted live");
    store.update(&key, linkcrm_storage::Update::new().add("sent", 3), None).await.unwrap();
    let report = replay::run(&store, CoolingPolicy::default(), false).await.unwrap();
    assert_eq!(report.mismatches.len(), 1, "{:#?}", report.mismatches);
    assert!(format!("{:?}", report.mismatches[0]).contains(&w.campaigns[0]), "{:#?}", report.mismatches);
}
