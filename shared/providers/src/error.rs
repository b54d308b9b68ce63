//! What can go wrong when we ask a provider, sorted by what the caller should do about it.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider throttled us and our retries ran out (or it asked us to wait longer than we will
    /// sleep inside one request). `retry_after` is the provider's own hint, when it gave one, so a job
    /// queue can reschedule instead of spinning.
    #[error("rate limited by the provider{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The account has no credits (or plan quota) left. Retrying cannot help until the cycle resets,
    /// so this is never retried; the API maps it to `422 apollo_quota_exceeded`.
    #[error("provider quota or credits exhausted")]
    QuotaExceeded,
    /// The key is missing, wrong, or lacks access to the endpoint. Never retried.
    #[error("provider rejected the API key")]
    Unauthorized,
    /// The provider could not be reached or failed on its side (5xx, timeout, connection refused).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered with something we did not ask for or cannot read (including a 422 for a
    /// request it considers malformed: that is our bug, and retrying would not fix it).
    #[error("unexpected provider response: {0}")]
    BadResponse(String),
}

impl ProviderError {
    /// Whether trying the same work again later may succeed. Quota, auth and malformed-request
    /// failures need a person to act first.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::RateLimited { .. } | ProviderError::Unavailable(_))
    }
}
