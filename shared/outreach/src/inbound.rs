//! Received mail (replies, bounces, unsolicited requests) handed to the
//! API as raw RFC 5322 text, matched to the relationship it answers through the `MSGID#` item the
//! send path writes, classified by named rules, and acted on (docs/inbound-mail.md).
//!
//! One transaction per message: the message (stamped with its event id), its `INMSG#` dedupe guard
//! (claiming the Message-ID), the EMAIL_RECEIVED / EMAIL_BOUNCED event with everything it changes
//! on the relationship, the suppressions it causes (hard bounce: platform-wide; unsubscribe reply:
//! this workspace) and their outbox events commit together, or nothing does. Assigning an
//! unmatched message later is one transaction the same way.

use crate::catalogue::Reply;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::outbox;
use crate::suppression::{self, Channel, Kind, Provenance, Suppression, SuppressionSource};
use axum::http::StatusCode;
use linkcrm_crm::records;
use linkcrm_crm::write::{self, check_id, NewEvent, Ride};
use linkcrm_domain::enums::{EventType, ReplyClass};
use linkcrm_domain::normalize::normalize_email;
use linkcrm_domain::{time, IdKind};
use linkcrm_mail::{classify_reply, classify_request, BounceKind, InboundEmail, ParseError};
use linkcrm_storage::{Condition, Item, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Stored text is bounded; the full message stays with whoever delivered it (S3, the provider).
const TEXT_MAX_CHARS: usize = 20_000;

/// What a delivery status notification reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BounceView {
    /// The address that failed.
    pub recipient: Option<String>,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// A hard bounce (5.x.x) suppresses the address platform-wide; a soft one only records.
    pub hard: bool,
    pub diagnostic: Option<String>,
}

/// A received message as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundMessage {
    /// `msg_…`
    pub id: String,
    pub workspace_id: String,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub received_at: String,
    /// The plain text, at most 20 000 characters.
    pub text: String,
    /// Whether the message was tied to a relationship (by its thread, or assigned by hand).
    pub matched: bool,
    pub relationship_id: Option<String>,
    /// The EMAIL_RECEIVED or EMAIL_BOUNCED event it produced.
    pub event_id: Option<String>,
    /// Reply class (replies and bounces) and the rule that decided it.
    pub class: Option<ReplyClass>,
    pub class_rule: Option<String>,
    /// For unmatched messages: what the sender asks for, and the rule that decided it.
    pub intent: Option<linkcrm_domain::enums::InboundIntent>,
    pub intent_rule: Option<String>,
    pub bounce: Option<BounceView>,
    /// How it reached us: posted by the workspace (`api`), or read by the platform itself
    /// (`platform_mailbox`, `polled_mailbox`). Only mail the platform read can suppress an address
    /// for everyone.
    #[serde(default = "api_channel")]
    pub channel: Channel,
    /// The mailbox it was read from, when the platform polled it (`mbx_…`, or `mbx_platform`).
    #[serde(default)]
    pub mailbox_id: Option<String>,
    /// Sent by a machine (`Auto-Submitted`, an auto-reply marker, `List-Id`, `Precedence:
    /// bulk|list`): recorded, but never taken as a request.
    #[serde(default)]
    pub automated: bool,
    /// What the inbound negotiator decided for a request (not for replies to our sends): the
    /// outcome, the gate (and version) that decided it and why, every gate's verdict, the facts
    /// the gates saw, and the reply it drafted or sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiation: Option<Negotiation>,
}

/// The negotiator's decision on a request (`linkcrm_inbound`), kept on the message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Negotiation {
    /// `auto_replied` (a reply went out without a person), `escalated` (a draft waits for
    /// approval, or a person must answer), `declined` (with a short reply when `sendDeclines`),
    /// `spam`, or `held` (the gates run again at `heldUntil`).
    pub outcome: String,
    pub intent: Option<linkcrm_domain::enums::InboundIntent>,
    /// `rules` or `llm`.
    pub intent_source: Option<String>,
    /// The partner, when the request names one (a free-mail sender without a site, or spam, has none).
    pub account_id: Option<String>,
    pub relationship_id: Option<String>,
    pub contact_id: Option<String>,
    /// The partner's mode for this workspace: `auto_respond`, `always_escalate` or `decline_by_default`.
    pub mode: Option<String>,
    /// The gate that decided, with the version that was in force; absent when no gate fired.
    pub decided_by: Option<Value>,
    pub reason: Option<String>,
    /// Each gate evaluated, in priority order: `{gateId, name, version, result, action}` with
    /// `result` `matched`, `not_matched` or `unknown` (and why).
    pub trace: Vec<Value>,
    /// The facts the gates saw (`intent`, `senderDR`, `amountMentioned`, ...).
    pub facts: Value,
    /// The reply: its send invocation, and the approval it waits on when escalated.
    pub invocation_id: Option<String>,
    pub approval_id: Option<String>,
    pub held_until: Option<String>,
    pub credits_used: f64,
    pub decided_at: String,
}

