//! Approval expiry without a worker: the lazy path (approve/reject after `timeoutAt`), the
//! scheduled job as the approval's transaction leaves it, and the job handler's idempotence.
//! (The worker running the job at `timeoutAt` is tested black-box in tests/approval_expiry.rs.)

use axum::body::Body;
use axum::http::{Method, Request};
use linkcrm_api::approval_expiry;
use linkcrm_api::crm::records;
use linkcrm_api::invocations as inv;
use linkcrm_jobs::Job;
use linkcrm_storage::{DynStore, Query};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_approval_expiry_key";

struct Api {
    router: axum::Router,
    ws: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(path).header("Authorization", format!("Bearer {KEY}"));
        if !self.ws.is_empty() {
            req = req.header("X-Workspace-Id", &self.ws);
        }
        let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
    async fn ok(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (s, b) = self.call(method, path, body).await;
        assert_eq!(s, status, "{path}: {b}");
        b
    }
}

/// The queued expiry job of an invocation, as the approval's transaction wrote it: (SK, job).
async fn expiry_job(store: &DynStore, invocation: &str) -> (String, Job) {
    let pk = format!("{}{}", linkcrm_jobs::store_queue::QUEUE_PREFIX, approval_expiry::QUEUE);
    let page = store.query(Query::partition(pk).limit(100)).await.unwrap();
    let item = page
        .items
        .into_iter()
        .find(|i| {
            records::str_of(i, "kind") == Some(approval_expiry::JOB_KIND) && i["payload"]["invocationId"] == invocation
        })
        .expect("an expiry job");
    let job = Job {
        id: records::str_of(&item, "jobId").unwrap().to_owned(),
        kind: approval_expiry::JOB_KIND.into(),
        payload: item["payload"].clone(),
    };
    (records::str_of(&item, "SK").unwrap().to_owned(), job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_expire_lazily_and_the_job_is_idempotent() {
    // The only test in this binary: nothing else reads the variable concurrently.
    std::env::set_var("LINKCRM_APPROVAL_TIMEOUT_SECS", "1");
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let mut api = Api { router: linkcrm_api::router(&app), ws: String::new() };
    let ws = api.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": "Acme" })), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok(Method::POST, &format!("/v1/workspaces/{ws}/credits"), Some(json!({ "credits": 10 })), 201).await;
    api.ws = ws.clone();
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1" });
    api.ok(Method::POST, "/v1/mailboxes", Some(mbx), 201).await;
    let rel =
        api.ok(Method::POST, "/v1/link-building/crm/relationship", Some(json!({ "domain": "blog.com" })), 201).await;
    let (rel, acct) = (rel["id"].as_str().unwrap().to_owned(), rel["accountId"].as_str().unwrap().to_owned());
    let contact = json!({ "accountId": acct, "email": "ed@blog.com" });
    let contact = api.ok(Method::POST, "/v1/link-building/crm/contact", Some(contact), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |subject: &str| {
        let body = json!({ "contactId": contact, "subject": subject, "body": "Hi" });
        (format!("/v1/link-building/crm/relationship/{rel}/send-email"), body)
    };
    let usage = format!("/v1/workspaces/{ws}/usage");
    let get_inv = |id: &str| format!("/v1/agent/invocations/{id}");

    // Three waiting sends: one approved in time, two left to expire.
    let mut ids = Vec::new();
    for subject in ["approved in time", "approve too late", "reject too late"] {
        let (path, body) = send(subject);
        let r = api.ok(Method::POST, &path, Some(body), 202).await;
        assert_eq!(r["status"], "WAITING_APPROVAL");
        ids.push(r["invocationId"].as_str().unwrap().to_owned());
    }
    // Each approval's transaction scheduled its expiry at timeoutAt.
    for id in &ids {
        let appr_id = api.ok(Method::GET, &get_inv(id), None, 200).await["approvalId"].as_str().unwrap().to_owned();
        let approval = api.ok(Method::GET, &format!("/v1/agent/approvals/{appr_id}"), None, 200).await;
        let (sk, job) = expiry_job(&store, id).await;
        assert_eq!(job.payload, json!({ "invocationId": id, "approvalId": appr_id }));
        assert!(sk.starts_with(approval["timeoutAt"].as_str().unwrap()), "{sk} vs {approval}");
    }
    api.ok(Method::POST, &format!("{}/approve", get_inv(&ids[0])), Some(json!({})), 200).await;
    assert_eq!(api.ok(Method::GET, &usage, None, 200).await["creditsReserved"], 6.0);

    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Lazily: approving or rejecting after timeoutAt expires it and answers 409.
    for (id, action) in [(&ids[1], "approve"), (&ids[2], "reject")] {
        let (status, body) = api.call(Method::POST, &format!("{}/{action}", get_inv(id)), Some(json!({}))).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("approval_expired")), "{body}");
        let v = api.ok(Method::GET, &get_inv(id), None, 200).await;
        assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("CANCELLED"), Some("approval_expired")));
        let a = format!("/v1/agent/approvals/{}", v["approvalId"].as_str().unwrap());
        assert_eq!(api.ok(Method::GET, &a, None, 200).await["status"], "expired");
        // And again: still 409 approval_expired, not invalid_state.
        let (status, body) = api.call(Method::POST, &format!("{}/approve", get_inv(id)), Some(json!({}))).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("approval_expired")));
    }
    // The approved send's reservation stays (its send job has not run); the expired ones are released.
    let u = api.ok(Method::GET, &usage, None, 200).await;
    assert_eq!((u["creditsReserved"].as_f64(), u["creditsUsedThisCycle"].as_f64()), (Some(2.0), Some(0.0)));

    // The scheduled jobs find nothing left to do: no change to any invocation.
    for id in &ids {
        let before = store.get(&inv::key(id)).await.unwrap().unwrap();
        let (_, job) = expiry_job(&store, id).await;
        approval_expiry::handle(&app, &job).await.unwrap();
        assert_eq!(store.get(&inv::key(id)).await.unwrap().unwrap(), before, "{id} unchanged");
    }
    assert_eq!(api.ok(Method::GET, &get_inv(&ids[0]), None, 200).await["status"], "PENDING");
    assert_eq!(api.ok(Method::GET, &usage, None, 200).await["creditsReserved"], 2.0);

    // Actively: a due job expires a waiting invocation, once.
    let (path, body) = send("left alone");
    let id = api.ok(Method::POST, &path, Some(body), 202).await["invocationId"].as_str().unwrap().to_owned();
    let (_, job) = expiry_job(&store, &id).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    approval_expiry::handle(&app, &job).await.unwrap();
    let v = api.ok(Method::GET, &get_inv(&id), None, 200).await;
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("CANCELLED"), Some("approval_expired")));
    let version = v["version"].clone();
    approval_expiry::handle(&app, &job).await.unwrap();
    assert_eq!(api.ok(Method::GET, &get_inv(&id), None, 200).await["version"], version);
    assert_eq!(api.ok(Method::GET, &usage, None, 200).await["creditsReserved"], 2.0);
}
