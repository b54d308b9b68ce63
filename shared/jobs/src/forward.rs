//! The job outbox in AWS: moves jobs committed to the store queue's partition into SQS.
//!
//! Every job is first committed with the change that asks for it (`StoreQueue::enqueue_op`), as an
//! item of the `JOBQ#<queue>` partition, so no job is lost between the commit and the queue. The
//! local binary consumes that partition directly. In AWS the workers are SQS-triggered Lambdas, so
//! the [`Forwarder`] hands each job over to the SQS queue that serves its kind and then deletes the
//! item: send, then delete, like the event relay (at least once; a job forwarded twice is two
//! deliveries of one job id, which the handlers already tolerate).
//!
//! Two paths feed it, both in the relay Lambda:
//! - the table's stream: a job INSERT due within SQS's 15-minute delay is forwarded at once, with
//!   the remaining time as `DelaySeconds` ([`Forwarder::forward_items`]);
//! - a one-minute schedule ([`Forwarder::forward_due`]): one Query of the partition by visible
//!   time (the sort key) finds jobs scheduled further ahead that came within 15 minutes of their
//!   time, and any job the stream path failed to forward. It leaves alone jobs younger than
//!   [`STREAM_GRACE`], which the stream is still handling, so the two paths rarely both send one.

use crate::store_queue::{stamp, Stored, QUEUE_PREFIX};
use crate::{JobError, JobQueue, MAX_DELAY};
use chrono::{DateTime, Utc};
use linkcrm_storage::{Condition, Item, Key, Query, SortKey, Store, StoreError, TxOp, PK};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long the schedule leaves a new job to the stream path.
pub const STREAM_GRACE: Duration = Duration::from_secs(120);
const PAGE: usize = 100;

pub struct Forwarder {
    store: Arc<dyn Store>,
    pk: String,
    dlq_pk: String,
    routes: HashMap<String, Arc<dyn JobQueue>>,
    grace: Duration,
}

/// What one forwarding pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Forwarded {
    /// Jobs handed to a queue (and removed from the store).
    pub sent: usize,
    /// Jobs still due later than the queue's longest delay, left for a later pass.
    pub later: usize,
    /// Jobs of a kind no queue serves, moved to the store queue's dead-letter partition.
    pub unroutable: usize,
}

impl Forwarder {
    /// Forwards jobs of the store queue `queue` (the name given to `StoreQueue::enqueue_op`).
    pub fn new(store: Arc<dyn Store>, queue: &str) -> Self {
        Forwarder {
            store,
            pk: format!("{QUEUE_PREFIX}{queue}"),
            dlq_pk: format!("{QUEUE_PREFIX}{queue}#DLQ"),
            routes: HashMap::new(),
            grace: STREAM_GRACE,
        }
    }

    /// Jobs of `kind` go to `queue`.
    pub fn route(mut self, kind: &str, queue: Arc<dyn JobQueue>) -> Self {
        self.routes.insert(kind.to_owned(), queue);
        self
    }

    /// How long [`Forwarder::forward_due`] leaves new jobs to the stream path (tests use zero).
    pub fn with_stream_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether an item (a stream image) is a job of this forwarder's queue.
    pub fn is_job(&self, item: &Item) -> bool {
        item.get(PK).and_then(Value::as_str) == Some(self.pk.as_str())
    }

    /// Forwards the jobs among `items` (stream INSERT images; others are ignored) that are due
    /// within the queue's longest delay. An image whose item is gone was forwarded already (or
    /// consumed) and is skipped, so a retried stream batch does not send its jobs again.
    pub async fn forward_items(&self, items: Vec<Item>) -> Result<Forwarded, JobError> {
        let now = Utc::now();
        let mut done = Forwarded::default();
        for image in items.into_iter().filter(|i| self.is_job(i)) {
            let Some(key) = Key::of(&image) else { continue };
            let Some(current) = self.store.get(&key).await? else { continue };
            self.forward(&Stored::from_item(&current)?, now, &mut done).await?;
        }
        Ok(done)
    }

    /// Forwards every job due within the queue's longest delay that has waited at least the
    /// stream grace; pages until the partition has no more.
    pub async fn forward_due(&self) -> Result<Forwarded, JobError> {
        let now = Utc::now();
        let horizon = now + chrono::Duration::from_std(MAX_DELAY).unwrap_or_default();
        let grace_start = stamp(now - chrono::Duration::from_std(self.grace).unwrap_or_default());
        let mut done = Forwarded::default();
        let mut cursor = None;
        loop {
            let q = Query::partition(&self.pk).sk(SortKey::AtMost(format!("{}$", stamp(horizon)))).limit(PAGE);
            let page = self.store.query(q.after(cursor.take())).await?;
            for item in &page.items {
                let stored = Stored::from_item(item)?;
                let enqueued = item.get("enqueuedAt").and_then(Value::as_str).unwrap_or_default();
                if enqueued > grace_start.as_str() {
                    continue;
                }
                self.forward(&stored, now, &mut done).await?;
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(done),
            }
        }
    }

    async fn forward(&self, stored: &Stored, now: DateTime<Utc>, done: &mut Forwarded) -> Result<(), JobError> {
        let visible_at = stored.visible_at().unwrap_or(now);
        let wait = (visible_at - now).to_std().unwrap_or_default();
        if wait > MAX_DELAY {
            done.later += 1;
            return Ok(());
        }
        let unchanged = Condition::Equals("receives".into(), stored.receives.into());
        let Some(queue) = self.routes.get(&stored.job.kind) else {
            tracing::error!(job = %stored.job.id, kind = %stored.job.kind, "no queue serves this job kind; dead-lettered");
            let mut item = stored.item.clone();
            item.insert(PK.into(), self.dlq_pk.clone().into());
            item.insert("deadLetteredAt".into(), stamp(now).into());
            let old = Key::of(&stored.item).expect("a stored job has a key");
            return match self
                .store
                .transact(vec![TxOp::Delete { key: old, cond: Some(unchanged) }, TxOp::put(item)])
                .await
            {
                Ok(()) => {
                    done.unroutable += 1;
                    Ok(())
                }
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        queue.enqueue(&stored.job, wait).await?;
        let key = Key::of(&stored.item).expect("a stored job has a key");
        match self.store.delete(&key, Some(unchanged)).await {
            // Gone already: the other path forwarded it too; the handlers dedupe on the job.
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        done.sent += 1;
        Ok(())
    }
}
