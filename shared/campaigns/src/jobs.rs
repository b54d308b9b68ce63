//! The campaign's queued work (`JobKind::Campaign*`, on the campaign queue):
//!
//! - `campaign_step` `draft`: one draft per pending member (template or subject and body rendered
//!   for its best contact), each in one transaction with its member's change, so a redelivered
//!   job drafts nobody twice; `settle`: a cancelled campaign's drafts that still wait are
//!   cancelled (credits released).
//! - `campaign_draft`: a decision on a draft, carried into the campaign. Approved: DRAFT_APPROVED
//!   then SEND_QUEUED on the relationship, the second in one transaction with the send job, both
//!   guarded by marks on the invocation so a redelivery records neither twice. Otherwise the
//!   campaign's count of waiting drafts goes down, once.
//! - `campaign_release`: the sends held while the campaign was paused go back to the send queue.

use crate::invocations as inv;
use crate::keys;
use crate::records::{self as rec, Status};
use crate::App;
use linkcrm_core::approvals;
use linkcrm_core::auth::WorkspaceRecord;
use linkcrm_core::jobkinds::{JobKind, WORK_QUEUE};
use linkcrm_crm::records::{int_of, str_of, RelationshipRecord};
use linkcrm_crm::write::{self, NewEvent, Ride};
use linkcrm_domain::enums::{EventType, PipelineStatus};
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job, StoreQueue};
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp, Update};
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn retry(e: &dyn std::fmt::Display) -> HandlerError {
    tracing::warn!(error = %e, "campaign job will be retried");
    HandlerError::Retry { after: Duration::from_secs(2) }
}

/// A campaign job that runs at `at`: delayed in the queue when that is near, else stored with its
/// visible time (as a scheduled send is).
pub(crate) fn job_at_op(payload: Value, at: chrono::DateTime<chrono::Utc>) -> Result<TxOp, HandlerError> {
    let job = Job::new(JobKind::CampaignStep.as_str(), payload);
    let delay = (at - chrono::Utc::now()).num_milliseconds().max(0) as u64;
    let delay = Duration::from_millis(delay);
    let op = if delay > linkcrm_core::jobkinds::MAX_JOB_DELAY {
        StoreQueue::enqueue_at_op(WORK_QUEUE, &job, at)
    } else {
        StoreQueue::enqueue_op(WORK_QUEUE, &job, delay)
    };
    op.map_err(|e| HandlerError::Fail(format!("campaign job refused by the queue: {e}")))
}

fn job_op(kind: JobKind, payload: Value) -> crate::error::ApiResult<TxOp> {
    StoreQueue::enqueue_op(WORK_QUEUE, &Job::new(kind.as_str(), payload), Duration::ZERO).map_err(|e| {
        tracing::error!(error = %e, "campaign job rejected by the queue");
        crate::error::ApiError::internal()
    })
}

/// The job that drafts a campaign's pending members.
pub async fn enqueue_drafting(app: &App, campaign: &str) -> crate::error::ApiResult<()> {
    app.store
        .transact(vec![job_op(JobKind::CampaignStep, json!({ "campaignId": campaign, "step": "draft" }))?])
        .await?;
    Ok(())
}

/// The job that cancels a cancelled campaign's waiting drafts.
pub fn settle_op(campaign: &str) -> crate::error::ApiResult<TxOp> {
    job_op(JobKind::CampaignStep, json!({ "campaignId": campaign, "step": "settle" }))
}

/// The job that gives a campaign's held sends back to the send queue.
pub fn release_op(campaign: &str) -> crate::error::ApiResult<TxOp> {
    job_op(JobKind::CampaignRelease, json!({ "campaignId": campaign }))
}

