//! Every write path meets a busy store: with each write (transaction or single item) failing as DynamoDB fails one that
//! met another on the same items (a conflict), or every read throttled, each endpoint answers a
//! documented problem (409 to retry, 503 with Retry-After), never a 500, and leaves nothing
//! half-written. The embedded store never conflicts by itself; the fault-injecting wrapper makes it.

use axum::body::Body;
use axum::http::{Method, Request};
use linkcrm_storage::fault::{self, Call, FaultyStore};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_store_faults_key";

struct Api {
    router: axum::Router,
    ws: String,
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (u16, Value, Option<String>) {
        let mut req = Request::builder().method(method).uri(uri).header("Authorization", format!("Bearer {KEY}"));
        if !self.ws.is_empty() {
            req = req.header("X-Workspace-Id", &self.ws);
        }
        let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), retry)
    }

    async fn ok(&self, method: Method, uri: &str, body: Option<Value>, want: u16) -> Value {
        let (status, body, _) = self.call(method, uri, body).await;
        assert_eq!(status, want, "{uri}: {body}");
        body
    }
}

/// What the workspace reads: its relationships, contacts, mailboxes, suppressions, invocations
/// and events.
async fn snapshot(api: &Api) -> Vec<Value> {
    let mut all = Vec::new();
    for uri in [REL, CT, "/v1/mailboxes", "/v1/suppression", "/v1/agent/invocations", "/v1/link-building/crm/event"] {
        all.push(api.ok(Method::GET, uri, None, 200).await);
    }
    all
}

/// An embedded store behind the fault-injecting wrapper, with the agency of `KEY` in it (the
/// directory lives as long as the first value).
async fn faulty_store() -> (tempfile::TempDir, Arc<FaultyStore>, linkcrm_storage::DynStore) {
    let dir = tempfile::tempdir().unwrap();
    let embedded: linkcrm_storage::DynStore =
        Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let store = FaultyStore::new(embedded);
    let dyn_store: linkcrm_storage::DynStore = store.clone();
    linkcrm_api::platform::create_agency(&dyn_store, "Faults", Some(KEY.into())).await.unwrap();
    (dir, store, dyn_store)
}

const REL: &str = "/v1/link-building/crm/relationship";
const CT: &str = "/v1/link-building/crm/contact";

