//! The relay Lambda binary, run as Lambda runs it (`linkcrm_testkit::lambda`): a fake Runtime API
//! on loopback hands it one DynamoDB Stream batch; DynamoDB, EventBridge (with an SQS target) and
//! the job queues are moto.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use linkcrm_events::outbox::{outbox_item, outbox_key};
use linkcrm_events::{outbox_put, DomainEvent};
use linkcrm_jobs::{Job, JobQueue, SqsQueue, StoreQueue};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_storage::{Item, Store};
use linkcrm_testkit::{unique_table_name, Moto};
use serde_json::{json, Value};
use std::time::Duration;

fn record(name: &str, seq: &str, image: &Item) -> EventRecord {
    let mut r = EventRecord::default();
    r.event_name = name.into();
    r.event_id = format!("rec-{seq}");
    r.aws_region = "us-east-1".into();
    r.change.sequence_number = Some(seq.into());
    r.change.keys = serde_dynamo::to_item(json!({ "PK": image["PK"], "SK": image["SK"] })).unwrap();
    r.change.new_image = serde_dynamo::to_item(image).unwrap();
    r
}

async fn invoke(env: &[(&str, &str)], payload: Value) -> Value {
    linkcrm_testkit::lambda::invoke(env!("CARGO_BIN_EXE_relay"), env, payload).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_batch_is_published_and_acknowledged_and_a_failure_is_reported() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let name = unique_table_name("relay-fn");
    let store = DynamoStore::for_endpoint(&endpoint, &name);
    store.create_table().await.unwrap();
    let creds = Credentials::new("test", "test", None, None, "test");
    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds.clone())
            .endpoint_url(&endpoint)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&endpoint)
            .build(),
    );
    eb.create_event_bus().name(&name).send().await.unwrap();
    let queue = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    eb.put_rule().name("all").event_bus_name(&name).event_pattern(r#"{"source":["linkcrm"]}"#).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap();
    eb.put_targets().rule("all").event_bus_name(&name).targets(target).send().await.unwrap();

    let events: Vec<DomainEvent> =
        (0..3).map(|i| DomainEvent::new("workspace.created", Some(format!("ws_{i}")), json!({ "i": i }))).collect();
    for e in &events {
        store.transact(vec![outbox_put(e)]).await.unwrap();
    }
    let state: Item = json!({ "PK": "WS#ws_0", "SK": "#META", "entity": "workspace" }).as_object().unwrap().clone();
    let mut batch = Event::default();
    batch.records = vec![
        record("INSERT", "100", &state),
        record("INSERT", "101", &outbox_item(&events[0])),
        record("INSERT", "102", &outbox_item(&events[1])),
        record("REMOVE", "103", &outbox_item(&events[0])),
        record("INSERT", "104", &outbox_item(&events[2])),
    ];
    let payload = serde_json::to_value(&batch).unwrap();
    let aws = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", name.as_str()),
    ];

    // A bus that does not exist: the batch fails from the first outbox record, nothing is acked.
    let env: Vec<_> = aws.iter().copied().chain([("LINKCRM_EVENT_BUS", "no-such-bus")]).collect();
    assert_eq!(invoke(&env, payload.clone()).await, json!({ "batchItemFailures": [{ "itemIdentifier": "101" }] }));
    for e in &events {
        assert!(store.get(&outbox_key(&e.id)).await.unwrap().is_some());
    }

    // Lambda's retry, to the real bus.
    let env: Vec<_> = aws.iter().copied().chain([("LINKCRM_EVENT_BUS", name.as_str())]).collect();
    assert_eq!(invoke(&env, payload).await, json!({ "batchItemFailures": [] }));
    for e in &events {
        assert!(store.get(&outbox_key(&e.id)).await.unwrap().is_none(), "{} not acknowledged", e.id);
    }
    let mut ids = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            ids.push(body["detail"]["id"].as_str().unwrap().to_owned());
            sqs.delete_message().queue_url(&queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    ids.sort();
    let mut expected: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

fn job_record(seq: &str, op: &linkcrm_storage::TxOp) -> EventRecord {
    let linkcrm_storage::TxOp::Put { item, .. } = op else { panic!("enqueue_op is a put") };
    record("INSERT", seq, item)
}

async fn drain(queue: &SqsQueue) -> Vec<Job> {
    let mut jobs = Vec::new();
    loop {
        let got = queue.receive(10, Duration::from_secs(30), Duration::from_millis(500)).await.unwrap();
        if got.is_empty() {
            return jobs;
        }
        for d in got {
            queue.ack(&d.receipt).await.unwrap();
            jobs.push(d.job);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_forwarded_to_their_queues_from_the_stream_and_on_the_schedule() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let name = unique_table_name("relay-jobs");
    let store = DynamoStore::for_endpoint(&endpoint, &name);
    store.create_table().await.unwrap();
    let discover = SqsQueue::for_endpoint(&endpoint, &format!("{name}-discover"), 5).await.unwrap();
    let send = SqsQueue::for_endpoint(&endpoint, &format!("{name}-send"), 5).await.unwrap();

    let now_job = Job::new("discover", json!({ "invocationId": "inv_a" }));
    let soon_job = Job::new("send", json!({ "invocationId": "inv_b" }));
    let later_job = Job::new("send", json!({ "invocationId": "inv_c" }));
    let due_job = Job::new("send", json!({ "invocationId": "inv_d" }));
    let now_op = StoreQueue::enqueue_op("work", &now_job, Duration::ZERO).unwrap();
    let soon_op = StoreQueue::enqueue_op("work", &soon_job, Duration::from_secs(2)).unwrap();
    let mut later_op = StoreQueue::enqueue_op("work", &later_job, Duration::ZERO).unwrap();
    let mut due_op = StoreQueue::enqueue_op("work", &due_job, Duration::ZERO).unwrap();
    // Scheduled an hour ahead (beyond SQS's delay), and one scheduled long ago that is due now.
    let hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let linkcrm_storage::TxOp::Put { item, .. } = &mut later_op {
        item.insert("SK".into(), json!(format!("{hour}#{}", later_job.id)));
    }
    if let linkcrm_storage::TxOp::Put { item, .. } = &mut due_op {
        item.insert("enqueuedAt".into(), json!("2026-01-01T00:00:00.000Z"));
    }
    let later_key = match &later_op {
        linkcrm_storage::TxOp::Put { item, .. } => linkcrm_storage::Key::of(item).unwrap(),
        _ => unreachable!(),
    };
    store.transact(vec![now_op.clone(), soon_op.clone(), later_op.clone(), due_op]).await.unwrap();

    let mut batch = Event::default();
    batch.records = vec![job_record("200", &now_op), job_record("201", &soon_op), job_record("202", &later_op)];
    let payload = serde_json::to_value(&batch).unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LINKCRM_TABLE", name.as_str()),
        ("LINKCRM_EVENT_BUS", "unused"),
        ("LINKCRM_DISCOVER_QUEUE_URL", discover.url()),
        ("LINKCRM_SEND_QUEUE_URL", send.url()),
    ];
    assert_eq!(invoke(&env, payload.clone()).await, json!({ "batchItemFailures": [] }));
    assert_eq!(drain(&discover).await, vec![now_job.clone()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(drain(&send).await, vec![soon_job.clone()], "the delayed job arrives after its delay");
    assert!(store.get(&later_key).await.unwrap().is_some(), "a job an hour ahead waits in the table");

    // Lambda retrying the same batch: the forwarded items are gone, nothing is sent twice.
    assert_eq!(invoke(&env, payload).await, json!({ "batchItemFailures": [] }));
    assert!(drain(&discover).await.is_empty());

    // The schedule's tick forwards the job that came due, and leaves the later one.
    let tick = json!({ "source": "aws.events", "detail-type": "Scheduled Event", "detail": {} });
    assert_eq!(invoke(&env, tick).await, json!({ "forwarded": 1, "unroutable": 0 }));
    assert_eq!(drain(&send).await, vec![due_job]);
    assert!(store.get(&later_key).await.unwrap().is_some());
}
