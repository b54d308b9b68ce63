//! The outbox relay Lambda.
//!
//! - DynamoDB Stream batches: outbox INSERTs are published to EventBridge and the outbox items
//!   deleted as the acknowledgement; job INSERTs (the `JOBQ#` partition) due within 15 minutes are
//!   forwarded to the SQS queue serving their kind (see `linkcrm_jobs::forward`). A failure is
//!   reported with ReportBatchItemFailures at the earliest failed record, so Lambda retries the
//!   batch from there.
//! - A one-minute EventBridge schedule: forwards the jobs that came due since (sends scheduled more
//!   than 15 minutes ahead) and any job the stream path missed.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_EVENT_BUS`, and for jobs `LINKCRM_DISCOVER_QUEUE_URL` and
//! `LINKCRM_SEND_QUEUE_URL` (without them jobs are left in the table).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{service_fn, LambdaEvent};
use linkcrm_domain::jobs::{Queue, WORK_QUEUE};
use linkcrm_events::{stream::handle_stream_event, EventBridgeBus, Relay};
use linkcrm_jobs::{Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_storage::Item;
use serde_json::{json, Value};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| "LINKCRM_TABLE is not set")?;
    let bus_name = std::env::var("LINKCRM_EVENT_BUS").map_err(|_| "LINKCRM_EVENT_BUS is not set")?;
    let config = linkcrm_storage::aws::sdk_config().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table));
    let relay = Arc::new(Relay::new(store.clone(), Arc::new(EventBridgeBus::new(config, bus_name))));
    let forwarder = forwarder(store, config).map(Arc::new);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (relay, forwarder) = (relay.clone(), forwarder.clone());
        async move { handle(&relay, forwarder.as_deref(), event.payload).await }
    }))
    .await
}

fn forwarder(store: Arc<DynamoStore>, config: &aws_config::SdkConfig) -> Option<Forwarder> {
    let url = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let urls: Vec<(Queue, String)> = Queue::ALL.into_iter().filter_map(|q| Some((q, url(q.url_env())?))).collect();
    if urls.is_empty() {
        tracing::warn!("no job queue URLs configured: jobs stay in the table");
        return None;
    }
    let client = aws_sdk_sqs::Client::new(config);
    let mut f = Forwarder::new(store, WORK_QUEUE);
    for (q, url) in urls {
        let queue: Arc<dyn JobQueue> = Arc::new(SqsQueue::new(client.clone(), url, String::new()));
        for kind in q.kinds() {
            f = f.route(kind.as_str(), queue.clone());
        }
    }
    Some(f)
}

async fn handle(relay: &Relay, forwarder: Option<&Forwarder>, payload: Value) -> Result<Value, lambda_runtime::Error> {
    if payload.get("Records").is_some() {
        let event: Event = serde_json::from_value(payload)?;
        return Ok(serde_json::to_value(on_stream(relay, forwarder, event).await)?);
    }
    // Anything else is the schedule's tick.
    let Some(f) = forwarder else { return Ok(json!({ "forwarded": 0 })) };
    let done = f.forward_due().await.map_err(|e| format!("forwarding due jobs failed: {e}"))?;
    tracing::info!(sent = done.sent, later = done.later, unroutable = done.unroutable, "due jobs forwarded");
    Ok(json!({ "forwarded": done.sent, "unroutable": done.unroutable }))
}

async fn on_stream(relay: &Relay, forwarder: Option<&Forwarder>, event: Event) -> DynamoDbEventResponse {
    let position = |seq: &str| event.records.iter().position(|r| r.change.sequence_number.as_deref() == Some(seq));
    // The relay names the first outbox record when it failed (all-or-error per batch).
    let published = handle_stream_event(relay, event.clone()).await;
    let mut failed = published
        .batch_item_failures
        .first()
        .map(|f| position(f.item_identifier.as_deref().unwrap_or_default()).unwrap_or(0));
    if let Some(fw) = forwarder {
        for (i, r) in event.records.iter().enumerate() {
            if r.event_name != "INSERT" || failed.is_some_and(|f| f <= i) {
                continue;
            }
            let Ok(item) = serde_dynamo::from_item::<_, Item>(r.change.new_image.clone()) else { continue };
            if !fw.is_job(&item) {
                continue;
            }
            if let Err(e) = fw.forward_items(vec![item]).await {
                tracing::warn!(error = %e, "job forwarding failed; asking Lambda to retry from it");
                failed = Some(i);
                break;
            }
        }
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some(i) = failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(event.records[i].change.sequence_number.clone().unwrap_or_default());
        response.batch_item_failures.push(failure);
    }
    response
}
