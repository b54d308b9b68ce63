//! The webhook delivery Lambda, on the webhook queue. Two kinds of records arrive there:
//! - domain events, put there by the EventBridge rule on the bus the relay publishes to: each is
//!   fanned out to the endpoints subscribed to it (one delivery per endpoint, made once);
//! - attempt jobs (`webhook_deliver`, forwarded by the relay from the table, delayed up to 15
//!   minutes by SQS and held in the table when later) and `webhook_recover` jobs.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN`, `LINKCRM_MAX_RECEIVES`, `LINKCRM_WEBHOOK_ALLOW_HTTP`,
//! `LINKCRM_WEBHOOK_RETRY_SCHEDULE`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    linkcrm_api::jobs::serve_lambda().await
}
