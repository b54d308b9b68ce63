//! Ways one tenant could hurt another through shared records, and the edges of the HTTP layer:
//! contact hijacks, forged bounces, phantom status changes, hosts that point inside our network,
//! ids and headers that are not what they claim. Each runs on both backends against the binary.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::mail::hard_bounce;
use linkcrm_testkit::smtp::SmtpServer;
use serde_json::{json, Value};
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";
const CONTACTS: &str = "/v1/link-building/crm/contact";

/// A funded workspace and a client acting in it with the agency key.
async fn workspace(env: &Env, name: &str) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 20 })).await.ok(201);
    (ws.clone(), agency.in_workspace(&ws))
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn relationship(api: &Api, domain: &str) -> String {
    id(api.post(REL, json!({ "domain": domain })).await.ok(201))
}

/// An event of `api`'s workspace that names the contact: from now on it references it.
async fn reference(api: &Api, rel: &str, contact: &str) {
    let body = json!({ "relationshipId": rel, "type": "NOTE_ADDED", "content": "spoke to her", "contactId": contact });
    api.post("/v1/link-building/crm/event", body).await.ok(201);
}

each_backend!(a_contact_another_workspace_relies_on_keeps_its_identity, contact_identity);
each_backend!(a_changed_address_blocks_the_approved_send, recipient_changed);
each_backend!(a_bounce_posted_by_one_workspace_suppresses_only_for_it, forged_bounce);
each_backend!(concurrent_status_changes_log_only_real_changes, phantom_status);
each_backend!(mail_hosts_inside_our_network_are_refused, ssrf_hosts);
each_backend!(bad_ids_in_every_position_are_400, bad_ids);
each_backend!(the_http_edge_answers_in_problem_json, http_edge);

async fn contact_identity(backend: Backend) {
    let env = Env::start(backend).await;
    let (_, a) = workspace(&env, "Acme").await;
    let (_, b) = workspace(&env, "Globex").await;
    let rel_a = relationship(&a, "eng-blog.com").await;
    let marina = a
        .post(
            CONTACTS,
            json!({ "domain": "eng-blog.com", "email": "marina@eng-blog.com", "firstName": "Marina",
                                "notes": "Acme: prefers Mondays" }),
        )
        .await
        .ok(201)
        .clone();
    let path = format!("{CONTACTS}/{}", id(&marina));
    assert_eq!(marina["notes"], "Acme: prefers Mondays");

    // Notes are each workspace's own.
    assert_eq!(b.get(&path).await.ok(200)["notes"], Value::Null, "Globex does not see Acme's notes");
    let r = b.patch(&path, json!({ "notes": "Globex: slow to answer" })).await;
    assert_eq!(r.ok(200)["notes"], "Globex: slow to answer");
    assert_eq!(a.get(&path).await.ok(200)["notes"], "Acme: prefers Mondays");
    let listed = a.get(&format!("{CONTACTS}?email=marina@eng-blog.com")).await;
    assert_eq!(listed.ok(200)["data"][0]["notes"], "Acme: prefers Mondays");
    let acct = marina["accountId"].as_str().unwrap();
    let detail = b.get(&format!("/v1/link-building/crm/account/{acct}")).await;
    assert_eq!(detail.ok(200)["contacts"][0]["notes"], "Globex: slow to answer");

    // Nobody else references her yet: Globex may fix a typo in her name.
    b.patch(&path, json!({ "lastName": "Olafsson" })).await.ok(200);
    // Acme's history names her now: her identity is no longer Globex's to change.
    reference(&a, &rel_a, &id(&marina)).await;
    for change in [
        json!({ "email": "attacker@evil.example" }),
        json!({ "firstName": "Mallory" }),
        json!({ "lastName": null }),
        json!({ "position": "CEO" }),
        json!({ "linkedinUrl": "https://linkedin.com/in/mallory" }),
        json!({ "twitterHandle": "@mallory" }),
    ] {
        let r = b.patch(&path, change.clone()).await;
        assert_eq!(r.problem(409, "contact_in_use")["details"], json!({ "workspaces": 1 }), "{change}");
    }
    assert_eq!(a.get(&path).await.ok(200)["email"], "marina@eng-blog.com");
    // Private fields stay writable, and Acme itself (nobody else references her) may still edit.
    b.patch(&path, json!({ "notes": "Globex: try again in May" })).await.ok(200);
    a.patch(&path, json!({ "position": "Editor" })).await.ok(200);
    // Once Globex references her too, Acme may not change her either.
    let rel_b = relationship(&b, "eng-blog.com").await;
    reference(&b, &rel_b, &id(&marina)).await;
    a.patch(&path, json!({ "email": "m2@eng-blog.com" })).await.problem(409, "contact_in_use");
}

