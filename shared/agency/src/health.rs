//! A workspace's integration health, from recorded outcomes of real calls (`linkcrm_core::health`),
//! the mailboxes' pollers and senders, and the webhooks' delivery state. Reading one workspace's
//! health probes a connected provider whose record is missing or stale (`crate::probe`); the
//! list's summary reads records only, never a call out per row.

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

/// `probe`: whether a connected provider with a missing or stale record is probed now.
pub async fn of_workspace(app: &App, ws: &str, probe: bool) -> ApiResult<WorkspaceHealth> {
    let mut keys = Vec::new();
    for i in health::INTEGRATIONS {
        keys.push(health::key(ws, i));
        keys.push(linkcrm_core::keys::provider_integration(ws, i));
    }
    let found = app.store.batch_get(&keys).await?;
    let find = |k: &linkcrm_storage::Key| found.iter().find(|i| linkcrm_storage::Key::of(i).as_ref() == Some(k));
    let mut integrations = BTreeMap::new();
    let mut stale = Vec::new();
    let after = chrono::Duration::from_std(crate::probe::after()).unwrap_or(chrono::Duration::MAX);
    for i in health::INTEGRATIONS {
        let own = find(&linkcrm_core::keys::provider_integration(ws, i));
        let configured = own.is_some() || platform_key(i);
        let record = find(&health::key(ws, i));
        let h = match (configured, record) {
            (false, _) => Health { status: Status::NotConnected, last_checked_at: None, last_error: None },
            (true, Some(r)) => Health::of_record(r),
            // Connected but never used: nothing shows it works yet.
            (true, None) => Health { status: Status::Warning, last_checked_at: None, last_error: None },
        };
        let checked = h.last_checked_at.as_deref().and_then(linkcrm_domain::time::parse);
        if probe && configured && checked.is_none_or(|t| linkcrm_domain::time::now() - t >= after) {
            stale.push((i, own, h.last_error.clone()));
        }
        integrations.insert(i.to_owned(), h);
    }
    // The stale ones are probed together, each outcome recorded like a real call's.
    let probed = futures::future::join_all(stale.into_iter().map(|(i, own, previous_error)| async move {
        let result = crate::probe::probe(app, i, own).await?;
        let outcome = health::Outcome::of_provider(&result);
        let h = Health::now(&outcome, previous_error);
        health::record(app, ws, i, outcome).await;
        Some((i, h))
    }))
    .await;
    for (i, h) in probed.into_iter().flatten() {
        integrations.insert(i.to_owned(), h);
    }
    integrations.insert("webhooks".into(), linkcrm_webhooks::health(app, ws).await?);
    let mut mailboxes = linkcrm_outreach::mailboxes::health_of_items(app, ws).await?;
    if probe {
        // A mailbox that has not sent for a while gets a session (connect, TLS, login, QUIT).
        if let Ok(mailer) = linkcrm_mail::SmtpMailer::from_env() {
            let mailer = &mailer;
            let checks = mailboxes.iter_mut().filter(|(m, _)| {
                let checked = m.smtp.last_checked_at.as_deref().and_then(linkcrm_domain::time::parse);
                checked.is_none_or(|t| linkcrm_domain::time::now() - t >= after)
            });
            futures::future::join_all(checks.map(|(m, item)| async move {
                let previous = m.smtp.last_error.clone();
                if let Some(h) = linkcrm_outreach::mailboxes::probe_smtp(app, mailer, ws, item, previous).await {
                    m.smtp = h;
                }
            }))
            .await;
        }
    }
    let mailboxes: Vec<_> = mailboxes.into_iter().map(|(m, _)| m).collect();
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
    let h = of_workspace(app, ws, false).await?;
    let mut out: BTreeMap<String, Status> = h.integrations.into_iter().map(|(k, v)| (k, v.status)).collect();
    let worst = h.mailboxes.iter().flat_map(|m| [m.smtp.status, m.imap.status]).max().unwrap_or(Status::NotConnected);
    out.insert("mailboxes".into(), worst);
    Ok(out)
}
