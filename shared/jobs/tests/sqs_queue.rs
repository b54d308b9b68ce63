//! The conformance suite on the SQS adapter, against moto's server on loopback.

use linkcrm_jobs::conformance::StaleAck;
use linkcrm_jobs::{JobQueue, SqsQueue};
use linkcrm_testkit::{unique_table_name, Moto};
use std::sync::Arc;
use std::time::Duration;

/// A queue pair of its own per case (names of about 40 characters, within SQS's 80).
async fn fresh(max_receives: u32) -> Arc<dyn JobQueue> {
    let moto = Moto::shared().expect("moto server");
    Arc::new(SqsQueue::for_endpoint(&moto.endpoint, &unique_table_name("jobs"), max_receives).await.expect("queues"))
}

// moto deletes a message on a stale receipt handle (see `linkcrm_jobs::sqs`).
linkcrm_jobs::queue_conformance_suite!(fresh, StaleAck::AcceptedAndDeletes);

#[tokio::test]
async fn create_is_idempotent_and_updates_the_redrive_limit() {
    let moto = Moto::shared().expect("moto server");
    let name = unique_table_name("idem");
    let a = SqsQueue::for_endpoint(&moto.endpoint, &name, 3).await.unwrap();
    let b = SqsQueue::for_endpoint(&moto.endpoint, &name, 5).await.unwrap();
    assert_eq!((a.url(), a.dead_letter_url()), (b.url(), b.dead_letter_url()));
    assert!(a.dead_letter_url().ends_with(&format!("{name}-dlq")));
}

#[tokio::test]
async fn a_message_that_is_not_a_job_does_not_block_its_batch() {
    let moto = Moto::shared().expect("moto server");
    let q = SqsQueue::for_endpoint(&moto.endpoint, &unique_table_name("poison"), 3).await.unwrap();
    q.client().send_message().queue_url(q.url()).message_body("{not a job").send().await.unwrap();
    let job = linkcrm_jobs::Job::new("send", serde_json::json!({}));
    q.enqueue(&job, Duration::ZERO).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(q.receive(10, Duration::from_secs(30), Duration::from_secs(1)).await.unwrap());
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got.into_iter().map(|d| d.job).collect::<Vec<_>>(), vec![job]);
}
