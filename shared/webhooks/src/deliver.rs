//! Attempts: one `webhook_deliver` job per attempt. Each attempt's outcome, the delivery's new
//! state and what follows (the next attempt's job, or the dead letter) commit in one transaction,
//! conditional on the delivery still waiting for this very attempt, so a redelivered job (a
//! worker killed mid-attempt) sends again with the same `webhook-id` but records once.

use crate::client::{Message, Outcome, Sender};
use crate::records::{self, Attempt, DeadLetter, Delivery, DeliveryStatus, Endpoint};
use crate::schedule::{self, Schedule};
use crate::{keys, outbox_event_disabled};
use chrono::{DateTime, Utc};
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::App;
use linkcrm_domain::jobs::{JobKind, WEBHOOK_QUEUE};
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job, StoreQueue, MAX_DELAY};
use linkcrm_storage::{Condition, StoreError, TxOp, Update};
use serde_json::{json, Value};
use std::time::Duration;

/// An endpoint failing every attempt this long is disabled.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(5);

/// The job of attempt `attempt` of `d`, visible after `delay` (held in the store when longer than
/// SQS's 15 minutes; the relay forwards it when due).
pub fn attempt_job_op(d: &Delivery, attempt: u32, trigger: &str, delay: Duration) -> ApiResult<TxOp> {
    let job = Job {
        id: format!("{}#{attempt}", d.id),
        kind: JobKind::WebhookDeliver.as_str().to_owned(),
        payload: json!({ "owner": d.owner, "endpointId": d.endpoint_id, "eventId": d.event_id,
                          "attempt": attempt, "trigger": trigger }),
    };
    let op = if delay > MAX_DELAY {
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        StoreQueue::enqueue_at_op(WEBHOOK_QUEUE, &job, at)
    } else {
        StoreQueue::enqueue_op(WEBHOOK_QUEUE, &job, delay)
    };
    op.map_err(|e| {
        tracing::error!(error = %e, "webhook job rejected by the queue");
        ApiError::internal()
    })
}

/// The secrets that sign now: the current one, and the previous one during its 24 hours.
pub fn secrets(app: &App, e: &Endpoint) -> Vec<String> {
    let mut out: Vec<String> = app.open_sealed(&e.secret).into_iter().collect();
    if let (Some(prev), Some(until)) = (&e.previous_secret, &e.previous_secret_expires_at) {
        if *until > time::now_string() {
            out.extend(app.open_sealed(prev));
        }
    }
    out
}

/// Sends `body` to `e` once, signed (test deliveries and attempts share it).
pub async fn post(
    app: &App,
    sender: &Sender,
    e: &Endpoint,
    msg_id: &str,
    event_type: &str,
    attempt: u32,
    body: &str,
) -> Outcome {
    let secrets = secrets(app, e);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sender.send(&Message { url: &e.url, msg_id, event_type, attempt, body, secrets: &refs }).await
}

/// Runs a `webhook_deliver` job.
pub async fn handle(app: &App, sender: &Sender, job: &Job) -> Result<(), HandlerError> {
    let p = &job.payload;
    let (Some(owner), Some(endpoint), Some(event), Some(attempt)) = (
        p.get("owner").and_then(Value::as_str),
        p.get("endpointId").and_then(Value::as_str),
        p.get("eventId").and_then(Value::as_str),
        p.get("attempt").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
    ) else {
        return Err(HandlerError::Fail("webhook_deliver job without owner, endpointId, eventId or attempt".into()));
    };
    let trigger = p.get("trigger").and_then(Value::as_str).unwrap_or("scheduled");
    // A slow endpoint may hold only a few worker slots: its further attempts wait in the queue.
    let Some(slot) = lanes::take(endpoint) else { return defer(app, job).await };
    let started = std::time::Instant::now();
    let done = attempt_once(app, sender, owner, endpoint, event, attempt, trigger).await;
    slot.finish(started.elapsed());
    done.map_err(|e| {
        tracing::warn!(job = %job.id, error = ?e, "webhook attempt could not be recorded; retrying");
        HandlerError::Retry { after: Duration::from_secs(5) }
    })
}

