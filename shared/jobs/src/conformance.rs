//! The conformance suite: the behaviour every `JobQueue` adapter must show, written once.
//!
//! Each case gets a fresh queue (made with [`MAX_RECEIVES`]) and runs in real time with short
//! timeouts: SQS counts in whole seconds, so the cases use 1-2 s visibility timeouts and delays
//! and allow a little slack on both sides. Adapters' test files instantiate every case with
//! [`queue_conformance_suite!`](crate::queue_conformance_suite):
//!
//! ```ignore
//! async fn fresh(max_receives: u32) -> Arc<dyn JobQueue> { ... }
//! linkcrm_jobs::queue_conformance_suite!(fresh, linkcrm_jobs::conformance::StaleAck::Refused);
//! ```

use crate::{run_worker, Delivery, HandlerError, Job, JobError, JobQueue, WorkerOptions, MAX_DELAY};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deliveries after which the suite expects a job in the dead-letter queue.
pub const MAX_RECEIVES: u32 = 3;
const SEC: Duration = Duration::from_secs(1);
/// Timing slack: SQS rounds to whole seconds and moto checks visibility with `>`.
const SLACK: Duration = Duration::from_millis(250);

/// What `ack` does with a receipt from before a redelivery: the one place adapters may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleAck {
    /// Refused with `JobError::StaleReceipt`; the newer delivery keeps its job.
    Refused,
    /// Accepted, and the job is removed from under the newer delivery (moto's SQS; AWS SQS
    /// "succeeds, but the message might not be deleted").
    AcceptedAndDeletes,
}

/// Generates one `#[tokio::test]` per case. `$factory` is an async fn taking the dead-letter limit
/// and returning a fresh `Arc<dyn JobQueue>`; `$stale` is the adapter's [`StaleAck`].
#[macro_export]
macro_rules! queue_conformance_suite {
    ($factory:path, $stale:expr) => {
        $crate::queue_conformance_suite!(@cases $factory, $stale;
            enqueue_receive_ack, invisible_until_timeout_then_redelivered, release_delays_the_retry,
            delayed_enqueue, dead_letter_after_max_receives, concurrent_receivers_never_share_a_delivery,
            receive_respects_max, long_poll_returns_when_a_job_arrives, refuses_bad_requests,
            worker_settles_each_job_on_its_own, worker_does_not_hold_jobs_behind_a_slow_one,
            worker_never_runs_a_job_alongside_itself);
    };
    (@cases $factory:path, $stale:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let queue: std::sync::Arc<dyn $crate::JobQueue> = $factory($crate::conformance::MAX_RECEIVES).await;
                $crate::conformance::$case(queue, $stale).await;
            }
        )*
    };
}

fn job(kind: &str) -> Job {
    Job::new(kind, json!({"draft": "dr_1", "attempt": {"n": 1, "tags": ["a", true, null]}}))
}

async fn recv(q: &dyn JobQueue, max: usize, visibility: Duration, wait: Duration) -> Vec<Delivery> {
    q.receive(max, visibility, wait).await.expect("receive")
}

/// Receives until one job arrives or `within` passes; returns it with the time it took.
async fn next(q: &dyn JobQueue, visibility: Duration, within: Duration) -> Option<(Delivery, Duration)> {
    let start = Instant::now();
    while start.elapsed() < within {
        let wait = within.saturating_sub(start.elapsed()).min(2 * SEC);
        if let Some(d) = recv(q, 1, visibility, wait).await.pop() {
            return Some((d, start.elapsed()));
        }
    }
    None
}

pub async fn enqueue_receive_ack(q: Arc<dyn JobQueue>, _: StaleAck) {
    let j = job("send");
    q.enqueue(&j, Duration::ZERO).await.unwrap();
    let got = recv(&*q, 10, SEC, 2 * SEC).await;
    assert_eq!(got.len(), 1, "one job enqueued, one received: {got:?}");
    assert_eq!(got[0].job, j, "the job comes back as it was sent, payload included");
    assert_eq!(got[0].receive_count, 1);
    assert!(recv(&*q, 10, SEC, Duration::ZERO).await.is_empty(), "a received job is hidden");
    q.ack(&got[0].receipt).await.unwrap();
    tokio::time::sleep(SEC + SLACK).await;
    assert!(recv(&*q, 10, SEC, SEC).await.is_empty(), "an acked job never comes back");
}

