//! `link_building.crm.relationship.send_email`: an outreach email, as queued and policy-gated work.
//! The request creates an invocation (skill `link_building.campaign.send_email`), reserves its 2
//! credits and, when the workspace's `approvalPolicy.outreach_send` is `auto`, enqueues the send
//! job, all in one transaction. Under `require_approval` (the default) the invocation waits in
//! WAITING_APPROVAL with an approval item instead (see `ops::approvals`). The job
//! (`crate::sending`) checks policy again at send time.

/// Listed with the relationship operations it acts on.
const TAG_RELATIONSHIPS: &str = "CRM: relationships";
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::credits;
use crate::error::{ApiError, ApiResult};
use crate::invocations::{self as inv};
use crate::sending::{COST_MILLI, SKILL};
use axum::http::StatusCode;
use linkcrm_core::approvals;
use linkcrm_crm::records::{self};
use linkcrm_crm::{keys, write};
use linkcrm_domain::enums::ApprovalMode;
use linkcrm_storage::{Condition, Query, StoreError, TxOp};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<SendEmail>()]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendInput {
    /// The relationship id (path).
    pub id: crate::ids::Id<crate::ids::Relationship>,
    pub contact_id: crate::ids::Id<crate::ids::Contact>,
    #[schemars(length(max = 998), pattern(crate::rules::ONE_LINE))]
    pub subject: String,
    /// Plain text.
    #[schemars(length(max = 100000), pattern(crate::rules::NOT_BLANK))]
    pub body: String,
    /// An HTML version, sent with `body` as its plain-text alternative.
    #[schemars(length(max = 200000), pattern(crate::rules::NOT_BLANK))]
    pub html_body: Option<String>,
    /// RFC 3339; now when absent.
    #[schemars(pattern(crate::rules::TIME))]
    pub schedule_at: Option<String>,
    /// The workspace's first active mailbox when absent.
    pub mailbox_id: Option<crate::ids::Id<crate::ids::SendingMailbox>>,
}

pub use linkcrm_core::jobkinds::send_job_op as job_op;

pub use linkcrm_crm::records::contact_not_at_account;

pub struct SendEmail;
impl Operation for SendEmail {
    const NAME: &'static str = "link_building.crm.relationship.send_email";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Outreach;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = COST_MILLI as u64;
    const SUMMARY: &'static str =
        "Send an outreach email (queued, approval-gated per workspace policy: answers 202 with an invocation; 2 credits)";
    const TAG: &'static str = TAG_RELATIONSHIPS;
    type Input = SendInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: SendInput) -> ApiResult<Reply<Value>> {
        let ws = ctx.workspace().to_owned();
        let rel = write::load_relationship(&ctx.app, &ws, &input.id).await?;
        let subject = crate::validate::header_text("subject", Some(input.subject), 998)?
            .ok_or_else(|| ApiError::invalid_field("subject", "invalid_request", "is required"))?;
        let body = crate::validate::text("body", Some(input.body), 100_000)?
            .ok_or_else(|| ApiError::invalid_field("body", "invalid_request", "is required"))?;
        let html = crate::validate::text("htmlBody", input.html_body, 200_000)?;
        if let Some(s) = &input.schedule_at {
            crate::validate::time_param("scheduleAt", s)?;
        }
        let not_contact = || ApiError::not_found("contact_not_found", "contact", &input.contact_id);
        let contact_item = ctx.app.store.get(&keys::contact(&input.contact_id)).await?.ok_or_else(not_contact)?;
        let contact = records::contact_view(&contact_item)?;
        if contact.account_id != rel.account_id() {
            return Err(contact_not_at_account(rel.account_id()));
        }
        let to = contact.email.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contact_without_email",
                "The contact has no email address.",
            )
        })?;
        let mailbox = resolve_mailbox(&ctx.app, &ws, input.mailbox_id.as_ref().map(|m| m.as_str())).await?;
        let (ops, body, mark) = send_ops(
            ctx.workspace_record(),
            &mailbox,
            NewSend {
                rel_id: rel.id(),
                contact_id: &contact.id,
                to: &to,
                subject: &subject,
                body: &body,
                html: html.as_deref(),
                schedule_at: input.schedule_at.as_deref(),
                campaign_id: None,
                follow_up: None,
                track_opens: false,
                reply: None,
            },
        )?;
        let reply = Reply { status: Some(StatusCode::ACCEPTED), body: Some(body), version: None };
        // The answer is committed with the invocation: a retry after a crash replays it rather
        // than queueing a second send.
        let pool = crate::workspace::pool_of(&crate::workspace::from_record(ctx.workspace_record())?);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { op: Some(i) }) if i == mark => Err(not_contact()),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(credits::insufficient(&ctx.app.store, &pool, SKILL, COST_MILLI).await)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// One send to queue: a manual one, or a campaign's (`campaign_id`).
