//! The relay on DynamoDB and EventBridge, both served by moto: events committed through the outbox
//! reach an SQS queue (the target of a rule on the bus) once each; a relay stopped between publish
//! and acknowledge causes a duplicate with the same id, which the Deduper lets through once.
mod common;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use common::{commit_events, outbox_len};
use linkcrm_events::outbox::{event_of, outbox_partitions};
use linkcrm_events::{Deduper, DomainEvent, EventBridgeBus, Relay, RelayError};
use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_storage::{Query, Store};
use linkcrm_testkit::{unique_table_name, Moto};
use std::collections::HashMap;
use std::sync::Arc;

struct World {
    store: Arc<DynamoStore>,
    bus: Arc<EventBridgeBus>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    endpoint: String,
}

/// A fresh table, bus, queue and rule `{"source":["linkcrm"]}` → queue.
async fn world() -> World {
    let moto = Moto::shared().expect("moto server");
    let endpoint = moto.endpoint().to_owned();
    let name = unique_table_name("events");
    let store = Arc::new(DynamoStore::for_endpoint(&endpoint, &name));
    store.create_table().await.unwrap();

    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&endpoint)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&endpoint)
            .build(),
    );
    eb.create_event_bus().name(&name).send().await.unwrap();
    let queue_url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    eb.put_rule()
        .name("all-linkcrm")
        .event_bus_name(&name)
        .event_pattern(r#"{"source":["linkcrm"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("all-linkcrm")
        .event_bus_name(&name)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let bus = Arc::new(EventBridgeBus::for_endpoint(&endpoint, &name));
    World { store, bus, sqs, queue_url, endpoint }
}

/// Every message now in the queue, as (EventBridge detail-type, envelope), deleting each.
async fn drain_queue(w: &World) -> Vec<(String, DomainEvent)> {
    let mut out = Vec::new();
    loop {
        let res = w.sqs.receive_message().queue_url(&w.queue_url).max_number_of_messages(10).send().await.unwrap();
        let msgs = res.messages();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(body["source"], "linkcrm");
            let detail_type = body["detail-type"].as_str().unwrap().to_owned();
            out.push((detail_type, serde_json::from_value(body["detail"].clone()).unwrap()));
            w.sqs
                .delete_message()
                .queue_url(&w.queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn counts(got: &[(String, DomainEvent)]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for (_, e) in got {
        *c.entry(e.id.clone()).or_default() += 1;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_events_reach_eventbridge_once_and_a_republish_keeps_its_id() {
    let w = world().await;
    // Pages of 2: every shard takes several query-publish-acknowledge rounds.
    let events = commit_events(w.store.as_ref(), 23).await;
    let relay = Relay::new(w.store.clone(), w.bus.clone()).with_page_size(2);
    assert_eq!(relay.drain_once().await.unwrap(), 23);
    assert_eq!(outbox_len(w.store.as_ref()).await, 0);

    let got = drain_queue(&w).await;
    assert_eq!(got.len(), 23);
    let c = counts(&got);
    for e in &events {
        assert_eq!(c.get(&e.id), Some(&1), "{} arrived {:?} times", e.id, c.get(&e.id));
    }
    for (detail_type, e) in &got {
        assert_eq!(*detail_type, e.r#type);
        assert!(events.contains(e), "envelope changed on the way: {e:?}");
    }

    // The crash window: published, not acknowledged. The next drain publishes the same events.
    let more = commit_events(w.store.as_ref(), 4).await;
    let full_pages = Relay::new(w.store.clone(), w.bus.clone());
    assert_eq!(full_pages.publish_only().await.unwrap(), 4);
    assert_eq!(outbox_len(w.store.as_ref()).await, 4);
    assert_eq!(relay.drain_once().await.unwrap(), 4);
    assert_eq!(outbox_len(w.store.as_ref()).await, 0);
    let again = drain_queue(&w).await;
    assert_eq!(again.len(), 8);
    let c = counts(&again);
    for e in &more {
        assert_eq!(c.get(&e.id), Some(&2));
        let copies: Vec<&DomainEvent> = again.iter().map(|(_, x)| x).filter(|x| x.id == e.id).collect();
        assert!(copies.iter().all(|x| *x == e), "a republished event differs from the original");
    }
    let deduper = Deduper::new(w.store.clone(), "moto-test");
    let mut acted = 0;
    for (_, e) in &again {
        if deduper.first_time(&e.id).await.unwrap() {
            acted += 1;
        }
    }
    assert_eq!(acted, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publish_leaves_the_outbox_for_the_next_attempt() {
    let w = world().await;
    let events = commit_events(w.store.as_ref(), 23).await;
    let missing = Arc::new(EventBridgeBus::for_endpoint(&w.endpoint, "no-such-bus"));
    let failing = Relay::new(w.store.clone(), missing);
    assert!(matches!(failing.drain_once().await, Err(RelayError::Bus(_))));
    assert_eq!(outbox_len(w.store.as_ref()).await, 23);
    assert!(drain_queue(&w).await.is_empty());

    // The stream path on the real table: one batch of 23 outbox items, as the Lambda hands them
    // over, read back from DynamoDB; the bus splits it into PutEvents calls of at most 10.
    let mut items = Vec::new();
    for pk in outbox_partitions() {
        items.extend(w.store.query(Query::partition(pk)).await.unwrap().items);
    }
    assert!(items.iter().all(|i| event_of(i).is_ok()));
    Relay::new(w.store.clone(), w.bus.clone()).handle_stream_items(items).await.unwrap();
    assert_eq!(outbox_len(w.store.as_ref()).await, 0);
    let got = drain_queue(&w).await;
    let mut ids: Vec<String> = got.into_iter().map(|(_, e)| e.id).collect();
    ids.sort();
    let mut expected: Vec<String> = events.into_iter().map(|e| e.id).collect();
    expected.sort();
    assert_eq!(ids, expected);
}
