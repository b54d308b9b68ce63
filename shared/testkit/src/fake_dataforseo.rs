//! A local stand-in for DataForSEO's SERP API (Google organic, Live mode, advanced), on a loopback port.
//!
//! It answers in DataForSEO's documented shapes (see the sources listed at the top of
//! `linkcrm-providers/src/dataforseo.rs`) so the client is tested against the wire format: HTTP Basic auth, a
//! one-task array body, a `status_code` at the response and at the task level, and organic results mixed with SERP
//! features (`featured_snippet`, `people_also_ask`, `related_searches`) whose positions count in `rank_absolute`.
//! Invalid tasks get DataForSEO's task-level errors (40501 "Invalid Field", 40000 for more than one task). Faults can
//! be scripted (HTTP 429 with `Retry-After`, 5xx, 402, a task-level or response-level error code, a body that is not
//! JSON, a slow answer), and every call is recorded so tests can assert what the client sent and how often.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SERP_PATH: &str = "/v3/serp/google/organic/live/advanced";
/// The account's details and balance (free).
pub const USER_DATA_PATH: &str = "/v3/appendix/user_data";
const MAX_DEPTH: u64 = 700;
static TASK_IDS: AtomicU64 = AtomicU64::new(1);

/// What the next call answers instead of its normal response.
#[derive(Clone, Debug)]
pub enum DataForSeoFault {
    /// HTTP 429 with `Retry-After` in whole seconds. DataForSEO documents no 429 (it throttles with status codes),
    /// but a proxy in between can send one, and the client must honour it.
    RateLimited { retry_after_secs: u64 },
    /// The given HTTP 5xx, with DataForSEO's body (`status_code` 50000).
    ServerError(u16),
    /// HTTP 402 "Payment Required" (a billing problem: the balance), as documented.
    PaymentRequired,
    /// HTTP 200, response-level 20000, and this `status_code` on the task (40501 invalid field, 40101 search
    /// engine error, 40203 cost limit, 40202 rate limit, 50000 internal error...).
    TaskError { code: u32, message: String },
    /// HTTP 200 with this `status_code` at the response level and no tasks.
    ResponseError { code: u32, message: String },
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Sleep this long, then answer normally (to exercise client timeouts).
    Slow(Duration),
}

impl DataForSeoFault {
    pub fn task(code: u32, message: &str) -> Self {
        DataForSeoFault::TaskError { code, message: message.to_string() }
    }

