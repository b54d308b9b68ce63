//! The `Writer` adapter: an OpenAI-compatible chat completions client that drafts outreach emails.
//!
//! What we rely on, and where it is written down:
//! - `POST {base}/chat/completions` with `Authorization: Bearer <key>` and a body `{model, messages: [{role,
//!   content}], response_format: {type: "json_object"}, temperature}`. The answer's
//!   `choices[0].message.content` is a string holding the JSON; `finish_reason` is `stop`, `length` (cut off,
//!   so the JSON is incomplete), `content_filter`, ...; `message.refusal` is a string when the model declines.
//!   https://platform.openai.com/docs/api-reference/chat/create
//! - JSON mode answers 400 unless a message mentions JSON, so [`LlmClient::complete_json`] makes sure one does.
//!   https://platform.openai.com/docs/guides/structured-outputs#json-mode
//! - Errors are `{"error": {"message", "type", "param", "code"}}`: 401 bad key, 403 key or region without
//!   access, 429 either a rate limit (`rate_limit_exceeded`; wait and retry) or no money left (`type` or
//!   `code` `insufficient_quota`, or one of the billing codes below; never retried), 500/503 their side.
//!   https://platform.openai.com/docs/guides/error-codes
//! - Retry hints: `retry-after-ms`, then `retry-after` in seconds, read in that order as OpenAI's own SDKs do
//!   (an HTTP-date `retry-after` is ignored and our backoff applies).
//!
//! `linkcrm_testkit::FakeLlm` speaks this API, errors included, for the tests.
//!
//! The helpers ([`LlmClient::write_email`] and the others) ask for a JSON object with named fields and check
//! what comes back: non-empty strings, a one-line subject of at most 998 characters (the RFC 5322 line limit),
//! and no placeholder such as `{firstName}` left for a partner to read. A model that answers otherwise gets
//! [`ProviderError::BadResponse`], never a half-usable draft.

use crate::{ProviderError, RetryPolicy};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const CHAT_COMPLETIONS_PATH: &str = "/chat/completions";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Some variety between drafts, without drifting from the facts.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
/// RFC 5322's line limit, the most a subject may be.
pub const MAX_SUBJECT_CHARS: usize = 998;
/// Most subject suggestions one call returns.
pub const MAX_SUGGESTIONS: usize = 10;

pub const ENV_BASE_URL: &str = "LINKCRM_LLM_BASE_URL";
pub const ENV_API_KEY: &str = "LINKCRM_LLM_API_KEY";
pub const ENV_MODEL: &str = "LINKCRM_LLM_MODEL";

/// 429 codes that mean "no money left" rather than "too fast" (`type` is then `insufficient_quota` too).
const QUOTA_CODES: [&str; 5] = [
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
];

const WRITE_EMAIL_PROMPT: &str = "You write cold outreach emails for link building on behalf of the sender. \
Write a short email (under 150 words) with one clear, polite ask and why it helps the recipient's readers. \
Use only the facts given; never invent names, numbers, prices or URLs. \
Never leave placeholders such as {firstName}, {{name}} or [Your Name]: fill them from the facts or write around them. \
Without a recipient name, use a neutral greeting; sign with the sender's name when given. \
Answer with a JSON object with exactly these string fields: \
\"subject\" (one line, under 80 characters) and \"body\" (plain text, no markdown).";

const PERSONALIZE_PROMPT: &str = "You personalize an outreach email for one recipient. \
Keep the sender's offer, facts, sign-off and length; address the recipient by name and add one specific, \
truthful touch about their site or topic. Never invent facts. \
Replace every placeholder such as {firstName} or [Name] with the recipient's details or write around it. \
Answer with a JSON object with exactly these string fields: \
\"subject\" (one line, under 80 characters) and \"body\" (plain text, no markdown).";

const SUBJECTS_PROMPT: &str = "You suggest subject lines for a link-building outreach email. \
Each is one line under 80 characters, specific to the topic, in the given tone, \
with no clickbait, no ALL CAPS, no emoji and no placeholders. \
Answer with a JSON object with exactly one field: \"suggestions\", an array of distinct strings.";

const FOLLOW_UP_PROMPT: &str = "You write a follow-up to an outreach email that got no reply. \
Keep it under 80 words and polite, give one new reason to reply, do not repeat the first email or guilt the reader. \
Keep its facts and sign-off; never invent facts or leave placeholders such as {firstName}. \
Answer with a JSON object with exactly these string fields: \
\"subject\" (one line: the original subject with \"Re: \" in front unless it has it) and \"body\" (plain text, no markdown).";

