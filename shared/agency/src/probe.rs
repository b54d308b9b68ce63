//! Cheap probes for `GET /v1/workspaces/{id}/health`: an integration that is connected but whose
//! recorded outcome is missing or older than [`after`] gets one free call to its provider
//! (`linkcrm_providers::probe`: Apollo's auth health, Ahrefs' limits and usage, DataForSEO's
//! user data, the LLM's model list), whose outcome is recorded like a real call's. Only the
//! single-workspace read probes; the list (`include=health`) reads records only.

use linkcrm_core::provider_keys;
use linkcrm_core::App;
use linkcrm_providers::{AhrefsClient, ApolloClient, DataForSeoClient, LlmClient, ProviderError};
use std::time::Duration;

/// How old a recorded outcome may be before a health read probes again:
/// `LINKCRM_HEALTH_PROBE_AFTER_SECS`, one hour by default.
pub fn after() -> Duration {
    let secs = std::env::var("LINKCRM_HEALTH_PROBE_AFTER_SECS").ok().and_then(|v| v.trim().parse().ok());
    Duration::from_secs(secs.unwrap_or(3600))
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Probes `integration` with the credentials the workspace's calls would use; `own` is the
/// workspace's integration item, already read. `None` when it has none (or no probe).
pub async fn probe(
    app: &App,
    integration: &str,
    own: Option<&linkcrm_storage::Item>,
) -> Option<Result<(), ProviderError>> {
    match integration {
        "apollo" => {
            let key = linkcrm_crm::apollo_keys::own_key(app, own).or_else(|| env("LINKCRM_APOLLO_API_KEY"))?;
            let base =
                env("LINKCRM_APOLLO_BASE_URL").unwrap_or_else(|| linkcrm_providers::apollo::DEFAULT_BASE_URL.into());
            Some(match ApolloClient::new(base, key) {
                Ok(c) => c.probe().await,
                Err(e) => Err(e),
            })
        }
        "ahrefs" | "dataforseo" | "llm" => {
            let creds = provider_keys::of_item(app, own, integration)?;
            let field = |k: &str| creds.get(k).map(str::to_owned).ok_or(ProviderError::Unauthorized);
            let base = provider_keys::base_url(integration);
            Some(match integration {
                "ahrefs" => {
                    async {
                        let base = base.unwrap_or_else(|| linkcrm_providers::ahrefs::DEFAULT_BASE_URL.into());
                        AhrefsClient::new(base, field("apiKey")?)?.probe().await
                    }
                    .await
                }
                "dataforseo" => {
                    async {
                        let base = base.unwrap_or_else(|| linkcrm_providers::dataforseo::DEFAULT_BASE_URL.into());
                        DataForSeoClient::new(base, field("login")?, field("password")?)?.probe().await
                    }
                    .await
                }
                _ => {
                    async {
                        let base = base.unwrap_or_else(|| linkcrm_providers::llm::DEFAULT_BASE_URL.into());
                        let model = creds.get("model").unwrap_or(linkcrm_providers::llm::DEFAULT_MODEL);
                        LlmClient::new(base, field("apiKey")?, model)?.probe().await
                    }
                    .await
                }
            })
        }
        _ => None,
    }
}
