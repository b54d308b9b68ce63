//! Wiring for the local binary that the function mains do not need.

pub mod log_writer;

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
    let bus = InProcessBus::from_env();
    // Webhooks: each subscribable event's fan-out is queued on the webhook store queue, where the
    // handler the delivery Lambda runs in AWS runs it (`linkcrm_api::jobs::handle`).
    bus.register(Arc::new(linkcrm_api::webhooks::fanout::EnqueueFanout { store: store.clone() }));
    let relay = Relay::new(store, Arc::new(bus));
    tokio::spawn(relay.run(commits.unwrap_or_default(), stop))
}

/// Runs the job worker in-process on the store queue until `stop` turns true: the same handlers
/// the worker Lambdas run ([`linkcrm_api::jobs::handle`]), discovery, outreach sends (through
/// each mailbox's own SMTP server) and approval expiries.
pub fn spawn_worker(
    app: Arc<linkcrm_api::App>,
    workers: linkcrm_api::jobs::Workers,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    use linkcrm_api::discovery;
    use linkcrm_jobs::{JobQueue, StoreQueue, WorkerOptions};
    let store_queue = Arc::new(StoreQueue::new(app.store.clone(), discovery::QUEUE, workers.max_receives));
    let queue: Arc<dyn JobQueue> = store_queue.clone();
    // Longer than a 25-account discovery takes, so a run is not delivered again while it runs;
    // also how long a job taken by a process that died waits before it is run again.
    // `LINKCRM_JOB_VISIBILITY_SECS` (default 600) changes it.
    let visibility = std::env::var("LINKCRM_JOB_VISIBILITY_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    // Jobs in flight at once (`LINKCRM_JOB_CONCURRENCY`, default 32): sends mostly wait on mail
    // servers, so many can overlap.
    let concurrency = std::env::var("LINKCRM_JOB_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let opts = WorkerOptions {
        concurrency,
        visibility: std::time::Duration::from_secs(visibility),
        wait: std::time::Duration::from_secs(5),
        ..WorkerOptions::default()
    };
    let workers = Arc::new(workers);
    tokio::spawn(partition_worker(app.clone(), workers.clone(), WEBHOOK_WORKER, visibility, stop.clone()));
    tokio::spawn(sweep_dead_letters(app.clone(), store_queue, workers.clone(), stop.clone()));
    tokio::spawn(refresh_metrics(app.clone(), stop.clone()));
    tokio::spawn(poll_mailboxes(app.clone(), stop.clone()));
    tokio::spawn(run_bulk_schedules(app.clone(), stop.clone()));
    // `LINKCRM_LINKCHECK_JOBS=0` leaves placed-link checks to another process on the same store.
    if std::env::var("LINKCRM_LINKCHECK_JOBS").ok().as_deref().map(str::trim) == Some("0") {
        tracing::info!("placed-link checks are not run by this process (LINKCRM_LINKCHECK_JOBS=0)");
    } else {
        tokio::spawn(partition_worker(app.clone(), workers.clone(), LINKCHECK_WORKER, visibility, stop.clone()));
        tokio::spawn(dispatch_link_checks(app.clone(), stop.clone()));
    }
    let handler = move |d: linkcrm_jobs::Delivery| {
        let (app, workers) = (app.clone(), workers.clone());
        async move { linkcrm_api::jobs::handle(&app, &workers, &d).await }
    };
    tokio::spawn(linkcrm_jobs::run_worker(queue, handler, opts, stop))
}

/// A worker on its own store queue partition (`queue`), so that its work never holds up sends:
/// `concurrency_var` (default 64) jobs in flight, hidden for at most `max_visibility` seconds.
async fn partition_worker(
    app: Arc<linkcrm_api::App>,
    workers: Arc<linkcrm_api::jobs::Workers>,
    (queue, concurrency_var, max_visibility): (&'static str, &'static str, u64),
    visibility: u64,
    stop: watch::Receiver<bool>,
) {
    use linkcrm_jobs::{JobQueue, StoreQueue, WorkerOptions};
    let queue: Arc<dyn JobQueue> = Arc::new(StoreQueue::new(app.store.clone(), queue, workers.max_receives));
    let concurrency = std::env::var(concurrency_var).ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let opts = WorkerOptions {
        concurrency,
        visibility: std::time::Duration::from_secs(visibility.min(max_visibility)),
        wait: std::time::Duration::from_secs(5),
        ..WorkerOptions::default()
    };
    let handler = move |d: linkcrm_jobs::Delivery| {
        let (app, workers) = (app.clone(), workers.clone());
        async move { linkcrm_api::jobs::handle(&app, &workers, &d).await }
    };
    linkcrm_jobs::run_worker(queue, handler, opts, stop).await
}

/// Webhook fan-outs and attempts: `LINKCRM_WEBHOOK_CONCURRENCY` (default 64) attempts in flight,
/// most of them waiting on receivers (each at most 15 s).
const WEBHOOK_WORKER: (&str, &str, u64) = (linkcrm_domain::jobs::WEBHOOK_QUEUE, "LINKCRM_WEBHOOK_CONCURRENCY", 120);

/// Placed-link checks: `LINKCRM_LINKCHECK_JOBS` (default 64) in flight, most of them waiting on
/// pages; the checker itself limits them per host and overall (`LINKCRM_LINKCHECK_PER_HOST`,
/// `LINKCRM_LINKCHECK_CONCURRENCY`). A check takes at most two fetches of 15 s (robots.txt and the
/// page) plus redirects.
const LINKCHECK_WORKER: (&str, &str, u64) = (linkcrm_domain::jobs::LINKCHECK_QUEUE, "LINKCRM_LINKCHECK_JOBS", 180);

/// Link checks, locally: every `LINKCRM_LINKCHECK_TICK_SECS` (60) the due links are dispatched
/// (`linkcrm_api::monitoring::schedule::dispatch_due`; in AWS the link-check worker's EventBridge
/// schedule runs the same).
async fn dispatch_link_checks(app: Arc<linkcrm_api::App>, mut stop: watch::Receiver<bool>) {
    let every = linkcrm_api::monitoring::schedule::tick_every();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        loop {
            match linkcrm_api::monitoring::schedule::dispatch_due(&app, chrono::Utc::now(), 200).await {
                Ok(t) if t.dispatched > 0 => {
                    tracing::info!(?t, "link checks dispatched");
                    // A full page may have more behind it.
                    if t.dispatched < 200 {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "link checks were not dispatched");
                    break;
                }
            }
        }
    }
}

