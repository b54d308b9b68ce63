//! The HTTP half of a delivery: one signed POST through the SSRF guard (vetted addresses only),
//! HTTPS only unless `LINKCRM_WEBHOOK_ALLOW_HTTP=true`, no redirects, a 15 s timeout, and at most
//! 4 KB of the answer read.

use crate::records::BODY_LIMIT;
use crate::signing;
use linkcrm_netguard::{http::GuardedResolver, Guard};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(15);
pub const ALLOW_HTTP_ENV: &str = "LINKCRM_WEBHOOK_ALLOW_HTTP";

/// Whether plain `http://` endpoints are allowed (local use and tests).
pub fn allow_http() -> bool {
    matches!(std::env::var(ALLOW_HTTP_ENV).ok().as_deref().map(str::trim), Some("true" | "1" | "yes"))
}

/// What a receiver did with one POST.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub duration: Duration,
    /// Why there was no answer (or why it could not be sent).
    pub error: Option<String>,
    /// `Retry-After` in seconds, on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
    /// 410 Gone: the receiver asks us to stop.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// The sender, with one connection pool for every endpoint.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
    allow_http: bool,
}

/// One message to send.
pub struct Message<'a> {
    pub url: &'a str,
    /// The `webhook-id` (the event id).
    pub msg_id: &'a str,
    pub event_type: &'a str,
    pub attempt: u32,
    pub body: &'a str,
    /// The secrets that sign it (two during a rotation).
    pub secrets: &'a [&'a str],
}

impl Sender {
    pub fn new(guard: Guard, allow_http: bool) -> Sender {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(guard))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("linkcrm-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client builds with static settings");
        Sender { client, guard, allow_http }
    }

    /// The guard from `LINKCRM_ALLOW_PRIVATE_TARGETS`, HTTP from `LINKCRM_WEBHOOK_ALLOW_HTTP`.
    pub fn from_env() -> Sender {
        Sender::new(Guard::from_env(), allow_http())
    }

    /// Why `url` cannot be an endpoint, if it cannot (shown to the tenant).
    pub fn url_problem(&self, url: &str) -> Option<String> {
        url_problem(url, self.allow_http)
    }

    pub async fn send(&self, m: &Message<'_>) -> Outcome {
        let started = Instant::now();
        let fail = |error: String| Outcome {
            status: None,
            body: None,
            duration: started.elapsed(),
            error: Some(error),
            retry_after: None,
        };
        if let Some(p) = self.url_problem(m.url) {
            return fail(p);
        }
        let Ok(url) = reqwest::Url::parse(m.url) else { return fail("the URL is not valid".into()) };
        if let Err(e) = linkcrm_netguard::http::check_url_host(&self.guard, &url).await {
            tracing::warn!(url = %m.url, error = %e, "webhook endpoint refused by the guard");
            return fail(e.tenant_message().to_owned());
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::header(m.secrets, m.msg_id, timestamp, m.body.as_bytes());
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", m.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("linkcrm-event-type", m.event_type)
            .header("linkcrm-delivery-attempt", m.attempt.to_string())
            .body(m.body.to_owned())
            .send()
            .await;
        let mut res = match sent {
            Ok(r) => r,
            Err(e) => return fail(describe(&e)),
        };
        let status = res.status().as_u16();
        let retry_after = (status == 429 || status == 503)
            .then(|| res.headers().get("retry-after")?.to_str().ok()?.trim().parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs);
        let mut body = Vec::new();
        let mut read_error = None;
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    let room = BODY_LIMIT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= BODY_LIMIT {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        let mut text = String::from_utf8_lossy(&body).into_owned();
        // A cut in the middle of a character leaves a replacement mark; keep it, it is honest.
        text.truncate(BODY_LIMIT);
        Outcome {
            status: Some(status),
            body: (!text.is_empty()).then_some(text),
            duration: started.elapsed(),
            // The status arrived: a body cut short by a timeout does not change the outcome.
            error: read_error.filter(|_| !(200..300).contains(&status)),
            retry_after,
        }
    }
}

/// Why `url` cannot be an endpoint, if it cannot.
pub fn url_problem(url: &str, allow_http: bool) -> Option<String> {
    let Ok(u) = reqwest::Url::parse(url) else { return Some("is not a valid URL".into()) };
    match u.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Some("must use https".into()),
        _ => return Some("must be an https URL".into()),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Some("has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Some("must not carry credentials".into());
    }
    if u.fragment().is_some() {
        return Some("must not have a fragment".into());
    }
    None
}

/// A transport failure in words a tenant may read (never an internal address).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        // The guard's refusal reads the same as any other failed connection (see netguard).
        "could not connect to the endpoint".into()
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url_problem("https://hooks.example.com/x", false), None);
        assert_eq!(url_problem("http://hooks.example.com/x", false).as_deref(), Some("must use https"));
        assert_eq!(url_problem("http://127.0.0.1:9/x", true), None);
        assert!(url_problem("ftp://x.com", true).is_some());
        assert!(url_problem("https://u:p@x.com", true).is_some());
        assert!(url_problem("not a url", true).is_some());
    }
}
