//! Scheduled bulk actions with an injected clock: the tick starts what is due from the due index
//! (once, however often it runs), the run's children execute through the same job handler the
//! workers run, and a schedule whose key was revoked is paused instead of run.

use axum::body::Body;
use axum::http::{Method, Request};
use chrono::{Duration, Utc};
use linkcrm_agency::schedule::{run_due, Tick};
use linkcrm_jobs::{JobQueue, StoreQueue};
use linkcrm_storage::Update;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_bulk_schedule_key";

async fn call(router: &axum::Router, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Authorization", format!("Bearer {KEY}"))
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Runs every job on the work queue until it is empty.
async fn drain(app: &Arc<linkcrm_api::App>) -> usize {
    let queue = StoreQueue::new(app.store.clone(), linkcrm_domain::jobs::WORK_QUEUE, 5);
    let workers = linkcrm_api::jobs::Workers::from_env().unwrap();
    let mut ran = 0;
    loop {
        let got = queue.receive(10, std::time::Duration::from_secs(30), std::time::Duration::ZERO).await.unwrap();
        if got.is_empty() {
            return ran;
        }
        for d in got {
            linkcrm_api::jobs::handle(app, &workers, &d).await.unwrap();
            queue.ack(&d.receipt).await.unwrap();
            ran += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_schedules_start_once_and_revoked_keys_pause_them() {
    let dir = tempfile::tempdir().unwrap();
    let store: linkcrm_storage::DynStore =
        Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let (agency, _) = linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let router = linkcrm_api::router(&app);
    for name in ["Acme", "Beta"] {
        let (s, _) = call(&router, Method::POST, "/v1/workspaces", Some(json!({ "name": name }))).await;
        assert_eq!(s, 201);
    }
    let ask = json!({ "action": "link_building.crm.relationship.create", "workspaces": "all",
                      "config": { "domain": "weekly-partner.com" }, "schedule": "daily:06:00", "timeZone": "America/New_York" });
    let (s, sched) = call(&router, Method::POST, "/v1/workspaces/bulk-action", Some(ask)).await;
    assert_eq!(s, 201, "{sched}");
    let id = sched["id"].as_str().unwrap().to_owned();
    let next = linkcrm_domain::time::parse(sched["nextRunAt"].as_str().unwrap()).unwrap();

    // Not due yet: nothing starts.
    assert_eq!(run_due(&app, next - Duration::seconds(1), 100).await.unwrap(), Tick::default());
    // Due: one run; a second tick at the same moment starts nothing more.
    let t = run_due(&app, next + Duration::seconds(30), 100).await.unwrap();
    assert_eq!(t.started, 1, "{t:?}");
    assert_eq!(run_due(&app, next + Duration::seconds(40), 100).await.unwrap().started, 0);
    let (_, s2) = call(&router, Method::GET, &format!("/v1/workspaces/bulk-action/schedules/{id}"), None).await;
    let inv = s2["lastInvocationId"].as_str().unwrap().to_owned();
    assert_eq!(linkcrm_domain::time::parse(s2["nextRunAt"].as_str().unwrap()).unwrap(), next + Duration::days(1));
    // Its children run through the job handler: one relationship per workspace.
    assert!(drain(&app).await >= 3, "a fan job and a child per workspace");
    let (_, run) = call(&router, Method::GET, &format!("/v1/workspaces/bulk-action/{inv}"), None).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["scheduleId"], id.as_str());
    assert_eq!(run["succeeded"], 2);

    // The key is revoked: the next due run pauses the schedule instead of running.
    let hash = linkcrm_api::auth::hash_secret(KEY);
    store
        .update(&linkcrm_api::keys::api_key_auth(&hash), Update::new().set("revokedAt", Utc::now().to_rfc3339()), None)
        .await
        .unwrap();
    let t = run_due(&app, next + Duration::days(1) + Duration::seconds(5), 100).await.unwrap();
    assert_eq!((t.started, t.paused), (0, 1), "{t:?}");
    let item = store.get(&linkcrm_agency::keys::schedule(&agency.id, &id)).await.unwrap();
    let item = item.unwrap_or_else(|| panic!("schedule {id}"));
    assert_eq!(item["status"], "paused");
    assert_eq!(item["pausedReason"], "key_revoked");
    assert!(item.get("GSI3PK").is_none(), "out of the due index");
    assert_eq!(run_due(&app, next + Duration::days(9), 100).await.unwrap(), Tick::default());
}
