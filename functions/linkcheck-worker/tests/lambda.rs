//! The link-check worker Lambda binary, run as Lambda runs it (`linkcrm_testkit::lambda`), on the
//! AWS path: a LINK_PLACED commits its `link_track` job to the table (DynamoDB on moto), the
//! forwarder moves it to the linkcheck queue (SQS on moto) and the binary starts monitoring the
//! link; the binary's EventBridge schedule then claims the due link and queues its check, and the
//! check, run by the binary against a page served here, finds the link live.

use linkcrm_jobs::{Delivery, Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_testkit::http::{serve, Client};
use linkcrm_testkit::lambda::{sqs_event, sqs_record};
use linkcrm_testkit::{unique_table_name, Moto};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:linkcheck";

fn scheduled_event() -> Value {
    json!({ "version": "0", "id": "4bf73129-1428-4cd3-a780-95db273d1603", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-12-07T12:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/link-checks"],
            "detail": {} })
}

async fn page_server() -> String {
    use axum::routing::get;
    let html = r#"<html><body><p>See <a href="https://our-site.example/guide">our guide</a>.</p></body></html>"#;
    let app = axum::Router::new()
        .route("/post", get(move || async move { ([("content-type", "text/html; charset=utf-8")], html) }))
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }));
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_link_is_tracked_dispatched_and_checked() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let table = unique_table_name("linkcheck-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: linkcrm_storage::DynStore = Arc::new(store);
    let queue = Arc::new(SqsQueue::for_endpoint(&endpoint, &format!("{table}-linkcheck"), 5).await.unwrap());
    let forwarder = Forwarder::new(store.clone(), "linkcheck")
        .route("link_track", queue.clone() as Arc<dyn JobQueue>)
        .route("link_check", queue.clone() as Arc<dyn JobQueue>)
        .with_stream_grace(Duration::ZERO);
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let base = serve(linkcrm_api::router(&app)).await;
    let (_, secret) = linkcrm_api::platform::create_agency(&store, "Agency", None).await.unwrap();
    let agency = Client::new(&base, &secret);
    let ws = agency.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": "Client A" })), 201).await;
    let api = agency.in_workspace(ws["id"].as_str().unwrap());
    let pages = page_server().await;
    let rel = api
        .ok(Method::POST, "/v1/link-building/crm/relationship", Some(json!({"domain": "partner-blog.com"})), 201)
        .await;
    let rel = rel["id"].as_str().unwrap().to_owned();
    let placed = json!({ "relationshipId": rel, "type": "LINK_PLACED",
                         "metadata": { "linkUrl": format!("{pages}/post"), "targetUrl": "https://our-site.example/guide" } });
    let event = api.ok(Method::POST, "/v1/link-building/crm/event", Some(placed), 201).await;

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("LINKCRM_QUEUE_URL", queue.url()),
        ("LINKCRM_ALLOW_PRIVATE_TARGETS", "true"),
        ("RUST_LOG", "info"),
    ];
    let bin = env!("CARGO_BIN_EXE_linkcheck-worker");
    let receive = async || -> Vec<Delivery> {
        forwarder.forward_due().await.unwrap();
        queue.receive(10, Duration::from_secs(60), Duration::from_millis(500)).await.unwrap()
    };
    let run = async |deliveries: &[Delivery]| -> Value {
        let records = deliveries
            .iter()
            .map(|d| {
                let body = serde_json::to_string(&d.job).unwrap();
                sqs_record(&format!("msg-{}", d.job.id), &d.receipt, &body, d.receive_count, SOURCE_ARN)
            })
            .collect();
        linkcrm_testkit::lambda::invoke(bin, &env, sqs_event(records)).await
    };

    // The event's job, through the queue: the link is monitored, pending, due now.
    let jobs = receive().await;
    assert_eq!(jobs.iter().map(|d| d.job.kind.as_str()).collect::<Vec<_>>(), ["link_track"]);
    assert_eq!(run(&jobs).await["batchItemFailures"], json!([]));
    for d in &jobs {
        queue.ack(&d.receipt).await.unwrap();
    }
    let links = api.ok(Method::GET, "/v1/link-building/links", None, 200).await;
    let link = &links["data"][0];
    let id = link["id"].as_str().unwrap().to_owned();
    assert_eq!(id.strip_prefix("lnk_"), event["id"].as_str().unwrap().strip_prefix("evt_"), "{links}");
    assert_eq!(link["state"], "pending", "{links}");

    // The schedule claims it once; a second tick at once finds nothing due.
    let tick = linkcrm_testkit::lambda::invoke(bin, &env, scheduled_event()).await;
    assert_eq!(tick["dispatched"], 1, "{tick}");
    let again = linkcrm_testkit::lambda::invoke(bin, &env, scheduled_event()).await;
    assert_eq!(again["dispatched"], 0, "{again}");
    let jobs = receive().await;
    assert_eq!(jobs.iter().map(|d| d.job.kind.as_str()).collect::<Vec<_>>(), ["link_check"]);
    assert_eq!(run(&jobs).await["batchItemFailures"], json!([]));
    let got = api.ok(Method::GET, &format!("/v1/link-building/links/{id}"), None, 200).await;
    assert_eq!((got["state"].as_str(), got["lastResult"].as_str()), (Some("live"), Some("live")), "{got}");
    assert_eq!(got["lastCheck"]["found"]["anchor"], "our guide", "{got}");
    // The same delivery again (a redelivery after its worker died): nothing more is written.
    assert_eq!(run(&jobs).await["batchItemFailures"], json!([]));
    let checks = api.ok(Method::GET, &format!("/v1/link-building/links/{id}/checks"), None, 200).await;
    assert_eq!(checks["data"].as_array().map(Vec::len), Some(1), "{checks}");
    let r = api.ok(Method::GET, &format!("/v1/link-building/crm/relationship/{rel}"), None, 200).await;
    assert_eq!(r["linkStatus"], "live", "{r}");
}
