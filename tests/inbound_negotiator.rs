//! The inbound negotiator end to end on both backends: requests posted as raw mail, the partner's
//! DR from a local Ahrefs, drafts from a local LLM, replies arriving at a real SMTP server
//! (aiosmtpd). Gates on money and DR, unknown facts escalating, free-mail senders, partner modes,
//! approvals of escalated drafts, `respond`, holds, credits, and another workspace seeing none of it.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::fake_ahrefs::{AhrefsFault, DOMAIN_RATING_PATH};
use linkcrm_testkit::smtp::{ReceivedMessage, SmtpServer};
use linkcrm_testkit::{FakeAhrefs, FakeLlm};
use serde_json::{json, Value};
use std::time::Duration;

const INBOUND: &str = "/v1/link-building/inbound";
const GATES: &str = "/v1/link-building/inbound/eval-gates";

struct World {
    env: Env,
    smtp: SmtpServer,
    ahrefs: FakeAhrefs,
    llm: FakeLlm,
    ws: String,
    api: Api,
}

async fn world(backend: Backend) -> World {
    let smtp = SmtpServer::start().unwrap();
    let ahrefs = FakeAhrefs::start().await;
    let llm = FakeLlm::start().await;
    let vars = [
        ("LINKCRM_AHREFS_BASE_URL", ahrefs.base_url.clone()),
        ("LINKCRM_AHREFS_API_KEY", ahrefs.api_key.clone()),
        ("LINKCRM_LLM_BASE_URL", llm.base_url.clone()),
        ("LINKCRM_LLM_API_KEY", llm.api_key.clone()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = Env::start_with(backend, &vars).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Gardening Weekly").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 100 })).await.ok(201);
    let api = agency.in_workspace(&ws);
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@gardening-weekly.example", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp.port, "security": "none" });
    api.post("/v1/mailboxes", mbx).await.ok(201);
    World { env, smtp, ahrefs, llm, ws, api }
}

fn pitch(from: &str, name: &str, subject: &str, body: &str, mid: &str) -> String {
    format!(
        "From: {name} <{from}>\r\nTo: dana@gardening-weekly.example\r\nSubject: {subject}\r\n\
         Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{mid}>\r\n\r\n{body}\r\n"
    )
}

/// Posts a request and waits until the negotiator has decided on it.
async fn decide(api: &Api, raw: &str) -> Value {
    let m = api.post(&format!("{INBOUND}/email"), json!({ "raw": raw })).await.ok(201).clone();
    let id = m["id"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        let got = api.get(&format!("{INBOUND}/{id}")).await.ok(200).clone();
        if got.get("negotiation").is_some_and(|n| n["outcome"] != "held") {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no decision on {id}: {}", api.get(&format!("{INBOUND}/{id}")).await.body);
}

async fn wait_mail(smtp: &SmtpServer, to: &str) -> ReceivedMessage {
    for _ in 0..400 {
        if let Some(m) = smtp.received().into_iter().find(|m| m.rcpt_tos.iter().any(|r| r == to)) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{to} got no mail");
}

fn bare(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_owned()
}

async fn event_types(api: &Api, rel: &str) -> Vec<String> {
    let r = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    r.ok(200)["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

each_backend!(gates_decide_and_replies_go_out, gates_decide);

async fn gates_decide(backend: Backend) {
    let w = world(backend).await;
    let api = &w.api;
    for (d, dr) in
        [("dr26.example", 26.0), ("dr26b.example", 26.0), ("dr24.example", 24.0), ("jo-garden.example", 40.0)]
    {
        w.ahrefs.set_metrics(d, dr, 1000, 100, 50, 500);
    }

    // Settings: off by default; autonomy needs workspaces:admin.
    let s = api.get(&format!("{INBOUND}/settings")).await.ok(200).clone();
    assert_eq!((s["enabled"].as_bool(), s["autonomous"].as_bool()), (Some(false), Some(false)), "{s}");
    let writer = w.env.agency().with_key(
        &w.env.agency().create_key(&w.ws, Some(&["campaigns:write", "campaigns:read", "crm:write", "crm:read"])).await,
    );
    writer.post(&format!("{INBOUND}/settings"), json!({ "autonomous": true })).await.problem(403, "insufficient_scope");
    api.post(&format!("{INBOUND}/settings"), json!({ "defaultTone": "shouty" })).await.problem(400, "invalid_request");
    let on = json!({ "enabled": true, "autonomous": true, "defaultTone": "friendly", "sendDeclines": false,
                     "angles": ["We prefer topics about composting"] });
    let s = api.post(&format!("{INBOUND}/settings"), on).await.ok(200).clone();
    let icmp = s["campaignId"].as_str().unwrap().to_owned();
    assert!(icmp.starts_with("icmp_"), "{s}");
    let cmp = api.get(&format!("/v1/link-building/campaign/{icmp}")).await.ok(200).clone();
    assert_eq!(cmp["type"], "inbound");

    // Gates: bad ones are refused where they are wrong; the anchor's path works too.
    let bad = json!({ "name": "x", "applies_to": "link_building.inbound",
                      "when": { "field": "senderDr", "op": "lt", "value": 25 }, "then": { "action": "decline" } });
    let p = api.post(GATES, bad).await.problem(422, "invalid_gate").clone();
    assert_eq!(p["errors"][0]["field"], "when.field", "{p}");
    let bad = json!({ "name": "x", "when": { "field": "text", "op": "matches", "value": "(" }, "then": { "action": "decline" } });
    api.post(GATES, bad).await.problem(422, "invalid_gate");
    let bad = json!({ "name": "x", "when": { "field": "intent", "op": "eq", "value": "spam" }, "then": { "action": "hold" } });
    api.post(GATES, bad).await.problem(422, "invalid_gate");
    let money = json!({ "name": "payment_request_escalation", "applies_to": "link_building.inbound",
        "when": { "field": "amountMentioned", "op": "gte", "value": 100 },
        "then": { "action": "escalate_to_approval", "reason": "money over $100 asked" }, "priority": 10 });
    let money = api.post(GATES, money).await.ok(201).clone();
    let low = json!({ "name": "low_dr_decline", "applies_to": "link_building.inbound",
        "when": { "field": "senderDR", "op": "lt", "value": 25 }, "then": { "action": "decline", "reason": "DR under 25" },
        "priority": 20 });
    let low = api.post(&format!("{INBOUND}/eval-gate"), low).await.ok(201).clone();
    let tag = json!({ "name": "tag_pitches", "when": { "field": "intent", "op": "eq", "value": "guest_post_pitch" },
                      "then": { "action": "tag_and_continue", "tag": "pitch" }, "priority": 5 });
    api.post(GATES, tag).await.ok(201);
    let listed = api.get(GATES).await.ok(200).clone();
    let names: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tag_pitches", "payment_request_escalation", "low_dr_decline"]);
    // A change is a new version; the old one stays readable.
    let gid = money["id"].as_str().unwrap();
    let v2 = api
        .patch(
            &format!("{GATES}/{gid}"),
            json!({ "then": { "action": "escalate_to_approval",
        "reason": "money of $100 or more asked" } }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(v2["version"], 2);
    let versions = api.get(&format!("{GATES}/{gid}/versions")).await.ok(200).clone();
    assert_eq!(versions["data"].as_array().unwrap().len(), 2);
    assert_eq!(versions["data"][0]["then"]["reason"], "money over $100 asked");

    // $30 passes every gate: the autonomous reply goes out, threaded, through the send path.
    let raw = pitch(
        "pat@dr26.example",
        "Pat Doe",
        "Guest post idea",
        "Hi! I'd love to write a guest post for you. My fee is $30.",
        "p1@dr26.example",
    );
    let m = decide(api, &raw).await;
    let n = &m["negotiation"];
    assert_eq!(n["outcome"], "auto_replied", "{m}");
    assert_eq!(
        (n["intent"].as_str(), n["facts"]["amountMentioned"].as_f64(), n["facts"]["senderDR"].as_f64()),
        (Some("guest_post_pitch"), Some(30.0), Some(26.0))
    );
    let trace: Vec<&str> = n["trace"].as_array().unwrap().iter().map(|t| t["result"].as_str().unwrap()).collect();
    assert_eq!(trace, ["matched", "not_matched", "not_matched"], "{n}");
    let reply = wait_mail(&w.smtp, "pat@dr26.example").await;
    assert_eq!(reply.header("In-Reply-To").map(|h| bare(&h)).as_deref(), Some("p1@dr26.example"));
    assert!(reply.header("Subject").unwrap().starts_with("Re: Guest post idea"), "{:?}", reply.header("Subject"));
    let rel = n["relationshipId"].as_str().unwrap().to_owned();
    let r = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(200).clone();
    assert_eq!(r["source"], "INBOUND");
    for _ in 0..200 {
        if event_types(api, &rel).await.contains(&"EMAIL_SENT".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let types = event_types(api, &rel).await;
    assert!(types.contains(&"INBOUND_REQUEST".to_owned()) && types.contains(&"EMAIL_SENT".to_owned()), "{types:?}");

    // "300 USD" escalates with the gate's name and version; approving sends the draft.
    let raw = pitch(
        "sam@dr26b.example",
        "Sam",
        "Sponsored post",
        "We'd like a sponsored guest post, budget 300 USD.",
        "p2@dr26b.example",
    );
    let m = decide(api, &raw).await;
    let n = &m["negotiation"];
    assert_eq!(n["outcome"], "escalated", "{m}");
    assert_eq!(
        (n["decidedBy"]["name"].as_str(), n["decidedBy"]["version"].as_i64()),
        (Some("payment_request_escalation"), Some(2))
    );
    assert_eq!(n["reason"], "money of $100 or more asked");
    let inv = n["invocationId"].as_str().unwrap().to_owned();
    let appr = api.get(&format!("/v1/agent/approvals/{}", n["approvalId"].as_str().unwrap())).await.ok(200).clone();
    assert!(appr["reason"].as_str().unwrap().contains("payment_request_escalation"), "{appr}");
    assert!(appr["preview"]["body"].as_str().is_some_and(|b| !b.is_empty()), "{appr}");
    assert!(
        w.smtp.received().iter().all(|m| !m.rcpt_tos.contains(&"sam@dr26b.example".to_owned())),
        "nothing sent yet"
    );
    api.post(&format!("/v1/agent/invocations/{inv}/approve"), json!({})).await.ok(200);
    let sent = wait_mail(&w.smtp, "sam@dr26b.example").await;
    assert_eq!(sent.header("In-Reply-To").map(|h| bare(&h)).as_deref(), Some("p2@dr26b.example"));

    // DR 24 is declined (no reply: the workspace does not send declines).
    let raw = pitch("lee@dr24.example", "Lee", "Guest post?", "Could I write a guest post for you?", "p3@dr24.example");
    let m = decide(api, &raw).await;
    assert_eq!(
        (m["negotiation"]["outcome"].as_str(), m["negotiation"]["decidedBy"]["name"].as_str()),
        (Some("declined"), Some("low_dr_decline"))
    );
    assert!(m["negotiation"]["invocationId"].is_null());
    // An unsolicited request (with no reply) moves no shared status, and the partner's pipeline
    // status stays where it was.
    let lee_account = m["negotiation"]["accountId"].as_str().unwrap();
    let lee = api.get(&format!("/v1/link-building/crm/account/{lee_account}")).await.ok(200).clone();
    assert_eq!(lee["systemContactStatus"], "NEVER_CONTACTED", "{lee}");
    let lee_rel = m["negotiation"]["relationshipId"].as_str().unwrap();
    let lee_rel = api.get(&format!("/v1/link-building/crm/relationship/{lee_rel}")).await.ok(200).clone();
    assert_eq!(lee_rel["status"], "PROSPECTING", "{lee_rel}");

    // Ahrefs down: the DR is unknown, so the DR gate escalates instead of passing.
    // Every attempt of the client (4) fails.
    w.ahrefs.fail_next_on(DOMAIN_RATING_PATH, 4, AhrefsFault::ServerError(503));
    let raw = pitch(
        "kim@unknown-dr.example",
        "Kim",
        "Guest post",
        "I would like to write a guest post for your blog.",
        "p4@unknown-dr.example",
    );
    let m = decide(api, &raw).await;
    let n = &m["negotiation"];
    assert_eq!(
        (n["outcome"].as_str(), n["decidedBy"]["name"].as_str()),
        (Some("escalated"), Some("low_dr_decline")),
        "{m}"
    );
    assert!(n["reason"].as_str().unwrap().contains("not known"), "{n}");

    // A gmail.com sender: the account is the site they name, never gmail.com.
    let raw = pitch(
        "jo.gardens@gmail.com",
        "Jo",
        "Guest post for you",
        "Hello, I run https://www.jo-garden.example/ and would love to write a guest post.",
        "p5@mail.gmail.com",
    );
    let m = decide(api, &raw).await;
    let acct = m["negotiation"]["accountId"].as_str().unwrap().to_owned();
    let a = api.get(&format!("/v1/link-building/crm/account/{acct}")).await.ok(200).clone();
    assert_eq!(a["domain"], "jo-garden.example");
    let gmail = api.get("/v1/link-building/crm/account?domain=gmail.com").await.ok(200).clone();
    assert!(gmail["data"].as_array().unwrap().is_empty(), "{gmail}");

    // Spam gets no account at all.
    let raw =
        pitch("promo@spam.example", "Promo", "You have won", "You have won the lottery! Click now.", "p6@spam.example");
    let m = decide(api, &raw).await;
    assert_eq!(m["negotiation"]["outcome"], "spam");
    assert!(m["negotiation"]["accountId"].is_null());

    // A partner set to decline_by_default is declined, with a reply once declines are sent.
    api.post(&format!("{INBOUND}/settings"), json!({ "sendDeclines": true })).await.ok(200);
    let pat_account = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(200)["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mode = api
        .put(
            &format!("/v1/link-building/crm/account/{pat_account}/inbound-settings"),
            json!({ "mode": "decline_by_default" }),
        )
        .await;
    assert_eq!(
        (mode.ok(200)["mode"].as_str(), mode.body["effectiveMode"].as_str()),
        (Some("decline_by_default"), Some("decline_by_default"))
    );
    let raw = pitch(
        "pat@dr26.example",
        "Pat Doe",
        "Another idea",
        "Another guest post idea for you, $20.",
        "p7@dr26.example",
    );
    let m = decide(api, &raw).await;
    assert_eq!(
        (m["negotiation"]["outcome"].as_str(), m["negotiation"]["mode"].as_str()),
        (Some("declined"), Some("decline_by_default"))
    );
    for _ in 0..400 {
        if w.smtp.received().iter().filter(|m| m.rcpt_tos.contains(&"pat@dr26.example".to_owned())).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let to_pat: Vec<_> =
        w.smtp.received().into_iter().filter(|m| m.rcpt_tos.contains(&"pat@dr26.example".to_owned())).collect();
    assert_eq!(to_pat.len(), 2, "the polite decline");
    assert!(to_pat[1].text().contains("not taking this up"), "{}", to_pat[1].text());

    // respond: a person's threaded reply to the escalated request from Kim.
    let kim = api.get(&format!("{INBOUND}?limit=50")).await.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "kim@unknown-dr.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api
        .post(
            "/v1/link-building/campaign/respond",
            json!({ "inboundMessageId": kim, "body": "Thanks Kim, send topics.", "scheduleAt": "now" }),
        )
        .await;
    let inv = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = api.wait_invocation(&inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let to_kim = wait_mail(&w.smtp, "kim@unknown-dr.example").await;
    assert_eq!(to_kim.header("In-Reply-To").map(|h| bare(&h)).as_deref(), Some("p4@unknown-dr.example"));
    assert_eq!(to_kim.header("Subject").as_deref(), Some("Re: Guest post"));
    api.post(
        "/v1/link-building/campaign/respond",
        json!({ "inboundMessageId": "msg_01HZZZZZZZZZZZZZZZZZZZZZZZ", "body": "x" }),
    )
    .await
    .problem(404, "inbound_message_not_found");

    // Credits were charged for the work, and the LLM wrote the drafts.
    let usage = w.env.agency().get(&format!("/v1/workspaces/{}/usage", w.ws)).await.ok(200).clone();
    assert!(usage["bySkill"]["link_building.inbound.negotiate"].as_f64().unwrap() >= 3.5, "{usage}");
    assert!(w.llm.calls() >= 2);

    // Another workspace sees none of it.
    let other = w.env.agency().in_workspace(&w.env.agency().create_workspace("Other").await);
    assert!(other.get(GATES).await.ok(200)["data"].as_array().unwrap().is_empty());
    other.get(&format!("{GATES}/{gid}")).await.problem(404, "eval_gate_not_found");
    other.get(&format!("{GATES}/{gid}/versions")).await.problem(404, "eval_gate_not_found");
    assert_eq!(other.get(&format!("{INBOUND}/settings")).await.ok(200)["enabled"], false);
    other
        .post("/v1/link-building/campaign/respond", json!({ "inboundMessageId": kim, "body": "x" }))
        .await
        .problem(404, "inbound_message_not_found");
    let _ = low;
}

/// Without credits the negotiator escalates with `insufficient_credits` instead of failing; a
/// `hold` gate holds a request and runs the gates again when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credits_escalate_and_holds_come_back() {
    let w = world(Backend::Embedded).await;
    w.ahrefs.set_metrics("dr50.example", 50.0, 1, 1, 1, 1);
    let agency = w.env.agency();
    let ws = agency.create_workspace("Broke").await;
    let broke = agency.in_workspace(&ws);
    broke.post(&format!("{INBOUND}/settings"), json!({ "enabled": true, "autonomous": true })).await.ok(200);
    let raw = pitch("ann@dr50.example", "Ann", "Guest post", "A guest post idea for you.", "b1@dr50.example");
    let m = decide(&broke, &raw).await;
    assert_eq!(
        (m["negotiation"]["outcome"].as_str(), m["negotiation"]["reason"].as_str()),
        (Some("escalated"), Some("insufficient_credits")),
        "{m}"
    );

    // A hold of two seconds: held first, then the gates run again and the reply goes out.
    let api = &w.api;
    api.post(&format!("{INBOUND}/settings"), json!({ "enabled": true, "autonomous": true })).await.ok(200);
    let hold = json!({ "name": "night_hold", "when": { "field": "hourOfDay", "op": "gte", "value": 0 },
                       "then": { "action": "hold", "until": "PT2S", "reason": "answer in office hours" } });
    api.post(GATES, hold).await.ok(201);
    let raw = pitch("bo@dr50.example", "Bo", "Guest post", "A guest post idea for you.", "h1@dr50.example");
    let m = api.post(&format!("{INBOUND}/email"), json!({ "raw": raw })).await.ok(201).clone();
    let id = m["id"].as_str().unwrap().to_owned();
    let mut saw_held = false;
    let mut last = Value::Null;
    for _ in 0..400 {
        last = api.get(&format!("{INBOUND}/{id}")).await.ok(200).clone();
        match last["negotiation"]["outcome"].as_str() {
            Some("held") => {
                saw_held = true;
                assert!(last["negotiation"]["heldUntil"].is_string());
            }
            Some("auto_replied") => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_held, "held first: {last}");
    assert_eq!(last["negotiation"]["outcome"], "auto_replied", "{last}");
    let results: Vec<&str> =
        last["negotiation"]["trace"].as_array().unwrap().iter().map(|t| t["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["hold_passed"], "{last}");
    wait_mail(&w.smtp, "bo@dr50.example").await;
}

/// An `llm_check` gate asks the LLM its question (0.5 credits): yes decides, no passes, and an LLM
/// that cannot answer escalates instead of passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_checks_decide_and_an_llm_outage_escalates() {
    let w = world(Backend::Embedded).await;
    let api = &w.api;
    for d in ["a.example", "b.example", "c.example"] {
        w.ahrefs.set_metrics(d, 60.0, 1, 1, 1, 1);
    }
    api.post(&format!("{INBOUND}/settings"), json!({ "enabled": true, "autonomous": true })).await.ok(200);
    let gate = json!({ "name": "payment_check", "applies_to": "link_building.inbound",
        "when": { "llm_check": "Does the sender ask to be paid?" },
        "then": { "action": "escalate_to_approval", "reason": "they want money" } });
    api.post(GATES, gate).await.ok(201);

    w.llm.set_reply(json!({ "answer": "yes" }));
    let m =
        decide(api, &pitch("x@a.example", "X", "Guest post", "A guest post, for a small fee.", "l1@a.example")).await;
    assert_eq!(
        (m["negotiation"]["outcome"].as_str(), m["negotiation"]["decidedBy"]["name"].as_str()),
        (Some("escalated"), Some("payment_check")),
        "{m}"
    );
    let asked =
        w.llm.requests().iter().any(|r| r.user().is_some_and(|u| u.contains("Does the sender ask to be paid?")));
    assert!(asked, "the question reached the LLM");

    w.llm.set_reply(json!({ "answer": "no" }));
    let m = decide(api, &pitch("y@b.example", "Y", "Guest post", "A guest post idea.", "l2@b.example")).await;
    assert_eq!(m["negotiation"]["outcome"], "auto_replied", "{m}");

    w.llm.fail_next(20, linkcrm_testkit::LlmFailure::ServerError);
    let m = decide(api, &pitch("z@c.example", "Z", "Guest post", "A guest post idea.", "l3@c.example")).await;
    let n = &m["negotiation"];
    assert_eq!((n["outcome"].as_str(), n["trace"][0]["result"].as_str()), (Some("escalated"), Some("unknown")), "{m}");
    assert!(n["reason"].as_str().unwrap().contains("could not answer"), "{n}");

    // The negotiator's LLM calls are the workspace's `llm` health: the outage shows at once, and
    // the fresh record needs no probe.
    let h = w.env.agency().get(&format!("/v1/workspaces/{}/health", w.ws)).await.ok(200).clone();
    assert_eq!(h["integrations"]["llm"]["status"], "error", "{h}");
    assert_eq!(h["integrations"]["llm"]["lastError"]["code"], "provider_unavailable", "{h}");
    let probed = w.llm.requests().iter().any(|r| r.path == linkcrm_testkit::fake_llm::MODELS_PATH);
    assert!(!probed, "no probe of a fresh record");
}
