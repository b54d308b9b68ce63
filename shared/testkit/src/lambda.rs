//! A Lambda function binary run as Lambda runs it: a fake Runtime API on loopback hands it one
//! event, and the test gets what the function answered.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

type Shared = (Arc<Mutex<Option<Value>>>, mpsc::UnboundedSender<(String, Value)>);

/// Starts `bin` (a `lambda_runtime` function) with `env`, gives it `payload` as its one
/// invocation, and returns its answer. Panics when the function reports an error (init or
/// invocation) or gives no answer within 120 s.
pub async fn invoke(bin: &str, env: &[(&str, &str)], payload: Value) -> Value {
    let name = std::path::Path::new(bin).file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
    let pending = Arc::new(Mutex::new(Some(payload)));
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Value)>();
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
    let next = move |State((p, _)): State<Shared>| {
        let arn = arn.clone();
        async move {
            let Some(body) = p.lock().unwrap().take() else {
                // One invocation per process: later polls wait until the test ends the process.
                return std::future::pending().await;
            };
            let deadline = (std::time::SystemTime::now() + Duration::from_secs(120))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let mut h = HeaderMap::new();
            h.insert("lambda-runtime-aws-request-id", "req-1".parse().unwrap());
            h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
            h.insert("lambda-runtime-invoked-function-arn", arn.parse().unwrap());
            (h, body.to_string())
        }
    };
    let answer = |State((_, tx)): State<Shared>, Path((_, kind)): Path<(String, String)>, body: String| async move {
        let _ = tx.send((kind, serde_json::from_str(&body).unwrap_or(Value::String(body))));
    };
    let init_error = |State((_, tx)): State<Shared>, body: String| async move {
        let _ = tx.send(("init".into(), Value::String(body)));
    };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state((pending, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut child = tokio::process::Command::new(bin)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (kind, body) = tokio::time::timeout(Duration::from_secs(120), rx.recv()).await.expect("an answer").unwrap();
    child.kill().await.unwrap();
    server.abort();
    assert_eq!(kind, "response", "the function failed: {body}");
    body
}

/// One record of an SQS event as Lambda's event source mapping delivers it.
pub fn sqs_record(message_id: &str, receipt: &str, body: &str, receive_count: u32, source_arn: &str) -> Value {
    serde_json::json!({
        "messageId": message_id, "receiptHandle": receipt, "body": body,
        "attributes": { "ApproximateReceiveCount": receive_count.to_string() }, "messageAttributes": {},
        "eventSource": "aws:sqs", "awsRegion": "us-east-1", "eventSourceARN": source_arn,
    })
}

/// An SQS event of these records.
pub fn sqs_event(records: Vec<Value>) -> Value {
    serde_json::json!({ "Records": records })
}

/// An API Gateway HTTP API (payload format 2.0) request event for `method path?query`.
pub fn http_api_event(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: Option<&str>) -> Value {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::String((*v).to_owned()))).collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "linkcrm-test" },
            "requestId": "apigw-req-1", "routeKey": "$default", "stage": "$default",
            "time": "06/Dec/2026:00:00:00 +0000", "timeEpoch": 1796515200000u64,
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

type Pending = Arc<Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<Value>>>>;
type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>;

/// A Lambda HTTP function behind a stand-in for API Gateway's HTTP API: real HTTP requests on a
/// loopback port become payload 2.0 events, which the function (one process, one invocation at a
/// time, as Lambda runs it) takes from a fake Runtime API; its answers go back as HTTP responses.
pub struct HttpFront {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: tokio::process::Child,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl HttpFront {
    /// Starts `bin` with `env` and the front before it.
    pub async fn start(bin: &str, env: &[(&str, &str)]) -> HttpFront {
        let name = std::path::Path::new(bin).file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
        let (tx, rx) = mpsc::unbounded_channel::<(String, Value)>();
        let queue: Queue = Arc::new(tokio::sync::Mutex::new(rx));
        let pending: Pending = Arc::default();
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");

        // The Runtime API the function polls.
        let next = {
            let queue = queue.clone();
            move || {
                let (queue, arn) = (queue.clone(), arn.clone());
                async move {
                    let Some((id, event)) = queue.lock().await.recv().await else {
                        return std::future::pending().await;
                    };
                    let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis();
                    let mut h = HeaderMap::new();
                    h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                    h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
                    h.insert("lambda-runtime-invoked-function-arn", arn.parse().unwrap());
                    (h, event.to_string())
                }
            }
        };
        let answer = {
            let pending = pending.clone();
            move |Path((id, kind)): Path<(String, String)>, body: String| {
                let pending = pending.clone();
                async move {
                    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    let v = if kind == "response" { v } else { serde_json::json!({ "functionError": v }) };
                    if let Some(s) = pending.lock().unwrap().remove(&id) {
                        let _ = s.send(v);
                    }
                }
            }
        };
        let runtime = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route(
                "/2018-06-01/runtime/init/error",
                post(|body: String| async move {
                    eprintln!("the function failed to start: {body}");
                    axum::http::StatusCode::ACCEPTED
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap().to_string();
        let mut servers = vec![tokio::spawn(async move { axum::serve(listener, runtime).await.unwrap() })];

        // The front: HTTP in, events out, answers back.
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let front = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (tx, pending, counter) = (tx.clone(), pending.clone(), counter.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 8 << 20).await.unwrap_or_default();
                let body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
                let headers: Vec<(String, String)> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let event = http_api_event(
                    parts.method.as_str(),
                    parts.uri.path(),
                    parts.uri.query().unwrap_or(""),
                    &headers,
                    body.as_deref(),
                );
                let id = format!("req-{}", counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                let (done, wait) = tokio::sync::oneshot::channel();
                pending.lock().unwrap().insert(id.clone(), done);
                let _ = tx.send((id, event));
                let out = tokio::time::timeout(Duration::from_secs(60), wait).await;
                let Ok(Ok(out)) = out else {
                    return axum::http::Response::builder().status(504).body(axum::body::Body::empty()).unwrap();
                };
                if out.get("functionError").is_some() {
                    return axum::http::Response::builder()
                        .status(502)
                        .body(axum::body::Body::from(out.to_string()))
                        .unwrap();
                }
                let mut resp = axum::http::Response::builder().status(out["statusCode"].as_u64().unwrap_or(200) as u16);
                for (k, v) in out["headers"].as_object().into_iter().flatten() {
                    resp = resp.header(k.as_str(), v.as_str().unwrap_or_default());
                }
                let text = out["body"].as_str().unwrap_or_default();
                let bytes = if out["isBase64Encoded"].as_bool() == Some(true) {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
                } else {
                    text.as_bytes().to_vec()
                };
                resp.body(axum::body::Body::from(bytes)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        servers.push(tokio::spawn(async move { axum::serve(listener, front).await.unwrap() }));

        let child = tokio::process::Command::new(bin)
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        HttpFront { url, child, servers }
    }
}

impl Drop for HttpFront {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        for s in &self.servers {
            s.abort();
        }
    }
}
