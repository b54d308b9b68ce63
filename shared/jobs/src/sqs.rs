//! The SQS adapter: a standard queue plus its dead-letter queue (redrive after `max_receives`).
//!
//! A job travels as the message body, the job's JSON; nothing else is needed to decode it, so the
//! SQS-triggered worker Lambdas ([`parse_lambda_record`]) and [`SqsQueue::receive`] share one
//! decoding. SQS counts time in whole seconds: delays, visibility timeouts and long-poll waits are
//! rounded up to the next second (a long poll is capped at SQS's 20 s; callers loop).
//!
//! Stale receipts: SQS documents that `DeleteMessage` with a receipt handle that is not the
//! message's latest "succeeds, but the message might not be deleted", so `ack` returns `Ok` and
//! cannot promise either outcome. moto (our test server) deletes the message (it matches every
//! handle the message ever had), and the conformance suite asserts that. A worker therefore must
//! not rely on a stale ack being harmless on SQS: its handler has to finish within the visibility
//! timeout, and send jobs claim their work in the store before acting (see CONTRACT "Sending").

use crate::{validate_receive, validate_release, Delivery, Job, JobError, JobQueue, MAX_BATCH, MAX_DELAY};
use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use std::collections::HashMap;
use std::time::Duration;

/// SQS's longest long poll.
const MAX_WAIT_SECS: u64 = 20;
/// Dead letters are kept as long as SQS allows (14 days), for operators to look at.
const DLQ_RETENTION_SECS: &str = "1209600";
/// How long `dead_letters` hides the messages it has read while it reads on, so that each
/// `ReceiveMessage` returns messages not seen yet; they are made visible again at the end.
const PEEK_HIDE_SECS: i32 = 30;

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dlq_url: String,
}

impl SqsQueue {
    /// Queues that already exist (in AWS: created by `template.yaml`, URLs from the environment).
    pub fn new(client: Client, url: impl Into<String>, dlq_url: impl Into<String>) -> Self {
        SqsQueue { client, url: url.into(), dlq_url: dlq_url.into() }
    }

    /// Creates `<name>` and its dead-letter queue `<name>-dlq` if missing and (re)sets the redrive
    /// policy to `max_receives` (at least 1). Idempotent: an existing queue is looked up, not
    /// re-created, so a changed `max_receives` updates the policy instead of failing.
    pub async fn create(client: Client, name: &str, max_receives: u32) -> Result<Self, JobError> {
        let dlq_url = ensure_queue(&client, &format!("{name}-dlq")).await?;
        client
            .set_queue_attributes()
            .queue_url(&dlq_url)
            .attributes(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECS)
            .send()
            .await
            .map_err(classify)?;
        let attrs = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(classify)?;
        let dlq_arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or_else(|| JobError::Internal("dead-letter queue without an ARN".into()))?;
        let url = ensure_queue(&client, name).await?;
        let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.max(1)});
        client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(classify)?;
        Ok(SqsQueue { client, url, dlq_url })
    }

    /// [`SqsQueue::create`] on a local SQS (moto) with fixed dummy credentials and region, so tests
    /// need no AWS configuration and touch no process environment.
    pub async fn for_endpoint(endpoint: &str, name: &str, max_receives: u32) -> Result<Self, JobError> {
        let timeouts =
            aws_sdk_sqs::config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(60)).build();
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "linkcrm-static"))
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            .build();
        Self::create(Client::from_conf(conf), name, max_receives).await
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dead_letter_url(&self) -> &str {
        &self.dlq_url
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, job: &Job, delay: Duration) -> Result<(), JobError> {
        if delay > MAX_DELAY {
            return Err(JobError::DelayTooLong);
        }
        job.validate()?;
        let body = serde_json::to_string(job).map_err(|e| JobError::Internal(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(whole_secs(delay))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, JobError> {
        validate_receive(max, visibility)?;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max as i32)
            .visibility_timeout(whole_secs(visibility))
            .wait_time_seconds(whole_secs(wait).min(MAX_WAIT_SECS as i32))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.messages().iter().filter_map(decodable).collect())
    }

    /// `Ok` for a stale receipt too (SQS may or may not delete; moto deletes): see the module docs.
    async fn ack(&self, receipt: &str) -> Result<(), JobError> {
        self.client.delete_message().queue_url(&self.url).receipt_handle(receipt).send().await.map_err(classify)?;
        Ok(())
    }

    /// `StaleReceipt` when SQS says the handle is no longer in flight (moto accepts any handle the
    /// message ever had and changes the visibility of the message).
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), JobError> {
        validate_release(delay)?;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_secs(delay))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Reads the dead-letter queue without deleting: receives hide what was read so the next
    /// receive returns other messages, then everything read is made visible again at once.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Job>, JobError> {
        let mut seen: HashMap<String, (String, Job)> = HashMap::new();
        let mut order = Vec::new();
        while seen.len() < max {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages((max - seen.len()).min(MAX_BATCH) as i32)
                .visibility_timeout(PEEK_HIDE_SECS)
                .send()
                .await
                .map_err(classify)?;
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                let id = m.message_id().unwrap_or_default().to_owned();
                let Some(delivery) = decodable(m) else { continue };
                if !seen.contains_key(&id) {
                    order.push(id.clone());
                }
                seen.insert(id, (delivery.receipt, delivery.job));
            }
        }
        for chunk in order.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&seen[id].0)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| JobError::Internal(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(classify)?;
        }
        Ok(order.into_iter().filter_map(|id| seen.remove(&id)).map(|(_, job)| job).collect())
    }
}