/// The update that stores the negotiator's decision on a message.
pub fn negotiation_op(id: &str, n: &Negotiation) -> TxOp {
    TxOp::update_if(key(id), Update::new().set("negotiation", json!(n)), Condition::Exists)
}

/// A stored message by id, whatever its workspace (for the negotiator's jobs, which carry both).
pub async fn load_by_id(app: &crate::App, id: &str) -> Result<Option<InboundMessage>, ApiError> {
    match app.store.get(&key(id)).await? {
        Some(item) => Ok(Some(records::parse("inbound message", &item)?)),
        None => Ok(None),
    }
}

/// Where a message came from, and what makes it the same message when read again.
#[derive(Clone, Debug)]
pub struct Source {
    pub channel: Channel,
    pub mailbox_id: Option<String>,
    /// For a message without a `Message-ID`: the id it is recorded once under (the poller's
    /// mailbox, `UIDVALIDITY` and UID). Posted messages without one have none.
    pub fallback_id: Option<String>,
}

impl Source {
    pub fn api() -> Source {
        Source::of(Channel::Api)
    }

    pub fn of(channel: Channel) -> Source {
        Source { channel, mailbox_id: None, fallback_id: None }
    }
}

fn api_channel() -> Channel {
    Channel::Api
}

use crate::keys::{inbound_guard as guard_key, inbound_message as key, inbound_pk as index_pk};

fn to_item(m: &InboundMessage) -> Item {
    let extra = json!({ "GSI1PK": index_pk(&m.workspace_id), "GSI1SK": format!("{}#{}", m.received_at, m.id) });
    crate::platform::to_item(&key(&m.id), "inboundMessage", m, extra)
}

pub async fn load(ctx: &Ctx, id: &str) -> ApiResult<InboundMessage> {
    check_id(IdKind::Message, "id", id)?;
    let ws = ctx.workspace();
    match ctx.app.store.get(&key(id)).await? {
        Some(item) if records::str_of(&item, "workspaceId") == Some(ws) => {
            Ok(records::parse("inbound message", &item)?)
        }
        _ => Err(ApiError::not_found("inbound_message_not_found", "inbound message", id)),
    }
}

/// The send this message answers: the `MSGID#` item of the first candidate id the workspace sent.
async fn find_sent(ctx: &Ctx, candidates: &[String]) -> ApiResult<Option<Item>> {
    for mid in candidates {
        if let Some(item) = ctx.app.store.get(&linkcrm_crm::keys::message_id(mid)).await? {
            if records::str_of(&item, "workspaceId") == Some(ctx.workspace()) {
                return Ok(Some(item));
            }
        }
    }
    Ok(None)
}

/// The parts that add a suppression entry, none when one is already there (then nothing changes).
/// A concurrent writer adding the same entry makes the transaction fail its `NotExists`; the
/// caller then tries again, reading it as present.
async fn suppression_ops(
    ctx: &Ctx,
    workspace: Option<&str>,
    email: &str,
    source: SuppressionSource,
    reason: String,
    msg: &InboundMessage,
) -> ApiResult<Vec<TxOp>> {
    let Some(value) = normalize_email(email) else { return Ok(vec![]) };
    if ctx.app.store.get(&suppression::key(workspace, Kind::Email, &value)).await?.is_some() {
        return Ok(vec![]);
    }
    let entry = Suppression {
        kind: Kind::Email,
        value,
        workspace_id: workspace.map(str::to_owned),
        source,
        reason: Some(reason),
        created_at: time::now_string(),
        provenance: Some(Provenance {
            workspace_id: Some(msg.workspace_id.clone()),
            channel: msg.channel,
            message_id: msg.message_id.clone(),
            inbound_message_id: Some(msg.id.clone()),
        }),
    };
    Ok(vec![
        TxOp::put_if(suppression::item(&entry, Some(&ctx.caller.agency_id)), Condition::NotExists),
        outbox::event("suppression.added", workspace, json!(entry)),
    ])
}

