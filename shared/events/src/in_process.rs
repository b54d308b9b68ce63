//! The local binary's bus: in-process subscribers, and optionally an HTTP sink that receives every
//! envelope (`LINKCRM_EVENT_SINK_URL`), which is how a developer or a black-box test watches events.

use crate::{BusError, DomainEvent, EventBus};
use async_trait::async_trait;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;

pub const SINK_URL_ENV: &str = "LINKCRM_EVENT_SINK_URL";
/// Header carrying the event id on sink POSTs, so a receiver can dedupe without parsing the body.
pub const EVENT_ID_HEADER: &str = "linkcrm-event-id";

/// A subscriber whose failure fails the publish (so the relay retries and nothing is lost).
/// Handlers see an event at least once; they dedupe on its id (see [`crate::Deduper`]).
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &DomainEvent) -> Result<(), BusError>;
}

pub struct InProcessBus {
    handlers: RwLock<Vec<Arc<dyn EventHandler>>>,
    watchers: broadcast::Sender<DomainEvent>,
    sink: Option<(reqwest::Client, String)>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        InProcessBus { handlers: RwLock::new(Vec::new()), watchers: broadcast::channel(1024).0, sink: None }
    }

    /// Also POSTs every envelope to `url`.
    pub fn with_sink(url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client builds with static settings");
        InProcessBus { sink: Some((client, url.into())), ..Self::new() }
    }

    /// A sink from `LINKCRM_EVENT_SINK_URL` when it is set and not empty.
    pub fn from_env() -> Self {
        match std::env::var(SINK_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Self::with_sink(url.trim()),
            _ => Self::new(),
        }
    }

    /// Registers a handler that every publish awaits, in registration order.
    pub fn register(&self, handler: Arc<dyn EventHandler>) {
        self.handlers.write().unwrap_or_else(|e| e.into_inner()).push(handler);
    }

    /// A best-effort view of published events, for observers such as tests and logs. A receiver
    /// that falls more than 1024 events behind misses some (`RecvError::Lagged`); anything that
    /// must not miss events registers an [`EventHandler`] instead.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.watchers.subscribe()
    }

    async fn post(&self, client: &reqwest::Client, url: &str, event: &DomainEvent) -> Result<(), BusError> {
        let res = client
            .post(url)
            .header(EVENT_ID_HEADER, &event.id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event.to_json())
            .send()
            .await
            .map_err(|e| BusError::Unavailable(format!("event sink {url}: {e}")))?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(BusError::Unavailable(format!("event sink {url} answered {status}")))
        } else {
            Err(BusError::Refused { failed: 1, detail: format!("event sink {url} answered {status} for {}", event.id) })
        }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        // The sink and the handlers go first: if either fails, the batch is retried, and the
        // best-effort watchers only ever see events once per successful publish.
        if let Some((client, url)) = &self.sink {
            for event in events {
                self.post(client, url, event).await?;
            }
        }
        let handlers = self.handlers.read().unwrap_or_else(|e| e.into_inner()).clone();
        for event in events {
            for h in &handlers {
                h.handle(event).await?;
            }
        }
        for event in events {
            // No watcher is not an error.
            let _ = self.watchers.send(event.clone());
        }
        Ok(())
    }
}
