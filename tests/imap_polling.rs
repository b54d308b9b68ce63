//! Mailbox polling end to end: the binary reads a real IMAP server (Dovecot) and sends through a
//! real SMTP server (aiosmtpd). Replies, bounces, crashes, outages, the first-poll and
//! UIDVALIDITY rules, the SSRF guard and the platform mailbox's routing.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::imap::ImapServer;
use linkcrm_testkit::smtp::{ReceivedMessage, SmtpServer};
use serde_json::{json, Value};
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";
const CMP: &str = "/v1/link-building/campaign";
const INBOUND: &str = "/v1/link-building/inbound";
const REPLY: &str = include_str!("fixtures/inbound/reply_price_gmail.eml");
const REPLY_TO: &str = "0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com";

fn env_for<'a>(imap: &'a ImapServer, ca: &'a str, poll_secs: &'a str) -> Vec<(&'a str, &'a str)> {
    let _ = imap;
    vec![
        ("LINKCRM_IMAP_CA_FILE", ca),
        ("LINKCRM_IMAP_POLL_SECS", poll_secs),
        ("LINKCRM_DAY_SECONDS", "1"),
        // A killed poller's hold on its mailbox runs out after this.
        ("LINKCRM_IMAP_LEASE_SECS", "3"),
    ]
}

async fn workspace(env: &Env, name: &str) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 40 })).await.ok(201);
    let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), patch).await.ok(200);
    (ws.clone(), agency.in_workspace(&ws))
}

/// A mailbox sending through `smtp` (or a closed port) and read from `imap` over STARTTLS.
async fn mailbox(api: &Api, smtp_port: u16, imap: &ImapServer, extra: Value) -> String {
    let mut body = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
        "smtpPort": smtp_port, "security": "none", "imapHost": "localhost", "imapPort": imap.port,
        "imapSecurity": "starttls", "imapUsername": imap.user, "imapPassword": imap.password });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = api.post("/v1/mailboxes", body).await;
    let m = r.ok(201);
    assert_eq!(m["imap"]["status"], "pending", "{m}");
    assert!(m["imap"].get("password").is_none() && m["imap"]["hasPassword"] == true, "{m}");
    m["id"].as_str().unwrap().to_owned()
}

