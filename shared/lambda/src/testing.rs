//! The check every API function's test runs: the real binary, under a fake Lambda Runtime API,
//! given API Gateway HTTP API (2.0) events, over DynamoDB on moto. It serves every route of its
//! family, no route of another, and answers a real read of its family.

use linkcrm_api::catalogue::Family;
use linkcrm_api::executor::{self, Call};
use linkcrm_api::routes::V1;
use linkcrm_testkit::lambda::{http_api_event, invoke};
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "sk_live_agency_family_function_check";

/// A read of each family, served by its function: (operation, path).
fn read_of(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Crm => ("link_building.crm.relationship.list", "/v1/link-building/crm/relationship"),
        Family::Outreach => ("mailboxes.list", "/v1/mailboxes"),
        Family::Agent => ("agent.invocations.list", "/v1/agent/invocations"),
        Family::Workspaces => ("workspaces.current", "/v1/workspace"),
        Family::Campaigns => ("link_building.campaign.list", "/v1/link-building/campaign"),
        Family::Inbound => ("link_building.inbound.eval_gate.list", "/v1/link-building/inbound/eval-gates"),
        Family::Webhooks => ("webhooks.list", "/v1/webhooks"),
        Family::Agency => ("audit.list", "/v1/audit"),
        Family::Links => ("link_building.links.list", "/v1/link-building/links"),
    }
}

pub struct Function {
    bin: String,
    endpoint: String,
    table: String,
    pub workspace: String,
}

/// The answer of one invocation: status, headers, body (JSON, or the text as a string).
pub struct Answer {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
}

impl Function {
    /// A table on moto with an agency (key [`KEY`]) and one workspace, for `bin`.
    pub async fn start(bin: &str) -> Function {
        let endpoint = linkcrm_testkit::Moto::shared().expect("moto server").endpoint().to_owned();
        let table = linkcrm_testkit::unique_table_name("api-fn");
        let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&endpoint, &table);
        store.create_table().await.unwrap();
        let store: linkcrm_storage::DynStore = Arc::new(store);
        linkcrm_api::platform::create_agency(&store, "Agency", Some(KEY.into())).await.unwrap();
        let app = linkcrm_api::app(store, linkcrm_api::Config::default()).await.unwrap();
        let ws = executor::execute(&app, "workspaces.create", &Call::with_key(KEY), json!({ "name": "Acme" }))
            .await
            .unwrap();
        let workspace = ws.response.body.unwrap()["id"].as_str().unwrap().to_owned();
        Function { bin: bin.to_owned(), endpoint, table, workspace }
    }

    /// Invokes the binary once with `method path?query` (with the key and workspace when `auth`).
    pub async fn request(&self, method: &str, path: &str, query: &str, auth: bool) -> Answer {
        self.request_with(method, path, query, auth, &[]).await
    }

    /// As [`Function::request`], with more environment for the function.
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        query: &str,
        auth: bool,
        more_env: &[(&str, &str)],
    ) -> Answer {
        let bearer = format!("Bearer {KEY}");
        let mut headers = vec![("user-agent", "linkcrm-test")];
        if auth {
            headers.push(("authorization", bearer.as_str()));
            headers.push(("x-workspace-id", self.workspace.as_str()));
        }
        let body = matches!(method, "POST" | "PATCH" | "PUT").then_some("{}");
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("LINKCRM_TABLE", self.table.as_str()),
            ("RUST_LOG", "warn"),
        ];
        env.extend_from_slice(more_env);
        let answer = invoke(&self.bin, &env, http_api_event(method, path, query, &headers, body)).await;
        let text = answer["body"].as_str().unwrap_or_default();
        Answer {
            status: answer["statusCode"].as_u64().expect("a statusCode") as u16,
            headers: answer["headers"].clone(),
            body: serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        }
    }
}