/// Puts an attempt back on the queue for later, as a new job (so the deferral does not count as a
/// failed receive): after 250 ms, doubling with each deferral, at most 30 s.
async fn defer(app: &App, job: &Job) -> Result<(), HandlerError> {
    let n = job.payload.get("deferred").and_then(Value::as_u64).unwrap_or(0);
    let mut payload = job.payload.clone();
    payload["deferred"] = json!(n + 1);
    let base = job.id.split('~').next().unwrap_or(&job.id);
    let again = Job { id: format!("{base}~{}", n + 1), kind: job.kind.clone(), payload };
    let delay = Duration::from_millis(250u64.saturating_mul(1 << n.min(7))).min(Duration::from_secs(30));
    let op = StoreQueue::enqueue_op(WEBHOOK_QUEUE, &again, delay).map_err(|e| HandlerError::Fail(e.to_string()))?;
    match app.store.transact(vec![op]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "could not defer a webhook attempt");
            Err(HandlerError::Retry { after: Duration::from_secs(1) })
        }
    }
}

/// Worker slots per endpoint, in this process. An endpoint whose recent attempts took over a
/// second (a slow or hanging receiver) may have at most [`SLOW_SLOTS`] attempts in flight; a
/// fast one is not limited. So ten receivers that take 2 s each cannot fill the worker's slots
/// while fast ones wait (the benchmark in BENCHMARKS.md shows both).
mod lanes {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    pub const SLOW_SLOTS: usize = 2;
    const SLOW: f64 = 1000.0;

    #[derive(Default)]
    struct Lane {
        in_flight: usize,
        /// Exponentially weighted mean attempt duration, ms.
        ewma_ms: f64,
    }

    fn lanes() -> &'static Mutex<HashMap<String, Lane>> {
        static LANES: OnceLock<Mutex<HashMap<String, Lane>>> = OnceLock::new();
        LANES.get_or_init(|| Mutex::new(HashMap::new()))
    }

    pub struct Slot {
        endpoint: String,
    }

    pub fn take(endpoint: &str) -> Option<Slot> {
        let mut all = lanes().lock().unwrap_or_else(|e| e.into_inner());
        if all.len() > 100_000 {
            all.retain(|_, l| l.in_flight > 0);
        }
        let lane = all.entry(endpoint.to_owned()).or_default();
        if lane.ewma_ms > SLOW && lane.in_flight >= SLOW_SLOTS {
            return None;
        }
        lane.in_flight += 1;
        Some(Slot { endpoint: endpoint.to_owned() })
    }

    impl Slot {
        pub fn finish(self, took: Duration) {
            let mut all = lanes().lock().unwrap_or_else(|e| e.into_inner());
            if let Some(lane) = all.get_mut(&self.endpoint) {
                let ms = took.as_secs_f64() * 1000.0;
                lane.ewma_ms = if lane.ewma_ms == 0.0 { ms } else { lane.ewma_ms * 0.7 + ms * 0.3 };
            }
        }
    }

    impl Drop for Slot {
        fn drop(&mut self) {
            let mut all = lanes().lock().unwrap_or_else(|e| e.into_inner());
            if let Some(lane) = all.get_mut(&self.endpoint) {
                lane.in_flight = lane.in_flight.saturating_sub(1);
            }
        }
    }
}

async fn attempt_once(
    app: &App,
    sender: &Sender,
    owner: &str,
    endpoint: &str,
    event: &str,
    attempt: u32,
    trigger: &str,
) -> ApiResult<()> {
    let Some(item) = app.store.get(&keys::delivery(endpoint, event)).await? else { return Ok(()) };
    let d = Delivery::from_item(&item)?;
    if d.status != DeliveryStatus::Pending || d.attempts + 1 != attempt {
        return Ok(()); // this attempt was made, or overtaken
    }
    let e = match app.store.get(&keys::endpoint(owner, endpoint)).await? {
        Some(item) => Some(Endpoint::from_item(&item)?),
        None => None,
    };
    let Some(e) = e.filter(|e| e.active) else {
        let why = "the endpoint was deleted or disabled";
        let u = Update::new()
            .set("status", json!(DeliveryStatus::Cancelled))
            .set("lastError", why)
            .set("nextAttemptAt", Value::Null)
            .set("updatedAt", time::now_string());
        return match app.store.update(&d.key(), u, Some(waiting_for(attempt))).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
    };
    let outcome = post(app, sender, &e, &d.event_id, &d.event_type, attempt, &d.body).await;
    record(app, &e, &d, attempt, trigger, &outcome, &Schedule::from_env(), Utc::now()).await
}