/// How an email should sound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    #[default]
    Professional,
    Friendly,
    Casual,
    Formal,
}

impl Tone {
    pub const ALL: [Tone; 4] = [Tone::Professional, Tone::Friendly, Tone::Casual, Tone::Formal];

    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Professional => "professional",
            Tone::Friendly => "friendly",
            Tone::Casual => "casual",
            Tone::Formal => "formal",
        }
    }

    /// What the tone means, for the prompt.
    fn guidance(self) -> &'static str {
        match self {
            Tone::Professional => "professional: clear, courteous, to the point",
            Tone::Friendly => "friendly: warm and personal, first names are fine",
            Tone::Casual => "casual: relaxed, short sentences, contractions",
            Tone::Formal => "formal: polite forms, no contractions, no slang",
        }
    }
}

impl std::fmt::Display for Tone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tone::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown tone {s:?}; known: professional, friendly, casual, formal"))
    }
}

/// What to write about and to whom. Empty strings count as not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailBrief {
    pub topic: String,
    pub tone: Tone,
    /// The hook or reason for writing (a broken link, a stat they cite, ...).
    pub angle: Option<String>,
    pub recipient_name: Option<String>,
    pub recipient_site: Option<String>,
    /// Their post we would like a link in.
    pub target_post: Option<String>,
    /// Our page we would like linked.
    pub our_content: Option<String>,
    pub sender_name: Option<String>,
    /// A subject and body to start from (placeholders in it are filled or written around).
    pub template: Option<(String, String)>,
}

/// A drafted email, checked: one-line subject, non-empty body, no placeholders left.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WrittenEmail {
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    model: String,
    timeout: Duration,
    retry: RetryPolicy,
    temperature: Option<f32>,
}