    pub fn response(code: u32, message: &str) -> Self {
        DataForSeoFault::ResponseError { code, message: message.to_string() }
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct DataForSeoCall {
    pub path: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The JSON body, `Value::Null` when empty or not JSON.
    pub body: Value,
}

impl DataForSeoCall {
    /// The first task of the body (`body[0]`), `Value::Null` if there is none.
    pub fn task(&self) -> &Value {
        self.body.get(0).unwrap_or(&Value::Null)
    }
}

/// An organic result as seeded: (domain, url, title).
type Organic = (String, String, String);

#[derive(Default)]
struct State {
    /// Lowercased keyword → organic results in rank order.
    serps: BTreeMap<String, Vec<Organic>>,
    faults: VecDeque<DataForSeoFault>,
    calls: Vec<DataForSeoCall>,
    /// The account's balance in USD, as `user_data` reports it.
    balance: f64,
}

struct Shared {
    authorization: String,
    state: Mutex<State>,
}

pub struct FakeDataForSeo {
    /// Host only, e.g. `http://127.0.0.1:41234`, as `DataForSeoClient::new` expects.
    pub base_url: String,
    pub login: String,
    pub password: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeDataForSeo {
    /// Starts on a free loopback port with a fresh login and password. Needs a Tokio runtime.
    pub async fn start() -> FakeDataForSeo {
        let unique = crate::server::unique();
        let login = format!("fake-dataforseo-{unique}@example.com");
        let password = format!("fake-dataforseo-password-{unique}");
        let authorization = format!("Basic {}", base64(format!("{login}:{password}").as_bytes()));
        let state = State { balance: 42.5, ..State::default() };
        let shared = Arc::new(Shared { authorization, state: Mutex::new(state) });
        let app = Router::new()
            .route(SERP_PATH, post(serp))
            .route(USER_DATA_PATH, axum::routing::get(user_data))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDataForSeo { base_url: format!("http://{addr}"), login, password, shared, server }
    }

    /// The organic results for `keyword` (any case), as (domain, url, title) in rank order. The answer puts a
    /// featured snippet first, a "people also ask" box after the second result and related searches last, so
    /// organic `rank_absolute` is 2, 3, 5, 6...
    pub fn set_serp<'a>(&self, keyword: &str, organic: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) {
        let organic = organic.into_iter().map(|(d, u, t)| (d.to_string(), u.to_string(), t.to_string())).collect();
        self.state().serps.insert(keyword.trim().to_lowercase(), organic);
    }

    /// The account's balance (USD) `user_data` reports; 42.5 at start.
    pub fn set_balance(&self, balance: f64) {
        self.state().balance = balance;
    }

    /// The next `n` calls answer with `fault`.
    pub fn fail_next(&self, n: usize, fault: DataForSeoFault) {
        self.state().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<DataForSeoCall> {
        self.state().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.state().calls.len()
    }

    pub fn last_call(&self) -> Option<DataForSeoCall> {
        self.state().calls.last().cloned()
    }

    /// Stops listening, so later connections are refused (for "DataForSEO is down" tests).
    pub async fn stop(mut self) -> String {
        self.server.abort();
        let _ = (&mut self.server).await;
        std::mem::take(&mut self.base_url)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeDataForSeo {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Standard base64 with padding, for the expected `Authorization: Basic` value.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// DataForSEO's 401 for a login it does not know.
fn refuse_unknown(shared: &Shared, authorization: Option<&str>) -> Option<Response> {
    let known = authorization.is_some_and(|a| {
        let (scheme, creds) = a.split_once(' ').unwrap_or((a, ""));
        scheme.eq_ignore_ascii_case("basic") && Some(creds.trim()) == shared.authorization.strip_prefix("Basic ")
    });
    let message = "You are not authorized to access this resource. See your login details here: \
                   https://app.dataforseo.com/api-access";
    (!known).then(|| (StatusCode::UNAUTHORIZED, Json(envelope(40100, message, None))).into_response())
}

/// DataForSEO's envelope around zero or one task.
fn envelope(code: u32, message: &str, tasks: Option<Vec<Value>>) -> Value {
    let tasks_count = tasks.as_ref().map_or(0, Vec::len);
    let tasks_error = tasks.iter().flatten().filter(|t| t["status_code"] != 20000).count();
    let cost: f64 = tasks.iter().flatten().filter_map(|t| t["cost"].as_f64()).sum();
    json!({
        "version": "0.1.20260501",
        "status_code": code,
        "status_message": message,
        "time": "2.1345 sec.",
        "cost": cost,
        "tasks_count": tasks_count,
        "tasks_error": tasks_error,
        "tasks": tasks,
    })
}

fn task_json(code: u32, message: &str, data: &Value, result: Option<Vec<Value>>) -> Value {
    // DataForSEO bills a task that reached the search engine even when it failed there (40101).
    let cost = if code == 20000 || code == 40101 { 0.002 } else { 0.0 };
    json!({
        "id": format!("05011000-1535-0139-0000-{:012x}", TASK_IDS.fetch_add(1, Ordering::Relaxed)),
        "status_code": code,
        "status_message": message,
        "time": "2.0301 sec.",
        "cost": cost,
        "result_count": result.as_ref().map_or(0, Vec::len),
        "path": ["v3", "serp", "google", "organic", "live", "advanced"],
        "data": data,
        "result": result,
    })
}

/// HTTP 200 with a task-level error, as DataForSEO answers invalid tasks.
fn task_error(code: u32, message: &str, data: &Value) -> Response {
    Json(envelope(20000, "Ok.", Some(vec![task_json(code, message, data, None)]))).into_response()
}

async fn serp(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (fault, organic) = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.calls.push(DataForSeoCall {
            path: SERP_PATH.to_string(),
            authorization: authorization.clone(),
            body: body_json.clone(),
        });
        if let Some(refused) = refuse_unknown(&shared, authorization.as_deref()) {
            return refused;
        }
        let keyword = body_json.get(0).and_then(|t| t.get("keyword")).and_then(Value::as_str).unwrap_or("");
        let organic = state.serps.get(&keyword.trim().to_lowercase()).cloned().unwrap_or_default();
        (state.faults.pop_front(), organic)
    };
    let data = body_json.get(0).cloned().unwrap_or(Value::Null);
    match fault {
        None => {}
        Some(DataForSeoFault::Slow(d)) => tokio::time::sleep(d).await,
        Some(DataForSeoFault::RateLimited { retry_after_secs }) => {
            let body = envelope(40202, "Rate limit exceeded. Too many requests per minute.", None);
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], Json(body))
                .into_response();
        }
        Some(DataForSeoFault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = "Internal Server Error. Sorry, we could not process your request due to the internal \
                           server error. Please, try again later.";
            return (status, Json(envelope(50000, message, None))).into_response();
        }
        Some(DataForSeoFault::PaymentRequired) => {
            let message = "Payment Required. We had a problem billing your account. Please, check your account's \
                           balance.";
            return (StatusCode::PAYMENT_REQUIRED, Json(envelope(40200, message, None))).into_response();
        }
        Some(DataForSeoFault::TaskError { code, message }) => return task_error(code, &message, &data),
        Some(DataForSeoFault::ResponseError { code, message }) => {
            return Json(envelope(code, &message, None)).into_response()
        }
        Some(DataForSeoFault::Malformed) => {
            return (StatusCode::OK, [("content-type", "application/json")], "{\"version\": \"0.1.2026").into_response()
        }
    }
    let Some(tasks) = body_json.as_array() else {
        return Json(envelope(40503, "POST Data Is Invalid.", None)).into_response();
    };
    if tasks.len() != 1 {
        return Json(envelope(40000, "You can set only one task at a time.", None)).into_response();
    }
    let task = &tasks[0];
    let text = |k: &str| task.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let Some(keyword) = text("keyword") else {
        return task_error(40501, "Invalid Field: 'keyword'.", &data);
    };
    let location_code = task.get("location_code").and_then(Value::as_u64);
    if location_code.is_none() && text("location_name").is_none() {
        return task_error(40501, "Invalid Field: 'location_name'.", &data);
    }
    if text("language_code").is_none() && text("language_name").is_none() {
        return task_error(40501, "Invalid Field: 'language_name'.", &data);
    }
    if task.get("device").is_some_and(|d| d != "desktop" && d != "mobile") {
        return task_error(40501, "Invalid Field: 'device'.", &data);
    }
    let depth = match task.get("depth") {
        None => 100,
        Some(d) => match d.as_u64() {
            Some(d) if (1..=MAX_DEPTH).contains(&d) => d,
            _ => return task_error(40501, "Invalid Field: 'depth'.", &data),
        },
    };
    let items = serp_items(keyword, &organic, depth as usize);
    let item_types: Vec<Value> = {
        let mut seen: Vec<Value> = Vec::new();
        for t in items.iter().map(|i| i["type"].clone()) {
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        seen
    };
    let result = json!({
        "keyword": keyword,
        "type": "organic",
        "se_domain": "google.com",
        "location_code": location_code.unwrap_or(2840),
        "language_code": text("language_code").unwrap_or("en"),
        "check_url": format!("https://www.google.com/search?q={}&num=100&hl=en&gl=US", keyword.replace(' ', "+")),
        "datetime": "2026-05-01 10:00:00 +00:00",
        "spell": null,
        "refinement_chips": null,
        "item_types": item_types,
        "se_results_count": organic.len() * 1_000,
        "items_count": items.len(),
        "items": items,
    });
    Json(envelope(20000, "Ok.", Some(vec![task_json(20000, "Ok.", &data, Some(vec![result]))]))).into_response()
}

/// The page as DataForSEO lists it: SERP features interleaved with at most `depth` organic results.
fn serp_items(keyword: &str, organic: &[Organic], depth: usize) -> Vec<Value> {
    let organic = &organic[..organic.len().min(depth)];
    let mut items = Vec::new();
    let mut rank = 0;
    let mut next = || {
        rank += 1;
        rank
    };
    if let Some((domain, url, title)) = organic.first() {
        // A featured snippet quoting the first result: it has a domain and a url, and still is not organic.
        items.push(json!({
            "type": "featured_snippet", "rank_group": 1, "rank_absolute": next(), "position": "left",
            "xpath": "/html[1]/body[1]/div[2]/div[1]", "domain": domain, "title": title, "url": url,
            "description": format!("A short answer about {keyword}."), "featured_title": keyword, "table": null,
        }));
    }
    for (i, (domain, url, title)) in organic.iter().enumerate() {
        items.push(json!({
            "type": "organic", "rank_group": i + 1, "rank_absolute": next(), "page": i / 10 + 1, "position": "left",
            "xpath": format!("/html[1]/body[1]/div[2]/div[{}]", i + 2), "domain": domain, "title": title,
            "url": url, "cache_url": null, "breadcrumb": format!("https://{domain}"), "website_name": domain,
            "is_image": false, "is_video": false, "is_featured_snippet": false, "is_malicious": false,
            "description": format!("{title}: everything about {keyword}."), "pre_snippet": null,
            "amp_version": false, "rating": null, "highlighted": [keyword], "links": null, "about_this_result": null,
            "timestamp": null,
        }));
        if i == 1 {
            items.push(json!({
                "type": "people_also_ask", "rank_group": 1, "rank_absolute": next(), "position": "left",
                "xpath": "/html[1]/body[1]/div[2]/div[9]", "domain": null, "title": null, "url": null,
                "items": [{ "type": "people_also_ask_element", "title": format!("What is the best {keyword}?"),
                    "seed_question": null, "xpath": "/html[1]/body[1]/div[2]/div[9]/div[1]",
                    "expanded_element": [{ "type": "people_also_ask_expanded_element", "featured_title": null,
                        "url": "https://answers.example.org/q", "domain": "answers.example.org",
                        "title": "An answer", "description": "It depends.", "timestamp": null, "table": null }] }],
            }));
        }
    }
    if !organic.is_empty() {
        items.push(json!({
            "type": "related_searches", "rank_group": 1, "rank_absolute": next(), "position": "left",
            "xpath": "/html[1]/body[1]/div[2]/div[30]",
            "items": [format!("{keyword} free"), format!("{keyword} 2026")],
        }));
    }
    items
}

/// `GET /v3/appendix/user_data`: the account (login, money), free of charge. Scripted faults
/// apply as to the SERP call (429, 5xx, 402, slow, malformed).
async fn user_data(axum::extract::State(shared): axum::extract::State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let (fault, balance) = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.calls.push(DataForSeoCall {
            path: USER_DATA_PATH.to_string(),
            authorization: authorization.clone(),
            body: Value::Null,
        });
        if let Some(refused) = refuse_unknown(&shared, authorization.as_deref()) {
            return refused;
        }
        (state.faults.pop_front(), state.balance)
    };
    match fault {
        None | Some(DataForSeoFault::TaskError { .. }) => {}
        Some(DataForSeoFault::Slow(d)) => tokio::time::sleep(d).await,
        Some(DataForSeoFault::RateLimited { retry_after_secs }) => {
            let body = envelope(40202, "Rate limit exceeded. Too many requests per minute.", None);
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], Json(body))
                .into_response();
        }
        Some(DataForSeoFault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(envelope(50000, "Internal Server Error.", None))).into_response();
        }
        Some(DataForSeoFault::PaymentRequired) => {
            let message = "Payment Required. We had a problem billing your account.";
            return (StatusCode::PAYMENT_REQUIRED, Json(envelope(40200, message, None))).into_response();
        }
        Some(DataForSeoFault::ResponseError { code, message }) => {
            return Json(envelope(code, &message, None)).into_response()
        }
        Some(DataForSeoFault::Malformed) => {
            return (StatusCode::OK, [("content-type", "application/json")], "{\"version\": \"0.1.2026").into_response()
        }
    }
    let task = json!({
        "id": format!("05011000-1535-0139-0000-{:012x}", TASK_IDS.fetch_add(1, Ordering::Relaxed)),
        "status_code": 20000,
        "status_message": "Ok.",
        "time": "0.0121 sec.",
        "cost": 0,
        "result_count": 1,
        "path": ["v3", "appendix", "user_data"],
        "data": { "api": "appendix", "function": "user_data" },
        "result": [{
            "login": "fake-dataforseo",
            "timezone": "UTC",
            "rates": { "limits": { "day": { "serp": 2000 }, "minute": { "serp": 2000 } } },
            "money": { "total": 50.0, "balance": balance, "limits": { "day": { "total": 0.0 }, "minute": { "total": 0.0 } } },
        }],
    });
    Json(envelope(20000, "Ok.", Some(vec![task]))).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(super::base64(b"login:password"), "bG9naW46cGFzc3dvcmQ=");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"abc"), "YWJj");
        assert_eq!(super::base64(b""), "");
    }
}
