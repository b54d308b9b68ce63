//! The checker's HTTP side: a polite crawler through the SSRF guard.
//!
//! Pages are tenant input, so every request (robots.txt and each redirect hop) goes to vetted
//! addresses only: names through the guarded resolver, IP literals through `check_url_host`
//! before each request. Redirects are followed here, hop by hop, never by reqwest, so each hop is
//! vetted and counted.
//!
//! Politeness: robots.txt is honoured for our own agent (a site that disallows us is not fetched
//! and the check is `unreachable`), one request at a time per host by default, a global cap on
//! requests in flight, and robots.txt cached per origin for an hour. Limits: a timeout per
//! request (body included), a body cap (what was read is still parsed), a redirect cap.

use super::analyze::{self, Expected, FoundLink};
use linkcrm_domain::links::CheckResult;
use linkcrm_netguard::http::{check_url_host, GuardedResolver};
use linkcrm_netguard::{Guard, GuardError};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION, USER_AGENT};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use texting_robots::Robot;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

pub const USER_AGENT_VAR: &str = "LINKCRM_LINKCHECK_USER_AGENT";
pub const TIMEOUT_VAR: &str = "LINKCRM_LINKCHECK_TIMEOUT_SECS";
pub const MAX_BYTES_VAR: &str = "LINKCRM_LINKCHECK_MAX_BYTES";
pub const CONCURRENCY_VAR: &str = "LINKCRM_LINKCHECK_CONCURRENCY";
pub const PER_HOST_VAR: &str = "LINKCRM_LINKCHECK_PER_HOST";
pub const ROBOTS_TTL_VAR: &str = "LINKCRM_LINKCHECK_ROBOTS_TTL_SECS";

pub const DEFAULT_USER_AGENT: &str =
    concat!("linkcrm-linkcheck/", env!("CARGO_PKG_VERSION"), " (+https://linkcrm.dev/linkcheck)");

const ACCEPT_HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1";

/// Redirects followed for robots.txt (as Google does; more reads as no robots.txt).
const ROBOTS_REDIRECTS: usize = 5;
/// robots.txt beyond this is ignored (Google reads 500 KiB).
const ROBOTS_MAX_BYTES: usize = 500 * 1024;
/// A robots.txt that could not be read is tried again after this (or the TTL, if shorter): soon
/// enough that a site back up is checked again, long enough that a batch of checks on a host that
/// is down does not wait for its robots.txt once per link.
const ROBOTS_FAILURE_TTL: Duration = Duration::from_secs(60);
/// The per-host and robots.txt maps drop unused entries once they are this large.
const PRUNE_AT: usize = 1024;

/// The checker's limits and identity.
#[derive(Debug, Clone)]
pub struct Config {
    pub user_agent: String,
    /// Per request (each redirect hop, robots.txt), body included.
    pub timeout: Duration,
    /// Body bytes read from a page; the rest is not fetched.
    pub max_bytes: usize,
    pub max_redirects: usize,
    /// Requests in flight over all hosts.
    pub concurrency: usize,
    /// Requests in flight to one `host:port`.
    pub per_host: usize,
    pub robots_ttl: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            timeout: Duration::from_secs(15),
            max_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
            concurrency: 64,
            per_host: 1,
            robots_ttl: Duration::from_secs(3600),
        }
    }
}

impl Config {
    /// The defaults, overridden by `LINKCRM_LINKCHECK_USER_AGENT`, `_TIMEOUT_SECS` (fractional
    /// allowed), `_MAX_BYTES`, `_CONCURRENCY`, `_PER_HOST` and `_ROBOTS_TTL_SECS` (how long a robots.txt is kept, 3600). A value that does not parse (or is
    /// zero) is logged and ignored.
    pub fn from_env() -> Config {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let mut c = Config::default();
        let value = |var: &str| get(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let ignored = |var: &str, v: &str| tracing::warn!(var, value = v, "ignored: not a valid setting");
        if let Some(v) = value(USER_AGENT_VAR) {
            match HeaderValue::from_str(&v) {
                Ok(_) => c.user_agent = v,
                Err(_) => ignored(USER_AGENT_VAR, &v),
            }
        }
        if let Some(v) = value(TIMEOUT_VAR) {
            match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 && s < 3600.0 => c.timeout = Duration::from_secs_f64(s),
                _ => ignored(TIMEOUT_VAR, &v),
            }
        }
        let count = |var: &str, into: &mut usize| {
            if let Some(v) = value(var) {
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => *into = n,
                    _ => ignored(var, &v),
                }
            }
        };
        count(MAX_BYTES_VAR, &mut c.max_bytes);
        count(CONCURRENCY_VAR, &mut c.concurrency);
        count(PER_HOST_VAR, &mut c.per_host);
        if let Some(v) = value(ROBOTS_TTL_VAR) {
            match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => c.robots_ttl = Duration::from_secs_f64(s),
                _ => ignored(ROBOTS_TTL_VAR, &v),
            }
        }
        c
    }

    /// The product token robots.txt groups are matched against: `linkcrm-linkcheck` in
    /// `linkcrm-linkcheck/0.1.0 (+https://…)`.
    pub fn agent_token(&self) -> String {
        let token = self.user_agent.split(['/', ' ', '(']).next().unwrap_or("").trim();
        if token.is_empty() {
            "linkcrm-linkcheck".to_owned()
        } else {
            token.to_owned()
        }
    }
}

