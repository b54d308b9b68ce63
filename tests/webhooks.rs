//! Webhooks end to end, on both backends: endpoints registered over the API, events committed by
//! ordinary requests, deliveries received by a real HTTP receiver that checks every signature with
//! the independent Standard Webhooks library (`infra/webhook_receiver.py`).

mod common;
use common::*;
use linkcrm_testkit::webhook_receiver::{Received, Receiver};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Plain http to the loopback receiver, and a short retry schedule: 4 attempts, 1 s apart.
const ENV: &[(&str, &str)] = &[("LINKCRM_WEBHOOK_ALLOW_HTTP", "true"), ("LINKCRM_WEBHOOK_RETRY_SCHEDULE", "1,1,1")];

macro_rules! webhook_test {
    ($name:ident, $envs:expr, |$env:ident| $body:block) => {
        mod $name {
            use super::*;
            #[allow(unused_mut)]
            async fn run(mut $env: common::Env) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                run(common::Env::start_with(common::Backend::Embedded, $envs).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                run(common::Env::start_with(common::Backend::Dynamo, $envs).await).await
            }
        }
    };
}

/// Registers `path` on the receiver for `events`, answering the webhook; its secret is given to
/// the receiver.
async fn register(api: &Api, rx: &Receiver, path: &str, events: Value) -> Value {
    let r = api.post("/v1/webhooks", json!({ "url": rx.url(path), "events": events })).await;
    let w = r.ok(201).clone();
    let secret = w["secret"].as_str().expect("the secret is shown on create");
    assert!(secret.starts_with("whsec_"), "{secret}");
    rx.secrets(path, &[secret]).await;
    w
}

async fn relate(api: &Api, domain: &str) -> String {
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
    r.ok(201)["id"].as_str().unwrap().to_owned()
}

async fn place_link(api: &Api, rel: &str) -> Value {
    let body = json!({ "relationshipId": rel, "type": "LINK_PLACED",
                       "metadata": { "linkUrl": "https://engineering-blog.com/best-pm-tools" } });
    api.post("/v1/link-building/crm/event", body).await.ok(201).clone()
}

/// Every delivery in `got` has the fields its type's schema (`GET /v1/webhooks/event-types`)
/// requires, in the envelope and in `data`.
async fn conform(api: &Api, got: &[Received]) {
    let types = api.get("/v1/webhooks/event-types").await.ok(200)["data"].as_array().unwrap().clone();
    for r in got {
        let t = r.body["type"].as_str().unwrap();
        let schema = &types.iter().find(|x| x["type"] == t).unwrap_or_else(|| panic!("{t} is listed"))["schema"];
        let required = |s: &Value| -> Vec<String> {
            s["required"].as_array().into_iter().flatten().map(|v| v.as_str().unwrap().to_owned()).collect()
        };
        for k in required(schema) {
            assert!(r.body.get(&k).is_some_and(|v| !v.is_null()), "{t}: no {k} in {}", r.body);
        }
        for k in required(&schema["properties"]["data"]) {
            assert!(r.body["data"].get(&k).is_some_and(|v| !v.is_null()), "{t}: no data.{k} in {}", r.body);
        }
    }
}

fn of_type<'a>(got: &'a [Received], t: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.body["type"] == t).collect()
}

webhook_test!(seed_use_case_c_placements_reach_only_the_subscribed_workspace, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let (ws_a, ws_b) = (agency.create_workspace("Client A").await, agency.create_workspace("Client B").await);
    let (a, b) = (agency.in_workspace(&ws_a), agency.in_workspace(&ws_b));

    // Seed 001, use case C, as written.
    let hook = register(&a, &rx, "/ok/a", json!(["link_building.link.placed"])).await;
    assert!(hook["id"].as_str().unwrap().starts_with("whk_"));
    assert_eq!(hook["events"], json!(["link_building.link.placed"]));
    assert_eq!(hook["active"], true);
    register(&b, &rx, "/ok/b1", json!(["link_building.link.placed"])).await;
    // Every event of B, to see that none of A's leak to it.
    register(&b, &rx, "/ok/b2", json!(["*"])).await;

    // Never shown again.
    let listed = a.get("/v1/webhooks").await;
    let data = listed.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1, "A sees its own webhook only");
    assert!(data[0].get("secret").is_none());
    let one = a.get(&format!("/v1/webhooks/{}", hook["id"].as_str().unwrap())).await;
    assert!(one.ok(200).get("secret").is_none());
    b.get(&format!("/v1/webhooks/{}", hook["id"].as_str().unwrap())).await.problem(404, "webhook_not_found");

    let rel = relate(&a, "engineering-blog.com").await;
    let event = place_link(&a, &rel).await;

    rx.wait_for("/ok/a", WAIT, |g| !g.is_empty()).await;
    // A moment for anything extra to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = rx.at("/ok/a").await;
    assert_eq!(got.len(), 1, "one event subscribed, one delivery: {got:#?}");
    let d = &got[0];
    assert!(d.verified, "signature: {:?}", d.error);
    assert_eq!(d.body["type"], "link_building.link.placed");
    assert_eq!(d.body["workspaceId"], ws_a.as_str());
    assert_eq!(d.body["data"]["relationshipId"], rel.as_str());
    assert_eq!(d.body["data"]["eventId"], event["id"]);
    assert_eq!(d.body["data"]["linkUrl"], "https://engineering-blog.com/best-pm-tools");
    assert_eq!(d.header("webhook-id"), d.body["id"].as_str(), "webhook-id is the event id");
    assert_eq!(d.header("linkcrm-event-type"), Some("link_building.link.placed"));
    assert_eq!(d.header("linkcrm-delivery-attempt"), Some("1"));
    assert_eq!(d.header("content-type"), Some("application/json"));
    let ts: i64 = d.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert!(d.header("webhook-signature").unwrap().starts_with("v1,"));

    assert!(rx.at("/ok/b1").await.is_empty(), "B's placement hook got A's event");
    assert!(
        rx.at("/ok/b2").await.iter().all(|r| r.body["workspaceId"] == ws_b.as_str()),
        "B's catch-all saw another workspace's event"
    );

    // The attempt is listed.
    let attempts = a.get(&format!("/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap())).await;
    let list = attempts.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "succeeded");
    assert_eq!(list[0]["responseStatusCode"], 200);
    assert_eq!(list[0]["attempt"], 1);
    assert_eq!(list[0]["eventType"], "link_building.link.placed");
    assert!(list[0]["messageId"].as_str().unwrap().starts_with("whmsg_"));
    assert!(list[0]["id"].as_str().unwrap().starts_with("whatt_"));
    assert_eq!(list[0]["nextAttemptAt"], Value::Null);
});

