//! Wiring for the local binary that the function mains do not need.

use linkcrm_events::{InProcessBus, Relay};
use linkcrm_storage::DynStore;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// Runs the outbox relay in-process until `stop` turns true. `commits` is the embedded store's
/// commit signal; without one (DynamoDB) the relay polls. Events go to in-process subscribers and,
/// when `LINKCRM_EVENT_SINK_URL` is set, are POSTed there.
pub fn spawn_relay(
    store: DynStore,
    commits: Option<Arc<Notify>>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let relay = Relay::new(store, Arc::new(InProcessBus::from_env()));
    tokio::spawn(relay.run(commits.unwrap_or_default(), stop))
}

/// The Apollo client from `LINKCRM_APOLLO_BASE_URL` (default Apollo's own) and
/// `LINKCRM_APOLLO_API_KEY`; `None` without a key, and discovery then fails its invocations with
/// `provider_unavailable` saying so.
pub fn apollo_from_env() -> Option<Arc<dyn linkcrm_providers::ContactFinder>> {
    let key = std::env::var("LINKCRM_APOLLO_API_KEY").ok().filter(|k| !k.trim().is_empty())?;
    let base = std::env::var("LINKCRM_APOLLO_BASE_URL")
        .unwrap_or_else(|_| linkcrm_providers::apollo::DEFAULT_BASE_URL.to_owned());
    match linkcrm_providers::ApolloClient::new(base, key) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Apollo client; discovery will fail its invocations");
            None
        }
    }
}

/// Runs the job worker in-process on the store queue until `stop` turns true: discovery jobs and
/// outreach sends (through each mailbox's own SMTP server).
pub fn spawn_worker(
    app: Arc<linkcrm_api::App>,
    finder: Option<Arc<dyn linkcrm_providers::ContactFinder>>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    use linkcrm_api::discovery;
    use linkcrm_jobs::{HandlerError, JobQueue, StoreQueue, WorkerOptions};
    let queue: Arc<dyn JobQueue> = Arc::new(StoreQueue::new(app.store.clone(), discovery::QUEUE, 5));
    // Longer than a 25-account discovery takes, so a run is not delivered again while it runs.
    let opts = WorkerOptions {
        visibility: std::time::Duration::from_secs(600),
        wait: std::time::Duration::from_secs(5),
        ..WorkerOptions::default()
    };
    let handler = move |d: linkcrm_jobs::Delivery| {
        let (app, finder) = (app.clone(), finder.clone());
        async move {
            match d.job.kind.as_str() {
                discovery::JOB_KIND => discovery::handle(&app, finder.as_deref(), &d.job).await,
                linkcrm_api::sending::JOB_KIND => {
                    linkcrm_api::sending::handle(&app, &linkcrm_mail::SmtpMailer::new(), &d.job, d.receive_count).await
                }
                other => Err(HandlerError::Fail(format!("no handler for job kind '{other}'"))),
            }
        }
    };
    tokio::spawn(linkcrm_jobs::run_worker(queue, handler, opts, stop))
}
