//! Outreach sends end to end: the binary with its in-process worker, a real SMTP server (aiosmtpd).

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::smtp::{ReceivedMessage, SmtpServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";

async fn workspace(env: &Env, name: &str, auto: bool) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 20 })).await.ok(201);
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

/// A relationship on `domain` and a contact there with `email`: (relationship, account, contact).
async fn target(api: &Api, domain: &str, email: &str) -> (String, String, String) {
    let r = api.post(REL, json!({ "domain": domain })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c = api
        .post("/v1/link-building/crm/contact", json!({ "accountId": acct, "firstName": "Pat", "email": email }))
        .await;
    (rel, acct, c.ok(201)["id"].as_str().unwrap().to_owned())
}

async fn send(api: &Api, rel: &str, contact: &str, subject: &str) -> Value {
    let body = json!({ "contactId": contact, "subject": subject, "body": "Hi,\n\nA guest post idea.\n\nDana" });
    api.post(&format!("{REL}/{rel}/send-email"), body).await.ok(202).clone()
}

fn to(smtp: &SmtpServer, addr: &str) -> Vec<ReceivedMessage> {
    smtp.received().into_iter().filter(|m| m.rcpt_tos.iter().any(|r| r == addr)).collect()
}

async fn events(api: &Api, rel: &str, kind: &str) -> Vec<Value> {
    let r = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    r.ok(200)["data"].as_array().unwrap().iter().filter(|e| e["type"] == kind).cloned().collect()
}

fn reason_codes(done: &Value) -> Vec<String> {
    done["error"]["details"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

each_backend!(auto_policy_sends_once_and_policy_blocks, auto_policy);
each_backend!(require_approval_waits_then_approve_reject_cancel, require_approval);

async fn auto_policy(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (ws, api) = workspace(&env, "Auto", true).await;

    // Without a mailbox: 422.
    let (rel, _, contact) = target(&api, "eng-blog.com", "marina@eng-blog.com").await;
    let body = json!({ "contactId": contact, "subject": "Hello", "body": "Hi" });
    api.post(&format!("{REL}/{rel}/send-email"), body).await.problem(422, "no_mailbox");
    let mbx = mailbox(&api, &smtp).await;

    // Sent once: the message, the event, the reply key, the charge.
    let accepted = send(&api, &rel, &contact, "Guest post idea").await;
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(accepted["skill"], "link_building.campaign.send_email");
    let id = accepted["invocationId"].as_str().unwrap();
    let done = api.wait_invocation(id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["creditsUsed"], 2.0);
    let message_id = done["result"]["messageId"].as_str().unwrap().to_owned();
    let got = to(&smtp, "marina@eng-blog.com");
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.header("Message-ID").as_deref(), Some(format!("<{message_id}>").as_str()));
    assert_eq!(m.header("Subject").as_deref(), Some("Guest post idea"));
    assert_eq!(m.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let unsub = m.header("List-Unsubscribe").unwrap();
    assert!(unsub.starts_with("<http://127.0.0.1:3000/v1/unsubscribe/") && unsub.ends_with('>'), "{unsub}");
    let sent = events(&api, &rel, "EMAIL_SENT").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["metadata"]["messageId"], message_id.as_str());
    assert_eq!(sent[0]["metadata"]["mailboxId"], mbx.as_str());
    assert_eq!(sent[0]["metadata"]["invocationId"], id);
    // A manual send belongs to no campaign; the key is there for campaign sends.
    assert!(sent[0]["metadata"].as_object().unwrap().get("campaignId").is_some_and(Value::is_null));
    assert_eq!(done["result"]["eventId"], sent[0]["id"]);
    assert_eq!(api.get(&format!("{REL}/{rel}")).await.ok(200)["status"], "CONTACTED_BY_US");
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(
        (u.ok(200)["creditsUsedThisCycle"].as_f64(), u.body["creditsReserved"].as_f64()),
        (Some(2.0), Some(0.0))
    );
    assert_eq!(u.body["bySkill"]["link_building.campaign.send_email"], 2.0);

    // The same message again within 24 h: blocked, nothing sent, nothing charged.
    let again = send(&api, &rel, &contact, "Guest post idea").await;
    let done = api
        .wait_invocation(again["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["error"]["code"], "send_blocked");
    assert!(reason_codes(&done).contains(&"duplicate".to_owned()), "{done}");
    assert_eq!(to(&smtp, "marina@eng-blog.com").len(), 1);
    assert_eq!(events(&api, &rel, "SEND_BLOCKED").await.len(), 1);

    // The server refuses the recipient (550): FAILED, nothing arrived, released.
    let (rel_r, _, c_r) = target(&api, "reject-site.com", "reject-me@reject-site.com").await;
    let r = send(&api, &rel_r, &c_r, "Hello there").await;
    let done = api
        .wait_invocation(r["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("FAILED"), Some("smtp_rejected")));
    assert!(to(&smtp, "reject-me@reject-site.com").is_empty());
    assert!(events(&api, &rel_r, "EMAIL_SENT").await.is_empty());

    // A suppressed recipient: blocked with the reason, SEND_BLOCKED recorded, nothing arrived.
    let (rel_s, _, c_s) = target(&api, "quiet.org", "anna@quiet.org").await;
    api.post("/v1/suppression", json!({ "email": "anna@quiet.org" })).await.ok(201);
    let r = send(&api, &rel_s, &c_s, "Hello Anna").await;
    let done = api
        .wait_invocation(r["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!(done["error"]["code"], "send_blocked", "{done}");
    assert_eq!(reason_codes(&done), ["suppressed"]);
    let blocked = events(&api, &rel_s, "SEND_BLOCKED").await;
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["metadata"]["reasons"][0]["code"], "suppressed");
    assert!(to(&smtp, "anna@quiet.org").is_empty());

    // DO_NOT_CONTACT on the account: blocked.
    let (rel_d, acct_d, c_d) = target(&api, "leave-me-alone.com", "ed@leave-me-alone.com").await;
    let dnc = format!("/v1/link-building/crm/account/{acct_d}/do-not-contact");
    api.post(&dnc, json!({ "reason": "Asked to be removed" })).await.ok(200);
    let r = send(&api, &rel_d, &c_d, "Hello Ed").await;
    let done = api
        .wait_invocation(r["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!(done["error"]["code"], "send_blocked", "{done}");
    assert!(reason_codes(&done).contains(&"do_not_contact".to_owned()));
    assert_eq!(events(&api, &rel_d, "SEND_BLOCKED").await.len(), 1);
    assert!(to(&smtp, "ed@leave-me-alone.com").is_empty());

    // The unsubscribe link, without a key: GET shows a page, POST suppresses.
    let path = unsub.trim_start_matches("<http://127.0.0.1:3000").trim_end_matches('>').to_owned();
    let anon = env.anonymous();
    let page = anon.get(&path).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.text.contains("marina@eng-blog.com") && page.text.contains("<form method=\"post\""));
    assert_eq!(anon.get("/v1/unsubscribe/bogus.token").await.status.as_u16(), 404);
    assert_eq!(
        anon.send(Method::POST, "/v1/unsubscribe/bogus.token", Some("List-Unsubscribe=One-Click"))
            .await
            .status
            .as_u16(),
        404
    );
    let done = anon.send(Method::POST, &path, Some("List-Unsubscribe=One-Click")).await;
    assert_eq!(done.status.as_u16(), 200, "{}", done.text);
    let list = api.get("/v1/suppression").await;
    let entry = list.ok(200)["data"].as_array().unwrap().iter().find(|e| e["value"] == "marina@eng-blog.com").cloned();
    assert_eq!(entry.expect("suppressed")["source"], "unsubscribe");
    let r = send(&api, &rel, &contact, "A different idea").await;
    let done = api
        .wait_invocation(r["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert!(reason_codes(&done).contains(&"suppressed".to_owned()), "{done}");
    assert_eq!(to(&smtp, "marina@eng-blog.com").len(), 1);

    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(
        (u.ok(200)["creditsUsedThisCycle"].as_f64(), u.body["creditsReserved"].as_f64()),
        (Some(2.0), Some(0.0))
    );
}

async fn require_approval(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start(backend).await;
    let (ws, api) = workspace(&env, "Careful", false).await;
    mailbox(&api, &smtp).await;
    let (rel, _, contact) = target(&api, "tech-weekly.com", "tom@tech-weekly.com").await;

    let first = send(&api, &rel, &contact, "Original subject").await;
    assert_eq!(first["status"], "WAITING_APPROVAL");
    let id = first["invocationId"].as_str().unwrap().to_owned();
    let approval_id = first["approvalId"].as_str().unwrap().to_owned();
    let listed = api.get("/v1/agent/approvals").await;
    let data = listed.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    let a = &data[0];
    assert_eq!((a["approvalId"].as_str(), a["invocationId"].as_str()), (Some(approval_id.as_str()), Some(id.as_str())));
    assert_eq!(a["skill"], "link_building.campaign.send_email");
    assert_eq!(a["status"], "pending");
    assert_eq!(a["reason"], "Workspace policy: outreach_send=require_approval");
    assert_eq!(a["preview"]["to"], "tom@tech-weekly.com");
    assert_eq!(a["preview"]["subject"], "Original subject");
    assert!(a["raisedAt"].as_str().unwrap() < a["timeoutAt"].as_str().unwrap());
    assert_eq!(
        api.get(&format!("/v1/agent/approvals/{approval_id}")).await.ok(200)["approvalId"],
        approval_id.as_str()
    );
    api.get("/v1/agent/approvals/appr_nope").await.problem(400, "invalid_request");
    api.get("/v1/agent/approvals/appr_01M9495E2ME2GA2R79535J0T3H").await.problem(404, "approval_not_found");
    // Waiting: nothing is sent; the credits are reserved.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty());
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(u.ok(200)["creditsReserved"].as_f64(), Some(2.0));

    // Approve with an edited subject: the edit is what goes out.
    let approved =
        api.post(&format!("/v1/agent/invocations/{id}/approve"), json!({ "subject": "Edited subject" })).await;
    assert_eq!(approved.ok(200)["input"]["subject"], "Edited subject");
    let done = api.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let got = to(&smtp, "tom@tech-weekly.com");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("Subject").as_deref(), Some("Edited subject"));
    assert_eq!(api.get(&format!("/v1/agent/approvals/{approval_id}")).await.ok(200)["status"], "approved");
    assert!(api.get("/v1/agent/approvals").await.ok(200)["data"].as_array().unwrap().is_empty());
    api.post(&format!("/v1/agent/invocations/{id}/approve"), json!({})).await.problem(409, "invalid_state");

    // Reject: CANCELLED with code rejected, released, nothing sent.
    let second = send(&api, &rel, &contact, "Second try").await;
    let id2 = second["invocationId"].as_str().unwrap().to_owned();
    let rejected = api.post(&format!("/v1/agent/invocations/{id2}/reject"), json!({ "reason": "Too pushy" })).await;
    assert_eq!(rejected.ok(200)["status"], "CANCELLED");
    assert_eq!(rejected.body["error"]["code"], "rejected");
    assert_eq!(rejected.body["error"]["message"], "Too pushy");
    let a2 = api.get(&format!("/v1/agent/approvals/{}", second["approvalId"].as_str().unwrap())).await;
    assert_eq!(a2.ok(200)["status"], "rejected");

    // Cancel works on a waiting invocation too.
    let third = send(&api, &rel, &contact, "Third try").await;
    let id3 = third["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(
        api.post(&format!("/v1/agent/invocations/{id3}/cancel"), json!({})).await.ok(200)["status"],
        "CANCELLED"
    );
    let a3 = api.get(&format!("/v1/agent/approvals/{}", third["approvalId"].as_str().unwrap())).await;
    assert_eq!(a3.ok(200)["status"], "cancelled");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(
        (u.ok(200)["creditsUsedThisCycle"].as_f64(), u.body["creditsReserved"].as_f64()),
        (Some(2.0), Some(0.0))
    );
}

/// A mailbox on a private mail server (its certificate signed by a company CA) sends over STARTTLS
/// once the operator trusts that CA with LINKCRM_SMTP_CA_FILE; without it the send fails at once,
/// without retries, saying why, and nothing reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_to_a_private_mail_server_needs_its_ca() {
    let smtp = SmtpServer::start_starttls().unwrap();
    let ca = smtp.ca_file.clone().unwrap();
    let body = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "localhost",
                       "smtpPort": smtp.port, "security": "starttls" });

    let env = Env::start_with(Backend::Embedded, &[("LINKCRM_SMTP_CA_FILE", ca.to_str().unwrap())]).await;
    let (_, api) = workspace(&env, "Private CA", true).await;
    api.post("/v1/mailboxes", body.clone()).await.ok(201);
    let (rel, _, contact) = target(&api, "eng-blog.com", "marina@eng-blog.com").await;
    let accepted = send(&api, &rel, &contact, "Guest post idea").await;
    let done = api
        .wait_invocation(accepted["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let got = to(&smtp, "marina@eng-blog.com");
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "sent in plain text");

    let env = Env::start(Backend::Embedded).await;
    let (_, api) = workspace(&env, "No CA", true).await;
    api.post("/v1/mailboxes", body).await.ok(201);
    let (rel, _, contact) = target(&api, "other-blog.com", "tom@other-blog.com").await;
    let accepted = send(&api, &rel, &contact, "Guest post idea").await;
    let done = api
        .wait_invocation(accepted["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await;
    assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("FAILED"), Some("send_invalid")));
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("certificate") && message.contains("LINKCRM_SMTP_CA_FILE"), "{message}");
    assert!(to(&smtp, "tom@other-blog.com").is_empty());
}