async fn wait_for(mut check: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn imap_status(api: &Api, mbx: &str) -> Value {
    api.get(&format!("/v1/mailboxes/{mbx}")).await.ok(200)["imap"].clone()
}

/// Until the mailbox has been polled successfully at least once.
async fn wait_polled(api: &Api, mbx: &str) {
    wait_for(async || imap_status(api, mbx).await["status"] == "ok", "the first poll").await;
}

/// Polls now, retrying while the timer's poll holds the mailbox.
async fn poll_now(api: &Api, body: Value) -> Value {
    for _ in 0..100 {
        let r = api.post(&format!("{INBOUND}/poll"), body.clone()).await;
        let v = r.ok(200).clone();
        if !v["mailboxes"].as_array().unwrap().iter().any(|m| m["busy"] == true) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mailbox stayed busy");
}

async fn all_inbound(api: &Api) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{INBOUND}?limit=200&cursor={c}"),
            None => format!("{INBOUND}?limit=200"),
        };
        let page = api.get(&path).await.ok(200).clone();
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn event_types(api: &Api, rel: &str) -> Vec<String> {
    let r = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    r.ok(200)["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

async fn target(api: &Api, domain: &str, email: &str) -> (String, String) {
    let r = api.post(REL, json!({ "domain": domain })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c = api
        .post("/v1/link-building/crm/contact", json!({ "accountId": acct, "firstName": "Pat", "email": email }))
        .await;
    (rel, c.ok(201)["id"].as_str().unwrap().to_owned())
}

async fn wait_mail(smtp: &SmtpServer, addr: &str) -> ReceivedMessage {
    for _ in 0..600 {
        if let Some(m) = smtp.received().into_iter().find(|m| m.rcpt_tos.iter().any(|r| r == addr)) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} never received mail");
}

fn bare(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_owned()
}

fn plain(id: &str, subject: &str, message_id: Option<&str>, extra: &str) -> String {
    let mid = message_id.map(|m| format!("Message-ID: <{m}>\r\n")).unwrap_or_default();
    format!(
        "From: Someone <someone@elsewhere.example.org>\r\nTo: dana@outreach.example.com\r\nSubject: {subject}\r\n\
         Date: Sat, 5 Dec 2026 10:00:00 +0000\r\n{mid}{extra}\r\nHello ({id}).\r\n"
    )
}

each_backend!(replies_and_bounces_in_the_mailbox_are_recorded, replies_and_bounces);
each_backend!(a_poller_killed_mid_batch_records_each_message_once, killed_poller);
each_backend!(a_mailbox_whose_server_is_down_shows_it_and_catches_up, outage);

async fn replies_and_bounces(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    // Mail that was there before the mailbox was connected is not imported.
    imap.append(&plain("old", "From before", Some("old-1@elsewhere.example.org"), "")).await.unwrap();
    let env = Env::start_with(backend, &env_for(&imap, &ca, "1")).await;
    let (_, api) = workspace(&env, "Polled").await;
    let mbx = mailbox(&api, smtp.port, &imap, json!({})).await;
    wait_polled(&api, &mbx).await;
    assert!(all_inbound(&api).await.is_empty());

    let (a, _) = target(&api, "gardening-blog.example.net", "jamie@gardening-blog.example.net").await;
    let (b, bob) = target(&api, "bobs-site.example.com", "bob@bobs-site.example.com").await;
    let body = json!({ "type": "custom", "name": "Polled replies", "relationshipIds": [a, b],
        "subject": "Guest post for {domain}", "body": "Hi {firstName}, an idea.",
        "followUps": [{ "afterDays": 30, "body": "Bumping this." }] });
    let cmp = api.post(CMP, body).await.ok(201)["id"].as_str().unwrap().to_owned();
    let to_jamie = wait_mail(&smtp, "jamie@gardening-blog.example.net").await;
    let to_bob = wait_mail(&smtp, "bob@bobs-site.example.com").await;
    wait_for(async || event_types(&api, &a).await.contains(&"EMAIL_SENT".into()), "EMAIL_SENT to Jamie").await;
    wait_for(async || event_types(&api, &b).await.contains(&"EMAIL_SENT".into()), "EMAIL_SENT to Bob").await;

    // Jamie's reply lands in the mailbox: the poller records it on her relationship.
    let jamie_id = bare(&to_jamie.header("Message-ID").unwrap());
    imap.append(&REPLY.replace(REPLY_TO, &jamie_id)).await.unwrap();
    wait_for(async || event_types(&api, &a).await.contains(&"EMAIL_RECEIVED".into()), "EMAIL_RECEIVED").await;
    assert_eq!(api.get(&format!("{REL}/{a}")).await.ok(200)["status"], "ACTIVELY_ENGAGED");
    let received = all_inbound(&api).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let msg = &received[0];
    assert_eq!((msg["matched"].as_bool(), msg["relationshipId"].as_str()), (Some(true), Some(a.as_str())));
    assert_eq!((msg["channel"].as_str(), msg["mailboxId"].as_str()), (Some("polled_mailbox"), Some(mbx.as_str())));
    // The follow-up that was waiting is cancelled by the reply.
    wait_for(
        async || {
            let m = api.get(&format!("{CMP}/{cmp}/metrics")).await.ok(200).clone();
            let d =
                m["byDomain"].as_array().unwrap().iter().find(|x| x["domain"] == "gardening-blog.example.net").cloned();
            d.is_some_and(|d| d["followUp"]["status"] == "cancelled" && d["followUp"]["reason"]["code"] == "replied")
        },
        "the follow-up cancelled by the reply",
    )
    .await;

    // Bob's address bounces: the DSN in the mailbox records EMAIL_BOUNCED and suppresses him.
    let bob_id = bare(&to_bob.header("Message-ID").unwrap());
    let dsn = linkcrm_testkit::mail::hard_bounce("dsn-1@mx.example.net", "bob@bobs-site.example.com", &bob_id);
    imap.append(&dsn).await.unwrap();
    wait_for(async || event_types(&api, &b).await.contains(&"EMAIL_BOUNCED".into()), "EMAIL_BOUNCED").await;
    let again = json!({ "contactId": bob, "subject": "Another idea", "body": "Hi again" });
    let inv =
        api.post(&format!("{REL}/{b}/send-email"), again).await.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = api.wait_invocation(&inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["error"]["code"], "send_blocked", "{done}");
    assert!(done["error"]["details"]["reasons"].to_string().contains("suppressed"), "{done}");

    // Mailing-list mail is stored, marked automated; a message without a Message-ID is recorded
    // once however often the mailbox is read.
    imap.append(&plain(
        "list",
        "Weekly digest",
        Some("digest-1@lists.example.org"),
        "List-Id: <digest.lists.example.org>\r\n",
    ))
    .await
    .unwrap();
    imap.append(&plain("noid", "No id here", None, "")).await.unwrap();
    wait_for(async || all_inbound(&api).await.len() == 4, "four messages").await;
    let first = poll_now(&api, json!({ "mailboxId": mbx })).await;
    assert_eq!((first["repliesFound"].as_u64(), first["failed"].as_u64()), (Some(0), Some(0)), "{first}");
    assert_eq!(first["mailboxes"][0]["mailboxId"], mbx.as_str());
    let all = all_inbound(&api).await;
    assert_eq!(all.len(), 4, "{all:?}");
    let digest = all.iter().find(|m| m["subject"] == "Weekly digest").unwrap();
    assert_eq!((digest["automated"].as_bool(), digest["matched"].as_bool()), (Some(true), Some(false)));
    let noid = all.iter().find(|m| m["subject"] == "No id here").unwrap();
    assert!(noid["messageId"].is_null() && noid["automated"] == false, "{noid}");
    let status = imap_status(&api, &mbx).await;
    assert_eq!((status["status"].as_str(), status["consecutiveFailures"].as_u64()), (Some("ok"), Some(0)), "{status}");

    // Another workspace sees none of it, and cannot poll this mailbox.
    let (_, other) = workspace(&env, "Other").await;
    other.get(&format!("{INBOUND}/{}", msg["id"].as_str().unwrap())).await.problem(404, "inbound_message_not_found");
    other.post(&format!("{INBOUND}/poll"), json!({ "mailboxId": mbx })).await.problem(404, "mailbox_not_found");
    assert_eq!(other.post(&format!("{INBOUND}/poll"), json!({})).await.ok(200)["mailboxes"], json!([]));
    // A mailbox without IMAP cannot be polled.
    let send_only = json!({ "fromName": "S", "fromAddress": "s@outreach.example.com", "smtpHost": "127.0.0.1" });
    let so = api.post("/v1/mailboxes", send_only).await.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(&format!("{INBOUND}/poll"), json!({ "mailboxId": so })).await.problem(422, "mailbox_without_imap");
    // Removing the IMAP settings stops polling.
    let r = api.patch(&format!("/v1/mailboxes/{mbx}"), json!({ "imapHost": null })).await;
    assert!(r.ok(200).get("imap").is_none(), "{}", r.body);
    api.post(&format!("{INBOUND}/poll"), json!({ "mailboxId": mbx })).await.problem(422, "mailbox_without_imap");
}

async fn killed_poller(backend: Backend) {
    const N: usize = 120;
    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    let mut env = Env::start_with(backend, &env_for(&imap, &ca, "1")).await;
    let (ws, api) = workspace(&env, "Crash").await;
    let mbx = mailbox(&api, 9, &imap, json!({})).await;
    wait_polled(&api, &mbx).await;
    let messages: Vec<String> = (0..N)
        .map(|i| {
            // Every third message has no Message-ID: it is recorded once by its digest.
            let mid = format!("crash-{i}@elsewhere.example.org");
            plain(&i.to_string(), &format!("Message {i}"), (i % 3 != 0).then_some(mid.as_str()), "")
        })
        .collect();
    imap.append_all(&messages).await.unwrap();
    // Killed while the batch is being recorded.
    wait_for(async || !all_inbound(&api).await.is_empty(), "the first recorded message").await;
    env.server.kill_hard();
    env.restart();
    let api = env.agency().in_workspace(&ws);
    wait_for(async || all_inbound(&api).await.len() >= N, "every message").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = all_inbound(&api).await;
    let mut subjects: Vec<&str> = all.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    assert_eq!((all.len(), subjects.len()), (N, N), "each message recorded once");
}

async fn outage(backend: Backend) {
    let mut imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    // The timer stays out of the way: polls are asked for.
    let env = Env::start_with(backend, &env_for(&imap, &ca, "3600")).await;
    let (_, api) = workspace(&env, "Outage").await;
    let mbx = mailbox(&api, 9, &imap, json!({})).await;
    let first = poll_now(&api, json!({})).await;
    assert_eq!(first["repliesFound"], 0, "{first}");
    imap.append(&plain("1", "While down 1", Some("down-1@elsewhere.example.org"), "")).await.unwrap();
    imap.append(&plain("2", "While down 2", Some("down-2@elsewhere.example.org"), "")).await.unwrap();
    imap.stop();

    let failed = poll_now(&api, json!({ "mailboxId": mbx })).await;
    assert_eq!((failed["repliesFound"].as_u64(), failed["failed"].as_u64()), (Some(0), Some(1)), "{failed}");
    assert_eq!(failed["mailboxes"][0]["error"]["code"], "imap_unreachable", "{failed}");
    let status = imap_status(&api, &mbx).await;
    assert_eq!(status["status"], "failing", "{status}");
    assert_eq!(
        (status["lastError"]["code"].as_str(), status["consecutiveFailures"].as_u64()),
        (Some("imap_unreachable"), Some(1))
    );
    assert!(status["lastError"]["at"].is_string() && status["nextPollAt"].is_string(), "{status}");
    // No address leaks into what the tenant sees.
    assert!(!status["lastError"]["message"].as_str().unwrap().contains("127.0.0.1"), "{status}");

    imap.start_again().unwrap();
    let back = poll_now(&api, json!({ "mailboxId": mbx })).await;
    assert_eq!((back["repliesFound"].as_u64(), back["failed"].as_u64()), (Some(2), Some(0)), "{back}");
    let status = imap_status(&api, &mbx).await;
    assert_eq!((status["status"].as_str(), status["consecutiveFailures"].as_u64()), (Some("ok"), Some(0)), "{status}");
    assert!(status["lastError"].is_null(), "{status}");

    // A wrong password is a login failure, shown the same way.
    api.patch(&format!("/v1/mailboxes/{mbx}"), json!({ "imapPassword": "wrong" })).await.ok(200);
    let denied = poll_now(&api, json!({ "mailboxId": mbx })).await;
    assert_eq!(denied["mailboxes"][0]["error"]["code"], "imap_login_failed", "{denied}");
}

/// The first poll starts at UIDNEXT unless the mailbox asks for earlier days; a new UIDVALIDITY
/// reads again without recording anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_poll_backfill_and_uidvalidity() {
    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    imap.append(&plain("1", "Earlier 1", Some("early-1@elsewhere.example.org"), "")).await.unwrap();
    imap.append(&plain("2", "Earlier 2", None, "")).await.unwrap();
    // INTERNALDATE has whole seconds: the first polls come in a later one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let env = Env::start_with(Backend::Embedded, &env_for(&imap, &ca, "3600")).await;
    let (_, fresh) = workspace(&env, "Fresh").await;
    mailbox(&fresh, 9, &imap, json!({})).await;
    let (_, back) = workspace(&env, "Backfill").await;
    let mbx =
        mailbox(&back, 9, &imap, json!({ "backfillDays": 3, "imapSecurity": "tls", "imapPort": imap.tls_port })).await;
    assert_eq!(poll_now(&fresh, json!({})).await["repliesFound"], 0);
    let r = poll_now(&back, json!({})).await;
    assert_eq!(r["repliesFound"], 2, "{r}");
    assert_eq!(imap_status(&back, &mbx).await["backfillDays"], 3);

    imap.change_uid_validity(77).unwrap();
    imap.append(&plain("3", "After the change", Some("after-1@elsewhere.example.org"), "")).await.unwrap();
    let r = poll_now(&back, json!({})).await;
    assert_eq!(r["repliesFound"], 1, "only the new message: {r}");
    assert_eq!(r["mailboxes"][0]["alreadyRecorded"], 2, "{r}");
    assert_eq!(all_inbound(&back).await.len(), 3);
    assert_eq!(poll_now(&fresh, json!({})).await["repliesFound"], 1, "the new message, nothing old");
}

/// A tenant's IMAP host must be a public address: the SSRF guard refuses loopback and private
/// hosts unless the operator allows them (LINKCRM_ALLOW_PRIVATE_TARGETS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_imap_host_is_refused() {
    let env = Env::start_with(Backend::Embedded, &[("LINKCRM_ALLOW_PRIVATE_TARGETS", "false")]).await;
    let (_, api) = workspace(&env, "Guarded").await;
    for host in ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "::1"] {
        let body = json!({ "fromName": "D", "fromAddress": "d@outreach.example.com", "smtpHost": "smtp.example.com",
            "imapHost": host });
        let r = api.post("/v1/mailboxes", body).await;
        let p = r.problem(400, "invalid_host");
        assert_eq!(p["errors"][0]["field"], "imapHost", "{host}: {p}");
    }
}

/// Mail in the platform mailbox goes to the workspace of the send it answers; mail answering
/// nothing of ours is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_mailbox_routes_replies_by_thread() {
    let smtp = SmtpServer::start().unwrap();
    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    let (sp, ip) = (smtp.port.to_string(), imap.port.to_string());
    let mut vars = env_for(&imap, &ca, "1");
    vars.extend([
        ("LINKCRM_SMTP_HOST", "127.0.0.1"),
        ("LINKCRM_SMTP_PORT", sp.as_str()),
        ("LINKCRM_SMTP_SECURITY", "none"),
        ("LINKCRM_SMTP_FROM_ADDRESS", "platform@outreach.example.com"),
        ("LINKCRM_IMAP_HOST", "localhost"),
        ("LINKCRM_IMAP_PORT", ip.as_str()),
        ("LINKCRM_IMAP_SECURITY", "starttls"),
        ("LINKCRM_IMAP_USERNAME", imap.user.as_str()),
        ("LINKCRM_IMAP_PASSWORD", imap.password.as_str()),
    ]);
    let env = Env::start_with(Backend::Embedded, &vars).await;
    let (_, one) = workspace(&env, "One").await;
    let (_, two) = workspace(&env, "Two").await;
    // Let the platform mailbox's first poll settle at UIDNEXT before anything arrives.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rel, contact) = target(&two, "partner.example.com", "kim@partner.example.com").await;
    let body = json!({ "contactId": contact, "subject": "Hello Kim", "body": "An idea." });
    let inv =
        two.post(&format!("{REL}/{rel}/send-email"), body).await.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = two.wait_invocation(&inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let sent = bare(&wait_mail(&smtp, "kim@partner.example.com").await.header("Message-ID").unwrap());
    imap.append(&REPLY.replace(REPLY_TO, &sent)).await.unwrap();
    imap.append(&plain("x", "Unrelated", Some("unrelated@elsewhere.example.org"), "")).await.unwrap();
    wait_for(async || event_types(&two, &rel).await.contains(&"EMAIL_RECEIVED".into()), "the routed reply").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = all_inbound(&two).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0]["channel"].as_str(), got[0]["mailboxId"].as_str()),
        (Some("platform_mailbox"), Some("mbx_platform"))
    );
    assert!(all_inbound(&one).await.is_empty());
}

