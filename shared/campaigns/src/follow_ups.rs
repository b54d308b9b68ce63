//! Follow-ups (issue: "scheduled per relationship after each send"). After each send of a campaign
//! (the send job commits a `sent` step with its EMAIL_SENT), the relationship's next step is
//! scheduled `afterDays` later; when it is due the `follow_up` step checks that nothing cancelled
//! it and queues the follow-up as a send in the same thread (`In-Reply-To` and `References`).
//!
//! Cancelled by: a reply after the campaign's first send (from any contact at the account), a
//! bounce, a placement or a decline, the relationship being archived, NOT_INTERESTED or
//! LINK_PLACED, the account's DO_NOT_CONTACT, the recipient's suppression (an unsubscribe), or the
//! campaign ending. An out-of-office reply moves it to the day after the return date it gives,
//! else by `afterDays` again, once per such reply. A paused campaign's follow-up is queued and
//! held by the send job like any of its sends.
//!
//! Each change is guarded (`CMP#<id>#FU` items, and the member's `followUpAfter`), so a redelivered
//! step schedules or sends nothing twice. The member records the state: `followUpStep`,
//! `followUpDueAt`, `followUpStatus` (scheduled, sent, cancelled, done) and `followUpReason`.

use crate::invocations as inv;
use crate::jobs::{job_at_op, retry};
use crate::keys;
use crate::records as rec;
use crate::App;
use linkcrm_core::auth::WorkspaceRecord;
use linkcrm_crm::campaign_facts;
use linkcrm_crm::records::{int_of, obj, str_of};
use linkcrm_domain::enums::PipelineStatus;
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp, Update};
use serde_json::{json, Value};

/// Seconds in a follow-up "day": `LINKCRM_DAY_SECONDS` (86,400; tests shorten it).
pub fn day_seconds() -> i64 {
    std::env::var("LINKCRM_DAY_SECONDS").ok().and_then(|v| v.parse().ok()).filter(|n: &i64| *n > 0).unwrap_or(86_400)
}

fn steps(meta: &Item) -> Vec<Value> {
    meta.get("settings").and_then(|s| s.get("followUps")).and_then(Value::as_array).cloned().unwrap_or_default()
}

fn after_days(step: &Value) -> i64 {
    step.get("afterDays").and_then(Value::as_i64).unwrap_or(3)
}

fn payload_str<'a>(job: &'a Job, k: &str) -> &'a str {
    job.payload.get(k).and_then(Value::as_str).unwrap_or_default()
}

async fn commit_ignoring_lost(app: &App, ops: Vec<TxOp>) -> Result<bool, HandlerError> {
    match app.store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(retry(&e)),
    }
}

/// A send of the campaign went out: schedule the relationship's next step.
pub async fn after_send(app: &App, meta: &Item, job: &Job) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    let id = payload_str(job, "invocationId");
    let Some(item) = app.store.get(&inv::key(id)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    let input = item.get("input").cloned().unwrap_or_default();
    let rel = input.get("relationshipId").and_then(Value::as_str).unwrap_or_default();
    let member_key = keys::campaign_member(&campaign, rel);
    let Some(member) = app.store.get(&member_key).await.map_err(|e| retry(&e))? else { return Ok(()) };
    let this_step = input.get("followUpStep").and_then(Value::as_i64).unwrap_or(0);
    let sent_steps = int_of(&member, "followUpsSent").unwrap_or(0).max(this_step);
    let all = steps(meta);
    let guard = keys::follow_up_guard(&campaign, id, "scheduled");
    let mut ops = vec![TxOp::put_if(
        obj(json!({ "PK": guard.pk, "SK": guard.sk, "entity": "followUpGuard" })),
        Condition::NotExists,
    )];
    let next = sent_steps + 1;
    if rec::status_of(meta).ended() || next as usize > all.len() {
        let status = if all.is_empty() { Value::Null } else { json!("done") };
        ops.push(TxOp::update_if(
            member_key,
            Update::new()
                .set("followUpsSent", sent_steps)
                .set("followUpDueAt", Value::Null)
                .set("followUpStatus", status),
            Condition::Exists,
        ));
        commit_ignoring_lost(app, ops).await?;
        return Ok(());
    }
    let due = chrono::Utc::now() + chrono::Duration::seconds(after_days(&all[next as usize - 1]) * day_seconds());
    let due_s = due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    ops.push(TxOp::update_if(
        member_key,
        Update::new()
            .set("followUpsSent", sent_steps)
            .set("followUpAfter", id)
            .set("followUpStep", next)
            .set("followUpDueAt", due_s)
            .set("followUpScheduledAt", time::now_string())
            .set("followUpStatus", "scheduled")
            .set("followUpReason", Value::Null),
        Condition::Exists,
    ));
    ops.push(job_at_op(
        json!({ "step": "follow_up", "campaignId": campaign, "relationshipId": rel, "followUpStep": next, "after": id }),
        due,
    )?);
    commit_ignoring_lost(app, ops).await?;
    Ok(())
}

