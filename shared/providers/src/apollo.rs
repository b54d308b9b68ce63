//! Apollo.io client for contact discovery: People API Search, then Bulk People Enrichment.
//!
//! What we rely on, and where it is written down:
//! - People API Search, `POST /api/v1/mixed_people/api_search` (legacy: `/v1/mixed_people/search`): filters
//!   `q_organization_domains_list[]`, `person_titles[]` (loose: "marketing manager" also finds "content marketing
//!   manager"), `person_seniorities[]` (owner, founder, c_suite, partner, vp, head, director, manager, senior,
//!   entry, intern), `page`, `per_page` (at most 100; 500 pages), all documented as query parameters of the POST.
//!   Costs no credits, returns `total_entries` and `people[]` with `id`, `first_name`, `last_name_obfuscated`,
//!   `title`, `has_email`, `organization`, and never emails or phones. The domain filter also matches
//!   *previous* employers. https://docs.apollo.io/reference/people-api-search (and its `.md` rendering)
//! - Bulk People Enrichment, `POST /api/v1/people/bulk_match`: body `details: [{id | first_name, last_name,
//!   domain | email | linkedin_url ...}]`, at most 10 per call; `reveal_personal_emails` is a query flag (off by
//!   default). Answers `matches[]` (`null` where nothing matched), each with `email`, `email_status`,
//!   `last_name`, `linkedin_url`, `twitter_url`, `seniority`, `organization`, plus `credits_consumed`,
//!   `missing_records`. Charges a credit only when data is found; its rate limit is a tenth of single enrichment.
//!   https://docs.apollo.io/reference/bulk-people-enrichment, https://docs.apollo.io/docs/bulk-people-enrichment
//! - Auth: `x-api-key` header (current docs; the old apolloio.github.io docs put `api_key` in the body, and a
//!   key sent as a Bearer token is refused). 401 is plain text "Invalid API key..."; 403 `{error, error_code:
//!   "API_INACCESSIBLE"}` when the key lacks the endpoint (search needs a master key); 422 `{error}` for invalid
//!   parameters. https://docs.apollo.io/reference/authentication, https://docs.apollo.io/reference/status-codes
//! - Rate limits: fixed windows per minute/hour/day, reported in `x-rate-limit-minute`, `x-minute-requests-left`,
//!   `x-minute-usage` (and hourly/daily twins); exceeding one answers 429 `{message: "The maximum number of api
//!   calls allowed for ... is 600 times per hour..."}` with `retry-after` seconds.
//!   https://docs.apollo.io/reference/rate-limits, https://apolloio.github.io/apollo-api-docs/#rate-limits
//! - Credits: https://docs.apollo.io/docs/api-pricing. The docs do not say how running out is reported. We
//!   treat 402, and a 403/422 or a bulk_match `error_code`/`error_message` that mentions credits or quota, as
//!   exhaustion; `linkcrm_testkit::FakeApollo` answers 422 `{"error": "...insufficient credits...",
//!   "error_code": "INSUFFICIENT_CREDITS"}`. Revisit when a real exhausted account shows the true shape.

mod model;

use crate::{ProviderError, RetryPolicy};
pub use model::{ApolloOrganization, ApolloPerson, EnrichedPerson, FoundContact};
use model::{BulkMatchResponse, SearchResponse};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.apollo.io";
pub const SEARCH_PATH: &str = "/api/v1/mixed_people/api_search";
pub const BULK_MATCH_PATH: &str = "/api/v1/people/bulk_match";
/// Apollo's key check (free): `{"healthy": true, "is_logged_in": true}`.
pub const HEALTH_PATH: &str = "/v1/auth/health";
/// Apollo's documented cap on `details` per bulk_match call.
pub const BULK_MATCH_MAX: usize = 10;
/// Apollo's documented cap on `per_page`.
pub const MAX_PER_PAGE: u32 = 100;

#[derive(Clone)]
pub struct ApolloClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    timeout: Duration,
    retry: RetryPolicy,
    max_pages: u32,
}

impl std::fmt::Debug for ApolloClient {
    // By hand so the key never lands in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApolloClient").field("base_url", &self.base_url).field("api_key", &"<redacted>").finish()
    }
}