pub async fn handle(app: &App, job: &Job) -> Result<(), HandlerError> {
    let campaign = job.payload.get("campaignId").and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(meta) = app.store.get(&keys::campaign(&campaign)).await.map_err(|e| retry(&e))? else {
        return Ok(());
    };
    match (JobKind::parse(&job.kind), job.payload.get("step").and_then(Value::as_str)) {
        (Some(JobKind::CampaignStep), Some("draft")) => draft_members(app, &meta).await,
        (Some(JobKind::CampaignStep), Some("settle")) => settle(app, &meta).await,
        (Some(JobKind::CampaignStep), Some("sent")) => {
            crate::follow_ups::after_send(app, &meta, job).await?;
            recheck(app, &campaign).await
        }
        (Some(JobKind::CampaignStep), Some("follow_up")) => {
            crate::follow_ups::run(app, &meta, job).await?;
            recheck(app, &campaign).await
        }
        (Some(JobKind::CampaignStep), Some("bounce_check")) => bounce_check(app, &meta).await,
        (Some(JobKind::CampaignStep), Some(_)) if crate::pipeline::handle(app, &meta, job).await? => Ok(()),
        (Some(JobKind::CampaignDraft), _) => decision(app, &meta, job).await,
        (Some(JobKind::CampaignRelease), _) => release(app, &meta).await,
        _ => Err(HandlerError::Fail(format!("unknown campaign job {} {:?}", job.kind, job.payload))),
    }
}