/// Scheduled bulk actions, locally: every `LINKCRM_BULK_TICK_SECS` (60) the due ones start
/// (`linkcrm_api::agency::schedule::run_due`; in AWS the agency worker's one-minute
/// EventBridge schedule runs the same).
async fn run_bulk_schedules(app: Arc<linkcrm_api::App>, mut stop: watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(
        std::env::var("LINKCRM_BULK_TICK_SECS").ok().and_then(|v| v.parse().ok()).filter(|s| *s >= 1).unwrap_or(60),
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match linkcrm_api::agency::schedule::run_due(&app, chrono::Utc::now(), 100).await {
            Ok(t) if t.started + t.paused + t.failed > 0 => tracing::info!(?t, "scheduled bulk actions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "the bulk action schedule did not run"),
        }
    }
}

/// The account metrics schedule, locally: every `LINKCRM_METRICS_REFRESH_SECS` (an hour) the due
/// accounts are refreshed from Ahrefs (`linkcrm_api::account_metrics`; in AWS an EventBridge rule
/// runs the same on the campaign worker).
async fn refresh_metrics(app: Arc<linkcrm_api::App>, mut stop: watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(linkcrm_api::account_metrics::interval_secs());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = linkcrm_api::account_metrics::refresh_due(&app, 200).await {
            tracing::warn!(error = %e, "the account metrics refresh did not finish");
        }
    }
}

/// Mailbox polling, locally: the due index is read every quarter interval (at most every 15 s), so
/// a mailbox whose settings just changed is read soon, and each due mailbox is polled
/// (`linkcrm_api::polling`; in AWS the inbound worker's EventBridge schedule queues the same polls).
async fn poll_mailboxes(app: Arc<linkcrm_api::App>, mut stop: watch::Receiver<bool>) {
    let reader = match linkcrm_api::polling::reader(&app) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "mailboxes will not be polled: the IMAP reader cannot be built");
            return;
        }
    };
    let tick = (linkcrm_api::polling::interval() / 4)
        .clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        let run = linkcrm_api::polling::poll_due(&app, &reader, 100);
        tokio::select! {
            r = run => if let Err(e) = r {
                tracing::warn!(error = %e, "the mailbox poll did not finish");
            },
            _ = stop.changed() => return,
        }
    }
}

/// A job lands in the dead-letter partition only when the process died during its last delivery
/// (the handler gives up a job that fails on its last delivery itself). Its invocation may then
/// still be RUNNING with credits reserved: give it up here, once a minute. Giving up is idempotent
/// (a finished invocation is left as it is), and the dead letters stay for an operator to read.
async fn sweep_dead_letters(
    app: Arc<linkcrm_api::App>,
    queue: Arc<linkcrm_jobs::StoreQueue>,
    workers: Arc<linkcrm_api::jobs::Workers>,
    mut stop: watch::Receiver<bool>,
) {
    let every = std::time::Duration::from_secs(
        std::env::var("LINKCRM_DEAD_LETTER_SWEEP_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60),
    );
    // Where this process got to: each dead letter is settled once per process (settling is
    // idempotent, so a restart going over them again changes nothing).
    let mut after: Option<String> = None;
    loop {
        'pages: loop {
            let page = match queue.dead_letters_after(after.as_deref(), 100).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read dead-lettered jobs");
                    break;
                }
            };
            let full = page.len() == 100;
            for (position, job) in page {
                if let Err(e) = linkcrm_api::jobs::settle_dead_letter(&app, &workers, &job).await {
                    // Not moving past it: the next sweep tries it again.
                    tracing::warn!(job = %job.id, error = ?e, "could not settle a dead-lettered job");
                    break 'pages;
                }
                after = Some(position);
            }
            if !full {
                break;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
