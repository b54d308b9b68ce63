//! The negotiation of one inbound request (an `inbound_negotiate` job, committed with the
//! message): its facts, the partner's mode, the eval gates, and the outcome.
//!
//! 1. **Facts.** The intent (rules; the LLM when the rules found nothing and one is configured),
//!    the partner's site (the sender's domain, or for a free-mail sender the first site the message
//!    names; none for spam or when none is named), its DR (the account's, else Ahrefs), amounts of
//!    money (USD), links, the hour in the workspace's zone, and the workspace's history with the
//!    partner.
//! 2. **Partner.** The account and relationship are found or made (source INBOUND), the sender
//!    becomes a contact there, the relationship joins the inbound campaign.
//! 3. **Gates** run in priority order; the first whose condition holds and whose action is not
//!    `tag_and_continue` decides. A gate that cannot be evaluated escalates. Without a deciding
//!    gate the partner's mode decides (`auto_respond` sends only when the workspace is
//!    autonomous).
//! 4. **Outcome**, committed in one transaction with INBOUND_REQUEST on the relationship (which
//!    moves no status and no shared counter) and the decision on the message: an autonomous reply
//!    (a send that does not wait), an escalation (a drafted reply waiting for approval, with the
//!    gate's name and reason), a decline (with a short reply when the workspace sends declines),
//!    spam, or a hold (the job comes back at `until` and the gates run again).
//!
//! Credits (anchor): 0.5 per classification and per `llm_check` asked, 3 per LLM-written draft,
//! 0.1 per Ahrefs lookup, charged once per round in their own transaction with a guard
//! (`NEGOT#<message>` / `<round>#charge`); the reply's 2 credits are reserved by its send. When
//! the workspace cannot pay, the request escalates with reason `insufficient_credits` (no LLM, a
//! drafted reply only if its send can be reserved).

