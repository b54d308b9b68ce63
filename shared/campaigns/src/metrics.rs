//! The account metrics refresh schedule (issue: "Account metrics refresh"): every
//! `LINKCRM_METRICS_REFRESH_SECS` (an hour) locally, on an EventBridge rule in AWS (the campaign
//! worker's scheduled event), the accounts whose metrics are older than
//! `LINKCRM_METRICS_MAX_AGE_DAYS` (30) are read from the due index (`linkcrm_crm::keys::
//! metrics_due_pk`, oldest first, no Scan). Those some workspace works with (a relationship not
//! archived, NOT_INTERESTED or INACTIVE) get Ahrefs' domain rating, traffic, keywords, referring
//! domains and backlinks, stored with a METRICS_REFRESHED account event under the account's
//! version; the others move to the back of the index until next time. The platform's Ahrefs key
//! pays for these shared accounts: no workspace is charged. A run stops at Ahrefs' rate limit
//! or quota and the rest waits for the next one.

use crate::App;
use linkcrm_providers::{AhrefsClient, ProviderError};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    pub due: usize,
    pub refreshed: usize,
    /// Due, but nobody works with the account: moved to the back of the index.
    pub deferred: usize,
    pub failed: usize,
    /// Why the run stopped early (`not_configured`, `rate_limited`, `quota_exceeded`).
    pub stopped: Option<String>,
}

fn env_num(k: &str, default: i64) -> i64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).filter(|n: &i64| *n >= 0).unwrap_or(default)
}

/// Seconds between runs of the local timer.
pub fn interval_secs() -> u64 {
    env_num("LINKCRM_METRICS_REFRESH_SECS", 3600).max(1) as u64
}

fn platform_client() -> Option<AhrefsClient> {
    let c = linkcrm_core::provider_keys::platform("ahrefs")?;
    let base = linkcrm_core::provider_keys::base_url("ahrefs")
        .unwrap_or_else(|| linkcrm_providers::ahrefs::DEFAULT_BASE_URL.into());
    AhrefsClient::new(base, c.get("apiKey")?).ok()
}

/// One run: at most `limit` due accounts.
pub async fn refresh_due(app: &App, limit: usize) -> Result<RefreshReport, String> {
    let mut report = RefreshReport::default();
    let Some(client) = platform_client() else {
        report.stopped = Some("not_configured".into());
        return Ok(report);
    };
    let days = env_num("LINKCRM_METRICS_MAX_AGE_DAYS", 30);
    let cutoff = linkcrm_domain::time::format(chrono::Utc::now() - chrono::Duration::days(days));
    let due = linkcrm_crm::metrics::due_accounts(app, &cutoff, limit).await.map_err(|e| e.message)?;
    report.due = due.len();
    for account in due {
        if !linkcrm_crm::metrics::has_active_relationship(app, account.id()).await.map_err(|e| e.message)? {
            linkcrm_crm::metrics::defer(app, &account).await.map_err(|e| e.message)?;
            report.deferred += 1;
            continue;
        }
        match client.metrics(account.domain()).await {
            Ok(m) => match crate::pipeline::store_metrics(app, account.id(), &m).await {
                Ok(()) => report.refreshed += 1,
                Err(e) => {
                    tracing::warn!(account = account.id(), error = %e.message, "metrics not stored");
                    report.failed += 1;
                }
            },
            Err(ProviderError::RateLimited { .. }) => {
                report.stopped = Some("rate_limited".into());
                break;
            }
            Err(ProviderError::QuotaExceeded) => {
                report.stopped = Some("quota_exceeded".into());
                break;
            }
            Err(ProviderError::Unauthorized) => {
                report.stopped = Some("credentials_rejected".into());
                break;
            }
            // Passing trouble: due again next run.
            Err(e @ ProviderError::Unavailable(_)) => {
                tracing::warn!(account = account.id(), domain = account.domain(), error = %e, "Ahrefs metrics failed");
                report.failed += 1;
            }
            // An answer we cannot use for this domain: not asked again until it is due again.
            Err(e) => {
                tracing::warn!(account = account.id(), domain = account.domain(), error = %e, "Ahrefs metrics unusable");
                linkcrm_crm::metrics::defer(app, &account).await.map_err(|e| e.message)?;
                report.failed += 1;
            }
        }
    }
    tracing::info!(due = report.due, refreshed = report.refreshed, deferred = report.deferred, failed = report.failed,
                   stopped = ?report.stopped, "account metrics refresh");
    Ok(report)
}
