//! REST is a thin door over the executor: for every route of the table, an invalid input sent as
//! HTTP and the same input given to `executor::execute` come back as the same problem; and for a
//! read of each endpoint family, a valid input gives the same status, body and version both ways.

use axum::body::Body;
use axum::http::{Method, Request};
use linkcrm_api::catalogue::Family;
use linkcrm_api::executor::{self, Call};
use linkcrm_api::routes::V1;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_executor_parity_key";

struct World {
    app: Arc<linkcrm_api::App>,
    router: axum::Router,
    ws: String,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: linkcrm_storage::DynStore =
            Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
        linkcrm_api::platform::create_agency(&store, "Parity agency", Some(KEY.into())).await.unwrap();
        let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
        let app = linkcrm_api::app(store, config).await.unwrap();
        let mut w = World { router: linkcrm_api::router(&app), app, ws: String::new(), _dir: dir };
        let (status, body, _) = w.http(Method::POST, "/v1/workspaces", Some(json!({ "name": "Acme" }))).await;
        assert_eq!(status, 201, "{body}");
        w.ws = body["id"].as_str().unwrap().to_owned();
        w
    }

    /// (status, body, ETag) of one request with the agency key in the workspace.
    async fn http(&self, method: Method, uri: &str, body: Option<Value>) -> (u16, Value, Option<String>) {
        let mut req = Request::builder().method(method).uri(uri).header("Authorization", format!("Bearer {KEY}"));
        if !self.ws.is_empty() {
            req = req.header("X-Workspace-Id", &self.ws);
        }
        let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let etag = resp.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), etag)
    }

    fn call(&self) -> Call {
        Call::with_key(KEY).in_workspace(&self.ws)
    }
}

/// A problem document without what differs per request.
fn problem(mut body: Value) -> Value {
    body.as_object_mut().expect("a problem document").remove("requestId");
    body
}

#[tokio::test]
async fn every_route_answers_an_invalid_input_as_the_executor_does() {
    let w = World::new().await;
    for route in V1 {
        // Path parameters that are no id of any kind, and a field no input has.
        let mut input = Map::new();
        let uri = if route.verb.has_body() {
            input.insert("zzNotAField".into(), json!(1));
            route.path.to_owned()
        } else {
            input.insert("zzNotAField".into(), json!("1"));
            format!("{}?zzNotAField=1", route.path)
        };
        let mut uri = uri;
        for p in route.path_params() {
            uri = uri.replace(&format!("{{{p}}}"), "not-an-id");
            input.insert(p.into(), json!("not-an-id"));
        }
        let body = route.verb.has_body().then(|| json!({ "zzNotAField": 1 }));
        let (status, rest, _) = w.http(route.verb.method(), &uri, body).await;
        let err = match executor::execute(&w.app, route.operation, &w.call(), Value::Object(input)).await {
            Ok(o) => panic!("{}: the executor accepted an invalid input ({})", route.operation, o.response.status),
            Err(e) => e,
        };
        assert_eq!(status, err.status.as_u16(), "{} {}: {rest}", route.verb.as_str(), route.path);
        assert_eq!(status, 400, "{} {}: {rest}", route.verb.as_str(), route.path);
        assert_eq!(problem(rest), problem(err.body("x")), "{} {}", route.verb.as_str(), route.path);
    }
}

#[tokio::test]
async fn a_valid_read_of_each_family_answers_the_same_both_ways() {
    let w = World::new().await;
    let reads = [
        ("link_building.crm.relationship.list", "/v1/link-building/crm/relationship", Family::Crm),
        ("mailboxes.list", "/v1/mailboxes", Family::Outreach),
        ("agent.invocations.list", "/v1/agent/invocations", Family::Agent),
        ("workspaces.current", "/v1/workspace", Family::Workspaces),
        ("link_building.campaign.list", "/v1/link-building/campaign", Family::Campaigns),
        ("link_building.inbound.eval_gate.list", "/v1/link-building/inbound/eval-gates", Family::Inbound),
        ("webhooks.list", "/v1/webhooks", Family::Webhooks),
        ("audit.list", "/v1/audit", Family::Agency),
        ("link_building.links.list", "/v1/link-building/links", Family::Links),
    ];
    let mut families: Vec<Family> = reads.iter().map(|r| r.2).collect();
    families.sort();
    families.dedup();
    assert_eq!(families, Family::ALL.to_vec(), "one read per family");
    for (name, uri, family) in reads {
        assert_eq!(w.app.operation(name).unwrap().family, family, "{name}");
        let (status, body, etag) = w.http(Method::GET, uri, None).await;
        let out = executor::execute(&w.app, name, &w.call(), json!({})).await.unwrap();
        assert_eq!(status, out.response.status.as_u16(), "{name}");
        assert_eq!(Some(body), out.response.body, "{name}");
        assert_eq!(etag, out.response.version.map(|v| format!("\"{v}\"")), "{name}");
        assert!(!out.replayed);
    }
}

#[tokio::test]
async fn the_executor_checks_the_key_scope_and_workspace_before_the_input() {
    let w = World::new().await;
    let bad_key = Call::with_key("sk_live_nope").in_workspace(&w.ws);
    let e = executor::execute(&w.app, "mailboxes.list", &bad_key, json!({ "zz": 1 })).await.err().unwrap();
    assert_eq!((e.status.as_u16(), e.code), (401, "unauthorized"));
    let no_ws = Call::with_key(KEY);
    let e = executor::execute(&w.app, "mailboxes.list", &no_ws, json!({})).await.err().unwrap();
    assert_eq!((e.status.as_u16(), e.code), (400, "workspace_required"));
    let e = executor::execute(&w.app, "no.such.operation", &w.call(), json!({})).await.err().unwrap();
    assert_eq!((e.status.as_u16(), e.code), (404, "unknown_operation"));
}

#[tokio::test]
async fn an_idempotency_key_replays_through_the_executor_as_through_rest() {
    let w = World::new().await;
    let mut call = w.call();
    call.idempotency_key = Ok(Some("parity-1".into()));
    let input = json!({ "domain": "engineering-blog.com", "priority": "HIGH" });
    let first = executor::execute(&w.app, "link_building.crm.relationship.create", &call, input).await.unwrap();
    assert_eq!(first.response.status.as_u16(), 201);
    assert!(!first.replayed);
    // Key order does not make it another request.
    let input = json!({ "priority": "HIGH", "domain": "engineering-blog.com" });
    let again = executor::execute(&w.app, "link_building.crm.relationship.create", &call, input).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.response.body, first.response.body);
    let other = json!({ "domain": "devleadweekly.com" });
    let e = executor::execute(&w.app, "link_building.crm.relationship.create", &call, other).await.err().unwrap();
    assert_eq!((e.status.as_u16(), e.code), (409, "idempotency_key_reused"));
}
