//! The campaign worker Lambda: SQS batches from the campaign queue, each job run by
//! `linkcrm_api::jobs::handle` (the handler the local binary's worker runs), answered with
//! ReportBatchItemFailures. It drafts a campaign's members (`campaign_step`, and settles a
//! cancelled campaign's waiting drafts), carries decisions on drafts into their campaign
//! (`campaign_draft`) and releases the sends held while a campaign was paused after it resumes
//! (`campaign_release`). It talks to nothing but the table: a send it queues is a job committed
//! there, which the relay forwards to the send queue. Its EventBridge schedule (hourly) refreshes
//! the due accounts' Ahrefs metrics (`linkcrm_campaigns::metrics`).
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue),
//! `LINKCRM_DEAD_LETTER_QUEUE_ARN` (its dead-letter queue, whose records are settled, not run),
//! `LINKCRM_MAX_RECEIVES`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    linkcrm_api::jobs::serve_campaign_lambda().await
}
