//! Cheap probes: one free, read-only call per provider that says whether its credentials work
//! and whether the account can still spend, for an integration's health when nothing has used
//! it lately. One attempt, a short timeout, no retries: a probe answers "how is it now".
//!
//! | provider | call (free of charge per the provider's documentation) |
//! |---|---|
//! | Apollo | `GET /v1/auth/health` (`x-api-key`) → `{healthy, is_logged_in}` |
//! | Ahrefs | `GET /v3/subscription-info/limits-and-usage` → `{limits_and_usage: {units_limit_*, units_usage_*}}` |
//! | DataForSEO | `GET /v3/appendix/user_data` → the account's `money.balance` |
//! | LLM | `GET {base}/models` (OpenAI-compatible) |

use crate::ProviderError;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long a probe may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `req` once and reads a JSON answer; a non-2xx answer goes through `classify`.
pub(crate) async fn get_json(
    req: reqwest::RequestBuilder,
    who: &str,
    classify: impl Fn(StatusCode, Option<Duration>, &str) -> (ProviderError, bool),
) -> Result<Value, ProviderError> {
    let resp = req.timeout(TIMEOUT).send().await.map_err(|e| {
        if e.is_timeout() {
            ProviderError::Unavailable(format!("{who} did not answer within {TIMEOUT:?}"))
        } else {
            ProviderError::Unavailable(format!("cannot reach {who}: {e}"))
        }
    })?;
    let status = resp.status();
    let retry_after = crate::retry::retry_after(resp.headers());
    let text = resp.text().await.map_err(|e| ProviderError::Unavailable(format!("{who} answer cut short: {e}")))?;
    if !status.is_success() {
        return Err(classify(status, retry_after, &text).0);
    }
    serde_json::from_str(&text)
        .map_err(|e| ProviderError::BadResponse(format!("unreadable {who} answer ({status}): {e}")))
}

/// Whether a `usage` has reached a `limit` (both optional numbers; no limit means unlimited).
pub(crate) fn spent(limit: Option<&Value>, usage: Option<&Value>) -> bool {
    match (limit.and_then(Value::as_f64), usage.and_then(Value::as_f64)) {
        (Some(l), Some(u)) => u >= l,
        _ => false,
    }
}
