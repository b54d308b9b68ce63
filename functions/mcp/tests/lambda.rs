//! The MCP function as Lambda runs it, behind a stand-in for API Gateway's HTTP API, over a
//! table on moto: the same conversation the local binary has with the official Python MCP SDK's
//! client (`infra/mcp_conversation.py`), in JSON answers, with no session kept between requests.

use linkcrm_storage::DynStore;
use linkcrm_testkit::lambda::HttpFront;
use linkcrm_testkit::mcp_client::{converse, seed_world};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk_live_agency_mcp_function_test_key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_conversation_runs_against_the_function() {
    // The test's mail server is on loopback.
    std::env::set_var("LINKCRM_ALLOW_PRIVATE_TARGETS", "true");
    let endpoint = linkcrm_testkit::Moto::shared().expect("moto server").endpoint().to_owned();
    let table = linkcrm_testkit::unique_table_name("mcp-fn");
    let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: DynStore = Arc::new(store);
    linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    // The data is made through the REST API, served in-process over the same table.
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store, config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let rest = linkcrm_api::router(&app);
    let server = tokio::spawn(async move { axum::serve(listener, rest).await.unwrap() });
    let smtp = linkcrm_testkit::SmtpServer::start().unwrap();
    let mut cfg = seed_world(&base, KEY, smtp.port).await;

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("LINKCRM_MCP_WAIT_SECS", "3"),
        ("LINKCRM_ALLOW_PRIVATE_TARGETS", "true"),
        ("RUST_LOG", "warn"),
    ];
    let front = HttpFront::start(env!("CARGO_BIN_EXE_mcp"), &env).await;
    cfg["url"] = json!(format!("{}/mcp", front.url));
    // Discovery runs in the discover worker, which this test does not start.
    cfg["discover"] = json!(false);
    match converse(&cfg, Duration::from_secs(240)).await {
        Ok(out) => {
            println!("{out}");
            assert!(out.contains("conversation complete"), "{out}");
        }
        Err(out) => panic!("the MCP conversation with the function failed:\n{out}"),
    }
    server.abort();
}
