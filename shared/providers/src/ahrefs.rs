//! Ahrefs API v3 client for backlinks and domain metrics (v2 was shut down on 2025-11-01).
//!
//! What we rely on, and where it is written down (https://docs.ahrefs.com/api/reference/):
//! - Base `https://api.ahrefs.com/v3`, GET only, query parameters, `Authorization: Bearer <key>`.
//! - `/site-explorer/refdomains`: `target` and `select` required; `mode` exact|prefix|domain|subdomains (default
//!   subdomains), `limit` (default 1000), `order_by` (`column:desc`), `history` (`live`, `since:YYYY-MM-DD`,
//!   `all_time`, the default). Answers `{refdomains: [{domain, domain_rating, dofollow_links, links_to_target,
//!   first_seen, last_seen, lost_links, new_links, is_spam, traffic_domain}]}` with only the selected columns.
//! - `/site-explorer/all-backlinks`: `target`, `select` required; the same `mode`, `limit`, `order_by`, `history`,
//!   plus `aggregation` (`similar_links` default, `1_per_domain`, `all`). Rows: `url_from, url_to, anchor, title,
//!   domain_rating_source, is_dofollow, first_seen, last_seen, ...`.
//! - `/site-explorer/domain-rating` (`target`, `date` required) → `{domain_rating: {domain_rating, ahrefs_rank}}`;
//!   `/site-explorer/metrics` (`target`, `date` required) → `{metrics: {org_keywords, org_traffic, org_cost, ...}}`;
//!   `/site-explorer/backlinks-stats` (`target`, `date`) → `{metrics: {live, all_time, live_refdomains,
//!   all_time_refdomains}}`. `date` is `YYYY-MM-DD`; we ask for today, UTC.
//! - Errors: 400, 401, 403, 429 and 500 are documented, each with a body `{error: string}`.
//! - Cost (https://docs.ahrefs.com/api/docs/limits-consumption): API units per request, `max(50, per-row cost x
//!   rows)`, the per-row cost being the sum over the selected (and `where`/`order_by`) columns, most at 1 unit. So
//!   `select` lists only what we map, and `limit` is the caller's. Cached answers cost nothing. Running out of units
//!   is not documented as a shape of its own: we treat 402, and a 403 or 429 whose message mentions units, quota,
//!   credits or balance, as `QuotaExceeded`; `linkcrm_testkit::FakeAhrefs` answers 403 `{"error": "Insufficient
//!   API units..."}`. Revisit when a real exhausted key shows the true shape.

use crate::{ProviderError, RetryPolicy};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// The subscription's limits and usage (free of API units).
pub const LIMITS_PATH: &str = "/v3/subscription-info/limits-and-usage";
pub const DEFAULT_BASE_URL: &str = "https://api.ahrefs.com";
pub const REFDOMAINS_PATH: &str = "/v3/site-explorer/refdomains";
pub const ALL_BACKLINKS_PATH: &str = "/v3/site-explorer/all-backlinks";
pub const DOMAIN_RATING_PATH: &str = "/v3/site-explorer/domain-rating";
pub const METRICS_PATH: &str = "/v3/site-explorer/metrics";
pub const BACKLINKS_STATS_PATH: &str = "/v3/site-explorer/backlinks-stats";
/// The columns [`RefDomain`] maps, and no more (each costs units per row).
pub const REFDOMAINS_SELECT: &str = "domain,domain_rating,dofollow_links,links_to_target,first_seen,last_seen,is_spam";
/// The columns [`Backlink`] maps, and no more.
pub const BACKLINKS_SELECT: &str = "url_from,url_to,anchor,title,domain_rating_source,is_dofollow,first_seen,last_seen";

/// How Ahrefs reads `target`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// This exact URL.
    Exact,
    /// URLs starting with the target.
    Prefix,
    /// The domain without its subdomains.
    Domain,
    /// The domain and all its subdomains (Ahrefs' default).
    #[default]
    Subdomains,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Exact => "exact",
            Mode::Prefix => "prefix",
            Mode::Domain => "domain",
            Mode::Subdomains => "subdomains",
        }
    }
}

