//! Queued work, one entry point for every door: the local binary's in-process worker and the
//! SQS-triggered worker Lambdas (`functions/discover-worker`, `functions/send-worker`) call
//! [`handle`] with each delivery, and get the same behaviour.
//!
//! Dispatch is by job kind. A job whose delivery is its last one (`receive_count` reached
//! `max_receives`, the queue's redrive limit) and that did not finish is given up here rather than
//! left to the dead-letter queue with its invocation RUNNING: the invocation fails with
//! `job_failed` and its credit reservation is released; a send that had been claimed but not
//! recorded is SEND_UNCERTAIN (never sent again). The job is then acknowledged. Only a worker that
//! dies during a job's last delivery leaves it to the dead-letter queue; [`settle_dead_letter`]
//! then does the same from there (the worker Lambdas read their DLQs, the local worker sweeps its
//! dead-letter partition).

use crate::invocations::{self as inv};
use crate::{approval_expiry, discovery, sending, App};
use linkcrm_jobs::{Delivery, HandlerError, Job};
use linkcrm_mail::Mailer;
use linkcrm_providers::ContactFinder;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries of a job before it is given up (and, in SQS, the redrive `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

/// What the handlers need besides the store.
#[derive(Clone)]
pub struct Workers {
    pub mailer: Arc<dyn Mailer>,
    /// `None` when no Apollo key is configured: discovery fails its invocations saying so.
    pub finder: Option<Arc<dyn ContactFinder>>,
    pub max_receives: u32,
}

impl Workers {
    /// SMTP through each mailbox's own server (trusting the CAs in `LINKCRM_SMTP_CA_FILE` besides
    /// the system's), Apollo from the environment (`LINKCRM_APOLLO_API_KEY`,
    /// `LINKCRM_APOLLO_BASE_URL`), `LINKCRM_MAX_RECEIVES` (default 5).
    ///
    /// Fails when `LINKCRM_SMTP_CA_FILE` names a file that cannot be read or holds no certificate:
    /// a worker started that way would fail every send to the servers that CA is for.
    pub fn from_env() -> Result<Self, linkcrm_mail::MailError> {
        Ok(Workers {
            mailer: Arc::new(linkcrm_mail::SmtpMailer::from_env()?),
            finder: apollo_from_env(),
            max_receives: std::env::var("LINKCRM_MAX_RECEIVES")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n >= 1)
                .unwrap_or(MAX_RECEIVES),
        })
    }
}

/// The Apollo client from `LINKCRM_APOLLO_BASE_URL` (default Apollo's own) and
/// `LINKCRM_APOLLO_API_KEY`; `None` without a key, and discovery then fails its invocations with
/// `provider_unavailable` saying so.
pub fn apollo_from_env() -> Option<Arc<dyn ContactFinder>> {
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

/// Runs one delivery.
pub async fn handle(app: &Arc<App>, workers: &Workers, d: &Delivery) -> Result<(), HandlerError> {
    wait_ready(app).await?;
    let outcome = match d.job.kind.as_str() {
        discovery::JOB_KIND => discovery::handle(app, workers.finder.as_deref(), &d.job).await,
        sending::JOB_KIND => sending::handle(app, workers.mailer.as_ref(), &d.job, d.receive_count).await,
        approval_expiry::JOB_KIND => approval_expiry::handle(app, &d.job).await,
        "campaign_draft" | "campaign_step" | "campaign_release" => linkcrm_campaigns::jobs::handle(app, &d.job).await,
        crate::polling::JOB_KIND => crate::polling::handle_job(app, &d.job).await,
        linkcrm_inbound::negotiate::JOB_KIND => linkcrm_inbound::negotiate::handle(app, &d.job).await,
        "domain_event" => linkcrm_webhooks::fanout::handle(app, &d.job).await,
        "webhook_deliver" => linkcrm_webhooks::deliver::handle(app, linkcrm_webhooks::sender(app), &d.job).await,
        "webhook_recover" => linkcrm_webhooks::deliver::recover(app, &d.job).await,
        "bulk_fan" => linkcrm_agency::bulk::fan(app, &d.job).await,
        "bulk_child" => linkcrm_agency::bulk::child(app, &d.job).await,
        "stage_move" => linkcrm_crm::ops::pipeline::handle_stage_move(app, &d.job).await,
        "link_track" => linkcrm_monitoring::track::handle(app, &d.job).await,
        linkcrm_monitoring::run::JOB_KIND => linkcrm_monitoring::run::handle(app, &d.job).await,
        other => Err(HandlerError::Fail(format!("no handler for job kind '{other}'"))),
    };
    match outcome {
        Err(e) if d.receive_count >= workers.max_receives => {
            let why = match &e {
                HandlerError::Retry { .. } => "it kept failing with passing errors".to_owned(),
                HandlerError::Fail(reason) => reason.clone(),
            };
            tracing::error!(job = %d.job.id, kind = %d.job.kind, receives = d.receive_count, %why, "giving the job up");
            give_up(app, &d.job, d.receive_count, &why).await
        }
        other => other,
    }
}

/// A job from a dead-letter queue: its worker died during its last delivery, so its invocation may
/// still be RUNNING with credits reserved. Gives it up (idempotent) rather than run it; an
/// approval's expiry, which has no outside effect and is idempotent, is simply carried out.
pub async fn settle_dead_letter(app: &App, workers: &Workers, job: &Job) -> Result<(), HandlerError> {
    tracing::warn!(job = %job.id, kind = %job.kind, "settling a dead-lettered job");
    wait_ready(app).await?;
    if job.kind == approval_expiry::JOB_KIND {
        return approval_expiry::handle(app, job).await;
    }
    give_up(app, job, workers.max_receives, "its worker stopped during its last delivery").await
}

/// Ends a job's invocation as failed (credits released). Idempotent: a finished invocation is left
/// as it is. A store that is still down makes this a retry too; the job then dead-letters.
pub async fn give_up(app: &App, job: &Job, receives: u32, why: &str) -> Result<(), HandlerError> {
    let retry = |e: &dyn std::fmt::Display| {
        tracing::warn!(job = %job.id, error = %e, "could not give the job up");
        HandlerError::Retry { after: Duration::from_secs(5) }
    };
    // An expiry that keeps failing is left to the lazy check (approve/reject after `timeoutAt`);
    // its invocation, maybe approved meanwhile, is not this job's to fail.
    if job.kind == approval_expiry::JOB_KIND {
        return Ok(());
    }
    if job.kind == "bulk_child" {
        return linkcrm_agency::bulk::give_up_child(app, job, why).await;
    }
    if job.kind == "bulk_fan" {
        return linkcrm_agency::bulk::give_up_fan(app, job, why).await;
    }
    let Some(id) = job.payload.get("invocationId").and_then(Value::as_str) else { return Ok(()) };
    let Some(item) = app.store.get(&inv::key(id)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    if !matches!(inv::status(&item), inv::Status::Pending | inv::Status::Running) {
        return Ok(());
    }
    if job.kind == sending::JOB_KIND {
        if let Some(claim) = app.store.get(&sending::claim_key(id)).await.map_err(|e| retry(&e))? {
            return sending::settle_claimed(app, job, &item, &claim, "The send job was given up after it was claimed")
                .await;
        }
    }
    let error = inv::problem(503, "job_failed", &format!("The job was given up after {receives} attempts: {why}"));
    inv::commit_finish(
        app,
        &item,
        inv::Outcome { status: inv::Status::Failed, used: 0, result: Value::Null, error },
        vec![],
    )
    .await
}

/// The app a worker Lambda runs on: DynamoDB table `LINKCRM_TABLE` (endpoint from the AWS
/// environment), no request rate limiting (no HTTP door).
pub async fn lambda_app() -> anyhow::Result<Arc<App>> {
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| anyhow::anyhow!("LINKCRM_TABLE is not set"))?;
    let store = linkcrm_storage::dynamo::DynamoStore::from_env(&table, None).await;
    let config = crate::Config { rate_limit_per_sec: 0.0, ..crate::Config::from_env() };
    Ok(App::starting(Arc::new(store), config, crate::catalogue()))
}

/// The server secret loaded (see `App::starting`); a store that cannot be read now is a passing
/// problem, so the job is retried rather than failed.
async fn wait_ready(app: &App) -> Result<(), HandlerError> {
    app.ready().await.map_err(|e| {
        tracing::warn!(error = %e, "the server secret cannot be read; retrying the job later");
        HandlerError::Retry { after: Duration::from_secs(5) }
    })
}

/// A worker Lambda (`functions/send-worker`, `functions/discover-worker`): the app over DynamoDB,
/// the workers from the environment, and SQS batches run by [`handle`] (records from the
/// function's dead-letter queue by [`settle_dead_letter`]) until the runtime stops it. The two
/// functions differ in their queue, timeout and concurrency (template.yaml), not in code.
/// A worker Lambda with an EventBridge schedule: its queue's jobs run by [`handle`] (dead letters
/// settled), and `tick` on each scheduled event, answering its report.
async fn serve_scheduled_worker<T, TFut, R>(tick: T) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    T: Fn(Arc<App>) -> TFut + Clone + Send + Sync + 'static,
    TFut: std::future::Future<Output = Result<R, String>> + Send + 'static,
    R: serde::Serialize,
{
    use linkcrm_jobs::lambda::Source;
    let app = lambda_app().await?;
    let workers = Arc::new(Workers::from_env()?);
    let tick_app = app.clone();
    linkcrm_jobs::lambda::serve_with_schedule(
        move |d, source| {
            let (app, workers) = (app.clone(), workers.clone());
            async move {
                match source {
                    Source::Queue => handle(&app, &workers, &d).await,
                    Source::DeadLetter => settle_dead_letter(&app, &workers, &d.job).await,
                }
            }
        },
        move || {
            let (app, tick) = (tick_app.clone(), tick.clone());
            async move { serde_json::to_value(tick(app).await?).map_err(|e| e.to_string()) }
        },
    )
    .await
}

/// The campaign worker: its queue's jobs, and the EventBridge schedule's tick, which refreshes
/// the due accounts' metrics (`linkcrm_campaigns::metrics`).
pub async fn serve_campaign_lambda() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_scheduled_worker(|app: Arc<App>| async move { linkcrm_campaigns::metrics::refresh_due(&app, 500).await })
        .await
}

/// The inbound worker Lambda: `mailbox_poll` and `inbound_negotiate` jobs from the inbound queue,
/// and on its EventBridge schedule (every `LINKCRM_IMAP_POLL_SECS`, 2 minutes in the template) a
/// poll job for each mailbox that is due (`linkcrm_outreach::polling::enqueue_due`).
pub async fn serve_inbound_lambda() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_scheduled_worker(|app: Arc<App>| async move {
        crate::polling::enqueue_due(&app, 1000).await.map_err(|e| e.to_string())
    })
    .await
}

/// The agency worker Lambda: bulk actions' `bulk_fan` and `bulk_child` jobs from the agency queue,
/// and on its one-minute EventBridge schedule the scheduled bulk actions that are due
/// (`linkcrm_agency::schedule::run_due`).
pub async fn serve_agency_lambda() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_scheduled_worker(|app: Arc<App>| async move {
        linkcrm_agency::schedule::run_due(&app, chrono::Utc::now(), 500).await.map_err(|e| format!("{e:?}"))
    })
    .await
}

/// The link-check worker Lambda: `link_track` and `link_check` jobs from the linkcheck queue, and
/// on its EventBridge schedule (every minute) a check job for each link that is due
/// (`linkcrm_monitoring::schedule::dispatch_due`).
pub async fn serve_linkcheck_lambda() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_scheduled_worker(|app: Arc<App>| async move {
        linkcrm_monitoring::schedule::dispatch_due(&app, chrono::Utc::now(), 500).await.map_err(|e| e.to_string())
    })
    .await
}

pub async fn serve_lambda() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use linkcrm_jobs::lambda::Source;
    let app = lambda_app().await?;
    let workers = Arc::new(Workers::from_env()?);
    linkcrm_jobs::lambda::serve(move |d, source| {
        let (app, workers) = (app.clone(), workers.clone());
        async move {
            match source {
                Source::Queue => handle(&app, &workers, &d).await,
                Source::DeadLetter => settle_dead_letter(&app, &workers, &d.job).await,
            }
        }
    })
    .await
}
