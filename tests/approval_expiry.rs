//! Approvals expire at `timeoutAt`: the binary started with a two-second timeout, its in-process
//! worker running the scheduled expiry, on both backends.

mod common;
use common::{Backend, Env};
use linkcrm_testkit::smtp::SmtpServer;
use serde_json::json;
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";

async fn expires_unapproved(backend: Backend) {
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start_with(backend, &[("LINKCRM_APPROVAL_TIMEOUT_SECS", "2")]).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Slow reviewers").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
    let api = agency.in_workspace(&ws);
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp.port, "security": "none" });
    api.post("/v1/mailboxes", mbx).await.ok(201);
    let r = api.post(REL, json!({ "domain": "tech-weekly.com" })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c =
        api.post("/v1/link-building/crm/contact", json!({ "accountId": acct, "email": "tom@tech-weekly.com" })).await;
    let contact = c.ok(201)["id"].as_str().unwrap().to_owned();
    let send = |subject: &'static str| {
        let api = api.clone();
        let path = format!("{REL}/{rel}/send-email");
        let body = json!({ "contactId": contact, "subject": subject, "body": "Hi Tom" });
        async move { api.post(&path, body).await.ok(202).clone() }
    };

    let first = send("Will expire").await;
    assert_eq!(first["status"], "WAITING_APPROVAL");
    let id = first["invocationId"].as_str().unwrap().to_owned();
    let approval = format!("/v1/agent/approvals/{}", first["approvalId"].as_str().unwrap());
    let a = api.get(&approval).await.ok(200).clone();
    let at = |k: &str| linkcrm_domain::time::parse(a[k].as_str().unwrap()).unwrap();
    assert_eq!((at("timeoutAt") - at("raisedAt")).num_seconds(), 2, "{a}");
    // A second one, approved in time: the expiry job finds it settled and leaves it alone.
    let second = send("Approved in time").await;
    let id2 = second["invocationId"].as_str().unwrap().to_owned();
    api.post(&format!("/v1/agent/invocations/{id2}/approve"), json!({})).await.ok(200);
    assert_eq!(
        api.wait_invocation(&id2, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await["status"],
        "SUCCEEDED"
    );

    // Nobody decides: at timeoutAt the worker cancels it.
    let done =
        api.wait_invocation(&id, &["CANCELLED", "PENDING", "SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(
        (done["status"].as_str(), done["error"]["code"].as_str()),
        (Some("CANCELLED"), Some("approval_expired"))
    );
    assert_eq!(api.get(&approval).await.ok(200)["status"], "expired");
    let expired = api.get("/v1/agent/approvals?status=expired").await;
    assert_eq!(expired.ok(200)["data"].as_array().unwrap().len(), 1);
    // Released: only the approved send is charged, nothing stays reserved.
    let u = agency.get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(
        (u.ok(200)["creditsUsedThisCycle"].as_f64(), u.body["creditsReserved"].as_f64()),
        (Some(2.0), Some(0.0))
    );
    // Too late to decide.
    api.post(&format!("/v1/agent/invocations/{id}/approve"), json!({})).await.problem(409, "approval_expired");
    api.post(&format!("/v1/agent/invocations/{id}/reject"), json!({})).await.problem(409, "approval_expired");
    // The second approval's expiry time passes too; it stays SUCCEEDED and approved.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(api.get(&format!("/v1/agent/invocations/{id2}")).await.ok(200)["status"], "SUCCEEDED");
    assert_eq!(
        api.get(&format!("/v1/agent/approvals/{}", second["approvalId"].as_str().unwrap())).await.ok(200)["status"],
        "approved"
    );
    // Only the approved message went out.
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("Subject").as_deref(), Some("Approved in time"));
}

mod expires_unapproved {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        expires_unapproved(Backend::Embedded).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        expires_unapproved(Backend::Dynamo).await
    }
}