impl ApolloClient {
    /// `base_url` is the host without `/api/v1` (production: [`DEFAULT_BASE_URL`]); tests pass the fake's.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ProviderError::Unavailable(format!("cannot build HTTP client: {e}")))?;
        Ok(ApolloClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            max_pages: 1,
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

    /// How many search pages one `search_people` may read. One is usually plenty for a single domain and
    /// keeps us well inside the per-minute search limit.
    pub fn with_max_pages(mut self, max_pages: u32) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// People at `domain` whose title loosely matches any of `titles` and whose seniority is any of
    /// `seniorities` (an empty list means no filter). No emails: see [`ApolloClient::enrich`].
    pub async fn search_people(
        &self,
        domain: &str,
        titles: &[String],
        seniorities: &[String],
        per_page: u32,
    ) -> Result<Vec<ApolloPerson>, ProviderError> {
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let domain = model::normalize_domain(domain);
        let mut people = Vec::new();
        for page in 1..=self.max_pages {
            let mut query = vec![("q_organization_domains_list[]", domain.clone())];
            query.extend(titles.iter().map(|t| ("person_titles[]", t.clone())));
            query.extend(seniorities.iter().map(|s| ("person_seniorities[]", s.to_ascii_lowercase())));
            query.push(("page", page.to_string()));
            query.push(("per_page", per_page.to_string()));
            let resp: SearchResponse = self.post(SEARCH_PATH, &query, &serde_json::json!({})).await?;
            let got = resp.people.len();
            let total = resp.total();
            people.extend(resp.people);
            let more = got == per_page as usize && total.is_none_or(|t| (people.len() as u64) < t);
            if !more {
                break;
            }
        }
        tracing::debug!(domain, found = people.len(), "apollo people search");
        Ok(people)
    }

    /// Enriches by Apollo id, ten at a time, each id once. People Apollo cannot match are left out.
    pub async fn enrich(&self, people: &[ApolloPerson]) -> Result<Vec<EnrichedPerson>, ProviderError> {
        let mut seen = HashSet::new();
        let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).filter(|id| seen.insert(*id)).collect();
        let mut enriched = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BULK_MATCH_MAX) {
            let details: Vec<_> = chunk.iter().map(|id| serde_json::json!({ "id": id })).collect();
            // Work addresses only: personal emails cost extra and are not for business outreach (GDPR).
            let query = [("reveal_personal_emails", "false".to_string())];
            let resp: BulkMatchResponse =
                self.post(BULK_MATCH_PATH, &query, &serde_json::json!({ "details": details })).await?;
            if let Some(err) = bulk_error(&resp) {
                return Err(err);
            }
            enriched.extend(resp.matches.into_iter().flatten().map(EnrichedPerson::from));
        }
        Ok(enriched)
    }

    /// Contact discovery for one partner domain: search, enrich, and map to our Contact fields.
    /// One contact per Apollo person and per email; people Apollo says now work elsewhere are dropped
    /// (the domain filter also matches former employers).
    pub async fn find_contacts(
        &self,
        domain: &str,
        roles: &[String],
        seniorities: &[String],
    ) -> Result<Vec<FoundContact>, ProviderError> {
        let found = self.search_people(domain, roles, seniorities, 25).await?;
        if found.is_empty() {
            // Nothing to enrich: spend no credits and no bulk_match rate budget.
            return Ok(Vec::new());
        }
        let by_id: HashMap<&str, &ApolloPerson> = found.iter().map(|p| (p.id.as_str(), p)).collect();
        let enriched = self.enrich(&found).await?;
        let (mut ids, mut emails) = (HashSet::new(), HashSet::new());
        let mut contacts = Vec::new();
        for person in enriched {
            if let Some(employer) = person.organization_domain.as_deref() {
                if !model::same_organization(employer, domain) {
                    tracing::debug!(id = person.id, employer, domain, "skipping person who works elsewhere now");
                    continue;
                }
            }
            if !ids.insert(person.id.clone()) || person.email.as_ref().is_some_and(|e| !emails.insert(e.clone())) {
                continue;
            }
            let searched = by_id.get(person.id.as_str()).copied();
            contacts.push(FoundContact::from_parts(person, searched));
        }
        Ok(contacts)
    }

    /// One POST with bounded retries of rate limits, 5xx and refused connections.
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
    ) -> Result<T, ProviderError> {
        let mut url = Url::parse(&format!("{}{}", self.base_url, path))
            .map_err(|e| ProviderError::BadResponse(format!("bad Apollo base URL {:?}: {e}", self.base_url)))?;
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        let mut attempt = 1;
        loop {
            let (err, retryable) = match self.send_once(&url, body).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let retry_after = match &err {
                ProviderError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            let delay = self.retry.delay(attempt, retry_after);
            match delay {
                Some(delay) if retryable && attempt < self.retry.max_attempts => {
                    tracing::warn!(path, attempt, ?delay, error = %err, "apollo call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// Whether the key works: Apollo's free `GET /v1/auth/health` (see [`crate::probe`]).
    pub async fn probe(&self) -> Result<(), ProviderError> {
        let req = self.http.get(format!("{}{HEALTH_PATH}", self.base_url)).header("x-api-key", &self.api_key);
        let v = crate::probe::get_json(req, "Apollo", classify).await?;
        match v.get("is_logged_in").and_then(serde_json::Value::as_bool) {
            Some(true) => Ok(()),
            Some(false) => Err(ProviderError::Unauthorized),
            None => Err(ProviderError::BadResponse("Apollo's auth health answer has no is_logged_in".into())),
        }
    }

    /// One HTTP exchange. The flag says whether trying again soon may help.
    async fn send_once<T: DeserializeOwned>(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<T, (ProviderError, bool)> {
        let sent = self
            .http
            .post(url.clone())
            .header("x-api-key", &self.api_key)
            .header("cache-control", "no-cache")
            .json(body)
            .timeout(self.timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // Timeouts are not retried: Apollo may have done (and charged for) the work, and the caller's
            // own deadline is better spent reporting than waiting again.
            Err(e) if e.is_timeout() => {
                return Err((
                    ProviderError::Unavailable(format!("Apollo did not answer within {:?}", self.timeout)),
                    false,
                ))
            }
            // The request never arrived, so trying again is safe.
            Err(e) if e.is_connect() => {
                return Err((ProviderError::Unavailable(format!("cannot reach Apollo: {e}")), true))
            }
            Err(e) => return Err((ProviderError::Unavailable(format!("Apollo request failed: {e}")), false)),
        };
        let status = resp.status();
        let retry_after = crate::retry::retry_after(resp.headers());
        let text = resp.text().await.map_err(|e| {
            (ProviderError::Unavailable(format!("Apollo response cut short: {e}")), status.is_server_error())
        })?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| {
                (ProviderError::BadResponse(format!("unreadable Apollo response ({status}): {e}")), false)
            });
        }
        Err(classify(status, retry_after, &text))
    }
}

#[async_trait::async_trait]
impl crate::ContactFinder for ApolloClient {
    async fn find_contacts(
        &self,
        domain: &str,
        roles: &[String],
        seniorities: &[String],
    ) -> Result<Vec<FoundContact>, ProviderError> {
        ApolloClient::find_contacts(self, domain, roles, seniorities).await
    }
}

/// Maps a non-2xx answer to our error, and whether to retry it.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> (ProviderError, bool) {
    let message = error_message(body);
    match status.as_u16() {
        402 => (ProviderError::QuotaExceeded, false),
        403 | 422 if mentions_credits(&message) => (ProviderError::QuotaExceeded, false),
        401 | 403 => (ProviderError::Unauthorized, false),
        429 => (ProviderError::RateLimited { retry_after }, true),
        500..=599 => (ProviderError::Unavailable(format!("Apollo answered {status}: {message}")), true),
        _ => (ProviderError::BadResponse(format!("Apollo answered {status}: {message}")), false),
    }
}

/// A 200 bulk_match can still carry an error (documented fields `error_code`, `error_message`).
fn bulk_error(resp: &BulkMatchResponse) -> Option<ProviderError> {
    let code = resp.error_code.as_ref().filter(|c| !c.is_null()).map(|c| c.to_string());
    let message = [code.as_deref(), resp.error_message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
    if message.is_empty() {
        None
    } else if mentions_credits(&message) {
        Some(ProviderError::QuotaExceeded)
    } else {
        Some(ProviderError::BadResponse(format!("Apollo bulk_match reported an error: {message}")))
    }
}

fn mentions_credits(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("credit") || m.contains("quota")
}

/// Apollo's error bodies vary by endpoint: `{error}`, `{message}`, `{error_message}` or plain text.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| {
        let fields = ["error", "message", "error_message", "error_code"];
        let texts: Vec<String> =
            fields.iter().filter_map(|f| v.get(*f)).map(|x| x.as_str().map_or(x.to_string(), String::from)).collect();
        (!texts.is_empty()).then(|| texts.join(": "))
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
    fn credits_errors_are_quota_and_other_422s_are_our_bug() {
        let q = classify(StatusCode::UNPROCESSABLE_ENTITY, None, r#"{"error":"You have insufficient credits"}"#);
        assert!(matches!(q, (ProviderError::QuotaExceeded, false)));
        let bad = classify(StatusCode::UNPROCESSABLE_ENTITY, None, r#"{"error":"Invalid parameters"}"#);
        assert!(matches!(bad, (ProviderError::BadResponse(ref m), false) if m.contains("Invalid parameters")));
        let forbidden =
            classify(StatusCode::FORBIDDEN, None, r#"{"error":"not authorized","error_code":"API_INACCESSIBLE"}"#);
        assert!(matches!(forbidden, (ProviderError::Unauthorized, false)));
        assert!(matches!(classify(StatusCode::PAYMENT_REQUIRED, None, ""), (ProviderError::QuotaExceeded, false)));
    }
}
