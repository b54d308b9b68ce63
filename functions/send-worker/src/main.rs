//! The send worker Lambda: SQS batches from the send queue (outreach sends and approval expiries),
//! each job run by `linkcrm_api::jobs::handle` (the handler the local binary's worker runs),
//! answered with ReportBatchItemFailures. Sends are at most once: the handler claims a send before
//! talking SMTP, so a redelivered job never sends a second copy.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN` (its dead-letter queue, whose records are settled, not run), `LINKCRM_PUBLIC_URL`
//! (for unsubscribe links), `LINKCRM_MAX_RECEIVES`, `LINKCRM_SEND_DOMAIN_DAILY_CAP`,
//! `LINKCRM_SMTP_CA_FILE` (extra CAs for private mail servers; an unusable file fails the start).

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