webhook_test!(registration_is_validated, ENV, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    let url = "https://hooks.our-portal.com/lb-placements";
    for (body, field) in [
        (json!({ "url": url, "events": ["link_building.link.nope"] }), "events[0]"),
        (json!({ "url": url, "events": [] }), "events"),
        (json!({ "url": url }), "events"),
        (json!({ "events": ["*"] }), "url"),
        (json!({ "url": url, "events": ["api_key.created"] }), "events[0]"),
        (json!({ "url": url, "events": ["*"], "secret": "mine" }), "secret"),
    ] {
        let r = api.post("/v1/webhooks", body.clone()).await;
        let p = r.problem(400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    api.post("/v1/webhooks", json!({ "url": "ftp://x.example.com/a", "events": ["*"] }))
        .await
        .problem(400, "invalid_request");
    // Filters are for agency webhooks.
    api.post("/v1/webhooks", json!({ "url": url, "events": ["*"], "tags": ["tier:gold"] }))
        .await
        .problem(422, "agency_webhook_only");
    // Prefixes and * are subscriptions too.
    let w = api
        .post("/v1/webhooks", json!({ "url": url, "events": ["link_building.*", "agent.invocation.completed"] }))
        .await;
    let w = w.ok(201).clone();
    let id = w["id"].as_str().unwrap();
    let p = api.patch(&format!("/v1/webhooks/{id}"), json!({ "events": ["*"], "description": "All of it" })).await;
    assert_eq!(p.ok(200)["events"], json!(["*"]));
    assert_eq!(p.header("etag"), Some("\"2\""));
    let stale =
        api.with_header("if-match", "\"1\"").patch(&format!("/v1/webhooks/{id}"), json!({ "active": false })).await;
    stale.problem(412, "precondition_failed");
    let off = api.patch(&format!("/v1/webhooks/{id}"), json!({ "active": false })).await;
    assert_eq!(off.ok(200)["disabledReason"], "disabled_by_user");
    // The catalogue.
    let types = api.get("/v1/webhooks/event-types").await;
    let types = types.ok(200)["data"].as_array().unwrap().clone();
    let names: Vec<&str> = types.iter().map(|t| t["type"].as_str().unwrap()).collect();
    for t in
        ["link_building.link.placed", "agent.invocation.awaiting_approval", "webhook.test", "link_building.email.sent"]
    {
        assert!(names.contains(&t), "{t} in {names:?}");
    }
    assert!(!names.contains(&"api_key.created"), "internal types are not listed");
    assert!(types.iter().all(|t| t["schema"]["properties"]["data"].is_object()));
    api.delete(&format!("/v1/webhooks/{id}")).await.ok(204);
    api.get(&format!("/v1/webhooks/{id}")).await.problem(404, "webhook_not_found");
});

webhook_test!(failures_are_retried_on_schedule_then_dead_lettered_and_replayed, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    let failing = register(&api, &rx, "/fail/x", json!(["link_building.relationship.created"])).await;
    let flaky = register(&api, &rx, "/flaky/2/x", json!(["link_building.relationship.created"])).await;
    let fid = failing["id"].as_str().unwrap().to_owned();
    relate(&api, "retry-me.com").await;

    // Four attempts (1 + the schedule's three), the same webhook-id, each signed anew.
    let got = rx.wait_for("/fail/x", WAIT, |g| g.len() >= 4).await;
    assert!(got.iter().all(|r| r.verified));
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    let attempts: Vec<_> = got.iter().map(|r| r.header("linkcrm-delivery-attempt").unwrap().to_owned()).collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    for w in got.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(gap >= 0.9, "attempts follow the schedule (1 s apart): {gap}");
    }
    // The flaky one succeeds on its third attempt and stops there.
    let f = rx.wait_for("/flaky/2/x", WAIT, |g| g.iter().any(|r| r.answered == 200)).await;
    assert_eq!(f.len(), 3);

    // Dead-lettered after the last attempt.
    let mut dead = Value::Null;
    for _ in 0..100 {
        let r = api.get("/v1/webhooks/dead-letter").await;
        let data = r.ok(200)["data"].as_array().unwrap().clone();
        if let Some(d) = data.first() {
            dead = d.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead["webhookId"], fid.as_str());
    assert_eq!(dead["attempts"], 4);
    assert_eq!(dead["lastStatusCode"], 500);
    assert_eq!(dead["payload"]["id"].as_str(), Some(ids[0].as_str()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.at("/fail/x").await.len(), 4, "nothing after the last attempt");

    let list = api.get(&format!("/v1/webhooks/{fid}/deliveries?status=failed")).await;
    let list = list.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|a| a["responseStatusCode"] == 500));
    assert!(list.iter().all(|a| a["responseBody"].as_str().unwrap().len() <= 4096), "bodies kept up to 4 KB");
    assert_eq!(list[0]["attempt"], 4, "newest first");
    assert_eq!(list[0]["nextAttemptAt"], Value::Null);
    assert!(list[1]["nextAttemptAt"].as_str().is_some());

    // Fixed receiver, then replay: same webhook-id, and the dead letter goes.
    api.patch(&format!("/v1/webhooks/{fid}"), json!({ "url": rx.url("/ok/fixed") })).await.ok(200);
    rx.secrets("/ok/fixed", &[failing["secret"].as_str().unwrap()]).await;
    let r = api.post(&format!("/v1/webhooks/dead-letter/{}/replay", dead["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.ok(202)["status"], "queued");
    let ok = rx.wait_for("/ok/fixed", WAIT, |g| !g.is_empty()).await;
    assert!(ok[0].verified);
    assert_eq!(ok[0].header("webhook-id"), Some(ids[0].as_str()));
    assert_eq!(ok[0].header("linkcrm-delivery-attempt"), Some("5"));
    for _ in 0..100 {
        let r = api.get("/v1/webhooks/dead-letter").await;
        if r.ok(200)["data"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(api.get("/v1/webhooks/dead-letter").await.ok(200)["data"].as_array().unwrap().is_empty());
    api.post("/v1/webhooks/dead-letter/whmsg_00000000000000000000000000/replay", json!({}))
        .await
        .problem(404, "dead_letter_not_found");
    let _ = flaky;
});

webhook_test!(a_410_disables_the_endpoint_and_says_so, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    let gone = register(&api, &rx, "/gone/x", json!(["link_building.relationship.created"])).await;
    register(&api, &rx, "/ok/ops", json!(["webhook.*"])).await;
    relate(&api, "gone-away.com").await;
    let got = rx.wait_for("/ok/ops", WAIT, |g| !of_type(g, "webhook.endpoint.disabled").is_empty()).await;
    let note = of_type(&got, "webhook.endpoint.disabled")[0];
    assert!(note.verified);
    assert_eq!(note.body["data"]["webhook"]["id"], gone["id"]);
    assert_eq!(note.body["data"]["reason"], "gone");
    assert_eq!(rx.at("/gone/x").await.len(), 1, "no retry after a 410");
    let w = api.get(&format!("/v1/webhooks/{}", gone["id"].as_str().unwrap())).await;
    let w = w.ok(200);
    assert_eq!(w["active"], false);
    assert_eq!(w["disabledReason"], "gone");
    // A disabled endpoint gets nothing more; re-enabled, it does again.
    relate(&api, "still-gone.com").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.at("/gone/x").await.len(), 1);
});

webhook_test!(rotation_signs_with_both_secrets_for_a_day, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    let w = register(&api, &rx, "/ok/old", json!(["link_building.relationship.created"])).await;
    let id = w["id"].as_str().unwrap();
    let old = w["secret"].as_str().unwrap().to_owned();
    let r = api.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    let rotated = r.ok(200).clone();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previousSecretExpiresAt"].as_str().is_some());
    assert!(api.get(&format!("/v1/webhooks/{id}")).await.ok(200).get("secret").is_none());
    // Two receivers' views: one knows only the old secret, one only the new.
    api.patch(&format!("/v1/webhooks/{id}"), json!({ "url": rx.url("/ok/both") })).await.ok(200);
    rx.secrets("/ok/both", &[&old]).await;
    relate(&api, "rotate-one.com").await;
    let got = rx.wait_for("/ok/both", WAIT, |g| !g.is_empty()).await;
    assert!(got[0].verified, "the old secret still verifies: {:?}", got[0].error);
    assert_eq!(got[0].header("webhook-signature").unwrap().split(' ').count(), 2);
    rx.secrets("/ok/both", &[&new]).await;
    relate(&api, "rotate-two.com").await;
    let got = rx.wait_for("/ok/both", WAIT, |g| g.len() >= 2).await;
    assert!(got[1].verified, "the new secret verifies: {:?}", got[1].error);
});

webhook_test!(test_deliveries_answer_their_outcome, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    let ok = register(&api, &rx, "/ok/t", json!(["link_building.link.placed"])).await;
    let r = api.post(&format!("/v1/webhooks/{}/test", ok["id"].as_str().unwrap()), json!({})).await;
    let a = r.ok(200).clone();
    assert_eq!(a["status"], "succeeded");
    assert_eq!(a["responseStatusCode"], 200);
    assert_eq!(a["trigger"], "test");
    assert!(a["durationMs"].as_u64().is_some());
    let got = rx.wait_for("/ok/t", WAIT, |g| !g.is_empty()).await;
    assert!(got[0].verified);
    assert_eq!(got[0].body["type"], "webhook.test");
    assert_eq!(got[0].body["data"]["webhookId"], ok["id"]);

    let bad = register(&api, &rx, "/fail/t", json!(["*"])).await;
    let r = api.post(&format!("/v1/webhooks/{}/test", bad["id"].as_str().unwrap()), json!({})).await;
    let a = r.ok(200).clone();
    assert_eq!(a["status"], "failed");
    assert_eq!(a["responseStatusCode"], 500);
    assert_eq!(a["responseBody"].as_str().unwrap().len(), 4096, "read up to 4 KB");

    let redirect = register(&api, &rx, "/redirect/t", json!(["*"])).await;
    let r = api.post(&format!("/v1/webhooks/{}/test", redirect["id"].as_str().unwrap()), json!({})).await;
    let a = r.ok(200).clone();
    assert_eq!((a["status"].as_str(), a["responseStatusCode"].as_u64()), (Some("failed"), Some(302)));
    assert!(rx.at("/ok/t").await.len() == 1, "the redirect was not followed");
    // Listed with the endpoint's attempts.
    let list = api.get(&format!("/v1/webhooks/{}/deliveries", ok["id"].as_str().unwrap())).await;
    assert_eq!(list.ok(200)["data"][0]["trigger"], "test");
});