use crate::drafting::{self, ReplyBrief};
use crate::error::{ApiError, ApiResult};
use crate::records::{self, Action, Gate, Mode, Settings};
use crate::{keys, outbox, App};
use linkcrm_core::context::Ctx;
use linkcrm_core::items::{obj, str_of};
use linkcrm_crm::write::{self, NewEvent, Ride};
use linkcrm_domain::enums::{EventType, InboundIntent, Source};
use linkcrm_domain::gates::{self, Facts, Truth};
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job};
use linkcrm_outreach::inbound::{self as inbound_msg, InboundMessage, Negotiation};
use linkcrm_outreach::ops::send_email::{self, NewSend, ReplySend};
use linkcrm_storage::{Condition, StoreError, TxOp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const JOB_KIND: &str = "inbound_negotiate";
const SKILL: &str = "link_building.inbound.negotiate";
const CLASSIFY_MILLI: i64 = 500;
const CHECK_MILLI: i64 = 500;
const DRAFT_MILLI: i64 = 3000;
const AHREFS_MILLI: i64 = 100;
const SEND_MILLI: i64 = 2000;

fn retry(e: &dyn std::fmt::Display) -> HandlerError {
    tracing::warn!(error = %e, "inbound negotiation will be retried");
    HandlerError::Retry { after: Duration::from_secs(5) }
}

fn api_err(e: ApiError) -> HandlerError {
    if e.status.is_server_error() || e.status == axum::http::StatusCode::CONFLICT {
        retry(&e.message)
    } else {
        HandlerError::Fail(format!("{}: {}", e.code, e.message))
    }
}

/// Handles one `inbound_negotiate` job.
pub async fn handle(app: &Arc<App>, job: &Job) -> Result<(), HandlerError> {
    let s = |k: &str| job.payload.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (id, ws) = (s("messageId"), s("workspaceId"));
    let Some(msg) = inbound_msg::load_by_id(app, &id).await.map_err(api_err)? else { return Ok(()) };
    if msg.workspace_id != ws || msg.matched || msg.automated {
        return Ok(());
    }
    let round = match &msg.negotiation {
        None => 1,
        Some(n) if n.outcome == "held" => {
            // A hold's job: due once its time has come (an early delivery waits again).
            if let Some(until) = n.held_until.as_deref().and_then(time::parse) {
                let left = until - chrono::Utc::now();
                if left > chrono::Duration::seconds(1) {
                    return Err(HandlerError::Retry { after: left.to_std().unwrap_or(Duration::from_secs(60)) });
                }
            }
            n.trace.iter().filter_map(|t| t.get("round").and_then(Value::as_i64)).max().unwrap_or(1) + 1
        }
        Some(_) => return Ok(()),
    };
    let Some(ctx) = Ctx::for_workspace(app, &ws, "system:inbound-negotiator").await.map_err(|e| retry(&e))? else {
        return Ok(());
    };
    let settings = records::load_settings(app, &ws).await.map_err(api_err)?;
    if !settings.enabled {
        return Ok(());
    }
    if !settings.mailbox_ids.is_empty() && !msg.mailbox_id.as_ref().is_some_and(|m| settings.mailbox_ids.contains(m)) {
        return Ok(());
    }
    negotiate(&ctx, &msg, &settings, round).await.map_err(api_err)
}

/// What the gates and the mode decided.
struct Decision {
    outcome: &'static str,
    gate: Option<Value>,
    reason: Option<String>,
    hold_until: Option<chrono::DateTime<chrono::Utc>>,
}

struct Partner {
    account: Option<linkcrm_crm::records::AccountRecord>,
    rel: Option<linkcrm_crm::records::RelationshipRecord>,
    contact: Option<String>,
    site: Option<String>,
}

fn split_name(name: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(n) = name.map(str::trim).filter(|n| !n.is_empty() && !n.contains('@')) else { return (None, None) };
    let mut parts = n.splitn(2, ' ');
    let first = parts.next().map(|s| s.trim_matches('"').to_owned()).filter(|s| !s.is_empty());
    let last = parts.next().map(|s| s.trim_matches('"').trim().to_owned()).filter(|s| !s.is_empty());
    (first.map(|f| f.chars().take(100).collect()), last.map(|l| l.chars().take(100).collect()))
}

async fn negotiate(ctx: &Ctx, msg: &InboundMessage, settings: &Settings, round: i64) -> ApiResult<()> {
    let app = &ctx.app;
    let ws = ctx.workspace().to_owned();
    let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
    let pool = linkcrm_core::workspace::pool_of(&workspace);
    let from = msg.from.clone().unwrap_or_default();
    let from_domain = from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let free_mail = gates::is_free_mail(&from_domain);
    let own = workspace.primary_domain.clone().unwrap_or_default();
    let all_text = format!("{}\n{}", msg.subject, msg.text);
    // What the LLM work may cost: the check before any call.
    let llm = linkcrm_campaigns::providers::llm(app, &ws).await.ok().map(|(c, _)| drafting::Llm::new(c, app, &ws));
    let gates_list: Vec<Gate> = records::gates(app, &ws).await?.into_iter().filter(|g| g.enabled).collect();
    let checks: i64 = gates_list
        .iter()
        .filter_map(|g| gates::parse_when(&g.when).ok())
        .map(|w| gates::questions(&w).len() as i64)
        .sum();
    let estimate = CLASSIFY_MILLI + AHREFS_MILLI + CHECK_MILLI * checks + if llm.is_some() { DRAFT_MILLI } else { 0 };
    let can_pay = linkcrm_core::credits::covers(&app.store, &pool, estimate + SEND_MILLI).await?;
    let llm = if can_pay { llm } else { None };
    let mut used: i64 = 0;

    // 1. The intent: the rules first, the LLM when they found nothing.
    let mut intent = msg.intent.unwrap_or(InboundIntent::Other);
    let mut intent_source = "rules";
    if can_pay {
        used += CLASSIFY_MILLI;
        if intent == InboundIntent::Other {
            if let Some(llm) = &llm {
                if let Some(i) = drafting::classify(llm, &msg.subject, &msg.text).await {
                    intent = i;
                    intent_source = "llm";
                }
            }
        }
    }

    // 2. The partner: the sender's site, or the one a free-mail sender names; none for spam.
    let site = if intent == InboundIntent::Spam {
        None
    } else if !free_mail {
        linkcrm_domain::normalize::normalize_domain(&from_domain).ok()
    } else {
        gates::named_sites(&msg.text)
            .into_iter()
            .filter(|s| !gates::is_free_mail(s) && *s != own && !own.ends_with(&format!(".{s}")))
            .find_map(|s| linkcrm_domain::normalize::normalize_domain(&s).ok())
    };
    let mut partner = Partner { account: None, rel: None, contact: None, site: site.clone() };
    let mut prior = "NONE".to_owned();
    let mut replied_before = false;
    let mut sender_dr: Option<f64> = None;
    if let Some(site) = &site {
        let had = write::account_by_domain(app, site).await?;
        if let Some(a) = &had {
            let existing = app.store.get(&linkcrm_crm::keys::workspace_account(&ws, a.id())).await?;
            if let Some(rid) = existing.as_ref().and_then(|g| str_of(g, "relationshipId")) {
                if let Ok(rel) = write::load_relationship(app, &ws, rid).await {
                    prior = rel.status().as_str().to_owned();
                    replied_before = rel.state().contacted_by_us;
                }
            }
        }
        let details = json!({ "inboundMessageId": msg.id, "from": from });
        let (rel, _) = write::ensure_relationship(app, &ws, site, Source::Inbound, Some(details)).await?;
        let account = write::load_account(app, rel.account_id()).await?;
        sender_dr = account.0.get("domainRating").and_then(Value::as_f64);
        if sender_dr.is_none() && can_pay {
            if let Ok(dr) = linkcrm_campaigns::pipeline::refresh_metrics(app, &ws, &account).await {
                used += AHREFS_MILLI;
                sender_dr = dr;
            }
        }
        let (first, last) = split_name(msg.from_name.as_deref());
        if let Ok((contact, at)) = write::ensure_contact(app, &ws, account.id(), &from, first, last).await {
            partner.contact = (at == account.id()).then_some(contact);
        }
        if let Some(c) = &settings.campaign_id {
            linkcrm_campaigns::ops::campaigns::enrol_app(app, c, &rel).await?.ok();
        }
        partner.rel = Some(rel);
        partner.account = Some(account);
    }

    let zone = linkcrm_domain::send_window::zone(workspace.settings.time_zone.as_deref()).unwrap_or(chrono_tz::UTC);
    let received = time::parse(&msg.received_at).unwrap_or_else(chrono::Utc::now);
    let facts = Facts {
        intent: intent.as_str().to_owned(),
        sender_dr,
        amount_mentioned: gates::amounts(&all_text).into_iter().reduce(f64::max),
        mentions_money: gates::mentions_money(&all_text),
        hour_of_day: chrono::Timelike::hour(&received.with_timezone(&zone)),
        prior_relationship_status: prior,
        replied_before,
        from_free_mail_provider: free_mail,
        link_count: gates::link_count(&msg.text),
        subject: msg.subject.clone(),
        text: msg.text.clone(),
        from_address: from.clone(),
        from_domain: from_domain.clone(),
    };

    // 3. The gates, then the mode.
    let mut trace = Vec::new();
    let mut decided: Option<Decision> = None;
    if !can_pay {
        decided = Some(Decision {
            outcome: "escalated",
            gate: None,
            reason: Some("insufficient_credits".into()),
            hold_until: None,
        });
    }
    if intent == InboundIntent::Spam && decided.is_none() {
        decided =
            Some(Decision { outcome: "spam", gate: None, reason: Some("classified as spam".into()), hold_until: None });
    }
    for g in &gates_list {
        if decided.is_some() {
            break;
        }
        let Ok(when) = gates::parse_when(&g.when) else { continue };
        let mut answers = HashMap::new();
        for q in gates::questions(&when) {
            used += CHECK_MILLI;
            let a = match &llm {
                Some(llm) => drafting::check(llm, &q, &msg.subject, &msg.text).await,
                None => None,
            };
            answers.insert(q, a);
        }
        let gate_ref = json!({ "gateId": g.id, "name": g.name, "version": g.version });
        let truth = gates::eval(&when, &facts, &answers);
        let mut entry = json!({ "gateId": g.id, "name": g.name, "version": g.version, "round": round,
                                "action": g.then.action.as_str() });
        match truth {
            Truth::False => entry["result"] = json!("not_matched"),
            Truth::Unknown(why) => {
                entry["result"] = json!("unknown");
                entry["why"] = json!(why);
                trace.push(entry);
                decided = Some(Decision {
                    outcome: "escalated",
                    gate: Some(gate_ref),
                    reason: Some(format!("{} could not be evaluated: {why}", g.name)),
                    hold_until: None,
                });
                continue;
            }
            Truth::True => {
                entry["result"] = json!("matched");
                let reason = g.then.reason.clone().unwrap_or_else(|| format!("gate {} matched", g.name));
                decided = match g.then.action {
                    Action::TagAndContinue => {
                        entry["tag"] = json!(g.then.tag.clone().unwrap_or_else(|| g.name.clone()));
                        None
                    }
                    Action::EscalateToApproval => Some(Decision {
                        outcome: "escalated",
                        gate: Some(gate_ref),
                        reason: Some(reason),
                        hold_until: None,
                    }),
                    Action::Decline => Some(Decision {
                        outcome: "declined",
                        gate: Some(gate_ref),
                        reason: Some(reason),
                        hold_until: None,
                    }),
                    Action::MarkSpam => {
                        Some(Decision { outcome: "spam", gate: Some(gate_ref), reason: Some(reason), hold_until: None })
                    }
                    Action::Hold => {
                        let until = g.then.until.as_deref().unwrap_or("PT1H");
                        let at = time::parse(until).unwrap_or_else(|| {
                            received
                                + chrono::Duration::seconds(crate::ops::gates::duration_secs(until).unwrap_or(3600))
                        });
                        if at <= chrono::Utc::now() + chrono::Duration::seconds(1) && round > 1 {
                            // The hold has passed: the gates go on past it.
                            entry["result"] = json!("hold_passed");
                            None
                        } else {
                            Some(Decision {
                                outcome: "held",
                                gate: Some(gate_ref),
                                reason: Some(reason),
                                hold_until: Some(at),
                            })
                        }
                    }
                };
            }
        }
        trace.push(entry);
    }
    let own_mode = match &partner.account {
        Some(a) => records::account_mode(app, &ws, a.id()).await?,
        None => None,
    };
    let mode = own_mode.unwrap_or(if settings.autonomous { Mode::AutoRespond } else { Mode::AlwaysEscalate });
    let decision = decided.unwrap_or_else(|| match mode {
        Mode::DeclineByDefault => Decision {
            outcome: "declined",
            gate: None,
            reason: Some("the partner's mode is decline_by_default".into()),
            hold_until: None,
        },
        Mode::AutoRespond if settings.autonomous => {
            Decision { outcome: "auto_replied", gate: None, reason: None, hold_until: None }
        }
        Mode::AutoRespond => Decision {
            outcome: "escalated",
            gate: None,
            reason: Some("autonomous replies are off for this workspace".into()),
            hold_until: None,
        },
        Mode::AlwaysEscalate => Decision {
            outcome: "escalated",
            gate: None,
            reason: Some(if own_mode.is_some() {
                "the partner's mode is always_escalate".into()
            } else {
                "autonomous replies are off for this workspace".into()
            }),
            hold_until: None,
        },
    });

    // 4. The reply, if the outcome has one.
    let brief = ReplyBrief {
        sender_name: msg.from_name.as_deref(),
        subject: &msg.subject,
        text: &msg.text,
        intent,
        tone: &settings.default_tone,
        angles: &settings.angles,
        workspace_name: &workspace.name,
        sender_site: site.as_deref(),
    };
    let reply: Option<(String, String, bool)> = match decision.outcome {
        "auto_replied" | "escalated" if partner.contact.is_some() => {
            let drafted = match &llm {
                Some(llm) => match drafting::draft(llm, &brief).await {
                    Some(d) => {
                        used += DRAFT_MILLI;
                        Some(d)
                    }
                    None => None,
                },
                None => None,
            };
            let (subject, body) = drafted.unwrap_or_else(|| drafting::template_reply(&brief));
            Some((subject, body, decision.outcome == "escalated"))
        }
        "declined" if settings.send_declines && partner.contact.is_some() => {
            let (subject, body) = drafting::decline_reply(&brief);
            Some((subject, body, false))
        }
        _ => None,
    };

    // Charge once for this round's work.
    let charged = charge(app, &pool, &ws, &msg.id, round, used).await?;
    let decision = if charged || used == 0 {
        decision
    } else {
        Decision { outcome: "escalated", gate: None, reason: Some("insufficient_credits".into()), hold_until: None }
    };
    let used = if charged { used } else { 0 };
    commit(ctx, msg, settings, &partner, intent, intent_source, mode, &facts, trace, decision, reply, used, round).await
}

/// Charges a round's work once (a guard item per message and round); `false` when the workspace
/// cannot pay.
async fn charge(
    app: &App,
    pool: &linkcrm_core::credits::Pool,
    ws: &str,
    msg: &str,
    round: i64,
    used: i64,
) -> ApiResult<bool> {
    if used == 0 {
        return Ok(true);
    }
    let guard_key = keys::negotiation_charge(msg, round);
    if app.store.get(&guard_key).await?.is_some() {
        return Ok(true);
    }
    let mut ops = vec![TxOp::put_if(
        obj(json!({ "PK": guard_key.pk, "SK": guard_key.sk, "entity": "negotiationCharge", "milli": used })),
        Condition::NotExists,
    )];
    ops.extend(linkcrm_core::credits::spend(pool, ws, SKILL, msg, used));
    match app.store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { op: Some(0) }) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(app.store.get(&guard_key).await?.is_some()),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn commit(
    ctx: &Ctx,
    msg: &InboundMessage,
    settings: &Settings,
    partner: &Partner,
    intent: InboundIntent,
    intent_source: &str,
    mode: Mode,
    facts: &Facts,
    trace: Vec<Value>,
    decision: Decision,
    reply: Option<(String, String, bool)>,
    used: i64,
    round: i64,
) -> ApiResult<()> {
    let app = &ctx.app;
    let ws = ctx.workspace().to_owned();
    let mut negotiation = Negotiation {
        outcome: decision.outcome.to_owned(),
        intent: Some(intent),
        intent_source: Some(intent_source.to_owned()),
        account_id: partner.account.as_ref().map(|a| a.id().to_owned()),
        relationship_id: partner.rel.as_ref().map(|r| r.id().to_owned()),
        contact_id: partner.contact.clone(),
        mode: Some(mode.as_str().to_owned()),
        decided_by: decision.gate.clone(),
        reason: decision.reason.clone(),
        trace,
        facts: json!(facts),
        invocation_id: None,
        approval_id: None,
        held_until: decision.hold_until.map(time::format),
        credits_used: used as f64 / 1000.0,
        decided_at: time::now_string(),
    };
    if partner.site.is_none() && decision.outcome != "spam" {
        negotiation.reason = Some(match &negotiation.reason {
            Some(r) => format!("{r}; the sender names no site of theirs"),
            None => "the sender names no site of theirs".into(),
        });
    }
    // The reply's send (with its own 2-credit reservation), when there is one.
    let mut send_ops_list = Vec::new();
    if let (Some((subject, body, waits)), Some(rel), Some(contact)) = (&reply, &partner.rel, &partner.contact) {
        let mailbox = match msg.mailbox_id.as_deref().filter(|m| *m != linkcrm_outreach::platform_mailbox::ID) {
            Some(m) => send_email::resolve_mailbox(app, &ws, Some(m)).await,
            None => send_email::resolve_mailbox(app, &ws, None).await,
        };
        if let Ok(mailbox) = mailbox {
            let mut references = msg.references.clone();
            references.extend(msg.message_id.clone());
            let reason = match (&decision.gate, &decision.reason) {
                (Some(g), Some(r)) => format!("{}: {r}", g["name"].as_str().unwrap_or("gate")),
                (None, Some(r)) => r.clone(),
                _ => "The negotiator drafted this reply".into(),
            };
            let (ops, body_view, _) = send_email::send_ops(
                ctx.workspace_record(),
                &mailbox,
                NewSend {
                    rel_id: rel.id(),
                    contact_id: contact,
                    to: msg.from.as_deref().unwrap_or_default(),
                    subject,
                    body,
                    html: None,
                    schedule_at: None,
                    campaign_id: settings.campaign_id.as_deref(),
                    follow_up: None,
                    track_opens: false,
                    reply: Some(ReplySend {
                        in_reply_to: msg.message_id.clone(),
                        references,
                        inbound_message_id: msg.id.clone(),
                        needs_approval: Some(*waits),
                        approval_reason: Some(reason),
                    }),
                },
            )?;
            negotiation.invocation_id = body_view["invocationId"].as_str().map(str::to_owned);
            negotiation.approval_id = body_view["approvalId"].as_str().map(str::to_owned);
            send_ops_list = ops;
        } else if decision.outcome == "auto_replied" {
            negotiation.outcome = "escalated".into();
            negotiation.reason = Some("no mailbox to reply from".into());
        }
    }
    let attempt = |with_send: bool, n: &Negotiation| -> Result<Vec<TxOp>, linkcrm_jobs::JobError> {
        let g = keys::negotiation_guard(&msg.id, round);
        let mut ops = vec![
            TxOp::put_if(
                obj(
                    json!({ "PK": g.pk, "SK": g.sk, "entity": "negotiation", "messageId": msg.id, "outcome": n.outcome }),
                ),
                Condition::NotExists,
            ),
            inbound_msg::negotiation_op(&msg.id, n),
        ];
        if with_send {
            ops.extend(send_ops_list.iter().cloned());
        }
        // The message as the API shows it once this decision is on it.
        let mut decided = msg.clone();
        decided.negotiation = Some(n.clone());
        let summary = json!({ "id": msg.id, "outcome": n.outcome, "intent": n.intent, "relationshipId": n.relationship_id,
                              "reason": n.reason, "decidedBy": n.decided_by, "invocationId": n.invocation_id,
                              "approvalId": n.approval_id, "message": decided,
                              "previous": { "negotiation": msg.negotiation } });
        if n.outcome == "escalated" {
            ops.push(outbox::event("link_building.inbound.escalated", Some(&ws), summary.clone()));
        }
        // A reply that waits for approval says so itself (`agent.invocation.awaiting_approval`,
        // written by the send path with its invocation).
        ops.push(outbox::event("link_building.inbound.negotiated", Some(&ws), summary));
        if let Some(at) = decision.hold_until {
            ops.push(linkcrm_core::jobkinds::inbound_negotiate_op(&msg.id, &ws, Some(at))?);
        }
        Ok(ops)
    };
    let with_send = !send_ops_list.is_empty();
    match record(ctx, msg, partner, &negotiation, attempt(with_send, &negotiation)).await? {
        Recorded::Done | Recorded::AlreadyDecided => Ok(()),
        Recorded::Refused if with_send => {
            // The reply's reservation failed: the pool cannot pay for it.
            negotiation.outcome = "escalated".into();
            negotiation.reason = Some("insufficient_credits".into());
            negotiation.invocation_id = None;
            negotiation.approval_id = None;
            match record(ctx, msg, partner, &negotiation, attempt(false, &negotiation)).await? {
                Recorded::Refused => Err(ApiError::conflict("conflict", "the negotiation could not be recorded")),
                _ => Ok(()),
            }
        }
        Recorded::Refused => Err(ApiError::conflict("conflict", "the negotiation could not be recorded")),
    }
}

enum Recorded {
    Done,
    AlreadyDecided,
    /// A condition of the parts failed and the decision is not recorded.
    Refused,
}

/// Commits the decision: with INBOUND_REQUEST on the relationship when there is one.
async fn record(
    ctx: &Ctx,
    msg: &InboundMessage,
    partner: &Partner,
    n: &Negotiation,
    ops: Result<Vec<TxOp>, linkcrm_jobs::JobError>,
) -> ApiResult<Recorded> {
    let ops = ops.map_err(|e| {
        tracing::error!(error = %e, "negotiation job rejected by the queue");
        ApiError::internal()
    })?;
    let guard = ops.first().and_then(TxOp::key);
    // The request is on the relationship's log once: a held request's later rounds add no event.
    let first_round = guard.as_ref().is_some_and(|k| k.sk == "001");
    let outcome = match partner.rel.as_ref().filter(|_| first_round) {
        Some(rel) => {
            let new = NewEvent {
                r#type: EventType::InboundRequest,
                contact_id: None,
                subject: Some(msg.subject.chars().take(998).collect()).filter(|s: &String| !s.is_empty()),
                content: Some(msg.text.chars().take(20_000).collect()).filter(|s: &String| !s.trim().is_empty()),
                metadata: Some(json!({
                    "inboundMessageId": msg.id, "messageId": msg.message_id, "intent": n.intent,
                    "outcome": n.outcome, "decidedBy": n.decided_by, "reason": n.reason,
                    "amountMentioned": n.facts.get("amountMentioned"), "invocationId": n.invocation_id,
                    "contactId": n.contact_id,
                })),
                occurred_at: None,
            };
            let parts = ops.clone();
            let ride = Ride { ops: Some(Box::new(move |_event| Ok(parts.clone()))), ..Ride::default() };
            match write::record_event(&ctx.app, &ctx.caller.agency_id, ctx.workspace(), rel.id(), new, ride, None).await
            {
                Ok(_) => Ok(()),
                Err(write::EventError::RideConditionFailed) => Err(StoreError::ConditionFailed { op: None }),
                Err(e) => return Err(e.into()),
            }
        }
        None => ctx.app.store.transact(ops).await,
    };
    match outcome {
        Ok(()) => Ok(Recorded::Done),
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
            let decided = match guard {
                Some(k) => ctx.app.store.get(&k).await?.is_some(),
                None => false,
            };
            Ok(if decided { Recorded::AlreadyDecided } else { Recorded::Refused })
        }
        Err(e) => Err(e.into()),
    }
}