/// Ends the relationship's pending follow-up with `reason` (only the one this job is for).
async fn cancel(app: &App, member_key: linkcrm_storage::Key, after: &str, reason: Value) -> Result<(), HandlerError> {
    let u = Update::new()
        .set("followUpStatus", "cancelled")
        .set("followUpReason", reason)
        .set("followUpDueAt", Value::Null);
    commit_ignoring_lost(
        app,
        vec![TxOp::update_if(member_key, u, Condition::Equals("followUpAfter".into(), json!(after)))],
    )
    .await?;
    Ok(())
}

fn reason(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

fn strip_re(subject: &str) -> &str {
    let mut s = subject.trim();
    while s.len() >= 3 && s[..3].eq_ignore_ascii_case("re:") {
        s = s[3..].trim_start();
    }
    s
}

/// A follow-up is due: send it, move it, or drop it.
pub async fn run(app: &App, meta: &Item, job: &Job) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    let rel_id = payload_str(job, "relationshipId").to_owned();
    let after = payload_str(job, "after").to_owned();
    let step = job.payload.get("followUpStep").and_then(Value::as_i64).unwrap_or(0);
    let member_key = keys::campaign_member(&campaign, &rel_id);
    let Some(member) = app.store.get(&member_key).await.map_err(|e| retry(&e))? else { return Ok(()) };
    // A later send rescheduled this relationship's follow-up, or it was settled: not ours.
    if str_of(&member, "followUpAfter") != Some(after.as_str())
        || int_of(&member, "followUpStep") != Some(step)
        || str_of(&member, "followUpStatus") != Some("scheduled")
    {
        return Ok(());
    }
    let status = rec::status_of(meta);
    if status.ended() {
        return cancel(app, member_key, &after, reason(&format!("campaign_{}", status.as_str()), "The campaign ended"))
            .await;
    }
    let att = campaign_facts::attribution_of(&member);
    let stop = if att.replied_at.is_some() {
        Some(("replied", "The partner replied"))
    } else if att.placed_at.is_some() {
        Some(("link_placed", "The link is placed"))
    } else if att.declined_at.is_some() {
        Some(("declined", "The partner declined"))
    } else if att.bounced > 0 {
        Some(("bounced", "A send to the partner bounced"))
    } else {
        None
    };
    if let Some((code, message)) = stop {
        return cancel(app, member_key, &after, reason(code, message)).await;
    }
    let ws = str_of(meta, "workspaceId").unwrap_or_default().to_owned();
    let rel = match linkcrm_crm::write::load_relationship(app, &ws, &rel_id).await {
        Ok(r) => r,
        Err(e) if e.status.is_server_error() => return Err(retry(&e.message)),
        Err(_) => {
            return cancel(app, member_key, &after, reason("relationship_not_found", "The relationship is gone")).await
        }
    };
    if rel.archived() {
        return cancel(app, member_key, &after, reason("archived", "The relationship is archived")).await;
    }
    if matches!(rel.status(), PipelineStatus::NotInterested | PipelineStatus::LinkPlaced) {
        let m = format!("The relationship is {}", rel.status());
        return cancel(app, member_key, &after, reason("relationship_status", &m)).await;
    }
    let account = linkcrm_crm::write::load_account(app, rel.account_id()).await.map_err(|e| retry(&e.message))?;
    if account.do_not_contact() {
        return cancel(app, member_key, &after, reason("do_not_contact", "The account is marked DO_NOT_CONTACT")).await;
    }
    let Some(prev) = app.store.get(&inv::key(&after)).await.map_err(|e| retry(&e))? else {
        return cancel(app, member_key, &after, reason("no_thread", "The send it follows is gone")).await;
    };
    let prev_input = prev.get("input").cloned().unwrap_or_default();
    let pin = |k: &str| prev_input.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(message_id) =
        prev.get("result").and_then(|r| r.get("messageId")).and_then(Value::as_str).map(str::to_owned)
    else {
        return cancel(app, member_key, &after, reason("no_thread", "The send it follows has no Message-ID")).await;
    };
    let to = pin("to");
    let agency = str_of(meta, "agencyId").unwrap_or_default().to_owned();
    let suppressed =
        linkcrm_outreach::suppression::blocking(&app.store, &ws, &to, &agency).await.map_err(|e| retry(&e))?;
    if !suppressed.is_empty() {
        return cancel(
            app,
            member_key,
            &after,
            reason("suppressed", "The recipient is on a suppression list (unsubscribed or bounced)"),
        )
        .await;
    }
    let all = steps(meta);
    let Some(this) = all.get(step as usize - 1).cloned() else {
        return cancel(app, member_key, &after, reason("no_step", "The campaign no longer has this follow-up")).await;
    };

    // An out-of-office reply since the send it follows: wait until the person is back, once per
    // reply.
    let scheduled_at = att.last_sent_at.clone().unwrap_or_default();
    let q = Query::index(Index::Gsi1, linkcrm_crm::keys::relationship_events_pk(&ws, rel.account_id()))
        .backward()
        .limit(20)
        .filter(Condition::Equals("type".into(), json!("EMAIL_RECEIVED")));
    let received = app.store.query(q).await.map_err(|e| retry(&e))?;
    let ooo = received.items.iter().find(|e| {
        e.get("metadata").and_then(|m| m.get("replyClass")).and_then(Value::as_str) == Some("out_of_office")
            && str_of(e, "occurredAt").is_some_and(|t| t >= scheduled_at.as_str())
    });
    if let Some(e) = ooo {
        let eid = str_of(e, "id").unwrap_or_default();
        if str_of(&member, "oooHandled") != Some(eid) {
            let at = str_of(e, "occurredAt").and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let back = at
                .and_then(|t| linkcrm_mail::ooo::return_date(str_of(e, "content").unwrap_or_default(), t.date_naive()));
            let due = match back {
                Some(d) => d.succ_opt().unwrap_or(d).and_hms_opt(9, 0, 0).unwrap_or_default().and_utc(),
                None => chrono::Utc::now() + chrono::Duration::seconds(after_days(&this) * day_seconds()),
            };
            let u = Update::new()
                .set("oooHandled", eid)
                .set("followUpDueAt", due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let ops = vec![
                TxOp::update_if(member_key, u, Condition::Equals("followUpAfter".into(), json!(after))),
                job_at_op(job.payload.clone(), due)?,
            ];
            commit_ignoring_lost(app, ops).await?;
            return Ok(());
        }
    }

    // The follow-up itself, rendered for the contact the send before it went to.
    let contact = app.store.get(&linkcrm_crm::keys::contact(&pin("contactId"))).await.map_err(|e| retry(&e))?;
    let Some(ws_item) = app.store.get(&linkcrm_core::keys::workspace(&ws)).await.map_err(|e| retry(&e))? else {
        return Ok(());
    };
    let record = WorkspaceRecord { item: ws_item };
    let mailbox = match linkcrm_outreach::ops::send_email::resolve_mailbox(app, &ws, Some(&pin("mailboxId"))).await {
        Ok(m) => m,
        Err(e) if e.status.is_server_error() => return Err(retry(&e.message)),
        Err(_) => return cancel(app, member_key, &after, reason("no_mailbox", "The mailbox is gone")).await,
    };
    let values = crate::ops::drafting::values(
        app,
        str_of(&record.item, "name"),
        &rel,
        contact.as_ref(),
        Some(meta),
        str_of(&mailbox, "fromName"),
    )
    .await
    .map_err(|e| retry(&e.message))?;
    let render = |t: &str| crate::placeholders::render(t, &values).unwrap_or_else(|_| Err(vec![]));
    let subject = match this.get("subject").and_then(Value::as_str) {
        Some(t) => render(t),
        None => Ok(format!("Re: {}", strip_re(&pin("subject")))),
    };
    let body = render(this.get("body").and_then(Value::as_str).unwrap_or_default());
    let (subject, body) = match (subject, body) {
        (Ok(s), Ok(b)) => (s, b),
        (s, b) => {
            let mut missing = s.err().unwrap_or_default();
            missing.extend(b.err().unwrap_or_default());
            missing.dedup();
            let r = json!({ "code": "missing_placeholder_value", "message": "A placeholder has no value",
                            "placeholders": missing });
            return cancel(app, member_key, &after, r).await;
        }
    };
    let mut references: Vec<String> = prev_input
        .get("references")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if !references.contains(&message_id) {
        references.push(message_id.clone());
    }
    let (mut ops, reply, mark) = linkcrm_outreach::ops::send_email::send_ops(
        &record,
        &mailbox,
        linkcrm_outreach::ops::send_email::NewSend {
            rel_id: &rel_id,
            contact_id: &pin("contactId"),
            to: &to,
            subject: &subject,
            body: &body,
            html: None,
            schedule_at: None,
            campaign_id: Some(&campaign),
            follow_up: Some(linkcrm_outreach::ops::send_email::FollowUpSend {
                step: step as u32,
                in_reply_to: message_id,
                references,
            }),
            track_opens: rec::tracks_opens(meta),
            reply: None,
        },
    )
    .map_err(|e| retry(&e.message))?;
    let inv_id = reply["invocationId"].as_str().unwrap_or_default().to_owned();
    let waits = reply["status"] == json!("WAITING_APPROVAL");
    let guard = keys::follow_up_guard(&campaign, &after, &format!("step{step}"));
    let guard_at = ops.len();
    ops.push(TxOp::put_if(
        obj(json!({ "PK": guard.pk, "SK": guard.sk, "entity": "followUpGuard", "invocationId": inv_id })),
        Condition::NotExists,
    ));
    ops.push(TxOp::update_if(
        member_key.clone(),
        Update::new()
            .set("followUpStatus", "sent")
            .set("followUpDueAt", Value::Null)
            .set("lastFollowUpInvocationId", inv_id.clone()),
        Condition::Equals("followUpAfter".into(), json!(after)),
    ));
    ops.extend(crate::ops::drafts::pointer_ops(&campaign, &inv_id, &rel_id, waits, false));
    match app.store.transact(ops).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed { op: Some(i) }) if i == guard_at || i == guard_at + 1 => Ok(()),
        Err(StoreError::ConditionFailed { op: Some(i) }) if i == mark => {
            cancel(app, member_key, &after, reason("no_contact", "The contact is gone")).await
        }
        Err(StoreError::ConditionFailed { .. }) => {
            cancel(
                app,
                member_key,
                &after,
                reason("insufficient_credits", "Not enough credits to reserve the follow-up (2 credits)"),
            )
            .await
        }
        Err(e) => Err(retry(&e)),
    }
}
