//! DataForSEO v3 client for SERP research: Google organic results in Live mode.
//!
//! What we rely on, and where it is written down:
//! - `POST /v3/serp/google/organic/live/advanced`, HTTP Basic with the API login and password. The body is a JSON
//!   array holding one task (Live mode takes one per call): `keyword`, `location_code` (2840 = United States) or
//!   `location_name`, `language_code`, `device` (`desktop` | `mobile`), `depth` (results to fetch; 100 by default,
//!   at most 700). https://docs.dataforseo.com/v3/serp/google/organic/live/advanced/
//! - The answer is `{version, status_code, status_message, time, cost, tasks_count, tasks_error, tasks: [{id,
//!   status_code, status_message, cost, result: [{keyword, type, se_domain, check_url, item_types, items_count,
//!   items: [{type, rank_group, rank_absolute, position, domain, title, url, description, ...}]}]}]}`. `items` mixes
//!   organic results with SERP features (`featured_snippet`, `people_also_ask`, `related_searches`, ...) and
//!   `rank_absolute` counts all of them, so organic ranks can have gaps. We keep `type == "organic"` only.
//! - Errors (https://docs.dataforseo.com/v3/appendix/errors): HTTP is 200 except 401 (login), 402 (billing, check
//!   the balance), 404 and 500; the outcome is in `status_code`, at the response level and again at the task level,
//!   20000 meaning OK. Task-level errors (4xxxx) can still be billed: 40101 "Internal SE Server Error" is charged
//!   after DataForSEO's own retries (help center, "What does the 40101 error mean?"), so we do not retry it inside
//!   the call. 40203 is the daily cost limit set in the dashboard (help center, "Can I set a limit for my
//!   payments"). 40000-40006 are request-shape errors and 405xx invalid fields: our bug, never retried.
//! - Not confirmed against the pages we could read, so matched loosely by code and by message: 40100 and "not
//!   authorized"/"access denied" → `Unauthorized`; the other 402xx codes and messages about payment, balance, funds
//!   or cost limits → `QuotaExceeded`; 40202 and messages about rate limits or too many requests → `RateLimited`
//!   (retried); 40102 "No Search Results" → an empty list; 5xxxx → `Unavailable` (retried). DataForSEO documents no
//!   HTTP 429, but a 429 from it or a proxy in between is honoured like Apollo's, `Retry-After` included.
//! - Limits: 2,000 calls a minute; `task_post` + `task_get` is the cheaper queued mode (not used here: campaigns want
//!   an answer within the request).

use crate::{ProviderError, RetryPolicy};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The account's details and balance (free).
pub const USER_DATA_PATH: &str = "/v3/appendix/user_data";
pub const DEFAULT_BASE_URL: &str = "https://api.dataforseo.com";
pub const SERP_PATH: &str = "/v3/serp/google/organic/live/advanced";
/// DataForSEO's cap on `depth`.
pub const MAX_DEPTH: u32 = 700;
/// What [`SerpQuery::new`] asks for (DataForSEO's own default too).
pub const DEFAULT_DEPTH: u32 = 100;
/// Used when a query names no location: the United States.
pub const DEFAULT_LOCATION_CODE: u32 = 2840;
/// Used when a query names no language.
pub const DEFAULT_LANGUAGE_CODE: &str = "en";

const OK: u64 = 20000;
const NO_SEARCH_RESULTS: u64 = 40102;
const SE_SERVER_ERROR: u64 = 40101;
const RATE_LIMITED: u64 = 40202;
const NOT_AUTHORIZED: u64 = 40100;

/// One Google organic search to run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerpQuery {
    pub keyword: String,
    /// A location name as DataForSEO spells it (`London,England,United Kingdom`), or its numeric code as a string
    /// (`2826`), sent as `location_name` or `location_code`. None: the United States.
    #[serde(default)]
    pub location: Option<String>,
    /// A language code (`en`, `de`). None: English.
    #[serde(default)]
    pub language: Option<String>,
    /// `desktop` or `mobile`. None: DataForSEO's default (desktop).
    #[serde(default)]
    pub device: Option<String>,
    /// How many results to fetch, at most [`MAX_DEPTH`]. Zero leaves it to DataForSEO (100). Deeper costs more.
    #[serde(default)]
    pub depth: u32,
}

impl SerpQuery {
    pub fn new(keyword: impl Into<String>) -> Self {
        SerpQuery { keyword: keyword.into(), depth: DEFAULT_DEPTH, ..SerpQuery::default() }
    }
}

/// One organic result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerpItem {
    /// `rank_absolute`: the position among everything on the page, SERP features included.
    pub rank: u32,
    pub url: String,
    /// Lowercase, without a leading `www.` (taken from the URL when DataForSEO gives none).
    pub domain: String,
    pub title: Option<String>,
    /// The result's snippet (`description`).
    pub snippet: Option<String>,
}