/// Decodes one record of an SQS event delivered to a worker Lambda. The receipt handle acks or
/// releases it like a `receive`d one; reporting it in `batchItemFailures` instead leaves the retry
/// to the queue's visibility timeout.
pub fn parse_lambda_record(record: &SqsMessage) -> Result<Delivery, JobError> {
    let receipt = record.receipt_handle.clone().ok_or_else(|| JobError::Invalid("record without receipt".into()))?;
    let body = record.body.as_deref().ok_or_else(|| JobError::Invalid("record without body".into()))?;
    let count = record.attributes.get("ApproximateReceiveCount").map(String::as_str);
    Ok(Delivery { job: decode(body)?, receipt, receive_count: receive_count(count)? })
}

/// A message that is not a job is left out rather than failing the whole batch: it stays hidden
/// for the visibility timeout and, never acked, ends in the dead-letter queue after
/// `max_receives` receives, without dragging its batch-mates' receive counts up with it.
fn decodable(m: &Message) -> Option<Delivery> {
    delivery_of(m)
        .inspect_err(|e| tracing::error!(message = ?m.message_id(), error = %e, "undecodable message skipped"))
        .ok()
}

fn delivery_of(m: &Message) -> Result<Delivery, JobError> {
    let receipt = m.receipt_handle().ok_or_else(|| JobError::Internal("message without receipt".into()))?;
    let count = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount));
    Ok(Delivery {
        job: decode(m.body().unwrap_or_default())?,
        receipt: receipt.to_owned(),
        receive_count: receive_count(count.map(String::as_str))?,
    })
}

fn decode(body: &str) -> Result<Job, JobError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| JobError::Invalid(format!("message is not a job: {e}")))?;
    let job = match event_job(&value) {
        Some(job) => job,
        None => serde_json::from_value(value).map_err(|e| JobError::Invalid(format!("message is not a job: {e}")))?,
    };
    job.validate()?;
    Ok(job)
}

/// A domain event an EventBridge rule put on the queue (`{"detail-type", "source", "detail": <the
/// envelope>, ...}`) becomes a `domain_event` job whose id is the event's, so the event's
/// consumers run like any job and dedupe on the event id.
fn event_job(v: &serde_json::Value) -> Option<Job> {
    v.get("detail-type")?;
    let detail = v.get("detail")?;
    let id = detail.get("id")?.as_str()?.to_owned();
    Some(Job { id, kind: linkcrm_domain::jobs::JobKind::DomainEvent.as_str().to_owned(), payload: detail.clone() })
}

/// A missing count means the sender of the record did not ask for it: count it as a first delivery.
fn receive_count(attr: Option<&str>) -> Result<u32, JobError> {
    attr.map_or(Ok(1), |s| s.parse().map_err(|_| JobError::Invalid(format!("bad ApproximateReceiveCount {s:?}"))))
}

fn whole_secs(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// The queue's URL, created if it does not exist yet.
async fn ensure_queue(client: &Client, name: &str) -> Result<String, JobError> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => return out.queue_url().map(str::to_owned).ok_or_else(|| JobError::Internal("no queue URL".into())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => {}
        Err(e) => return Err(classify(e)),
    }
    let out = client.create_queue().queue_name(name).send().await.map_err(classify)?;
    out.queue_url().map(str::to_owned).ok_or_else(|| JobError::Internal("no queue URL".into()))
}

fn classify<E, R>(err: SdkError<E, R>) -> JobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or_default();
            let message = format!("{code}: {}", err.message().unwrap_or_default());
            match code.trim_start_matches("AWS.SimpleQueueService.") {
                "ReceiptHandleIsInvalid" | "MessageNotInflight" => JobError::StaleReceipt,
                "RequestThrottled"
                | "ThrottlingException"
                | "KmsThrottled"
                | "ServiceUnavailable"
                | "InternalError"
                | "InternalFailure" => JobError::Unavailable(message),
                "InvalidParameterValue"
                | "InvalidMessageContents"
                | "InvalidAttributeValue"
                | "NonExistentQueue"
                | "QueueDoesNotExist"
                | "InvalidAddress"
                | "BatchRequestTooLong" => JobError::Invalid(message),
                _ => JobError::Internal(message),
            }
        }
        // No (parseable) answer: the request may or may not have been applied; callers retry.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            JobError::Unavailable(DisplayErrorContext(&err).to_string())
        }
        _ => JobError::Internal(DisplayErrorContext(&err).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_records_decode_like_received_messages() {
        let record: SqsMessage = serde_json::from_value(serde_json::json!({
            "messageId": "m1",
            "receiptHandle": "rh-1",
            "body": r#"{"id":"job_1","kind":"send","payload":{"draft":"d1"}}"#,
            "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs"
        }))
        .unwrap();
        let d = parse_lambda_record(&record).unwrap();
        assert_eq!(d.job, Job { id: "job_1".into(), kind: "send".into(), payload: serde_json::json!({"draft": "d1"}) });
        assert_eq!((d.receipt.as_str(), d.receive_count), ("rh-1", 3));

        let mut broken = record.clone();
        broken.body = Some("not json".into());
        assert!(matches!(parse_lambda_record(&broken), Err(JobError::Invalid(_))));
        broken.body = record.body.clone();
        broken.receipt_handle = None;
        assert!(matches!(parse_lambda_record(&broken), Err(JobError::Invalid(_))));
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(whole_secs(Duration::ZERO), 0);
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::from_millis(1000)), 1);
        assert_eq!(whole_secs(Duration::from_millis(1500)), 2);
    }
}