impl std::fmt::Debug for LlmClient {
    // By hand so the key never lands in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl LlmClient {
    /// `base_url` includes the version segment (production: [`DEFAULT_BASE_URL`]); tests pass the fake's.
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        model: impl Into<String>,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ProviderError::Unavailable(format!("cannot build HTTP client: {e}")))?;
        Ok(LlmClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: api_key.into(),
            model: model.into(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            temperature: Some(DEFAULT_TEMPERATURE),
        })
    }

    /// From `LINKCRM_LLM_BASE_URL` (default [`DEFAULT_BASE_URL`]), `LINKCRM_LLM_API_KEY` and
    /// `LINKCRM_LLM_MODEL` (default [`DEFAULT_MODEL`]). `Ok(None)` when no key is set: writing is off.
    pub fn from_env() -> Result<Option<Self>, ProviderError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`LlmClient::from_env`] over any source of variables (tests, a config file).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ProviderError> {
        let var = |name| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(api_key) = var(ENV_API_KEY) else {
            return Ok(None);
        };
        let base_url = var(ENV_BASE_URL).unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let model = var(ENV_MODEL).unwrap_or_else(|| DEFAULT_MODEL.to_string());
        LlmClient::new(base_url, api_key, model).map(Some)
    }

    /// Longest wait for one HTTP exchange, answer included (each attempt has its own). Default 30 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// `None` leaves `temperature` out of the request (some reasoning models refuse any value but theirs).
    pub fn with_temperature(mut self, temperature: Option<f32>) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sends through `http` instead of a default client, e.g. one whose DNS resolver refuses private
    /// addresses when the base URL comes from a tenant.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether the key works: the OpenAI-compatible `GET {base}/models`, which costs nothing
    /// (see [`crate::probe`]).
    pub async fn probe(&self) -> Result<(), ProviderError> {
        let req = self.http.get(format!("{}/models", self.base_url)).bearer_auth(&self.api_key);
        crate::probe::get_json(req, "the LLM provider", classify).await.map(|_| ())
    }

    /// One chat completion in JSON mode: the assistant's answer parsed as a JSON object.
    ///
    /// Retries rate limits (honouring `retry-after-ms`/`retry-after`), 5xx, timeouts and refused
    /// connections per the [`RetryPolicy`]. Quota (429 `insufficient_quota`), 401/403 and 400 are final.
    /// An answer that is not a JSON object, was cut off (`finish_reason: "length"`), was filtered, or is a
    /// refusal is [`ProviderError::BadResponse`]. If neither message mentions JSON, the system message gets
    /// a sentence asking for it, since JSON mode requires one.
    pub async fn complete_json(&self, system: &str, user: &str) -> Result<Value, ProviderError> {
        let mentions_json = |s: &str| s.to_ascii_lowercase().contains("json");
        let system = if mentions_json(system) || mentions_json(user) {
            system.to_string()
        } else {
            format!("{system}\n\nAnswer with a JSON object.")
        };
        let mut body = json!({
            "model": self.model,
            "messages": [
                { "role": "system", "content": system },
                { "role": "user", "content": user },
            ],
            "response_format": { "type": "json_object" },
        });
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        let text = self.post(&body).await?;
        parse_completion(&text)
    }

    /// A first email from a brief (optionally from a template).
    pub async fn write_email(&self, brief: &EmailBrief) -> Result<WrittenEmail, ProviderError> {
        let mut facts = Facts::default()
            .line("Tone", Some(brief.tone.guidance()))
            .line("Topic", Some(&brief.topic))
            .line("Angle", brief.angle.as_deref())
            .line("Recipient name", brief.recipient_name.as_deref())
            .line("Recipient site", brief.recipient_site.as_deref())
            .line("Their post we would like a link in", brief.target_post.as_deref())
            .line("Our content to link to", brief.our_content.as_deref())
            .line("Sender name", brief.sender_name.as_deref());
        if let Some((subject, body)) = &brief.template {
            facts = facts
                .line("Template subject", Some(subject))
                .block("Template body (keep its intent; fill or write around its placeholders)", body);
        }
        let answer = self.complete_json(WRITE_EMAIL_PROMPT, &facts.0).await?;
        written_email(&answer)
    }

    /// `base_email` rewritten for one lead. `content_topic` is what their site writes about, when known.
    pub async fn personalize(
        &self,
        base_email: &str,
        lead_name: Option<&str>,
        lead_website: Option<&str>,
        content_topic: Option<&str>,
    ) -> Result<WrittenEmail, ProviderError> {
        let facts = Facts::default()
            .line("Recipient name", lead_name)
            .line("Recipient website", lead_website)
            .line("Their content topic", content_topic)
            .block("Email to personalize", base_email);
        let answer = self.complete_json(PERSONALIZE_PROMPT, &facts.0).await?;
        written_email(&answer)
    }

    /// Up to `n` distinct subject lines (`n` is held to 1..=10). Suggestions that are empty, span lines,
    /// are too long, hold a placeholder or repeat another (ignoring case and spacing) are dropped; none left
    /// is [`ProviderError::BadResponse`].
    pub async fn subject_suggestions(&self, topic: &str, tone: Tone, n: usize) -> Result<Vec<String>, ProviderError> {
        let n = n.clamp(1, MAX_SUGGESTIONS);
        let facts = Facts::default()
            .line("Tone", Some(tone.guidance()))
            .line("Topic", Some(topic))
            .line("Number of suggestions", Some(&n.to_string()));
        let answer = self.complete_json(SUBJECTS_PROMPT, &facts.0).await?;
        let items = answer
            .get("suggestions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("the model's answer has no \"suggestions\" array"))?;
        let mut seen = HashSet::new();
        let suggestions: Vec<String> = items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| check_subject(s).is_ok())
            .filter(|s| seen.insert(s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()))
            .take(n)
            .map(String::from)
            .collect();
        if suggestions.is_empty() {
            return Err(bad(format!("none of the model's {} subject suggestions is usable", items.len())));
        }
        Ok(suggestions)
    }

    /// A follow-up to an email that got no reply.
    pub async fn follow_up(
        &self,
        original_subject: &str,
        original_body: &str,
        tone: Tone,
    ) -> Result<WrittenEmail, ProviderError> {
        let facts = Facts::default()
            .line("Tone", Some(tone.guidance()))
            .line("Original subject", Some(original_subject))
            .block("Original email", original_body);
        let answer = self.complete_json(FOLLOW_UP_PROMPT, &facts.0).await?;
        written_email(&answer)
    }

    /// One POST with bounded retries; the 2xx body as text.
    async fn post(&self, body: &Value) -> Result<String, ProviderError> {
        let url = format!("{}{CHAT_COMPLETIONS_PATH}", self.base_url);
        let mut attempt = 1;
        loop {
            let (err, retryable) = match self.send_once(&url, body).await {
                Ok(text) => return Ok(text),
                Err(failure) => failure,
            };
            let retry_after = match &err {
                ProviderError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            match self.retry.delay(attempt, retry_after) {
                Some(delay) if retryable && attempt < self.retry.max_attempts => {
                    tracing::warn!(attempt, ?delay, error = %err, "LLM call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// One HTTP exchange. The flag says whether trying again soon may help.
    async fn send_once(&self, url: &str, body: &Value) -> Result<String, (ProviderError, bool)> {
        let sent = self.http.post(url).bearer_auth(&self.api_key).json(body).timeout(self.timeout).send().await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return Err(transport_error(e, self.timeout)),
        };
        let status = resp.status();
        let retry_after = retry_hint(resp.headers());
        let text = resp.text().await.map_err(|e| transport_error(e, self.timeout))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(classify(status, retry_after, &text))
    }
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::BadResponse(message.into())
}

/// Timeouts and refused connections are worth another try (a draft costs little and charges nothing
/// when no answer came); anything else on the wire is reported as it is.
fn transport_error(e: reqwest::Error, timeout: Duration) -> (ProviderError, bool) {
    if e.is_timeout() {
        (ProviderError::Unavailable(format!("the LLM API did not answer within {timeout:?}")), true)
    } else if e.is_connect() {
        (ProviderError::Unavailable(format!("cannot reach the LLM API: {e}")), true)
    } else {
        (ProviderError::Unavailable(format!("LLM request failed: {e}")), false)
    }
}

/// `retry-after-ms` (milliseconds, may be fractional), else `retry-after` (seconds).
fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    number("retry-after-ms")
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .or_else(|| number("retry-after").and_then(|s| Duration::try_from_secs_f64(s).ok()))
}

/// Maps a non-2xx answer to our error, and whether to retry it.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> (ProviderError, bool) {
    let error = serde_json::from_str::<Value>(body).ok().and_then(|v| v.get("error").cloned());
    let field = |name: &str| error.as_ref().and_then(|e| e.get(name)).and_then(Value::as_str).unwrap_or_default();
    let (kind, code) = (field("type"), field("code"));
    let message = match field("message") {
        "" => shorten(body.trim()),
        m => shorten(m),
    };
    let described = |what: &str| {
        let labels: Vec<&str> = [kind, code].into_iter().filter(|s| !s.is_empty()).collect();
        let labels = if labels.is_empty() { String::new() } else { format!(" ({})", labels.join(", ")) };
        format!("{what} {status}{labels}: {message}")
    };
    match status.as_u16() {
        401 | 403 => (ProviderError::Unauthorized, false),
        429 if kind == "insufficient_quota" || QUOTA_CODES.contains(&code) => (ProviderError::QuotaExceeded, false),
        429 => (ProviderError::RateLimited { retry_after }, true),
        // Request timeout and lock conflicts: OpenAI's SDKs retry these too.
        408 | 409 | 500..=599 => (ProviderError::Unavailable(described("the LLM API answered")), true),
        _ => (ProviderError::BadResponse(described("the LLM API refused the request with")), false),
    }
}

/// The assistant's JSON object out of a chat completion.
fn parse_completion(text: &str) -> Result<Value, ProviderError> {
    let completion: Value = serde_json::from_str(text).map_err(|e| bad(format!("unreadable chat completion: {e}")))?;
    let choice = completion
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| bad("the chat completion has no choices"))?;
    let message = choice.get("message").ok_or_else(|| bad("the chat completion's choice has no message"))?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str).filter(|r| !r.trim().is_empty()) {
        return Err(bad(format!("the model refused: {}", shorten(refusal))));
    }
    match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => return Err(bad("the model's answer was cut off (finish_reason \"length\")")),
        Some("content_filter") => return Err(bad("the model's answer was withheld by its content filter")),
        _ => {}
    }
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the chat completion's message has no text content"))?;
    let value: Value = serde_json::from_str(strip_code_fence(content))
        .map_err(|e| bad(format!("the model's answer is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(bad("the model's answer is JSON but not an object"));
    }
    Ok(value)
}

/// Some OpenAI-compatible servers wrap JSON mode's answer in a Markdown code fence.
fn strip_code_fence(content: &str) -> &str {
    let t = content.trim();
    let Some(inner) = t.strip_prefix("```").and_then(|r| r.strip_suffix("```")) else {
        return t;
    };
    let inner = inner.strip_prefix("json").or_else(|| inner.strip_prefix("JSON")).unwrap_or(inner);
    inner.trim()
}

fn written_email(answer: &Value) -> Result<WrittenEmail, ProviderError> {
    let subject = text_field(answer, "subject")?;
    let body = text_field(answer, "body")?;
    check_subject(&subject)?;
    if let Some(p) = find_placeholder(&body) {
        return Err(bad(format!("the model left the placeholder {p} in the body")));
    }
    Ok(WrittenEmail { subject, body })
}

fn text_field(answer: &Value, name: &str) -> Result<String, ProviderError> {
    answer
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| bad(format!("the model's answer has no non-empty \"{name}\" string")))
}

