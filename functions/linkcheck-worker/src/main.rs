//! The link-check worker Lambda: SQS batches from the linkcheck queue, each job run by
//! `linkcrm_api::jobs::handle` (the handler the local binary's worker runs), answered with
//! ReportBatchItemFailures. A `link_track` job starts monitoring a placed link; a `link_check` job
//! fetches one page through the SSRF guard and commits what it found. Its one-minute EventBridge
//! schedule claims the links that are due and queues their checks.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN`, `LINKCRM_MAX_RECEIVES`, and the checker's
//! `LINKCRM_LINKCHECK_*` (docs/links.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    linkcrm_api::jobs::serve_linkcheck_lambda().await
}
