//! The AWS delivery path on moto, with the delivery Lambda binary run as Lambda runs it
//! (`linkcrm_testkit::lambda`): a change commits its event; the relay publishes it to EventBridge;
//! the bus's rule puts it on the webhook queue (SQS); the binary fans it out (one delivery per
//! subscribed endpoint, committed with its attempt's job); the forwarder moves that job to the
//! queue; the binary makes the attempt, and the receiver verifies the signature with the
//! independent Standard Webhooks library.

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use linkcrm_events::{EventBridgeBus, Relay};
use linkcrm_jobs::{Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_testkit::http::{serve, Client};
use linkcrm_testkit::lambda::{sqs_event, sqs_record};
use linkcrm_testkit::webhook_receiver::Receiver;
use linkcrm_testkit::{unique_table_name, Moto};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:webhooks";

fn creds() -> Credentials {
    Credentials::new("test", "test", None, None, "test")
}

/// Every message on the queue now, raw: (message id, receipt, body).
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let res =
            sqs.receive_message().queue_url(url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        let msgs = res.messages.unwrap_or_default();
        if msgs.is_empty() && !out.is_empty() {
            break;
        }
        for m in msgs {
            out.push((m.message_id.unwrap(), m.receipt_handle.unwrap(), m.body.unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_eventbridge_sqs_delivery_worker_receiver() {
    // The API accepts the receiver's http:// URL (it is on loopback).
    std::env::set_var("LINKCRM_WEBHOOK_ALLOW_HTTP", "true");
    let rx = Receiver::start().expect("receiver");
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let table = unique_table_name("whk-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: linkcrm_storage::DynStore = Arc::new(store);

    // The bus, its rule, and the webhook queue it targets.
    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds())
            .endpoint_url(&endpoint)
            .build(),
    );
    let queue = Arc::new(SqsQueue::for_endpoint(&endpoint, &format!("{table}-webhooks"), 5).await.unwrap());
    let sqs = queue.client().clone();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(queue.url())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    eb.create_event_bus().name(&table).send().await.unwrap();
    eb.put_rule()
        .name("webhooks")
        .event_bus_name(&table)
        .event_pattern(r#"{"source":["linkcrm"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("webhooks")
        .event_bus_name(&table)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let relay = Relay::new(store.clone(), Arc::new(EventBridgeBus::for_endpoint(&endpoint, &table)));
    let forwarder = Forwarder::new(store.clone(), "webhooks")
        .route("webhook_deliver", queue.clone() as Arc<dyn JobQueue>)
        .with_stream_grace(Duration::ZERO);

    // A workspace with a webhook for placements, over the API.
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let base = serve(linkcrm_api::router(&app)).await;
    let (_, secret) = linkcrm_api::platform::create_agency(&store, "Agency", None).await.unwrap();
    let agency = Client::new(&base, &secret);
    let ws = agency.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": "Client A" })), 201).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let api = agency.in_workspace(&ws);
    let hook = json!({ "url": rx.url("/ok/aws"), "events": ["link_building.link.placed"] });
    let hook = api.ok(Method::POST, "/v1/webhooks", Some(hook), 201).await;
    rx.secrets("/ok/aws", &[hook["secret"].as_str().unwrap()]).await;
    let rel = api
        .ok(Method::POST, "/v1/link-building/crm/relationship", Some(json!({ "domain": "aws-blog.com" })), 201)
        .await;
    let placed = json!({ "relationshipId": rel["id"], "type": "LINK_PLACED",
                         "metadata": { "linkUrl": "https://aws-blog.com/tools" } });
    api.ok(Method::POST, "/v1/link-building/crm/event", Some(placed), 201).await;

    // The relay publishes what committed; the rule puts every event on the queue.
    relay.drain_once().await.unwrap();
    let events = drain(&sqs, queue.url()).await;
    let placement = events
        .iter()
        .find(|(_, _, body)| serde_json::from_str::<Value>(body).unwrap()["detail-type"] == "link_building.link.placed")
        .expect("the placement reached the queue through the rule")
        .clone();
    assert!(events.len() >= 3, "workspace, relationship and placement events: {}", events.len());

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("LINKCRM_QUEUE_URL", queue.url()),
        ("LINKCRM_ALLOW_PRIVATE_TARGETS", "true"),
        ("LINKCRM_WEBHOOK_ALLOW_HTTP", "true"),
        ("RUST_LOG", "info"),
    ];
    let bin = env!("CARGO_BIN_EXE_webhook-delivery");
    let run =
        async |records: Vec<Value>| -> Value { linkcrm_testkit::lambda::invoke(bin, &env, sqs_event(records)).await };

    // Fan-out: every event of the batch, as the rule delivered it. Only the placement is
    // subscribed: one delivery, committed with its first attempt's job.
    let records = events.iter().map(|(id, receipt, body)| sqs_record(id, receipt, body, 1, SOURCE_ARN)).collect();
    assert_eq!(run(records).await["batchItemFailures"], json!([]));
    // The same event again (SQS delivers at least once): nothing new.
    let (id, receipt, body) = &placement;
    assert_eq!(run(vec![sqs_record(id, receipt, body, 2, SOURCE_ARN)]).await["batchItemFailures"], json!([]));
    let done = forwarder.forward_due().await.unwrap();
    assert_eq!(done.sent, 1, "one attempt job for one subscribed endpoint: {done:?}");
    let jobs = queue.receive(10, Duration::from_secs(60), Duration::from_secs(2)).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job.kind, "webhook_deliver");
    assert!(rx.received().await.is_empty(), "nothing sent before the attempt");

    // The attempt.
    let d = &jobs[0];
    let record = sqs_record("attempt-1", &d.receipt, &serde_json::to_string(&d.job).unwrap(), 1, SOURCE_ARN);
    assert_eq!(run(vec![record]).await["batchItemFailures"], json!([]));
    let got = rx.wait_for("/ok/aws", Duration::from_secs(10), |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].verified, "{:?}", got[0].error);
    assert_eq!(got[0].body["type"], "link_building.link.placed");
    assert_eq!(got[0].body["workspaceId"], ws.as_str());
    let detail: Value = serde_json::from_str::<Value>(body).unwrap()["detail"].clone();
    assert_eq!(got[0].header("webhook-id"), detail["id"].as_str(), "the event id, as published");
    let attempts =
        api.ok(Method::GET, &format!("/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap()), None, 200).await;
    assert_eq!(attempts["data"][0]["status"], "succeeded", "{attempts}");
    assert_eq!(attempts["data"].as_array().unwrap().len(), 1);
}