/// After a send or a follow-up step: whether the campaign is now complete (SERP and competitor).
async fn recheck(app: &App, campaign: &str) -> Result<(), HandlerError> {
    match app.store.get(&keys::campaign(campaign)).await.map_err(|e| retry(&e))? {
        Some(meta) => crate::pipeline::request_check(app, &meta).await,
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Drafting

/// Relationships a campaign does not write to, and why (seed 002's pipeline rule).
pub(crate) fn skip_reason(rel: &RelationshipRecord) -> Option<Value> {
    if rel.archived() {
        return Some(json!({ "code": "archived", "message": "The relationship is archived" }));
    }
    match rel.status() {
        s @ (PipelineStatus::ActivelyEngaged | PipelineStatus::LinkPlaced | PipelineStatus::NotInterested) => {
            Some(json!({ "code": "relationship_status", "message": format!("The relationship is {s}"), "status": s }))
        }
        _ => None,
    }
}

async fn draft_members(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    if rec::status_of(meta).ended() {
        return Ok(());
    }
    if meta.get("invocationId").is_some() && meta.get("discoveredAt").is_none() {
        return Ok(()); // the pipeline drafts once its partners' contacts are found
    }
    let settings = meta.get("settings").cloned().unwrap_or_default();
    let template = settings.get("subject").and_then(Value::as_str).is_some()
        && settings.get("body").and_then(Value::as_str).is_some();
    let mode = if settings.get("drafting").and_then(Value::as_str) == Some("llm") {
        Drafting::Llm
    } else if template {
        Drafting::Template
    } else if meta.get("invocationId").is_some() {
        Drafting::None
    } else {
        return Ok(()); // no drafting: the campaign's sends are send-email calls
    };
    let ws = str_of(meta, "workspaceId").unwrap_or_default().to_owned();
    let Some(ws_item) = app.store.get(&linkcrm_core::keys::workspace(&ws)).await.map_err(|e| retry(&e))? else {
        return Ok(());
    };
    let record = WorkspaceRecord { item: ws_item };
    let mailbox = match linkcrm_outreach::ops::send_email::resolve_mailbox(
        app,
        &ws,
        settings.get("mailboxId").and_then(Value::as_str),
    )
    .await
    {
        Ok(m) => Some(m),
        Err(e) if e.status.is_server_error() => return Err(retry(&e.message)),
        Err(e) => {
            tracing::info!(%campaign, code = e.code, "no mailbox to draft from");
            None
        }
    };
    loop {
        let q = Query::partition(keys::campaign_members_pk(&campaign))
            .limit(25)
            .filter(Condition::Equals("state".into(), json!("pending")));
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        let any = !page.items.is_empty();
        for member in &page.items {
            draft_one(app, &record, meta, mailbox.as_ref(), member, &mode).await?;
        }
        if !any && page.cursor.is_none() {
            break;
        }
        if !any {
            // A page of members already drafted: the filter skipped them; go on from its end.
            let mut cursor = page.cursor;
            while let Some(c) = cursor {
                let q = Query::partition(keys::campaign_members_pk(&campaign))
                    .limit(200)
                    .after(Some(c))
                    .filter(Condition::Equals("state".into(), json!("pending")));
                let p = app.store.query(q).await.map_err(|e| retry(&e))?;
                for member in &p.items {
                    draft_one(app, &record, meta, mailbox.as_ref(), member, &mode).await?;
                }
                cursor = p.cursor;
            }
            break;
        }
    }
    // Every member has its draft or its reason: the timeline's drafts_ready, once.
    let now = time::now_string();
    let drafted = app.store.get(&keys::campaign(&campaign)).await.map_err(|e| retry(&e))?;
    let count = drafted.as_ref().and_then(|m| int_of(m, "drafted")).unwrap_or(0);
    let tl = keys::timeline(&campaign, &now, "drafts_ready");
    let ops = vec![
        TxOp::update_if(
            keys::campaign(&campaign),
            Update::new().set("draftsReadyAt", now.clone()),
            Condition::AttrAbsent("draftsReadyAt".into()),
        ),
        TxOp::put(linkcrm_crm::records::obj(json!({ "PK": tl.pk, "SK": tl.sk, "entity": "campaignTimeline",
            "at": now, "event": "drafts_ready", "count": count }))),
    ];
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(retry(&e)),
    }
    crate::pipeline::drafted(app, &campaign).await
}

/// Which `Writer` writes a campaign's drafts.
enum Drafting {
    /// Rendered from the campaign's subject and body (free).
    Template,
    /// Written by the LLM for each partner (3 credits each), from the template when one is given.
    Llm,
    /// Nothing to write with (a pipeline campaign without a template): members are skipped.
    None,
}

async fn skip(app: &App, campaign: &str, rel: &str, reason: Value) -> Result<(), HandlerError> {
    let u = Update::new().set("state", "skipped").set("reason", reason);
    let op =
        TxOp::update_if(keys::campaign_member(campaign, rel), u, Condition::Equals("state".into(), json!("pending")));
    match app.store.transact(vec![op]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(retry(&e)),
    }
}

async fn draft_one(
    app: &App,
    record: &WorkspaceRecord,
    meta: &Item,
    mailbox: Option<&Item>,
    member: &Item,
    mode: &Drafting,
) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default();
    let rel_id = str_of(member, "relationshipId").unwrap_or_default();
    let ws = record.id();
    let rel = match write::load_relationship(app, ws, rel_id).await {
        Ok(r) => r,
        Err(e) if e.status.is_server_error() => return Err(retry(&e.message)),
        Err(_) => {
            return skip(
                app,
                campaign,
                rel_id,
                json!({ "code": "relationship_not_found", "message": "The relationship is gone" }),
            )
            .await
        }
    };
    if let Some(reason) = skip_reason(&rel) {
        return skip(app, campaign, rel_id, reason).await;
    }
    let Some(mailbox) = mailbox else {
        return skip(
            app,
            campaign,
            rel_id,
            json!({ "code": "no_mailbox", "message": "The workspace has no active sending mailbox" }),
        )
        .await;
    };
    let settings = meta.get("settings").cloned().unwrap_or_default();
    let contact = if meta.get("invocationId").is_some() {
        let roles = crate::pipeline::list(&settings, "contactRoles");
        let seniority = crate::pipeline::list(&settings, "seniority");
        crate::ops::drafting::best_contact_for(app, &rel, &roles, &seniority).await
    } else {
        crate::ops::drafting::best_contact(app, &rel).await
    }
    .map_err(|e| retry(&e.message))?;
    let Some(contact) = contact else {
        return skip(
            app,
            campaign,
            rel_id,
            json!({ "code": "no_contact", "message": "No contact with an email address at the account" }),
        )
        .await;
    };
    let sender = str_of(mailbox, "fromName");
    let values =
        crate::ops::drafting::values(app, str_of(&record.item, "name"), &rel, Some(&contact), Some(meta), sender)
            .await
            .map_err(|e| retry(&e.message))?;
    // The Writer port: the template rendered, or the LLM (charged from the campaign's reservation).
    let brief = crate::pipeline::brief(meta);
    let writer: Box<dyn crate::writer::Writer + '_> = match mode {
        Drafting::Template | Drafting::None => Box::new(crate::writer::TemplateWriter),
        Drafting::Llm => match crate::writer::LlmWriter::for_workspace(app, ws).await {
            Ok(w) => Box::new(w),
            Err(why) => return skip(app, campaign, rel_id, why).await,
        },
    };
    let (subject, body) = match writer.write(&values, &brief).await {
        Ok(draft) => draft,
        Err(why) => return skip(app, campaign, rel_id, why).await,
    };
    let charge = match writer.cost_milli() {
        0 => Vec::new(),
        cost => match crate::pipeline::charge_ops(app, meta, cost).await? {
            Some(ops) => ops,
            None => {
                return skip(
                    app,
                    campaign,
                    rel_id,
                    json!({ "code": "no_invocation", "message": "The campaign has no invocation to charge" }),
                )
                .await
            }
        },
    };
    let contact_id = str_of(&contact, "id").unwrap_or_default();
    let to = str_of(&contact, "email").unwrap_or_default();
    let (mut ops, reply, mark) = linkcrm_outreach::ops::send_email::send_ops(
        record,
        mailbox,
        linkcrm_outreach::ops::send_email::NewSend {
            rel_id,
            contact_id,
            to,
            subject: &subject,
            body: &body,
            html: None,
            schedule_at: None,
            campaign_id: Some(campaign),
            follow_up: None,
            track_opens: rec::tracks_opens(meta),
            reply: None,
        },
    )
    .map_err(|e| retry(&e.message))?;
    let inv_id = reply["invocationId"].as_str().unwrap_or_default().to_owned();
    let waits = reply["status"] == json!("WAITING_APPROVAL");
    let member_op = ops.len();
    let draft_status = if waits { "awaiting_approval" } else { "approved" };
    ops.push(TxOp::update_if(
        keys::campaign_member(campaign, rel_id),
        Update::new()
            .set("state", "drafted")
            .set("draftInvocationId", inv_id.clone())
            .set("draftStatus", draft_status)
            .set("contactId", contact_id),
        Condition::Equals("state".into(), json!("pending")),
    ));
    ops.extend(crate::ops::drafts::pointer_ops(campaign, &inv_id, rel_id, waits, true));
    crate::pipeline::merge_ops(&mut ops, charge);
    match app.store.transact(ops).await {
        Ok(()) => Ok(()),
        // Drafted already (a redelivery or a concurrent run): nothing to do.
        Err(StoreError::ConditionFailed { op: Some(i) }) if i == member_op => Ok(()),
        Err(StoreError::ConditionFailed { op: Some(i) }) if i == mark => {
            skip(app, campaign, rel_id, json!({ "code": "no_contact", "message": "The contact is gone" })).await
        }
        Err(StoreError::ConditionFailed { .. }) => {
            skip(
                app,
                campaign,
                rel_id,
                json!({ "code": "insufficient_credits",
                "message": "Not enough credits to reserve this send (2 credits)" }),
            )
            .await
        }
        Err(e) => Err(retry(&e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions

async fn decision(app: &App, meta: &Item, job: &Job) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    let id = job.payload.get("invocationId").and_then(Value::as_str).unwrap_or_default();
    let decision = job.payload.get("decision").and_then(Value::as_str).unwrap_or_default();
    let Some(item) = app.store.get(&inv::key(id)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    let input = item.get("input").cloned().unwrap_or_default();
    let rel_id = input.get("relationshipId").and_then(Value::as_str).unwrap_or_default().to_owned();
    let waited = item.get("approvalId").is_some_and(|a| !a.is_null());
    let member = keys::campaign_member(&campaign, &rel_id);
    let is_draft = app
        .store
        .get(&member)
        .await
        .map_err(|e| retry(&e))?
        .is_some_and(|m| str_of(&m, "draftInvocationId") == Some(id));
    if decision != "approved" {
        // Rejected, expired or cancelled: one fewer waiting, once (the mark on the invocation).
        let mut ops = vec![TxOp::update_if(
            inv::key(id),
            Update::new().set("campaignSettledAt", time::now_string()),
            Condition::AttrAbsent("campaignSettledAt".into()),
        )];
        if waited {
            ops.push(TxOp::update(keys::campaign(&campaign), Update::new().add("awaiting", -1)));
        }
        if is_draft {
            ops.push(TxOp::update_if(member, Update::new().set("draftStatus", decision), Condition::Exists));
        }
        return match app.store.transact(ops).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => approvals_done(app, &campaign).await,
            Err(e) => Err(retry(&e)),
        };
    }
    if inv::status(&item) != inv::Status::Pending {
        return Ok(()); // cancelled meanwhile, or already on its way
    }
    let ws = str_of(&item, "workspaceId").unwrap_or_default().to_owned();
    let agency = str_of(&item, "agencyId").unwrap_or_default().to_owned();
    let contact = input.get("contactId").and_then(Value::as_str).map(str::to_owned);
    let meta_of = |t: &str| json!({ "invocationId": id, "campaignId": campaign, "step": t });
    let mark = |attr: &'static str| -> write::RideOps {
        let id = id.to_owned();
        Box::new(move |_ev: &Item| {
            Ok(vec![TxOp::update_if(
                inv::key(&id),
                Update::new().set(attr, time::now_string()),
                Condition::And(vec![
                    Condition::AttrAbsent(attr.into()),
                    Condition::Equals("status".into(), json!(inv::Status::Pending)),
                ]),
            )])
        })
    };
    // DRAFT_APPROVED (PROSPECTING → APPROVED_TO_CONTACT), once.
    if item.get("approvedEventAt").is_none() {
        let new = NewEvent {
            r#type: EventType::DraftApproved,
            contact_id: contact.clone(),
            subject: input.get("subject").and_then(Value::as_str).map(str::to_owned),
            content: None,
            metadata: Some(meta_of("draft_approved")),
            occurred_at: None,
        };
        let ride = Ride { ops: Some(mark("approvedEventAt")), ..Ride::default() };
        match write::record_event(app, &agency, &ws, &rel_id, new, ride, None).await {
            Ok(_) | Err(write::EventError::RideConditionFailed) => {}
            Err(write::EventError::RelationshipNotFound(_)) => return Ok(()),
            Err(e) => return Err(retry(&e)),
        }
    }
    // SEND_QUEUED (→ QUEUED) with the send job, the count of waiting drafts and the member.
    let schedule = input.get("scheduleAt").and_then(Value::as_str).map(str::to_owned);
    let send = linkcrm_core::jobkinds::send_job_op(id, schedule.as_deref()).map_err(|e| retry(&e.message))?;
    let queued: write::RideOps = {
        let (id, campaign, member) = (id.to_owned(), campaign.clone(), member.clone());
        Box::new(move |_ev: &Item| {
            let mut ops = vec![
                TxOp::update_if(
                    inv::key(&id),
                    Update::new().set("queuedEventAt", time::now_string()),
                    Condition::And(vec![
                        Condition::AttrAbsent("queuedEventAt".into()),
                        Condition::Equals("status".into(), json!(inv::Status::Pending)),
                    ]),
                ),
                send.clone(),
            ];
            if waited {
                ops.push(TxOp::update(keys::campaign(&campaign), Update::new().add("awaiting", -1).add("approved", 1)));
            }
            if is_draft {
                ops.push(TxOp::update_if(
                    member.clone(),
                    Update::new().set("draftStatus", "approved"),
                    Condition::Exists,
                ));
            }
            Ok(ops)
        })
    };
    let new = NewEvent {
        r#type: EventType::SendQueued,
        contact_id: contact,
        subject: input.get("subject").and_then(Value::as_str).map(str::to_owned),
        content: None,
        metadata: Some(meta_of("send_queued")),
        occurred_at: None,
    };
    let ride = Ride { ops: Some(queued), ..Ride::default() };
    match write::record_event(app, &agency, &ws, &rel_id, new, ride, None).await {
        Ok(_) | Err(write::EventError::RideConditionFailed) => {}
        Err(write::EventError::RelationshipNotFound(_)) => return Ok(()),
        Err(e) => return Err(retry(&e)),
    }
    approvals_done(app, &campaign).await
}

/// When the campaign's drafts are all decided: the timeline's approvals_completed, once.
async fn approvals_done(app: &App, campaign: &str) -> Result<(), HandlerError> {
    let Some(meta) = app.store.get(&keys::campaign(campaign)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    if int_of(&meta, "awaiting").unwrap_or(0) == 0 {
        crate::pipeline::request_check(app, &meta).await?;
    }
    if int_of(&meta, "awaiting").unwrap_or(0) > 0
        || meta.get("draftsReadyAt").is_none()
        || meta.get("approvalsCompletedAt").is_some()
        || int_of(&meta, "drafted").unwrap_or(0) == 0
    {
        return Ok(());
    }
    let now = time::now_string();
    let tl = keys::timeline(campaign, &now, "approvals_completed");
    let ops = vec![
        TxOp::update_if(
            keys::campaign(campaign),
            Update::new().set("approvalsCompletedAt", now.clone()),
            Condition::And(vec![
                Condition::AttrAbsent("approvalsCompletedAt".into()),
                Condition::Equals("awaiting".into(), json!(0)),
            ]),
        ),
        TxOp::put(linkcrm_crm::records::obj(json!({ "PK": tl.pk, "SK": tl.sk, "entity": "campaignTimeline",
            "at": now, "event": "approvals_completed", "count": int_of(&meta, "approved").unwrap_or(0) }))),
    ];
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(retry(&e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Cancel and release

async fn settle(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default();
    crate::pipeline::cancelled(app, meta).await?;
    let mut cursor = None;
    loop {
        let p = app
            .store
            .query(Query::partition(keys::drafts_pk(campaign)).limit(100).after(cursor))
            .await
            .map_err(|e| retry(&e))?;
        let wanted: Vec<_> = p.items.iter().filter_map(|d| str_of(d, "invocationId")).map(inv::key).collect();
        for item in app.store.batch_get(&wanted).await.map_err(|e| retry(&e))? {
            if inv::status(&item) != inv::Status::WaitingApproval {
                continue;
            }
            let mut ops = inv::cancel_ops(&item).map_err(|e| retry(&e))?;
            ops.extend(approvals::close_op(&item, approvals::Status::Cancelled, vec![]));
            match app.store.transact(ops).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(retry(&e)),
            }
        }
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

async fn release(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default();
    loop {
        // Paused again meanwhile: what is held stays held for the next resume.
        let now = app.store.get(&keys::campaign(campaign)).await.map_err(|e| retry(&e))?;
        if now.as_ref().map(rec::status_of) == Some(Status::Paused) {
            return Ok(());
        }
        let p = app
            .store
            .query(Query::partition(keys::campaign_held_pk(campaign)).limit(25))
            .await
            .map_err(|e| retry(&e))?;
        if p.items.is_empty() {
            return Ok(());
        }
        for h in &p.items {
            let Some(id) = str_of(h, "invocationId") else { continue };
            let send = linkcrm_core::jobkinds::send_job_op(id, None).map_err(|e| retry(&e.message))?;
            let ops =
                vec![TxOp::Delete { key: keys::campaign_held(campaign, id), cond: Some(Condition::Exists) }, send];
            match app.store.transact(ops).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(retry(&e)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bounce rate

/// Sends before the bounce rate is judged, and the rate of hard bounces that pauses a campaign.
pub const BOUNCE_MIN_SENDS: i64 = 20;
pub const BOUNCE_MAX_RATE: f64 = 0.05;

/// Pauses an active campaign whose hard bounces pass 5 % after at least 20 sends, with reason
/// `bounce_rate` (the rule): its queued sends and follow-ups are held until a person looks.
async fn bounce_check(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    let sent = int_of(meta, "sent").unwrap_or(0);
    let hard = int_of(meta, "hardBounced").unwrap_or(0);
    if rec::status_of(meta) != Status::Active
        || sent < BOUNCE_MIN_SENDS
        || (hard as f64) <= BOUNCE_MAX_RATE * sent as f64
    {
        return Ok(());
    }
    let ws = str_of(meta, "workspaceId").unwrap_or_default().to_owned();
    let created = str_of(meta, "createdAt").unwrap_or_default();
    let now = time::now_string();
    let mut u = Update::new()
        .set("status", "paused")
        .set("pauseReason", "bounce_rate")
        .set("pausedAt", now.clone())
        .set("updatedAt", now.clone())
        .add("version", 1);
    for (k, v) in rec::index_attrs(&ws, &campaign, created, Status::Paused) {
        u = u.set(k, v);
    }
    let tl = keys::timeline(&campaign, &now, "paused");
    let data = rec::event_data(meta, Some(&u), json!({ "reason": "bounce_rate", "sent": sent, "hardBounced": hard }));
    let ops = vec![
        TxOp::update_if(keys::campaign(&campaign), u, Condition::Equals("status".into(), json!("active"))),
        TxOp::update(keys::campaign_totals(&ws), Update::new().add("status#active", -1).add("status#paused", 1)),
        TxOp::put(linkcrm_crm::records::obj(json!({ "PK": tl.pk, "SK": tl.sk, "entity": "campaignTimeline",
            "at": now, "event": "paused", "reason": "bounce_rate" }))),
        linkcrm_core::outbox::event("link_building.campaign.paused", Some(&ws), data),
    ];
    match app.store.transact(ops).await {
        Ok(()) => {
            tracing::warn!(%campaign, sent, hard, "campaign paused: hard bounces above 5 %");
            Ok(())
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(retry(&e)),
    }
}