webhook_test!(agency_webhooks_follow_their_workspace_filters, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let gold = agency.post("/v1/workspaces", json!({ "name": "Gold", "tags": ["tier:gold"] })).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = agency.create_workspace("Plain").await;
    // An agency key without X-Workspace-Id: the agency's own webhook.
    let w = agency
        .post("/v1/webhooks", json!({ "url": rx.url("/ok/agency"), "events": ["link_building.relationship.created"], "tags": ["tier:gold"] }))
        .await;
    let w = w.ok(201).clone();
    rx.secrets("/ok/agency", &[w["secret"].as_str().unwrap()]).await;
    assert_eq!(w["tags"], json!(["tier:gold"]));
    assert!(w["agencyId"].as_str().is_some());
    assert!(w.get("workspaceId").is_none());
    relate(&agency.in_workspace(&plain), "plain-partner.com").await;
    relate(&agency.in_workspace(&gold), "gold-partner.com").await;
    rx.wait_for("/ok/agency", WAIT, |g| !g.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = rx.at("/ok/agency").await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].body["workspaceId"], gold.as_str());
    // Agency webhooks are not a workspace's, and another agency sees neither.
    assert!(agency.in_workspace(&gold).get("/v1/webhooks").await.ok(200)["data"].as_array().unwrap().is_empty());
    assert_eq!(agency.get("/v1/webhooks").await.ok(200)["data"].as_array().unwrap().len(), 1);
    env.other_agency()
        .get(&format!("/v1/webhooks/{}", w["id"].as_str().unwrap()))
        .await
        .problem(404, "webhook_not_found");
    assert!(env.other_agency().get("/v1/webhooks").await.ok(200)["data"].as_array().unwrap().is_empty());
    // A workspace filter must name the agency's own workspaces.
    let theirs = env.other_agency().create_workspace("Theirs").await;
    agency
        .post("/v1/webhooks", json!({ "url": rx.url("/ok/x"), "events": ["*"], "workspaceIds": [theirs] }))
        .await
        .problem(422, "workspace_not_found");
});

