//! Events out of the running binary: the in-process relay publishes committed events to the sink
//! named by `LINKCRM_EVENT_SINK_URL`, each with its id in the `linkcrm-event-id` header.

mod common;
use axum::http::HeaderMap;
use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A loopback HTTP server that keeps every envelope POSTed to it.
async fn sink() -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                let id = headers.get("linkcrm-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                keep.lock().unwrap().push((id, serde_json::from_str(&body).unwrap()));
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Waits until an event of `type` matching `pred` arrived, and returns it.
async fn arrival(got: &Received, r#type: &str, pred: impl Fn(&Value) -> bool) -> (String, Value) {
    for _ in 0..1500 {
        if let Some(hit) = got.lock().unwrap().iter().find(|(_, e)| e["type"] == r#type && pred(e)) {
            return hit.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {type} event arrived; got {:?}", got.lock().unwrap());
}

async fn committed_events_reach_the_sink(backend: Backend) {
    let (url, got) = sink().await;
    let env = Env::start_with(backend, &[("LINKCRM_EVENT_SINK_URL", url.as_str())]).await;

    // Committed by the CLI before the server started: published from the outbox on start.
    let (id, agency) = arrival(&got, "agency.created", |e| e["data"]["name"] == "Our agency").await;
    assert_eq!(agency["id"], id);
    assert_eq!(agency["workspaceId"], Value::Null);

    let ws = env.agency().post("/v1/workspaces", json!({ "name": "Acme" })).await.ok(201).clone();
    let (id, event) = arrival(&got, "workspace.created", |e| e["workspaceId"] == ws["id"]).await;
    assert!(id.starts_with("evt_"));
    assert_eq!(event["id"], id);
    assert_eq!(event["data"]["name"], "Acme");
    assert!(event["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Published once: ids do not repeat while nothing crashed.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = got.lock().unwrap();
    let mut ids: Vec<&String> = got.iter().map(|(id, _)| id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an event was published twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_reach_the_sink_embedded() {
    committed_events_reach_the_sink(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_reach_the_sink_dynamodb() {
    committed_events_reach_the_sink(Backend::Dynamo).await
}

/// The binary dies between publishing an event and acknowledging it; after a restart the event is
/// published again, identical, and nothing acknowledged to a client is lost.
async fn killed_relay_republishes_the_same_event(backend: Backend) {
    let (url, got) = sink().await;
    let mut env = Env::start_with(backend, &[("LINKCRM_EVENT_SINK_URL", url.as_str())]).await;
    arrival(&got, "agency.created", |e| e["data"]["name"] == "Another agency").await;
    // The relay acknowledges (deletes the outbox item) just after the sink has it; stopping before
    // that would leave agency.created for the armed failpoint to republish and die on at start.
    // (Half a second was not always enough on a loaded machine.)
    tokio::time::sleep(Duration::from_millis(2000)).await;
    tokio::task::block_in_place(|| env.server.terminate().unwrap());

    env.opts = env.opts.clone().env("LINKCRM_FAULT", "relay_crash_after_publish");
    env.restart();
    let ws = env.agency().post("/v1/workspaces", json!({ "name": "Acme" })).await.ok(201).clone();
    let (id, first) = arrival(&got, "workspace.created", |e| e["workspaceId"] == ws["id"]).await;
    let died = tokio::task::block_in_place(|| env.server.wait_exit(Duration::from_secs(10)).unwrap());
    assert!(died, "the failpoint stops the process right after publishing");

    env.opts.env.retain(|(k, _)| k != "LINKCRM_FAULT");
    env.restart();
    for _ in 0..1500 {
        if got.lock().unwrap().iter().filter(|(i, _)| *i == id).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let copies: Vec<Value> = got.lock().unwrap().iter().filter(|(i, _)| *i == id).map(|(_, e)| e.clone()).collect();
    assert_eq!(copies.len(), 2, "published again after the crash, and acknowledged after that");
    assert_eq!(copies[0], first);
    assert_eq!(copies[1], first, "the republished event is the same event");
    // The workspace the client was told about survived the crash.
    assert_eq!(
        env.agency().get(&format!("/v1/workspaces/{}", ws["id"].as_str().unwrap())).await.ok(200)["name"],
        "Acme"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_relay_republishes_the_same_event_embedded() {
    killed_relay_republishes_the_same_event(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_relay_republishes_the_same_event_dynamodb() {
    killed_relay_republishes_the_same_event(Backend::Dynamo).await
}
