//! The relay Lambda binary, run as Lambda runs it: a fake Runtime API on loopback hands it one
//! DynamoDB Stream batch; DynamoDB and EventBridge (with an SQS target) are moto.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use linkcrm_events::outbox::{outbox_item, outbox_key};
use linkcrm_events::{outbox_put, DomainEvent};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_storage::{Item, Store};
use linkcrm_testkit::{unique_table_name, Moto};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

fn record(name: &str, seq: &str, image: &Item) -> EventRecord {
    let mut r = EventRecord::default();
    r.event_name = name.into();
    r.event_id = format!("rec-{seq}");
    r.aws_region = "us-east-1".into();
    r.change.sequence_number = Some(seq.into());
    r.change.keys = serde_dynamo::to_item(json!({ "PK": image["PK"], "SK": image["SK"] })).unwrap();
    r.change.new_image = serde_dynamo::to_item(image).unwrap();
    r
}

/// Runs the binary for one invocation with `payload` and returns what it answered.
async fn invoke(env: &[(&str, &str)], payload: Value) -> Value {
    type Pending = Arc<Mutex<Option<Value>>>;
    let pending: Pending = Arc::new(Mutex::new(Some(payload)));
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Value)>();
    let next = |State((p, _)): State<(Pending, mpsc::UnboundedSender<(String, Value)>)>| async move {
        let Some(body) = p.lock().unwrap().take() else {
            // One invocation per process: later polls wait until the test ends the process.
            return std::future::pending().await;
        };
        let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let mut h = HeaderMap::new();
        h.insert("lambda-runtime-aws-request-id", "req-1".parse().unwrap());
        h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:relay".parse().unwrap(),
        );
        (h, body.to_string())
    };
    let answer = |State((_, tx)): State<(Pending, mpsc::UnboundedSender<(String, Value)>)>,
                  Path((_, kind)): Path<(String, String)>,
                  body: String| async move {
        tx.send((kind, serde_json::from_str(&body).unwrap_or(Value::String(body)))).unwrap();
    };
    let init_error = |State((_, tx)): State<(Pending, mpsc::UnboundedSender<(String, Value)>)>, body: String| async move {
        tx.send(("init".into(), Value::String(body))).unwrap();
    };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state((pending, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_relay"))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "relay")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (kind, body) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("an answer").unwrap();
    child.kill().await.unwrap();
    server.abort();
    assert_eq!(kind, "response", "the function failed: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_batch_is_published_and_acknowledged_and_a_failure_is_reported() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let name = unique_table_name("relay-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &name);
    store.create_table().await.unwrap();
    let creds = Credentials::new("test", "test", None, None, "test");
    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds.clone())
            .endpoint_url(&endpoint)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&endpoint)
            .build(),
    );
    eb.create_event_bus().name(&name).send().await.unwrap();
    let queue = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    eb.put_rule().name("all").event_bus_name(&name).event_pattern(r#"{"source":["linkcrm"]}"#).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap();
    eb.put_targets().rule("all").event_bus_name(&name).targets(target).send().await.unwrap();

    let events: Vec<DomainEvent> =
        (0..3).map(|i| DomainEvent::new("workspace.created", Some(format!("ws_{i}")), json!({ "i": i }))).collect();
    for e in &events {
        store.transact(vec![outbox_put(e)]).await.unwrap();
    }
    let state: Item = json!({ "PK": "WS#ws_0", "SK": "#META", "entity": "workspace" }).as_object().unwrap().clone();
    let mut batch = Event::default();
    batch.records = vec![
        record("INSERT", "100", &state),
        record("INSERT", "101", &outbox_item(&events[0])),
        record("INSERT", "102", &outbox_item(&events[1])),
        record("REMOVE", "103", &outbox_item(&events[0])),
        record("INSERT", "104", &outbox_item(&events[2])),
    ];
    let payload = serde_json::to_value(&batch).unwrap();
    let aws = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", name.as_str()),
    ];

    // A bus that does not exist: the batch fails from the first outbox record, nothing is acked.
    let env: Vec<_> = aws.iter().copied().chain([("LINKCRM_EVENT_BUS", "no-such-bus")]).collect();
    assert_eq!(invoke(&env, payload.clone()).await, json!({ "batchItemFailures": [{ "itemIdentifier": "101" }] }));
    for e in &events {
        assert!(store.get(&outbox_key(&e.id)).await.unwrap().is_some());
    }

    // Lambda's retry, to the real bus.
    let env: Vec<_> = aws.iter().copied().chain([("LINKCRM_EVENT_BUS", name.as_str())]).collect();
    assert_eq!(invoke(&env, payload).await, json!({ "batchItemFailures": [] }));
    for e in &events {
        assert!(store.get(&outbox_key(&e.id)).await.unwrap().is_none(), "{} not acknowledged", e.id);
    }
    let mut ids = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            ids.push(body["detail"]["id"].as_str().unwrap().to_owned());
            sqs.delete_message().queue_url(&queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    ids.sort();
    let mut expected: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
}