webhook_test!(do_not_contact_reaches_every_workspace_that_knows_the_account, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let (ws_a, ws_b, ws_c) =
        (agency.create_workspace("A").await, agency.create_workspace("B").await, agency.create_workspace("C").await);
    let (a, b, c) = (agency.in_workspace(&ws_a), agency.in_workspace(&ws_b), agency.in_workspace(&ws_c));
    for (api, path) in [(&a, "/ok/dnc-a"), (&b, "/ok/dnc-b"), (&c, "/ok/dnc-c")] {
        register(api, &rx, path, json!(["link_building.account.do_not_contact"])).await;
    }
    let r = a.post("/v1/link-building/crm/relationship", json!({ "domain": "leave-me-alone.com" })).await;
    let acct = r.ok(201)["accountId"].as_str().unwrap().to_owned();
    relate(&b, "leave-me-alone.com").await;
    a.post(&format!("/v1/link-building/crm/account/{acct}/do-not-contact"), json!({ "reason": "Asked to be removed" }))
        .await
        .ok(200);
    let ga = rx.wait_for("/ok/dnc-a", WAIT, |g| !g.is_empty()).await;
    let gb = rx.wait_for("/ok/dnc-b", WAIT, |g| !g.is_empty()).await;
    assert!(ga[0].verified && gb[0].verified);
    assert_eq!(ga[0].body["workspaceId"], ws_a.as_str());
    assert_eq!(gb[0].body["workspaceId"], ws_b.as_str());
    assert_eq!(ga[0].header("webhook-id"), gb[0].header("webhook-id"), "one event");
    assert_eq!(gb[0].body["data"]["accountId"], acct.as_str());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(rx.at("/ok/dnc-c").await.is_empty(), "C has no relationship with the account");
});

