//! The discovery worker Lambda binary, run as Lambda runs it (`linkcrm_testkit::lambda`), on the
//! AWS path end to end: the API (in-process, over DynamoDB on moto) accepts a discovery; the
//! forwarder moves its job to the discover queue (SQS on moto); the queue's record is handed to the
//! binary, which asks a fake Apollo (its documented search and bulk-match shapes) and finishes the
//! invocation with its charge.

use linkcrm_jobs::{Delivery, Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_testkit::fake_apollo::{FakeApollo, FakePerson, Fault, SEARCH_PATH};
use linkcrm_testkit::http::{serve, Client};
use linkcrm_testkit::{unique_table_name, Moto};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn sqs_event(d: &Delivery) -> Value {
    let body = serde_json::to_string(&d.job).unwrap();
    let arn = "arn:aws:sqs:us-east-1:123456789012:discover";
    linkcrm_testkit::lambda::sqs_event(vec![linkcrm_testkit::lambda::sqs_record(
        "msg-1",
        &d.receipt,
        &body,
        d.receive_count,
        arn,
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_runs_in_the_lambda_and_a_rate_limit_is_retried_through_the_queue() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let table = unique_table_name("discover-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: linkcrm_storage::DynStore = Arc::new(store);
    let queue = Arc::new(SqsQueue::for_endpoint(&endpoint, &format!("{table}-discover"), 5).await.unwrap());
    let forwarder = Forwarder::new(store.clone(), "work")
        .route("discover", queue.clone() as Arc<dyn JobQueue>)
        .with_stream_grace(Duration::ZERO);
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let base = serve(linkcrm_api::router(&app)).await;
    let (_, secret) = linkcrm_api::platform::create_agency(&store, "Agency", None).await.unwrap();
    let agency = Client::new(&base, &secret);
    let ws = agency.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": "Client A" })), 201).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    agency.ok(Method::POST, &format!("/v1/workspaces/{ws}/credits"), Some(json!({ "credits": 5 })), 201).await;
    let api = agency.in_workspace(&ws);
    let rel =
        api.ok(Method::POST, "/v1/link-building/crm/relationship", Some(json!({ "domain": "blog.example" })), 201);
    let account = rel.await["accountId"].as_str().unwrap().to_owned();

    let apollo = FakeApollo::start().await;
    apollo.add_person(
        "blog.example",
        FakePerson {
            id: "p1".into(),
            first_name: "Ada".into(),
            last_name: "Lee".into(),
            title: "Editor".into(),
            seniority: "manager".into(),
            email: Some("ada@blog.example".into()),
            email_status: "verified".into(),
            ..FakePerson::default()
        },
    );
    let body = json!({ "accountIds": [account], "roles": ["editor"], "seniority": ["manager"] });
    let accepted = api.ok(Method::POST, "/v1/link-building/crm/contact/discover", Some(body), 202).await;
    let id = accepted["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(forwarder.forward_due().await.unwrap().sent, 1);
    let got = queue.receive(10, Duration::from_secs(60), Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("LINKCRM_QUEUE_URL", queue.url()),
        ("LINKCRM_APOLLO_BASE_URL", apollo.base_url.as_str()),
        ("LINKCRM_APOLLO_API_KEY", apollo.api_key.as_str()),
        ("RUST_LOG", "info"),
    ];
    let bin = env!("CARGO_BIN_EXE_discover-worker");
    let answer = linkcrm_testkit::lambda::invoke(bin, &env, sqs_event(&got[0])).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let done = api.ok(Method::GET, &format!("/v1/agent/invocations/{id}"), None, 200).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["creditsUsed"], json!(0.4));
    let per = &done["result"]["perAccount"][0];
    assert_eq!(per["accountId"], json!(account));
    assert_eq!(per["contactsFound"][0]["email"], "ada@blog.example", "{done}");
    assert_eq!(apollo.calls_to(SEARCH_PATH).len(), 1);

    // The same job delivered again finds the invocation finished: no second search, no charge.
    let answer = linkcrm_testkit::lambda::invoke(bin, &env, sqs_event(&got[0])).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert_eq!(apollo.calls_to(SEARCH_PATH).len(), 1);
    let usage = agency.ok(Method::GET, &format!("/v1/workspaces/{ws}/usage"), None, 200).await;
    assert_eq!(usage["creditsRemaining"], json!(4.6), "{usage}");

    // Apollo rate limiting for longer than the client's own retries: the job goes back to the
    // queue (reported as failed), and the invocation has not failed.
    let second =
        api.ok(Method::POST, "/v1/link-building/crm/contact/discover", Some(json!({ "accountIds": [account] })), 202);
    let second = second.await["invocationId"].as_str().unwrap().to_owned();
    forwarder.forward_due().await.unwrap();
    let got = queue.receive(10, Duration::from_secs(60), Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    apollo.fail_next(100, Fault::RateLimited { retry_after_secs: 120 });
    let answer = linkcrm_testkit::lambda::invoke(bin, &env, sqs_event(&got[0])).await;
    let status = api.ok(Method::GET, &format!("/v1/agent/invocations/{second}"), None, 200).await;
    assert_eq!(answer, json!({ "batchItemFailures": [{ "itemIdentifier": "msg-1" }] }), "{status}");
    assert_ne!(status["status"], "SUCCEEDED");
}
