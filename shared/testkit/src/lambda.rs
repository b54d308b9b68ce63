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