// Campaign lifecycle events carry the campaign as the API shows it at commit, its version, and
// the status before.
webhook_test!(campaign_events_are_snapshots_with_previous_and_version, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    register(&api, &rx, "/ok/campaigns", json!(["link_building.campaign.*"])).await;
    let rel = relate(&api, "campaign-partner.com").await;
    let c = api
        .post("/v1/link-building/campaign", json!({ "type": "custom", "name": "Spring", "relationshipIds": [rel] }))
        .await;
    let id = c.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(&format!("/v1/link-building/campaign/{id}/toggle"), json!({ "action": "pause" })).await.ok(200);
    api.post(&format!("/v1/link-building/campaign/{id}/toggle"), json!({ "action": "resume" })).await.ok(200);
    api.delete(&format!("/v1/link-building/campaign/{id}")).await.ok(200);
    let got = rx.wait_for("/ok/campaigns", WAIT, |g| g.len() >= 4).await;
    assert!(got.iter().all(|r| r.verified));
    conform(&api, &got).await;
    let one = |t: &str| of_type(&got, t).first().map(|r| r.body["data"].clone()).unwrap_or_else(|| panic!("{t}"));
    let created = one("link_building.campaign.created");
    assert_eq!((created["id"].as_str(), created["campaign"]["id"].as_str()), (Some(id.as_str()), Some(id.as_str())));
    assert_eq!(created["campaign"]["status"], "active");
    assert_eq!(created["campaign"]["name"], "Spring");
    assert_eq!(created["version"], 1);
    assert!(created.get("previous").is_none(), "{created}");
    let paused = one("link_building.campaign.paused");
    assert_eq!(paused["campaign"]["status"], "paused", "{paused}");
    assert_eq!(paused["previous"]["status"], "active");
    assert_eq!(paused["version"], 2);
    let resumed = one("link_building.campaign.resumed");
    assert_eq!(
        (resumed["campaign"]["status"].as_str(), resumed["previous"]["status"].as_str()),
        (Some("active"), Some("paused"))
    );
    assert_eq!(resumed["version"], 3);
    let cancelled = one("link_building.campaign.cancelled");
    assert_eq!(cancelled["campaign"]["status"], "cancelled");
    assert_eq!(cancelled["version"], 4);
    // The last snapshot is what the API shows now.
    let now = api.get(&format!("/v1/link-building/campaign/{id}")).await.ok(200).clone();
    assert_eq!(now["status"], cancelled["campaign"]["status"]);
    assert_eq!(now["membersCount"], cancelled["campaign"]["membersCount"]);
    assert_eq!(now["updatedAt"], cancelled["campaign"]["updatedAt"]);
});

// Inbound events carry what the API shows: the settings with the previous ones and the version,
// the gate (and the previous version of it), the received message, and the message with the
// negotiator's decision on it.
webhook_test!(inbound_events_carry_the_resources, ENV, |env| {
    const INBOUND: &str = "/v1/link-building/inbound";
    let rx = Receiver::start().expect("receiver");
    let agency = env.agency();
    let ws = agency.create_workspace("Gardening").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 20 })).await.ok(201);
    let api = agency.in_workspace(&ws);
    register(&api, &rx, "/ok/inbound", json!(["link_building.inbound.*"])).await;
    api.post(&format!("{INBOUND}/settings"), json!({ "enabled": true, "defaultTone": "friendly" })).await.ok(200);
    let gate = json!({ "name": "spam_decline", "when": { "field": "intent", "op": "eq", "value": "spam" },
                       "then": { "action": "decline" }, "priority": 50 });
    let g = api.post(&format!("{INBOUND}/eval-gates"), gate).await.ok(201)["id"].as_str().unwrap().to_owned();
    api.patch(&format!("{INBOUND}/eval-gates/{g}"), json!({ "priority": 5 })).await.ok(200);
    let raw = "From: Jo <jo@jo-garden.example>\r\nTo: team@gardening.example\r\nSubject: Guest post idea\r\n\
               Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <gp-1@jo-garden.example>\r\n\r\n\
               Hi, could I write a guest post about composting for your blog?\r\n";
    let m =
        api.post(&format!("{INBOUND}/email"), json!({ "raw": raw })).await.ok(201)["id"].as_str().unwrap().to_owned();
    let got = rx
        .wait_for("/ok/inbound", WAIT, |g| {
            ["settings.updated", "eval_gate.created", "eval_gate.updated", "received", "negotiated"]
                .iter()
                .all(|t| !of_type(g, &format!("link_building.inbound.{t}")).is_empty())
        })
        .await;
    assert!(got.iter().all(|r| r.verified));
    conform(&api, &got).await;
    let one = |t: &str| of_type(&got, &format!("link_building.inbound.{t}"))[0].body["data"].clone();
    let settings = one("settings.updated");
    assert_eq!(settings["settings"]["enabled"], true, "{settings}");
    assert_eq!(settings["settings"]["defaultTone"], "friendly", "{settings}");
    assert!(settings["previous"].is_null(), "first settings: {settings}");
    assert_eq!(settings["version"], 1);
    let created = one("eval_gate.created");
    assert_eq!((created["gate"]["id"].as_str(), created["gate"]["priority"].as_i64()), (Some(g.as_str()), Some(50)));
    let updated = one("eval_gate.updated");
    assert_eq!((updated["gate"]["priority"].as_i64(), updated["previous"]["priority"].as_i64()), (Some(5), Some(50)));
    assert_eq!((updated["version"].as_i64(), updated["previous"]["version"].as_i64()), (Some(2), Some(1)));
    let received = one("received");
    assert_eq!(received["message"]["id"], m.as_str());
    assert_eq!(received["message"]["subject"], "Guest post idea");
    assert!(received["message"]["text"].as_str().unwrap().contains("composting"));
    let decided = one("negotiated");
    assert_eq!(decided["message"]["id"], m.as_str());
    assert_eq!(decided["message"]["negotiation"]["outcome"], decided["outcome"], "{decided}");
    assert!(decided["previous"]["negotiation"].is_null(), "{decided}");
    // The message's snapshot is what the API shows.
    let now = api.get(&format!("{INBOUND}/{m}")).await.ok(200).clone();
    assert_eq!(now["negotiation"]["outcome"], decided["message"]["negotiation"]["outcome"]);
    assert_eq!(now["subject"], decided["message"]["subject"]);
});

