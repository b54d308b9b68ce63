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

use crate::{parse_lambda_record, Delivery, HandlerError, JobQueue, MAX_VISIBILITY};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Handles one SQS event. `queue`, when given, is the queue the records came from; it is used to
/// set a retried job's visibility to the handler's backoff.
pub async fn handle_sqs_event<F, Fut>(event: SqsEvent, queue: Option<Arc<dyn JobQueue>>, handler: F) -> SqsBatchResponse
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let runs = event.records.into_iter().map(|record| {
        let (handler, queue) = (handler.clone(), queue.clone());
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
            let outcome =
                tokio::spawn(handler(delivery)).await.unwrap_or_else(|e| Err(HandlerError::Fail(e.to_string())));
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

/// Runs an SQS-triggered worker Lambda until the runtime stops it. `queue_url` (the queue the
/// event source mapping reads, from the function's environment) lets retries set their backoff.
pub async fn serve<F, Fut>(queue_url: Option<String>, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Delivery) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let queue: Option<Arc<dyn JobQueue>> = match queue_url {
        Some(url) => {
            let config = aws_config::load_from_env().await;
            Some(Arc::new(crate::SqsQueue::new(aws_sdk_sqs::Client::new(&config), url, String::new())))
        }
        None => None,
    };
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
        let (queue, handler) = (queue.clone(), handler.clone());
        async move { Ok::<_, lambda_runtime::Error>(handle_sqs_event(event.payload, queue, handler).await) }
    }))
    .await
}
