//! A workspace's integration health, from recorded outcomes of real calls (`linkcrm_core::health`),
//! the mailboxes' pollers and senders, and the webhooks' delivery state: reads only, never a call
//! out per workspace.

use linkcrm_core::error::ApiResult;
use linkcrm_core::health::{self, Health, Status};
use linkcrm_core::App;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// `GET /v1/workspaces/{id}/health`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceHealth {
    pub workspace_id: String,
    /// The worst of the integrations in use (`not_connected` ones aside).
    pub status: Status,
    /// `apollo`, `ahrefs`, `dataforseo`, `llm`, `webhooks`.
    pub integrations: BTreeMap<String, Health>,
    pub mailboxes: Vec<linkcrm_outreach::mailboxes::MailboxHealth>,
}

/// Whether the platform supplies a provider's key for every workspace.
fn platform_key(integration: &str) -> bool {
    let var = match integration {
        "apollo" => "LINKCRM_APOLLO_API_KEY",
        "ahrefs" => "LINKCRM_AHREFS_API_KEY",
        "dataforseo" => "LINKCRM_DATAFORSEO_LOGIN",
        "llm" => "LINKCRM_LLM_API_KEY",
        _ => return false,
    };
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

pub async fn of_workspace(app: &App, ws: &str) -> ApiResult<WorkspaceHealth> {
    let mut keys = Vec::new();
    for i in health::INTEGRATIONS {
        keys.push(health::key(ws, i));
        keys.push(linkcrm_core::keys::provider_integration(ws, i));
    }
    let found = app.store.batch_get(&keys).await?;
    let find = |k: &linkcrm_storage::Key| found.iter().find(|i| linkcrm_storage::Key::of(i).as_ref() == Some(k));
    let mut integrations = BTreeMap::new();
    for i in health::INTEGRATIONS {
        let configured = find(&linkcrm_core::keys::provider_integration(ws, i)).is_some() || platform_key(i);
        let h = match (configured, find(&health::key(ws, i))) {
            (false, _) => Health { status: Status::NotConnected, last_checked_at: None, last_error: None },
            (true, Some(r)) => Health::of_record(r),
            // Connected but never used: nothing shows it works yet.
            (true, None) => Health { status: Status::Warning, last_checked_at: None, last_error: None },
        };
        integrations.insert(i.to_owned(), h);
    }
    integrations.insert("webhooks".into(), linkcrm_webhooks::health(app, ws).await?);
    let mailboxes = linkcrm_outreach::mailboxes::health(app, ws).await?;
    let status = integrations
        .values()
        .map(|h| h.status)
        .chain(mailboxes.iter().flat_map(|m| [m.smtp.status, m.imap.status]))
        .filter(|s| *s != Status::NotConnected)
        .max()
        .unwrap_or(Status::NotConnected);
    Ok(WorkspaceHealth { workspace_id: ws.to_owned(), status, integrations, mailboxes })
}

/// The flat summary `GET /v1/workspaces?include=health` embeds: each integration's status, and
/// `mailboxes` (the worst of them).
pub async fn summary(app: &App, ws: &str) -> ApiResult<BTreeMap<String, Status>> {
    let h = of_workspace(app, ws).await?;
    let mut out: BTreeMap<String, Status> = h.integrations.into_iter().map(|(k, v)| (k, v.status)).collect();
    let worst = h.mailboxes.iter().flat_map(|m| [m.smtp.status, m.imap.status]).max().unwrap_or(Status::NotConnected);
    out.insert("mailboxes".into(), worst);
    Ok(out)
}