async fn recipient_changed(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (_, a) = workspace(&env, "Acme").await;
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp.port, "security": "none" });
    a.post("/v1/mailboxes", mbx).await.ok(201);
    let rel = relationship(&a, "eng-blog.com").await;
    let contact =
        id(a.post(CONTACTS, json!({ "domain": "eng-blog.com", "email": "marina@eng-blog.com" })).await.ok(201));
    let body = json!({ "contactId": contact, "subject": "Guest post idea", "body": "Hi Marina" });
    let queued = a.post(&format!("{REL}/{rel}/send-email"), body).await.ok(202).clone();
    let inv = queued["invocationId"].as_str().unwrap();
    // The approval shows one address; the contact's address changes before anyone decides.
    let approval = a.get(&format!("/v1/agent/approvals/{}", queued["approvalId"].as_str().unwrap())).await;
    assert_eq!(approval.ok(200)["preview"]["to"], "marina@eng-blog.com");
    a.patch(&format!("{CONTACTS}/{contact}"), json!({ "email": "someone-else@eng-blog.com" })).await.ok(200);
    a.post(&format!("/v1/agent/invocations/{inv}/approve"), json!({})).await.ok(200);
    let done = a.wait_invocation(inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(20)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"]["code"], "send_blocked");
    assert_eq!(done["error"]["details"]["reasons"][0]["code"], "recipient_changed", "{done}");
    assert!(smtp.received().is_empty(), "nothing was sent to either address");
    let events = a.get(&format!("/v1/link-building/crm/event?relationshipId={rel}&type=SEND_BLOCKED")).await;
    assert_eq!(events.ok(200)["data"].as_array().unwrap().len(), 1);
}

async fn forged_bounce(backend: Backend) {
    let env = Env::start(backend).await;
    let (ws_a, a) = workspace(&env, "Mallory & Co").await;
    let (_, b) = workspace(&env, "Globex").await;
    // Workspace A posts a made-up hard bounce for an address another agency's client writes to.
    let r = a
        .post(
            "/v1/link-building/inbound/email",
            json!({ "raw": hard_bounce("dsn-1@mx", "victim@partner.example", "made-up@x") }),
        )
        .await;
    let msg = r.ok(201).clone();
    assert_eq!(msg["bounce"]["hard"], true);
    assert_eq!(msg["channel"], "api");

    // It suppresses for A, with its provenance…
    let mine = a.get("/v1/suppression?email=victim@partner.example").await.ok(200)["data"].clone();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["workspaceId"], ws_a.as_str(), "a workspace entry, not a platform one");
    assert_eq!(mine[0]["source"], "bounce");
    assert_eq!(mine[0]["provenance"]["channel"], "api");
    assert_eq!(mine[0]["provenance"]["workspaceId"], ws_a.as_str());
    assert_eq!(mine[0]["provenance"]["inboundMessageId"], msg["id"]);
    // …and for nobody else: another workspace of the same agency, and another agency.
    assert_eq!(b.get("/v1/suppression?email=victim@partner.example").await.ok(200)["data"], json!([]));
    let other = env.other_agency();
    let ws_c = other.create_workspace("Initech").await;
    let c = other.in_workspace(&ws_c);
    assert_eq!(c.get("/v1/suppression?email=victim@partner.example").await.ok(200)["data"], json!([]));
    // A may lift what its own key caused.
    a.delete("/v1/suppression?email=victim@partner.example").await.ok(204);
}

