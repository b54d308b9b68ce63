//! The MCP door's tools match the catalogue and the OpenAPI document: every operation is a tool
//! for a key with every scope, every name fits what clients accept, and every tool's input schema
//! is the operation's (the OpenAPI document's path, query and body fields, the same schemas),
//! inlined, plus `workspace` and, on writes, `idempotencyKey`.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_mcp_catalogue_key";

async fn rpc(router: &axum::Router, body: Value) -> Value {
    let req = Request::builder()
        .method("POST")
        .uri("/mcp")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().find(|l| l.starts_with("data:") && l.len() > 6).unwrap_or(&text);
    serde_json::from_str(line.trim_start_matches("data:")).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `v` with every `$ref` into `components.schemas` replaced by what it names (the keywords
/// beside a `$ref`, a field's own `description` or `default`, kept over the named schema's).
fn resolve(v: &Value, doc: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let name = r.trim_start_matches("#/components/schemas/");
                let mut out = resolve(&doc["components"]["schemas"][name], doc);
                if let Value::Object(o) = &mut out {
                    for (k, x) in m.iter().filter(|(k, _)| k.as_str() != "$ref") {
                        o.insert(k.clone(), resolve(x, doc));
                    }
                }
                return out;
            }
            Value::Object(m.iter().map(|(k, x)| (k.clone(), resolve(x, doc))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, doc)).collect()),
        other => other.clone(),
    }
}

fn has_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$ref") || m.values().any(has_ref),
        Value::Array(a) => a.iter().any(has_ref),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_a_tool_with_its_own_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store: linkcrm_storage::DynStore =
        Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
    let app = linkcrm_api::app(store, linkcrm_api::Config::default()).await.unwrap();
    let router = linkcrm_api::router(&app);
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "check", "version": "1" } } });
    assert_eq!(rpc(&router, init).await["result"]["serverInfo"]["name"], "linkcrm");
    let listed = rpc(&router, json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" })).await;
    let tools = listed["result"]["tools"].as_array().unwrap().clone();
    let by_name: std::collections::HashMap<&str, &Value> =
        tools.iter().map(|t| (t["name"].as_str().unwrap(), t)).collect();
    let name_rule = regex::Regex::new(r"^[a-zA-Z0-9_-]{1,64}$").unwrap();
    let doc: Value = serde_json::from_str(include_str!("../../../infra/openapi.json")).unwrap();
    let mut openapi_ops: std::collections::HashMap<String, Value> = Default::default();
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            if let Some(name) = op.get("x-linkcrm-operation").and_then(Value::as_str) {
                openapi_ops.insert(name.to_owned(), op.clone());
            }
        }
    }

    let catalogue = linkcrm_api::catalogue();
    assert_eq!(tools.len(), catalogue.len(), "one tool per operation");
    for spec in &catalogue {
        let name = linkcrm_mcp::tool_name(spec.name);
        assert!(name_rule.is_match(&name), "{name} breaks ^[a-zA-Z0-9_-]{{1,64}}$");
        let tool = by_name.get(name.as_str()).unwrap_or_else(|| panic!("{} is not in tools/list", spec.name));
        assert_eq!(tool["title"], spec.name);
        assert_eq!(tool["description"], spec.summary);
        let schema = &tool["inputSchema"];
        assert!(!has_ref(schema), "{name}: inputSchema has a $ref");
        assert_eq!(schema["type"], "object", "{name}");
        let mut props: Map<String, Value> = schema["properties"].as_object().cloned().unwrap_or_default();
        assert!(props.remove("workspace").is_some(), "{name}: no workspace argument");
        let write = spec.effect.writes();
        assert_eq!(props.remove("idempotencyKey").is_some(), write, "{name}: idempotencyKey on writes only");
        let ro = tool["annotations"]["readOnlyHint"].as_bool();
        assert_eq!(ro, Some(!write), "{name}: readOnlyHint");

        // The OpenAPI document's fields of the operation: path and query parameters, body properties.
        let op = openapi_ops.get(spec.name).unwrap_or_else(|| panic!("{} is not in the OpenAPI document", spec.name));
        let mut expected: Map<String, Value> = Map::new();
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["explode"] == true && p["schema"]["type"] == "object" {
                // An exploded object parameter is its properties, one query parameter each.
                for (k, v) in p["schema"]["properties"].as_object().into_iter().flatten() {
                    expected.insert(k.clone(), resolve(v, &doc));
                }
            } else if p["in"] == "path" || p["in"] == "query" {
                expected.insert(p["name"].as_str().unwrap().to_owned(), resolve(&p["schema"], &doc));
            }
        }
        let body = resolve(&op["requestBody"]["content"]["application/json"]["schema"], &doc);
        for (k, v) in body["properties"].as_object().into_iter().flatten() {
            expected.insert(k.clone(), v.clone());
        }
        let got: std::collections::BTreeSet<&String> = props.keys().collect();
        let want: std::collections::BTreeSet<&String> = expected.keys().collect();
        assert_eq!(got, want, "{name}: the tool's arguments are the operation's fields");
        for (k, v) in body["properties"].as_object().into_iter().flatten() {
            assert_eq!(&props[k], v, "{name}.{k}: the same schema as the OpenAPI body's");
        }
    }
}
