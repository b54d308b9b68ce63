//! A local stand-in for Ahrefs API v3 Site Explorer (refdomains, all-backlinks, domain-rating, metrics,
//! backlinks-stats), on a loopback port.
//!
//! It answers in Ahrefs' documented shapes (see the sources listed at the top of `linkcrm-providers/src/ahrefs.rs`)
//! so the client is tested against the wire format: GET with query parameters and `Authorization: Bearer`, rows
//! holding only the `select`ed columns, `target`/`select` and `target`/`date` required (400 `{error}` otherwise,
//! also for an unknown column, mode, history or aggregation), `limit` and `order_by` honoured, `aggregation =
//! 1_per_domain` keeping one backlink per linking domain. Faults can be scripted (429 with `Retry-After`, 5xx, 402,
//! 403 for exhausted API units, a body that is not JSON, a slow answer), and every call is recorded so tests can
//! assert what the client sent and how often.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const REFDOMAINS_PATH: &str = "/v3/site-explorer/refdomains";
pub const ALL_BACKLINKS_PATH: &str = "/v3/site-explorer/all-backlinks";
pub const DOMAIN_RATING_PATH: &str = "/v3/site-explorer/domain-rating";
pub const METRICS_PATH: &str = "/v3/site-explorer/metrics";
pub const BACKLINKS_STATS_PATH: &str = "/v3/site-explorer/backlinks-stats";
/// The subscription's limits and usage (free of units).
pub const LIMITS_PATH: &str = "/v3/subscription-info/limits-and-usage";

const REFDOMAINS_COLUMNS: &[&str] = &[
    "domain",
    "domain_rating",
    "dofollow_links",
    "links_to_target",
    "first_seen",
    "last_seen",
    "lost_links",
    "new_links",
    "is_spam",
    "traffic_domain",
];
const BACKLINKS_COLUMNS: &[&str] = &[
    "url_from",
    "url_to",
    "anchor",
    "title",
    "domain_rating_source",
    "domain_rating_target",
    "url_rating_source",
    "is_dofollow",
    "is_nofollow",
    "is_ugc",
    "is_sponsored",
    "is_lost",
    "lost_reason",
    "first_seen",
    "last_seen",
    "http_code",
    "noindex",
    "traffic",
];

/// What the next matching call answers instead of its normal response.
#[derive(Clone, Debug)]
pub enum AhrefsFault {
    /// 429 with `Retry-After` in whole seconds.
    RateLimited { retry_after_secs: u64 },
    /// The given 5xx status.
    ServerError(u16),
    /// 402 Payment Required.
    PaymentRequired,
    /// The key's or workspace's API units are spent. Ahrefs does not document this answer; we use 403 with an
    /// units message (see `linkcrm-providers/src/ahrefs.rs`).
    InsufficientUnits,
    /// 200 with a body that is not JSON.
    Malformed,
    /// Sleep this long, then answer normally (to exercise client timeouts).
    Slow(Duration),
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct AhrefsCall {
    pub path: String,
    /// Query pairs in order, as sent.
    pub query: Vec<(String, String)>,
    /// The Bearer token, if the request had one.
    pub api_key: Option<String>,
}

impl AhrefsCall {
    /// The first value of one query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
struct SeededMetrics {
    domain_rating: f64,
    traffic: u64,
    keywords: u64,
    refdomains: u64,
    backlinks: u64,
}

#[derive(Default)]
struct Index {
    /// Normalised target → (domain, domain rating).
    refdomains: BTreeMap<String, Vec<(String, f64)>>,
    /// Normalised target → (url_from, url_to, anchor, domain_rating_source).
    backlinks: BTreeMap<String, Vec<(String, String, String, f64)>>,
    metrics: BTreeMap<String, SeededMetrics>,
    /// The workspace's monthly API units: (limit, used).
    units: (u64, u64),
    /// Faults still to serve: (only on this path, or any; the fault).
    faults: VecDeque<(Option<String>, AhrefsFault)>,
    calls: Vec<AhrefsCall>,
}

struct Shared {
    api_key: String,
    index: Mutex<Index>,
}

pub struct FakeAhrefs {
    /// Host only, e.g. `http://127.0.0.1:41234`, as `AhrefsClient::new` expects.
    pub base_url: String,
    pub api_key: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeAhrefs {
    /// Starts on a free loopback port with a fresh key. Needs a Tokio runtime.
    pub async fn start() -> FakeAhrefs {
        let api_key = format!("fake-ahrefs-key-{}", crate::server::unique());
        let index = Index { units: (500_000, 1_250), ..Index::default() };
        let shared = Arc::new(Shared { api_key: api_key.clone(), index: Mutex::new(index) });
        let app = Router::new()
            .route(LIMITS_PATH, get(handle))
            .route(REFDOMAINS_PATH, get(handle))
            .route(ALL_BACKLINKS_PATH, get(handle))
            .route(DOMAIN_RATING_PATH, get(handle))
            .route(METRICS_PATH, get(handle))
            .route(BACKLINKS_STATS_PATH, get(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAhrefs { base_url: format!("http://{addr}"), api_key, shared, server }
    }

    /// The domains linking to `target`, as (domain, domain rating).
    pub fn set_refdomains<'a>(&self, target: &str, domains: impl IntoIterator<Item = (&'a str, f64)>) {
        let rows = domains.into_iter().map(|(d, dr)| (d.to_string(), dr)).collect();
        self.index().refdomains.insert(normalize_target(target), rows);
    }

    /// The live backlinks to `target`, as (url_from, url_to, anchor, domain rating of the linking site).
    pub fn set_backlinks<'a>(&self, target: &str, links: impl IntoIterator<Item = (&'a str, &'a str, &'a str, f64)>) {
        let rows = links.into_iter().map(|(f, t, a, dr)| (f.to_string(), t.to_string(), a.to_string(), dr)).collect();
        self.index().backlinks.insert(normalize_target(target), rows);
    }

