//! The outbox relay Lambda: DynamoDB Stream batches of outbox INSERTs in, EventBridge PutEvents
//! out, outbox items deleted as the acknowledgement. Failed batches are reported with
//! ReportBatchItemFailures so Lambda retries them from the first outbox record.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};
use linkcrm_events::{stream::handle_stream_event, EventBridgeBus, Relay};
use linkcrm_storage::dynamo::DynamoStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| "LINKCRM_TABLE is not set")?;
    let bus_name = std::env::var("LINKCRM_EVENT_BUS").map_err(|_| "LINKCRM_EVENT_BUS is not set")?;
    let config = aws_config::load_from_env().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table));
    let relay = Arc::new(Relay::new(store, Arc::new(EventBridgeBus::new(&config, bus_name))));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let relay = relay.clone();
        async move { Ok::<_, lambda_runtime::Error>(handle_stream_event(&relay, event.payload).await) }
    }))
    .await
}
