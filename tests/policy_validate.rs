//! `POST /v1/policy/validate`: the sending policy asked ahead of time, on both backends, against
//! what real sends (in-process worker, aiosmtpd) then do.

mod common;
use common::Api;
use linkcrm_testkit::smtp::SmtpServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const REL: &str = "/v1/link-building/crm/relationship";
const FROM: &str = "dana@outreach.example.com";
const BODY: &str = "Hi,\n\nA guest post idea.\n\nDana";

async fn target(api: &Api, domain: &str, email: &str) -> (String, String, String) {
    let r = api.post(REL, json!({ "domain": domain })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c = api
        .post("/v1/link-building/crm/contact", json!({ "accountId": acct, "firstName": "Pat", "email": email }))
        .await;
    (rel, acct, c.ok(201)["id"].as_str().unwrap().to_owned())
}

/// Sends and waits for the outcome.
async fn send(api: &Api, rel: &str, contact: &str, subject: &str) -> Value {
    let body = json!({ "contactId": contact, "subject": subject, "body": BODY });
    let r = api.post(&format!("{REL}/{rel}/send-email"), body).await;
    let id = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = api.get(&format!("/v1/agent/invocations/{id}")).await.ok(200).clone();
        if ["SUCCEEDED", "FAILED"].contains(&b["status"].as_str().unwrap()) {
            return b;
        }
        assert!(Instant::now() < deadline, "invocation {id} still {} after 30 s", b["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn validate(api: &Api, body: Value) -> Value {
    api.post("/v1/policy/validate", body).await.ok(200).clone()
}

async fn validate_to(api: &Api, to: &str) -> Value {
    validate(api, json!({ "recipientEmail": to, "senderEmail": FROM })).await
}

fn codes(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect()
}

/// The reason codes a blocked send carries.
fn blocked_codes(done: &Value) -> Vec<String> {
    assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("FAILED"), Some("send_blocked")));
    codes(&done["error"]["details"]["reasons"])
}

on_both_backends!(validate_agrees_with_the_send_job, |env| {
    let smtp = SmtpServer::start().unwrap();
    let agency = env.agency();
    let ws = agency.create_workspace("Policy").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 50 })).await.ok(201);
    let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), patch).await.ok(200);
    let api = agency.in_workspace(&ws);
    let mbx = json!({ "fromName": "Dana", "fromAddress": FROM, "smtpHost": "127.0.0.1", "smtpPort": smtp.port,
                      "security": "none", "dailyCap": 2 });
    let mbx = api.post("/v1/mailboxes", mbx).await.ok(201)["id"].as_str().unwrap().to_owned();

    // Bad input: 400 naming the field; a sender that is not one of our mailboxes: 422.
    let r = api.post("/v1/policy/validate", json!({ "recipientEmail": "not-an-email", "senderEmail": FROM })).await;
    assert_eq!(r.problem(400, "invalid_email")["errors"][0]["field"], "recipientEmail");
    let r = api.post("/v1/policy/validate", json!({ "recipientEmail": "a@b.com", "senderEmail": "nope" })).await;
    assert_eq!(r.problem(400, "invalid_email")["errors"][0]["field"], "senderEmail");
    let r = api.post("/v1/policy/validate", json!({ "senderEmail": FROM })).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    let r = api
        .post("/v1/policy/validate", json!({ "recipientEmail": "a@b.com", "senderEmail": "someone@else.example" }))
        .await;
    r.problem(422, "mailbox_not_found");
    // A workspace key needs campaigns:read.
    let crm_only = agency.with_key(&agency.create_key(&ws, Some(&["crm:read"])).await).in_workspace(&ws);
    crm_only
        .post("/v1/policy/validate", json!({ "recipientEmail": "a@b.com", "senderEmail": FROM }))
        .await
        .problem(403, "insufficient_scope");

    // Allowed: a known contact, nothing against it.
    let (rel, acct, contact) = target(&api, "eng-blog.com", "marina@eng-blog.com").await;
    let v = validate_to(&api, "Marina@Eng-Blog.com").await;
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["reasons"], json!([]));
    assert_eq!(
        v["recipient"],
        json!({ "email": "marina@eng-blog.com", "domain": "eng-blog.com",
                                         "contactId": contact, "accountId": acct })
    );
    assert_eq!(v["mailbox"], json!({ "id": mbx, "fromAddress": FROM }));
    assert_eq!(v["counts"], json!({ "mailboxSendsToday": 0, "domainSendsToday": 0, "accountRecentSends": 0 }));
    assert_eq!(v["limits"]["mailboxDailyCap"], 2);
    assert_eq!(v["limits"]["domainDailyCap"], 3);
    assert_eq!(v["limits"]["mailboxRemainingToday"], 2);
    assert_eq!(v["limits"]["coolingOff"], json!({ "afterSends": 3, "days": 30, "until": null, "active": false }));
    assert_eq!(v["duplicateCheck"], "none");

    // Validation writes nothing: no invocation, no event, no reservation, no send.
    let events = api.get("/v1/link-building/crm/event").await.ok(200).clone();
    let usage = agency.get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
    for _ in 0..3 {
        validate_to(&api, "marina@eng-blog.com").await;
    }
    assert_eq!(api.get("/v1/agent/invocations").await.ok(200)["data"], json!([]));
    assert_eq!(api.get("/v1/link-building/crm/event").await.ok(200)["data"], events["data"]);
    assert_eq!(agency.get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200), &usage);
    assert!(smtp.received().is_empty());

    // A real send, then the same message again: validate says duplicate, as the send would.
    let done = send(&api, &rel, &contact, "Guest post idea").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let same = json!({ "recipientEmail": "marina@eng-blog.com", "senderEmail": FROM, "subject": "Guest post idea",
                       "body": BODY });
    let v = validate(&api, same).await;
    assert_eq!((v["allowed"].as_bool(), codes(&v["reasons"])), (Some(false), vec!["duplicate".to_owned()]), "{v}");
    assert_eq!(v["duplicateCheck"], "message");
    assert_eq!(v["counts"]["mailboxSendsToday"], 1);
    assert_eq!(v["counts"]["domainSendsToday"], 1);
    assert_eq!(v["counts"]["accountRecentSends"], 1);
    assert_eq!(v["limits"]["mailboxRemainingToday"], 1);
    // A subject alone: reported, but not blocking (a send with another body would go out).
    let v = validate(
        &api,
        json!({ "recipientEmail": "marina@eng-blog.com", "senderEmail": FROM,
                                   "subject": "Guest post idea" }),
    )
    .await;
    assert_eq!((v["allowed"].as_bool(), v["duplicateCheck"].as_str()), (Some(true), Some("subject")), "{v}");
    assert_eq!(codes(&v["notes"]), ["same_subject_recently"]);
    let v = validate(
        &api,
        json!({ "recipientEmail": "marina@eng-blog.com", "senderEmail": FROM,
                                   "subject": "Another idea" }),
    )
    .await;
    assert_eq!(v["notes"], json!([]), "{v}");
    let again = send(&api, &rel, &contact, "Guest post idea").await;
    assert_eq!(blocked_codes(&again), ["duplicate"]);

    // A suppressed address: validate and the send give the same reasons.
    let (rel_s, _, c_s) = target(&api, "quiet.org", "anna@quiet.org").await;
    api.post("/v1/suppression", json!({ "email": "anna@quiet.org" })).await.ok(201);
    let v = validate_to(&api, "anna@quiet.org").await;
    assert_eq!((v["allowed"].as_bool(), codes(&v["reasons"])), (Some(false), vec!["suppressed".to_owned()]), "{v}");
    assert_eq!(v["reasons"][0]["suppression"]["value"], "anna@quiet.org");
    assert_eq!(blocked_codes(&send(&api, &rel_s, &c_s, "Hello Anna").await), codes(&v["reasons"]));

    // A suppressed domain: every address there, contact or not.
    let (rel_d, _, c_d) = target(&api, "blocked-domain.com", "bob@blocked-domain.com").await;
    api.post("/v1/suppression", json!({ "domain": "blocked-domain.com" })).await.ok(201);
    let v = validate_to(&api, "bob@blocked-domain.com").await;
    assert_eq!(codes(&v["reasons"]), ["suppressed"], "{v}");
    assert_eq!(v["reasons"][0]["suppression"]["kind"], "domain");
    assert_eq!(codes(&validate_to(&api, "anyone@blocked-domain.com").await["reasons"]), ["suppressed"]);
    assert_eq!(blocked_codes(&send(&api, &rel_d, &c_d, "Hello Bob").await), codes(&v["reasons"]));

    // DO_NOT_CONTACT on the account: the contact, and any address of its domain.
    let (rel_n, acct_n, c_n) = target(&api, "leave-me-alone.com", "ed@leave-me-alone.com").await;
    let dnc = format!("/v1/link-building/crm/account/{acct_n}/do-not-contact");
    api.post(&dnc, json!({ "reason": "Asked to be removed" })).await.ok(200);
    let v = validate_to(&api, "ed@leave-me-alone.com").await;
    assert_eq!(codes(&v["reasons"]), ["do_not_contact"], "{v}");
    let other = validate_to(&api, "info@leave-me-alone.com").await;
    assert_eq!(codes(&other["reasons"]), ["do_not_contact"], "{other}");
    assert_eq!(
        (other["recipient"]["contactId"].clone(), other["recipient"]["accountId"].as_str()),
        (Value::Null, Some(acct_n.as_str()))
    );
    assert_eq!(blocked_codes(&send(&api, &rel_n, &c_n, "Hello Ed").await), codes(&v["reasons"]));

    // Nobody we know: account rules do not apply (a note says so); suppression and caps do.
    let v = validate_to(&api, "someone@never-heard-of.io").await;
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(codes(&v["notes"]), ["account_unknown"]);
    assert_eq!((v["recipient"]["contactId"].clone(), v["recipient"]["accountId"].clone()), (Value::Null, Value::Null));
    assert_eq!(v["counts"]["accountRecentSends"], Value::Null);

    // The mailbox's cap (2 a day) reached by real sends: validate and the next send agree.
    let (rel2, _, c2) = target(&api, "second-site.com", "jo@second-site.com").await;
    assert_eq!(send(&api, &rel2, &c2, "Hello Jo").await["status"], "SUCCEEDED");
    let (rel3, _, c3) = target(&api, "third-site.com", "al@third-site.com").await;
    let v = validate_to(&api, "al@third-site.com").await;
    assert_eq!(
        (v["allowed"].as_bool(), codes(&v["reasons"])),
        (Some(false), vec!["mailbox_daily_cap".to_owned()]),
        "{v}"
    );
    assert_eq!(v["counts"]["mailboxSendsToday"], 2);
    assert_eq!(v["limits"]["mailboxRemainingToday"], 0);
    assert_eq!(blocked_codes(&send(&api, &rel3, &c3, "Hello Al").await), codes(&v["reasons"]));
    // Blocked sends are not counted.
    assert_eq!(validate_to(&api, "al@third-site.com").await["counts"]["mailboxSendsToday"], 2);

    // Only the two real sends reached the server.
    assert_eq!(smtp.received().len(), 2);
});