pub async fn invisible_until_timeout_then_redelivered(q: Arc<dyn JobQueue>, stale: StaleAck) {
    let j = job("send");
    q.enqueue(&j, Duration::ZERO).await.unwrap();
    let (first, _) = next(&*q, SEC, 3 * SEC).await.expect("first delivery");
    let received_at = Instant::now();
    assert!(recv(&*q, 10, SEC, Duration::ZERO).await.is_empty(), "hidden right after the receive");
    let (second, _) = next(&*q, 2 * SEC, 5 * SEC).await.expect("redelivered after the visibility timeout");
    assert!(received_at.elapsed() >= SEC - SLACK, "not before the timeout: {:?}", received_at.elapsed());
    assert_eq!(second.job, j);
    assert_eq!(second.receive_count, 2, "the redelivery is counted");
    assert_ne!(second.receipt, first.receipt, "each delivery has its own receipt");

    match stale {
        StaleAck::Refused => {
            assert_eq!(q.ack(&first.receipt).await, Err(JobError::StaleReceipt));
            assert_eq!(q.release(&first.receipt, Duration::ZERO).await, Err(JobError::StaleReceipt));
            assert!(recv(&*q, 10, SEC, Duration::ZERO).await.is_empty(), "the stale release changed nothing");
            q.ack(&second.receipt).await.expect("the current receipt acks");
            assert_eq!(q.ack(&second.receipt).await, Err(JobError::StaleReceipt), "an ack is not repeated");
        }
        StaleAck::AcceptedAndDeletes => {
            q.ack(&first.receipt).await.expect("a stale ack is accepted");
            q.ack(&second.receipt).await.expect("acking the deleted job again is accepted too");
        }
    }
    tokio::time::sleep(2 * SEC + SLACK).await;
    assert!(recv(&*q, 10, SEC, SEC).await.is_empty(), "gone once acked");
}

pub async fn release_delays_the_retry(q: Arc<dyn JobQueue>, _: StaleAck) {
    q.enqueue(&job("discover"), Duration::ZERO).await.unwrap();
    let (d, _) = next(&*q, 30 * SEC, 3 * SEC).await.expect("delivered");
    q.release(&d.receipt, 2 * SEC).await.unwrap();
    let released_at = Instant::now();
    assert!(recv(&*q, 10, SEC, SEC).await.is_empty(), "not visible before the release delay");
    let (again, _) = next(&*q, SEC, 5 * SEC).await.expect("visible after the release delay");
    assert!(released_at.elapsed() >= 2 * SEC - SLACK, "came back after {:?}", released_at.elapsed());
    assert_eq!((again.job.id.as_str(), again.receive_count), (d.job.id.as_str(), 2));
    q.ack(&again.receipt).await.unwrap();
}

pub async fn delayed_enqueue(q: Arc<dyn JobQueue>, _: StaleAck) {
    let j = job("send");
    let sent_at = Instant::now();
    q.enqueue(&j, 2 * SEC).await.unwrap();
    assert!(recv(&*q, 10, SEC, SEC).await.is_empty(), "not visible before its delay");
    let (d, _) = next(&*q, SEC, 5 * SEC).await.expect("visible after its delay");
    assert!(sent_at.elapsed() >= 2 * SEC - SLACK, "arrived after {:?}", sent_at.elapsed());
    assert_eq!((d.job, d.receive_count), (j, 1), "a delay is not a receive");
    q.ack(&d.receipt).await.unwrap();
}

pub async fn dead_letter_after_max_receives(q: Arc<dyn JobQueue>, _: StaleAck) {
    let j = job("send");
    q.enqueue(&j, Duration::ZERO).await.unwrap();
    assert!(q.dead_letters(10).await.unwrap().is_empty());
    for n in 1..=MAX_RECEIVES {
        let (d, _) = next(&*q, SEC, 5 * SEC).await.unwrap_or_else(|| panic!("delivery {n}"));
        assert_eq!(d.receive_count, n);
        // Released failures and a timeout both count: the last delivery just times out.
        if n < MAX_RECEIVES {
            q.release(&d.receipt, Duration::ZERO).await.unwrap();
        }
    }
    assert!(next(&*q, SEC, 3 * SEC).await.is_none(), "no delivery beyond the limit");
    assert_eq!(q.dead_letters(10).await.unwrap(), vec![j.clone()], "the job waits in the dead-letter queue");
    assert_eq!(q.dead_letters(10).await.unwrap(), vec![j], "reading dead letters keeps them");
    assert!(recv(&*q, 10, SEC, Duration::ZERO).await.is_empty());
}

