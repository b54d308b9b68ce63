//! The agency worker Lambda binary, run as Lambda runs it (`linkcrm_testkit::lambda`), on the AWS
//! path: a bulk action's fan job and its children are committed to the table (moto), the
//! forwarder moves them to the agency queue (SQS on moto), and the queue's records handed to the
//! binary run the operation in each workspace; its one-minute schedule starts a due scheduled
//! bulk action.

use linkcrm_jobs::{Delivery, Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_testkit::http::{serve, Client};
use linkcrm_testkit::lambda::{sqs_event, sqs_record};
use linkcrm_testkit::{unique_table_name, Moto};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:agency";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_children_run_in_the_worker_binary() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let table = unique_table_name("agency-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: linkcrm_storage::DynStore = Arc::new(store);
    let queue = Arc::new(SqsQueue::for_endpoint(&endpoint, &format!("{table}-agency"), 5).await.unwrap());
    let forwarder = Forwarder::new(store.clone(), "work")
        .route("bulk_fan", queue.clone() as Arc<dyn JobQueue>)
        .route("bulk_child", queue.clone() as Arc<dyn JobQueue>)
        .with_stream_grace(Duration::ZERO);
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let base = serve(linkcrm_api::router(&app)).await;
    let (_, secret) = linkcrm_api::platform::create_agency(&store, "Agency", None).await.unwrap();
    let agency = Client::new(&base, &secret);
    let mut workspaces = Vec::new();
    for name in ["Acme", "Beta"] {
        let ws = agency.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": name })), 201).await;
        workspaces.push(ws["id"].as_str().unwrap().to_owned());
    }
    let ask = json!({ "action": "link_building.crm.relationship.create", "workspaces": "all",
                      "config": { "domain": "lambda-partner.com" } });
    let started = agency.ok(Method::POST, "/v1/workspaces/bulk-action", Some(ask), 202).await;
    let id = started["invocationId"].as_str().unwrap().to_owned();

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("LINKCRM_QUEUE_URL", queue.url()),
        ("RUST_LOG", "info"),
    ];
    let bin = env!("CARGO_BIN_EXE_agency-worker");
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

    // The fan job, then one child per workspace, each through the binary.
    let fan = receive().await;
    assert_eq!(fan.iter().map(|d| d.job.kind.as_str()).collect::<Vec<_>>(), ["bulk_fan"]);
    assert_eq!(run(&fan).await["batchItemFailures"], json!([]));
    for d in &fan {
        queue.ack(&d.receipt).await.unwrap();
    }
    let children = receive().await;
    assert_eq!(children.len(), 2, "{children:?}");
    assert!(children.iter().all(|d| d.job.kind == "bulk_child"));
    assert_eq!(run(&children).await["batchItemFailures"], json!([]));
    // A child delivered again runs nothing twice.
    assert_eq!(run(&children[..1]).await["batchItemFailures"], json!([]));

    let done = agency.ok(Method::GET, &format!("/v1/workspaces/bulk-action/{id}"), None, 200).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["succeeded"], 2, "{done}");
    for ws in &workspaces {
        let list = agency.in_workspace(ws).ok(Method::GET, "/v1/link-building/crm/relationship", None, 200).await;
        let n = list["data"].as_array().unwrap().iter().filter(|r| r["accountDomain"] == "lambda-partner.com").count();
        assert_eq!(n, 1, "{ws}: {list}");
    }
}
