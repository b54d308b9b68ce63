//! The inbound worker Lambda: SQS batches from the inbound queue, each job run by
//! `linkcrm_api::jobs::handle` (the handler the local binary's worker runs), answered with
//! ReportBatchItemFailures. A `mailbox_poll` job reads one mailbox over IMAP and records what is
//! new (`linkcrm_outreach::polling`; one poller per mailbox at a time, by a lease). Its EventBridge
//! schedule queues a poll job for each mailbox that is due.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN`, `LINKCRM_MAX_RECEIVES`, `LINKCRM_IMAP_POLL_SECS`,
//! `LINKCRM_IMAP_CA_FILE`, and the platform mailbox's `LINKCRM_IMAP_*`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    linkcrm_api::jobs::serve_inbound_lambda().await
}