pub struct NewSend<'a> {
    pub rel_id: &'a str,
    pub contact_id: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// An HTML version of `body` (which is then its plain-text alternative).
    pub html: Option<&'a str>,
    pub schedule_at: Option<&'a str>,
    pub campaign_id: Option<&'a str>,
    /// A campaign's follow-up: its step and the thread it continues. It waits for approval only
    /// under `approvalPolicy.follow_up = require_approval`.
    pub follow_up: Option<FollowUpSend>,
    /// The campaign tracks opens: the email gets an HTML part with a pixel (`crate::opens`).
    pub track_opens: bool,
    /// A reply to a received message (a person's `respond`, or the inbound negotiator's).
    pub reply: Option<ReplySend>,
}

/// What makes a send a reply to a received message.
pub struct ReplySend {
    /// The received message's Message-ID and its thread, so the reply threads under it.
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub inbound_message_id: String,
    /// Whether it waits for a person; `None`: the workspace's `approvalPolicy.inbound_respond`.
    pub needs_approval: Option<bool>,
    /// Why it waits, shown on the approval (a gate's name and reason).
    pub approval_reason: Option<String>,
}

/// What makes a send a follow-up.
pub struct FollowUpSend {
    pub step: u32,
    /// The Message-ID of the send it follows, and the thread's earlier ids.
    pub in_reply_to: String,
    pub references: Vec<String>,
}

/// The mailbox a send goes from: the one named (the platform's, or an active one of the
/// workspace), else the workspace's first active mailbox, else the platform's if configured.
pub async fn resolve_mailbox(app: &crate::App, ws: &str, mailbox_id: Option<&str>) -> ApiResult<linkcrm_storage::Item> {
    Ok(match mailbox_id {
        Some(id) if id == crate::platform_mailbox::ID => crate::platform_mailbox::item().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "platform_mailbox_unavailable",
                "This server has no platform mailbox configured.",
            )
        })?,
        Some(id) => app
            .store
            .get(&crate::keys::mailbox(ws, id))
            .await?
            .filter(|m| m.get("active").and_then(Value::as_bool).unwrap_or(true))
            .ok_or_else(|| ApiError::not_found("mailbox_not_found", "active mailbox", id))?,
        None => {
            let page = app.store.query(Query::partition(crate::keys::mailboxes_pk(ws)).limit(100)).await?;
            page.items
                .into_iter()
                .find(|m| m.get("active").and_then(Value::as_bool).unwrap_or(true))
                // Without one of its own, the workspace sends through the platform's, if configured.
                .or_else(crate::platform_mailbox::item)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "no_mailbox",
                        "The workspace has no active sending mailbox; add one with POST /v1/mailboxes.",
                    )
                })?
        }
    })
}

