//! Store requests per domain of a competitor campaign's pipeline, counted on DynamoDB (moto): a
//! campaign of 40 referring domains through fake Ahrefs and Apollo, its jobs run one at a time
//! in-process, every SDK call the handlers make counted (the local store queue's own polls and
//! acknowledgements are not: in AWS the jobs come from SQS). Asserts a budget per domain and
//! prints the figure BENCHMARKS.md quotes.

use axum::body::Body;
use axum::http::{Method, Request};
use linkcrm_jobs::{JobQueue, StoreQueue};
use linkcrm_storage::dynamo::{DynamoStore, RequestCounts};
use linkcrm_testkit::{FakeAhrefs, FakeApollo, FakePerson};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_pipeline_budget_key_000000000000";
const DOMAINS: usize = 20;
/// Store requests per domain researched, from research to its draft (see docs/access-patterns.md).
const BUDGET_PER_DOMAIN: f64 = 30.0;

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

fn add(a: &mut RequestCounts, b: RequestCounts) {
    a.get += b.get;
    a.put += b.put;
    a.delete += b.delete;
    a.update += b.update;
    a.query += b.query;
    a.batch_get += b.batch_get;
    a.batch_write += b.batch_write;
    a.transact += b.transact;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competitor_pipeline_stays_within_its_store_requests_per_domain() {
    let ahrefs = FakeAhrefs::start().await;
    let apollo = FakeApollo::start().await;
    let domains: Vec<String> = (0..DOMAINS).map(|i| format!("partner{i:03}.example")).collect();
    let rows: Vec<String> = domains.iter().map(|d| format!("https://{d}/post")).collect();
    ahrefs.set_backlinks("rival.com", rows.iter().map(|u| (u.as_str(), "https://rival.com/", "anchor", 50.0)));
    for d in &domains {
        apollo.add_person(
            d,
            FakePerson {
                id: format!("p-{d}"),
                first_name: "Kim".into(),
                last_name: "Editor".into(),
                title: "Editor".into(),
                seniority: "manager".into(),
                email: Some(format!("kim@{d}")),
                email_status: "verified".into(),
                ..FakePerson::default()
            },
        );
    }
    // One test in this binary: the environment is ours to set.
    std::env::set_var("LINKCRM_AHREFS_BASE_URL", &ahrefs.base_url);
    std::env::set_var("LINKCRM_AHREFS_API_KEY", &ahrefs.api_key);
    std::env::set_var("LINKCRM_APOLLO_BASE_URL", &apollo.base_url);
    std::env::set_var("LINKCRM_APOLLO_API_KEY", &apollo.api_key);

    let moto = linkcrm_testkit::Moto::shared().unwrap();
    let store = Arc::new(DynamoStore::for_endpoint(&moto.endpoint, &linkcrm_testkit::unique_table_name("pipeline")));
    store.create_table().await.unwrap();
    let dyn_store: linkcrm_storage::DynStore = store.clone();
    linkcrm_api::platform::create_agency(&dyn_store, "Pipeline agency", Some(KEY.into())).await.unwrap();
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(dyn_store.clone(), config).await.unwrap();
    let router = linkcrm_api::router(&app);
    let workers = linkcrm_api::jobs::Workers::from_env().unwrap();

    let (s, b) = call(&router, Method::POST, "/v1/workspaces", None, Some(json!({"name": "Pipeline"}))).await;
    assert_eq!(s, 201, "{b}");
    let ws = b["id"].as_str().unwrap().to_owned();
    let (s, b) =
        call(&router, Method::POST, &format!("/v1/workspaces/{ws}/credits"), None, Some(json!({"credits": 500}))).await;
    assert_eq!(s, 201, "{b}");
    let mailbox = json!({"fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                         "smtpPort": 2525, "security": "none"});
    let (s, b) = call(&router, Method::POST, "/v1/mailboxes", Some(&ws), Some(mailbox)).await;
    assert_eq!(s, 201, "{b}");
    let start = json!({"competitorDomain": "rival.com", "limit": DOMAINS, "subject": "Hi {firstName}",
                       "body": "About {domain}", "mailboxId": b["id"]});
    let (s, b) = call(&router, Method::POST, "/v1/link-building/competitor-outreach", Some(&ws), Some(start)).await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_str().unwrap().to_owned();

    // The jobs, one at a time, counting what each handler asks of the store.
    let queue = StoreQueue::new(dyn_store.clone(), linkcrm_api::discovery::QUEUE, 5);
    let mut total = RequestCounts::default();
    let mut ready = false;
    for _ in 0..2000 {
        let deliveries = queue.receive(10, Duration::from_secs(60), Duration::ZERO).await.unwrap();
        if deliveries.is_empty() {
            let (_, c) =
                call(&router, Method::GET, &format!("/v1/link-building/competitor-outreach/{id}"), Some(&ws), None)
                    .await;
            if c["stage"] == "ready" && c["draftsCount"] == DOMAINS {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for d in deliveries {
            // Sends wait for approval: nothing here runs one (no mail server needed).
            store.reset_request_counts();
            let outcome = linkcrm_api::jobs::handle(&app, &workers, &d).await;
            add(&mut total, store.request_counts());
            match outcome {
                Ok(()) => queue.ack(&d.receipt).await.unwrap(),
                Err(_) => queue.release(&d.receipt, Duration::from_millis(100)).await.unwrap(),
            }
        }
    }
    assert!(ready, "the pipeline reached its drafts");
    let per_domain = total.total() as f64 / DOMAINS as f64;
    println!(
        "{}",
        json!({ "pipeline": "competitor", "domains": DOMAINS, "storeRequests": total.total(),
                "perDomain": (per_domain * 10.0).round() / 10.0, "counts": format!("{total:?}") })
    );
    assert!(
        per_domain <= BUDGET_PER_DOMAIN,
        "{per_domain} store requests per domain, budget {BUDGET_PER_DOMAIN}: {total:?}"
    );
}