async fn phantom_status(backend: Backend) {
    let env = Env::start_with(backend, &[("LINKCRM_RATE_LIMIT", "0")]).await;
    let (_, a) = workspace(&env, "Acme").await;
    let rel = relationship(&a, "eng-blog.com").await;
    let statuses = ["ACTIVELY_ENGAGED", "NOT_INTERESTED", "INACTIVE"];
    let burst = (0..50).map(|i| {
        let (a, rel) = (a.clone(), rel.clone());
        async move { a.patch(&format!("{REL}/{rel}"), json!({ "status": statuses[i % 3] })).await }
    });
    for r in futures::future::join_all(burst).await {
        assert!(r.status.as_u16() == 200 || r.status.as_u16() == 409, "{}: {}", r.status, r.text);
    }
    let r = a
        .get(&format!("/v1/link-building/crm/event?relationshipId={rel}&type=STATUS_CHANGED&order=asc&limit=200"))
        .await;
    let changes = r.ok(200)["data"].as_array().unwrap().clone();
    assert!(!changes.is_empty());
    let mut at = "PROSPECTING".to_owned();
    for e in &changes {
        let (from, to) = (e["metadata"]["from"].as_str().unwrap(), e["metadata"]["to"].as_str().unwrap());
        assert_ne!(from, to, "a STATUS_CHANGED that changed nothing: {e}");
        assert_eq!(from, at, "the log is a chain: {changes:?}");
        at = to.to_owned();
    }
    let now = a.get(&format!("{REL}/{rel}")).await.ok(200)["status"].clone();
    assert_eq!(now, at.as_str(), "the last change is the status");
    // Recorded by hand, a change to the current status is refused, not logged.
    let body = json!({ "relationshipId": rel, "type": "STATUS_CHANGED", "metadata": { "to": at } });
    a.post("/v1/link-building/crm/event", body).await.problem(422, "status_unchanged");
}

async fn ssrf_hosts(backend: Backend) {
    let env = Env::start_with(backend, &[("LINKCRM_ALLOW_PRIVATE_TARGETS", "false")]).await;
    let (_, a) = workspace(&env, "Acme").await;
    let mailbox = |host: &str| json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": host, "smtpPort": 25 });
    for host in [
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.10",
        "100.64.0.1",
        "127.0.0.1",
        "localhost",
        "::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "192.0.2.1",
    ] {
        let r = a.post("/v1/mailboxes", mailbox(host)).await;
        let p = r.problem(400, "invalid_host");
        assert_eq!(p["errors"][0]["field"], "smtpHost", "{host}");
        assert!(!r.text.contains("resolve") && !r.text.contains("refused"), "no network detail: {}", r.text);
    }
    // A public name (unresolvable here, so decided at send time) is taken, and cannot be moved inside.
    let created = a.post("/v1/mailboxes", mailbox("smtp.acme-mail.com")).await.ok(201).clone();
    let path = format!("/v1/mailboxes/{}", id(&created));
    a.patch(&path, json!({ "smtpHost": "169.254.169.254" })).await.problem(400, "invalid_host");
    assert_eq!(a.get(&path).await.ok(200)["smtpHost"], "smtp.acme-mail.com");
}

/// Every id position the OpenAPI document declares (path, query, body), fed what an attacker or a
/// fuzzer would: each answer is a 400 naming the field, never a 404, a 500 or a silent success.
async fn bad_ids(backend: Backend) {
    let env = Env::start_with(backend, &[("LINKCRM_RATE_LIMIT", "0")]).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    let doc = api.get("/openapi.json").await.ok(200).clone();
    let bad = ["a\0b", "ct_01\r\nX-Evil: 1", "\u{202E}ws_01", "rel_ünïcode", "acct_", "x".repeat(300).leak() as &str];
    let mut positions = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let is_id = |s: &Value| s["pattern"].as_str().is_some_and(|p| p.contains("[0-7]"));
            // Path and query ids.
            for p in params.iter().filter(|p| is_id(&p["schema"]) && p["in"] != "header") {
                let name = p["name"].as_str().unwrap();
                for b in bad {
                    let enc: String = b.bytes().map(|c| format!("%{c:02X}")).collect();
                    let mut url = path.clone();
                    for q in params.iter().filter(|q| q["in"] == "path") {
                        let n = q["name"].as_str().unwrap();
                        let value = if n == name { enc.clone() } else { valid(&q["schema"]) };
                        url = url.replace(&format!("{{{n}}}"), &value);
                    }
                    if p["in"] == "query" {
                        url = format!("{url}?{name}={enc}");
                    }
                    let body = (method != "get" && method != "delete").then(|| "{}".to_owned());
                    let r = api.send(method.to_uppercase().parse().unwrap(), &url, body.as_deref()).await;
                    assert_eq!(r.status.as_u16(), 400, "{method} {url}: {}", r.text);
                    assert_eq!(r.body["errors"][0]["field"], name, "{method} {url}: {}", r.text);
                }
                positions += 1;
            }
            // Body ids (top-level properties, and arrays of ids).
            let Some(schema_ref) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() else {
                continue;
            };
            let body_schema = &doc["components"]["schemas"][schema_ref.rsplit('/').next().unwrap()];
            for (prop, s) in body_schema["properties"].as_object().cloned().unwrap_or_default() {
                let many = is_id(&s["items"]);
                let single = is_id(&s) || s["anyOf"].as_array().is_some_and(|a| a.iter().any(is_id));
                if !many && !single {
                    continue;
                }
                let mut url = path.clone();
                for q in params.iter().filter(|q| q["in"] == "path") {
                    url = url.replace(&format!("{{{}}}", q["name"].as_str().unwrap()), &valid(&q["schema"]));
                }
                for b in bad {
                    let v = if many { json!([b]) } else { json!(b) };
                    let r = api
                        .send(
                            method.to_uppercase().parse().unwrap(),
                            &url,
                            Some(&json!({ prop.clone(): v }).to_string()),
                        )
                        .await;
                    assert_eq!(r.status.as_u16(), 400, "{method} {url} {prop}={b:?}: {}", r.text);
                    assert!(r.body["errors"][0]["field"].as_str().unwrap().starts_with(&prop), "{}", r.text);
                }
                positions += 1;
            }
        }
    }
    assert!(positions >= 40, "only {positions} id positions found in the document");
    // The header too.
    for b in ["ws_\u{202E}x", "acct_01", "ws_01J000000000000000000000000"] {
        let r = agency.with_header("X-Workspace-Id", b).get(REL).await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    }
}

