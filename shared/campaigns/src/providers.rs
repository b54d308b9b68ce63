//! The data providers a campaign calls, built per call from the workspace's credentials (its own,
//! else the platform's: `linkcrm_core::provider_keys`), and what their failures mean to a client.

use crate::error::{ApiError, ApiResult};
use crate::App;
use axum::http::StatusCode;
use linkcrm_core::provider_keys::{self, Credentials};
use linkcrm_providers::{AhrefsClient, DataForSeoClient, LlmClient, ProviderError};
use serde_json::json;

/// Which settings make a provider available, for the 503 that says it is not.
fn settings(provider: &str) -> &'static str {
    match provider {
        "dataforseo" => "LINKCRM_DATAFORSEO_LOGIN and LINKCRM_DATAFORSEO_PASSWORD, or PUT /v1/workspaces/{id}/integrations/dataforseo",
        "ahrefs" => "LINKCRM_AHREFS_API_KEY, or PUT /v1/workspaces/{id}/integrations/ahrefs",
        _ => "LINKCRM_LLM_API_KEY (with LINKCRM_LLM_BASE_URL and LINKCRM_LLM_MODEL), or PUT /v1/workspaces/{id}/integrations/llm",
    }
}

pub fn not_configured(provider: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        format!("No {provider} credentials are configured: set {}.", settings(provider)),
    )
    .with_details(json!({ "provider": provider, "reason": "not_configured" }))
}

/// A provider's failure as the client sees it.
pub fn failed(provider: &str, owner: &str, e: ProviderError) -> ApiError {
    let unavailable = |reason: &str, message: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", message)
            .with_details(json!({ "provider": provider, "reason": reason }))
    };
    match e {
        ProviderError::QuotaExceeded => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider_quota_exceeded",
            format!("The {owner}'s {provider} account has no credits or quota left."),
        )
        .with_details(json!({ "provider": provider, "owner": owner })),
        ProviderError::Unauthorized if owner == "workspace" => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider_credentials_rejected",
            format!("{provider} rejected the workspace's credentials; set them again."),
        )
        .with_details(json!({ "provider": provider })),
        ProviderError::Unauthorized => {
            tracing::error!(provider, "the platform's credentials were rejected");
            unavailable(
                "credentials_rejected",
                format!("{provider} is unavailable (the platform's credentials were rejected)."),
            )
        }
        ProviderError::RateLimited { retry_after } => {
            let mut err = unavailable("rate_limited", format!("{provider} is rate limiting us; try again shortly."));
            if let Some(d) = retry_after {
                err = err
                    .with_details(json!({ "provider": provider, "reason": "rate_limited", "retryAfter": d.as_secs() }));
            }
            err
        }
        ProviderError::Unavailable(m) => unavailable("unavailable", format!("{provider} is unavailable: {m}")),
        ProviderError::BadResponse(m) => {
            tracing::warn!(provider, error = %m, "unreadable provider answer");
            unavailable("bad_response", format!("{provider} answered with something we could not use."))
        }
    }
}

fn need(c: &Credentials, k: &str, provider: &str) -> ApiResult<String> {
    c.get(k).map(str::to_owned).ok_or_else(|| not_configured(provider))
}

pub async fn dataforseo(app: &App, ws: &str) -> ApiResult<(DataForSeoClient, &'static str)> {
    let c = provider_keys::resolve(app, ws, "dataforseo").await?.ok_or_else(|| not_configured("dataforseo"))?;
    let base =
        provider_keys::base_url("dataforseo").unwrap_or_else(|| linkcrm_providers::dataforseo::DEFAULT_BASE_URL.into());
    let client = DataForSeoClient::new(base, need(&c, "login", "dataforseo")?, need(&c, "password", "dataforseo")?)
        .map_err(|e| failed("dataforseo", c.owner, e))?;
    Ok((client, c.owner))
}

pub async fn ahrefs(app: &App, ws: &str) -> ApiResult<(AhrefsClient, &'static str)> {
    let c = provider_keys::resolve(app, ws, "ahrefs").await?.ok_or_else(|| not_configured("ahrefs"))?;
    let base = provider_keys::base_url("ahrefs").unwrap_or_else(|| linkcrm_providers::ahrefs::DEFAULT_BASE_URL.into());
    let client = AhrefsClient::new(base, need(&c, "apiKey", "ahrefs")?).map_err(|e| failed("ahrefs", c.owner, e))?;
    Ok((client, c.owner))
}

pub async fn llm(app: &App, ws: &str) -> ApiResult<(LlmClient, &'static str)> {
    let c = provider_keys::resolve(app, ws, "llm").await?.ok_or_else(|| not_configured("llm"))?;
    let base = provider_keys::base_url("llm").unwrap_or_else(|| linkcrm_providers::llm::DEFAULT_BASE_URL.into());
    let model = c.get("model").map(str::to_owned).unwrap_or_else(|| linkcrm_providers::llm::DEFAULT_MODEL.into());
    let client = LlmClient::new(base, need(&c, "apiKey", "llm")?, model).map_err(|e| failed("llm", c.owner, e))?;
    let client = match std::env::var("LINKCRM_LLM_TIMEOUT_SECS").ok().and_then(|v| v.parse::<u64>().ok()) {
        Some(s) => client.with_timeout(std::time::Duration::from_secs(s)),
        None => client,
    };
    Ok((client, c.owner))
}