/// Loopback refused when private targets are not allowed; https required without the opt-in.
mod private_targets_are_refused {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        let rx = Receiver::start().expect("receiver");
        let env = Env::start_with(
            Backend::Embedded,
            &[("LINKCRM_ALLOW_PRIVATE_TARGETS", "false"), ("LINKCRM_WEBHOOK_ALLOW_HTTP", "true")],
        )
        .await;
        let agency = env.agency();
        let ws = agency.create_workspace("Acme").await;
        let api = agency.in_workspace(&ws);
        let r = api.post("/v1/webhooks", json!({ "url": rx.url("/ok/ssrf"), "events": ["*"] })).await;
        r.problem(422, "webhook_url_not_allowed");
        let r = api.post("/v1/webhooks", json!({ "url": "http://[::1]:9/x", "events": ["*"] })).await;
        r.problem(422, "webhook_url_not_allowed");
        // A name is vetted when delivering: localhost resolves to loopback, refused there.
        let w = api
            .post("/v1/webhooks", json!({ "url": format!("http://localhost:{}/ok/ssrf", rx.port), "events": ["*"] }))
            .await;
        let w = w.ok(201).clone();
        let a = api.post(&format!("/v1/webhooks/{}/test", w["id"].as_str().unwrap()), json!({})).await;
        let a = a.ok(200);
        assert_eq!(a["status"], "failed");
        assert_eq!(a["responseStatusCode"], Value::Null);
        assert!(a["error"].as_str().is_some(), "{a}");
        assert!(rx.received().await.is_empty(), "nothing reached the loopback receiver");

        let env = Env::start_with(Backend::Embedded, &[]).await;
        let agency = env.agency();
        let ws = agency.create_workspace("Acme").await;
        let r =
            agency.in_workspace(&ws).post("/v1/webhooks", json!({ "url": rx.url("/ok/http"), "events": ["*"] })).await;
        assert_eq!(r.problem(422, "invalid_webhook_url")["errors"][0]["field"], "url");
    }
}

/// The binary is killed while an attempt waits on a slow receiver; after a restart the attempt
/// is made again with the same webhook-id, and recorded once.
mod a_killed_delivery_worker_loses_nothing {
    use super::*;
    async fn run(backend: Backend) {
        let rx = Receiver::start().expect("receiver");
        let mut env = Env::start_with(
            backend,
            &[
                ("LINKCRM_WEBHOOK_ALLOW_HTTP", "true"),
                ("LINKCRM_WEBHOOK_RETRY_SCHEDULE", "1,1,1"),
                ("LINKCRM_JOB_VISIBILITY_SECS", "3"),
            ],
        )
        .await;
        let agency = env.agency();
        let ws = agency.create_workspace("Acme").await;
        let api = agency.in_workspace(&ws);
        let w = register(&api, &rx, "/slow/2500/k", json!(["link_building.relationship.created"])).await;
        relate(&api, "kill-me.com").await;
        // Wait until the attempt is in flight (the receiver records it after answering, so give
        // the worker time to send it), then kill the binary before the answer comes.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        env.server.kill_hard();
        env.restart();
        let got = rx.wait_for("/slow/2500/k", Duration::from_secs(40), |g| g.len() >= 2).await;
        assert!(got.iter().all(|r| r.verified));
        assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"), "a receiver can dedupe it");
        tokio::time::sleep(Duration::from_secs(4)).await;
        let api = env.agency().in_workspace(&ws);
        let list = api.get(&format!("/v1/webhooks/{}/deliveries", w["id"].as_str().unwrap())).await;
        let list = list.ok(200)["data"].as_array().unwrap().clone();
        let succeeded: Vec<_> = list.iter().filter(|a| a["status"] == "succeeded").collect();
        assert_eq!(succeeded.len(), 1, "recorded once: {list:#?}");
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        run(Backend::Embedded).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        run(Backend::Dynamo).await
    }
}

