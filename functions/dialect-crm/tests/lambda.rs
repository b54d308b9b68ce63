//! The seed 004 dialect's function as Lambda runs it, behind a stand-in for API Gateway's HTTP
//! API, over a table on moto: an `ak_` key, stages and a lead made through the dialect with UUID
//! ids, the entity rule, and `/v1` seeing the same lead.

use linkcrm_storage::DynStore;
use linkcrm_testkit::lambda::HttpFront;
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "sk_live_agency_dialect_crm_function_test";

async fn call(method: reqwest::Method, url: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url).header("Authorization", format!("Bearer {key}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_and_leads_through_the_function() {
    let endpoint = linkcrm_testkit::Moto::shared().expect("moto server").endpoint().to_owned();
    let table = linkcrm_testkit::unique_table_name("dialect-crm-fn");
    let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: DynStore = Arc::new(store);
    linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
    let app = linkcrm_api::app(store, config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let rest = linkcrm_api::router(&app);
    let server = tokio::spawn(async move { axum::serve(listener, rest).await.unwrap() });
    let (_, ws) =
        call(reqwest::Method::POST, &format!("{base}/v1/workspaces"), KEY, Some(json!({ "name": "Fn" }))).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (s, key) = call(
        reqwest::Method::POST,
        &format!("{base}/v1/workspaces/{ws}/api-keys"),
        KEY,
        Some(json!({ "name": "crm", "format": "ak" })),
    )
    .await;
    assert_eq!(s, 201, "{key}");
    assert_eq!(key["scopes"], json!(["read:crm", "write:crm"]));
    let key = key["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ak_"));

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("RUST_LOG", "warn"),
    ];
    let front = HttpFront::start(env!("CARGO_BIN_EXE_dialect-crm"), &env).await;
    let p = format!("{}/api/crm", front.url);

    let (s, b) = call(reqwest::Method::GET, &format!("{p}/pipeline-stages"), "nope", None).await;
    assert_eq!((s, b), (401, json!({ "error": "Unknown API key." })));
    let (s, stages) = call(reqwest::Method::GET, &format!("{p}/pipeline-stages"), &key, None).await;
    assert_eq!(s, 200, "{stages}");
    let stages = stages["stages"].as_array().unwrap().clone();
    assert_eq!(stages.len(), 8);
    let first = stages[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 36, "a UUID: {first}");
    let (s, lead) = call(
        reqwest::Method::POST,
        &format!("{p}/leads"),
        &key,
        Some(json!({ "title": "Guest post", "domain": "engineering-blog.com" })),
    )
    .await;
    assert_eq!((s, lead["stageId"].as_str()), (201, Some(first.as_str())), "{lead}");
    let id = lead["id"].as_str().unwrap().to_owned();
    let (s, got) = call(reqwest::Method::GET, &format!("{p}/leads/{id}"), &key, None).await;
    assert_eq!((s, got["title"].as_str()), (200, Some("Guest post")));
    let wrong = "497f6eca-6276-4993-bfeb-53cbbbba6f08";
    let (s, b) = call(reqwest::Method::GET, &format!("{p}/leads?entityId={wrong}"), &key, None).await;
    assert_eq!((s, b), (403, json!({ "error": "entityId does not match this API key" })));
    let (s, list) = call(reqwest::Method::GET, &format!("{p}/leads?page=1&pageSize=10"), &key, None).await;
    assert_eq!((s, list["total"].as_u64(), list["pageSize"].as_u64()), (200, Some(1), Some(10)), "{list}");
    // /v1 sees the same opportunity under our id.
    let (s, v1) =
        call(reqwest::Method::GET, &format!("{base}/v1/link-building/crm/opportunity?limit=5"), &key, None).await;
    assert_eq!((s, v1["data"][0]["title"].as_str()), (200, Some("Guest post")), "{v1}");
    let (s, doc) = call(reqwest::Method::GET, &format!("{p}/openapi.json"), &key, None).await;
    assert_eq!((s, doc["openapi"].as_str()), (200, Some("3.1.0")));
    server.abort();
}
