//! A local stand-in for Apollo.io's People API Search and Bulk People Enrichment, on a loopback port.
//!
//! It answers in Apollo's documented shapes (see the sources listed at the top of
//! `linkcrm-providers/src/apollo.rs`) so the client is tested against the wire format, not against itself:
//! filters arrive as `person_titles[]`-style query parameters, search never reveals emails and obfuscates last
//! names, bulk_match takes at most 10 `details` and answers `null` for people it cannot match. Faults can be
//! scripted (429 with `Retry-After`, 5xx, credits exhausted, slow answers), and every call is recorded so tests
//! can assert what the client sent and how often.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SEARCH_PATH: &str = "/api/v1/mixed_people/api_search";
pub const BULK_MATCH_PATH: &str = "/api/v1/people/bulk_match";
/// Apollo's key check.
pub const HEALTH_PATH: &str = "/v1/auth/health";

/// A person in the fake's directory. `domain` is given to [`FakeApollo::add_person`].
#[derive(Clone, Debug, Default)]
pub struct FakePerson {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub title: String,
    /// One of Apollo's seniority values (`manager`, `director`, `vp`, ...).
    pub seniority: String,
    pub linkedin_url: Option<String>,
    pub twitter_url: Option<String>,
    pub email: Option<String>,
    /// `verified`, `unverified`, `extrapolated`, `unavailable`...
    pub email_status: String,
    /// Where they work now, if not at the domain they were filed under (Apollo's domain filter also
    /// matches previous employers).
    pub current_domain: Option<String>,
}

/// What the next matching call answers instead of its normal response.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429 with Apollo's rate-limit message, headers and `Retry-After` in whole seconds.
    RateLimited { retry_after_secs: u64 },
    /// The given 5xx status.
    ServerError(u16),
    /// Credits exhausted. Apollo does not document this answer; we use 422 with a credits message.
    QuotaExhausted,
    /// Sleep this long, then answer normally (to exercise client timeouts).
    Slow(Duration),
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub path: String,
    /// Query pairs in order, names as sent (`person_titles[]`).
    pub query: Vec<(String, String)>,
    pub api_key: Option<String>,
    /// The JSON body, `Value::Null` when empty or not JSON.
    pub body: Value,
}

