//! The platform mailbox from the server's configuration: workspaces without a mailbox of their own
//! send through it (authenticating with the configured password), policy validation knows it, and
//! its daily cap counts every workspace's sends together.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::smtp::SmtpServer;
use serde_json::{json, Value};
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";

async fn workspace(env: &Env, name: &str) -> Api {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
    let auto = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), auto).await.ok(200);
    agency.in_workspace(&ws)
}

async fn send(api: &Api, domain: &str) -> Value {
    let r = api.post(REL, json!({ "domain": domain })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].clone());
    let c =
        api.post("/v1/link-building/crm/contact", json!({ "accountId": acct, "email": format!("ed@{domain}") })).await;
    let body = json!({ "contactId": c.ok(201)["id"], "subject": "Hello", "body": "Hi" });
    let accepted = api.post(&format!("{REL}/{rel}/send-email"), body).await.ok(202).clone();
    api.wait_invocation(accepted["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await
}

async fn platform_mailbox(backend: Backend) {
    let smtp = SmtpServer::start_with_user("platform", "pl4tform-pass").unwrap();
    let port = smtp.port.to_string();
    let vars = [
        ("LINKCRM_SMTP_HOST", "127.0.0.1"),
        ("LINKCRM_SMTP_PORT", port.as_str()),
        ("LINKCRM_SMTP_SECURITY", "none"),
        ("LINKCRM_SMTP_USERNAME", "platform"),
        ("LINKCRM_SMTP_PASSWORD", "pl4tform-pass"),
        ("LINKCRM_SMTP_FROM_ADDRESS", "outreach@agency.example"),
        ("LINKCRM_SMTP_FROM_NAME", "Agency Outreach"),
        ("LINKCRM_SMTP_DAILY_CAP", "1"),
    ];
    let env = Env::start_with(backend, &vars).await;
    let (a, b) = (workspace(&env, "A").await, workspace(&env, "B").await);

    // Validation knows the platform mailbox and its shared counter.
    let check = json!({ "recipientEmail": "ed@one.example", "senderEmail": "outreach@agency.example" });
    let v = a.post("/v1/policy/validate", check.clone()).await.ok(200).clone();
    assert_eq!(v["allowed"], true, "{v}");

    let done = send(&a, "one.example").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["input"]["mailboxId"], "mbx_platform");
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authenticated_as.as_deref(), Some("platform"));
    assert_eq!(got[0].mail_from, "outreach@agency.example");

    // Its cap of 1 a day is the platform's, not each workspace's: B is blocked too.
    let v = b.post("/v1/policy/validate", check).await.ok(200).clone();
    assert_eq!(v["allowed"], false, "{v}");
    let done = send(&b, "two.example").await;
    assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("FAILED"), Some("send_blocked")));
    assert_eq!(done["error"]["details"]["reasons"][0]["code"], "mailbox_daily_cap", "{done}");
    assert_eq!(smtp.received().len(), 1);

    // A workspace's own mailbox is used before the platform's.
    b.post(
        "/v1/mailboxes",
        json!({ "fromName": "B", "fromAddress": "b@b.example", "smtpHost": "127.0.0.1", "smtpPort": smtp.port,
                "security": "none" }),
    )
    .await
    .ok(201);
    let done = send(&b, "three.example").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_ne!(done["input"]["mailboxId"], "mbx_platform");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_mailbox_embedded() {
    platform_mailbox(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_mailbox_dynamodb() {
    platform_mailbox(Backend::Dynamo).await
}