fn check_subject(subject: &str) -> Result<(), ProviderError> {
    if subject.trim().is_empty() {
        return Err(bad("the model wrote an empty subject"));
    }
    if subject.contains(['\r', '\n']) {
        return Err(bad("the model's subject spans more than one line"));
    }
    let chars = subject.chars().count();
    if chars > MAX_SUBJECT_CHARS {
        return Err(bad(format!("the model's subject is {chars} characters (at most {MAX_SUBJECT_CHARS})")));
    }
    if let Some(p) = find_placeholder(subject) {
        return Err(bad(format!("the model left the placeholder {p} in the subject")));
    }
    Ok(())
}

/// The first `{name}`, `{{name}}`, `{name|fallback}` or `{First Name}` in `text`. A brace that does not open
/// a name (`{ }`, `{"a": 1}`) is text.
fn find_placeholder(text: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(i) = text[from..].find('{') {
        let open = from + i;
        let inner_start = open + text[open..].chars().take_while(|c| *c == '{').count();
        if let Some(len) = text[inner_start..].find('}') {
            let inner = &text[inner_start..inner_start + len];
            let name = inner.split('|').next().unwrap_or_default().trim();
            let is_name = name.len() <= 40
                && name.starts_with(|c: char| c.is_alphabetic())
                && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '.' | '-' | '\''));
            if is_name && !inner.contains('{') {
                let end = inner_start + len + text[inner_start + len..].chars().take_while(|c| *c == '}').count();
                return Some(&text[open..end]);
            }
        }
        from = inner_start;
    }
    None
}

fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let cut = (0..=MAX).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    format!("{}...", &s[..cut])
}

/// The user message: `Key: value` lines (values on one line, empty ones left out), then blocks of text.
#[derive(Default)]
struct Facts(String);

impl Facts {
    fn line(mut self, key: &str, value: Option<&str>) -> Self {
        let value = value.map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default();
        if !value.is_empty() {
            let _ = writeln!(self.0, "{key}: {value}");
        }
        self
    }

    fn block(mut self, key: &str, text: &str) -> Self {
        let text = text.trim();
        if !text.is_empty() {
            let _ = writeln!(self.0, "{key}:\n<<<\n{text}\n>>>");
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(message: Value, finish_reason: &str) -> String {
        json!({ "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }] }).to_string()
    }

    #[test]
    fn errors_map_by_status_and_openai_error_code() {
        let body = |kind: &str, code: &str| {
            json!({ "error": { "message": "m", "type": kind, "param": null, "code": code } }).to_string()
        };
        let c = |status: u16, b: &str| classify(StatusCode::from_u16(status).unwrap(), None, b);
        assert!(matches!(
            c(401, &body("invalid_request_error", "invalid_api_key")),
            (ProviderError::Unauthorized, false)
        ));
        assert!(matches!(
            c(403, &body("invalid_request_error", "unsupported_country")),
            (ProviderError::Unauthorized, false)
        ));
        assert!(matches!(
            c(429, &body("insufficient_quota", "insufficient_quota")),
            (ProviderError::QuotaExceeded, false)
        ));
        assert!(matches!(
            c(429, &body("insufficient_quota", "project_spend_limit_exceeded")),
            (ProviderError::QuotaExceeded, false)
        ));
        assert!(matches!(c(429, &body("requests", "rate_limit_exceeded")), (ProviderError::RateLimited { .. }, true)));
        assert!(matches!(c(429, "Too Many Requests"), (ProviderError::RateLimited { .. }, true)));
        assert!(matches!(c(503, &body("server_error", "")), (ProviderError::Unavailable(_), true)));
        let (err, retry) = c(400, &body("invalid_request_error", "context_length_exceeded"));
        assert!(!retry);
        assert!(matches!(err, ProviderError::BadResponse(ref m) if m.contains("context_length_exceeded")), "{err}");
        assert!(matches!(
            c(404, &body("invalid_request_error", "model_not_found")),
            (ProviderError::BadResponse(_), false)
        ));
    }

    #[test]
    fn retry_hints_prefer_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_hint(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "250.5".parse().unwrap());
        assert_eq!(retry_hint(&h), Some(Duration::from_micros(250_500)));
        let mut date = HeaderMap::new();
        date.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_hint(&date), None);
    }

    #[test]
    fn completions_yield_json_objects_or_bad_responses() {
        let ok = completion(json!({ "role": "assistant", "content": "{\"a\": 1}", "refusal": null }), "stop");
        assert_eq!(parse_completion(&ok).unwrap(), json!({ "a": 1 }));
        let fenced = completion(json!({ "role": "assistant", "content": "```json\n{\"a\": 1}\n```" }), "stop");
        assert_eq!(parse_completion(&fenced).unwrap(), json!({ "a": 1 }));
        let is_bad = |text: &str| matches!(parse_completion(text), Err(ProviderError::BadResponse(_)));
        assert!(is_bad(&completion(json!({ "role": "assistant", "content": "Sure! Subject: hi" }), "stop")));
        assert!(is_bad(&completion(json!({ "role": "assistant", "content": "[1, 2]" }), "stop")));
        assert!(is_bad(&completion(json!({ "role": "assistant", "content": "{\"a\": 1}" }), "length")));
        assert!(is_bad(&completion(json!({ "role": "assistant", "content": null, "refusal": "I can't" }), "stop")));
        assert!(is_bad(&completion(json!({ "role": "assistant", "content": null }), "stop")));
        assert!(is_bad(r#"{"choices": []}"#));
        assert!(is_bad(r#"{"object": "chat.completion"}"#));
        assert!(is_bad("<html>"));
    }

    #[test]
    fn placeholders_are_found_and_plain_braces_are_text() {
        assert_eq!(find_placeholder("Hi {firstName},"), Some("{firstName}"));
        assert_eq!(find_placeholder("Hi {{ name }}!"), Some("{{ name }}"));
        assert_eq!(find_placeholder("Hi {firstName|there}"), Some("{firstName|there}"));
        assert_eq!(find_placeholder("Dear {Recipient Name}"), Some("{Recipient Name}"));
        assert_eq!(find_placeholder("a { } b {\"json\": 1} c {} d"), None);
        assert_eq!(find_placeholder("no braces at all"), None);
        assert_eq!(find_placeholder("{ {x} }"), Some("{x}"));
    }

    #[test]
    fn emails_are_checked() {
        let ok = json!({ "subject": " Hello ", "body": "Hi Marina,\n\nThanks." });
        assert_eq!(
            written_email(&ok).unwrap(),
            WrittenEmail { subject: "Hello".into(), body: "Hi Marina,\n\nThanks.".into() }
        );
        for wrong in [
            json!({ "subject": "", "body": "b" }),
            json!({ "subject": "s" }),
            json!({ "subject": 1, "body": "b" }),
            json!({ "subject": "two\nlines", "body": "b" }),
            json!({ "subject": "x".repeat(999), "body": "b" }),
            json!({ "subject": "For {domain}", "body": "b" }),
            json!({ "subject": "s", "body": "Hi {firstName}" }),
        ] {
            assert!(matches!(written_email(&wrong), Err(ProviderError::BadResponse(_))), "{wrong}");
        }
        assert!(check_subject(&"é".repeat(998)).is_ok(), "the limit counts characters");
    }

    #[test]
    fn env_configuration_has_defaults_and_no_key_means_no_client() {
        let none = LlmClient::from_vars(|_| None).unwrap();
        assert!(none.is_none());
        let blank = LlmClient::from_vars(|k| (k == ENV_API_KEY).then(|| "  ".to_string())).unwrap();
        assert!(blank.is_none());
        let c = LlmClient::from_vars(|k| (k == ENV_API_KEY).then(|| "sk-test".to_string())).unwrap().unwrap();
        assert_eq!((c.base_url(), c.model()), (DEFAULT_BASE_URL, DEFAULT_MODEL));
        assert!(!format!("{c:?}").contains("sk-test"), "the key stays out of Debug");
        let custom = LlmClient::from_vars(|k| match k {
            ENV_API_KEY => Some("k".into()),
            ENV_BASE_URL => Some("http://localhost:11434/v1/".into()),
            ENV_MODEL => Some("llama3.1".into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        assert_eq!((custom.base_url(), custom.model()), ("http://localhost:11434/v1", "llama3.1"));
    }

    #[test]
    fn tones_parse_case_insensitively() {
        assert_eq!("Friendly".parse::<Tone>(), Ok(Tone::Friendly));
        assert!("snarky".parse::<Tone>().is_err());
        assert_eq!(serde_json::to_value(Tone::Formal).unwrap(), json!("formal"));
    }
}