/// What one check found, ready to store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub result: CheckResult,
    /// The status of the last page response (a redirect's, when the chain ended at one).
    pub http_status: Option<u16>,
    /// The URL that gave that response.
    pub final_url: Option<String>,
    /// Each redirect's target, in order (the last is `final_url` when the chain ended normally).
    pub redirects: Vec<String>,
    pub link: Option<FoundLink>,
    pub detail: Option<String>,
    /// Time spent checking, not waiting for a turn at the host.
    pub duration_ms: u64,
}

/// robots.txt as it applies to us and to Googlebot; `None` allows everything (no file, a 4xx,
/// or a file that does not parse).
struct Rules {
    ours: Option<Robot>,
    googlebot: Option<Robot>,
}

impl Rules {
    fn allow_all() -> Rules {
        Rules { ours: None, googlebot: None }
    }

    fn parse(agent: &str, body: &[u8]) -> Rules {
        Rules { ours: Robot::new(agent, body).ok(), googlebot: Robot::new("Googlebot", body).ok() }
    }

    fn allows(robot: &Option<Robot>, url: &Url) -> bool {
        robot.as_ref().is_none_or(|r| r.allowed(url.as_str()))
    }
}

struct Cached {
    until: Instant,
    /// The rules, or why robots.txt could not be read (the detail to report).
    rules: Result<Arc<Rules>, String>,
}

/// A turn at a host: its per-host permit and a global one.
struct Turn {
    key: String,
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// The checker: one connection pool, the concurrency limits and the robots.txt cache, shared by
/// every check (clone it freely).
#[derive(Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    guard: Guard,
    config: Config,
    user_agent: HeaderValue,
    agent: String,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    robots: Mutex<HashMap<String, Cached>>,
}

/// A check that ended: result, link, detail.
type Ended = (CheckResult, Option<FoundLink>, Option<String>);

fn unreachable(detail: impl Into<String>) -> Ended {
    (CheckResult::Unreachable, None, Some(detail.into()))
}

/// What a check has gathered on the way, reported whatever the end.
#[derive(Default)]
struct Trail {
    http_status: Option<u16>,
    final_url: Option<String>,
    redirects: Vec<String>,
    waited: Duration,
}