#[derive(Clone)]
pub struct DataForSeoClient {
    http: reqwest::Client,
    base_url: String,
    login: String,
    password: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl std::fmt::Debug for DataForSeoClient {
    // By hand so the password never lands in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataForSeoClient")
            .field("base_url", &self.base_url)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl DataForSeoClient {
    /// `base_url` is the host without `/v3` (production: [`DEFAULT_BASE_URL`]); tests pass the fake's.
    pub fn new(
        base_url: impl Into<String>,
        login: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ProviderError::Unavailable(format!("cannot build HTTP client: {e}")))?;
        Ok(DataForSeoClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            login: login.into(),
            password: password.into(),
            // Live SERP calls routinely take 5-30 s: DataForSEO fetches the page while we wait.
            timeout: Duration::from_secs(60),
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

    /// The organic results for `q`, in DataForSEO's order. A query we can tell is invalid (no keyword, an unknown
    /// device) fails as `BadResponse` without a call, as DataForSEO's own 40501 would.
    pub async fn serp(&self, q: &SerpQuery) -> Result<Vec<SerpItem>, ProviderError> {
        let body = task_body(q)?;
        let url = Url::parse(&format!("{}{}", self.base_url, SERP_PATH))
            .map_err(|e| ProviderError::BadResponse(format!("bad DataForSEO base URL {:?}: {e}", self.base_url)))?;
        let mut attempt = 1;
        loop {
            let (err, retryable) = match self.send_once(&url, &body).await {
                Ok(items) => {
                    tracing::debug!(keyword = q.keyword, found = items.len(), "dataforseo serp");
                    return Ok(items);
                }
                Err(failure) => failure,
            };
            let retry_after = match &err {
                ProviderError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            match self.retry.delay(attempt, retry_after) {
                Some(delay) if retryable && attempt < self.retry.max_attempts => {
                    tracing::warn!(attempt, ?delay, error = %err, "dataforseo call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// One HTTP exchange. The flag says whether trying again soon may help.
    /// Whether the login works and the account has money left: DataForSEO's free `user_data`
    /// call (see [`crate::probe`]).
    pub async fn probe(&self) -> Result<(), ProviderError> {
        let req =
            self.http.get(format!("{}{USER_DATA_PATH}", self.base_url)).basic_auth(&self.login, Some(&self.password));
        let v = crate::probe::get_json(req, "DataForSEO", classify_http).await?;
        let code = |x: &Value| x.get("status_code").and_then(Value::as_u64);
        let message = |x: &Value| x.get("status_message").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(c) = code(&v).filter(|c| *c != OK) {
            return Err(classify_code(c, &message(&v), "response").0);
        }
        let task = v.pointer("/tasks/0").ok_or_else(|| bad_probe("no task"))?;
        if let Some(c) = code(task).filter(|c| *c != OK) {
            return Err(classify_code(c, &message(task), "task").0);
        }
        let balance = task.pointer("/result/0/money/balance").and_then(Value::as_f64);
        match balance {
            Some(b) if b <= 0.0 => Err(ProviderError::QuotaExceeded),
            Some(_) => Ok(()),
            None => Err(bad_probe("no money.balance")),
        }
    }

    async fn send_once(&self, url: &Url, body: &Value) -> Result<Vec<SerpItem>, (ProviderError, bool)> {
        let sent = self
            .http
            .post(url.clone())
            .basic_auth(&self.login, Some(&self.password))
            .json(body)
            .timeout(self.timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // Not retried: DataForSEO may have run (and billed) the task, and the caller's deadline is better spent
            // reporting than waiting again. Same rule as the Apollo client.
            Err(e) if e.is_timeout() => {
                return Err((
                    ProviderError::Unavailable(format!("DataForSEO did not answer within {:?}", self.timeout)),
                    false,
                ))
            }
            // The request never arrived, so trying again is safe.
            Err(e) if e.is_connect() => {
                return Err((ProviderError::Unavailable(format!("cannot reach DataForSEO: {e}")), true))
            }
            Err(e) => return Err((ProviderError::Unavailable(format!("DataForSEO request failed: {e}")), false)),
        };
        let status = resp.status();
        let retry_after = crate::retry::retry_after(resp.headers());
        let text = resp.text().await.map_err(|e| {
            (ProviderError::Unavailable(format!("DataForSEO response cut short: {e}")), status.is_server_error())
        })?;
        if !status.is_success() {
            return Err(classify_http(status, retry_after, &text));
        }
        read_serp(&text)
    }
}

fn bad_probe(what: &str) -> ProviderError {
    ProviderError::BadResponse(format!("DataForSEO's user_data answer has {what}"))
}

/// The one-task array DataForSEO's Live endpoint takes.
fn task_body(q: &SerpQuery) -> Result<Value, ProviderError> {
    let invalid = |what: String| Err(ProviderError::BadResponse(format!("invalid SERP query: {what}")));
    let keyword = q.keyword.trim();
    if keyword.is_empty() {
        return invalid("no keyword".into());
    }
    let mut task = serde_json::Map::new();
    task.insert("keyword".into(), keyword.into());
    match q.location.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        Some(code) if code.bytes().all(|b| b.is_ascii_digit()) => match code.parse::<u32>() {
            Ok(code) => task.insert("location_code".into(), code.into()),
            Err(_) => return invalid(format!("location code {code:?}")),
        },
        Some(name) => task.insert("location_name".into(), name.into()),
        None => task.insert("location_code".into(), DEFAULT_LOCATION_CODE.into()),
    };
    let language = q.language.as_deref().map(str::trim).filter(|l| !l.is_empty()).unwrap_or(DEFAULT_LANGUAGE_CODE);
    task.insert("language_code".into(), language.to_ascii_lowercase().into());
    if let Some(device) = q.device.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        let device = device.to_ascii_lowercase();
        if device != "desktop" && device != "mobile" {
            return invalid(format!("device {device:?} (desktop or mobile)"));
        }
        task.insert("device".into(), device.into());
    }
    if q.depth > 0 {
        task.insert("depth".into(), q.depth.min(MAX_DEPTH).into());
    }
    Ok(Value::Array(vec![Value::Object(task)]))
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    status_code: Option<u64>,
    #[serde(default)]
    status_message: Option<String>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    tasks: Option<Vec<Task>>,
}

#[derive(Debug, Deserialize)]
struct Task {
    #[serde(default)]
    status_code: Option<u64>,
    #[serde(default)]
    status_message: Option<String>,
    #[serde(default)]
    result: Option<Vec<TaskResult>>,
}

#[derive(Debug, Deserialize)]
struct TaskResult {
    /// Kept as raw JSON: SERP features have shapes of their own, and only organic items are read.
    #[serde(default)]
    items: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct OrganicItem {
    #[serde(default)]
    rank_absolute: Option<u32>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// A 200 answer: both status levels checked, then the organic items.
fn read_serp(text: &str) -> Result<Vec<SerpItem>, (ProviderError, bool)> {
    let bad = |m: String| (ProviderError::BadResponse(m), false);
    let env: Envelope = serde_json::from_str(text).map_err(|e| bad(format!("unreadable DataForSEO response: {e}")))?;
    let code = env.status_code.ok_or_else(|| bad("DataForSEO response without status_code".into()))?;
    if code != OK {
        return Err(classify_code(code, env.status_message.as_deref().unwrap_or(""), "response"));
    }
    let task =
        env.tasks.into_iter().flatten().next().ok_or_else(|| bad("DataForSEO response without a task".into()))?;
    let task_code = task.status_code.ok_or_else(|| bad("DataForSEO task without status_code".into()))?;
    if task_code == NO_SEARCH_RESULTS {
        return Ok(Vec::new());
    }
    if task_code != OK {
        return Err(classify_code(task_code, task.status_message.as_deref().unwrap_or(""), "task"));
    }
    tracing::debug!(cost = env.cost, "dataforseo task cost");
    let mut found = Vec::new();
    for item in task.result.into_iter().flatten().flat_map(|r| r.items.into_iter().flatten()) {
        if item.get("type").and_then(Value::as_str) != Some("organic") {
            continue;
        }
        let organic: OrganicItem =
            serde_json::from_value(item).map_err(|e| bad(format!("unreadable DataForSEO organic item: {e}")))?;
        let (Some(rank), Some(url)) = (organic.rank_absolute, organic.url.filter(|u| !u.trim().is_empty())) else {
            tracing::debug!("skipping an organic item without rank or url");
            continue;
        };
        let domain = organic.domain.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| host_of(&url));
        found.push(SerpItem {
            rank,
            domain: normalize_domain(&domain),
            url: url.trim().to_string(),
            title: organic.title.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            snippet: organic.description.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
        });
    }
    Ok(found)
}

/// Maps a non-2xx answer to our error, and whether to retry it.
fn classify_http(status: StatusCode, retry_after: Option<Duration>, body: &str) -> (ProviderError, bool) {
    let message = error_message(body);
    match status.as_u16() {
        401 | 403 => (ProviderError::Unauthorized, false),
        402 => (ProviderError::QuotaExceeded, false),
        429 => (ProviderError::RateLimited { retry_after }, true),
        500..=599 => (ProviderError::Unavailable(format!("DataForSEO answered {status}: {message}")), true),
        _ => (ProviderError::BadResponse(format!("DataForSEO answered {status}: {message}")), false),
    }
}

/// Maps a `status_code` other than 20000 (at the response or the task `level`) to our error, and whether to retry.
fn classify_code(code: u64, message: &str, level: &str) -> (ProviderError, bool) {
    let m = message.to_ascii_lowercase();
    let what = format!("DataForSEO {level} status {code}: {message}");
    let rate_limited = ["rate limit", "rate-limit", "too many requests", "per minute", "simultaneous"];
    let no_access = ["not authorized", "unauthorized", "access denied", "whitelist"];
    let money = ["payment", "balance", "insufficient funds", "cost limit", "credit"];
    if code == RATE_LIMITED || rate_limited.iter().any(|w| m.contains(w)) {
        (ProviderError::RateLimited { retry_after: None }, true)
    } else if code == NOT_AUTHORIZED || no_access.iter().any(|w| m.contains(w)) {
        (ProviderError::Unauthorized, false)
    } else if (40200..40300).contains(&code) || money.iter().any(|w| m.contains(w)) {
        (ProviderError::QuotaExceeded, false)
    } else if code == SE_SERVER_ERROR {
        // Billed already; let the job queue decide when to spend again.
        (ProviderError::Unavailable(what), false)
    } else if (50000..60000).contains(&code) {
        (ProviderError::Unavailable(what), true)
    } else {
        (ProviderError::BadResponse(what), false)
    }
}

/// DataForSEO's error bodies carry `status_message`; anything else is shown as text.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let code = v.get("status_code").map(|c| c.to_string());
        let text = v.get("status_message").and_then(Value::as_str).map(String::from);
        match (code, text) {
            (Some(c), Some(t)) => Some(format!("{c} {t}")),
            (c, t) => c.or(t),
        }
    });
    let mut message = from_json.unwrap_or_else(|| body.trim().to_string());
    if message.len() > 300 {
        let cut = (0..=300).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
        message.truncate(cut);
    }
    message
}

fn host_of(url: &str) -> String {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    host.split(':').next().unwrap_or("").to_string()
}

fn normalize_domain(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_becomes_one_documented_task() {
        let q = SerpQuery {
            keyword: " best pm tools ".into(),
            location: Some("2826".into()),
            language: Some("DE".into()),
            device: Some("Mobile".into()),
            depth: 1000,
        };
        let body = task_body(&q).unwrap();
        assert_eq!(
            body,
            serde_json::json!([{ "keyword": "best pm tools", "location_code": 2826, "language_code": "de",
                "device": "mobile", "depth": 700 }])
        );
        let named = task_body(&SerpQuery { location: Some("London,England,United Kingdom".into()), ..q.clone() });
        assert_eq!(named.unwrap()[0]["location_name"], "London,England,United Kingdom");
        let plain = task_body(&SerpQuery::new("x")).unwrap();
        assert_eq!(
            plain,
            serde_json::json!([{ "keyword": "x", "location_code": 2840, "language_code": "en",
            "depth": 100 }])
        );
        assert!(task_body(&SerpQuery::new("  ")).is_err());
        assert!(task_body(&SerpQuery { device: Some("tablet".into()), ..q }).is_err());
    }

    #[test]
    fn status_codes_map_to_what_the_caller_should_do() {
        let c = |code, m: &str| classify_code(code, m, "task");
        assert!(matches!(c(40501, "Invalid Field: 'keyword'."), (ProviderError::BadResponse(_), false)));
        assert!(matches!(c(40203, "The cost limit has been exceeded."), (ProviderError::QuotaExceeded, false)));
        assert!(matches!(c(40200, "Payment Required."), (ProviderError::QuotaExceeded, false)));
        assert!(matches!(c(40202, "Rate-limit per minute exceeded."), (ProviderError::RateLimited { .. }, true)));
        assert!(matches!(c(40100, "You are not authorized."), (ProviderError::Unauthorized, false)));
        assert!(matches!(c(40101, "Internal SE Server Error."), (ProviderError::Unavailable(_), false)));
        assert!(matches!(c(50000, "Internal Error."), (ProviderError::Unavailable(_), true)));
        assert!(matches!(c(40400, "Not Found."), (ProviderError::BadResponse(_), false)));
    }

    #[test]
    fn domains_are_lowercase_without_www() {
        assert_eq!(normalize_domain("WWW.Engineering-Blog.com."), "engineering-blog.com");
        assert_eq!(normalize_domain("blog.example.com"), "blog.example.com");
        assert_eq!(host_of("https://user@www.Example.com:8443/a?b"), "www.Example.com");
    }
}