webhook_test!(a_send_s_lifecycle_arrives_as_snapshots, ENV, |env| {
    let rx = Receiver::start().expect("receiver");
    let smtp = linkcrm_testkit::smtp::SmtpServer::start().expect("smtp");
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 20 })).await.ok(201);
    let api = agency.in_workspace(&ws);
    register(
        &api,
        &rx,
        "/ok/life",
        json!(["agent.invocation.*", "link_building.email.*", "link_building.relationship.status_changed"]),
    )
    .await;
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp.port, "security": "none" });
    api.post("/v1/mailboxes", mbx).await.ok(201);
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": "eng-blog.com" })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c = api
        .post(
            "/v1/link-building/crm/contact",
            json!({ "accountId": acct, "firstName": "Pat", "email": "pat@eng-blog.com" }),
        )
        .await;
    let contact = c.ok(201)["id"].as_str().unwrap().to_owned();
    let send = json!({ "contactId": contact, "subject": "Guest post idea", "body": "Hi Pat" });
    let accepted = api.post(&format!("/v1/link-building/crm/relationship/{rel}/send-email"), send).await;
    let inv = accepted.ok(202)["invocationId"].as_str().unwrap().to_owned();
    // The workspace's default policy holds it for approval.
    let got = rx.wait_for("/ok/life", WAIT, |g| !of_type(g, "agent.invocation.awaiting_approval").is_empty()).await;
    let waiting = of_type(&got, "agent.invocation.awaiting_approval")[0];
    assert_eq!(waiting.body["data"]["invocationId"], inv.as_str());
    assert!(waiting.body["data"]["approvalId"].as_str().unwrap().starts_with("appr_"));
    assert_eq!(waiting.body["data"]["preview"]["subject"], "Guest post idea");
    assert_eq!(waiting.body["data"]["status"], "WAITING_APPROVAL");
    api.post(&format!("/v1/agent/invocations/{inv}/approve"), json!({})).await.ok(200);

    let got = rx
        .wait_for("/ok/life", WAIT, |g| {
            !of_type(g, "agent.invocation.completed").is_empty()
                && !of_type(g, "link_building.email.sent").is_empty()
                && !of_type(g, "link_building.relationship.status_changed").is_empty()
        })
        .await;
    assert!(got.iter().all(|r| r.verified));
    conform(&api, &got).await;
    let done = of_type(&got, "agent.invocation.completed")[0];
    assert_eq!(done.body["data"]["invocationId"], inv.as_str());
    assert_eq!(done.body["data"]["status"], "SUCCEEDED");
    assert!(done.body["data"]["previous"]["status"].as_str().is_some());
    assert!(done.body["data"]["version"].as_i64().unwrap() > 1);
    let sent = of_type(&got, "link_building.email.sent")[0];
    assert_eq!(sent.body["data"]["type"], "EMAIL_SENT");
    assert_eq!(sent.body["data"]["relationshipId"], rel.as_str());
    let changed = of_type(&got, "link_building.relationship.status_changed")[0];
    assert_eq!(changed.body["data"]["to"], "CONTACTED_BY_US");
    assert_eq!(changed.body["data"]["previous"]["status"], changed.body["data"]["from"]);
    assert_eq!(changed.body["data"]["relationship"]["status"], "CONTACTED_BY_US");
    assert_eq!(changed.body["data"]["relationship"]["id"], rel.as_str());
    // The snapshot's version is the one the API's ETag showed right after that change (the send
    // is the relationship's last change here).
    let now = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await;
    assert_eq!(now.ok(200)["status"], "CONTACTED_BY_US");
    let etag = now.header("etag").unwrap().trim_matches('"').parse::<i64>().unwrap();
    assert_eq!(Some(etag), changed.body["data"]["version"].as_i64());
    // Each event once.
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an event was delivered twice");
});

