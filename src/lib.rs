//! Wiring for the local binary that the function mains do not need.

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
    let relay = Relay::new(store, Arc::new(InProcessBus::from_env()));
    tokio::spawn(relay.run(commits.unwrap_or_default(), stop))
}
