//! The `EventBus` conformance suite on both adapters: the in-process bus (seen through a watcher)
//! and EventBridge on moto (seen through an SQS queue behind a rule on the bus, as the webhook
//! delivery queue will be).

use async_trait::async_trait;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use linkcrm_events::conformance::{self as suite, Received};
use linkcrm_events::{DomainEvent, EventBridgeBus, InProcessBus};
use linkcrm_testkit::{unique_table_name, Moto};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

struct Watcher(Mutex<broadcast::Receiver<DomainEvent>>);

#[async_trait]
impl Received for Watcher {
    async fn take(&self, n: usize, wait: Duration) -> Vec<DomainEvent> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.0.lock().unwrap().try_recv() {
                Ok(e) => out.push(e),
                Err(_) if out.len() >= n => break,
                Err(_) => {}
            }
            if out.len() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // Whatever else is already there.
        while let Ok(e) = self.0.lock().unwrap().try_recv() {
            out.push(e);
        }
        out
    }
}

fn in_process() -> (InProcessBus, Watcher) {
    let bus = InProcessBus::new();
    let watcher = Watcher(Mutex::new(bus.subscribe()));
    (bus, watcher)
}

fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/events", listener.local_addr().unwrap())
}

#[tokio::test]
async fn in_process_bus_conforms() {
    let (bus, seen) = in_process();
    suite::publishes_each_event_whole(&bus, &seen).await;
    suite::large_batches_arrive_whole(&bus, &seen).await;
    suite::an_empty_publish_is_a_no_op(&bus, &seen).await;
    suite::a_republished_event_keeps_its_id(&bus, &seen).await;
    suite::an_unreachable_bus_is_unavailable(&InProcessBus::with_sink(dead_url())).await;
}

struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

#[async_trait]
impl Received for Queue {
    async fn take(&self, n: usize, wait: Duration) -> Vec<DomainEvent> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let res = self.sqs.receive_message().queue_url(&self.url).max_number_of_messages(10).send().await.unwrap();
            let messages = res.messages.unwrap_or_default();
            for m in &messages {
                let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                assert_eq!(body["source"], "linkcrm");
                let event: DomainEvent = serde_json::from_value(body["detail"].clone()).unwrap();
                assert_eq!(body["detail-type"], event.r#type.as_str());
                out.push(event);
                let receipt = m.receipt_handle().unwrap();
                self.sqs.delete_message().queue_url(&self.url).receipt_handle(receipt).send().await.unwrap();
            }
            if (out.len() >= n && messages.is_empty()) || Instant::now() >= deadline {
                return out;
            }
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_bus_conforms() {
    let endpoint = Moto::shared().expect("moto server").endpoint().to_owned();
    let name = unique_table_name("bus");
    let conf = |b: aws_sdk_eventbridge::config::Builder| {
        b.behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&endpoint)
            .build()
    };
    let eb = aws_sdk_eventbridge::Client::from_conf(conf(aws_sdk_eventbridge::Config::builder()));
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&endpoint)
            .build(),
    );
    eb.create_event_bus().name(&name).send().await.unwrap();
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn_attr = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let attrs = sqs.get_queue_attributes().queue_url(&url).attribute_names(arn_attr.clone()).send().await.unwrap();
    let arn = attrs.attributes().unwrap()[&arn_attr].clone();
    eb.put_rule().name("all").event_bus_name(&name).event_pattern(r#"{"source":["linkcrm"]}"#).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
    eb.put_targets().rule("all").event_bus_name(&name).targets(target).send().await.unwrap();

    let bus = EventBridgeBus::for_endpoint(&endpoint, &name);
    let seen = Queue { sqs, url };
    suite::publishes_each_event_whole(&bus, &seen).await;
    suite::large_batches_arrive_whole(&bus, &seen).await;
    suite::an_empty_publish_is_a_no_op(&bus, &seen).await;
    suite::a_republished_event_keeps_its_id(&bus, &seen).await;
    let dead = dead_url();
    let dead = dead.trim_end_matches("/events");
    suite::an_unreachable_bus_is_unavailable(&EventBridgeBus::for_endpoint(dead, &name)).await;
}
