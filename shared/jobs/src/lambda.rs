//! SQS-triggered worker Lambdas: one event batch in, `ReportBatchItemFailures` out.
//!
//! Each record is handled on its own and concurrently, as [`crate::run_worker`] does for a
//! received batch. A job that succeeds is left out of the answer, so Lambda deletes it. A job to
//! retry is answered as a failure, after its visibility timeout is set to the handler's backoff
//! (`ChangeMessageVisibility`), so it comes back then rather than after the queue's full timeout.
//! A failed job is answered as a failure too: the queue's redrive policy moves it to the
//! dead-letter queue once it was received `maxReceiveCount` times. A record that is not a job
//! cannot get better by retrying; it is answered as a failure as well, so it ends in the
//! dead-letter queue for an operator instead of vanishing.
//!
//! A worker may also be mapped to its dead-letter queue: records from there (the event source ARN
//! names the queue given as `dead_letter_arn`) reach the handler with [`Source::DeadLetter`], so it
//! can settle what the dead job left behind (its invocation) instead of running it.

use crate::{parse_lambda_record, Delivery, HandlerError, JobQueue, MAX_VISIBILITY};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Where a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The work queue: run the job.
    Queue,
    /// The work queue's dead-letter queue: the job was received too often (its worker died each
    /// time, or it kept failing); settle it, do not run it.
    DeadLetter,
}

/// The queues a worker Lambda reads.
#[derive(Clone, Default)]
pub struct Queues {
    /// The work queue, to set a retried job's visibility to the handler's backoff.
    pub queue: Option<Arc<dyn JobQueue>>,
    /// The ARN of the work queue's dead-letter queue, when the worker is mapped to it too.
    pub dead_letter_arn: Option<String>,
}

/// Handles one SQS event.
pub async fn handle_sqs_event<F, Fut>(event: SqsEvent, queues: Queues, handler: F) -> SqsBatchResponse
where
    F: Fn(Delivery, Source) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let runs = event.records.into_iter().map(|record| {
        let handler = handler.clone();
        let source = match (&queues.dead_letter_arn, &record.event_source_arn) {
            (Some(dlq), Some(arn)) if dlq == arn => Source::DeadLetter,
            _ => Source::Queue,
        };
        // Visibility changes apply to the work queue's receipts only.
        let queue = if source == Source::Queue { queues.queue.clone() } else { None };
        async move {
            let id = record.message_id.clone().unwrap_or_default();
            let delivery = match parse_lambda_record(&record) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(message = %id, error = %e, "record is not a job; left for the dead-letter queue");
                    return Some(id);
                }
            };
            let (receipt, job_id, kind) =
                (delivery.receipt.clone(), delivery.job.id.clone(), delivery.job.kind.clone());
            // Spawned so that a panicking handler fails its record, not the whole batch.
            let outcome = tokio::spawn(handler(delivery, source))
                .await
                .unwrap_or_else(|e| Err(HandlerError::Fail(e.to_string())));
            match outcome {
                Ok(()) => None,
                Err(HandlerError::Retry { after }) => {
                    if let Some(q) = queue {
                        if let Err(e) = q.release(&receipt, after.min(MAX_VISIBILITY)).await {
                            // It still comes back, after the queue's visibility timeout.
                            tracing::warn!(job = %job_id, error = %e, "could not set the retry delay");
                        }
                    }
                    Some(id)
                }
                Err(HandlerError::Fail(reason)) => {
                    tracing::warn!(job = %job_id, %kind, %reason, "job failed");
                    if let Some(q) = queue {
                        let _ = q.release(&receipt, Duration::ZERO).await;
                    }
                    Some(id)
                }
            }
        }
    });
    let failed = futures::future::join_all(runs).await;
    let mut response = SqsBatchResponse::default();
    for id in failed.into_iter().flatten() {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        response.batch_item_failures.push(f);
    }
    response
}

/// Runs an SQS-triggered worker Lambda until the runtime stops it. From the environment:
/// `LINKCRM_QUEUE_URL` (the work queue, so retries set their backoff) and
/// `LINKCRM_DEAD_LETTER_QUEUE_ARN` (records from there are [`Source::DeadLetter`]).
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Delivery, Source) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut queues = Queues { queue: None, dead_letter_arn: var("LINKCRM_DEAD_LETTER_QUEUE_ARN") };
    if let Some(url) = var("LINKCRM_QUEUE_URL") {
        let config = linkcrm_storage::aws::sdk_config().await;
        queues.queue = Some(Arc::new(crate::SqsQueue::new(aws_sdk_sqs::Client::new(config), url, String::new())));
    }
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
        let (queues, handler) = (queues.clone(), handler.clone());
        async move { Ok::<_, lambda_runtime::Error>(handle_sqs_event(event.payload, queues, handler).await) }
    }))
    .await
}

/// As [`serve`], for a worker that an EventBridge schedule also invokes: an event with SQS
/// `Records` is a batch of jobs; anything else is the schedule's tick, handled by `on_tick`.
pub async fn serve_with_schedule<F, Fut, T, TFut>(handler: F, on_tick: T) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Delivery, Source) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    T: Fn() -> TFut + Clone + Send + Sync + 'static,
    TFut: Future<Output = Result<serde_json::Value, String>> + Send + 'static,
{
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut queues = Queues { queue: None, dead_letter_arn: var("LINKCRM_DEAD_LETTER_QUEUE_ARN") };
    if let Some(url) = var("LINKCRM_QUEUE_URL") {
        let config = linkcrm_storage::aws::sdk_config().await;
        queues.queue = Some(Arc::new(crate::SqsQueue::new(aws_sdk_sqs::Client::new(config), url, String::new())));
    }
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let (queues, handler, on_tick) = (queues.clone(), handler.clone(), on_tick.clone());
        async move {
            if event.payload.get("Records").is_some() {
                let sqs: SqsEvent = serde_json::from_value(event.payload)?;
                return Ok::<_, lambda_runtime::Error>(serde_json::to_value(
                    handle_sqs_event(sqs, queues, handler).await,
                )?);
            }
            on_tick().await.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
