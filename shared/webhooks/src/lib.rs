//! The webhooks context: endpoints that receive the workspace's (or the agency's) domain events,
//! signed with Standard Webhooks, retried on a schedule, dead-lettered, replayable
//! (CONTRACT "Webhooks", ADR 0012, docs/webhooks.md).
//!
//! - Endpoints (`/v1/webhooks`): a workspace's, or an agency's (agency key without
//!   `X-Workspace-Id`) receiving all its workspaces' events, filtered by workspace ids or tags.
//! - Fan-out (`fanout`): one committed event → one delivery per subscribed endpoint.
//! - Attempts (`deliver`): one job per attempt, its outcome and what follows in one transaction.

#![allow(clippy::result_large_err)]

pub mod client;
pub mod deliver;
pub mod fanout;
pub mod keys;
pub mod ops;
pub mod records;
pub mod schedule;
pub mod signing;

use linkcrm_storage::TxOp;
use std::sync::OnceLock;

/// The sender the handlers and the test operation share (one connection pool), built on first
/// use from the app's guard setting and `LINKCRM_WEBHOOK_ALLOW_HTTP`.
pub fn sender(app: &linkcrm_core::App) -> &'static client::Sender {
    static SENDER: OnceLock<client::Sender> = OnceLock::new();
    SENDER.get_or_init(|| client::Sender::new(app.config.guard(), client::allow_http()))
}

/// The outbox event that says an endpoint was disabled: in its workspace, or for an agency
/// endpoint with `data.agencyId` (delivered to the agency's other endpoints).
pub(crate) fn outbox_event_disabled(e: &records::Endpoint, view: &records::Webhook, reason: &str) -> TxOp {
    linkcrm_core::outbox::event(
        linkcrm_domain::event_types::ENDPOINT_DISABLED,
        e.workspace_id.as_deref(),
        serde_json::json!({ "webhook": view, "reason": reason, "agencyId": e.agency_id }),
    )
}
