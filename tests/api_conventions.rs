//! Conventions every family shares: problem+json errors, request ids, idempotency, rate limits,
//! the OpenAPI document.

mod common;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(errors_are_problem_documents, |env| {
    let agency = env.agency();
    let r = agency.send(Method::POST, "/v1/workspaces", Some("{\"name\": ")).await;
    assert_eq!(r.problem(400, "invalid_request")["errors"][0]["code"], "malformed_json");
    let r = agency.send(Method::POST, "/v1/workspaces", Some("[1,2]")).await;
    r.problem(400, "invalid_request");
    // Any Content-Type (or none) is read as JSON, as the seeds' curl examples send.
    let r = agency
        .with_header("Content-Type", "text/plain")
        .send(Method::POST, "/v1/workspaces", Some("{\"name\":\"Plain\"}"))
        .await;
    r.ok(201);
    agency.get("/v1/nowhere").await.problem(404, "not_found");
    agency.send(Method::PUT, "/v1/workspaces", Some("{}")).await.problem(405, "method_not_allowed");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    agency.send(Method::POST, "/v1/workspaces", Some(&huge)).await.problem(413, "payload_too_large");
    agency.send(Method::GET, "/v1/workspaces", Some("{\"x\":1}")).await.problem(400, "invalid_request");
    agency.post("/v1/workspaces?name=x", json!({"name": "x"})).await.problem(400, "invalid_request");
    let over = json!({"name": "x".repeat(201)});
    assert_eq!(agency.post("/v1/workspaces", over).await.problem(400, "invalid_request")["errors"][0]["field"], "name");
    // Every response, good or bad, carries a request id.
    for path in ["/v1/workspaces", "/openapi.json", "/healthz", "/v1/nowhere"] {
        let r = agency.get(path).await;
        assert!(r.header("x-request-id").is_some_and(|id| id.starts_with("req_")), "{path}");
    }
});

on_both_backends!(idempotent_retries_return_the_first_response, |env| {
    let agency = env.agency().with_header("Idempotency-Key", "create-acme-1");
    let first = agency.post("/v1/workspaces", json!({"name": "Acme"})).await;
    let id = first.ok(201)["id"].clone();
    let again = agency.post("/v1/workspaces", json!({"name": "Acme"})).await;
    assert_eq!(again.ok(201)["id"], id, "the retry gets the first response");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // Same JSON, other spacing and order: still the same request.
    let respaced = agency.send(Method::POST, "/v1/workspaces", Some("{ \"name\" :  \"Acme\" }")).await;
    assert_eq!(respaced.ok(201)["id"], id);
    // Same key, other body: refused.
    agency.post("/v1/workspaces", json!({"name": "Other"})).await.problem(409, "idempotency_key_reused");
    // The key is the caller's own: another agency may use the same string.
    env.other_agency()
        .with_header("Idempotency-Key", "create-acme-1")
        .post("/v1/workspaces", json!({"name": "Theirs"}))
        .await
        .ok(201);
    assert_eq!(env.agency().get("/v1/workspaces").await.ok(200)["total"], 1);
    // A replayed client error stays the same error.
    let bad = env.agency().with_header("Idempotency-Key", "bad-1");
    bad.post("/v1/workspaces", json!({"name": ""})).await.problem(400, "invalid_request");
    let r = bad.post("/v1/workspaces", json!({"name": ""})).await;
    r.problem(400, "invalid_request");
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    env.agency()
        .with_header("Idempotency-Key", "")
        .post("/v1/workspaces", json!({"name": "x"}))
        .await
        .problem(400, "invalid_request");
    // DELETE and PATCH honour it too.
    let ws = id.as_str().unwrap();
    let patcher = env.agency().with_header("Idempotency-Key", "rename-1");
    assert_eq!(
        patcher.patch(&format!("/v1/workspaces/{ws}"), json!({"name": "Renamed"})).await.header("etag"),
        Some("\"2\"")
    );
    assert_eq!(
        patcher.patch(&format!("/v1/workspaces/{ws}"), json!({"name": "Renamed"})).await.header("etag"),
        Some("\"2\"")
    );
    assert_eq!(
        env.agency().get(&format!("/v1/workspaces/{ws}")).await.header("etag"),
        Some("\"2\""),
        "the replay did not patch again"
    );
});