/// A well-formed id for a pattern like `^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$`.
fn valid(schema: &Value) -> String {
    let p = schema["pattern"].as_str().unwrap_or("^x_$");
    // `^(cmp_|scmp_|…)[0-7]…`: the first prefix of an alternation.
    let prefix = p.trim_start_matches("^(").trim_start_matches('^').split('[').next().unwrap();
    let prefix = prefix.split(['|', ')']).next().unwrap();
    format!("{prefix}0{}", "Z".repeat(25))
}

async fn http_edge(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start(backend).await;
    let (ws, a) = workspace(&env, "Acme").await;
    let addr = env.server.base_url.trim_start_matches("http://").to_owned();
    let raw = |request: Vec<u8>| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(&request).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let problem = |answer: &str| {
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(answer.contains("content-type: application/problem+json"), "{answer}");
        let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let rid = body["requestId"].as_str().unwrap().to_owned();
        assert!(rid.starts_with("req_") && answer.contains(&format!("x-request-id: {rid}")), "{answer}");
        body
    };
    let mut url_bytes = b"GET /v1/workspaces/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    problem(&raw(url_bytes.clone()).await);
    url_bytes = b"GET /v1/workspaces HTTP/1.1\r\nHost: x\r\nX-Test: a\0b\r\n\r\n".to_vec();
    problem(&raw(url_bytes).await);

    // Headers that must come once.
    let twice = a.with_header("Authorization", &format!("Bearer {}", env.server.admin_key));
    twice.get(REL).await.problem(400, "duplicate_header");
    a.with_header("X-Workspace-Id", &ws).get(REL).await.problem(400, "duplicate_header");
    // 401 names the scheme.
    let r = env.anonymous().get(REL).await;
    r.problem(401, "unauthorized");
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{:?}", r.headers);
    let r = a.with_key("sk_live_nope").get(REL).await;
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));

    // If-Match: * matches whatever version exists; a stale ETag does not.
    let rel = relationship(&a, "eng-blog.com").await;
    let r = a.with_header("If-Match", "*").patch(&format!("{REL}/{rel}"), json!({ "priority": "HIGH" })).await;
    assert_eq!(r.ok(200)["priority"], "HIGH");
    a.with_header("If-Match", "\"1\"")
        .patch(&format!("{REL}/{rel}"), json!({ "priority": "LOW" }))
        .await
        .problem(412, "precondition_failed");

    // What becomes a mail header is one line.
    let mbx = json!({ "fromName": "Dana\r\nBcc: all@x.example", "fromAddress": "d@outreach.example.com", "smtpHost": "smtp.acme-mail.com" });
    let r = a.post("/v1/mailboxes", mbx).await;
    assert_eq!(r.problem(400, "invalid_request")["errors"][0]["field"], "fromName");
    let contact = id(a.post(CONTACTS, json!({ "domain": "eng-blog.com", "email": "m@eng-blog.com" })).await.ok(201));
    let body = json!({ "contactId": contact, "subject": "Hi\nBcc: all@x.example", "body": "x" });
    let r = a.post(&format!("{REL}/{rel}/send-email"), body).await;
    assert_eq!(r.problem(400, "invalid_request")["errors"][0]["field"], "subject");
}