/// What a matched (or assigned) message suppresses: its sender, when it asks to stop.
pub(crate) async fn unsubscribe_ops(ctx: &Ctx, msg: &InboundMessage) -> ApiResult<Vec<TxOp>> {
    match (&msg.class, &msg.from) {
        (Some(ReplyClass::Unsubscribe), Some(from)) if msg.relationship_id.is_some() => {
            let reason = format!("replied asking to stop ({})", msg.id);
            suppression_ops(ctx, Some(ctx.workspace()), from, SuppressionSource::Unsubscribe, reason, msg).await
        }
        _ => Ok(vec![]),
    }
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The event a matched message records on its relationship.
///
/// `campaign` is the campaign of the send it answers (the `MSGID#` item's): a bounce counts
/// against that campaign's sends.
pub(crate) fn event_for(
    msg: &InboundMessage,
    reply_text: &str,
    contact_id: Option<String>,
    campaign: Option<&str>,
) -> NewEvent {
    match &msg.bounce {
        Some(b) => NewEvent {
            r#type: EventType::EmailBounced,
            contact_id,
            subject: Some(bounded(&msg.subject, 998)).filter(|s| !s.is_empty()),
            content: b.diagnostic.clone(),
            metadata: Some(json!({
                "messageId": msg.message_id, "inReplyTo": msg.in_reply_to, "recipient": b.recipient,
                "status": b.status, "hard": b.hard, "inboundMessageId": msg.id, "campaignId": campaign,
            })),
            occurred_at: None,
        },
        None => NewEvent {
            r#type: EventType::EmailReceived,
            contact_id,
            subject: Some(bounded(&msg.subject, 998)).filter(|s| !s.is_empty()),
            content: Some(bounded(reply_text, TEXT_MAX_CHARS)).filter(|s| !s.trim().is_empty()),
            metadata: Some(json!({
                "messageId": msg.message_id, "inReplyTo": msg.in_reply_to, "from": msg.from,
                "replyClass": msg.class, "rule": msg.class_rule, "inboundMessageId": msg.id,
            })),
            occurred_at: None,
        },
    }
}

/// Why a message's transaction did not commit.
pub(crate) enum Written {
    Done(Box<InboundMessage>),
    /// A condition of the message's own parts failed: a concurrent duplicate, an assign that lost,
    /// or a suppression someone else added meanwhile.
    Lost,
}

/// Commits `parts(msg)` (what the message writes besides the event) with the message's event on
/// `rel_id`, in one transaction; `msg.event_id` is the event's id inside the parts.
pub(crate) async fn commit_with_event<F>(
    ctx: &Ctx,
    mut msg: InboundMessage,
    rel_id: &str,
    new: NewEvent,
    parts: F,
) -> ApiResult<Written>
where
    F: Fn(&InboundMessage) -> Vec<TxOp> + Send + Sync + 'static,
{
    let template = msg.clone();
    let ops = move |event: &Item| {
        let mut m = template.clone();
        m.event_id = records::str_of(event, "id").map(str::to_owned);
        Ok(parts(&m))
    };
    let ride = Ride { ops: Some(Box::new(ops)), ..Ride::default() };
    match write::record_event(&ctx.app, &ctx.caller.agency_id, ctx.workspace(), rel_id, new, ride, None).await {
        Ok(event) => {
            msg.event_id = records::str_of(&event, "id").map(str::to_owned);
            Ok(Written::Done(Box::new(msg)))
        }
        Err(write::EventError::RideConditionFailed) => Ok(Written::Lost),
        Err(e) => Err(e.into()),
    }
}

/// Tries a message's write a few times: a lost race on a suppression entry is simply read again.
pub(crate) const WRITE_ATTEMPTS: usize = 3;

/// Whether the platform itself sent the message `original` to `recipient`, so that a bounce
/// reporting on it is evidence rather than a claim. The `MSGID#` item alone is not enough (a
/// workspace records out-of-band sends under any Message-ID it likes); the send job's own claim,
/// written before it spoke SMTP, names the Message-ID and the recipient it used.
async fn we_sent(ctx: &Ctx, original: Option<&str>, recipient: &str) -> ApiResult<bool> {
    let Some(mid) = original.map(|m| m.trim().trim_matches(['<', '>'])) else { return Ok(false) };
    let Some(sent) = ctx.app.store.get(&linkcrm_crm::keys::message_id(mid)).await? else { return Ok(false) };
    let Some(invocation) = records::str_of(&sent, "invocationId") else { return Ok(false) };
    let Some(claim) = ctx.app.store.get(&crate::sending::claim_key(invocation)).await? else { return Ok(false) };
    let to = records::str_of(&claim, "to").and_then(normalize_email);
    Ok(records::str_of(&claim, "messageId") == Some(mid)
        && claim.get("eventId").is_some()
        && to.is_some()
        && to == normalize_email(recipient))
}

/// Records one received message for the workspace of `ctx`, as it arrived from `source`.
pub async fn receive(ctx: &Ctx, raw: &str, source: Source) -> ApiResult<Reply<InboundMessage>> {
    let channel = source.channel;
    let ws = ctx.workspace().to_owned();
    let email: InboundEmail = linkcrm_mail::parse(raw.as_bytes()).map_err(|e| match e {
        ParseError::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", e.to_string()),
        ParseError::Malformed(_) => ApiError::invalid_field("raw", "invalid_request", e.to_string()),
    })?;
    let message_id = email.message_id.as_deref().map(|m| bounded(m.trim(), 900)).filter(|m| !m.is_empty());
    // What the message is recorded once under: its Message-ID, or the poller's id for it.
    let dedupe_id = message_id.clone().or_else(|| source.fallback_id.clone());

    // A message handed over twice (a retried webhook, two deliveries) is recorded once.
    if let Some(mid) = &dedupe_id {
        if let Some(existing) = existing(ctx, &ws, mid).await? {
            return Ok(Reply { status: Some(StatusCode::OK), ..Reply::ok(existing) });
        }
    }

    // Which of our sends it answers: a bounce names the returned message; a reply its thread,
    // newest first.
    let mut candidates = Vec::new();
    if let Some(b) = &email.bounce {
        candidates.extend(b.original_message_id.clone());
    }
    candidates.extend(email.in_reply_to.clone());
    candidates.extend(email.references.iter().rev().cloned());
    let sent = find_sent(ctx, &candidates).await?;

    let (class, class_rule, intent, intent_rule) = if sent.is_some() || email.bounce.is_some() {
        let (c, r) = classify_reply(&email);
        (Some(c), Some(r.to_owned()), None, None)
    } else {
        let (i, r) = classify_request(&email);
        (None, None, Some(i), Some(r.to_owned()))
    };
    let id = linkcrm_domain::new_id(IdKind::Message);
    let msg = InboundMessage {
        id: id.clone(),
        workspace_id: ws.clone(),
        message_id: message_id.clone(),
        in_reply_to: email.in_reply_to.clone(),
        references: email.references.iter().take(50).cloned().collect(),
        from: email.from.as_ref().map(|p| p.address.clone()),
        from_name: email.from.as_ref().and_then(|p| p.name.clone()),
        to: email.to.iter().take(50).map(|p| p.address.clone()).collect(),
        subject: bounded(&email.subject, 998),
        received_at: time::now_string(),
        text: bounded(&email.text, TEXT_MAX_CHARS),
        matched: sent.is_some(),
        relationship_id: sent.as_ref().and_then(|s| records::str_of(s, "relationshipId")).map(str::to_owned),
        event_id: None,
        class,
        class_rule,
        intent,
        intent_rule,
        bounce: email.bounce.as_ref().map(|b| BounceView {
            recipient: b.recipient.clone(),
            status: b.status.clone(),
            hard: b.kind == BounceKind::Hard,
            diagnostic: b.diagnostic.clone(),
        }),
        channel,
        mailbox_id: source.mailbox_id.clone(),
        automated: email.is_automated(),
        negotiation: None,
    };
    // A hard bounce suppresses for everyone only when the platform read it itself and it
    // reports on a message the platform sent to that address; posted by a workspace, it is
    // that workspace's word and suppresses for it alone.
    let bounce_scope = match email.bounce.as_ref().zip(msg.bounce.as_ref().and_then(|b| b.recipient.as_ref())) {
        Some((b, r)) if channel.read_by_platform() && we_sent(ctx, b.original_message_id.as_deref(), r).await? => None,
        _ => Some(ws.clone()),
    };
    let contact = sent.as_ref().and_then(|s| records::str_of(s, "contactId")).map(str::to_owned);
    let ws2 = ws.clone();
    let guard_id = dedupe_id.clone();
    let base = move |m: &InboundMessage| {
        let mut ops = vec![TxOp::put_if(to_item(m), Condition::NotExists)];
        if let Some(mid) = &guard_id {
            let g = guard_key(&ws2, mid);
            ops.push(TxOp::put_if(
                records::obj(json!({"PK": g.pk, "SK": g.sk, "entity": "inboundGuard", "inboundId": m.id})),
                Condition::NotExists,
            ));
        }
        // A request (not an answer to our mail, not machine-sent) goes to the negotiator, which
        // decides whether the workspace has it on.
        if !m.matched && m.bounce.is_none() && !m.automated && m.from.is_some() {
            if let Ok(job) = linkcrm_core::jobkinds::inbound_negotiate_op(&m.id, &ws2, None) {
                ops.push(job);
            }
        }
        ops.push(outbox::event(
            "link_building.inbound.received",
            Some(&ws2),
            json!({ "id": m.id, "matched": m.matched, "relationshipId": m.relationship_id,
                        "class": m.class, "intent": m.intent, "eventId": m.event_id, "message": m }),
        ));
        ops
    };
    for _ in 0..WRITE_ATTEMPTS {
        // A hard bounce: the address does not exist (for everyone, when the platform can tell).
        let mut extra = Vec::new();
        if let Some(b) = msg.bounce.as_ref().filter(|b| b.hard) {
            if let Some(r) = &b.recipient {
                let reason = format!("hard bounce {} ({})", b.status, msg.id);
                let scope = bounce_scope.as_deref();
                extra.extend(suppression_ops(ctx, scope, r, SuppressionSource::Bounce, reason, &msg).await?);
            }
        }
        extra.extend(unsubscribe_ops(ctx, &msg).await?);
        let written = match msg.relationship_id.clone() {
            Some(rel_id) => {
                let campaign = sent.as_ref().and_then(|s| records::str_of(s, "campaignId"));
                let new = event_for(&msg, &email.reply_text, contact.clone(), campaign);
                let base = base.clone();
                let parts = move |m: &InboundMessage| {
                    let mut ops = base(m);
                    ops.extend(extra.iter().cloned());
                    ops
                };
                commit_with_event(ctx, msg.clone(), &rel_id, new, parts).await?
            }
            None => {
                let mut ops = base(&msg);
                ops.extend(extra);
                match ctx.app.store.transact(ops).await {
                    Ok(()) => Written::Done(Box::new(msg.clone())),
                    Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Written::Lost,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        match written {
            Written::Done(m) => return Ok(Reply::created(*m)),
            Written::Lost => {
                // The same message arrived concurrently: answer with the one that won.
                if let Some(mid) = &dedupe_id {
                    if let Some(existing) = existing(ctx, &ws, mid).await? {
                        return Ok(Reply { status: Some(StatusCode::OK), ..Reply::ok(existing) });
                    }
                }
            }
        }
    }
    Err(ApiError::conflict(
        "inbound_write_conflict",
        "The message could not be recorded for concurrent changes; post it again.",
    ))
}

/// The message already stored under this Message-ID (it was committed whole, with its event).
async fn existing(ctx: &Ctx, ws: &str, mid: &str) -> ApiResult<Option<InboundMessage>> {
    let Some(guard) = ctx.app.store.get(&guard_key(ws, mid)).await? else { return Ok(None) };
    let id = records::str_of(&guard, "inboundId").unwrap_or_default().to_owned();
    Ok(Some(load(ctx, &id).await?))
}

/// The reply class of a stored message, from what is kept of it.
pub(crate) fn classify_text(msg: &InboundMessage) -> (ReplyClass, String) {
    let raw = format!("Subject: {}\r\n\r\n{}", msg.subject.replace(['\r', '\n'], " "), msg.text);
    match linkcrm_mail::parse(raw.as_bytes()) {
        Ok(e) => {
            let (c, r) = classify_reply(&e);
            (c, r.to_owned())
        }
        Err(_) => (ReplyClass::Other, "no_rule_matched".to_owned()),
    }
}