on_both_backends!(concurrent_duplicates_run_once, |env| {
    let agency = env.agency().with_header("Idempotency-Key", "burst-1");
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let a = agency.clone();
        tasks.push(tokio::spawn(async move { a.post("/v1/workspaces", json!({"name": "Burst"})).await }));
    }
    let mut created_ids = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => {
                created_ids.insert(r.body["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(r.body["code"], "idempotency_in_progress"),
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(created_ids.len(), 1, "every success is the same workspace");
    assert_eq!(env.agency().get("/v1/workspaces").await.ok(200)["total"], 1, "it ran once");
});

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let env = Env::start_with(Backend::Embedded, &[("LINKCRM_RATE_LIMIT", "1"), ("LINKCRM_RATE_BURST", "3")]).await;
    let agency = env.agency();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(agency.get("/v1/workspaces").await);
    }
    assert!(statuses[..3].iter().all(|r| r.status == 200));
    let limited = statuses.last().unwrap();
    limited.problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // Limits are per key: another key is not affected.
    env.other_agency().get("/v1/workspaces").await.ok(200);
}

#[tokio::test]
async fn openapi_documents_every_operation() {
    let env = Env::start(Backend::Embedded).await;
    let doc = env.anonymous().get("/openapi.json").await;
    let doc = doc.ok(200);
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("post", "/v1/workspaces", "workspaces.create"),
        ("get", "/v1/workspaces", "workspaces.list"),
        ("get", "/v1/workspaces/{id}", "workspaces.get"),
        ("patch", "/v1/workspaces/{id}", "workspaces.update"),
        ("delete", "/v1/workspaces/{id}", "workspaces.archive"),
        ("get", "/v1/workspace", "workspaces.current"),
        ("get", "/v1/agent/invocations", "agent.invocations.list"),
        ("get", "/v1/agent/invocations/{id}", "agent.invocations.get"),
        ("post", "/v1/agent/invocations/{id}/cancel", "agent.invocations.cancel"),
        ("post", "/v1/link-building/crm/contact/discover", "link_building.crm.contact.discover"),
        ("post", "/v1/agent/invocations/{id}/approve", "agent.invocations.approve"),
        ("post", "/v1/agent/invocations/{id}/reject", "agent.invocations.reject"),
        ("get", "/v1/agent/approvals", "agent.approvals.list"),
        ("get", "/v1/agent/approvals/{approvalId}", "agent.approvals.get"),
        ("post", "/v1/link-building/crm/relationship/{id}/send-email", "link_building.crm.relationship.send_email"),
        ("post", "/v1/workspaces/{id}/api-keys", "workspaces.api_keys.create"),
        ("get", "/v1/workspaces/{id}/api-keys", "workspaces.api_keys.list"),
        ("delete", "/v1/workspaces/{id}/api-keys/{keyId}", "workspaces.api_keys.revoke"),
        ("post", "/v1/link-building/inbound/email", "link_building.inbound.receive"),
        ("get", "/v1/link-building/inbound", "link_building.inbound.list"),
        ("get", "/v1/link-building/inbound/{id}", "link_building.inbound.get"),
        ("post", "/v1/link-building/inbound/{id}/assign", "link_building.inbound.assign"),
        ("post", "/v1/policy/validate", "policy.validate"),
        ("post", "/v1/workspaces/{id}/credits", "workspaces.credits.grant"),
        ("get", "/v1/workspaces/{id}/usage", "workspaces.usage"),
        ("post", "/v1/suppression", "suppression.add"),
        ("get", "/v1/suppression", "suppression.list"),
        ("delete", "/v1/suppression", "suppression.remove"),
        ("post", "/v1/mailboxes", "mailboxes.create"),
        ("get", "/v1/mailboxes", "mailboxes.list"),
        ("get", "/v1/mailboxes/{id}", "mailboxes.get"),
        ("patch", "/v1/mailboxes/{id}", "mailboxes.update"),
        ("delete", "/v1/mailboxes/{id}", "mailboxes.delete"),
        ("put", "/v1/workspaces/{id}/integrations/apollo", "workspaces.integrations.apollo.set"),
        ("get", "/v1/workspaces/{id}/integrations/apollo", "workspaces.integrations.apollo.get"),
        ("delete", "/v1/workspaces/{id}/integrations/apollo", "workspaces.integrations.apollo.remove"),
    ];
    // Seed 000's CRM family, every endpoint of it.
    let crm = [
        ("get", "/v1/link-building/crm/account"),
        ("get", "/v1/link-building/crm/account/{id}"),
        ("patch", "/v1/link-building/crm/account/{id}"),
        ("get", "/v1/link-building/crm/account/{id}/history"),
        ("post", "/v1/link-building/crm/account/{id}/do-not-contact"),
        ("get", "/v1/link-building/crm/contact"),
        ("get", "/v1/link-building/crm/contact/{id}"),
        ("post", "/v1/link-building/crm/contact"),
        ("patch", "/v1/link-building/crm/contact/{id}"),
        ("delete", "/v1/link-building/crm/contact/{id}"),
        ("post", "/v1/link-building/crm/contact/discover"),
        ("get", "/v1/link-building/crm/relationship"),
        ("get", "/v1/link-building/crm/relationship/{id}"),
        ("post", "/v1/link-building/crm/relationship"),
        ("patch", "/v1/link-building/crm/relationship/{id}"),
        ("delete", "/v1/link-building/crm/relationship/{id}"),
        ("get", "/v1/link-building/crm/event"),
        ("get", "/v1/link-building/crm/event/{id}"),
        ("post", "/v1/link-building/crm/event"),
    ];
    for (method, path) in crm {
        let op = &doc["paths"][path][method];
        assert!(
            op["operationId"].as_str().is_some_and(|n| n.starts_with("link_building.crm.")),
            "{method} {path} is documented"
        );
    }
    let rel_params = doc["paths"]["/v1/link-building/crm/relationship"]["get"]["parameters"].as_array().unwrap();
    for p in ["status", "priority", "accountId", "domain", "source", "since", "includeArchived", "limit", "cursor"] {
        assert!(rel_params.iter().any(|x| x["name"] == p), "relationship list parameter {p}");
    }
    for (method, path, name) in expected {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], name, "{method} {path}");
        assert!(op["responses"]["400"]["content"]["application/problem+json"].is_object());
    }
    // The documented success status is the one the operation answers with.
    for (method, path, status) in [
        ("post", "/v1/link-building/crm/relationship/{id}/send-email", "202"),
        ("post", "/v1/link-building/crm/contact/discover", "202"),
        ("post", "/v1/policy/validate", "200"),
        ("post", "/v1/agent/invocations/{id}/approve", "200"),
        ("post", "/v1/agent/invocations/{id}/cancel", "200"),
        ("post", "/v1/link-building/crm/relationship", "201"),
        ("get", "/v1/agent/invocations/{id}", "200"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(responses[status].is_object(), "{method} {path} documents {status}: {responses}");
    }
    // Query parameters come from the input types; bodies reference component schemas that exist.
    let params = doc["paths"]["/v1/workspaces"]["get"]["parameters"].as_array().unwrap();
    for p in ["tag", "active", "limit", "cursor"] {
        assert!(params.iter().any(|x| x["name"] == p && x["in"] == "query"), "{p}");
    }
    let body_ref = doc["paths"]["/v1/workspaces/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
        ["$ref"]
        .as_str()
        .unwrap();
    let name = body_ref.rsplit('/').next().unwrap();
    let schema = &doc["components"]["schemas"][name];
    assert!(schema["properties"]["settings"].is_object());
    assert!(schema["properties"].get("id").is_none(), "path parameters are not body fields");
    let text = serde_json::to_string(doc).unwrap();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let target = r.split('"').next().unwrap();
        assert!(doc["components"]["schemas"].get(target).is_some_and(Value::is_object), "dangling $ref {target}");
    }
    let docs = env.anonymous().get("/docs").await;
    assert!(docs.text.contains("/openapi.json"));
}
