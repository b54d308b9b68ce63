//! A local stand-in for an OpenAI-compatible chat completions API, on a loopback port.
//!
//! It answers `POST /v1/chat/completions` (and `/chat/completions`) in OpenAI's shapes (see the sources at
//! the top of `linkcrm-providers/src/llm.rs`): a Bearer key is required (401 with OpenAI's error body
//! otherwise), JSON mode needs the word "json" in the messages (400 otherwise), and errors are
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! Without a script the assistant's answer is deterministic JSON built from the request, so tests can check
//! what reached the model: a request that asks for subject suggestions gets `{"suggestions": [...]}` (as many
//! as the user message's "suggestions" line asks for, each naming the topic); any other gets `{"subject",
//! "body"}` whose body repeats the user message's facts (`Key: value` lines, braces removed). Faults and
//! forced answers can be scripted, and every request is recorded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
/// The models the key may use (OpenAI's list shape).
pub const MODELS_PATH: &str = "/v1/models";

/// How long [`Failure::Timeout`] holds its answer: longer than any client timeout (the default is 30 s).
pub const TIMEOUT_SLEEP: Duration = Duration::from_secs(120);

/// What the next call answers instead of its normal completion.
#[derive(Clone, Debug)]
pub enum Failure {
    /// 429 `rate_limit_exceeded` with `retry-after` in whole seconds and OpenAI's `x-ratelimit-*` headers.
    RateLimited { retry_after_secs: u64 },
    /// 429 `rate_limit_exceeded` with only `retry-after-ms`.
    RateLimitedMs { retry_after_ms: u64 },
    /// 429 with `type` and `code` `insufficient_quota` (no credits left).
    InsufficientQuota,
    /// 500 `server_error`.
    ServerError,
    /// 400 `invalid_request_error` / `context_length_exceeded`.
    BadRequest,
    /// No answer for [`TIMEOUT_SLEEP`], so the client gives up first.
    Timeout,
    /// Answer normally after this long.
    Slow(Duration),
    /// 200, but the content is prose, not JSON.
    Malformed,
    /// 200 with `finish_reason: "length"` and the JSON cut off.
    Truncated,
    /// 200 with a `refusal` and no content.
    Refusal,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct LlmRequest {
    pub path: String,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// The JSON body, `Value::Null` when empty or not JSON.
    pub body: Value,
}

impl LlmRequest {
    /// The key of `Authorization: Bearer <key>`.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "))
    }

    /// The content of the first message with `role`.
    pub fn message(&self, role: &str) -> Option<&str> {
        self.body["messages"].as_array()?.iter().find(|m| m["role"] == role)?["content"].as_str()
    }

    pub fn system(&self) -> Option<&str> {
        self.message("system")
    }

    pub fn user(&self) -> Option<&str> {
        self.message("user")
    }
}

#[derive(Default)]
struct Script {
    failures: VecDeque<Failure>,
    /// Assistant contents to answer with, in order, before falling back to the built answer.
    replies: VecDeque<String>,
    requests: Vec<LlmRequest>,
}

struct Shared {
    api_key: String,
    script: Mutex<Script>,
}

impl Shared {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FakeLlm {
    /// With the version segment, e.g. `http://127.0.0.1:41234/v1`, as `LlmClient::new` expects.
    pub base_url: String,
    pub api_key: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Starts on a free loopback port with a fresh key. Needs a Tokio runtime.
    pub async fn start() -> FakeLlm {
        let api_key = format!("sk-fake-{}", crate::server::unique());
        let shared = Arc::new(Shared { api_key: api_key.clone(), script: Mutex::new(Script::default()) });
        let app = Router::new()
            .route(CHAT_COMPLETIONS_PATH, post(chat_completions))
            .route(MODELS_PATH, axum::routing::get(models))
            .route("/chat/completions", post(chat_completions))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm { base_url: format!("http://{addr}/v1"), api_key, shared, server }
    }

    /// The next `n` calls answer with `failure` (after any failures already scripted).
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.shared.script().failures.extend(std::iter::repeat_n(failure, n));
    }

    /// The next successful answer's content is `content` (serialized), whatever the request asked.
    /// Several calls queue several answers.
    pub fn set_reply(&self, content: Value) {
        self.shared.script().replies.push_back(content.to_string());
    }

    /// Like [`FakeLlm::set_reply`] with content taken as it is (for answers that are not JSON).
    pub fn set_reply_text(&self, content: impl Into<String>) {
        self.shared.script().replies.push_back(content.into());
    }

    /// Every request received so far, in order (rejected ones included).
    pub fn requests(&self) -> Vec<LlmRequest> {
        self.shared.script().requests.clone()
    }