/// A server whose certificate is not trusted is a TLS failure shown on the mailbox (nothing is
/// read in the clear, and verification cannot be turned off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_the_poll_as_tls() {
    let imap = ImapServer::start().unwrap();
    // No LINKCRM_IMAP_CA_FILE: the test CA is not trusted.
    let env = Env::start_with(Backend::Embedded, &[("LINKCRM_IMAP_POLL_SECS", "3600")]).await;
    let (_, api) = workspace(&env, "Untrusted").await;
    for (security, port) in [("tls", imap.tls_port), ("starttls", imap.port)] {
        let mbx = mailbox(&api, 9, &imap, json!({ "imapSecurity": security, "imapPort": port })).await;
        let r = poll_now(&api, json!({ "mailboxId": mbx })).await;
        let e = &r["mailboxes"][0]["error"];
        assert_eq!(e["code"], "imap_tls_failed", "{security}: {r}");
        assert!(e["message"].as_str().unwrap().contains("LINKCRM_IMAP_CA_FILE"), "{e}");
        assert_eq!(imap_status(&api, &mbx).await["lastError"]["code"], "imap_tls_failed");
    }
}

/// Benchmark (ignored; BENCHMARKS.md): how fast one mailbox's backlog is read and recorded.
/// `LINKCRM_TEST_BIN=<release linkcrm> cargo test --test imap_polling -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_polling_throughput() {
    let n: usize = std::env::var("BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    let env = Env::start_with(Backend::Embedded, &env_for(&imap, &ca, "3600")).await;
    let (_, api) = workspace(&env, "Bench").await;
    mailbox(&api, 9, &imap, json!({})).await;
    poll_now(&api, json!({})).await;
    let messages: Vec<String> = (0..n)
        .map(|i| {
            let mid = format!("bench-{i}@elsewhere.example.org");
            plain(&i.to_string(), &format!("Bench {i}"), (i % 2 == 0).then_some(mid.as_str()), "")
        })
        .collect();
    imap.append_all(&messages).await.unwrap();
    let start = std::time::Instant::now();
    let r = poll_now(&api, json!({})).await;
    let first = start.elapsed();
    let mut found = r["repliesFound"].as_u64().unwrap_or(0) as usize;
    while found < n {
        found += poll_now(&api, json!({})).await["repliesFound"].as_u64().unwrap_or(0) as usize;
    }
    let all = start.elapsed();
    let again = std::time::Instant::now();
    let idle = poll_now(&api, json!({})).await;
    let idle_ms = again.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(idle["repliesFound"], 0);
    println!(
        "bench: {n} messages (half without a Message-ID) recorded in {:.2} s = {:.0} messages/s (first poll {:.2} s, \
         at most 500 per poll); an idle poll {idle_ms:.1} ms",
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64(),
        first.as_secs_f64()
    );
}
