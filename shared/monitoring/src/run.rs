//! One check of one link: the `link_check` job.
//!
//! The job carries the claim its dispatch (or `POST /links/{id}/check`) wrote on the link. The
//! check commits only while the link still holds that claim, in one transaction with the check
//! record, the link's new state and next due time, the month's allowance or the credit charge,
//! the state counters, and (for a state change) the relationship event and its outbox event. So a
//! redelivered job (its worker killed mid-batch) either finds its claim gone and does nothing, or
//! does the check that was never committed: no check lost, none written or billed twice.

use crate::records::{self, LinkCheck, Stored};
use crate::{keys, settings, CHECK_COST_MILLI};
use chrono::{DateTime, Utc};
use linkcrm_core::credits::{self, Pool};
use linkcrm_core::error::DataError;
use linkcrm_core::invocations as inv;
use linkcrm_core::items;
use linkcrm_core::App;
use linkcrm_crm::write::{self, EventError, NewEvent, Ride};
use linkcrm_domain::enums::EventType;
use linkcrm_domain::links::{self, CheckResult, LinkEvent, LinkState};
use linkcrm_domain::{time, IdKind};
use linkcrm_jobs::{HandlerError, Job, JobError, StoreQueue};
use linkcrm_storage::{Condition, Item, StoreError, TxOp, Update};
use serde_json::{json, Value};
use std::time::Duration;

pub const JOB_KIND: &str = "link_check";

/// How a check is paid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Billing {
    /// Within the workspace's free checks this month.
    Free,
    /// 0.05 credits from the workspace's pool.
    Credits,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::Free => "free",
            Billing::Credits => "credits",
        }
    }
    fn parse(s: &str) -> Option<Billing> {
        match s {
            "free" => Some(Billing::Free),
            "credits" => Some(Billing::Credits),
            _ => None,
        }
    }
}

/// The job of one check. `billed` is set for a check on demand (decided, and its allowance or
/// reservation taken, when it was accepted); a scheduled check decides when it runs.
pub fn job_op(
    ws: &str,
    link: &str,
    claim: &str,
    trigger: &str,
    invocation: Option<&str>,
    billed: Option<Billing>,
) -> Result<TxOp, JobError> {
    let job = Job::new(
        JOB_KIND,
        json!({ "workspaceId": ws, "linkId": link, "claim": claim, "trigger": trigger,
                "invocationId": invocation, "billed": billed.map(Billing::as_str) }),
    );
    StoreQueue::enqueue_op(linkcrm_domain::jobs::LINKCHECK_QUEUE, &job, Duration::ZERO)
}

/// The calendar month (UTC) of the free allowance.
pub fn month(now: DateTime<Utc>) -> String {
    now.format("%Y-%m").to_string()
}

/// The month's allowance taken by one check: only while fewer than the free checks were used.
pub fn allowance_op(ws: &str, now: DateTime<Utc>) -> TxOp {
    TxOp::update_if(
        keys::quota(ws, &month(now)),
        Update::new().add("used", 1),
        Condition::Below("used".into(), settings().free_per_month),
    )
}

/// Free checks used this month.
pub async fn used_this_month(app: &App, ws: &str, now: DateTime<Utc>) -> Result<i64, StoreError> {
    Ok(app.store.get(&keys::quota(ws, &month(now))).await?.and_then(|q| items::int_of(&q, "used")).unwrap_or(0))
}

/// Whose credits a workspace spends.
pub async fn pool_of(app: &App, ws: &str) -> Result<Pool, DataError> {
    let item = app
        .store
        .get(&linkcrm_core::keys::workspace(ws))
        .await?
        .ok_or_else(|| items::corrupt("workspace", format!("{ws} is missing under its links")))?;
    let record = linkcrm_core::auth::WorkspaceRecord { item };
    let w = linkcrm_core::workspace::from_record(&record).map_err(|_| items::corrupt("workspace", ws))?;
    Ok(linkcrm_core::workspace::pool_of(&w))
}