/// A fast in-process receiver for the benchmark: answers by path (`/fast/…` 200, `/slow/…` after
/// 2 s, `/fail/…` 500) and keeps (path, event createdAt, arrival) of each 2xx.
async fn bench_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, String, std::time::Instant)>>>) {
    use axum::extract::Path;
    let got: std::sync::Arc<std::sync::Mutex<Vec<(String, String, std::time::Instant)>>> = Default::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/{kind}/{name}",
        axum::routing::post(move |Path((kind, name)): Path<(String, String)>, body: String| {
            let keep = keep.clone();
            async move {
                match kind.as_str() {
                    "slow" => tokio::time::sleep(Duration::from_secs(2)).await,
                    "fail" => return axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    _ => {}
                }
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let created = v["createdAt"].as_str().unwrap_or_default().to_owned();
                keep.lock().unwrap().push((format!("{kind}/{name}"), created, std::time::Instant::now()));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Commit-to-receiver latency of each delivery, in ms (the envelope's createdAt is the commit).
fn latencies(
    got: &[(String, String, std::time::Instant)],
    wall: chrono::DateTime<chrono::Utc>,
    at: std::time::Instant,
) -> Vec<f64> {
    let mut l: Vec<f64> = got
        .iter()
        .filter_map(|(_, created, arrived)| {
            let c = chrono::DateTime::parse_from_rfc3339(created).ok()?.with_timezone(&chrono::Utc);
            let arrived_wall = wall - chrono::Duration::from_std(at.saturating_duration_since(*arrived)).ok()?;
            Some((arrived_wall - c).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    l
}

fn pct(l: &[f64], p: f64) -> f64 {
    if l.is_empty() {
        return f64::NAN;
    }
    l[((l.len() as f64 - 1.0) * p).round() as usize]
}

/// Benchmark (ignored; BENCHMARKS.md): webhook deliveries from commit to a receiver's 200, and
/// 100 endpoints of which 10 are slow and 10 failing.
/// `LINKCRM_TEST_BIN=<release linkcrm> cargo test --release --test webhooks -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_webhook_delivery() {
    let n: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(4000);
    let (url, got) = bench_receiver().await;
    let env =
        Env::start_with(Backend::Embedded, &[("LINKCRM_WEBHOOK_ALLOW_HTTP", "true"), ("LINKCRM_RATE_LIMIT", "0")])
            .await;
    let agency = env.agency();
    let ws = agency.create_workspace("Bench").await;
    let api = agency.in_workspace(&ws);
    let one = api
        .post(
            "/v1/webhooks",
            json!({ "url": format!("{url}/fast/one"), "events": ["link_building.relationship.created"] }),
        )
        .await;
    let one = one.ok(201)["id"].as_str().unwrap().to_owned();
    // Part 1: one fast receiver; events committed at `BENCH_RATE` per second (default 400) by 16
    // concurrent clients, each taking the next slot of the schedule.
    let rate: f64 = std::env::var("BENCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(400.0);
    let started = std::time::Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (api, next) = (api.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
                let r = api
                    .post("/v1/link-building/crm/relationship", json!({ "domain": format!("bench-{i}.example.com") }))
                    .await;
                assert_eq!(r.status.as_u16(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let committed = started.elapsed();
    loop {
        if got.lock().unwrap().len() >= n {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "deliveries stalled at {}", got.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = started.elapsed();
    let (wall, at) = (chrono::Utc::now(), std::time::Instant::now());
    let l = latencies(&got.lock().unwrap(), wall, at);
    println!(
        "bench: {n} events committed in {:.2} s ({:.0}/s); all delivered in {:.2} s = {:.0} deliveries/s; \
         commit-to-200 p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        committed.as_secs_f64(),
        n as f64 / committed.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64(),
        pct(&l, 0.5),
        pct(&l, 0.99),
        pct(&l, 1.0)
    );

    // Part 2: the same paced stream of events to 80 fast endpoints, then to those 80 plus 10
    // slow (2 s) and 10 failing ones: the fast endpoints' latency should not change.
    api.delete(&format!("/v1/webhooks/{one}")).await.ok(204);
    let list = api.get("/v1/link-building/crm/relationship?limit=50").await;
    let ids: Vec<String> =
        list.ok(200)["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let rate: f64 = std::env::var("BENCH_FAN_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(4.0);
    let events: usize = std::env::var("BENCH_FAN_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let add = |kind: &'static str, range: std::ops::Range<usize>| {
        let (api, url) = (api.clone(), url.clone());
        async move {
            for i in range {
                let body =
                    json!({ "url": format!("{url}/{kind}/e{i}"), "events": ["link_building.relationship.updated"] });
                api.post("/v1/webhooks", body).await.ok(201);
            }
        }
    };
    add("fast", 0..80).await;
    for (round, label) in ["80 fast endpoints", "80 fast + 10 slow (2 s) + 10 failing"].into_iter().enumerate() {
        if round == 1 {
            add("slow", 80..90).await;
            add("fail", 90..100).await;
        }
        got.lock().unwrap().clear();
        let started = std::time::Instant::now();
        for k in 0..events {
            tokio::time::sleep_until((started + Duration::from_secs_f64(k as f64 / rate)).into()).await;
            let i = round * events + k;
            let priority = if (i / ids.len()).is_multiple_of(2) { "HIGH" } else { "LOW" };
            let id = &ids[i % ids.len()];
            api.patch(&format!("/v1/link-building/crm/relationship/{id}"), json!({ "priority": priority }))
                .await
                .ok(200);
        }
        let fast_total = events * 80;
        loop {
            let fast = got.lock().unwrap().iter().filter(|(p, _, _)| p.starts_with("fast/")).count();
            if fast >= fast_total {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "fast deliveries stalled at {fast}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fast_done = started.elapsed();
        let (wall, at) = (chrono::Utc::now(), std::time::Instant::now());
        let snapshot = got.lock().unwrap().clone();
        let fast: Vec<_> = snapshot.iter().filter(|(p, _, _)| p.starts_with("fast/")).cloned().collect();
        let slow: Vec<_> = snapshot.iter().filter(|(p, _, _)| p.starts_with("slow/")).cloned().collect();
        let lf = latencies(&fast, wall, at);
        let ls = latencies(&slow, wall, at);
        println!(
            "bench: {events} events at {rate}/s to {label}: the {fast_total} fast deliveries done {:.2} s after the \
             first commit; fast p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; slow ones delivered by then: {} (p50 {:.0} ms)",
            fast_done.as_secs_f64(),
            pct(&lf, 0.5),
            pct(&lf, 0.99),
            pct(&lf, 1.0),
            slow.len(),
            pct(&ls, 0.5)
        );
    }
}
