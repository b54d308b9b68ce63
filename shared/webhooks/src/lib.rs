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

/// The health of a workspace's webhooks: `not_connected` without endpoints; `error` when one was
/// disabled by a 410 or by failing for days; `warning` while one fails; else `healthy`.
pub async fn health(app: &linkcrm_core::App, ws: &str) -> linkcrm_core::error::ApiResult<linkcrm_core::health::Health> {
    use linkcrm_core::health::{Health, Status};
    let endpoints = fanout::owner_endpoints(app, ws).await?;
    let status = if endpoints.is_empty() {
        Status::NotConnected
    } else if endpoints.iter().any(|e| !e.active && e.disabled_reason.as_deref() != Some("disabled_by_user")) {
        Status::Error
    } else if endpoints.iter().any(|e| e.active && e.failing_since.is_some()) {
        Status::Warning
    } else {
        Status::Healthy
    };
    let last_error = endpoints.iter().find(|e| e.failing_since.is_some() || !e.active).map(|e| {
        serde_json::json!({ "code": e.disabled_reason.clone().unwrap_or_else(|| "failing".into()),
                             "message": format!("webhook {} is {}", e.id, if e.active { "failing" } else { "disabled" }),
                             "at": e.disabled_at.clone().or(e.failing_since.clone()) })
    });
    Ok(Health { status, last_checked_at: endpoints.iter().map(|e| e.updated_at.clone()).max(), last_error })
}