#[tokio::test]
async fn a_conflicting_or_throttled_store_never_gives_a_500_nor_half_a_change() {
    let (_dir, store, dyn_store) = faulty_store().await;
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(dyn_store, config).await.unwrap();
    let mut api = Api { router: linkcrm_api::router(&app), ws: String::new() };

    // A workspace with something in it (no faults yet).
    let ws = api.ok(Method::POST, "/v1/workspaces", Some(json!({"name": "Acme"})), 201).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    api.ok(Method::POST, &format!("/v1/workspaces/{ws}/credits"), Some(json!({"credits": 20})), 201).await;
    api.ws = ws.clone();
    let rel = api.ok(Method::POST, REL, Some(json!({"domain": "engineering-blog.com"})), 201).await;
    let (rel, acct) = (rel["id"].as_str().unwrap().to_owned(), rel["accountId"].as_str().unwrap().to_owned());
    let contact =
        api.ok(Method::POST, CT, Some(json!({"accountId": acct, "email": "marina@engineering-blog.com"})), 201).await;
    let contact = contact["id"].as_str().unwrap().to_owned();
    let mbx = json!({"fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1"});
    let mbx = api.ok(Method::POST, "/v1/mailboxes", Some(mbx), 201).await;
    let mbx = mbx["id"].as_str().unwrap().to_owned();
    let send = json!({"contactId": contact, "subject": "Hello", "body": "Hi Marina"});
    let waiting = api.ok(Method::POST, &format!("{REL}/{rel}/send-email"), Some(send.clone()), 202).await;
    let waiting = waiting["invocationId"].as_str().or(waiting["id"].as_str()).unwrap().to_owned();

    let before = snapshot(&api).await;

    let raw = "From: Ed <ed@x.com>\r\nTo: dana@outreach.example.com\r\nSubject: Re: Hello\r\n\
               Message-ID: <faults-1@x.com>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\nSounds good.\r\n";
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, REL.into(), Some(json!({"domain": "devleadweekly.com"}))),
        (Method::PATCH, format!("{REL}/{rel}"), Some(json!({"priority": "HIGH"}))),
        (Method::PATCH, format!("{REL}/{rel}"), Some(json!({"status": "QUEUED"}))),
        (Method::DELETE, format!("{REL}/{rel}"), None),
        (
            Method::POST,
            "/v1/link-building/crm/event".into(),
            Some(json!({"relationshipId": rel, "type": "NOTE_ADDED", "content": "x"})),
        ),
        (
            Method::POST,
            "/v1/link-building/crm/event".into(),
            Some(json!({"relationshipId": rel, "type": "EMAIL_SENT", "subject": "hi"})),
        ),
        (Method::POST, CT.into(), Some(json!({"accountId": acct, "email": "ed@engineering-blog.com"}))),
        (Method::PATCH, format!("{CT}/{contact}"), Some(json!({"firstName": "Marina"}))),
        (Method::DELETE, format!("{CT}/{contact}"), None),
        (Method::PATCH, format!("/v1/link-building/crm/account/{acct}"), Some(json!({"priceLinkInsertion": 100}))),
        (
            Method::POST,
            format!("/v1/link-building/crm/account/{acct}/do-not-contact"),
            Some(json!({"reason": "asked"})),
        ),
        (Method::POST, format!("{CT}/discover"), Some(json!({"accountIds": [acct]}))),
        (Method::POST, format!("{REL}/{rel}/send-email"), Some(send)),
        (Method::POST, format!("/v1/agent/invocations/{waiting}/approve"), Some(json!({}))),
        (Method::POST, format!("/v1/agent/invocations/{waiting}/reject"), Some(json!({}))),
        (Method::POST, format!("/v1/agent/invocations/{waiting}/cancel"), Some(json!({}))),
        (
            Method::POST,
            "/v1/mailboxes".into(),
            Some(json!({"fromName": "Eve", "fromAddress": "eve@outreach.example.com", "smtpHost": "127.0.0.1"})),
        ),
        (Method::PATCH, format!("/v1/mailboxes/{mbx}"), Some(json!({"fromName": "Dana K"}))),
        (Method::DELETE, format!("/v1/mailboxes/{mbx}"), None),
        (Method::POST, "/v1/suppression".into(), Some(json!({"email": "quiet@devleadweekly.com"}))),
        (Method::POST, "/v1/link-building/inbound/email".into(), Some(json!({"raw": raw}))),
        (Method::POST, "/v1/workspaces".into(), Some(json!({"name": "Other"}))),
        (Method::PATCH, format!("/v1/workspaces/{ws}"), Some(json!({"name": "Acme PM"}))),
        (Method::POST, format!("/v1/workspaces/{ws}/api-keys"), Some(json!({"name": "k"}))),
        (Method::POST, format!("/v1/workspaces/{ws}/credits"), Some(json!({"credits": 5}))),
        (Method::PUT, format!("/v1/workspaces/{ws}/integrations/apollo"), Some(json!({"apiKey": "apollo-key-1234"}))),
        (Method::DELETE, format!("/v1/workspaces/{ws}"), None),
    ];

    // Every write conflicts (a transaction, or a single conditional write).
    for call in [Call::Transact, Call::Update, Call::Put, Call::Delete] {
        store.fail(call, fault::conflict(), None);
    }
    for (method, uri, body) in &writes {
        let (status, problem, _) = api.call(method.clone(), uri, body.clone()).await;
        assert_eq!(status, 409, "{method} {uri}: a conflict is answered 409 to retry: {problem}");
        assert!(problem["code"].is_string() && problem["requestId"].is_string(), "{method} {uri}: {problem}");
    }
    assert!(store.injected() >= writes.len(), "every write met the fault");
    store.clear();
    assert_eq!(snapshot(&api).await, before, "nothing was half-written");

    // Every read throttled: reads and writes alike are 503 with Retry-After.
    store.fail(Call::Get, fault::throttled(), None);
    store.fail(Call::Query, fault::throttled(), None);
    store.fail(Call::BatchGet, fault::throttled(), None);
    for (method, uri, body) in writes.iter().chain(&[(Method::GET, REL.to_owned(), None)]) {
        let (status, problem, retry) = api.call(method.clone(), uri, body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (503, Some("store_unavailable")), "{method} {uri}");
        assert_eq!(retry.as_deref(), Some("1"), "{method} {uri}");
    }
    store.clear();
    assert_eq!(snapshot(&api).await, before, "nothing was written while reads failed");
}

/// A Lambda function starts without waiting on the table (`App::starting`): when the server
/// secret cannot be read then, requests answer 503 with Retry-After (not a 500, not a panic) and
/// the first request after the store recovers is served, the secret read once and shared.
#[tokio::test]
async fn a_function_started_while_the_store_is_throttled_answers_503_then_recovers() {
    let (_dir, store, dyn_store) = faulty_store().await;
    store.fail(Call::Get, fault::throttled(), None);
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() };
    let app = linkcrm_core::App::starting(dyn_store, config, linkcrm_api::catalogue());
    let api = Api { router: linkcrm_api::router(&app), ws: String::new() };

    let (status, body, retry) = api.call(Method::GET, "/v1/workspaces", None).await;
    assert_eq!(
        (status, body["code"].as_str(), retry.as_deref()),
        (503, Some("store_unavailable"), Some("1")),
        "{body}"
    );
    let (status, body, _) = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, 503, "nothing is served before the secret is read: {body}");

    store.clear();
    let list = api.ok(Method::GET, "/v1/workspaces?limit=1", None, 200).await;
    assert!(list["data"].is_array(), "{list}");
    assert!(!app.server_secret().is_empty());
}

