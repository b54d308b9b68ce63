//! The relay: publishes what the outbox holds, then acknowledges it by deleting the outbox items.
//!
//! Publish-then-delete makes delivery at-least-once: a relay that stops between the two publishes
//! the same events again (same ids, same bodies) next time; consumers dedupe on the id. Nothing is
//! deleted before the bus accepted it, so nothing is lost.
//!
//! In AWS the DynamoDB Stream of the table feeds [`Relay::handle_stream_items`]; the local binary
//! runs [`Relay::run`], which polls the outbox shards with [`Relay::drain_once`].

use crate::outbox::{event_of, outbox_partitions, OutboxItemError};
use crate::{BusError, DomainEvent, EventBus};
use linkcrm_storage::{Item, Key, Query, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Test-only failpoint. With `LINKCRM_FAULT=relay_crash_after_publish` the relay aborts the process
/// right after a successful publish and before acknowledging, which is the window in which
/// at-least-once delivery republishes. The crash test sets it in a child process; nothing else
/// should. Compiled only with the `failpoints` feature, which the test builds turn on and release
/// builds do not: in a release binary the variable does nothing.
pub const FAULT_ENV: &str = "LINKCRM_FAULT";
pub const FAULT_CRASH_AFTER_PUBLISH: &str = "relay_crash_after_publish";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

pub struct Relay {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    page_size: usize,
    poll_interval: Duration,
    max_backoff: Duration,
    crash_after_publish: bool,
}

impl Relay {
    /// Reads the failpoint from the environment once, here.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>) -> Self {
        let crash_after_publish =
            cfg!(feature = "failpoints") && std::env::var(FAULT_ENV).is_ok_and(|v| v == FAULT_CRASH_AFTER_PUBLISH);
        if crash_after_publish {
            tracing::warn!(
                "relay failpoint {FAULT_CRASH_AFTER_PUBLISH} is armed: the process will abort after publishing"
            );
        }
        Relay {
            store,
            bus,
            page_size: 100,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            crash_after_publish,
        }
    }

    /// Outbox items read (and published) per query; at most 100, the size of one transaction.
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 100);
        self
    }

    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Publishes every event in the outbox, oldest first within each shard, and acknowledges each
    /// page after its publish. Returns how many events were published. A shard whose publish
    /// fails stops there (keeping its order) but does not hold back the other shards; the first
    /// failure is returned once every shard had its turn.
    pub async fn drain_once(&self) -> Result<usize, RelayError> {
        let mut published = 0;
        let mut first_error = None;
        for pk in outbox_partitions() {
            match self.drain_shard(&pk).await {
                Ok(n) => published += n,
                Err((n, e)) => {
                    published += n;
                    tracing::warn!(shard = %pk, error = %e, "outbox shard not drained");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(published),
        }
    }

    /// Drains one shard; on failure also says how many it had published before.
    async fn drain_shard(&self, pk: &str) -> Result<usize, (usize, RelayError)> {
        let mut published = 0;
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(Query::partition(pk).limit(self.page_size).after(cursor))
                .await
                .map_err(|e| (published, e.into()))?;
            let batch = self.events_of(&page.items);
            published += self.publish_and_ack(batch).await.map_err(|e| (published, e))?;
            // Acknowledged items are gone, but the cursor still marks where the page ended, so
            // items the relay skipped (malformed, other kinds) are not read again.
            match page.cursor {
                Some(c) if !page.items.is_empty() => cursor = Some(c),
                _ => return Ok(published),
            }
        }
    }

    /// Publishes then acknowledges outbox items handed over by a stream (the NewImages of
    /// INSERTed items). Items that are not outbox events are ignored: the stream carries the
    /// whole table.
    pub async fn handle_stream_items(&self, items: Vec<Item>) -> Result<(), RelayError> {
        self.publish_and_ack(self.events_of(&items)).await?;
        Ok(())
    }

    /// Test hook: publishes the first page of each shard without acknowledging it, as a relay that
    /// stopped between publish and acknowledge would. Returns how many events went out.
    #[doc(hidden)]
    pub async fn publish_only(&self) -> Result<usize, RelayError> {
        let mut published = 0;
        for pk in outbox_partitions() {
            let page = self.store.query(Query::partition(&pk).limit(self.page_size)).await?;
            let events = self.events_of(&page.items).events;
            if !events.is_empty() {
                self.bus.publish(&events).await?;
                published += events.len();
            }
        }
        Ok(published)
    }

    /// The local binary's relay task: drain, then sleep until woken or until the poll interval
    /// passes. `wake` is the store's commit signal (`EmbeddedStore::commit_notify`); both
    /// `notify_one` and `notify_waiters` work, and a commit that lands during a drain still wakes
    /// the next wait. Failed drains back off exponentially and ignore wake-ups, so a broken sink
    /// is not hammered by every commit. Stops when `shutdown` turns true or its sender is dropped.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.poll_interval;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Created before draining: a `Notified` receives `notify_waiters` calls made after its
            // creation even before it is polled, so a commit signalled during the drain is not missed.
            let woken = wake.notified();
            match self.drain_once().await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(published = n, "relay drained the outbox");
                    }
                    backoff = self.poll_interval;
                    tokio::select! {
                        _ = woken => {}
                        _ = tokio::time::sleep(self.poll_interval) => {}
                        r = shutdown.changed() => if r.is_err() { break },
                    }
                }
                Err(e) => {
                    backoff = (backoff * 2).min(self.max_backoff);
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "relay drain failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        r = shutdown.changed() => if r.is_err() { break },
                    }
                }
            }
        }
        tracing::info!("relay stopped");
    }

    /// The events of outbox items, with the keys they were read at. A malformed outbox item is
    /// logged and left in place (an operator must look at it); the others must not wait for it.
    fn events_of(&self, items: &[Item]) -> Batch {
        let mut batch = Batch::default();
        for item in items {
            match event_of(item) {
                Ok(e) => {
                    batch.keys.push(Key::of(item).expect("event_of checked the key"));
                    batch.events.push(e);
                }
                Err(OutboxItemError::NotAnEvent) => {}
                Err(e) => {
                    tracing::error!(error = %e, pk = ?item.get("PK"), sk = ?item.get("SK"), "skipping outbox item")
                }
            }
        }
        batch
    }

    async fn publish_and_ack(&self, batch: Batch) -> Result<usize, RelayError> {
        if batch.events.is_empty() {
            return Ok(0);
        }
        self.bus.publish(&batch.events).await?;
        if self.crash_after_publish {
            tracing::error!(
                events = batch.events.len(),
                "failpoint {FAULT_CRASH_AFTER_PUBLISH}: aborting before acknowledging"
            );
            std::process::abort();
        }
        // Unconditional deletes of the keys the items were read at, in one call (one write on
        // the embedded store, BatchWriteItem on DynamoDB): acknowledging an item another relay
        // already removed is fine.
        self.store.delete_many(&batch.keys).await?;
        Ok(batch.events.len())
    }
}

/// Events to publish and the outbox keys that acknowledge them.
#[derive(Default)]
struct Batch {
    keys: Vec<Key>,
    events: Vec<DomainEvent>,
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
