//! The send worker Lambda: SQS batches from the send queue (outreach sends and approval expiries),
//! each job run by `linkcrm_api::jobs::handle` (the handler the local binary's worker runs),
//! answered with ReportBatchItemFailures. Sends are at most once: the handler claims a send before
//! talking SMTP, so a redelivered job never sends a second copy.
//!
//! Config: `LINKCRM_TABLE`, `LINKCRM_QUEUE_URL` (this function's queue), `LINKCRM_PUBLIC_URL`
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
    let app = linkcrm_api::jobs::lambda_app().await?;
    let workers = std::sync::Arc::new(linkcrm_api::jobs::Workers::from_env()?);
    let queue_url = std::env::var("LINKCRM_QUEUE_URL").ok();
    linkcrm_jobs::lambda::serve(queue_url, move |d| {
        let (app, workers) = (app.clone(), workers.clone());
        async move { linkcrm_api::jobs::handle(&app, &workers, &d).await }
    })
    .await
}
