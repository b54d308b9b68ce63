//! Mailbox passwords kept in Secrets Manager (moto's server): the send worker resolves the
//! reference at send time and authenticates with it; a reference to a missing secret fails the
//! send with a clear error and sends nothing.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::smtp::SmtpServer;
use linkcrm_testkit::Moto;
use serde_json::{json, Value};
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";

async fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(endpoint)
            .build(),
    )
}

async fn send_with(api: &Api, mailbox: &str, domain: &str) -> Value {
    let r = api.post(REL, json!({ "domain": domain })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].clone());
    let c =
        api.post("/v1/link-building/crm/contact", json!({ "accountId": acct, "email": format!("ed@{domain}") })).await;
    let body = json!({ "contactId": c.ok(201)["id"], "subject": "Hello", "body": "Hi", "mailboxId": mailbox });
    let accepted = api.post(&format!("{REL}/{rel}/send-email"), body).await.ok(202).clone();
    api.wait_invocation(accepted["invocationId"].as_str().unwrap(), &["SUCCEEDED", "FAILED"], Duration::from_secs(30))
        .await
}

async fn secret_reference(backend: Backend) {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let sm = secrets_client(&endpoint).await;
    let name = format!("linkcrm/smtp-{}", linkcrm_testkit::server::unique());
    let arn = sm
        .create_secret()
        .name(&name)
        .secret_string(json!({ "username": "dana", "password": "s3cret-pass" }).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let aws = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let env = Env::start_with(backend, &aws).await;
    let smtp = SmtpServer::start_with_user("dana", "s3cret-pass").unwrap();
    let agency = env.agency();
    let ws = agency.create_workspace("Secrets").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
    let auto = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), auto).await.ok(200);
    let api = agency.in_workspace(&ws);
    let mailbox = |reference: &str| {
        json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                "smtpPort": smtp.port, "security": "none", "smtpUsername": "dana", "passwordRef": reference })
    };
    let good = api.post("/v1/mailboxes", mailbox(&arn)).await;
    let good = good.ok(201)["id"].as_str().unwrap().to_owned();
    let missing_arn = format!("{}-gone", arn.rsplit_once('-').unwrap().0);
    let bad = api.post("/v1/mailboxes", mailbox(&missing_arn)).await;
    let bad = bad.ok(201)["id"].as_str().unwrap().to_owned();
    api.post("/v1/mailboxes", mailbox("arn:aws:s3:::not-a-secret")).await.problem(400, "invalid_request");

    let done = send_with(&api, &good, "secret-one.example").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let arrived = smtp.received();
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].authenticated_as.as_deref(), Some("dana"), "the server saw AUTH with the secret");

    let done = send_with(&api, &bad, "secret-two.example").await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"]["code"], "send_invalid");
    assert!(done["error"]["message"].as_str().unwrap().contains("password reference"), "{done}");
    assert_eq!(smtp.received().len(), 1, "nothing was sent without the password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_reference_embedded() {
    secret_reference(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_reference_dynamodb() {
    secret_reference(Backend::Dynamo).await
}
