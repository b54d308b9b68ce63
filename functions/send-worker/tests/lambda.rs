//! The send worker Lambda binary, run as Lambda runs it (`linkcrm_testkit::lambda`), on the AWS
//! path end to end: the API (in-process, over DynamoDB on moto) commits a send; the forwarder moves
//! the job to the send queue (SQS on moto); the queue's records are handed to the binary, which
//! sends through a real SMTP server (aiosmtpd) and answers with ReportBatchItemFailures.

use linkcrm_jobs::{Delivery, Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_testkit::http::{serve, Client};
use linkcrm_testkit::lambda::{sqs_event as event_of, sqs_record};
use linkcrm_testkit::smtp::SmtpServer;
use linkcrm_testkit::{unique_table_name, Moto};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const REL: &str = "/v1/link-building/crm/relationship";

const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:send-dlq";

/// The SQS event Lambda's event source mapping would deliver for these receipts.
fn sqs_event(deliveries: &[Delivery]) -> Value {
    sqs_event_from(deliveries, "arn:aws:sqs:us-east-1:123456789012:send")
}

fn sqs_event_from(deliveries: &[Delivery], source_arn: &str) -> Value {
    let records = deliveries
        .iter()
        .map(|d| {
            let body = serde_json::to_string(&d.job).unwrap();
            sqs_record(&format!("msg-{}", d.job.id), &d.receipt, &body, d.receive_count, source_arn)
        })
        .collect();
    event_of(records)
}

struct World {
    store: linkcrm_storage::DynStore,
    endpoint: String,
    table: String,
    queue: Arc<SqsQueue>,
    forwarder: Forwarder,
    api: Client,
    smtp: SmtpServer,
}

impl World {
    async fn new() -> World {
        let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
        let table = unique_table_name("send-fn");
        let store = DynamoStore::for_endpoint(&endpoint, &table);
        store.create_table().await.unwrap();
        let store: linkcrm_storage::DynStore = Arc::new(store);
        let queue = Arc::new(SqsQueue::for_endpoint(&endpoint, &format!("{table}-send"), 5).await.unwrap());
        let forwarder = Forwarder::new(store.clone(), "work")
            .route("send", queue.clone() as Arc<dyn JobQueue>)
            .with_stream_grace(Duration::ZERO);
        let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
        let app = linkcrm_api::app(store.clone(), config).await.unwrap();
        let base = serve(linkcrm_api::router(&app)).await;
        let (_, secret) = linkcrm_api::platform::create_agency(&store, "Agency", None).await.unwrap();
        let agency = Client::new(&base, &secret);
        let ws = agency.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": "Client A" })), 201).await;
        let ws = ws["id"].as_str().unwrap().to_owned();
        agency.ok(Method::POST, &format!("/v1/workspaces/{ws}/credits"), Some(json!({ "credits": 20 })), 201).await;
        let auto = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
        agency.ok(Method::PATCH, &format!("/v1/workspaces/{ws}"), Some(auto), 200).await;
        let api = agency.in_workspace(&ws);
        let smtp = SmtpServer::start().unwrap();
        let mailbox = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                              "smtpPort": smtp.port, "security": "none" });
        api.ok(Method::POST, "/v1/mailboxes", Some(mailbox), 201).await;
        World { store, endpoint, table, queue, forwarder, api, smtp }
    }

    /// Queues a send to `email` at `domain` through the API; returns the invocation id.
    async fn send_to(&self, domain: &str, email: &str) -> String {
        let rel = self.api.ok(Method::POST, REL, Some(json!({ "domain": domain })), 201).await;
        let contact = json!({ "accountId": rel["accountId"], "firstName": "Pat", "email": email });
        let contact = self.api.ok(Method::POST, "/v1/link-building/crm/contact", Some(contact), 201).await;
        let body = json!({ "contactId": contact["id"], "subject": format!("Guest post for {domain}"), "body": "Hi,\n\nAn idea.\n\nDana" });
        let accepted = self
            .api
            .ok(Method::POST, &format!("{REL}/{}/send-email", rel["id"].as_str().unwrap()), Some(body), 202)
            .await;
        accepted["invocationId"].as_str().unwrap().to_owned()
    }

    async fn receive(&self) -> Vec<Delivery> {
        let mut all = Vec::new();
        loop {
            let got = self.queue.receive(10, Duration::from_secs(60), Duration::from_millis(300)).await.unwrap();
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    async fn invoke(&self, payload: Value) -> Value {
        let env = [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("LINKCRM_TABLE", self.table.as_str()),
            ("LINKCRM_QUEUE_URL", self.queue.url()),
            ("LINKCRM_DEAD_LETTER_QUEUE_ARN", DLQ_ARN),
            // The test's mail server is on loopback.
            ("LINKCRM_ALLOW_PRIVATE_TARGETS", "true"),
            ("RUST_LOG", "info"),
        ];
        linkcrm_testkit::lambda::invoke(env!("CARGO_BIN_EXE_send-worker"), &env, payload).await
    }

    async fn invocation(&self, id: &str) -> Value {
        self.api.ok(Method::GET, &format!("/v1/agent/invocations/{id}"), None, 200).await
    }

    fn received_by(&self, email: &str) -> usize {
        self.smtp.received().iter().filter(|m| m.rcpt_tos.iter().any(|r| r == email)).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_sent_once_and_a_deferral_and_a_stray_record_are_reported() {
    let w = World::new().await;
    let ok = w.send_to("partner-one.example", "editor@partner-one.example").await;
    let later = w.send_to("partner-two.example", "defer@partner-two.example").await;
    let forwarded = w.forwarder.forward_due().await.unwrap();
    assert_eq!(forwarded.sent, 2);
    let mut deliveries = w.receive().await;
    deliveries.sort_by_key(|d| d.job.payload["invocationId"] != json!(ok));
    assert_eq!(deliveries.len(), 2);
    let mut payload = sqs_event(&deliveries);
    payload["Records"].as_array_mut().unwrap().push(json!({
        "messageId": "msg-stray", "receiptHandle": "stray", "body": "not a job",
        "attributes": { "ApproximateReceiveCount": "1" }, "eventSource": "aws:sqs",
    }));

    let answer = w.invoke(payload).await;
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    assert_eq!(failed, vec![format!("msg-{}", deliveries[1].job.id), "msg-stray".to_owned()], "{answer}");

    // The accepted send: delivered once, recorded, charged.
    assert_eq!(w.received_by("editor@partner-one.example"), 1);
    let done = w.invocation(&ok).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["creditsUsed"], json!(2));
    // The deferred one went back to PENDING, hidden for the handler's backoff, then comes back.
    assert_eq!(w.invocation(&later).await["status"], "PENDING");
    assert_eq!(w.received_by("defer@partner-two.example"), 0);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = w.receive().await;
    assert_eq!(again.len(), 1, "the deferred job is visible again after its backoff");
    assert_eq!(again[0].job.id, deliveries[1].job.id);
    assert_eq!(again[0].receive_count, 2);

    // Lambda delivering the sent job again (a redelivery): nothing is sent a second time.
    let mut redelivered = deliveries[0].clone();
    redelivered.receive_count = 2;
    assert_eq!(w.invoke(sqs_event(&[redelivered])).await, json!({ "batchItemFailures": [] }));
    assert_eq!(w.received_by("editor@partner-one.example"), 1);
    assert_eq!(w.invocation(&ok).await["status"], "SUCCEEDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_delivery_of_a_job_that_keeps_failing_ends_its_invocation() {
    let w = World::new().await;
    let id = w.send_to("partner-three.example", "defer@partner-three.example").await;
    w.forwarder.forward_due().await.unwrap();
    let mut deliveries = w.receive().await;
    assert_eq!(deliveries.len(), 1);
    // Its fifth receive (the redrive limit): the mail server still defers, so the job is given up
    // and acknowledged instead of dead-lettering with its credits reserved.
    deliveries[0].receive_count = 5;
    assert_eq!(w.invoke(sqs_event(&deliveries)).await, json!({ "batchItemFailures": [] }));
    let done = w.invocation(&id).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"]["code"], "provider_unavailable");
    assert_eq!(done["creditsUsed"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_settled_not_sent() {
    use linkcrm_api::crm::records::obj;
    use linkcrm_api::{invocations as inv, sending};
    let w = World::new().await;
    let id = w.send_to("partner-four.example", "editor@partner-four.example").await;
    w.forwarder.forward_due().await.unwrap();
    let deliveries = w.receive().await;
    assert_eq!(deliveries.len(), 1);
    // Its worker claimed the send and died mid-SMTP on every delivery; the queue dead-lettered it.
    let item = w.store.get(&inv::key(&id)).await.unwrap().unwrap();
    let claim = sending::claim_key(&id);
    let claimed =
        obj(json!({ "PK": claim.pk, "SK": claim.sk, "messageId": "m1@outreach.example.com", "leaseUntil": 0 }));
    w.store
        .transact(vec![inv::transition(&item, inv::Status::Running, vec![]), linkcrm_storage::TxOp::put(claimed)])
        .await
        .unwrap();

    let answer = w.invoke(sqs_event_from(&deliveries, DLQ_ARN)).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let done = w.invocation(&id).await;
    assert_eq!(
        (done["status"].as_str(), done["error"]["code"].as_str()),
        (Some("FAILED"), Some("send_uncertain")),
        "{done}"
    );
    assert_eq!(done["creditsUsed"], json!(0));
    assert_eq!(w.received_by("editor@partner-four.example"), 0, "a dead letter is never sent");
}
