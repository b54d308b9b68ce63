//! The inbound worker Lambda binary, run as Lambda runs it (`linkcrm_testkit::lambda`), on the AWS
//! path: its EventBridge schedule queues a poll job per due mailbox (committed to the table on
//! moto), the forwarder moves the jobs to the inbound queue (SQS on moto), and the queue's records
//! handed to the binary read a real IMAP server (Dovecot) and record what is new.

use linkcrm_jobs::{Delivery, Forwarder, JobQueue, SqsQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_testkit::http::{serve, Client};
use linkcrm_testkit::imap::ImapServer;
use linkcrm_testkit::lambda::{sqs_event, sqs_record};
use linkcrm_testkit::{unique_table_name, Moto};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:inbound";

fn scheduled_event() -> Value {
    json!({ "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-12-06T12:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/mailbox-polls"],
            "detail": {} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_queues_polls_and_the_worker_reads_the_mailbox() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let table = unique_table_name("inbound-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &table);
    store.create_table().await.unwrap();
    let store: linkcrm_storage::DynStore = Arc::new(store);
    let queue = Arc::new(SqsQueue::for_endpoint(&endpoint, &format!("{table}-inbound"), 5).await.unwrap());
    let forwarder = Forwarder::new(store.clone(), "work")
        .route("mailbox_poll", queue.clone() as Arc<dyn JobQueue>)
        .route("inbound_negotiate", queue.clone() as Arc<dyn JobQueue>)
        .with_stream_grace(Duration::ZERO);
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(store.clone(), config).await.unwrap();
    let base = serve(linkcrm_api::router(&app)).await;
    let (_, secret) = linkcrm_api::platform::create_agency(&store, "Agency", None).await.unwrap();
    let agency = Client::new(&base, &secret);
    let ws = agency.ok(Method::POST, "/v1/workspaces", Some(json!({ "name": "Client A" })), 201).await;
    let api = agency.in_workspace(ws["id"].as_str().unwrap());

    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    let mailbox = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
        "imapHost": "localhost", "imapPort": imap.port, "imapSecurity": "starttls", "imapUsername": imap.user,
        "imapPassword": imap.password });
    let mbx = api.ok(Method::POST, "/v1/mailboxes", Some(mailbox), 201).await["id"].as_str().unwrap().to_owned();
    // The negotiator is on (not autonomous): requests it reads are negotiated by the same worker.
    agency
        .ok(
            Method::POST,
            &format!("/v1/workspaces/{}/credits", ws["id"].as_str().unwrap()),
            Some(json!({ "credits": 10 })),
            201,
        )
        .await;
    api.ok(Method::POST, "/v1/link-building/inbound/settings", Some(json!({ "enabled": true })), 200).await;

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", table.as_str()),
        ("LINKCRM_QUEUE_URL", queue.url()),
        ("LINKCRM_IMAP_CA_FILE", ca.as_str()),
        ("LINKCRM_IMAP_POLL_SECS", "1"),
        ("LINKCRM_ALLOW_PRIVATE_TARGETS", "true"),
        ("RUST_LOG", "info"),
    ];
    let bin = env!("CARGO_BIN_EXE_inbound-worker");
    let receive = async || -> Vec<Delivery> {
        forwarder.forward_due().await.unwrap();
        queue.receive(10, Duration::from_secs(60), Duration::from_millis(500)).await.unwrap()
    };
    let run = async |deliveries: &[Delivery]| -> Value {
        let records = deliveries
            .iter()
            .map(|d| {
                let body = serde_json::to_string(&d.job).unwrap();
                sqs_record(&format!("msg-{}", d.job.id), &d.receipt, &body, d.receive_count, SOURCE_ARN)
            })
            .collect();
        linkcrm_testkit::lambda::invoke(bin, &env, sqs_event(records)).await
    };

    // The schedule queues one poll for the new mailbox; run again at once, it queues none.
    let tick = linkcrm_testkit::lambda::invoke(bin, &env, scheduled_event()).await;
    assert_eq!(tick["polled"], 1, "{tick}");
    let again = linkcrm_testkit::lambda::invoke(bin, &env, scheduled_event()).await;
    assert_eq!(again["polled"], 0, "{again}");
    let jobs = receive().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].job.kind.as_str(), jobs[0].job.payload["mailboxId"].as_str()),
        ("mailbox_poll", Some(mbx.as_str()))
    );
    let answer = run(&jobs).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    queue.ack(&jobs[0].receipt).await.unwrap();
    let m = api.ok(Method::GET, &format!("/v1/mailboxes/{mbx}"), None, 200).await;
    assert_eq!(m["imap"]["status"], "ok", "{m}");

    // Mail arrives; once due again, the next scheduled poll records it.
    imap.append(
        "From: Kim <kim@partner.example.com>\r\nTo: dana@outreach.example.com\r\nSubject: A pitch\r\n\
                 Message-ID: <pitch-1@partner.example.com>\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\nHello!\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let tick = linkcrm_testkit::lambda::invoke(bin, &env, scheduled_event()).await;
    assert_eq!(tick["polled"], 1, "{tick}");
    let jobs = receive().await;
    assert_eq!(run(&jobs).await["batchItemFailures"], json!([]));
    let got = api.ok(Method::GET, "/v1/link-building/inbound", None, 200).await;
    let data = got["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{got}");
    assert_eq!((data[0]["subject"].as_str(), data[0]["mailboxId"].as_str()), (Some("A pitch"), Some(mbx.as_str())));
    assert!(data[0].get("negotiation").is_none(), "not negotiated yet: {got}");

    // The message's negotiation job, through the same queue and binary: a person decides (the
    // workspace is not autonomous), with a drafted reply waiting for approval.
    let jobs = receive().await;
    assert_eq!(jobs.iter().map(|d| d.job.kind.as_str()).collect::<Vec<_>>(), ["inbound_negotiate"]);
    assert_eq!(run(&jobs).await["batchItemFailures"], json!([]));
    let id = data[0]["id"].as_str().unwrap();
    let m = api.ok(Method::GET, &format!("/v1/link-building/inbound/{id}"), None, 200).await;
    let n = &m["negotiation"];
    assert_eq!(n["outcome"], "escalated", "{m}");
    assert!(n["approvalId"].as_str().is_some_and(|a| a.starts_with("appr_")), "{m}");
}