    /// `domain`'s Domain Rating, organic traffic and keywords, live referring domains and live backlinks.
    pub fn set_metrics(&self, domain: &str, dr: f64, traffic: u64, keywords: u64, refdomains: u64, backlinks: u64) {
        let seeded = SeededMetrics { domain_rating: dr, traffic, keywords, refdomains, backlinks };
        self.index().metrics.insert(normalize_target(domain), seeded);
    }

    /// The workspace's monthly API units, as `limits-and-usage` reports them (500,000 and 1,250
    /// at start).
    pub fn set_units(&self, limit: u64, used: u64) {
        self.index().units = (limit, used);
    }

    /// The next `n` calls (to any endpoint) answer with `fault`.
    pub fn fail_next(&self, n: usize, fault: AhrefsFault) {
        self.index().faults.extend(std::iter::repeat_n((None, fault), n));
    }

    /// The next `n` calls to `path` answer with `fault`; other paths are unaffected.
    pub fn fail_next_on(&self, path: &str, n: usize, fault: AhrefsFault) {
        self.index().faults.extend(std::iter::repeat_n((Some(path.to_string()), fault), n));
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<AhrefsCall> {
        self.index().calls.clone()
    }

    pub fn calls_to(&self, path: &str) -> Vec<AhrefsCall> {
        self.calls().into_iter().filter(|c| c.path == path).collect()
    }

    pub fn call_count(&self) -> usize {
        self.index().calls.len()
    }

    pub fn last_call(&self) -> Option<AhrefsCall> {
        self.index().calls.last().cloned()
    }

    /// Stops listening, so later connections are refused (for "Ahrefs is down" tests).
    pub async fn stop(mut self) -> String {
        self.server.abort();
        let _ = (&mut self.server).await;
        std::mem::take(&mut self.base_url)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.shared.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeAhrefs {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `https://www.Example.com/` → `example.com`; paths are kept.
fn normalize_target(target: &str) -> String {
    let t = target.trim().to_ascii_lowercase();
    let t = t.split_once("://").map_or(t.as_str(), |(_, rest)| rest);
    t.trim_start_matches("www.").trim_end_matches('/').to_string()
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("").to_ascii_lowercase()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn bad_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let api_key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
        .map(|(_, token)| token.trim().to_string());
    let fault = {
        let mut index = shared.index.lock().unwrap_or_else(|p| p.into_inner());
        index.calls.push(AhrefsCall { path: path.clone(), query: query.clone(), api_key: api_key.clone() });
        if api_key.as_deref() != Some(shared.api_key.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "Invalid API key");
        }
        let due = index.faults.iter().position(|(p, _)| p.as_deref().is_none_or(|p| p == path));
        due.and_then(|i| index.faults.remove(i)).map(|(_, f)| f)
    };
    match fault {
        None => {}
        Some(AhrefsFault::Slow(d)) => tokio::time::sleep(d).await,
        Some(AhrefsFault::RateLimited { retry_after_secs }) => {
            let body = Json(json!({ "error": "Too many requests. Please slow down." }));
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], body)
                .into_response();
        }
        Some(AhrefsFault::ServerError(code)) => {
            return error(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "Internal error")
        }
        Some(AhrefsFault::PaymentRequired) => return error(StatusCode::PAYMENT_REQUIRED, "Payment required"),
        Some(AhrefsFault::InsufficientUnits) => {
            let message = "Insufficient API units: the monthly API units limit of this key has been reached";
            return error(StatusCode::FORBIDDEN, message);
        }
        Some(AhrefsFault::Malformed) => {
            return (StatusCode::OK, [("content-type", "application/json")], "{\"refdomains\": [{\"dom").into_response()
        }
    }
    if path == LIMITS_PATH {
        let (limit, used) = shared.index.lock().unwrap_or_else(|p| p.into_inner()).units;
        return Json(json!({ "limits_and_usage": {
            "subscription": "Advanced, billed monthly", "usage_reset_date": "2027-01-01T00:00:00Z",
            "units_limit_workspace": limit, "units_usage_workspace": used,
            "units_limit_api_key": null, "units_usage_api_key": used,
            "api_key_expiration_date": "2027-06-01T00:00:00Z",
        } }))
        .into_response();
    }
    let param = |name: &str| param(&query, name);
    if param("output").is_some_and(|o| o != "json") {
        return bad_request("this fake speaks output=json only");
    }
    if param("mode").is_some_and(|m| !["exact", "prefix", "domain", "subdomains"].contains(&m)) {
        return bad_request("Invalid value for parameter mode");
    }
    let Some(target) = param("target").map(str::trim).filter(|t| !t.is_empty()) else {
        return bad_request("Missing required parameter: target");
    };
    let target = normalize_target(target);
    let index = shared.index.lock().unwrap_or_else(|p| p.into_inner());
    match path.as_str() {
        REFDOMAINS_PATH => {
            let rows = index.refdomains.get(&target).into_iter().flatten().enumerate().map(|(i, (domain, dr))| {
                json!({
                    "domain": domain, "domain_rating": dr, "dofollow_links": 1 + i % 3, "links_to_target": 2 + i % 4,
                    "first_seen": "2024-02-11T08:15:00Z", "last_seen": "2026-04-28T19:02:00Z", "lost_links": 0,
                    "new_links": 0, "is_spam": false, "traffic_domain": 1200 + 10 * i,
                })
            });
            list(&query, "refdomains", REFDOMAINS_COLUMNS, rows.collect(), None)
        }
        ALL_BACKLINKS_PATH => {
            let aggregation = param("aggregation").unwrap_or("similar_links");
            if !["similar_links", "1_per_domain", "all"].contains(&aggregation) {
                return bad_request("Invalid value for parameter aggregation");
            }
            let rows = index.backlinks.get(&target).into_iter().flatten().map(|(from, to, anchor, dr)| {
                json!({
                    "url_from": from, "url_to": to, "anchor": anchor, "title": format!("A page on {}", host_of(from)),
                    "domain_rating_source": dr, "domain_rating_target": 50.0, "url_rating_source": dr / 2.0,
                    "is_dofollow": true, "is_nofollow": false, "is_ugc": false, "is_sponsored": false,
                    "is_lost": false, "lost_reason": null, "first_seen": "2025-01-20T10:00:00Z",
                    "last_seen": "2026-04-30T06:00:00Z", "http_code": 200, "noindex": false, "traffic": 35,
                })
            });
            let one_per_domain = (aggregation == "1_per_domain").then_some("url_from");
            list(&query, "backlinks", BACKLINKS_COLUMNS, rows.collect(), one_per_domain)
        }
        _ => {
            match param("date") {
                Some(d) if is_date(d) => {}
                Some(_) => return bad_request("Invalid value for parameter date: expected YYYY-MM-DD"),
                None => return bad_request("Missing required parameter: date"),
            }
            let seeded = index.metrics.get(&target);
            let body = match path.as_str() {
                DOMAIN_RATING_PATH => json!({ "domain_rating": {
                    "domain_rating": seeded.map_or(0.0, |m| m.domain_rating),
                    "ahrefs_rank": seeded.map(|m| ((100.0 - m.domain_rating) * 10_000.0) as u64 + 1),
                }}),
                METRICS_PATH => {
                    let (traffic, keywords) = seeded.map_or((0, 0), |m| (m.traffic, m.keywords));
                    json!({ "metrics": {
                        "org_keywords": keywords, "paid_keywords": 0, "org_keywords_1_3": keywords / 10,
                        "org_traffic": traffic, "org_cost": traffic * 40, "paid_traffic": 0, "paid_cost": 0,
                        "paid_pages": 0,
                    }})
                }
                _ => {
                    let (refdomains, backlinks) = seeded.map_or((0, 0), |m| (m.refdomains, m.backlinks));
                    json!({ "metrics": {
                        "live": backlinks, "all_time": backlinks * 2, "live_refdomains": refdomains,
                        "all_time_refdomains": refdomains * 2,
                    }})
                }
            };
            Json(body).into_response()
        }
    }
}

/// A list endpoint's answer: `select` checked and applied, `history`, `order_by` and `limit` honoured, and, when
/// `one_per` names a URL column, one row per host of that column.
fn list(
    query: &[(String, String)],
    key: &str,
    columns: &[&str],
    mut rows: Vec<Value>,
    one_per: Option<&str>,
) -> Response {
    let param = |name: &str| param(query, name);
    let Some(select) = param("select").filter(|s| !s.trim().is_empty()) else {
        return bad_request("Missing required parameter: select");
    };
    let selected: Vec<&str> = select.split(',').map(str::trim).collect();
    if let Some(unknown) = selected.iter().find(|c| !columns.contains(c)) {
        return bad_request(format!("Unknown column in select: {unknown}"));
    }
    match param("history") {
        None | Some("live") | Some("all_time") => {}
        Some(h) if h.strip_prefix("since:").is_some_and(is_date) => {}
        Some(_) => return bad_request("Invalid value for parameter history"),
    }
    let Some(limit) = param("limit").map_or(Some(1000), |l| l.parse::<usize>().ok()) else {
        return bad_request("Invalid value for parameter limit");
    };
    if let Some(order_by) = param("order_by") {
        let (column, direction) = order_by.split_once(':').unwrap_or((order_by, "asc"));
        if !columns.contains(&column) || !["asc", "desc"].contains(&direction) {
            return bad_request(format!("Invalid value for parameter order_by: {order_by}"));
        }
        rows.sort_by(|a, b| {
            let ord = compare(&a[column], &b[column]);
            if direction == "desc" {
                ord.reverse()
            } else {
                ord
            }
        });
    }
    if let Some(column) = one_per {
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert(host_of(r[column].as_str().unwrap_or(""))));
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .take(limit)
        .map(|row| {
            let projected: Map<String, Value> =
                selected.iter().map(|c| (c.to_string(), row.get(*c).cloned().unwrap_or(Value::Null))).collect();
            Value::Object(projected)
        })
        .collect();
    Json(json!({ key: rows })).into_response()
}

/// The first value of one query parameter.
fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_dates_are_read_leniently_and_strictly() {
        assert_eq!(normalize_target("https://www.Example.com/"), "example.com");
        assert_eq!(normalize_target("example.com/blog/"), "example.com/blog");
        assert!(is_date("2026-05-01"));
        assert!(!is_date("2026-5-01"));
        assert!(!is_date("2026-13-01"));
        assert!(!is_date("today"));
    }
}
