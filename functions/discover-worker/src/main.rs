//! The contact-discovery worker Lambda: SQS batches from the discover queue, each job run by
//! `linkcrm_api::jobs::handle` (the handler the local binary's worker runs), answered with
//! ReportBatchItemFailures. Discovery calls Apollo and may take a while per account, so this
//! function has its own queue, timeout and concurrency, apart from sending.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN` (its dead-letter queue, whose records are settled, not run), `LINKCRM_APOLLO_API_KEY`
//! (or a reference the platform resolves), `LINKCRM_APOLLO_BASE_URL`, `LINKCRM_MAX_RECEIVES`.

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