impl Checker {
    pub fn new(guard: Guard, config: Config) -> Checker {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(guard))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A backstop: each request is also bounded by `tokio::time::timeout_at` below.
            .timeout(config.timeout + Duration::from_secs(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client builds with static settings");
        let user_agent =
            HeaderValue::from_str(&config.user_agent).unwrap_or_else(|_| HeaderValue::from_static(DEFAULT_USER_AGENT));
        let inner = Inner {
            client,
            guard,
            agent: config.agent_token(),
            user_agent,
            global: Arc::new(Semaphore::new(config.concurrency.max(1))),
            hosts: Mutex::new(HashMap::new()),
            robots: Mutex::new(HashMap::new()),
            config,
        };
        Checker { inner: Arc::new(inner) }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Checks that `page_url` carries the `expected` link. Never fails: what went wrong is the
    /// result (`unreachable` with a detail a tenant may read).
    pub async fn check(&self, page_url: &str, expected: &Expected) -> Outcome {
        let started = Instant::now();
        let mut trail = Trail::default();
        let (result, link, detail) = self.inner.run(page_url, expected, &mut trail).await;
        tracing::debug!(page = page_url, result = result.as_str(), detail = ?detail, "link checked");
        let spent = started.elapsed().saturating_sub(trail.waited);
        Outcome {
            result,
            http_status: trail.http_status,
            final_url: trail.final_url,
            redirects: trail.redirects,
            link,
            detail,
            duration_ms: u64::try_from(spent.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl Inner {
    async fn run(&self, page_url: &str, expected: &Expected, trail: &mut Trail) -> Ended {
        let Ok(mut original) = Url::parse(page_url.trim()) else {
            return unreachable("the page URL is not a valid URL");
        };
        if !matches!(original.scheme(), "http" | "https") {
            return unreachable("only http and https pages can be checked");
        }
        if original.host_str().is_none_or(str::is_empty) {
            return unreachable("the page URL has no host");
        }
        original.set_fragment(None);

        let mut current = original.clone();
        let mut turn: Option<Turn> = None;
        let mut hops = 0;
        loop {
            // Before queueing: a refused address needs no turn.
            if let Err(e) = check_url_host(&self.guard, &current).await {
                return unreachable(refusal(&current, &e));
            }
            let key = host_key(&current);
            if turn.as_ref().is_none_or(|t| t.key != key) {
                // Release the previous host before waiting for the next: holding one while waiting
                // for another is how two redirects across the same hosts deadlock.
                drop(turn.take());
                let asked = Instant::now();
                turn = Some(self.turn(key).await);
                trail.waited += asked.elapsed();
            }
            let rules = match self.robots(&current).await {
                Ok(rules) => rules,
                Err(detail) => return unreachable(detail),
            };
            if !Rules::allows(&rules.ours, &current) {
                return unreachable(format!("robots.txt disallows {}", self.agent));
            }
            // What counts is whether Google may crawl the page that carries the link: the last hop's.
            let googlebot_disallowed = !Rules::allows(&rules.googlebot, &current);

            let deadline = Instant::now() + self.config.timeout;
            let request = self
                .client
                .get(current.clone())
                .header(USER_AGENT, self.user_agent.clone())
                .header(ACCEPT, ACCEPT_HTML)
                .send();
            let mut res = match tokio::time::timeout_at(deadline, request).await {
                Err(_) => return unreachable(self.timed_out()),
                Ok(Err(e)) => return unreachable(self.failure(&current, &e)),
                Ok(Ok(res)) => res,
            };
            let status = res.status().as_u16();
            trail.http_status = Some(status);
            trail.final_url = Some(current.to_string());

            if let Some(next) = redirect_target(&res, &current) {
                let next = match next {
                    Ok(next) => next,
                    Err(why) => return unreachable(why),
                };
                if hops == self.config.max_redirects {
                    return unreachable(format!("too many redirects (more than {})", self.config.max_redirects));
                }
                hops += 1;
                trail.redirects.push(next.to_string());
                current = next;
                continue;
            }
            match status {
                404 | 410 => return (CheckResult::PageGone, None, Some(status_text(&res))),
                200..=299 => {}
                _ => return unreachable(status_text(&res)),
            }

            let content_type =
                res.headers().get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            if let Some(ct) = content_type.as_deref().filter(|ct| !ct.trim().is_empty()) {
                let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                if !matches!(essence.as_str(), "text/html" | "application/xhtml+xml") {
                    let shown: String = ct.trim().chars().take(100).collect();
                    return unreachable(format!("not an HTML page ({shown})"));
                }
            }
            let x_robots: Vec<String> = res
                .headers()
                .get_all("x-robots-tag")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let (body, truncated) = match tokio::time::timeout_at(deadline, read(&mut res, self.config.max_bytes)).await
            {
                Err(_) => return unreachable(self.timed_out()),
                Ok(Err(e)) => return unreachable(self.failure(&current, &e)),
                Ok(Ok(read)) => read,
            };
            drop(res);
            drop(turn);

            let html = decode(&body, content_type.as_deref());
            let page = analyze::parse(&html, &current, expected);
            let verdict = analyze::judge(&page, &current, &original, &x_robots, googlebot_disallowed);
            let mut detail = verdict.detail;
            if truncated && verdict.link.is_none() {
                let note = format!("truncated at {}", size(self.config.max_bytes));
                detail = Some(match detail {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
            }
            return (verdict.result, verdict.link, detail);
        }
    }

    /// Waits for a turn at `key` (`host:port`): the host's permit first, then a global one, so
    /// checks queued behind a busy host do not hold global permits other hosts could use.
    async fn turn(&self, key: String) -> Turn {
        let host = {
            let mut hosts = self.hosts.lock().expect("the host map is never poisoned");
            if hosts.len() >= PRUNE_AT {
                // Nobody holds or waits for a semaphore only the map refers to.
                hosts.retain(|_, s| Arc::strong_count(s) > 1);
            }
            hosts.entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.config.per_host.max(1)))).clone()
        };
        let host = host.acquire_owned().await.expect("host semaphores are never closed");
        let global = self.global.clone().acquire_owned().await.expect("the global semaphore is never closed");
        Turn { key, _host: host, _global: global }
    }

    /// The robots.txt rules for `url`'s origin, from the cache or fetched (the caller holds the
    /// host's turn). `Err` is the detail to report.
    async fn robots(&self, url: &Url) -> Result<Arc<Rules>, String> {
        let origin = origin(url);
        let now = Instant::now();
        {
            let cache = self.robots.lock().expect("the robots cache is never poisoned");
            if let Some(c) = cache.get(&origin).filter(|c| c.until > now) {
                return c.rules.clone();
            }
        }
        let fetched = self.fetch_robots(&origin).await;
        let ttl = match &fetched {
            Ok(_) => self.config.robots_ttl,
            Err(_) => ROBOTS_FAILURE_TTL.min(self.config.robots_ttl),
        };
        let rules = fetched.map(Arc::new);
        let mut cache = self.robots.lock().expect("the robots cache is never poisoned");
        if cache.len() >= PRUNE_AT {
            let now = Instant::now();
            cache.retain(|_, c| c.until > now);
        }
        cache.insert(origin, Cached { until: Instant::now() + ttl, rules: rules.clone() });
        rules
    }

    /// Reads `{origin}/robots.txt`: 2xx is parsed, 4xx other than 429 allows everything (no file),
    /// anything else means we cannot know what the site allows, so we do not fetch the page.
    ///
    /// A redirect to another host is followed under the page host's turn, without taking that
    /// host's: robots.txt moves are one-off (to `https` or `www.`), and waiting for a second turn
    /// while holding one could deadlock.
    async fn fetch_robots(&self, origin: &str) -> Result<Rules, String> {
        let could_not = |why: &str| format!("robots.txt could not be read ({why})");
        let Ok(mut url) = Url::parse(&format!("{origin}/robots.txt")) else {
            return Err(could_not("invalid URL"));
        };
        let deadline = Instant::now() + self.config.timeout;
        for hop in 0..=ROBOTS_REDIRECTS {
            if let Err(e) = check_url_host(&self.guard, &url).await {
                return Err(refusal(&url, &e).to_owned());
            }
            let request = self.client.get(url.clone()).header(USER_AGENT, self.user_agent.clone()).send();
            let mut res = match tokio::time::timeout_at(deadline, request).await {
                Err(_) => return Err(could_not(&self.timed_out())),
                Ok(Err(e)) => {
                    return Err(match guard_refusal(&e) {
                        Some(message) => message.to_owned(),
                        None => could_not(&self.failure(&url, &e)),
                    })
                }
                Ok(Ok(res)) => res,
            };
            if let Some(next) = redirect_target(&res, &url) {
                match next {
                    // Too many redirects or a bad one: as if there were no robots.txt (Google's rule).
                    Ok(next) if hop < ROBOTS_REDIRECTS => url = next,
                    _ => return Ok(Rules::allow_all()),
                }
                continue;
            }
            let status = res.status().as_u16();
            return match status {
                200..=299 => match tokio::time::timeout_at(deadline, read(&mut res, ROBOTS_MAX_BYTES)).await {
                    Err(_) => Err(could_not(&self.timed_out())),
                    Ok(Err(e)) => Err(could_not(&self.failure(&url, &e))),
                    Ok(Ok((body, _))) => Ok(Rules::parse(&self.agent, &body)),
                },
                429 => Err(could_not(&status_text(&res))),
                400..=499 => Ok(Rules::allow_all()),
                _ => Err(could_not(&status_text(&res))),
            };
        }
        Ok(Rules::allow_all())
    }

    fn timed_out(&self) -> String {
        format!("timed out after {} s", self.config.timeout.as_secs_f64())
    }

    /// A transport failure in words a tenant may read: never an address, and a guard refusal
    /// reads as the guard says it should.
    fn failure(&self, url: &Url, e: &reqwest::Error) -> String {
        tracing::info!(url = %url, error = %error_chain(e), "link check request failed");
        if let Some(message) = guard_refusal(e) {
            return message.to_owned();
        }
        if e.is_timeout() {
            self.timed_out()
        } else if e.is_connect() {
            "could not connect to the server".to_owned()
        } else if e.is_body() || e.is_decode() {
            "the page could not be read".to_owned()
        } else {
            "the request failed".to_owned()
        }
    }
}

/// The guard's refusal of an IP literal, logged in full, told as the guard says it may be.
fn refusal(url: &Url, e: &GuardError) -> &'static str {
    tracing::warn!(url = %url, error = %e, "link check refused by the guard");
    e.tenant_message()
}

/// The guard's refusal inside a reqwest error (the resolver's error, wrapped by hyper and reqwest).
fn guard_refusal(e: &reqwest::Error) -> Option<&'static str> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(g) = err.downcast_ref::<GuardError>() {
            return Some(g.tenant_message());
        }
        source = err.source();
    }
    None
}

/// The error and its causes, for the operator log.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        out.push_str(": ");
        out.push_str(&err.to_string());
        source = err.source();
    }
    out
}

