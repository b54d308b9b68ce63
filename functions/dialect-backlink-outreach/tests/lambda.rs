//! The dialect's function as Lambda runs it, behind a stand-in for API Gateway's HTTP API, over a
//! table on moto: campaigns and leads made through the dialect, read back through it and `/v1`,
//! with the peer's statuses and error bodies.

use linkcrm_storage::DynStore;
use linkcrm_testkit::lambda::HttpFront;
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "sk_live_agency_dialect_function_test_key";

async fn call(method: reqwest::Method, url: &str, key: &str, body: Option<Value>) -> (u16, Value, String) {
    let mut req = reqwest::Client::new().request(method, url).header("Authorization", format!("Bearer {key}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), ct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_and_leads_through_the_function() {
    let endpoint = linkcrm_testkit::Moto::shared().expect("moto server").endpoint().to_owned();
    let table = linkcrm_testkit::unique_table_name("dialect-fn");
    let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: DynStore = Arc::new(store);
    linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    // The workspace and its key are made through the REST API, served in-process on the same table.
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
    let app = linkcrm_api::app(store, config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let rest = linkcrm_api::router(&app);
    let server = tokio::spawn(async move { axum::serve(listener, rest).await.unwrap() });
    let (_, ws, _) =
        call(reqwest::Method::POST, &format!("{base}/v1/workspaces"), KEY, Some(json!({ "name": "Fn" }))).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (_, key, _) =
        call(reqwest::Method::POST, &format!("{base}/v1/workspaces/{ws}/api-keys"), KEY, Some(json!({ "name": "k" })))
            .await;
    let key = key["key"].as_str().unwrap().to_owned();

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("RUST_LOG", "warn"),
    ];
    let front = HttpFront::start(env!("CARGO_BIN_EXE_dialect-backlink-outreach"), &env).await;
    let p = format!("{}/api/v1/backlink-outreach", front.url);

    let (s, b, _) = call(reqwest::Method::GET, &format!("{p}/campaigns"), "nope", None).await;
    assert_eq!((s, b), (401, json!({ "detail": "Not authenticated" })));
    let (s, c, _) = call(
        reqwest::Method::POST,
        &format!("{p}/campaigns"),
        &key,
        Some(json!({ "name": "Fn campaign", "keywords": ["k"] })),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let cid = c["campaign_id"].as_str().unwrap().to_owned();
    let (s, e, _) = call(reqwest::Method::POST, &format!("{p}/campaigns"), &key, Some(json!({}))).await;
    assert_eq!((s, e["detail"][0]["loc"].clone()), (422, json!(["body", "name"])), "{e}");
    let lead = json!({ "website_url": "https://engineering-blog.com", "contact_email": "marina@engineering-blog.com", "quality_score": 0.5 });
    let (s, l, _) = call(reqwest::Method::POST, &format!("{p}/campaigns/{cid}/leads"), &key, Some(lead)).await;
    assert_eq!((s, l["status"].as_str()), (201, Some("discovered")), "{l}");
    let bulk = json!([{ "website_url": "https://devleadweekly.com" }, { "website_url": "engineering-blog.com" }]);
    let (s, b, _) = call(reqwest::Method::POST, &format!("{p}/campaigns/{cid}/leads/bulk"), &key, Some(bulk)).await;
    assert_eq!((s, b), (200, json!({ "added": 1, "skipped": 1, "failed": [] })));
    let lid = l["lead_id"].as_str().unwrap();
    let (s, l, _) = call(
        reqwest::Method::PATCH,
        &format!("{p}/campaigns/{cid}/leads/{lid}/status"),
        &key,
        Some(json!({ "status": "placed" })),
    )
    .await;
    assert_eq!((s, l["status"].as_str()), (200, Some("placed")), "{l}");
    // The peer code's prefix, and the campaign with its leads.
    let alt = format!("{}/api/backlink-outreach", front.url);
    let (s, got, _) = call(reqwest::Method::GET, &format!("{alt}/campaigns/{cid}"), &key, None).await;
    assert_eq!((s, got["leads"].as_array().map(Vec::len)), (200, Some(2)), "{got}");
    let (s, csv, ct) = call(reqwest::Method::GET, &format!("{p}/campaigns/{cid}/export/leads"), &key, None).await;
    assert_eq!((s, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(csv.as_str().unwrap().matches("\r\n").count(), 3, "{csv}");
    let (s, _, _) = call(reqwest::Method::GET, &format!("{p}/campaigns/cmp_nope"), &key, None).await;
    assert_eq!(s, 404);
    let (s, doc, _) = call(reqwest::Method::GET, &format!("{p}/openapi.json"), &key, None).await;
    assert_eq!((s, doc["openapi"].as_str()), (200, Some("3.1.0")));
    let (s, _, _) = call(reqwest::Method::DELETE, &format!("{p}/campaigns/{cid}"), &key, None).await;
    assert_eq!(s, 204);
    // /v1 sees what the dialect made: the relationship is at LINK_PLACED.
    let (_, rel, _) =
        call(reqwest::Method::GET, &format!("{base}/v1/link-building/crm/relationship/{lid}"), &key, None).await;
    assert_eq!(rel["status"], "LINK_PLACED", "{rel}");
    server.abort();
}
