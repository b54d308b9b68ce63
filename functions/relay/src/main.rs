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
use linkcrm_domain::jobs::{Queue, LINKCHECK_QUEUE, WEBHOOK_QUEUE, WORK_QUEUE};
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
    let forwarders = Arc::new(forwarders(store, config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (relay, forwarders) = (relay.clone(), forwarders.clone());
        async move { handle(&relay, &forwarders, event.payload).await }
    }))
    .await
}

/// One forwarder per store queue partition (`work`, `webhooks`, `linkcheck`), each routing its kinds to the SQS
/// queue that serves them.
fn forwarders(store: Arc<DynamoStore>, config: &aws_config::SdkConfig) -> Vec<Forwarder> {
    let url = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let urls: Vec<(Queue, String)> = Queue::ALL.into_iter().filter_map(|q| Some((q, url(q.url_env())?))).collect();
    if urls.is_empty() {
        tracing::warn!("no job queue URLs configured: jobs stay in the table");
        return Vec::new();
    }
    let client = aws_sdk_sqs::Client::new(config);
    let mut out = Vec::new();
    for partition in [WORK_QUEUE, WEBHOOK_QUEUE, LINKCHECK_QUEUE] {
        let mut f = Forwarder::new(store.clone(), partition);
        for (q, url) in &urls {
            let queue: Arc<dyn JobQueue> = Arc::new(SqsQueue::new(client.clone(), url.clone(), String::new()));
            for kind in q.kinds().into_iter().filter(|k| k.store_queue() == partition) {
                f = f.route(kind.as_str(), queue.clone());
            }
        }
        out.push(f);
    }
    out
}

async fn handle(relay: &Relay, forwarders: &[Forwarder], payload: Value) -> Result<Value, lambda_runtime::Error> {
    if payload.get("Records").is_some() {
        let event: Event = serde_json::from_value(payload)?;
        return Ok(serde_json::to_value(on_stream(relay, forwarders, event).await)?);
    }
    // Anything else is the schedule's tick.
    let (mut sent, mut unroutable) = (0, 0);
    for f in forwarders {
        let done = f.forward_due().await.map_err(|e| format!("forwarding due jobs failed: {e}"))?;
        tracing::info!(sent = done.sent, later = done.later, unroutable = done.unroutable, "due jobs forwarded");
        sent += done.sent;
        unroutable += done.unroutable;
    }
    Ok(json!({ "forwarded": sent, "unroutable": unroutable }))
}

async fn on_stream(relay: &Relay, forwarders: &[Forwarder], event: Event) -> DynamoDbEventResponse {
    let position = |seq: &str| event.records.iter().position(|r| r.change.sequence_number.as_deref() == Some(seq));
    // The relay names the first outbox record when it failed (all-or-error per batch).
    let published = handle_stream_event(relay, event.clone()).await;
    let mut failed = published
        .batch_item_failures
        .first()
        .map(|f| position(f.item_identifier.as_deref().unwrap_or_default()).unwrap_or(0));
    {
        for (i, r) in event.records.iter().enumerate() {
            if r.event_name != "INSERT" || failed.is_some_and(|f| f <= i) {
                continue;
            }
            let Ok(item) = serde_dynamo::from_item::<_, Item>(r.change.new_image.clone()) else { continue };
            let Some(fw) = forwarders.iter().find(|f| f.is_job(&item)) else {
                continue;
            };
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