/// The condition that the delivery still waits for attempt `attempt`.
fn waiting_for(attempt: u32) -> Condition {
    Condition::And(vec![
        Condition::Equals("status".into(), json!(DeliveryStatus::Pending)),
        Condition::Equals("attempts".into(), json!(attempt - 1)),
    ])
}

/// Commits an attempt's outcome and what follows it.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    app: &App,
    e: &Endpoint,
    d: &Delivery,
    attempt: u32,
    trigger: &str,
    outcome: &Outcome,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let at = time::format(now);
    let next_delay = if outcome.succeeded() || outcome.gone() || d.manual || trigger == "manual" {
        None
    } else {
        schedule.delay_before(attempt + 1, schedule::draw(), outcome.retry_after)
    };
    let next_at = next_delay.map(|delay| time::format(now + chrono::Duration::from_std(delay).unwrap_or_default()));
    let status = match (outcome.succeeded(), next_delay) {
        (true, _) => DeliveryStatus::Succeeded,
        (false, Some(_)) => DeliveryStatus::Pending,
        (false, None) => DeliveryStatus::Dead,
    };
    let a = Attempt {
        id: linkcrm_domain::new_id(linkcrm_domain::IdKind::WebhookAttempt),
        message_id: d.id.clone(),
        event_id: d.event_id.clone(),
        event_type: d.event_type.clone(),
        attempt,
        trigger: trigger.to_owned(),
        status: if outcome.succeeded() { "succeeded" } else { "failed" }.to_owned(),
        url: e.url.clone(),
        response_status_code: outcome.status,
        response_body: outcome.body.clone(),
        duration_ms: outcome.duration.as_millis() as u64,
        error: outcome.error.clone(),
        next_attempt_at: next_at.clone(),
        attempted_at: at.clone(),
    };
    let error = outcome.error.clone().or_else(|| outcome.status.map(|s| format!("the endpoint answered {s}")));
    let mut u = Update::new()
        .set("status", json!(status))
        .set("attempts", attempt)
        .set("nextAttemptAt", json!(next_at))
        .set("lastStatusCode", json!(outcome.status))
        .set("lastError", json!(if outcome.succeeded() { None } else { error.clone() }))
        .set("updatedAt", at.clone());
    if trigger == "manual" {
        u = u.set("manual", false);
    }
    let mut ops =
        vec![TxOp::update_if(d.key(), u, waiting_for(attempt)), TxOp::put(a.item(&e.id, records::retention_ttl()))];
    if let Some(delay) = next_delay {
        ops.push(attempt_job_op(d, attempt + 1, "scheduled", delay)?);
    }
    if status == DeliveryStatus::Dead {
        let dl = DeadLetter {
            id: d.id.clone(),
            webhook_id: e.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            workspace_id: d.workspace_id.clone(),
            attempts: attempt,
            last_status_code: outcome.status,
            last_error: error,
            failed_at: at.clone(),
            payload: serde_json::from_str(&d.body).unwrap_or(Value::Null),
            replayed_at: None,
        };
        ops.push(TxOp::put(dl.item(&e.owner, records::retention_ttl())));
    }
    if status == DeliveryStatus::Succeeded && trigger == "manual" {
        ops.push(TxOp::delete(keys::dead_letter(&e.owner, &d.id)));
    }
    let disable = if outcome.gone() {
        Some("gone")
    } else if !outcome.succeeded()
        && e.failing_since.as_deref().is_some_and(|since| time::parse(since).is_some_and(|t| now - t >= DISABLE_AFTER))
    {
        Some("failing")
    } else {
        None
    };
    if let Some(reason) = disable {
        ops.push(TxOp::update_if(
            e.key(),
            Update::new()
                .set("active", false)
                .set("disabledReason", reason)
                .set("disabledAt", at.clone())
                .set("updatedAt", at.clone())
                .add("version", 1),
            Condition::Equals("active".into(), json!(true)),
        ));
        let mut view = e.view();
        view.active = false;
        view.disabled_reason = Some(reason.to_owned());
        view.disabled_at = Some(at.clone());
        ops.push(outbox_event_disabled(e, &view, reason));
    }
    match app.store.transact(ops).await {
        Ok(()) => {}
        // Recorded already by another delivery of this job (or the endpoint was disabled meanwhile).
        Err(StoreError::ConditionFailed { .. }) => return Ok(()),
        Err(err) => return Err(err.into()),
    }
    health(app, e, outcome.succeeded(), &at).await;
    Ok(())
}