pub async fn concurrent_receivers_never_share_a_delivery(q: Arc<dyn JobQueue>, _: StaleAck) {
    let jobs: Vec<Job> = (0..20).map(|_| job("send")).collect();
    for j in &jobs {
        q.enqueue(j, Duration::ZERO).await.unwrap();
    }
    // Job id -> times handled. A job is acked only after its handling is recorded, and the
    // visibility outlasts the test, so a second handling can only be a shared delivery.
    let handled: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let deadline = Instant::now() + 30 * SEC;
    let loops = (0..4).map(|_| {
        let (q, handled) = (q.clone(), handled.clone());
        tokio::spawn(async move {
            while handled.lock().unwrap().len() < 20 && Instant::now() < deadline {
                for d in recv(&*q, 5, 60 * SEC, SEC).await {
                    *handled.lock().unwrap().entry(d.job.id.clone()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    q.ack(&d.receipt).await.unwrap();
                }
            }
        })
    });
    for l in futures::future::join_all(loops).await {
        l.unwrap();
    }
    let handled = handled.lock().unwrap();
    for j in &jobs {
        assert_eq!(handled.get(&j.id), Some(&1), "job {} handled exactly once: {handled:?}", j.id);
    }
    assert_eq!(handled.len(), 20);
}

pub async fn receive_respects_max(q: Arc<dyn JobQueue>, _: StaleAck) {
    let jobs: Vec<Job> = (0..5).map(|_| job("discover")).collect();
    for j in &jobs {
        q.enqueue(j, Duration::ZERO).await.unwrap();
    }
    let mut seen = Vec::new();
    let start = Instant::now();
    while seen.len() < 5 && start.elapsed() < 10 * SEC {
        let got = recv(&*q, 2, 60 * SEC, SEC).await;
        assert!(got.len() <= 2, "receive(max = 2) returned {}", got.len());
        seen.extend(got.into_iter().map(|d| d.job.id));
    }
    seen.sort();
    let mut want: Vec<String> = jobs.into_iter().map(|j| j.id).collect();
    want.sort();
    assert_eq!(seen, want, "every job once, in batches of at most two");
}

pub async fn long_poll_returns_when_a_job_arrives(q: Arc<dyn JobQueue>, _: StaleAck) {
    let start = Instant::now();
    assert!(recv(&*q, 1, SEC, SEC).await.is_empty());
    assert!(start.elapsed() >= SEC - SLACK, "an empty long poll waits: {:?}", start.elapsed());

    let poller = {
        let q = q.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            (recv(&*q, 1, 5 * SEC, 10 * SEC).await, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let j = job("send");
    q.enqueue(&j, Duration::ZERO).await.unwrap();
    let (got, took) = poller.await.unwrap();
    assert_eq!(got.into_iter().map(|d| d.job).collect::<Vec<_>>(), vec![j]);
    assert!(took < 3 * SEC, "the poll returned {took:?} after it started, not at its 10 s end");
}

pub async fn refuses_bad_requests(q: Arc<dyn JobQueue>, _: StaleAck) {
    let j = job("send");
    assert_eq!(q.enqueue(&j, MAX_DELAY + Duration::from_millis(1)).await, Err(JobError::DelayTooLong));
    assert_eq!(q.enqueue(&j, Duration::from_secs(3600)).await, Err(JobError::DelayTooLong));
    q.enqueue(&job("send"), MAX_DELAY).await.expect("exactly 15 minutes is allowed");
    assert!(recv(&*q, 10, SEC, Duration::ZERO).await.is_empty(), "neither refused nor delayed jobs are visible");
    for max in [0, 11] {
        let r = q.receive(max, SEC, Duration::ZERO).await;
        assert!(matches!(r, Err(JobError::Invalid(_))), "receive(max = {max}): {r:?}");
    }
    let nameless = Job { id: String::new(), ..job("send") };
    assert!(matches!(q.enqueue(&nameless, Duration::ZERO).await, Err(JobError::Invalid(_))));
}

pub async fn worker_settles_each_job_on_its_own(q: Arc<dyn JobQueue>, _: StaleAck) {
    let (ok, retry, fail) = (job("ok"), job("retry"), job("fail"));
    for j in [&ok, &retry, &fail] {
        q.enqueue(j, Duration::ZERO).await.unwrap();
    }
    // kind -> delivery times.
    let calls: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let handler = {
        let calls = calls.clone();
        move |d: Delivery| {
            calls.lock().unwrap().entry(d.job.kind.clone()).or_default().push(Instant::now());
            async move {
                match (d.job.kind.as_str(), d.receive_count) {
                    ("retry", 1) => Err(HandlerError::Retry { after: SEC }),
                    ("fail", _) => Err(HandlerError::Fail("provider said no".into())),
                    _ => Ok(()),
                }
            }
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = WorkerOptions { batch: 10, concurrency: 10, visibility: 2 * SEC, wait: SEC, error_backoff: SEC };
    let worker = tokio::spawn(run_worker(q.clone(), handler, opts, stop_rx));

    let start = Instant::now();
    while q.dead_letters(10).await.unwrap().is_empty() || calls.lock().unwrap().get("retry").map_or(0, Vec::len) < 2 {
        assert!(start.elapsed() < 20 * SEC, "worker did not finish: {:?}", calls.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(3 * SEC, worker).await.expect("the worker stops").unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls["ok"].len(), 1, "acked although its batch-mates failed");
    assert!(calls["retry"][1] - calls["retry"][0] >= SEC - SLACK, "retried after its backoff: {calls:?}");
    assert_eq!(calls["fail"].len(), MAX_RECEIVES as usize, "a failing job is tried max_receives times");
    assert_eq!(q.dead_letters(10).await.unwrap(), vec![fail]);
    // Past every visibility timeout: nothing that was acked comes back.
    assert!(next(&*q, SEC, 3 * SEC).await.is_none(), "the ok and retried jobs were acked");
}

pub async fn worker_does_not_hold_jobs_behind_a_slow_one(q: Arc<dyn JobQueue>, _: StaleAck) {
    q.enqueue(&job("slow"), Duration::ZERO).await.unwrap();
    let done: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let handler = {
        let done = done.clone();
        move |d: Delivery| {
            let done = done.clone();
            async move {
                if d.job.kind == "slow" {
                    tokio::time::sleep(4 * SEC).await;
                }
                done.lock().unwrap().push((d.job.kind.clone(), Instant::now()));
                Ok(())
            }
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = WorkerOptions { batch: 10, concurrency: 4, visibility: 10 * SEC, wait: SEC, error_backoff: SEC };
    let worker = tokio::spawn(run_worker(q.clone(), handler, opts, stop_rx));
    // The slow job is taken; jobs arriving while it runs are run at once, not after it.
    tokio::time::sleep(SEC / 2).await;
    for _ in 0..3 {
        q.enqueue(&job("fast"), Duration::ZERO).await.unwrap();
    }
    let start = Instant::now();
    while done.lock().unwrap().len() < 4 {
        assert!(start.elapsed() < 20 * SEC, "worker did not finish: {:?}", done.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(3 * SEC, worker).await.expect("the worker stops").unwrap();
    let done = done.lock().unwrap().clone();
    let kinds: Vec<&str> = done.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, vec!["fast", "fast", "fast", "slow"], "the fast jobs finished while the slow one ran");
}

pub async fn worker_never_runs_a_job_alongside_itself(q: Arc<dyn JobQueue>, _: StaleAck) {
    q.enqueue(&job("long"), Duration::ZERO).await.unwrap();
    // (running now, most at once, runs started)
    let state: Arc<Mutex<(usize, usize, usize)>> = Arc::default();
    let handler = {
        let state = state.clone();
        move |_: Delivery| {
            let state = state.clone();
            async move {
                {
                    let mut s = state.lock().unwrap();
                    s.0 += 1;
                    s.1 = s.1.max(s.0);
                    s.2 += 1;
                }
                // Outlives its visibility timeout: the queue delivers it again meanwhile.
                tokio::time::sleep(3 * SEC).await;
                state.lock().unwrap().0 -= 1;
                Ok(())
            }
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = WorkerOptions { batch: 10, concurrency: 4, visibility: SEC, wait: SEC / 2, error_backoff: SEC };
    let worker = tokio::spawn(run_worker(q.clone(), handler, opts, stop_rx));
    tokio::time::sleep(5 * SEC).await;
    stop_tx.send(true).unwrap();
    tokio::time::timeout(5 * SEC, worker).await.expect("the worker stops").unwrap();
    let (_, most, runs) = *state.lock().unwrap();
    assert!(runs >= 1);
    assert_eq!(most, 1, "never two runs of one job at once in one worker");
}
