//! The `EventBus` port: where committed events go. Two adapters: [`crate::InProcessBus`] (local
//! binary) and [`crate::EventBridgeBus`] (AWS).

use crate::DomainEvent;
use async_trait::async_trait;

/// A publish that did not fully succeed. The relay keeps the events in the outbox and retries the
/// whole batch, so parts that did go out are published again with the same ids.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The transport failed (network, timeout, throttling, a 5xx): retry later.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// The receiver answered but refused some events (a non-2xx answer, failed PutEvents entries).
    #[error("event bus refused {failed} event(s): {detail}")]
    Refused { failed: usize, detail: String },
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes the events, all or error: a partial failure is an error. Events may be delivered
    /// more than once (with the same id) when a batch is retried.
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError>;
}
