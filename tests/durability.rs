//! Nothing acknowledged is lost: not after `kill -9`, not across a graceful stop.

mod common;
use common::*;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// Writers create workspaces as fast as they can; returns the ids whose 201 arrived.
fn spawn_writers(api: &Api, n: usize, acked: &Arc<Mutex<Vec<String>>>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|w| {
            let (api, acked) = (api.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let body = json!({"name": format!("w{w}-{i}")}).to_string();
                    let r = match tokio::time::timeout(std::time::Duration::from_secs(5), async {
                        let req = reqwest::Client::new()
                            .post(format!("{}/v1/workspaces", api.base))
                            .header("Authorization", format!("Bearer {}", api.key.clone().unwrap()))
                            .body(body);
                        req.send().await
                    })
                    .await
                    {
                        Ok(Ok(r)) => r,
                        _ => return,
                    };
                    if r.status() != 201 {
                        return;
                    }
                    match r.json::<serde_json::Value>().await {
                        Ok(v) => acked.lock().unwrap().push(v["id"].as_str().unwrap().to_owned()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

async fn wait_for_acks(acked: &Arc<Mutex<Vec<String>>>, n: usize) {
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the writers got no work acknowledged in 30 s");
}

async fn assert_all_present(env: &Env, ids: &[String]) {
    let agency = env.agency();
    for id in ids {
        agency.get(&format!("/v1/workspaces/{id}")).await.ok(200);
    }
    let total = agency.get("/v1/workspaces").await.ok(200)["total"].as_u64().unwrap();
    assert!(total >= ids.len() as u64, "the counter kept up: {total} < {}", ids.len());
}

on_both_backends!(kill_9_loses_nothing_acknowledged, |env| {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers = spawn_writers(&env.agency(), 4, &acked);
    // Kill it mid-stream, once some writes were acknowledged (however slow the machine is).
    wait_for_acks(&acked, 10).await;
    tokio::task::block_in_place(|| env.server.kill_hard());
    for w in writers {
        let _ = w.await;
    }
    let ids = acked.lock().unwrap().clone();
    assert!(ids.len() >= 5, "the writers got some work acknowledged first ({})", ids.len());
    env.restart();
    assert_all_present(&env, &ids).await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_cleanly() {
    let mut env = Env::start(Backend::Embedded).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers = spawn_writers(&env.agency(), 4, &acked);
    wait_for_acks(&acked, 10).await;
    let code = tokio::task::block_in_place(|| env.server.terminate().unwrap());
    assert_eq!(code, Some(0), "a graceful stop exits 0");
    for w in writers {
        let _ = w.await;
    }
    env.restart();
    let ids = acked.lock().unwrap().clone();
    assert!(!ids.is_empty());
    assert_all_present(&env, &ids).await;
}