/// Keeps the endpoint's `failingSince` (cleared by any success, set by the first failure after
/// one). Written only when it changes, so a busy endpoint's item is not a hot spot.
async fn health(app: &App, e: &Endpoint, ok: bool, at: &str) {
    let res = match (ok, &e.failing_since) {
        (true, Some(_)) => {
            app.store
                .update(
                    &e.key(),
                    Update::new().remove("failingSince"),
                    Some(Condition::AttrPresent("failingSince".into())),
                )
                .await
        }
        (false, None) => {
            app.store
                .update(
                    &e.key(),
                    Update::new().set("failingSince", at),
                    // Stored endpoints carry `failingSince: null` when not failing.
                    Some(Condition::And(vec![
                        Condition::Exists,
                        Condition::Or(vec![
                            Condition::AttrAbsent("failingSince".into()),
                            Condition::Equals("failingSince".into(), Value::Null),
                        ]),
                    ])),
                )
                .await
        }
        _ => return,
    };
    if let Err(err) = res {
        if !err.is_condition_failed() {
            tracing::warn!(endpoint = %e.id, error = %err, "could not update the endpoint's failing state");
        }
    }
}

/// Queues a manual resend of `d` (replay, recover): one attempt, not retried on its own.
/// Whether it was queued (a delivery pending or succeeded meanwhile is left alone).
pub async fn resend(app: &App, d: &Delivery) -> ApiResult<bool> {
    let attempt = d.attempts + 1;
    let now = time::now_string();
    let ops = vec![
        TxOp::update_if(
            d.key(),
            Update::new()
                .set("status", json!(DeliveryStatus::Pending))
                .set("manual", true)
                .set("nextAttemptAt", now.clone())
                .set("updatedAt", now),
            Condition::And(vec![
                Condition::Equals("attempts".into(), json!(d.attempts)),
                Condition::Or(vec![
                    Condition::Equals("status".into(), json!(DeliveryStatus::Dead)),
                    Condition::Equals("status".into(), json!(DeliveryStatus::Cancelled)),
                ]),
            ]),
        ),
        attempt_job_op(d, attempt, "manual", Duration::ZERO)?,
    ];
    match app.store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Runs a `webhook_recover` job: resends the endpoint's deliveries of a window that never
/// succeeded (dead or cancelled), up to 10,000, a page of 100 at a time.
pub async fn recover(app: &App, job: &Job) -> Result<(), HandlerError> {
    let p = &job.payload;
    let (Some(endpoint), Some(since), Some(until)) = (
        p.get("endpointId").and_then(Value::as_str),
        p.get("since").and_then(Value::as_str).and_then(time::parse),
        p.get("until").and_then(Value::as_str).and_then(time::parse),
    ) else {
        return Err(HandlerError::Fail("webhook_recover job without endpointId, since or until".into()));
    };
    let lo = linkcrm_domain::id::bound_at(linkcrm_domain::IdKind::Event, since.timestamp_millis());
    let hi = linkcrm_domain::id::bound_at(linkcrm_domain::IdKind::Event, until.timestamp_millis() + 1);
    let mut cursor = None;
    let mut sent = 0usize;
    let retry = |e: &dyn std::fmt::Display| {
        tracing::warn!(job = %job.id, error = %e, "recover stopped; retrying");
        HandlerError::Retry { after: Duration::from_secs(5) }
    };
    loop {
        let q = linkcrm_storage::Query::partition(keys::deliveries_pk(endpoint))
            .sk(linkcrm_storage::SortKey::Between(lo.clone(), hi.clone()))
            .filter(Condition::Or(vec![
                Condition::Equals("status".into(), json!(DeliveryStatus::Dead)),
                Condition::Equals("status".into(), json!(DeliveryStatus::Cancelled)),
            ]))
            .limit(100)
            .after(cursor);
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        for item in &page.items {
            let d = Delivery::from_item(item).map_err(|e| retry(&format!("{e:?}")))?;
            // Re-running the job after a crash finds the ones done pending, and skips them.
            if resend(app, &d).await.map_err(|e| retry(&format!("{e:?}")))? {
                sent += 1;
            }
            if sent >= 10_000 {
                return Ok(());
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}