/// The parts that queue a send, in one transaction: the invocation with its 2-credit reservation;
/// under `approvalPolicy.outreach_send = require_approval` its approval (and the approval's
/// expiry), else the job (for a campaign's send, the campaign job that records SEND_QUEUED and
/// then queues it); and the contact's in-use mark, whose index in the parts is returned (its
/// condition failing means the contact is gone). Also the 202 answer's body.
pub fn send_ops(
    record: &linkcrm_core::auth::WorkspaceRecord,
    mailbox: &linkcrm_storage::Item,
    s: NewSend<'_>,
) -> ApiResult<(Vec<TxOp>, Value, usize)> {
    let ws = record.id().to_owned();
    let mailbox_id = records::str_of(mailbox, "id").unwrap_or_default().to_owned();
    let workspace = crate::workspace::from_record(record)?;
    let pool = crate::workspace::pool_of(&workspace);
    let policy = &workspace.settings.approval_policy;
    let needs_approval = match (&s.follow_up, &s.reply) {
        (Some(_), _) => policy.follow_up == ApprovalMode::RequireApproval,
        (None, Some(r)) => r.needs_approval.unwrap_or(policy.inbound_respond == ApprovalMode::RequireApproval),
        (None, None) => policy.outreach_send == ApprovalMode::RequireApproval,
    };
    let id = inv::new_id();
    let mut input = json!({ "relationshipId": s.rel_id, "contactId": s.contact_id, "to": s.to, "subject": s.subject,
                            "body": s.body, "scheduleAt": s.schedule_at, "mailboxId": mailbox_id });
    if let Some(c) = s.campaign_id {
        input["campaignId"] = json!(c);
    }
    if s.track_opens {
        input["trackOpens"] = json!(true);
    }
    if let Some(h) = s.html {
        input["htmlBody"] = json!(h);
    }
    if let Some(f) = &s.follow_up {
        input["followUpStep"] = json!(f.step);
        input["inReplyTo"] = json!(f.in_reply_to);
        input["references"] = json!(f.references);
    }
    if let Some(r) = &s.reply {
        input["inReplyTo"] = json!(r.in_reply_to);
        input["references"] = json!(r.references);
        input["inboundMessageId"] = json!(r.inbound_message_id);
    }
    let mut item = inv::new_item(&inv::NewInvocation {
        id: &id,
        ws: &ws,
        skill: SKILL,
        input,
        pool: &pool,
        reserved_milli: COST_MILLI,
        duration_seconds: 5,
    });
    item.insert("agencyId".into(), json!(record.agency_id()));
    let mut ops = Vec::new();
    if needs_approval {
        item.insert("status".into(), json!(inv::Status::WaitingApproval));
        let mut appr = approvals::new_item(&item, s.to, s.subject, s.body, s.schedule_at);
        if let Some(r) = &s.reply {
            appr.insert("step".into(), json!("inbound_reply"));
            let reason = r
                .approval_reason
                .clone()
                .unwrap_or_else(|| "Workspace policy: inbound_respond=require_approval".into());
            appr.insert("reason".into(), json!(reason));
            appr.insert("inboundMessageId".into(), json!(r.inbound_message_id));
        }
        item.insert("approvalId".into(), appr.get("approvalId").cloned().unwrap_or_default());
        // The anchor's `agent.invocation.awaiting_approval`: the invocation, with the approval's
        // id, step, reason and preview.
        let mut waiting = item.clone();
        for k in ["step", "reason", "preview", "inboundMessageId", "timeoutAt"] {
            if let Some(v) = appr.get(k) {
                waiting.insert(k.into(), v.clone());
            }
        }
        ops.extend(inv::status_event(&waiting, inv::Status::WaitingApproval, &[]));
        // Expires at its timeoutAt unless decided first (`approval_expiry`).
        ops.push(crate::approval_expiry::job_op(&appr)?);
        ops.push(TxOp::put_if(appr, Condition::NotExists));
    } else if let (Some(c), None, None) = (s.campaign_id, &s.follow_up, &s.reply) {
        ops.push(linkcrm_core::jobkinds::campaign_draft_op(&id, c, approvals::Status::Approved)?);
    } else {
        ops.push(job_op(&id, s.schedule_at)?);
    }
    let view = inv::view(&item);
    ops.insert(0, TxOp::put_if(item, Condition::NotExists));
    ops.extend(credits::reserve(&pool, &ws, SKILL, &id, COST_MILLI));
    // The workspace now relies on this contact's address: from here on no other workspace may
    // change who the contact is (`contact_in_use`), and the send goes only to `to`.
    let mark = ops.len();
    ops.push(TxOp::update_if(keys::contact(s.contact_id), write::contact_ref_mark(&ws), Condition::Exists));
    let mut body = json!({
        "invocationId": view["invocationId"], "agentId": view["agentId"], "skill": view["skill"],
        "status": view["status"], "estimatedCost": view["estimatedCost"],
        "links": { "self": format!("/v1/agent/invocations/{id}") },
    });
    if let Some(a) = view.get("approvalId") {
        body["approvalId"] = a.clone();
        body["links"]["approval"] = json!(format!("/v1/agent/approvals/{}", a.as_str().unwrap_or_default()));
    }
    Ok((ops, body, mark))
}