/// Runs the whole check for the function of `family`.
pub async fn check_family_function(bin: &str, family: Family) {
    let f = Function::start(bin).await;
    let app_catalogue = linkcrm_api::catalogue();
    let family_of =
        |name: &str| app_catalogue.iter().find(|op| op.name == name).map(|op| op.family).expect("a catalogued route");
    let concrete =
        |path: &str| path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
    // Each route of the family reaches the executor (which wants a key); one route of every other
    // family is not served here (its path is unknown to this function). A route of another family
    // that a path template of this one also matches (`/inbound/settings` and `/inbound/{id}`) is
    // not tried: API Gateway picks the more specific route, so this function never sees it.
    let matches = |template: &str, path: &str| {
        let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
    };
    let shadowed = |path: &str| V1.iter().any(|r| family_of(r.operation) == family && matches(r.path, &concrete(path)));
    let mut others = std::collections::HashSet::new();
    for route in V1 {
        let own = family_of(route.operation) == family;
        if !own && (shadowed(route.path) || !others.insert(family_of(route.operation))) {
            continue;
        }
        let a = f.request(route.verb.as_str(), &concrete(route.path), "", false).await;
        let (want, code) = if own { (401, "unauthorized") } else { (404, "not_found") };
        assert_eq!((a.status, a.body["code"].as_str()), (want, Some(code)), "{} {}", route.verb.as_str(), route.path);
        assert!(a.headers["x-request-id"].as_str().is_some_and(|id| id.starts_with("req_")), "a request id");
    }
    // A real read of the family, through DynamoDB.
    let (name, path) = read_of(family);
    let a = f.request("GET", path, "", true).await;
    assert_eq!(a.status, 200, "{name}: {}", a.body);
    assert!(a.body.is_object(), "{name}: {}", a.body);
    match family {
        Family::Workspaces => {
            assert_eq!(a.body["id"], f.workspace.as_str());
            let doc = f.request("GET", "/openapi.json", "", false).await;
            assert_eq!(doc.status, 200);
            assert_eq!(doc.body["paths"].as_object().map(|p| p.is_empty()), Some(false));
            // The catch-all route: an unknown path is a problem document, not API Gateway's.
            let unknown = f.request("GET", "/nowhere", "", false).await;
            assert_eq!((unknown.status, unknown.body["code"].as_str()), (404, Some("not_found")));
        }
        Family::Outreach => {
            let page = f.request("GET", "/v1/unsubscribe/not-a-token", "", false).await;
            assert_eq!(page.status, 404);
            assert!(page.body.as_str().is_some_and(|html| html.contains("not valid")), "{}", page.body);
        }
        Family::Campaigns => {
            let doc = f.request("GET", "/openapi.json", "", false).await;
            assert_eq!(doc.status, 404, "the document is the workspaces function's");
            check_export_parts(&f).await;
        }
        Family::Crm | Family::Agent | Family::Inbound | Family::Webhooks | Family::Agency | Family::Links => {
            let doc = f.request("GET", "/openapi.json", "", false).await;
            assert_eq!(doc.status, 404, "the document is the workspaces function's");
        }
    }
}

/// Behind API Gateway a campaign export comes in parts (here of one row), each its own response
/// with `Link: <…>; rel="next"` to the rest; the parts together are the whole file.
async fn check_export_parts(f: &Function) {
    let store: linkcrm_storage::DynStore =
        Arc::new(linkcrm_storage::dynamo::DynamoStore::for_endpoint(&f.endpoint, &f.table));
    let app = linkcrm_api::app(store, linkcrm_api::Config::default()).await.unwrap();
    let call = Call::with_key(KEY).in_workspace(f.workspace.clone());
    let mut rels = Vec::new();
    for d in ["part-one.example", "part-two.example"] {
        let r = executor::execute(&app, "link_building.crm.relationship.create", &call, json!({ "domain": d }))
            .await
            .unwrap();
        rels.push(r.response.body.unwrap()["id"].as_str().unwrap().to_owned());
    }
    let c = executor::execute(
        &app,
        "link_building.campaign.create",
        &call,
        json!({ "type": "custom", "name": "Parts", "relationshipIds": rels }),
    )
    .await
    .unwrap();
    let id = c.response.body.unwrap()["id"].as_str().unwrap().to_owned();
    let small = [("LINKCRM_EXPORT_MAX_BYTES", "1"), ("LINKCRM_EXPORT_PAGE_ROWS", "1")];
    let mut path = format!("/v1/link-building/campaign/{id}/export/relationships");
    let mut query = String::new();
    let mut text = String::new();
    let mut parts = 0;
    loop {
        let a = f.request_with("GET", &path, &query, true, &small).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.headers["content-type"].as_str(), Some("text/csv; charset=utf-8; header=present"));
        text.push_str(a.body.as_str().unwrap_or_default());
        parts += 1;
        let Some(link) = a.headers["link"].as_str() else { break };
        let target = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
        let (p, q) = target.split_once('?').unwrap();
        (path, query) = (p.to_owned(), q.to_owned());
        assert!(parts < 10, "the parts end");
    }
    assert!(parts >= 2, "in parts: {parts}");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "a header and both partners: {text}");
    assert!(lines[0].starts_with("domain,relationship_id"));
    assert!(text.contains("part-one.example") && text.contains("part-two.example"));
}