/// A domain with at least one live link to the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefDomain {
    pub domain: String,
    #[serde(default)]
    pub domain_rating: Option<f64>,
    #[serde(default)]
    pub dofollow_links: Option<u64>,
    #[serde(default)]
    pub links_to_target: Option<u64>,
    #[serde(default)]
    pub first_seen: Option<String>,
    #[serde(default)]
    pub last_seen: Option<String>,
    #[serde(default)]
    pub is_spam: Option<bool>,
}

/// One live backlink (one per linking domain).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backlink {
    pub url_from: String,
    pub url_to: String,
    /// Empty for image links and links Ahrefs saw no text for.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub anchor: String,
    /// Domain Rating of the linking site.
    #[serde(default)]
    pub domain_rating_source: Option<f64>,
    /// Title of the linking page.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub is_dofollow: Option<bool>,
    #[serde(default)]
    pub first_seen: Option<String>,
    #[serde(default)]
    pub last_seen: Option<String>,
}

/// A domain's strength and reach today, from three Ahrefs calls. `None` where Ahrefs had no figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainMetrics {
    pub domain_rating: Option<f64>,
    pub ahrefs_rank: Option<u64>,
    /// Estimated monthly organic visits.
    pub org_traffic: Option<u64>,
    /// Keywords the domain ranks for organically.
    pub org_keywords: Option<u64>,
    pub live_refdomains: Option<u64>,
    pub live_backlinks: Option<u64>,
}

#[derive(Clone)]
pub struct AhrefsClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl std::fmt::Debug for AhrefsClient {
    // By hand so the key never lands in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AhrefsClient").field("base_url", &self.base_url).field("api_key", &"<redacted>").finish()
    }
}