/// Where a redirect response points: `None` when it is not one (a 3xx without `Location` is just
/// a status), `Err` with a detail when its `Location` is unusable.
fn redirect_target(res: &reqwest::Response, current: &Url) -> Option<Result<Url, String>> {
    if !matches!(res.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = res.headers().get(LOCATION)?;
    let next = std::str::from_utf8(location.as_bytes())
        .ok()
        .and_then(|l| current.join(l.trim()).ok())
        .ok_or_else(|| "the redirect's Location is not a valid URL".to_owned())
        .and_then(|mut next| {
            if !matches!(next.scheme(), "http" | "https") {
                return Err("redirected to a URL that is not http or https".to_owned());
            }
            next.set_fragment(None);
            Ok(next)
        });
    Some(next)
}

/// `HTTP 503 Service Unavailable`.
fn status_text(res: &reqwest::Response) -> String {
    let s = res.status();
    match s.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", s.as_u16()),
        None => format!("HTTP {}", s.as_u16()),
    }
}

/// Reads up to `max` body bytes; `true` when there was more.
async fn read(res: &mut reqwest::Response, max: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// The body as text: UTF-8, or Latin-1 / windows-1252 when the header says so (the only other
/// charsets simple enough to decode without a table crate). Anything else is read as UTF-8,
/// lossily: hrefs are ASCII either way, only a non-ASCII anchor may read wrong.
fn decode(body: &[u8], content_type: Option<&str>) -> String {
    let charset = content_type
        .and_then(|ct| {
            ct.split(';').skip(1).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_ascii_lowercase())
            })
        })
        .unwrap_or_default();
    match charset.as_str() {
        "iso-8859-1" | "latin1" | "latin-1" | "l1" | "us-ascii" | "ascii" | "windows-1252" | "cp1252" => {
            body.iter().map(|&b| windows_1252(b)).collect()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

/// One windows-1252 byte (what browsers use for Latin-1 labels too).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// `5 MB`, `64 KB` or `1000 bytes`.
fn size(n: usize) -> String {
    const MB: usize = 1024 * 1024;
    if n >= MB && n.is_multiple_of(MB) {
        format!("{} MB", n / MB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// `host:port`, what per-host turns are counted by.
fn host_key(u: &Url) -> String {
    format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0))
}

/// `scheme://host:port`, what robots.txt applies to.
fn origin(u: &Url) -> String {
    format!("{}://{}", u.scheme(), host_key(u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TARGET: &str = "https://shop.example.com/widgets";

    /// A test site: robots.txt as configured, pages by path, hits counted by path.
    #[derive(Default)]
    struct Site {
        robots: Option<(u16, &'static str)>,
        hits: Mutex<HashMap<String, usize>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        /// Where `/away` redirects (another server).
        away: Mutex<Option<String>>,
    }

    impl Site {
        fn hits(&self, path: &str) -> usize {
            self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
        }
        fn total(&self) -> usize {
            self.hits.lock().unwrap().values().sum()
        }
    }

    fn html(body: &str) -> String {
        format!("<!doctype html><html><head><title>post</title></head><body>{body}</body></html>")
    }

    fn link(rel: &str, anchor: &str) -> String {
        format!(r#"<p>See <a href="{TARGET}"{rel}>{anchor}</a>.</p>"#)
    }

    fn page(body: String) -> Response {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html(&body)).into_response()
    }

    fn redirect(to: &str) -> Response {
        (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
    }

    async fn handle(site: Arc<Site>, uri: Uri) -> Response {
        let path = uri.path().to_owned();
        *site.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let good = || link("", "Best Widgets");
        match path.as_str() {
            "/robots.txt" => match site.robots {
                Some((status, body)) => (StatusCode::from_u16(status).unwrap(), body).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
            "/live" => page(good()),
            "/nofollow" => page(link(r#" rel="nofollow""#, "Best Widgets")),
            "/anchor" => page(link("", "click here")),
            "/nolink" => page("<p>nothing</p>".into()),
            "/gone404" => (StatusCode::NOT_FOUND, "no").into_response(),
            "/gone410" => (StatusCode::GONE, "gone").into_response(),
            "/noindex" => page(format!(r#"<meta name="robots" content="noindex">{}"#, good())),
            "/xrobots" => {
                let mut res = page(good());
                res.headers_mut().append("x-robots-tag", "otherbot: nofollow".parse().unwrap());
                res.headers_mut().append("x-robots-tag", "noindex".parse().unwrap());
                res
            }
            "/canonical" => page(format!(r#"<link rel="canonical" href="/elsewhere">{}"#, good())),
            "/500" => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
            "/429" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
            "/403" => (StatusCode::FORBIDDEN, "no").into_response(),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                page(good())
            }
            "/big" => page(format!("<p>{}</p>{}", "x".repeat(50_000), good())),
            "/pdf" => ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.4").into_response(),
            "/busy" => {
                let now = site.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                site.max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                site.in_flight.fetch_sub(1, Ordering::SeqCst);
                page(good())
            }
            "/away" => redirect(site.away.lock().unwrap().as_deref().unwrap_or("/live")),
            _ => match path.strip_prefix("/r/").and_then(|n| n.parse::<u32>().ok()) {
                Some(0) => page("<p>moved, no link</p>".into()),
                Some(n) => redirect(&format!("/r/{}", n - 1)),
                None => StatusCode::NOT_FOUND.into_response(),
            },
        }
    }

    async fn serve_on(ip: &str, site: Arc<Site>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(move |uri: Uri, _: HeaderMap| handle(site.clone(), uri));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    async fn serve(robots: Option<(u16, &'static str)>) -> (Arc<Site>, SocketAddr) {
        let site = Arc::new(Site { robots, ..Site::default() });
        let addr = serve_on("127.0.0.1", site.clone()).await;
        (site, addr)
    }

    fn expected() -> Expected {
        Expected { target: Url::parse(TARGET).unwrap(), anchor: Some("best widgets".into()), rel: vec![] }
    }

    fn checker(config: Config) -> Checker {
        Checker::new(Guard::allowing_private(), config)
    }

    async fn check_path(robots: Option<(u16, &'static str)>, path: &str) -> (Outcome, Arc<Site>, SocketAddr) {
        let (site, addr) = serve(robots).await;
        let out = checker(Config::default()).check(&format!("http://{addr}{path}"), &expected()).await;
        (out, site, addr)
    }

    async fn result(path: &str) -> Outcome {
        check_path(None, path).await.0
    }

    #[tokio::test]
    async fn live() {
        let (out, site, addr) = check_path(None, "/live").await;
        assert_eq!(out.result, CheckResult::Live, "{out:?}");
        assert_eq!(out.http_status, Some(200));
        assert_eq!(out.final_url.as_deref(), Some(format!("http://{addr}/live").as_str()));
        assert!(out.redirects.is_empty());
        assert_eq!(out.link.as_ref().unwrap().anchor, "Best Widgets");
        assert_eq!(out.detail, None);
        assert_eq!(site.hits("/robots.txt"), 1);
        assert_eq!(site.hits("/live"), 1);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["result"], "live");
        assert_eq!(json["httpStatus"], 200);
        assert!(json.get("durationMs").is_some() && json.get("finalUrl").is_some());
    }

    #[tokio::test]
    async fn robots_txt_is_cached_per_origin() {
        let (site, addr) = serve(Some((200, "User-agent: *\nDisallow: /private\n"))).await;
        let c = checker(Config::default());
        for _ in 0..3 {
            assert_eq!(c.check(&format!("http://{addr}/live"), &expected()).await.result, CheckResult::Live);
        }
        assert_eq!(site.hits("/robots.txt"), 1);
        assert_eq!(site.hits("/live"), 3);
    }

    #[tokio::test]
    async fn nofollow_and_anchor() {
        let out = result("/nofollow").await;
        assert_eq!(out.result, CheckResult::RelChanged);
        assert_eq!(out.detail.as_deref(), Some("rel is nofollow"));
        let out = result("/anchor").await;
        assert_eq!(out.result, CheckResult::AnchorChanged);
        assert_eq!(out.detail.as_deref(), Some("anchor is 'click here', expected 'best widgets'"));
    }

    #[tokio::test]
    async fn missing() {
        let out = result("/nolink").await;
        assert_eq!(out.result, CheckResult::Missing);
    }

    #[tokio::test]
    async fn gone() {
        for (path, status) in [("/gone404", 404), ("/gone410", 410)] {
            let out = result(path).await;
            assert_eq!(out.result, CheckResult::PageGone, "{path}");
            assert_eq!(out.http_status, Some(status));
        }
    }

    #[tokio::test]
    async fn redirect_chain_to_a_page_without_the_link() {
        let (out, _, addr) = check_path(None, "/r/3").await;
        assert_eq!(out.result, CheckResult::Redirected, "{out:?}");
        let hops: Vec<String> = (0..3).rev().map(|n| format!("http://{addr}/r/{n}")).collect();
        assert_eq!(out.redirects, hops);
        assert_eq!(out.final_url.as_deref(), Some(hops[2].as_str()));
        assert_eq!(out.http_status, Some(200));
    }

    #[tokio::test]
    async fn too_many_redirects() {
        let (out, site, _) = check_path(None, "/r/6").await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(out.detail.as_deref(), Some("too many redirects (more than 5)"));
        assert_eq!(out.redirects.len(), 5);
        assert_eq!(site.hits("/r/0"), 0);
        // Five are fine.
        assert_eq!(result("/r/5").await.result, CheckResult::Redirected);
    }

    #[tokio::test]
    async fn redirect_to_another_host() {
        let (a, a_addr) = serve(None).await;
        let b = Arc::new(Site::default());
        let b_addr = serve_on("127.0.0.2", b.clone()).await;
        *a.away.lock().unwrap() = Some(format!("http://{b_addr}/live"));
        let out = checker(Config::default()).check(&format!("http://{a_addr}/away"), &expected()).await;
        assert_eq!(out.result, CheckResult::Live, "{out:?}");
        assert_eq!(out.final_url, Some(format!("http://{b_addr}/live")));
        // The other origin's robots.txt was read too.
        assert_eq!((a.hits("/robots.txt"), b.hits("/robots.txt")), (1, 1));
    }

    #[tokio::test]
    async fn redirects_across_hosts_do_not_deadlock() {
        let a = Arc::new(Site::default());
        let b = Arc::new(Site::default());
        let a_addr = serve_on("127.0.0.1", a.clone()).await;
        let b_addr = serve_on("127.0.0.2", b.clone()).await;
        *a.away.lock().unwrap() = Some(format!("http://{b_addr}/busy"));
        *b.away.lock().unwrap() = Some(format!("http://{a_addr}/busy"));
        let c = checker(Config { concurrency: 1, ..Config::default() });
        let ex = expected();
        let checks: Vec<_> = (0..4)
            .map(|i| {
                let url = if i % 2 == 0 { format!("http://{a_addr}/away") } else { format!("http://{b_addr}/away") };
                let (c, ex) = (c.clone(), ex.clone());
                async move { c.check(&url, &ex).await }
            })
            .collect();
        let outs = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(checks)).await.unwrap();
        assert!(outs.iter().all(|o| o.result == CheckResult::Live), "{outs:?}");
    }

    #[tokio::test]
    async fn noindex_meta_and_header() {
        let out = result("/noindex").await;
        assert_eq!(out.result, CheckResult::Noindex);
        assert_eq!(out.detail.as_deref(), Some("meta robots noindex"));
        let out = result("/xrobots").await;
        assert_eq!(out.result, CheckResult::Noindex);
        assert_eq!(out.detail.as_deref(), Some("X-Robots-Tag noindex"));
    }

    #[tokio::test]
    async fn canonical_elsewhere() {
        let (out, _, addr) = check_path(None, "/canonical").await;
        assert_eq!(out.result, CheckResult::Canonicalized);
        assert_eq!(out.detail, Some(format!("canonical is http://{addr}/elsewhere")));
    }

    #[tokio::test]
    async fn robots_txt_disallowing_us() {
        let robots = "User-agent: *\nAllow: /\n\nUser-agent: linkcrm-linkcheck\nDisallow: /\n";
        let (out, site, _) = check_path(Some((200, robots)), "/live").await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(out.detail.as_deref(), Some("robots.txt disallows linkcrm-linkcheck"));
        assert_eq!(site.hits("/robots.txt"), 1);
        assert_eq!(site.hits("/live"), 0);
        assert_eq!(out.http_status, None);
    }

    #[tokio::test]
    async fn robots_txt_disallowing_googlebot_only() {
        let robots = "User-agent: Googlebot\nDisallow: /\n";
        let (out, site, _) = check_path(Some((200, robots)), "/live").await;
        assert_eq!(out.result, CheckResult::Noindex, "{out:?}");
        assert_eq!(out.detail.as_deref(), Some("robots.txt disallows Googlebot"));
        assert!(out.link.is_some());
        assert_eq!(site.hits("/live"), 1);
    }

    #[tokio::test]
    async fn robots_txt_errors() {
        let (out, site, _) = check_path(Some((500, "oops")), "/live").await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(out.detail.as_deref(), Some("robots.txt could not be read (HTTP 500 Internal Server Error)"));
        assert_eq!(site.hits("/live"), 0);
        let (out, _, _) = check_path(Some((429, "slow down")), "/live").await;
        assert_eq!(out.result, CheckResult::Unreachable);
        // Any other 4xx: no robots.txt, everything allowed.
        let (out, _, _) = check_path(Some((403, "no")), "/live").await;
        assert_eq!(out.result, CheckResult::Live);
        let (out, _, _) = check_path(Some((410, "")), "/live").await;
        assert_eq!(out.result, CheckResult::Live);
    }

    #[tokio::test]
    async fn error_statuses_are_unreachable() {
        for (path, status) in [("/500", 500), ("/429", 429), ("/403", 403)] {
            let out = result(path).await;
            assert_eq!(out.result, CheckResult::Unreachable, "{path}");
            assert_eq!(out.http_status, Some(status));
            assert!(out.detail.as_deref().unwrap().starts_with(&format!("HTTP {status} ")), "{out:?}");
        }
    }

    #[tokio::test]
    async fn slow_page_times_out() {
        let (_, addr) = serve(None).await;
        let c = checker(Config { timeout: Duration::from_secs(1), ..Config::default() });
        let started = std::time::Instant::now();
        let out = c.check(&format!("http://{addr}/slow"), &expected()).await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(out.detail.as_deref(), Some("timed out after 1 s"));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn body_cut_at_max_bytes() {
        let (_, addr) = serve(None).await;
        let c = checker(Config { max_bytes: 10 * 1024, ..Config::default() });
        let out = c.check(&format!("http://{addr}/big"), &expected()).await;
        assert_eq!(out.result, CheckResult::Missing);
        assert!(out.detail.as_deref().unwrap().ends_with("; truncated at 10 KB"), "{out:?}");
        // Within the limit the same page is read whole.
        let out = checker(Config::default()).check(&format!("http://{addr}/big"), &expected()).await;
        assert_eq!(out.result, CheckResult::Live);
    }

    #[tokio::test]
    async fn not_html() {
        let out = result("/pdf").await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(out.detail.as_deref(), Some("not an HTML page (application/pdf)"));
    }

    #[tokio::test]
    async fn bad_urls() {
        let c = checker(Config::default());
        for url in ["ftp://example.com/x", "not a url", "file:///etc/passwd", "mailto:a@example.com"] {
            let out = c.check(url, &expected()).await;
            assert_eq!(out.result, CheckResult::Unreachable, "{url}");
            assert!(out.detail.is_some());
        }
    }

    #[tokio::test]
    async fn strict_guard_refuses_loopback() {
        let (site, addr) = serve(None).await;
        let c = Checker::new(Guard::strict(), Config::default());
        let out = c.check(&format!("http://{addr}/live"), &expected()).await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(
            out.detail.as_deref(),
            Some("this address is not allowed: the server must have a public internet address")
        );
        assert_eq!(site.total(), 0);
        // A name that resolves to loopback is refused by the resolver, in words that do not say so.
        let out = c.check(&format!("http://localhost:{}/live", addr.port()), &expected()).await;
        assert_eq!(out.result, CheckResult::Unreachable);
        assert_eq!(out.detail.as_deref(), Some("could not connect to the server"));
        assert_eq!(site.total(), 0);
    }

    #[tokio::test]
    async fn resolver_refusal_is_found_in_the_error() {
        let c = Checker::new(Guard::strict(), Config::default());
        let e = c.inner.client.get("http://localhost:9/").send().await.unwrap_err();
        assert_eq!(guard_refusal(&e), Some("could not connect to the server"));
        let e = reqwest::Client::new().get("http://127.0.0.1:9/").send().await.unwrap_err();
        assert_eq!(guard_refusal(&e), None);
    }

    #[tokio::test]
    async fn one_request_at_a_time_per_host_and_hosts_overlap() {
        let site = Arc::new(Site::default());
        let a = serve_on("127.0.0.1", site.clone()).await;
        let c = checker(Config::default());
        let ex = expected();
        let url = format!("http://{a}/busy");
        let outs = futures::future::join_all((0..5).map(|_| c.check(&url, &ex))).await;
        assert!(outs.iter().all(|o| o.result == CheckResult::Live), "{outs:?}");
        assert_eq!(site.max_in_flight.load(Ordering::SeqCst), 1);
        assert_eq!(site.hits("/robots.txt"), 1);

        // Two hosts at once: the same counters, both in flight together.
        let b = serve_on("127.0.0.2", site.clone()).await;
        site.max_in_flight.store(0, Ordering::SeqCst);
        let (ua, ub) = (format!("http://{a}/busy"), format!("http://{b}/busy"));
        let (oa, ob) = tokio::join!(c.check(&ua, &ex), c.check(&ub, &ex));
        assert_eq!((oa.result, ob.result), (CheckResult::Live, CheckResult::Live));
        assert_eq!(site.max_in_flight.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn config_from_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
        };
        let d = env(&[]);
        assert!(d.user_agent.starts_with("linkcrm-linkcheck/"));
        assert!(d.user_agent.ends_with(" (+https://linkcrm.dev/linkcheck)"));
        assert_eq!(d.agent_token(), "linkcrm-linkcheck");
        assert_eq!((d.timeout, d.max_bytes, d.max_redirects), (Duration::from_secs(15), 5_242_880, 5));
        assert_eq!((d.concurrency, d.per_host, d.robots_ttl), (64, 1, Duration::from_secs(3600)));
        let c = env(&[
            (USER_AGENT_VAR, "AcmeCheck/2.0"),
            (TIMEOUT_VAR, "2.5"),
            (MAX_BYTES_VAR, "1000"),
            (CONCURRENCY_VAR, "8"),
            (PER_HOST_VAR, "2"),
        ]);
        assert_eq!(c.agent_token(), "AcmeCheck");
        assert_eq!((c.timeout, c.max_bytes, c.concurrency, c.per_host), (Duration::from_millis(2500), 1000, 8, 2));
        let bad =
            env(&[(TIMEOUT_VAR, "soon"), (MAX_BYTES_VAR, "0"), (CONCURRENCY_VAR, "-1"), (USER_AGENT_VAR, "a\nb")]);
        assert_eq!((bad.timeout, bad.max_bytes, bad.concurrency), (Duration::from_secs(15), 5_242_880, 64));
        assert_eq!(bad.user_agent, DEFAULT_USER_AGENT);
    }

    #[test]
    fn helpers() {
        assert_eq!(size(5 * 1024 * 1024), "5 MB");
        assert_eq!(size(10 * 1024), "10 KB");
        assert_eq!(size(1000), "1000 bytes");
        assert_eq!(decode("café".as_bytes(), Some("text/html; charset=UTF-8")), "café");
        assert_eq!(decode(b"caf\xe9 \x80", Some("text/html; charset=\"ISO-8859-1\"")), "café €");
        assert_eq!(decode(b"caf\xe9", None), "caf\u{fffd}");
        let u = Url::parse("https://Example.com/a?b").unwrap();
        assert_eq!((host_key(&u), origin(&u)), ("example.com:443".to_owned(), "https://example.com:443".to_owned()));
    }
}