/// How a scheduled check would be paid now: `None` when the allowance is used and the pool
/// cannot cover it (checks pause).
async fn decide(app: &App, ws: &str, now: DateTime<Utc>) -> Result<Option<(Billing, Option<Pool>)>, DataError> {
    if used_this_month(app, ws, now).await? < settings().free_per_month {
        return Ok(Some((Billing::Free, None)));
    }
    let pool = pool_of(app, ws).await?;
    Ok(credits::covers(&app.store, &pool, CHECK_COST_MILLI).await?.then_some((Billing::Credits, Some(pool))))
}

fn retry(job: &Job, e: &dyn std::fmt::Display) -> HandlerError {
    tracing::warn!(job = %job.id, error = %e, "link check did not commit; retrying");
    HandlerError::Retry { after: Duration::from_secs(2) }
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn at(s: i64) -> String {
    time::format(DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default())
}

/// The `link_check` job.
pub async fn handle(app: &App, job: &Job) -> Result<(), HandlerError> {
    let p = &job.payload;
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(ws), Some(link_id), Some(claim)) = (s("workspaceId"), s("linkId"), s("claim")) else {
        return Err(HandlerError::Fail("link_check job without workspaceId, linkId or claim".into()));
    };
    let trigger = s("trigger").unwrap_or_else(|| "scheduled".into());
    let invocation = match s("invocationId") {
        Some(id) => app.store.get(&inv::key(&id)).await.map_err(|e| retry(job, &e))?,
        None => None,
    };
    let item = app.store.get(&keys::link(&ws, &link_id)).await.map_err(|e| retry(job, &e))?;
    let stored = match &item {
        Some(item) => Some(records::parse_link(item).map_err(|e| HandlerError::Fail(e.to_string()))?),
        None => None,
    };
    let Some(stored) = stored.filter(|s| s.claim.as_deref() == Some(claim.as_str())) else {
        // Another check took the link since (or this one already committed). A check on demand
        // that never ran ends its invocation here, its allowance or reservation given back.
        return match invocation.as_ref().filter(|i| inv::status(i) == inv::Status::Pending) {
            Some(i) => superseded(app, job, i, &ws, s("billed").as_deref().and_then(Billing::parse)).await,
            None => Ok(()),
        };
    };
    let now = Utc::now();
    let billing = match s("billed").as_deref().and_then(Billing::parse) {
        Some(b) => (b, None),
        None => match decide(app, &ws, now).await.map_err(|e| retry(job, &e))? {
            Some(b) => b,
            None => return pause(app, &stored, &claim, now).await.map_err(|e| retry(job, &e)),
        },
    };
    let outcome = match expected_of(&stored.link) {
        Some(expected) => crate::checker(app).check(&stored.link.link_url, &expected).await,
        None => crate::check::fetch::Outcome {
            result: CheckResult::Unreachable,
            http_status: None,
            final_url: None,
            redirects: Vec::new(),
            link: None,
            detail: Some("no expected target: set expected.targetUrl with PATCH /v1/link-building/links/{id}".into()),
            duration_ms: 0,
        },
    };
    commit(app, job, &stored, &claim, &trigger, billing, invocation.as_ref(), outcome, now).await
}

/// A check on demand that another check overtook before it ran: its invocation fails with
/// `check_superseded` (the link's latest check is the newer one), nothing charged, and the month's
/// allowance it took is given back.
async fn superseded(
    app: &App,
    job: &Job,
    invocation: &Item,
    ws: &str,
    billed: Option<Billing>,
) -> Result<(), HandlerError> {
    let error =
        inv::problem(409, "check_superseded", "A newer check of this link ran instead; read the link for its result.");
    let mut extra = Vec::new();
    if billed == Some(Billing::Free) {
        let at = items::str_of(invocation, "createdAt").and_then(parse_time).unwrap_or_else(Utc::now);
        extra.push(TxOp::update(keys::quota(ws, &month(at)), Update::new().add("used", -1)));
    }
    let outcome = inv::Outcome { status: inv::Status::Failed, used: 0, result: Value::Null, error };
    inv::commit_finish(app, invocation, outcome, extra)
        .await
        .inspect_err(|_| tracing::warn!(job = %job.id, "could not end a superseded check's invocation"))
}