impl RecordedCall {
    /// All values of one query parameter, in order.
    pub fn query_values(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

#[derive(Default)]
struct Directory {
    /// Domain → people, in insertion order (duplicates kept: Apollo has duplicate records too).
    people: BTreeMap<String, Vec<FakePerson>>,
    /// Faults still to serve: (only on this path, or any; the fault).
    faults: VecDeque<(Option<String>, Fault)>,
    calls: Vec<RecordedCall>,
    /// Keys accepted besides the fake's own.
    extra_keys: Vec<String>,
}

struct Shared {
    api_key: String,
    directory: Mutex<Directory>,
}

pub struct FakeApollo {
    /// Host only, e.g. `http://127.0.0.1:41234`, as `ApolloClient::new` expects.
    pub base_url: String,
    pub api_key: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeApollo {
    /// Starts on a free loopback port with a fresh random-looking key. Needs a Tokio runtime.
    pub async fn start() -> FakeApollo {
        let api_key = format!("fake-apollo-key-{}", crate::server::unique());
        let shared = Arc::new(Shared { api_key: api_key.clone(), directory: Mutex::new(Directory::default()) });
        let app = Router::new()
            .route(SEARCH_PATH, post(search))
            .route(BULK_MATCH_PATH, post(bulk_match))
            .route(HEALTH_PATH, axum::routing::get(auth_health))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApollo { base_url: format!("http://{addr}"), api_key, shared, server }
    }

    /// Accepts `key` as well (another customer's Apollo account on the same fake).
    pub fn add_api_key(&self, key: &str) {
        self.dir().extra_keys.push(key.to_owned());
    }

    pub fn add_person(&self, domain: &str, person: FakePerson) {
        self.dir().people.entry(domain.to_ascii_lowercase()).or_default().push(person);
    }

    /// The next `n` calls (to either endpoint) answer with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.dir().faults.extend(std::iter::repeat_n((None, fault), n));
    }

    /// The next `n` calls to `path` answer with `fault`; other paths are unaffected.
    pub fn fail_next_on(&self, path: &str, n: usize, fault: Fault) {
        self.dir().faults.extend(std::iter::repeat_n((Some(path.to_string()), fault), n));
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.dir().calls.clone()
    }

    pub fn calls_to(&self, path: &str) -> Vec<RecordedCall> {
        self.calls().into_iter().filter(|c| c.path == path).collect()
    }

    /// Stops listening, so later connections are refused (for "Apollo is down" tests).
    pub async fn stop(mut self) -> String {
        self.server.abort();
        let _ = (&mut self.server).await;
        std::mem::take(&mut self.base_url)
    }

    fn dir(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.shared.directory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeApollo {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Records the call, checks the key, then serves a scripted fault if one is due.
async fn admit(
    shared: &Shared,
    uri: &Uri,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(String::from);
    let body_json = serde_json::from_slice(body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let fault = {
        let mut dir = shared.directory.lock().unwrap_or_else(|p| p.into_inner());
        dir.calls.push(RecordedCall {
            path: path.clone(),
            query: query.to_vec(),
            api_key: api_key.clone(),
            body: body_json,
        });
        let known = api_key.as_deref().is_some_and(|k| k == shared.api_key || dir.extra_keys.iter().any(|e| e == k));
        if !known {
            // Apollo's documented 401 is plain text.
            let text = "Invalid API key. See https://docs.apollo.io/reference/authentication for how to authenticate.";
            return Some((StatusCode::UNAUTHORIZED, text).into_response());
        }
        let due = dir.faults.iter().position(|(p, _)| p.as_deref().is_none_or(|p| p == path));
        due.and_then(|i| dir.faults.remove(i)).map(|(_, f)| f)
    };
    match fault? {
        Fault::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::RateLimited { retry_after_secs } => {
            let message = format!(
                "The maximum number of api calls allowed for {} is 600 times per hour. Please upgrade your plan from https://app.apollo.io/#/settings/plans/upgrade.",
                path.trim_start_matches('/')
            );
            let headers = [
                ("retry-after", retry_after_secs.to_string()),
                ("x-rate-limit-minute", "50".into()),
                ("x-minute-requests-left", "0".into()),
                ("x-minute-usage", "50".into()),
            ];
            Some((StatusCode::TOO_MANY_REQUESTS, headers, Json(json!({ "message": message }))).into_response())
        }
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some((status, Json(json!({ "error": "Internal server error" }))).into_response())
        }
        Fault::QuotaExhausted => {
            let error = "You have insufficient credits to perform this action. Please upgrade your plan or wait for your credits to renew.";
            let body = json!({ "error": error, "error_code": "INSUFFICIENT_CREDITS" });
            Some((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
    }
}

/// `GET /v1/auth/health`: 200 `{"healthy": true, "is_logged_in": <the key is known>}`.
async fn auth_health(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let known = {
        let dir = shared.directory.lock().unwrap_or_else(|p| p.into_inner());
        api_key == shared.api_key || dir.extra_keys.iter().any(|e| e == api_key)
    };
    if !known {
        let mut dir = shared.directory.lock().unwrap_or_else(|p| p.into_inner());
        dir.calls.push(RecordedCall {
            path: HEALTH_PATH.into(),
            query,
            api_key: Some(api_key.to_owned()),
            body: Value::Null,
        });
        return Json(json!({ "healthy": true, "is_logged_in": false })).into_response();
    }
    if let Some(early) = admit(&shared, &uri, &query, &headers, &Bytes::new()).await {
        return early;
    }
    Json(json!({ "healthy": true, "is_logged_in": true })).into_response()
}

fn unprocessable(error: &str) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": error }))).into_response()
}

async fn search(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(early) = admit(&shared, &uri, &query, &headers, &body).await {
        return early;
    }
    let values = |name: &str| -> Vec<String> {
        query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.to_ascii_lowercase()).collect()
    };
    // A number that does not parse is Apollo's "Invalid parameters" 422, like one out of range.
    let number = |name: &str, default: usize| -> Option<usize> {
        query.iter().find(|(k, _)| k == name).map_or(Some(default), |(_, v)| v.parse().ok())
    };
    let (Some(page), Some(per_page)) = (number("page", 1), number("per_page", 10)) else {
        return unprocessable("Invalid parameters");
    };
    // Apollo's display limit: 100 per page, 500 pages.
    if page == 0 || page > 500 || per_page == 0 || per_page > 100 {
        return unprocessable("Invalid parameters");
    }
    let (domains, titles, seniorities) =
        (values("q_organization_domains_list[]"), values("person_titles[]"), values("person_seniorities[]"));
    let dir = shared.directory.lock().unwrap_or_else(|p| p.into_inner());
    let matching: Vec<(&str, &FakePerson)> = dir
        .people
        .iter()
        .filter(|(domain, _)| domains.is_empty() || domains.contains(domain))
        .flat_map(|(domain, people)| people.iter().map(move |p| (domain.as_str(), p)))
        // Titles match loosely (any listed title inside the person's), seniorities exactly.
        .filter(|(_, p)| titles.is_empty() || titles.iter().any(|t| p.title.to_ascii_lowercase().contains(t.as_str())))
        .filter(|(_, p)| seniorities.is_empty() || seniorities.contains(&p.seniority.to_ascii_lowercase()))
        .collect();
    let people: Vec<Value> =
        matching.iter().skip((page - 1) * per_page).take(per_page).map(|(d, p)| search_json(d, p)).collect();
    Json(json!({ "total_entries": matching.len(), "people": people })).into_response()
}

/// The current People API Search shape: no email, no phone, no social links, obfuscated last name.
fn search_json(filed_under: &str, p: &FakePerson) -> Value {
    let employer = p.current_domain.as_deref().unwrap_or(filed_under);
    json!({
        "id": p.id,
        "first_name": p.first_name,
        "last_name_obfuscated": obfuscate(&p.last_name),
        "title": p.title,
        "last_refreshed_at": "2026-05-01T10:00:00.000+00:00",
        "has_email": p.email.is_some() && p.email_status != "unavailable",
        "has_city": true,
        "has_state": true,
        "has_country": true,
        "has_direct_phone": "Maybe: please request direct dial via people/bulk_match",
        "organization": { "name": employer, "has_industry": true, "has_phone": false },
    })
}

/// "Olafsson" → "Ol***n", as Apollo documents.
fn obfuscate(last_name: &str) -> String {
    let chars: Vec<char> = last_name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1..=3 => format!("{}***", chars[0]),
        n => format!("{}{}***{}", chars[0], chars[1], chars[n - 1]),
    }
}

async fn bulk_match(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(early) = admit(&shared, &uri, &query, &headers, &body).await {
        return early;
    }
    let Some(details) = serde_json::from_slice::<Value>(&body).ok().and_then(|b| b.get("details").cloned()) else {
        return unprocessable("details is required");
    };
    let Some(details) = details.as_array() else {
        return unprocessable("details must be an array");
    };
    if details.is_empty() || details.len() > 10 {
        return unprocessable("You can enrich between 1 and 10 people per request");
    }
    let dir = shared.directory.lock().unwrap_or_else(|p| p.into_inner());
    let find = |d: &Value| -> Option<(&str, &FakePerson)> {
        let field = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_ascii_lowercase);
        dir.people.iter().flat_map(|(dom, ps)| ps.iter().map(move |p| (dom.as_str(), p))).find(|(dom, p)| {
            match (field("id"), field("email")) {
                (Some(id), _) => p.id.to_ascii_lowercase() == id,
                (None, Some(email)) => p.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)),
                (None, None) => {
                    field("first_name").is_some_and(|f| f == p.first_name.to_ascii_lowercase())
                        && field("last_name").is_some_and(|l| l == p.last_name.to_ascii_lowercase())
                        && field("domain").is_some_and(|x| x == *dom)
                }
            }
        })
    };
    let matches: Vec<Value> =
        details.iter().map(|d| find(d).map_or(Value::Null, |(dom, p)| match_json(dom, p))).collect();
    let found = matches.iter().filter(|m| !m.is_null()).count();
    Json(json!({
        "status": "success",
        "error_code": null,
        "error_message": null,
        "total_requested_enrichments": details.len(),
        "unique_enriched_records": found,
        "missing_records": details.len() - found,
        "credits_consumed": found,
        "matches": matches,
    }))
    .into_response()
}

/// A matched person as Bulk People Enrichment returns them (the fields we use, in Apollo's names).
fn match_json(filed_under: &str, p: &FakePerson) -> Value {
    let domain = p.current_domain.as_deref().unwrap_or(filed_under);
    let email = if p.email_status == "unavailable" { None } else { p.email.clone() };
    json!({
        "id": p.id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "name": format!("{} {}", p.first_name, p.last_name),
        "linkedin_url": p.linkedin_url,
        "title": p.title,
        "email_status": p.email_status,
        "photo_url": null,
        "twitter_url": p.twitter_url,
        "github_url": null,
        "facebook_url": null,
        "headline": format!("{} at {}", p.title, domain),
        "email": email,
        "seniority": p.seniority,
        "organization": { "name": domain, "primary_domain": domain, "website_url": format!("http://www.{domain}") },
    })
}
