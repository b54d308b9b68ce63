//! The durable queue kept in the `Store`: the local binary's queue, written against the port only.
//!
//! Items (primary index only):
//! - a waiting or in-flight job: `PK = JOBQ#<queue>`, `SK = <visible-at, RFC 3339 UTC ms>#<job id>`,
//!   with `jobId`, `kind`, `payload`, `receives` (deliveries so far) and `enqueuedAt`. The sort key
//!   puts the partition in visible-time order, so the jobs visible now are one Query of the
//!   prefix `SK <= now`; a delayed job or one hidden by a delivery simply sits later in the order.
//! - a dead letter: `PK = JOBQ#<queue>#DLQ`, `SK = <moved-at>#<job id>`, the same attributes.
//!
//! A change of visible time changes the sort key, so claiming, releasing and dead-lettering a job
//! are each one transaction of "delete the item at its old key, if `receives` is still the value
//! read" + "put it at its new key". The condition makes a claim exclusive (of two workers that
//! read the same job, one transaction fails and that worker moves on) and makes receipts precise:
//! a receipt is `<receives>/<sort key>`, which names one delivery, so a receipt from before a
//! redelivery, ack or release no longer matches and is refused with `StaleReceipt`.

use crate::{validate_receive, validate_release, Delivery, Job, JobError, JobQueue, MAX_DELAY};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use linkcrm_storage::{Condition, Item, Key, Query, SortKey, Store, StoreError, TxOp, PK, SK};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const QUEUE_PREFIX: &str = "JOBQ#";
const RECEIVES: &str = "receives";
/// How often a long poll looks again when nothing in this process wakes it (a delay or a
/// visibility timeout running out, or a job enqueued by another `StoreQueue` on the same store).
const DEFAULT_POLL: Duration = Duration::from_millis(100);
/// Candidates read per receive beyond `max`: spare ones to try when concurrent receivers claimed
/// the first ones, or when some have to move to the dead-letter queue.
const SPARE_CANDIDATES: usize = 20;

pub struct StoreQueue {
    store: Arc<dyn Store>,
    pk: String,
    dlq_pk: String,
    max_receives: u32,
    poll: Duration,
    /// Wakes this queue's long polls when it enqueues or releases a job.
    wake: Arc<Notify>,
}

impl StoreQueue {
    /// The transaction part that enqueues `job` on the store queue `name` after `delay`, for a
    /// caller that must commit the job together with the record it works on (the job exists iff
    /// that record does). A receiver on another `StoreQueue` sees it within its poll interval.
    pub fn enqueue_op(name: &str, job: &Job, delay: Duration) -> Result<TxOp, JobError> {
        if delay > MAX_DELAY {
            return Err(JobError::DelayTooLong);
        }
        job.validate()?;
        let now = Utc::now();
        Ok(TxOp::put_if(job_item(&format!("{QUEUE_PREFIX}{name}"), job, now, at(now, delay)), Condition::NotExists))
    }

    /// Like `enqueue_op`, but the job becomes visible at `visible_at`, however far ahead: the store
    /// queue keeps jobs in visible-time order, so unlike `enqueue` (and SQS) it needs no delay
    /// limit. For work due at a known time (a send scheduled for next week, an approval's
    /// timeout). A time already past makes the job visible at once.
    pub fn enqueue_at_op(name: &str, job: &Job, visible_at: DateTime<Utc>) -> Result<TxOp, JobError> {
        job.validate()?;
        let now = Utc::now();
        let item = job_item(&format!("{QUEUE_PREFIX}{name}"), job, now, visible_at.max(now));
        Ok(TxOp::put_if(item, Condition::NotExists))
    }