/// What the checker looks for; `None` without a target URL.
pub fn expected_of(l: &records::Link) -> Option<crate::check::analyze::Expected> {
    let target = url::Url::parse(l.expected.target_url.as_deref()?).ok()?;
    Some(crate::check::analyze::Expected {
        target,
        anchor: l.expected.anchor_text.clone(),
        rel: links::rel_tokens(Some(&l.expected.rel)),
    })
}

/// Scheduled checks pause when the allowance is used and the credits ran out: the link shows
/// `checksPausedAt` and is looked at again later; nothing about it changes.
async fn pause(app: &App, stored: &Stored, claim: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut link = stored.link.clone();
    let next = time::format(now + chrono::Duration::from_std(settings().pause_retry).unwrap_or_default());
    link.checks_paused_at.get_or_insert_with(|| time::format(now));
    link.next_check_at = Some(next.clone());
    link.updated_at = time::format(now);
    let item = records::link_item(&link, &stored.agency_id, &stored.track, None, Some(&next));
    match app.store.transact(vec![TxOp::put_if(item, Condition::Equals("claim".into(), json!(claim)))]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn commit(
    app: &App,
    job: &Job,
    stored: &Stored,
    claim: &str,
    trigger: &str,
    (billing, pool): (Billing, Option<Pool>),
    invocation: Option<&Item>,
    outcome: crate::check::fetch::Outcome,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let st = settings();
    let ws = stored.link.workspace_id.clone();
    let step = links::step(&stored.track, outcome.result, secs(now), st.timings());
    let now_s = time::format(now);
    let next_due = match step.confirm_at {
        Some(c) => at(c),
        None => time::format(now + chrono::Duration::from_std(st.interval).unwrap_or_default()),
    };
    let check_id = linkcrm_domain::new_id(IdKind::LinkCheck);
    let mut check = LinkCheck {
        id: check_id.clone(),
        link_id: stored.link.id.clone(),
        checked_at: now_s.clone(),
        result: outcome.result,
        trigger: trigger.to_owned(),
        http_status: outcome.http_status,
        final_url: outcome.final_url.clone(),
        redirects: outcome.redirects.clone(),
        found: outcome.link.as_ref().and_then(|l| serde_json::to_value(l).ok()),
        detail: outcome.detail.clone(),
        duration_ms: outcome.duration_ms,
        state_before: step.from,
        state_after: step.to,
        event_id: None,
        billed: billing.as_str().to_owned(),
    };
    let mut link = stored.link.clone();
    if step.to != step.from {
        link.state_changed_at = Some(now_s.clone());
    }
    link.state = step.to;
    if outcome.result.found() && link.first_seen_at.is_none() {
        link.first_seen_at = Some(now_s.clone());
    }
    link.last_checked_at = Some(now_s.clone());
    link.last_result = Some(outcome.result);
    link.next_check_at = Some(next_due.clone());
    link.checks_paused_at = None;
    link.absent_since = step.track.absent_since.map(at);
    link.unreachable_since = step.track.unreachable_since.map(at);
    link.updated_at = now_s.clone();
    link.version += 1;
    let change = match step.event {
        Some(LinkEvent::Lost) => Some("lost"),
        Some(LinkEvent::Restored) => Some("restored"),
        Some(LinkEvent::Changed) => Some("changed"),
        None if step.to == LinkState::Unknown && step.from != LinkState::Unknown => Some("unknown"),
        None => None,
    };
    // The parts every outcome commits, around the event's id when there is one.
    let build = std::sync::Arc::new({
        let (stored_item, agency, track) = (stored.item.clone(), stored.agency_id.clone(), step.track.clone());
        let (ws, claim, from, to) = (ws.clone(), claim.to_owned(), step.from, step.to);
        let invocation = invocation.cloned();
        let pool = pool.clone();
        move |event_id: Option<&str>, link: &mut records::Link, check: &mut LinkCheck| -> Result<Vec<TxOp>, DataError> {
            check.event_id = event_id.map(str::to_owned);
            link.last_check = Some(check.clone());
            let read_version = items::int_of(&stored_item, "version").unwrap_or(1);
            let mut ops = vec![
                TxOp::put_if(
                    records::link_item(link, &agency, &track, None, Some(&next_due)),
                    Condition::And(vec![
                        Condition::Equals("claim".into(), json!(claim)),
                        Condition::VersionEquals(read_version),
                    ]),
                ),
                TxOp::put_if(records::check_item(&ws, check, change), Condition::NotExists),
            ];
            if from != to {
                ops.push(TxOp::update(keys::summary(&ws), Update::new().add(from.as_str(), -1).add(to.as_str(), 1)));
            }
            match (&invocation, billing) {
                // On demand: the allowance or the reservation was taken when it was accepted.
                (Some(inv_item), b) => {
                    let used = if b == Billing::Credits { CHECK_COST_MILLI } else { 0 };
                    ops.extend(inv::finish_ops(
                        inv_item,
                        inv::Status::Succeeded,
                        used,
                        json!({ "link": link, "check": check }),
                        Value::Null,
                    )?);
                }
                (None, Billing::Free) => ops.push(allowance_op(&ws, now)),
                (None, Billing::Credits) => {
                    let pool = pool.clone().unwrap_or_else(|| Pool::Workspace(ws.clone()));
                    ops.extend(credits::spend(&pool, &ws, "link_check", &check.id, CHECK_COST_MILLI));
                }
            }
            if let Some(kind) = change.filter(|k| *k != "unknown") {
                ops.push(linkcrm_core::outbox::event(
                    &format!("link_building.link.{kind}"),
                    Some(&ws),
                    json!({ "linkId": link.id, "relationshipId": link.relationship_id, "accountId": link.account_id,
                            "state": to, "previous": { "state": from }, "eventId": event_id,
                            "link": link, "check": check, "version": link.version }),
                ));
            }
            Ok(ops)
        }
    });
    let event_type = match step.event {
        Some(LinkEvent::Lost) => Some(EventType::LinkLost),
        Some(LinkEvent::Restored) => Some(EventType::LinkRestored),
        Some(LinkEvent::Changed) => Some(EventType::LinkChanged),
        None => None,
    };
    let outcome_of = |r: Result<(), StoreError>| -> Result<(), HandlerError> {
        match r {
            Ok(()) => Ok(()),
            // The claim moved (another check took the link) or the allowance ran out meanwhile:
            // a redelivery reads again and does the right thing.
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(retry(job, &"the link changed")),
            Err(e) => Err(retry(job, &e)),
        }
    };
    let Some(t) = event_type else {
        let ops = build(None, &mut link, &mut check).map_err(|e| retry(job, &e))?;
        return outcome_of(app.store.transact(ops).await);
    };
    let new = NewEvent {
        r#type: t,
        contact_id: None,
        subject: None,
        content: outcome.detail.clone(),
        metadata: Some(json!({
            "linkId": stored.link.id, "linkUrl": stored.link.link_url, "from": step.from, "to": step.to,
            "result": outcome.result, "checkId": check_id, "detail": outcome.detail,
        })),
        occurred_at: None,
    };
    let cell = std::sync::Mutex::new((link.clone(), check.clone()));
    let ride_parts = build.clone();
    let ride_build = move |event: &Item| -> Result<Vec<TxOp>, DataError> {
        let mut g = cell.lock().unwrap_or_else(|e| e.into_inner());
        let (l, c) = &mut *g;
        ride_parts(items::str_of(event, "id"), l, c)
    };
    let ride = Ride { ops: Some(Box::new(ride_build)), ..Ride::default() };
    match write::record_event(app, &stored.agency_id, &ws, &stored.link.relationship_id, new, ride, None).await {
        Ok(_) => Ok(()),
        Err(EventError::RideConditionFailed) => Err(retry(job, &"the link changed")),
        // The relationship is gone: the link's own record still moves, without an event.
        Err(EventError::RelationshipNotFound(_)) => {
            let ops = build(None, &mut link, &mut check).map_err(|e| retry(job, &e))?;
            outcome_of(app.store.transact(ops).await)
        }
        Err(e) => Err(retry(job, &e)),
    }
}
