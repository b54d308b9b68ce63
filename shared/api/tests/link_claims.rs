//! Checks of one link under claims, on a real store: a check on demand overtaken by a newer one
//! ends its invocation (`check_superseded`, nothing charged, its free check given back), the
//! newer one commits once, and a redelivered job changes nothing.

use linkcrm_api::executor::{self, Call};
use linkcrm_api::monitoring::{keys, run, track};
use linkcrm_jobs::Job;
use linkcrm_storage::{DynStore, Query};
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "sk_live_agency_link_claims_key";

async fn jobs(app: &linkcrm_api::App) -> Vec<Job> {
    let page = app
        .store
        .query(Query::partition(format!(
            "{}{}",
            linkcrm_jobs::store_queue::QUEUE_PREFIX,
            linkcrm_domain::jobs::LINKCHECK_QUEUE
        )))
        .await
        .unwrap();
    page.items
        .iter()
        .filter(|j| j.get("kind").and_then(Value::as_str) == Some("link_check"))
        .map(|j| Job::new("link_check", j.get("payload").cloned().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overtaken_check_ends_its_invocation_and_gives_its_free_check_back() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    let app =
        linkcrm_api::app(store, linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() }).await.unwrap();
    let ws =
        executor::execute(&app, "workspaces.create", &Call::with_key(KEY), json!({ "name": "Claims" })).await.unwrap();
    let ws = ws.response.body.unwrap()["id"].as_str().unwrap().to_owned();
    let call = Call::with_key(KEY).in_workspace(ws.clone());
    let run_op = |name: &'static str, input: Value| {
        let (app, call) = (app.clone(), call.clone());
        async move { executor::execute(&app, name, &call, input).await.unwrap().response.body.unwrap() }
    };
    let rel = run_op("link_building.crm.relationship.create", json!({ "domain": "claims-blog.com" })).await;
    let rel = rel["id"].as_str().unwrap().to_owned();
    // No target: each check is `unreachable` without a fetch (what it found is not this test's).
    let evt = run_op(
        "link_building.crm.event.create",
        json!({ "relationshipId": rel, "type": "LINK_PLACED", "metadata": { "linkUrl": "https://claims-blog.com/post" } }),
    )
    .await;
    let event = app.store.get(&linkcrm_api::crm::keys::event(evt["id"].as_str().unwrap())).await.unwrap().unwrap();
    let track::Started::Made(link) = track::start(&app, &event, std::time::Duration::ZERO).await.unwrap() else {
        panic!("the link is new")
    };

    let first = run_op("link_building.links.check", json!({ "id": link })).await;
    let second = run_op("link_building.links.check", json!({ "id": link })).await;
    assert_eq!((first["billed"].as_str(), second["billed"].as_str()), (Some("free"), Some("free")));
    let used = || async { run::used_this_month(&app, &ws, chrono::Utc::now()).await.unwrap() };
    assert_eq!(used().await, 2);
    let jobs = jobs(&app).await;
    assert_eq!(jobs.len(), 2);
    let inv_of = |j: &Job| j.payload["invocationId"].as_str().unwrap().to_owned();
    let (old, new) = if inv_of(&jobs[0]) == first["invocationId"].as_str().unwrap() {
        (jobs[0].clone(), jobs[1].clone())
    } else {
        (jobs[1].clone(), jobs[0].clone())
    };
    let status = |id: String| {
        let app = app.clone();
        async move {
            let i = app.store.get(&linkcrm_api::invocations::key(&id)).await.unwrap().unwrap();
            (i["status"].as_str().unwrap().to_owned(), i["error"]["code"].as_str().map(str::to_owned))
        }
    };

    // The overtaken one ends without checking; its free check is given back.
    run::handle(&app, &old).await.unwrap();
    assert_eq!(status(inv_of(&old)).await, ("FAILED".to_owned(), Some("check_superseded".to_owned())));
    assert_eq!(used().await, 1);
    // The newer one checks and commits once; run again (a redelivery), nothing changes.
    run::handle(&app, &new).await.unwrap();
    assert_eq!(status(inv_of(&new)).await.0, "SUCCEEDED");
    run::handle(&app, &new).await.unwrap();
    run::handle(&app, &old).await.unwrap();
    let checks = app.store.query(Query::partition(keys::checks_pk(&link))).await.unwrap();
    assert_eq!(checks.items.len(), 1);
    assert_eq!(checks.items[0]["result"], "unreachable");
    assert_eq!(used().await, 1);
}