    /// `max_receives` (at least 1): deliveries before a job moves to the dead-letter queue.
    pub fn new(store: Arc<dyn Store>, name: &str, max_receives: u32) -> Self {
        StoreQueue {
            store,
            pk: format!("{QUEUE_PREFIX}{name}"),
            dlq_pk: format!("{QUEUE_PREFIX}{name}#DLQ"),
            max_receives: max_receives.max(1),
            poll: DEFAULT_POLL,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Up to `max` dead letters moved here after the one whose position is `after` (from the start
    /// when `None`), oldest first, each with its position. Dead letters are never removed, so a
    /// reader that settles them walks forward with this instead of rereading the oldest.
    pub async fn dead_letters_after(&self, after: Option<&str>, max: usize) -> Result<Vec<(String, Job)>, JobError> {
        let mut q = Query::partition(&self.dlq_pk).limit(max.clamp(1, 1000));
        if let Some(a) = after {
            q = q.sk(SortKey::After(a.to_owned()));
        }
        let page = self.store.query(q).await?;
        page.items.iter().map(|i| Stored::from_item(i).map(|s| (s.sk, s.job))).collect()
    }

    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Claims up to `max` of the jobs visible now; moves exhausted ones to the dead-letter queue.
    async fn claim_visible(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, JobError> {
        let now = Utc::now();
        // `$` sorts right after `#`, so this bound takes every job whose visible time is <= now.
        let upto = format!("{}$", stamp(now));
        let page = self
            .store
            .query(Query::partition(&self.pk).sk(SortKey::AtMost(upto)).limit(max + SPARE_CANDIDATES))
            .await?;
        let mut out = Vec::new();
        for item in page.items {
            if out.len() == max {
                break;
            }
            let stored = Stored::from_item(&item)?;
            let result = if stored.receives >= self.max_receives {
                self.dead_letter(&stored, now).await.map(|()| None)
            } else {
                self.claim(&stored, now, visibility).await.map(Some)
            };
            match result {
                Ok(Some(delivery)) => out.push(delivery),
                Ok(None) => {}
                // Another receiver claimed it first (or an ack removed it): try the next one.
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    async fn claim(&self, stored: &Stored, now: DateTime<Utc>, visibility: Duration) -> Result<Delivery, StoreError> {
        let receives = stored.receives + 1;
        let sk = self.moved(stored, at(now, visibility), receives).await?;
        Ok(Delivery { job: stored.job.clone(), receipt: format!("{receives}/{sk}"), receive_count: receives })
    }

    /// Moves a job to the key of a new visible time, if it is still as `stored` saw it; returns
    /// the new sort key.
    async fn moved(&self, stored: &Stored, visible_at: DateTime<Utc>, receives: u32) -> Result<String, StoreError> {
        let sk = sort_key(visible_at, &stored.job.id);
        let mut item = stored.item.clone();
        item.insert(SK.into(), sk.clone().into());
        item.insert(RECEIVES.into(), receives.into());
        let unchanged = Condition::Equals(RECEIVES.into(), stored.receives.into());
        let old = Key::new(&self.pk, &stored.sk);
        if sk == stored.sk {
            // A transaction may not touch one key twice; same key, so update it in place.
            self.store.put(item, Some(unchanged)).await?;
        } else {
            self.store.transact(vec![TxOp::Delete { key: old, cond: Some(unchanged) }, TxOp::put(item)]).await?;
        }
        Ok(sk)
    }

    async fn dead_letter(&self, stored: &Stored, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = stored.item.clone();
        item.insert(PK.into(), self.dlq_pk.clone().into());
        item.insert(SK.into(), sort_key(now, &stored.job.id).into());
        item.insert("deadLetteredAt".into(), stamp(now).into());
        let unchanged = Condition::Equals(RECEIVES.into(), stored.receives.into());
        let old = Key::new(&self.pk, &stored.sk);
        tracing::warn!(job = %stored.job.id, kind = %stored.job.kind, receives = stored.receives, "job dead-lettered");
        self.store.transact(vec![TxOp::Delete { key: old, cond: Some(unchanged) }, TxOp::put(item)]).await
    }

    /// The job item a receipt names, if that delivery is still the job's latest.
    async fn delivered(&self, receipt: &str) -> Result<Stored, JobError> {
        let (receives, sk) = parse_receipt(receipt)?;
        let item = self.store.get(&Key::new(&self.pk, sk)).await?.ok_or(JobError::StaleReceipt)?;
        let stored = Stored::from_item(&item)?;
        if stored.receives != receives {
            return Err(JobError::StaleReceipt);
        }
        Ok(stored)
    }
}

#[async_trait]
impl JobQueue for StoreQueue {
    async fn enqueue(&self, job: &Job, delay: Duration) -> Result<(), JobError> {
        if delay > MAX_DELAY {
            return Err(JobError::DelayTooLong);
        }
        job.validate()?;
        let now = Utc::now();
        let item = job_item(&self.pk, job, now, at(now, delay));
        match self.store.put(item, Some(Condition::NotExists)).await {
            // The same job id enqueued twice in one millisecond: one copy is enough.
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, JobError> {
        validate_receive(max, visibility)?;
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a job enqueued in between still wakes this poll.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let got = self.claim_visible(max, visibility).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !got.is_empty() || left.is_zero() {
                return Ok(got);
            }
            let _ = tokio::time::timeout(left.min(self.poll), woken).await;
        }
    }

    /// Refuses a stale receipt with `StaleReceipt`, leaving the job to its newer delivery.
    async fn ack(&self, receipt: &str) -> Result<(), JobError> {
        let (receives, sk) = parse_receipt(receipt)?;
        let cond = Condition::Equals(RECEIVES.into(), receives.into());
        match self.store.delete(&Key::new(&self.pk, sk), Some(cond)).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(JobError::StaleReceipt),
            Err(e) => Err(e.into()),
        }
    }

    /// Refuses a stale receipt with `StaleReceipt`.
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), JobError> {
        validate_release(delay)?;
        let stored = self.delivered(receipt).await?;
        match self.moved(&stored, at(Utc::now(), delay), stored.receives).await {
            Ok(_) => {}
            Err(StoreError::ConditionFailed { .. }) => return Err(JobError::StaleReceipt),
            Err(e) => return Err(e.into()),
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<Job>, JobError> {
        let page = self.store.query(Query::partition(&self.dlq_pk).limit(max.clamp(1, 1000))).await?;
        page.items.iter().map(|i| Stored::from_item(i).map(|s| s.job)).collect()
    }
}

fn job_item(pk: &str, job: &Job, now: DateTime<Utc>, visible_at: DateTime<Utc>) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), pk.into());
    item.insert(SK.into(), sort_key(visible_at, &job.id).into());
    item.insert("entity".into(), "job".into());
    item.insert("jobId".into(), job.id.clone().into());
    item.insert("kind".into(), job.kind.clone().into());
    item.insert("payload".into(), job.payload.clone());
    item.insert(RECEIVES.into(), 0.into());
    item.insert("enqueuedAt".into(), stamp(now).into());
    item
}

/// A job item as read.
pub(crate) struct Stored {
    pub(crate) item: Item,
    sk: String,
    pub(crate) job: Job,
    pub(crate) receives: u32,
}

impl Stored {
    /// When the job becomes visible: the sort key's leading timestamp.
    pub(crate) fn visible_at(&self) -> Option<DateTime<Utc>> {
        let (t, _) = self.sk.split_once('#')?;
        DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc))
    }

    pub(crate) fn from_item(item: &Item) -> Result<Stored, JobError> {
        let bad = || JobError::Internal(format!("malformed job item {:?}", Key::of(item)));
        let text = |attr: &str| item.get(attr).and_then(Value::as_str).map(str::to_owned).ok_or_else(bad);
        let job =
            Job { id: text("jobId")?, kind: text("kind")?, payload: item.get("payload").cloned().unwrap_or_default() };
        let receives =
            item.get(RECEIVES).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
        Ok(Stored { item: item.clone(), sk: text(SK)?, job, receives })
    }
}

pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn sort_key(visible_at: DateTime<Utc>, job_id: &str) -> String {
    format!("{}#{job_id}", stamp(visible_at))
}

fn at(now: DateTime<Utc>, after: Duration) -> DateTime<Utc> {
    // Both bounded by MAX_VISIBILITY by the callers, so the conversion cannot fail.
    now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero())
}

fn parse_receipt(receipt: &str) -> Result<(u32, &str), JobError> {
    let invalid = || JobError::Invalid("not a receipt of this queue".into());
    let (n, sk) = receipt.split_once('/').ok_or_else(invalid)?;
    let n = n.parse().map_err(|_| invalid())?;
    if sk.is_empty() {
        return Err(invalid());
    }
    Ok((n, sk))
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => JobError::Unavailable(m),
            StoreError::Conflict => JobError::Unavailable("store transaction conflict".into()),
            StoreError::ItemTooLarge { size } => JobError::Invalid(format!("job of {size} bytes is too large")),
            StoreError::Invalid(m) => JobError::Invalid(m),
            e @ (StoreError::ConditionFailed { .. } | StoreError::Internal(_)) => JobError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enqueue_at_places_the_job_at_its_visible_time() {
        let job = Job::new("k", serde_json::json!({}));
        let later = Utc::now() + chrono::Duration::days(7);
        let TxOp::Put { item, cond } = StoreQueue::enqueue_at_op("q", &job, later).unwrap() else { panic!("a put") };
        assert!(matches!(cond, Some(Condition::NotExists)));
        assert_eq!(item.get(PK).and_then(Value::as_str), Some("JOBQ#q"));
        assert_eq!(item.get(SK).and_then(Value::as_str), Some(sort_key(later, &job.id).as_str()));
        // A time already past: visible now, not in the past.
        let TxOp::Put { item, .. } = StoreQueue::enqueue_at_op("q", &job, later - chrono::Duration::days(30)).unwrap()
        else {
            panic!("a put")
        };
        assert!(
            item.get(SK).and_then(Value::as_str).unwrap() >= stamp(Utc::now() - chrono::Duration::seconds(5)).as_str()
        );
    }

    #[test]
    fn sort_keys_order_by_visible_time() {
        let t = Utc::now();
        let a = sort_key(t, "job_b");
        let b = sort_key(t + chrono::Duration::milliseconds(1), "job_a");
        assert!(a < b, "{a} sorts before {b}");
        // The query bound for "visible at t" takes a but not b.
        let bound = format!("{}$", stamp(t));
        assert!(a <= bound && b > bound);
    }

    #[test]
    fn receipts_round_trip_and_reject_garbage() {
        assert_eq!(parse_receipt("3/2025-01-01T00:00:00.000Z#job_1").unwrap(), (3, "2025-01-01T00:00:00.000Z#job_1"));
        for bad in ["", "x/y", "3", "3/", "-1/a"] {
            assert!(matches!(parse_receipt(bad), Err(JobError::Invalid(_))), "{bad:?}");
        }
    }
}