/// A create sent with an Idempotency-Key commits its answer in its own transaction: when the
/// process could write nothing more after that commit (here every later single-item write fails,
/// as for a process that died), a retry with the same key replays the answer instead of finding
/// the key in progress or creating a second record. One case per create that does so.
#[tokio::test]
async fn a_create_whose_answer_rode_in_its_transaction_is_replayed_after_a_crash() {
    let (_dir, store, dyn_store) = faulty_store().await;
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(dyn_store, config).await.unwrap();
    let router = linkcrm_api::router(&app);
    let mut api = Api { router: router.clone(), ws: String::new() };
    let ws = api.ok(Method::POST, "/v1/workspaces", Some(json!({"name": "Acme"})), 201).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    api.ws = ws.clone();
    let rel = api.ok(Method::POST, REL, Some(json!({"domain": "first.example"})), 201).await;
    let (rel, acct) = (rel["id"].as_str().unwrap().to_owned(), rel["accountId"].as_str().unwrap().to_owned());

    let keys_path = format!("/v1/workspaces/{ws}/api-keys");
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("relationship", REL, json!({"domain": "engineering-blog.com"}), REL),
        ("contact", CT, json!({"accountId": acct, "email": "marina@first.example"}), CT),
        (
            "event",
            "/v1/link-building/crm/event",
            json!({"relationshipId": rel, "type": "NOTE_ADDED", "content": "Called Marina"}),
            "/v1/link-building/crm/event",
        ),
        (
            "mailbox",
            "/v1/mailboxes",
            json!({"fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1"}),
            "/v1/mailboxes",
        ),
        ("suppression", "/v1/suppression", json!({"email": "no@first.example"}), "/v1/suppression"),
        ("workspace", "/v1/workspaces", json!({"name": "Beta"}), "/v1/workspaces"),
        ("api key", &keys_path, json!({"name": "ci"}), ""),
    ];
    for (what, path, body, list) in cases {
        let count = |api: &Api| {
            let api = Api { router: api.router.clone(), ws: api.ws.clone() };
            async move {
                if list.is_empty() {
                    return 0;
                }
                let page = api.ok(Method::GET, &format!("{list}?limit=200"), None, 200).await;
                page["data"].as_array().unwrap().len()
            }
        };
        let before = count(&api).await;
        let key = format!("crash-{}", what.replace(' ', "-"));
        // The key's `started` record is the first single-item write; every one after it fails.
        store.fail_after(1, Call::Put, fault::throttled(), None);
        let first = send(&router, &ws, &key, path, &body).await;
        store.clear();
        assert_eq!(first.0, 201, "{what}: {}", first.1);
        let again = send(&router, &ws, &key, path, &body).await;
        assert_eq!(again.0, 201, "{what}: the retry replays the committed answer: {}", again.1);
        assert_eq!(again.2.as_deref(), Some("true"), "{what}: Idempotent-Replayed");
        assert_eq!(first.1, again.1, "{what}: the same answer");
        assert_eq!(count(&api).await, before + usize::from(!list.is_empty()), "{what}: created once");
    }

    // Queued work: one invocation (one send, one discovery) however often the client retries.
    api.ok(Method::POST, &format!("/v1/workspaces/{ws}/credits"), Some(json!({"credits": 20})), 201).await;
    let contacts = api.ok(Method::GET, CT, None, 200).await;
    let contact = contacts["data"][0]["id"].as_str().unwrap().to_owned();
    let send_path = format!("{REL}/{rel}/send-email");
    let queued: Vec<(&str, &str, Value)> = vec![
        ("send", &send_path, json!({"contactId": contact, "subject": "Hello", "body": "Hi Marina"})),
        ("discover", "/v1/link-building/crm/contact/discover", json!({"accountIds": [acct], "roles": ["editor"]})),
    ];
    for (what, path, body) in queued {
        let before =
            api.ok(Method::GET, "/v1/agent/invocations?limit=200", None, 200).await["data"].as_array().unwrap().len();
        let key = format!("crash-{what}");
        store.fail_after(1, Call::Put, fault::throttled(), None);
        let first = send(&router, &ws, &key, path, &body).await;
        store.clear();
        assert_eq!(first.0, 202, "{what}: {}", first.1);
        let again = send(&router, &ws, &key, path, &body).await;
        assert_eq!((again.0, again.2.as_deref()), (202, Some("true")), "{what}: replayed: {}", again.1);
        assert_eq!(first.1, again.1, "{what}: the same answer");
        let after =
            api.ok(Method::GET, "/v1/agent/invocations?limit=200", None, 200).await["data"].as_array().unwrap().len();
        assert_eq!(after, before + 1, "{what}: one invocation");
    }
}

async fn send(router: &axum::Router, ws: &str, key: &str, path: &str, body: &Value) -> (u16, Value, Option<String>) {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("Authorization", format!("Bearer {KEY}"))
        .header("X-Workspace-Id", ws)
        .header("Idempotency-Key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), replayed)
}
