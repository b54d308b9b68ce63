//! The agency worker Lambda: SQS batches from the agency queue, each job run by
//! `linkcrm_api::jobs::handle` (the handler the local binary's worker runs): a bulk action's
//! `bulk_fan` job queues one `bulk_child` job per workspace, and each child runs the operation in
//! its workspace through the executor. Its one-minute EventBridge schedule starts the scheduled
//! bulk actions that are due.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN`, `LINKCRM_MAX_RECEIVES`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    linkcrm_api::jobs::serve_agency_lambda().await
}
