//! Scheduled bulk actions with an injected clock: the tick starts what is due from the due index
//! (once, however often it runs), the run's children execute through the same job handler the
//! workers run, and a schedule whose key was revoked is paused instead of run.

use axum::body::Body;
use axum::http::{Method, Request};
use chrono::Duration;
use linkcrm_agency::schedule::{run_due, Tick};
use linkcrm_jobs::{JobQueue, StoreQueue};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_bulk_schedule_key";

async fn call(router: &axum::Router, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(router, KEY, method, path, body).await
}

async fn call_as(router: &axum::Router, key: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Authorization", format!("Bearer {key}"))
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
    let mut ids = Vec::new();
    for name in ["Acme", "Beta"] {
        let (s, w) = call(&router, Method::POST, "/v1/workspaces", Some(json!({ "name": name }))).await;
        assert_eq!(s, 201);
        ids.push(w["id"].as_str().unwrap().to_owned());
    }
    let ask = json!({ "action": "link_building.crm.relationship.create", "workspaces": "all",
                      "config": { "domain": "weekly-partner.com" }, "schedule": "daily:06:00", "timeZone": "America/New_York" });
    // The schedule is made with a second agency key, the one revoked below.
    let (s, made) = call(&router, Method::POST, "/v1/agency/api-keys", Some(json!({ "name": "Scheduler" }))).await;
    assert_eq!(s, 201, "{made}");
    let (sched_key, sched_key_id) = (made["key"].as_str().unwrap().to_owned(), made["id"].as_str().unwrap().to_owned());
    assert!(sched_key.starts_with("sk_live_agency_"), "{made}");
    assert!(made["workspaceId"].is_null(), "{made}");
    let (s, sched) = call_as(&router, &sched_key, Method::POST, "/v1/workspaces/bulk-action", Some(ask)).await;
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

    // The key is revoked through the API: it stops working at once, and the next due run pauses
    // the schedule instead of running.
    let (s, _) = call(&router, Method::DELETE, &format!("/v1/agency/api-keys/{sched_key_id}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = call_as(&router, &sched_key, Method::GET, "/v1/workspaces", None).await;
    assert_eq!(s, 401);
    let (s, listed) = call(&router, Method::GET, "/v1/agency/api-keys", None).await;
    assert_eq!(s, 200, "{listed}");
    let rows = listed["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(rows.iter().any(|k| k["id"] == sched_key_id.as_str() && k["revokedAt"].is_string()), "{listed}");
    assert!(rows.iter().all(|k| k.get("key").is_none() && k.get("hash").is_none()), "no secrets: {listed}");
    // The agency's last working key cannot be revoked; a workspace key cannot manage agency keys.
    let own = rows.iter().find(|k| k["revokedAt"].is_null()).unwrap()["id"].as_str().unwrap().to_owned();
    let (s, e) = call(&router, Method::DELETE, &format!("/v1/agency/api-keys/{own}"), None).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("last_agency_key")), "{e}");
    let ws0 = ids[0].clone();
    let (s, wk) = call(
        &router,
        Method::POST,
        &format!("/v1/workspaces/{ws0}/api-keys"),
        Some(json!({ "name": "admin", "scopes": ["workspaces:admin"] })),
    )
    .await;
    assert_eq!(s, 201, "{wk}");
    let (s, e) = call_as(&router, wk["key"].as_str().unwrap(), Method::GET, "/v1/agency/api-keys", None).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("agency_key_required")), "{e}");
    let t = run_due(&app, next + Duration::days(1) + Duration::seconds(5), 100).await.unwrap();
    assert_eq!((t.started, t.paused), (0, 1), "{t:?}");
    let item = store.get(&linkcrm_agency::keys::schedule(&agency.id, &id)).await.unwrap();
    let item = item.unwrap_or_else(|| panic!("schedule {id}"));
    assert_eq!(item["status"], "paused");
    assert_eq!(item["pausedReason"], "key_revoked");
    assert!(item.get("GSI3PK").is_none(), "out of the due index");
    assert_eq!(run_due(&app, next + Duration::days(9), 100).await.unwrap(), Tick::default());
}
