//! Campaigns end to end on both backends: templates, a custom campaign from drafts to approval to
//! emails that arrive (aiosmtpd), the counts and metrics the events make, pause and resume,
//! cancel, seed 001's examples, and another workspace seeing none of it.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::smtp::{ReceivedMessage, SmtpServer};
use serde_json::{json, Value};
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";
const CMP: &str = "/v1/link-building/campaign";
const TPL: &str = "/v1/link-building/templates";
const REPLY: &str = include_str!("fixtures/inbound/reply_price_gmail.eml");
const BOUNCE: &str = include_str!("fixtures/inbound/dsn_hard_bounce.eml");

async fn workspace(env: &Env, name: &str, auto: bool) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 40 })).await.ok(201);
    if auto {
        let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
        agency.patch(&format!("/v1/workspaces/{ws}"), patch).await.ok(200);
    }
    (ws.clone(), agency.in_workspace(&ws))
}

async fn mailbox(api: &Api, smtp: &SmtpServer) -> String {
    let body = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                       "smtpPort": smtp.port, "security": "none" });
    api.post("/v1/mailboxes", body).await.ok(201)["id"].as_str().unwrap().to_owned()
}

/// A relationship on `domain` with a contact (first name optional): (relationship, contact).
async fn target(api: &Api, domain: &str, first: Option<&str>, email: &str) -> (String, String) {
    let r = api.post(REL, json!({ "domain": domain })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let mut c = json!({ "accountId": acct, "email": email });
    if let Some(f) = first {
        c["firstName"] = json!(f);
    }
    let c = api.post("/v1/link-building/crm/contact", c).await;
    (rel, c.ok(201)["id"].as_str().unwrap().to_owned())
}

fn to(smtp: &SmtpServer, addr: &str) -> Vec<ReceivedMessage> {
    smtp.received().into_iter().filter(|m| m.rcpt_tos.iter().any(|r| r == addr)).collect()
}

async fn drafts(api: &Api, id: &str) -> Vec<Value> {
    api.get(&format!("{CMP}/{id}/drafts")).await.ok(200)["data"].as_array().unwrap().clone()
}

/// Polls the campaign's drafts until `n` exist.
async fn wait_drafts(api: &Api, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let d = drafts(api, id).await;
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("campaign {id} never had {n} drafts: {:?}", drafts(api, id).await);
}

async fn wait_for(mut check: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn event_types(api: &Api, rel: &str) -> Vec<String> {
    let r = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    r.ok(200)["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

async fn status(api: &Api, rel: &str) -> String {
    api.get(&format!("{REL}/{rel}")).await.ok(200)["status"].as_str().unwrap().to_owned()
}

each_backend!(templates_crud_render_and_placeholders, templates);
each_backend!(custom_campaign_from_drafts_to_counts, custom_campaign);
each_backend!(pause_holds_every_send_until_resume, pause_resume);
each_backend!(cancel_cancels_drafts_and_releases_credits, cancel);
each_backend!(follow_ups_thread_wait_for_ooo_and_stop_at_a_reply, follow_ups);
each_backend!(seed_001_list_and_use_cases_b_and_d, seed_001);
each_backend!(track_opens_records_one_open_per_send, opens);
/// Embedded only: twenty concurrent sends of one campaign take minutes on the single-threaded
/// DynamoDB emulator (every send's event updates the same campaign record); the rule itself is
/// the same code on both backends, and the other campaign tests run on both.
/// Embedded only, as it waits for a window to open (up to two minutes): the gate is the same
/// code on both backends, and its arithmetic is unit-tested (`linkcrm_domain::send_window`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_wait_for_the_campaigns_send_window() {
    send_window(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_bounces_over_five_percent_pause_the_campaign() {
    bounce_rate(Backend::Embedded).await
}

async fn templates(backend: Backend) {
    let env = Env::start(backend).await;
    let (_, api) = workspace(&env, "Tpl", false).await;
    let (_, other) = workspace(&env, "Other", false).await;
    let body = json!({ "name": "Guest post", "subject": "Idea for {domain}",
                       "body": "Hi {firstName|there},\n\nAs {position|an editor} at {accountName|your site}...\n{senderName}",
                       "category": "guest_post" });
    let t = api.post(TPL, body).await.ok(201).clone();
    let id = t["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tpl_"));
    assert_eq!(t["placeholders"], json!(["domain", "firstName", "position", "accountName", "senderName"]));
    // An unknown placeholder is named.
    let bad = api.post(TPL, json!({ "name": "x", "subject": "Hi {frstName}", "body": "b" })).await;
    assert_eq!(bad.problem(400, "invalid_template")["details"]["placeholder"], "frstName");
    let bad = api.patch(&format!("{TPL}/{id}"), json!({ "body": "{domian}" })).await;
    bad.problem(400, "invalid_template");
    // List, get, update with If-Match.
    assert_eq!(api.get(TPL).await.ok(200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(api.get(&format!("{TPL}?category=other")).await.ok(200)["data"].as_array().unwrap().len(), 0);
    let got = api.get(&format!("{TPL}/{id}")).await;
    assert_eq!(got.header("etag"), Some("\"1\""));
    let stale = api.with_header("If-Match", "\"7\"").patch(&format!("{TPL}/{id}"), json!({ "name": "New" })).await;
    stale.problem(412, "precondition_failed");
    let u = api.patch(&format!("{TPL}/{id}"), json!({ "name": "Guest post v2", "category": null })).await;
    assert_eq!((u.ok(200)["name"].as_str(), u.body["version"].as_i64()), (Some("Guest post v2"), Some(2)));
    assert!(u.body["category"].is_null());
    // Render for a relationship: values, fallbacks, and what is missing.
    let (rel, contact) = target(&api, "engineering-blog.com", Some("Marina"), "marina@engineering-blog.com").await;
    let r = api.post(&format!("{TPL}/{id}/render"), json!({ "relationshipId": rel })).await.ok(200).clone();
    assert_eq!(r["subject"], "Idea for engineering-blog.com");
    assert!(r["body"].as_str().unwrap().starts_with("Hi Marina,\n\nAs an editor at your site...\n{senderName}"), "{r}");
    assert_eq!(r["missingPlaceholders"], json!(["senderName"]));
    assert_eq!(r["contactId"], contact.as_str());
    // Another workspace sees none of it.
    other.get(&format!("{TPL}/{id}")).await.problem(404, "template_not_found");
    assert_eq!(other.get(TPL).await.ok(200)["data"].as_array().unwrap().len(), 0);
    other.delete(&format!("{TPL}/{id}")).await.problem(404, "template_not_found");
    api.delete(&format!("{TPL}/{id}")).await.ok(204);
    api.get(&format!("{TPL}/{id}")).await.problem(404, "template_not_found");
}

async fn custom_campaign(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    // Exports in parts of two rows: the local binary streams them as one response.
    let mut env =
        Env::start_with(backend, &[("LINKCRM_EXPORT_MAX_BYTES", "1"), ("LINKCRM_EXPORT_PAGE_ROWS", "2")]).await;
    let (ws, api) = workspace(&env, "Acme", false).await;
    let (_, other) = workspace(&env, "Beta", false).await;
    mailbox(&api, &smtp).await;
    let tpl = api
        .post(TPL, json!({ "name": "t", "subject": "A guest post for {domain}", "body": "Hi {firstName},\n\nAn idea.\n\nDana" }))
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let names = ["Marina", "Dev", "Ana", "Tom", "Lee"];
    let mut rels = Vec::new();
    let mut emails = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let domain = format!("site{i}-blog.com");
        let email = format!("{}@{domain}", n.to_lowercase());
        let (rel, _) = target(&api, &domain, Some(n), &email).await;
        rels.push(rel);
        emails.push(email);
    }
    // A partner whose contact has no first name: no draft, and the reason says which value.
    let (nameless, _) = target(&api, "nameless-blog.com", None, "info@nameless-blog.com").await;
    let mut ids = rels.clone();
    ids.push(nameless.clone());
    let c = api
        .post(CMP, json!({ "type": "custom", "name": "Q3 partners", "relationshipIds": ids, "templateId": tpl }))
        .await
        .ok(201)
        .clone();
    let id = c["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cmp_"), "{id}");
    assert_eq!(
        (c["type"].as_str(), c["status"].as_str(), c["membersCount"].as_i64()),
        (Some("custom"), Some("active"), Some(6))
    );
    let d = wait_drafts(&api, &id, 5).await;
    assert_eq!(d.len(), 5);
    assert!(d.iter().all(|x| x["status"] == "awaiting_approval"), "{d:?}");
    let marina = d.iter().find(|x| x["relationshipId"] == rels[0].as_str()).unwrap();
    assert_eq!(marina["subject"], "A guest post for site0-blog.com");
    assert!(marina["body"].as_str().unwrap().starts_with("Hi Marina,"));
    let metrics = api.get(&format!("{CMP}/{id}/metrics")).await.ok(200).clone();
    let skipped =
        metrics["byDomain"].as_array().unwrap().iter().find(|b| b["domain"] == "nameless-blog.com").unwrap().clone();
    assert_eq!(skipped["reason"]["code"], "missing_placeholder_value", "{skipped}");
    assert_eq!(skipped["reason"]["placeholders"], json!(["firstName"]));
    // Drafts reserve their sends' credits; nothing is sent before approval.
    let usage = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(usage.ok(200)["creditsReserved"].as_f64(), Some(10.0));
    assert!(smtp.received().is_empty());
    assert_eq!(status(&api, &rels[0]).await, "PROSPECTING");

    // Approve three (one with an edit), reject two.
    let by_rel = |r: &str| d.iter().find(|x| x["relationshipId"] == r).unwrap()["id"].as_str().unwrap().to_owned();
    let approve: Vec<String> = rels[..3].iter().map(|r| by_rel(r)).collect();
    let edits = json!({ approve[2].clone(): { "subject": "Edited subject" } });
    let r = api.post(&format!("{CMP}/{id}/approve"), json!({ "draftIds": approve, "edits": edits })).await;
    assert_eq!(r.ok(200)["decided"].as_array().unwrap().len(), 3, "{}", r.body);
    let mut message_ids = Vec::new();
    for inv in &approve {
        let done = api.wait_invocation(inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        message_ids.push(done["result"]["messageId"].as_str().unwrap().to_owned());
    }
    for (i, email) in emails[..3].iter().enumerate() {
        let got = to(&smtp, email);
        assert_eq!(got.len(), 1, "{email}");
        assert_eq!(got[0].header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        let want = if i == 2 { "Edited subject".to_owned() } else { format!("A guest post for site{i}-blog.com") };
        assert_eq!(got[0].header("Subject").as_deref(), Some(want.as_str()));
        assert!(got[0].text().contains(&format!("Hi {},", names[i])), "{}", got[0].text());
    }
    // The seed's pipeline steps were recorded before the send.
    let types = event_types(&api, &rels[0]).await;
    for t in ["DRAFT_APPROVED", "SEND_QUEUED", "EMAIL_SENT"] {
        assert!(types.contains(&t.to_owned()), "{t} in {types:?}");
    }
    assert_eq!(status(&api, &rels[0]).await, "CONTACTED_BY_US");
    let rejected: Vec<String> = rels[3..].iter().map(|r| by_rel(r)).collect();
    let r = api.post(&format!("{CMP}/{id}/reject"), json!({ "reason": "not a fit" })).await;
    assert_eq!(r.ok(200)["decided"].as_array().unwrap().len(), 2, "{}", r.body);
    for inv in &rejected {
        let done = api.wait_invocation(inv, &["CANCELLED"], Duration::from_secs(10)).await;
        assert_eq!(done["error"]["code"], "rejected");
    }
    assert_eq!(status(&api, &rels[3]).await, "PROSPECTING");

    // The script: one hard bounce, one reply, one placement.
    let bounce = BOUNCE
        .replace("j.doe@gardening-blog.example.net", &emails[0])
        .replace("0195b3c2a1e47d3c9f00a1b2c3d4e5f6@outreach.example.com", &message_ids[0]);
    api.post("/v1/link-building/inbound/email", json!({ "raw": bounce })).await.ok(201);
    let reply = REPLY.replace("0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com", &message_ids[1]);
    assert_eq!(api.post("/v1/link-building/inbound/email", json!({ "raw": reply })).await.ok(201)["matched"], true);
    let placed = json!({ "relationshipId": rels[2], "type": "LINK_PLACED",
                         "metadata": { "linkUrl": "https://site2-blog.com/best-tools" } });
    api.post("/v1/link-building/crm/event", placed).await.ok(201);

    let mut m = Value::Null;
    wait_for(
        async || {
            m = api.get(&format!("{CMP}/{id}/metrics")).await.ok(200).clone();
            m["timeline"].as_array().unwrap().iter().any(|e| e["event"] == "approvals_completed")
        },
        "approvals_completed",
    )
    .await;
    let s = &m["summary"];
    assert_eq!(
        json!([s["drafted"], s["sent"], s["delivered"], s["replied"], s["placed"], s["replyRate"], s["placementRate"]]),
        json!([5, 3, 2, 1, 1, 0.33, 0.33]),
        "{m}"
    );
    let tl: Vec<&str> = m["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in
        ["campaign_created", "drafts_ready", "approvals_completed", "emails_sent", "first_reply", "first_link_placed"]
    {
        assert!(tl.contains(&e), "{e} in {tl:?}");
    }
    let find = |e: &str| m["timeline"].as_array().unwrap().iter().find(|x| x["event"] == e).unwrap().clone();
    assert_eq!(
        (find("drafts_ready")["count"].as_i64(), find("approvals_completed")["count"].as_i64()),
        (Some(5), Some(3))
    );
    assert_eq!(find("emails_sent")["count"], 3);
    let by_domain = |d: &str| m["byDomain"].as_array().unwrap().iter().find(|b| b["domain"] == d).unwrap().clone();
    assert_eq!(by_domain("site0-blog.com")["status"], "bounced");
    assert_eq!(by_domain("site1-blog.com")["status"], "replied");
    assert_eq!(by_domain("site2-blog.com")["status"], "link_placed");
    assert_eq!(by_domain("site2-blog.com")["linkUrl"], "https://site2-blog.com/best-tools");
    assert_eq!(by_domain("site3-blog.com")["status"], "blocked");

    // The list (seed 001's shape) carries the same counts; usage shows 3 sends charged.
    let list = api.get(&format!("{CMP}?type=custom&status=active")).await.ok(200).clone();
    let row = &list["data"][0];
    assert_eq!(
        json!([row["id"], row["draftsCount"], row["sentCount"], row["repliedCount"], row["placedCount"]]),
        json!([id, 5, 3, 1, 1])
    );
    assert_eq!(api.get(&format!("{CMP}?status=active")).await.ok(200)["total"], 1);
    let usage = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(
        (usage.ok(200)["creditsReserved"].as_f64(), usage.body["creditsUsedThisCycle"].as_f64()),
        (Some(0.0), Some(6.0))
    );

    // The reporting snapshot: the workspace's totals, and one row per workspace for the agency.
    let snap = api.get("/v1/link-building/reporting/snapshot").await.ok(200).clone();
    let t = &snap["workspace"]["totals"];
    assert_eq!(
        json!([t["sent"], t["delivered"], t["replied"], t["placed"], t["replyRate"]]),
        json!([3, 2, 1, 1, 0.33]),
        "{snap}"
    );
    assert_eq!(snap["workspace"]["campaigns"]["active"], 1);
    let rows =
        env.agency().get("/v1/link-building/reporting/snapshot").await.ok(200)["data"].as_array().unwrap().clone();
    let mine = rows.iter().find(|r| r["workspaceId"] == ws.as_str()).expect("our workspace has a row");
    assert_eq!(mine["totals"]["sent"], 3);
    assert!(rows.iter().any(|r| r["workspaceId"] != ws.as_str() && r["totals"]["sent"] == 0), "{rows:?}");
    let stranger = env.other_agency().get("/v1/link-building/reporting/snapshot").await.ok(200).clone();
    assert!(stranger["data"].as_array().unwrap().iter().all(|r| r["workspaceId"] != ws.as_str()), "{stranger}");

    // CSV exports: RFC 4180 with a header row, in parts linked by `Link: rel="next"`.
    let rows = export(&api, &format!("{CMP}/{id}/export/relationships")).await;
    assert_eq!(rows[0][..4], ["domain", "relationship_id", "account_id", "status"]);
    assert_eq!(rows.len(), 1 + 6, "six partners (one skipped for a missing value): {rows:?}");
    let st = |d: &str| rows.iter().find(|r| r[0] == d).unwrap()[3].clone();
    assert_eq!(
        (st("site0-blog.com"), st("site1-blog.com"), st("site2-blog.com")),
        ("bounced".into(), "replied".into(), "link_placed".into())
    );
    let sends = export(&api, &format!("{CMP}/{id}/export/sends")).await;
    assert_eq!(sends.len(), 1 + 5);
    assert_eq!(sends.iter().filter(|r| r[5] == "sent").count(), 3, "{sends:?}");
    let replies = export(&api, &format!("{CMP}/{id}/export/replies")).await;
    assert_eq!(replies.len(), 1 + 1, "{replies:?}");
    assert_eq!(replies[1][0], "site1-blog.com");
    api.get(&format!("{CMP}/{id}/export/everything")).await.problem(400, "invalid_request");

    // `linkcrm replay` recomputes the counts from the events alone and finds them equal.
    // (The embedded store is one process's: the server stops while the operator command runs.)
    let report = tokio::task::block_in_place(|| {
        env.server.terminate().expect("server stops");
        let out = common::cli(&env.opts, &["replay"]);
        env.restart();
        out
    });
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert!(report["campaigns"].as_u64().unwrap_or(0) >= 1, "{report}");
    assert_eq!(report["mismatches"], json!([]), "{report}");

    // Another workspace sees none of it (the server restarted on a new port).
    let other = env
        .agency()
        .in_workspace(other.headers.iter().find(|(k, _)| k == "X-Workspace-Id").map(|(_, v)| v.as_str()).unwrap());
    other.get(&format!("{CMP}/{id}")).await.problem(404, "campaign_not_found");
    other.get(&format!("{CMP}/{id}/metrics")).await.problem(404, "campaign_not_found");
    other.get(&format!("{CMP}/{id}/drafts")).await.problem(404, "campaign_not_found");
    other.post(&format!("{CMP}/{id}/pause"), json!({})).await.problem(404, "campaign_not_found");
    assert_eq!(other.get(CMP).await.ok(200)["data"].as_array().unwrap().len(), 0);
    let r = other.post(CMP, json!({ "type": "custom", "name": "x", "relationshipIds": [rels[0]] })).await;
    r.problem(404, "relationship_not_found");
}

/// Every row of a CSV export, following `Link: rel="next"` if any (and checking the headers).
async fn export(api: &Api, first: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut next = Some(first.to_owned());
    let mut parts = 0;
    while let Some(path) = next.take() {
        let r = api.get(&path).await;
        r.ok(200);
        assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8; header=present"));
        assert!(r.header("content-disposition").unwrap().starts_with("attachment; filename=\"cmp_"));
        rows.extend(csv_rows(&r.text));
        parts += 1;
        next = r.header("link").map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_owned());
    }
    // The local binary streams every part as one response (API Gateway's parts and their
    // `Link` are checked by functions/campaigns/tests/lambda.rs).
    assert_eq!(parts, 1, "the export came whole");
    rows
}

/// RFC 4180 rows (quoted cells, doubled quotes, CRLF).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted, mut chars) = (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    rows
}

async fn pause_resume(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (_, api) = workspace(&env, "Auto", true).await;
    mailbox(&api, &smtp).await;
    let (rel, contact) = target(&api, "paused-blog.com", Some("Pia"), "pia@paused-blog.com").await;
    let c = api.post(CMP, json!({ "type": "custom", "name": "One-offs" })).await.ok(201).clone();
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["membersCount"], 0, "a custom campaign may start empty");

    // Seed 001's errors around pause and resume.
    api.post(&format!("{CMP}/{id}/resume"), json!({})).await.problem(409, "already_active");
    let p = api.post(&format!("{CMP}/{id}/pause"), json!({ "reason": "Need to revisit messaging" })).await;
    assert_eq!(
        (p.ok(200)["status"].as_str(), p.body["pauseReason"].as_str()),
        (Some("paused"), Some("Need to revisit messaging"))
    );
    api.post(&format!("{CMP}/{id}/pause"), json!({})).await.problem(409, "already_paused");

    // Into a paused campaign a send waits: queued, held, nothing arrives.
    let body = json!({ "relationshipId": rel, "contactId": contact, "subject": "Quick follow-up on my earlier note",
                       "body": "Hi Pia, just checking in ..." });
    let r = api.post(&format!("{CMP}/{id}/send-email"), body).await.ok(202).clone();
    let inv = r["invocationId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(smtp.received().is_empty(), "nothing is sent while paused");
    let held = api.get(&format!("/v1/agent/invocations/{inv}")).await.ok(200).clone();
    assert_eq!(held["status"], "PENDING", "{held}");
    wait_for(async || status(&api, &rel).await == "QUEUED", "the relationship QUEUED").await;
    // The relationship joined the campaign.
    assert_eq!(api.get(&format!("{CMP}/{id}")).await.ok(200)["membersCount"], 1);

    // Resumed (through the assistant's toggle): the held send goes out, once.
    let t = api.post(&format!("{CMP}/{id}/toggle"), json!({ "action": "resume" })).await;
    assert_eq!(t.ok(200)["status"], "active");
    let done = api.wait_invocation(&inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(to(&smtp, "pia@paused-blog.com").len(), 1);
    let m = api.get(&format!("{CMP}/{id}/metrics")).await.ok(200).clone();
    assert_eq!(m["summary"]["sent"], 1);
    let tl: Vec<&str> = m["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(tl.contains(&"paused") && tl.contains(&"resumed"), "{tl:?}");

    // Without a contact named: the one last emailed in the relationship.
    let body = json!({ "relationshipId": rel, "subject": "One more", "body": "Hi again" });
    let r = api.post(&format!("{CMP}/{id}/send-email"), body).await.ok(202).clone();
    let done = api
        .wait_invocation(r["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(to(&smtp, "pia@paused-blog.com").len(), 2);
    // A relationship with no contact at all: 422 no_contact.
    let bare =
        api.post(REL, json!({ "domain": "no-contact-blog.com" })).await.ok(201)["id"].as_str().unwrap().to_owned();
    let body = json!({ "relationshipId": bare, "subject": "Hi", "body": "Hi" });
    api.post(&format!("{CMP}/{id}/send-email"), body).await.problem(422, "no_contact");

    // Completed: nothing more is sent in it, and it cannot be paused.
    api.post(&format!("{CMP}/{id}/complete"), json!({})).await.ok(200);
    let body = json!({ "relationshipId": rel, "subject": "Late", "body": "Late" });
    api.post(&format!("{CMP}/{id}/send-email"), body).await.problem(422, "invalid_state_for_send");
    api.post(&format!("{CMP}/{id}/pause"), json!({})).await.problem(422, "invalid_state");
    api.post(&format!("{CMP}/{id}/resume"), json!({})).await.problem(422, "invalid_state");
    api.get(&format!("{CMP}/cmp_00000000000000000000000000/metrics")).await.problem(404, "campaign_not_found");
}

async fn cancel(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (ws, api) = workspace(&env, "Cancel", false).await;
    mailbox(&api, &smtp).await;
    target(&api, "one-blog.com", Some("Uno"), "uno@one-blog.com").await;
    target(&api, "two-blog.com", Some("Dos"), "dos@two-blog.com").await;
    let c = api
        .post(
            CMP,
            json!({ "type": "custom", "name": "By domain", "domains": ["one-blog.com", "https://www.two-blog.com/x"],
                          "subject": "Hello {firstName}", "body": "Hi {firstName}" }),
        )
        .await
        .ok(201)
        .clone();
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["membersCount"], 2, "{c}");
    let d = wait_drafts(&api, &id, 2).await;
    let usage = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(usage.ok(200)["creditsReserved"].as_f64(), Some(4.0));
    // Paused: an approved draft is held, and its send can still be cancelled by hand.
    api.post(&format!("{CMP}/{id}/pause"), json!({})).await.ok(200);
    let first = d[0]["id"].as_str().unwrap().to_owned();
    let r = api.post(&format!("{CMP}/{id}/approve"), json!({ "draftIds": [first] })).await;
    assert_eq!(r.ok(200)["decided"], json!([first]));
    wait_for(
        async || event_types(&api, d[0]["relationshipId"].as_str().unwrap()).await.contains(&"SEND_QUEUED".to_owned()),
        "SEND_QUEUED",
    )
    .await;
    let c = api.post(&format!("/v1/agent/invocations/{first}/cancel"), json!({})).await;
    assert_eq!(c.ok(200)["status"], "CANCELLED");
    let r = api.delete(&format!("{CMP}/{id}")).await;
    assert_eq!(r.ok(200)["status"], "cancelled");
    for x in &d {
        let done = api.wait_invocation(x["id"].as_str().unwrap(), &["CANCELLED"], Duration::from_secs(20)).await;
        assert_eq!(done["status"], "CANCELLED");
    }
    let mut reserved = None;
    wait_for(
        async || {
            let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
            reserved = u.ok(200)["creditsReserved"].as_f64();
            reserved == Some(0.0)
        },
        "credits released",
    )
    .await;
    // The cancelled drafts leave the campaign's count of waiting ones through its decision job.
    let mut c = json!(null);
    wait_for(
        async || {
            c = api.get(&format!("{CMP}/{id}")).await.ok(200).clone();
            c["awaitingApprovalCount"] == 0
        },
        "no draft waiting",
    )
    .await;
    assert_eq!(c["status"], "cancelled");
    api.delete(&format!("{CMP}/{id}")).await.problem(422, "invalid_state");
    api.post(&format!("{CMP}/{id}/approve"), json!({})).await.problem(422, "invalid_state");
    assert!(smtp.received().is_empty());
    // Bad input is a 400 naming the field.
    api.post(CMP, json!({ "type": "serp", "name": "x" })).await.problem(400, "invalid_request");
    api.post(CMP, json!({ "type": "custom", "name": "x", "subject": "only a subject" }))
        .await
        .problem(400, "invalid_request");
    api.post(CMP, json!({ "type": "custom", "name": "x", "subject": "{nope}", "body": "b" }))
        .await
        .problem(400, "invalid_template");
    api.get(&format!("{CMP}?status=running")).await.problem(400, "invalid_request");
}

const OOO: &str = include_str!("fixtures/inbound/ooo_auto_reply.eml");

/// Waits until `addr` has received `n` messages; returns them in arrival order.
async fn wait_mail(smtp: &SmtpServer, addr: &str, n: usize) -> Vec<ReceivedMessage> {
    for _ in 0..600 {
        let got = to(smtp, addr);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} never received {n} messages (has {})", to(smtp, addr).len());
}

async fn wait_sent(api: &Api, rel: &str, n: usize) {
    wait_for(async || event_types(api, rel).await.iter().filter(|t| *t == "EMAIL_SENT").count() >= n, "EMAIL_SENT")
        .await;
}

fn bare(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_owned()
}

async fn follow_ups(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    // One follow-up "day" is one second here.
    let env = Env::start_with(backend, &[("LINKCRM_DAY_SECONDS", "1")]).await;
    let (_, api) = workspace(&env, "Follow", true).await;
    mailbox(&api, &smtp).await;
    let (a, _) = target(&api, "site-a.com", Some("Ana"), "ana@site-a.com").await;
    let (b, _) = target(&api, "site-b.com", Some("Ben"), "ben@site-b.com").await;
    let (c, _) = target(&api, "site-c.com", Some("Cem"), "cem@site-c.com").await;
    let bad = json!({ "type": "custom", "name": "x", "followUps": [{ "afterDays": 0, "body": "b" }] });
    api.post(CMP, bad).await.problem(400, "invalid_request");
    let bad = json!({ "type": "custom", "name": "x", "followUps": [{ "afterDays": 2, "subject": "s" }] });
    api.post(CMP, bad).await.problem(400, "invalid_request");
    let body = json!({ "type": "custom", "name": "With follow-ups", "relationshipIds": [a, b, c],
        "subject": "Guest post for {domain}", "body": "Hi {firstName}, an idea.",
        "followUps": [{ "afterDays": 2, "body": "Hi {firstName}, bumping this." },
                      // Far enough after the first follow-up that Ana's reply to it, posted once it
                      // arrives, lands before this step is due even on a loaded machine.
                      { "afterDays": 6, "subject": "Last note for {domain}", "body": "Final note." }] });
    let id = api.post(CMP, body).await.ok(201)["id"].as_str().unwrap().to_owned();

    // The first sends (auto policy), then the first follow-up in the same thread.
    let first = wait_mail(&smtp, "ana@site-a.com", 1).await;
    let first_id = bare(&first[0].header("Message-ID").unwrap());
    let c_first = wait_mail(&smtp, "cem@site-c.com", 1).await;
    // Cem is away: his auto-reply moves his follow-up to after the date he gives. (The message
    // reaches the server just before its EMAIL_SENT commits: wait for that, as a reply would.)
    wait_sent(&api, &c, 1).await;
    let c_mid = bare(&c_first[0].header("Message-ID").unwrap());
    let ooo = OOO.replace("0195bc01e9a27f3e8d10b2c3d4e5f6a7@outreach.example.com", &c_mid);
    let r = api.post("/v1/link-building/inbound/email", json!({ "raw": ooo })).await;
    assert_eq!((r.ok(201)["matched"].as_bool(), r.body["class"].as_str()), (Some(true), Some("out_of_office")));

    let got = wait_mail(&smtp, "ana@site-a.com", 2).await;
    let fu = &got[1];
    assert_eq!(fu.header("Subject").as_deref(), Some("Re: Guest post for site-a.com"));
    assert_eq!(fu.header("In-Reply-To").map(|h| bare(&h)), Some(first_id.clone()));
    assert!(fu.text().contains("Hi Ana, bumping this."), "{}", fu.text());
    // Ana answers the follow-up: her last step is cancelled.
    wait_sent(&api, &a, 2).await;
    let fu_id = bare(&fu.header("Message-ID").unwrap());
    let reply = REPLY.replace("0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com", &fu_id);
    assert_eq!(api.post("/v1/link-building/inbound/email", json!({ "raw": reply })).await.ok(201)["matched"], true);

    // Ben gets both steps, the last threaded under both earlier messages.
    let got = wait_mail(&smtp, "ben@site-b.com", 3).await;
    let ids: Vec<String> = got.iter().map(|m| bare(&m.header("Message-ID").unwrap())).collect();
    assert_eq!(got[2].header("Subject").as_deref(), Some("Last note for site-b.com"));
    let refs = got[2].header("References").unwrap();
    assert!(refs.contains(&ids[0]) && refs.contains(&ids[1]), "{refs}");
    assert_eq!(got[2].header("In-Reply-To").map(|h| bare(&h)), Some(ids[1].clone()));

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(to(&smtp, "ana@site-a.com").len(), 2, "a reply cancels the follow-ups");
    assert_eq!(to(&smtp, "cem@site-c.com").len(), 1, "the out-of-office moves the follow-up");
    let m = api.get(&format!("{CMP}/{id}/metrics")).await.ok(200).clone();
    let fu_of =
        |d: &str| m["byDomain"].as_array().unwrap().iter().find(|x| x["domain"] == d).unwrap()["followUp"].clone();
    assert_eq!(
        (fu_of("site-a.com")["status"].as_str(), fu_of("site-a.com")["reason"]["code"].as_str()),
        (Some("cancelled"), Some("replied"))
    );
    assert_eq!(fu_of("site-b.com")["status"], "done");
    let cem = fu_of("site-c.com");
    assert_eq!(cem["status"], "scheduled", "{cem}");
    assert!(cem["dueAt"].as_str().unwrap().contains("-03-18T09:00:00"), "the day after 17 March: {cem}");
    assert_eq!(m["summary"]["sent"], 6, "{m}");
}

/// Seed 001's list request and use cases B (weekly reply rate report) and D (stop an
/// underperforming campaign), as written.
async fn seed_001(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (_, api) = workspace(&env, "Seed", true).await;
    mailbox(&api, &smtp).await;
    let (rel, contact) = target(&api, "engineering-blog.com", Some("Marina"), "marina@engineering-blog.com").await;
    let id = api.post(CMP, json!({ "type": "custom", "name": "Q3 engineering blogs" })).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "relationshipId": rel, "contactId": contact, "subject": "Quick follow-up on my earlier note",
                       "body": "Hi Marina, just checking in ...", "scheduleAt": "2026-05-26T10:00:00-04:00" });
    let r = api.post(&format!("{CMP}/{id}/send-email"), body).await.ok(202).clone();
    api.wait_invocation(r["invocationId"].as_str().unwrap(), &["SUCCEEDED"], Duration::from_secs(30)).await;

    // The list request of the seed: types, status and since (our campaign is custom).
    let q = "type=serp,competitor&status=active&since=2026-05-01T00:00:00Z";
    assert_eq!(api.get(&format!("{CMP}?{q}")).await.ok(200)["data"], json!([]));
    let listed =
        api.get(&format!("{CMP}?type=custom,serp&status=active&since=2026-05-01T00:00:00Z")).await.ok(200).clone();
    let row = &listed["data"][0];
    for k in ["id", "type", "name", "createdAt", "status", "draftsCount", "sentCount", "repliedCount", "placedCount"] {
        assert!(row.get(k).is_some(), "{k} in {row}");
    }
    // B: reply rate per campaign from the list of the last 7 days.
    let week_ago = (chrono::Utc::now() - chrono::Duration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed = api.get(&format!("{CMP}?since={}", week_ago.replace('+', "%2B"))).await.ok(200).clone();
    let rows: Vec<(String, f64)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let sent = c["sentCount"].as_f64().unwrap();
            (c["id"].as_str().unwrap().to_owned(), c["repliedCount"].as_f64().unwrap() / sent)
        })
        .collect();
    assert_eq!(rows, vec![(id.clone(), 0.0)]);
    // D: the metrics' reply rate is under 5 %: pause with the reason.
    let metrics = api.get(&format!("{CMP}/{id}/metrics")).await.ok(200).clone();
    let reply_rate = metrics["summary"]["replyRate"].as_f64().unwrap();
    assert!(reply_rate < 0.05, "{metrics}");
    let p = api.post(&format!("{CMP}/{id}/pause"), json!({ "reason": "Low reply rate" })).await;
    assert_eq!(
        (p.ok(200)["status"].as_str(), p.body["pauseReason"].as_str()),
        (Some("paused"), Some("Low reply rate"))
    );
}

async fn bounce_rate(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Bouncy").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 60 })).await.ok(201);
    let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), patch).await.ok(200);
    let api = agency.in_workspace(&ws);
    mailbox(&api, &smtp).await;
    let mut rels = Vec::new();
    for i in 0..20 {
        let (rel, _) =
            target(&api, &format!("bounce{i}-blog.com"), Some("Sam"), &format!("sam@bounce{i}-blog.com")).await;
        rels.push(rel);
    }
    let body = json!({ "type": "custom", "name": "Big list", "relationshipIds": rels,
                       "subject": "Hello {domain}", "body": "Hi {firstName}" });
    let id = api.post(CMP, body).await.ok(201)["id"].as_str().unwrap().to_owned();
    wait_for(async || api.get(&format!("{CMP}/{id}")).await.ok(200)["sentCount"] == 20, "20 sends").await;
    // One hard bounce in 20 is 5 %: not over it. A second one is.
    let mut message_ids = Vec::new();
    for d in drafts(&api, &id).await.iter().take(2) {
        let done = api.wait_invocation(d["id"].as_str().unwrap(), &["SUCCEEDED"], Duration::from_secs(30)).await;
        message_ids
            .push((d["to"].as_str().unwrap().to_owned(), done["result"]["messageId"].as_str().unwrap().to_owned()));
    }
    let bounce = |(to, mid): &(String, String)| {
        BOUNCE
            .replace("j.doe@gardening-blog.example.net", to)
            .replace("0195b3c2a1e47d3c9f00a1b2c3d4e5f6@outreach.example.com", mid)
            .replace("20250304091407.4Xk2Qm0T3Rz9sVp@mx1", &format!("{}.dsn@mx1", mid.split('@').next().unwrap()))
    };
    api.post("/v1/link-building/inbound/email", json!({ "raw": bounce(&message_ids[0]) })).await.ok(201);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api.get(&format!("{CMP}/{id}")).await.ok(200)["status"], "active");
    api.post("/v1/link-building/inbound/email", json!({ "raw": bounce(&message_ids[1]) })).await.ok(201);
    let mut c = json!(null);
    wait_for(
        async || {
            c = api.get(&format!("{CMP}/{id}")).await.ok(200).clone();
            c["status"] == "paused"
        },
        "the campaign to pause itself",
    )
    .await;
    assert_eq!(c["pauseReason"], "bounce_rate");
    assert_eq!(c["summary"]["delivered"], 18);
}

/// `trackOpens`: the email gets an HTML part with a pixel; loading it records EMAIL_OPENED once
/// per send and the metrics count it (approximately, they say); untracked campaigns send plain text.
async fn opens(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (_, api) = workspace(&env, "Acme", true).await;
    mailbox(&api, &smtp).await;
    let (rel, _) = target(&api, "opens-blog.com", Some("Olu"), "olu@opens-blog.com").await;
    let (rel2, _) = target(&api, "plain-blog.com", Some("Pia"), "pia@plain-blog.com").await;
    let body = json!({ "type": "custom", "name": "Tracked", "relationshipIds": [rel], "trackOpens": true,
                       "subject": "Hello {domain}", "body": "Hi {firstName},\n\nA <short> note.\nDana" });
    let id = api.post(CMP, body).await.ok(201)["id"].as_str().unwrap().to_owned();
    let plain =
        json!({ "type": "custom", "name": "Plain", "relationshipIds": [rel2], "subject": "Hi", "body": "Hello" });
    api.post(CMP, plain).await.ok(201);
    let got = wait_mail(&smtp, "olu@opens-blog.com", 1).await;
    let raw = String::from_utf8_lossy(&got[0].raw).replace("=\r\n", "").replace("=3D", "=");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains("&lt;short&gt;"), "the HTML part escapes the text: {raw}");
    let start = raw.find("/v1/t/o/").expect("a pixel URL");
    let path: String = raw[start..].chars().take_while(|c| *c != '"').collect();
    assert!(path.ends_with(".gif"), "{path}");
    let plain_mail = wait_mail(&smtp, "pia@plain-blog.com", 1).await;
    assert!(!String::from_utf8_lossy(&plain_mail[0].raw).contains("/v1/t/o/"), "untracked campaigns carry no pixel");

    // The pixel is keyless; two loads are one open. (Its send is recorded just after the server
    // accepted the message: a pixel loaded before that is not an open of a sent email yet.)
    wait_for(async || event_types(&api, &rel).await.iter().any(|t| t == "EMAIL_SENT"), "the send recorded").await;
    let anon = env.anonymous();
    for _ in 0..2 {
        let r = anon.get(&path).await;
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(r.header("content-type"), Some("image/gif"));
        assert!(r.header("cache-control").unwrap().contains("no-store"));
    }
    assert_eq!(anon.get("/v1/t/o/not-a-token.gif").await.status.as_u16(), 404);
    let mut m = Value::Null;
    wait_for(
        async || {
            m = api.get(&format!("{CMP}/{id}/metrics")).await.ok(200).clone();
            m["summary"]["opened"] == 1
        },
        "the open counted",
    )
    .await;
    assert_eq!(m["summary"]["openRate"], 1.0);
    assert_eq!(m["opensApproximate"], true);
    let types = event_types(&api, &rel).await;
    assert_eq!(types.iter().filter(|t| *t == "EMAIL_OPENED").count(), 1, "{types:?}");
}

async fn send_window(backend: Backend) {
    use chrono::Timelike;
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (ws, api) = workspace(&env, "Acme", true).await;
    mailbox(&api, &smtp).await;
    let agency = env.agency();
    let r = agency.patch(&format!("/v1/workspaces/{ws}"), json!({ "settings": { "timeZone": "Mars/Olympus" } })).await;
    r.problem(422, "invalid_time_zone");
    let r = agency.patch(&format!("/v1/workspaces/{ws}"), json!({ "settings": { "timeZone": "Asia/Tokyo" } })).await;
    assert_eq!(r.ok(200)["settings"]["timeZone"], "Asia/Tokyo");
    let (rel, _) = target(&api, "window-blog.com", Some("Wen"), "wen@window-blog.com").await;
    let bad =
        json!({ "type": "custom", "name": "x", "sendWindow": { "days": ["mon"], "start": "17:00", "end": "09:00" } });
    api.post(CMP, bad).await.problem(422, "invalid_send_window");

    // A window opening at the next whole minute but one, Tokyo time (not across midnight).
    let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
    loop {
        let now = chrono::Utc::now().with_timezone(&tokyo);
        if now.hour() * 60 + now.minute() < 23 * 60 + 55 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let now = chrono::Utc::now().with_timezone(&tokyo);
    // The next whole minute, unless it is too close for the draft to be queued before it opens.
    let open = now.hour() * 60 + now.minute() + if now.second() < 40 { 1 } else { 2 };
    let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let window = json!({ "days": all, "start": hm(open), "end": hm(open + 2) });
    let body = json!({ "type": "custom", "name": "Windowed", "relationshipIds": [rel], "sendWindow": window,
                       "subject": "Hello {domain}", "body": "Hi {firstName}" });
    let c = api.post(CMP, body).await.ok(201).clone();
    assert_eq!(c["settings"]["sendWindow"]["start"], hm(open));
    let id = c["id"].as_str().unwrap().to_owned();
    let d = wait_drafts(&api, &id, 1).await;
    let inv = d[0]["id"].as_str().unwrap().to_owned();
    // It waits: queued for the opening, nothing sent before it.
    let mut waiting = Value::Null;
    wait_for(
        async || {
            waiting = api.get(&format!("/v1/agent/invocations/{inv}")).await.ok(200).clone();
            waiting["sendWindowWaitUntil"].is_string()
        },
        "the send to wait for the window",
    )
    .await;
    let until = chrono::DateTime::parse_from_rfc3339(waiting["sendWindowWaitUntil"].as_str().unwrap()).unwrap();
    assert_eq!(until.with_timezone(&tokyo).format("%H:%M").to_string(), hm(open));
    assert!(to(&smtp, "wen@window-blog.com").is_empty());
    let left = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    if left > 1500 {
        tokio::time::sleep(Duration::from_millis(left as u64 - 1500)).await;
        assert!(to(&smtp, "wen@window-blog.com").is_empty(), "nothing goes out before the window opens");
    }
    // And goes out once it opens.
    for _ in 0..600 {
        if !to(&smtp, "wen@window-blog.com").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = to(&smtp, "wen@window-blog.com");
    assert_eq!(got.len(), 1, "sent once the window opened");
    assert!(chrono::Utc::now() >= until.with_timezone(&chrono::Utc));
    // PATCH can remove the window.
    let p = api.patch(&format!("{CMP}/{id}"), json!({ "sendWindow": null })).await;
    assert!(p.ok(200)["settings"]["sendWindow"].is_null());
}
