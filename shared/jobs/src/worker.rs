//! The consuming loop: keeps up to `concurrency` jobs in flight, receiving more as soon as there is
//! room (no batch barrier: a slow SMTP session does not hold back the jobs received with it), and
//! settles each job on its own (ack on success, release on failure), as Lambda's
//! `ReportBatchItemFailures` does: one failing job never sends its batch-mates back to the queue.

use crate::{Delivery, JobQueue, MAX_VISIBILITY};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a handler reports when it did not finish a job.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerError {
    /// A passing problem (a provider's 429, a timeout): try again after `after`.
    Retry { after: Duration },
    /// The job failed. It is released at once, so the receive counts towards the dead-letter
    /// limit; a job that keeps failing ends up in the dead-letter queue for an operator.
    Fail(String),
}

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Jobs per receive, 1..=10.
    pub batch: usize,
    /// Jobs in flight at most (at least 1).
    pub concurrency: usize,
    /// How long a received job stays hidden: longer than the handler ever takes, or the job is
    /// delivered again while it still runs.
    pub visibility: Duration,
    /// Long-poll wait per receive.
    pub wait: Duration,
    /// Pause after a failed receive (queue unreachable), so a down queue is not hammered.
    pub error_backoff: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch: 10,
            concurrency: 32,
            visibility: Duration::from_secs(60),
            wait: Duration::from_secs(20),
            error_backoff: Duration::from_secs(1),
        }
    }
}

/// How often a worker with jobs in flight looks for more (it does not long-poll then, so that it
/// can take more work the moment a job finishes).
const BUSY_POLL: Duration = Duration::from_millis(50);

/// Runs until `stop` turns true (or its sender is dropped). Jobs in flight are finished and
/// settled first; a receive still waiting is abandoned, and any job it had already taken is
/// delivered again after its visibility timeout (delivery is at least once anyway).
///
/// A handler that panics counts as `Fail`.
pub async fn run_worker<F, Fut>(
    queue: Arc<dyn JobQueue>,
    handler: F,
    opts: WorkerOptions,
    mut stop: watch::Receiver<bool>,
) where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let concurrency = opts.concurrency.max(1);
    let mut inflight = tokio::task::JoinSet::new();
    // Job ids running in this worker: a job delivered again while it still runs here (it outlived
    // its visibility timeout) is not run a second time alongside itself, but put back for later.
    let running: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    loop {
        if *stop.borrow() {
            break;
        }
        // Reap what finished; wait for a slot when all are taken.
        while inflight.try_join_next().is_some() {}
        if inflight.len() >= concurrency {
            tokio::select! {
                _ = inflight.join_next() => continue,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let room = (concurrency - inflight.len()).min(opts.batch);
        // Idle: long-poll. Busy: look and come back soon, to refill as jobs finish.
        let wait = if inflight.is_empty() { opts.wait } else { Duration::ZERO };
        let received = tokio::select! {
            r = queue.receive(room, opts.visibility, wait) => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        match received {
            Ok(deliveries) if !deliveries.is_empty() => {
                for d in deliveries {
                    if !running.lock().unwrap_or_else(|p| p.into_inner()).insert(d.job.id.clone()) {
                        tracing::warn!(job = %d.job.id, "job delivered again while it still runs here; put back");
                        let _ = queue.release(&d.receipt, opts.visibility.min(MAX_VISIBILITY)).await;
                        continue;
                    }
                    inflight.spawn(settle(queue.clone(), handler.clone(), d, running.clone()));
                }
            }
            Ok(_) => {
                if !inflight.is_empty() {
                    tokio::select! {
                        _ = inflight.join_next() => {}
                        () = tokio::time::sleep(BUSY_POLL) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "job receive failed");
                tokio::select! {
                    () = tokio::time::sleep(opts.error_backoff) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }
    // Stopping: what is in flight finishes and is settled.
    while inflight.join_next().await.is_some() {}
}

/// Runs and settles one delivery. The job leaves `running` as soon as its handler is done, before
/// it is released: a job released for at once can be received again right away, and must then
/// run, not be taken for a duplicate of itself (which would spend one of its receives unrun).
async fn settle<F, Fut>(
    queue: Arc<dyn JobQueue>,
    handler: Arc<F>,
    delivery: Delivery,
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
) where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let (receipt, id, kind) = (delivery.receipt.clone(), delivery.job.id.clone(), delivery.job.kind.clone());
    // Spawned so that a panicking handler is caught here instead of ending the worker.
    let outcome = tokio::spawn(handler(delivery)).await.unwrap_or_else(|e| Err(HandlerError::Fail(e.to_string())));
    running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    let settled = match outcome {
        Ok(()) => queue.ack(&receipt).await,
        Err(HandlerError::Retry { after }) => queue.release(&receipt, after.min(MAX_VISIBILITY)).await,
        Err(HandlerError::Fail(reason)) => {
            tracing::warn!(job = %id, kind = %kind, %reason, "job failed");
            queue.release(&receipt, Duration::ZERO).await
        }
    };
    if let Err(e) = settled {
        // The job comes back after its visibility timeout; handlers are idempotent.
        tracing::warn!(job = %id, kind = %kind, error = %e, "could not settle job");
    }
}