    /// How many requests arrived.
    pub fn calls(&self) -> usize {
        self.shared.script().requests.len()
    }

    /// Stops listening, so later connections are refused.
    pub async fn stop(mut self) -> String {
        self.server.abort();
        let _ = (&mut self.server).await;
        std::mem::take(&mut self.base_url)
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// OpenAI's error body.
fn error(status: StatusCode, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    (status, Json(body)).into_response()
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let request = LlmRequest {
        path: uri.path().to_string(),
        authorization,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (failure, reply) = {
        let mut script = shared.script();
        script.requests.push(request.clone());
        match request.bearer() {
            None => {
                let message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
                return error(StatusCode::UNAUTHORIZED, message, "invalid_request_error", None, None);
            }
            Some(key) if key != shared.api_key => {
                let shown: String = key.chars().take(3).collect();
                let message = format!("Incorrect API key provided: {shown}***. You can find your API key at https://platform.openai.com/account/api-keys.");
                return error(
                    StatusCode::UNAUTHORIZED,
                    &message,
                    "invalid_request_error",
                    None,
                    Some("invalid_api_key"),
                );
            }
            Some(_) => {}
        }
        if let Some(early) = invalid(&request.body) {
            return early;
        }
        let failure = script.failures.pop_front();
        // A scripted reply is spent only by an answer that carries content.
        let answers = matches!(failure, None | Some(Failure::Slow(_)));
        let reply = if answers { script.replies.pop_front() } else { None };
        (failure, reply)
    };
    let model = request.body["model"].as_str().unwrap_or_default().to_string();
    match failure {
        None => {}
        Some(Failure::Slow(d)) => tokio::time::sleep(d).await,
        Some(Failure::Timeout) => {
            tokio::time::sleep(TIMEOUT_SLEEP).await;
            return error(StatusCode::GATEWAY_TIMEOUT, "Timed out", "server_error", None, None);
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            let message = format!("Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after_secs}s. Visit https://platform.openai.com/account/rate-limits to learn more.");
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                &message,
                "requests",
                Some("requests"),
                Some("rate_limit_exceeded"),
            );
            let h = resp.headers_mut();
            h.insert("retry-after", retry_after_secs.into());
            h.insert("x-ratelimit-limit-requests", 3.into());
            h.insert("x-ratelimit-remaining-requests", 0.into());
            h.insert("x-ratelimit-reset-requests", format!("{retry_after_secs}s").parse().expect("header value"));
            return resp;
        }
        Some(Failure::RateLimitedMs { retry_after_ms }) => {
            let message = format!("Rate limit reached for {model} in organization org-fake on tokens per min (TPM): Limit 200000, Used 199990, Requested 500. Please try again in {retry_after_ms}ms.");
            let mut resp =
                error(StatusCode::TOO_MANY_REQUESTS, &message, "tokens", Some("tokens"), Some("rate_limit_exceeded"));
            resp.headers_mut().insert("retry-after-ms", retry_after_ms.into());
            return resp;
        }
        Some(Failure::InsufficientQuota) => {
            let message = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.";
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                message,
                "insufficient_quota",
                None,
                Some("insufficient_quota"),
            );
        }
        Some(Failure::ServerError) => {
            let message = "The server had an error while processing your request. Sorry about that!";
            return error(StatusCode::INTERNAL_SERVER_ERROR, message, "server_error", None, None);
        }
        Some(Failure::BadRequest) => {
            let message = "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.";
            return error(
                StatusCode::BAD_REQUEST,
                message,
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
            );
        }
        Some(Failure::Malformed) => {
            let content = "Sure! Here is your email.\n\nSubject: A quick idea\n\nHi there, ...";
            return completion(&model, Some(content), None, "stop");
        }
        Some(Failure::Truncated) => {
            let content =
                "{\"subject\": \"A quick idea for your readers\", \"body\": \"Hi there,\\n\\nI read your post on";
            return completion(&model, Some(content), None, "length");
        }
        Some(Failure::Refusal) => {
            return completion(&model, None, Some("I'm sorry, but I can't help with that request."), "stop");
        }
    }
    let content = reply.unwrap_or_else(|| built_answer(&request).to_string());
    completion(&model, Some(&content), None, "stop")
}

/// The 400s OpenAI gives a request it cannot take.
fn invalid(body: &Value) -> Option<Response> {
    let bad = |message: &str, param: &str| {
        Some(error(StatusCode::BAD_REQUEST, message, "invalid_request_error", Some(param), None))
    };
    if !body.is_object() {
        return bad("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)", "body");
    }
    if body["model"].as_str().is_none_or(str::is_empty) {
        return bad("you must provide a model parameter", "model");
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return bad("Missing required parameter: 'messages'.", "messages");
    };
    let json_mode = body["response_format"]["type"] == "json_object";
    let mentions_json =
        messages.iter().any(|m| m["content"].as_str().is_some_and(|c| c.to_lowercase().contains("json")));
    if json_mode && !mentions_json {
        return bad(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "messages",
        );
    }
    None
}

fn completion(model: &str, content: Option<&str>, refusal: Option<&str>, finish_reason: &str) -> Response {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ID: AtomicU64 = AtomicU64::new(1);
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let completion_tokens = content.map_or(0, |c| c.split_whitespace().count());
    Json(json!({
        "id": format!("chatcmpl-fake{}", ID.fetch_add(1, Ordering::Relaxed)),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": refusal, "annotations": [] },
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": { "prompt_tokens": 100, "completion_tokens": completion_tokens, "total_tokens": 100 + completion_tokens },
        "system_fingerprint": "fp_fake",
    }))
    .into_response()
}

/// The default answer: suggestions or an email, made from the user message's facts.
fn built_answer(request: &LlmRequest) -> Value {
    let user = request.user().unwrap_or_default();
    let facts: Vec<(Option<&str>, &str)> = user
        .lines()
        .map(str::trim)
        // Block markers and headers (`Email to personalize:`) are not facts.
        .filter(|l| !l.is_empty() && *l != "<<<" && *l != ">>>" && !l.ends_with(':'))
        .map(|l| match l.split_once(": ") {
            Some((k, v)) if k.len() <= 60 && k.chars().all(|c| c.is_alphabetic() || c == ' ') => (Some(k), v.trim()),
            _ => (None, l),
        })
        .collect();
    let value_of = |word: &str| {
        facts.iter().find(|(k, v)| k.is_some_and(|k| k.to_lowercase().contains(word)) && !v.is_empty()).map(|(_, v)| *v)
    };
    let unbraced = |s: &str| s.replace(['{', '}'], "");
    let asks_suggestions =
        [request.system(), Some(user)].into_iter().flatten().any(|m| m.to_lowercase().contains("suggestion"));
    if asks_suggestions {
        let n = user
            .lines()
            .filter(|l| l.to_lowercase().contains("suggestion"))
            .find_map(|l| l.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).and_then(|s| s.parse().ok()))
            .unwrap_or(3usize)
            .clamp(1, 20);
        let topic = unbraced(value_of("topic").unwrap_or("your readers"));
        let suggestions: Vec<String> = (1..=n).map(|i| format!("{topic}: idea {i}")).collect();
        return json!({ "suggestions": suggestions });
    }
    let subject = match (value_of("topic"), value_of("subject")) {
        (Some(topic), _) => format!("About {}", unbraced(topic)),
        (None, Some(s)) if s.to_lowercase().starts_with("re:") => unbraced(s),
        (None, Some(s)) => format!("Re: {}", unbraced(s)),
        (None, None) => "A note for you".to_string(),
    };
    let subject: String = subject.chars().take(120).collect();
    let lines: Vec<String> = facts.iter().filter(|(_, v)| !v.is_empty()).map(|(_, v)| unbraced(v)).collect();
    json!({ "subject": subject, "body": format!("Hello,\n\n{}\n\nBest regards", lines.join("\n")) })
}

/// `GET /v1/models`: OpenAI's list shape. Checks the key like a completion; a scripted failure is
/// served too (a 500, a timeout, a 429).
async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let request = LlmRequest { path: MODELS_PATH.to_string(), authorization, body: Value::Null };
    let failure = {
        let mut script = shared.script();
        script.requests.push(request.clone());
        if request.bearer() != Some(shared.api_key.as_str()) {
            let message = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.";
            return error(StatusCode::UNAUTHORIZED, message, "invalid_request_error", None, Some("invalid_api_key"));
        }
        script.failures.pop_front()
    };
    match failure {
        Some(Failure::ServerError) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "The server had an error.", "server_error", None, None)
        }
        Some(Failure::Timeout) => {
            tokio::time::sleep(TIMEOUT_SLEEP).await;
            return error(StatusCode::GATEWAY_TIMEOUT, "Timed out", "server_error", None, None);
        }
        Some(Failure::RateLimited { .. } | Failure::RateLimitedMs { .. }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            )
        }
        Some(Failure::Slow(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let model = |id: &str| json!({ "id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system" });
    Json(json!({ "object": "list", "data": [model("gpt-4o-mini"), model("gpt-4o")] })).into_response()
}