impl AhrefsClient {
    /// `base_url` is the host without `/v3` (production: [`DEFAULT_BASE_URL`]); tests pass the fake's.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ProviderError::Unavailable(format!("cannot build HTTP client: {e}")))?;
        Ok(AhrefsClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        })
    }

    /// Longest wait for one HTTP exchange (each attempt has its own).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Up to `limit` domains that link to `target` now, strongest (by Domain Rating) first.
    pub async fn refdomains(&self, target: &str, mode: Mode, limit: u32) -> Result<Vec<RefDomain>, ProviderError> {
        let query = [
            ("target", target.trim().to_string()),
            ("mode", mode.as_str().to_string()),
            ("select", REFDOMAINS_SELECT.to_string()),
            ("history", "live".to_string()),
            ("order_by", "domain_rating:desc".to_string()),
            ("limit", limit.max(1).to_string()),
            ("output", "json".to_string()),
        ];
        let resp: RefDomainsResponse = self.get(REFDOMAINS_PATH, &query).await?;
        tracing::debug!(target, found = resp.refdomains.len(), "ahrefs refdomains");
        Ok(resp.refdomains)
    }

    /// Up to `limit` live backlinks to `target`, one per linking domain, strongest linking site first.
    pub async fn backlinks(&self, target: &str, mode: Mode, limit: u32) -> Result<Vec<Backlink>, ProviderError> {
        let query = [
            ("target", target.trim().to_string()),
            ("mode", mode.as_str().to_string()),
            ("select", BACKLINKS_SELECT.to_string()),
            ("aggregation", "1_per_domain".to_string()),
            ("history", "live".to_string()),
            ("order_by", "domain_rating_source:desc".to_string()),
            ("limit", limit.max(1).to_string()),
            ("output", "json".to_string()),
        ];
        let resp: BacklinksResponse = self.get(ALL_BACKLINKS_PATH, &query).await?;
        tracing::debug!(target, found = resp.backlinks.len(), "ahrefs backlinks");
        Ok(resp.backlinks)
    }

    /// `target`'s metrics as of today (UTC): Domain Rating and Ahrefs Rank, organic traffic and keywords, live
    /// referring domains and backlinks (domain and subdomains). Three calls, made together; any failure fails all.
    pub async fn metrics(&self, target: &str) -> Result<DomainMetrics, ProviderError> {
        self.metrics_on(target, chrono::Utc::now().date_naive()).await
    }

    /// [`AhrefsClient::metrics`] as of `date`.
    pub async fn metrics_on(&self, target: &str, date: chrono::NaiveDate) -> Result<DomainMetrics, ProviderError> {
        let date = date.format("%Y-%m-%d").to_string();
        let target = target.trim().to_string();
        let rating_query = [("target", target.clone()), ("date", date.clone()), ("output", "json".to_string())];
        let domain_query = [
            ("target", target),
            ("date", date),
            ("mode", Mode::Subdomains.as_str().to_string()),
            ("output", "json".to_string()),
        ];
        let (rating, metrics, stats) = tokio::try_join!(
            self.get::<DomainRatingResponse>(DOMAIN_RATING_PATH, &rating_query),
            self.get::<MetricsResponse>(METRICS_PATH, &domain_query),
            self.get::<BacklinksStatsResponse>(BACKLINKS_STATS_PATH, &domain_query),
        )?;
        Ok(DomainMetrics {
            domain_rating: rating.domain_rating.domain_rating,
            ahrefs_rank: rating.domain_rating.ahrefs_rank,
            org_traffic: metrics.metrics.org_traffic,
            org_keywords: metrics.metrics.org_keywords,
            live_refdomains: stats.metrics.live_refdomains,
            live_backlinks: stats.metrics.live,
        })
    }

    /// Whether the key works and has units left: Ahrefs' free limits-and-usage call (see
    /// [`crate::probe`]).
    pub async fn probe(&self) -> Result<(), ProviderError> {
        let req = self.http.get(format!("{}{LIMITS_PATH}", self.base_url)).bearer_auth(&self.api_key);
        let v = crate::probe::get_json(req, "Ahrefs", classify).await?;
        let l = v
            .get("limits_and_usage")
            .ok_or_else(|| ProviderError::BadResponse("Ahrefs' limits answer has no limits_and_usage".into()))?;
        let spent = |scope: &str| {
            crate::probe::spent(l.get(format!("units_limit_{scope}")), l.get(format!("units_usage_{scope}")))
        };
        if spent("workspace") || spent("api_key") {
            return Err(ProviderError::QuotaExceeded);
        }
        Ok(())
    }

    /// One GET with bounded retries of rate limits, 5xx and refused connections.
    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ProviderError> {
        let mut url = Url::parse(&format!("{}{}", self.base_url, path))
            .map_err(|e| ProviderError::BadResponse(format!("bad Ahrefs base URL {:?}: {e}", self.base_url)))?;
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        let mut attempt = 1;
        loop {
            let (err, retryable) = match self.send_once(&url).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let retry_after = match &err {
                ProviderError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            match self.retry.delay(attempt, retry_after) {
                Some(delay) if retryable && attempt < self.retry.max_attempts => {
                    tracing::warn!(path, attempt, ?delay, error = %err, "ahrefs call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// One HTTP exchange. The flag says whether trying again soon may help.
    async fn send_once<T: DeserializeOwned>(&self, url: &Url) -> Result<T, (ProviderError, bool)> {
        let sent = self.http.get(url.clone()).bearer_auth(&self.api_key).timeout(self.timeout).send().await;
        let resp = match sent {
            Ok(resp) => resp,
            // Not retried: Ahrefs may have done (and charged units for) the work. Same rule as the Apollo client.
            Err(e) if e.is_timeout() => {
                return Err((
                    ProviderError::Unavailable(format!("Ahrefs did not answer within {:?}", self.timeout)),
                    false,
                ))
            }
            Err(e) if e.is_connect() => {
                return Err((ProviderError::Unavailable(format!("cannot reach Ahrefs: {e}")), true))
            }
            Err(e) => return Err((ProviderError::Unavailable(format!("Ahrefs request failed: {e}")), false)),
        };
        let status = resp.status();
        let retry_after = crate::retry::retry_after(resp.headers());
        let text = resp.text().await.map_err(|e| {
            (ProviderError::Unavailable(format!("Ahrefs response cut short: {e}")), status.is_server_error())
        })?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| {
                (ProviderError::BadResponse(format!("unreadable Ahrefs response ({status}): {e}")), false)
            });
        }
        Err(classify(status, retry_after, &text))
    }
}

#[derive(Debug, Deserialize)]
struct RefDomainsResponse {
    refdomains: Vec<RefDomain>,
}

#[derive(Debug, Deserialize)]
struct BacklinksResponse {
    backlinks: Vec<Backlink>,
}

#[derive(Debug, Deserialize)]
struct DomainRatingResponse {
    domain_rating: DomainRating,
}

#[derive(Debug, Deserialize)]
struct DomainRating {
    #[serde(default)]
    domain_rating: Option<f64>,
    #[serde(default)]
    ahrefs_rank: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct MetricsResponse {
    metrics: OrganicMetrics,
}

#[derive(Debug, Deserialize)]
struct OrganicMetrics {
    #[serde(default)]
    org_traffic: Option<u64>,
    #[serde(default)]
    org_keywords: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct BacklinksStatsResponse {
    metrics: BacklinksStats,
}

#[derive(Debug, Deserialize)]
struct BacklinksStats {
    #[serde(default)]
    live: Option<u64>,
    #[serde(default)]
    live_refdomains: Option<u64>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Maps a non-2xx answer to our error, and whether to retry it.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> (ProviderError, bool) {
    let message = error_message(body);
    match status.as_u16() {
        402 => (ProviderError::QuotaExceeded, false),
        403 | 429 if mentions_units(&message) => (ProviderError::QuotaExceeded, false),
        401 | 403 => (ProviderError::Unauthorized, false),
        429 => (ProviderError::RateLimited { retry_after }, true),
        500..=599 => (ProviderError::Unavailable(format!("Ahrefs answered {status}: {message}")), true),
        _ => (ProviderError::BadResponse(format!("Ahrefs answered {status}: {message}")), false),
    }
}

fn mentions_units(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["unit", "quota", "credit", "balance"].iter().any(|w| m.contains(w))
}

/// Ahrefs documents `{error: string}`; anything else is shown as text.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| {
        ["error", "message"].iter().find_map(|f| v.get(*f)).map(|x| x.as_str().map_or(x.to_string(), String::from))
    });
    let mut message = from_json.unwrap_or_else(|| body.trim().to_string());
    if message.len() > 300 {
        let cut = (0..=300).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
        message.truncate(cut);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_exhaustion_is_quota_and_other_403s_are_auth() {
        let units = classify(StatusCode::FORBIDDEN, None, r#"{"error":"Insufficient API units"}"#);
        assert!(matches!(units, (ProviderError::QuotaExceeded, false)));
        let plan = classify(StatusCode::FORBIDDEN, None, r#"{"error":"API access is not available on your plan"}"#);
        assert!(matches!(plan, (ProviderError::Unauthorized, false)));
        let throttled = classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), "{}");
        assert!(matches!(throttled, (ProviderError::RateLimited { retry_after: Some(_) }, true)));
        let bad = classify(StatusCode::BAD_REQUEST, None, r#"{"error":"unknown column: foo"}"#);
        assert!(matches!(bad, (ProviderError::BadResponse(ref m), false) if m.contains("unknown column")));
    }

    #[test]
    fn a_null_anchor_is_empty() {
        let b: Backlink =
            serde_json::from_str(r#"{"url_from":"https://a.com/x","url_to":"https://b.com/","anchor":null}"#).unwrap();
        assert_eq!(b.anchor, "");
        assert_eq!(Mode::default().as_str(), "subdomains");
    }
}
