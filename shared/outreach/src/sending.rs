//! The send job: delivers one approved `link_building.campaign.send_email` invocation, at most once.
//!
//! The API commits the invocation, its 2-credit reservation and (when no approval is needed) the
//! job in one transaction (`ops::crm::send_email`). This handler:
//!
//! 1. claims the invocation (PENDING → RUNNING, conditional on its version);
//! 2. checks policy *at send time* through `check_policy` — the same function
//!    `POST /v1/policy/validate` answers with (account DO_NOT_CONTACT, suppression, cooling off,
//!    per-mailbox and per-recipient-domain daily caps, the same message within 24 h). A blocked
//!    send fails the invocation with `send_blocked`, releases the reservation and records
//!    SEND_BLOCKED; it is never retried into sending;
//! 3. writes `SENDCLAIM#<invocationId>` (NotExists) with the chosen Message-ID and a lease,
//!    together with the duplicate guard and one more on the day's cap counters (each only while
//!    under its cap), before talking SMTP. A claim refused because a concurrent send took the last
//!    of a cap is decided again from fresh counts (policy first), a few times in place;
//! 4. sends; on acceptance commits ONE transaction: EMAIL_SENT through `record_event` (so every
//!    derived field moves as for a manual event, and the `MSGID#<message id>` reply key is written
//!    with it), plus, riding along (`write::Ride::ops`), the claim's result (the event id), the
//!    `SENDSUBJ#` subject guard, and the invocation's SUCCEEDED with its charge.
//!
//! So a send's completion is all or nothing: EMAIL_SENT, the reply key, the claim's result,
//! SUCCEEDED and the charge either all exist or none do. A redelivery after that commit finds the
//! invocation SUCCEEDED and does nothing.
//!
//! A job delivered again that finds a claim without a result waits while the claim's lease lasts
//! (`LINKCRM_SEND_CLAIM_LEASE_SECS`, 180 s, above the mailer's bounded SMTP phases): the claimer
//! may be a duplicate delivery still sending. After the lease it cannot know whether the server
//! got the message (the claimer stopped between the claim and the completion): it records
//! SEND_UNCERTAIN and fails the invocation with `send_uncertain` (without a charge); it never
//! resends. The same happens when the SMTP connection drops after the data was sent. (A RUNNING
//! invocation whose claim has a result can only come from the earlier three-commit completion; it
//! is finished, charged once.)
//!
//! Should a claimer outlive its lease and a redelivery judge the send uncertain meanwhile, the
//! claimer's completion fails on the invocation's version; it then records EMAIL_SENT and the
//! claim's result without the finish, and the invocation stays FAILED `send_uncertain`, uncharged.

use crate::invocations::{self as inv};
use crate::App;
use linkcrm_crm::records::{self, obj, AccountRecord};
use linkcrm_crm::{keys, write};
use linkcrm_domain::derive::CoolingPolicy;
use linkcrm_domain::enums::EventType;
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job};
use linkcrm_mail::{MailError, Mailer, OutgoingEmail, Security, SmtpSettings};
use linkcrm_storage::{Condition, Item, Key, StoreError, TxOp, Update};
use serde_json::{json, Value};
use std::time::Duration;

pub const JOB_KIND: &str = linkcrm_domain::jobs::JobKind::Send.as_str();
pub const SKILL: &str = "link_building.campaign.send_email";
pub const COST_MILLI: i64 = 2000;
/// Deliveries of one job before a mail server that keeps deferring fails the invocation.
pub const MAX_ATTEMPTS: u32 = 5;
const DUPLICATE_WINDOW_SECS: i64 = 24 * 3600;

pub use crate::keys::{
    send_cap_pk as cap_pk, send_claim as claim_key, send_duplicate as duplicate_key, send_subject as subject_key,
};
/// Inbound replies are matched to the relationship by this item (message id without brackets).
pub use linkcrm_crm::keys::message_id as message_key;

/// Sends per recipient domain per UTC day (`LINKCRM_SEND_DOMAIN_DAILY_CAP`, default 3).
pub fn domain_daily_cap() -> i64 {
    std::env::var("LINKCRM_SEND_DOMAIN_DAILY_CAP").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// `LINKCRM_PUBLIC_URL` (default `http://127.0.0.1:3000`), without a trailing slash.
pub fn public_url() -> String {
    std::env::var("LINKCRM_PUBLIC_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:3000".into())
        .trim_end_matches('/')
        .to_owned()
}

pub const UNSUBSCRIBE_SCOPE: &str = "unsubscribe";

pub fn unsubscribe_url(app: &App, ws: &str, email: &str) -> String {
    format!("{}/v1/unsubscribe/{}", public_url(), app.seal_token(UNSUBSCRIBE_SCOPE, &format!("{ws}|{email}")))
}

fn today() -> String {
    time::now_string().chars().take(10).collect()
}

/// The mailbox's SMTP settings, its password resolved (sealed in the item, or a reference).
pub async fn smtp_settings(app: &App, mailbox: &Item) -> Result<SmtpSettings, crate::secret_refs::RefError> {
    use crate::secret_refs::RefError;
    // An OAuth mailbox sends with its access token (XOAUTH2), refreshed as for IMAP.
    let oauth = match crate::oauth::access_token(app, mailbox).await {
        Ok(token) => token,
        Err(e) if e.code == "oauth_unavailable" => return Err(RefError::Unavailable(e.message)),
        Err(e) => return Err(RefError::Missing(e.message)),
    };
    let xoauth2 = oauth.is_some();
    let password = match oauth {
        Some(token) => Some(token),
        None => crate::mailboxes::password_of(app, mailbox).await?,
    };
    Ok(SmtpSettings {
        host: records::str_of(mailbox, "smtpHost").unwrap_or_default().to_owned(),
        port: records::int_of(mailbox, "smtpPort").unwrap_or(587) as u16,
        username: records::str_of(mailbox, "smtpUsername").map(str::to_owned),
        password,
        security: match records::str_of(mailbox, "security") {
            Some("none") => Security::None,
            Some("tls") => Security::Tls,
            _ => Security::StartTls,
        },
        // Only the platform mailbox comes from the server's configuration; tenants' are theirs.
        operator_configured: records::str_of(mailbox, "id") == Some(crate::platform_mailbox::ID),
        xoauth2,
    })
}

fn retry(job: &Job, e: &dyn std::fmt::Display) -> HandlerError {
    tracing::warn!(job = %job.id, error = %e, "send job will be retried");
    HandlerError::Retry { after: Duration::from_secs(2) }
}

async fn reload(app: &App, id: &str, job: &Job) -> Result<Option<Item>, HandlerError> {
    app.store.get(&inv::key(id)).await.map_err(|e| retry(job, &e))
}

/// Handles one `send` job; `receive_count` is the delivery number (1 on the first).
pub async fn handle(app: &App, mailer: &dyn Mailer, job: &Job, receive_count: u32) -> Result<(), HandlerError> {
    let Some(id) = job.payload.get("invocationId").and_then(Value::as_str) else {
        return Err(HandlerError::Fail("send job without invocationId".into()));
    };
    let Some(item) = reload(app, id, job).await? else { return Ok(()) };
    let item = match inv::status(&item) {
        inv::Status::Pending => {
            // A paused campaign holds its sends; a cancelled one ends them.
            if let crate::campaign_gate::Gate::Done = crate::campaign_gate::check(app, &item).await? {
                return Ok(());
            }
            match app.store.transact(vec![inv::transition(&item, inv::Status::Running, vec![])]).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    return Err(HandlerError::Retry { after: Duration::from_millis(200) })
                }
                Err(e) => return Err(retry(job, &e)),
            }
            match reload(app, id, job).await? {
                Some(i) => i,
                None => return Ok(()),
            }
        }
        // Delivered again after a worker stopped: safe only if it never claimed the send.
        inv::Status::Running => item,
        _ => return Ok(()),
    };
    let claim = app.store.get(&claim_key(id)).await.map_err(|e| retry(job, &e))?;
    if let Some(claim) = claim {
        // Claimed, no result yet: while the claimer's lease lasts it may still be talking SMTP (a
        // duplicate delivery running alongside it); look again when the lease is over.
        let lease_left = records::int_of(&claim, "leaseUntil").unwrap_or(0) - linkcrm_storage::now_epoch();
        if claim.get("eventId").is_none() && lease_left > 0 {
            return Err(HandlerError::Retry { after: Duration::from_secs(lease_left as u64 + 1) });
        }
        return settle_claimed(app, job, &item, &claim, "The job was delivered again after the send was claimed").await;
    }
    // Policy, then the claim. A claim refused because another send took the last of a cap (or
    // the guard) meanwhile is decided again from fresh counts, here, a few times.
    let mut attempt = 0;
    let (ctx, verdict, message_id) = loop {
        attempt += 1;
        let ctx = match load_context(app, &item).await {
            Ok(c) => c,
            Err(Loaded::Store(e)) => return Err(retry(job, &e)),
            Err(Loaded::Gone(message)) => {
                let p = inv::problem(422, "send_invalid", &message);
                return finish(app, &item, inv::Status::Failed, 0, Value::Null, p).await;
            }
        };
        // Approved for one address, sent only there: a contact whose email changed since (another
        // workspace's edit, a typo fixed) needs a new decision, not a silent redirect.
        if let Some(current) = &ctx.current_email {
            let reason = json!({ "code": "recipient_changed",
                "message": "The contact's email changed after this send was requested; request it again to approve the new address",
                "approvedTo": ctx.to, "currentEmail": current });
            return blocked(app, job, &item, &ctx, vec![reason]).await;
        }
        let verdict = match check_policy(app, &ctx.policy_input()).await {
            Ok(v) => v,
            Err(e) => return Err(retry(job, &e.to_string())),
        };
        if !verdict.reasons.is_empty() {
            return blocked(app, job, &item, &ctx, verdict.reasons).await;
        }
        let message_id =
            linkcrm_mail::new_message_id(ctx.from_address.rsplit_once('@').map(|(_, d)| d).unwrap_or("linkcrm"));
        match app.store.transact(claim_ops(id, &ctx, &verdict, &message_id)).await {
            Ok(()) => break (ctx, verdict, message_id),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) if attempt < 4 => {
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            // A duplicate delivery claimed it, or the store keeps refusing: look again later.
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                return Err(HandlerError::Retry { after: Duration::from_millis(300) })
            }
            Err(e) => return Err(retry(job, &e)),
        }
    };

    let email = OutgoingEmail {
        from_name: ctx.from_name.clone(),
        from_address: ctx.from_address.clone(),
        to: ctx.to.clone(),
        subject: ctx.subject.clone(),
        body_text: ctx.body.clone(),
        message_id: message_id.clone(),
        // A follow-up answers the send before it, in the same thread.
        in_reply_to: item.get("input").and_then(|i| i.get("inReplyTo")).and_then(Value::as_str).map(str::to_owned),
        references: item
            .get("input")
            .and_then(|i| i.get("references"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        unsubscribe_url: unsubscribe_url(app, &ctx.ws, &ctx.to),
        extra_headers: vec![("X-Linkcrm-Invocation".into(), id.to_owned())],
        body_html: item.get("input").and_then(|i| i.get("htmlBody")).and_then(Value::as_str).map(str::to_owned),
        tracking_pixel_url: item
            .get("input")
            .and_then(|i| i.get("trackOpens"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .then(|| crate::opens::pixel_url(app, id)),
    };
    let result = mailer.send(&ctx.smtp, &email).await;
    // The mailbox's SMTP health, from what its server just did (a recipient refused is the
    // server working; an outcome not known says nothing).
    let outcome = match &result {
        Ok(_) | Err(MailError::Rejected { .. }) => Some(linkcrm_core::health::Outcome::Ok),
        Err(MailError::Uncertain(_)) => None,
        Err(MailError::Deferred { .. }) => Some(linkcrm_core::health::Outcome::Failed {
            code: "smtp_deferred",
            message: "The mail server deferred the message.",
        }),
        Err(_) => Some(linkcrm_core::health::Outcome::Failed {
            code: "smtp_unavailable",
            message: "The mail server could not be reached or refused the session.",
        }),
    };
    let answer = async {
        match result {
            Ok(_) => sent(app, job, &item, &ctx, &message_id).await,
            Err(MailError::Uncertain(m)) => uncertain(app, job, &item, &message_id, &m).await,
            Err(e @ (MailError::Deferred { .. } | MailError::Unavailable(_))) => {
                // Nothing was delivered: undo the claim so that a later delivery may send.
                let dup = duplicate_key(&ctx.ws, &ctx.contact_id, &ctx.subject, &ctx.body);
                let mut undo = vec![TxOp::delete(claim_key(id)), TxOp::delete(dup)];
                for k in [&verdict.mailbox_counter, &verdict.domain_counter] {
                    undo.push(TxOp::update(k.clone(), Update::new().add("count", -1)));
                }
                if receive_count >= MAX_ATTEMPTS {
                    app.store.transact(undo).await.map_err(|e| retry(job, &e))?;
                    let p = inv::problem(
                        503,
                        "provider_unavailable",
                        &format!("The mail server could not take the message: {e}"),
                    );
                    return finish(app, &item, inv::Status::Failed, 0, Value::Null, p).await;
                }
                undo.push(inv::transition(&item, inv::Status::Pending, vec![]));
                match app.store.transact(undo).await {
                    Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                    Err(err) => return Err(retry(job, &err)),
                }
                tracing::warn!(job = %job.id, error = %e, "mail server deferred; the send will be tried again");
                Err(HandlerError::Retry { after: Duration::from_secs(5) })
            }
            Err(e) => {
                let (code, status) = match e {
                    MailError::Rejected { .. } => ("smtp_rejected", 422),
                    _ => ("send_invalid", 422),
                };
                finish(app, &item, inv::Status::Failed, 0, Value::Null, inv::problem(status, code, &e.to_string()))
                    .await
            }
        }
    }
    .await;
    // Recorded after the send's own commit, so nothing waits on it.
    if let Some(o) = outcome {
        linkcrm_core::health::record(app, &ctx.ws, &format!("smtp:{}", ctx.mailbox_id), o).await;
    }
    answer
}

/// Ends an invocation whose send was claimed and whose claimer is gone, without sending: a claim
/// with a result was sent and recorded (only a claim from the earlier three-commit completion can
/// have one while the invocation is still RUNNING), so it is finished and charged; one without is
/// SEND_UNCERTAIN (`why` says how it came to be judged).
pub async fn settle_claimed(app: &App, job: &Job, item: &Item, claim: &Item, why: &str) -> Result<(), HandlerError> {
    let message_id = records::str_of(claim, "messageId").unwrap_or_default();
    match records::str_of(claim, "eventId") {
        Some(event_id) => {
            let result = json!({ "eventId": event_id, "messageId": message_id });
            finish(app, item, inv::Status::Succeeded, COST_MILLI, result, Value::Null).await
        }
        None => uncertain(app, job, item, message_id, why).await,
    }
}

/// How long a claimer may still be sending: the mailer's phases are bounded at 30 s each
/// (`LINKCRM_SEND_CLAIM_LEASE_SECS`, default 180).
fn claim_lease_secs() -> i64 {
    std::env::var("LINKCRM_SEND_CLAIM_LEASE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(180)
}

/// The claim, written before any SMTP: the claim item (with its lease), the duplicate guard, and
/// one more on the day's mailbox and recipient-domain counters, each only while under its cap (a
/// quota condition, so concurrent sends from one mailbox do not conflict until the cap is near).
fn claim_ops(id: &str, ctx: &SendCtx, verdict: &Verdict, message_id: &str) -> Vec<TxOp> {
    let now = linkcrm_storage::now_epoch();
    let dup = duplicate_key(&ctx.ws, &ctx.contact_id, &ctx.subject, &ctx.body);
    let mut ops = vec![
        TxOp::put_if(
            obj(json!({ "PK": claim_key(id).pk, "SK": "#", "entity": "sendClaim", "invocationId": id,
                        "messageId": message_id, "mailboxId": ctx.mailbox_id, "claimedAt": time::now_string(),
                        "to": ctx.to,
                        "leaseUntil": now + claim_lease_secs() })),
            Condition::NotExists,
        ),
        TxOp::put_if(
            obj(json!({ "PK": dup.pk, "SK": dup.sk, "entity": "sendGuard", "invocationId": id,
                        "ttl": now + DUPLICATE_WINDOW_SECS })),
            Condition::NotExists,
        ),
    ];
    for (k, cap) in [(&verdict.mailbox_counter, verdict.mailbox_cap), (&verdict.domain_counter, verdict.domain_cap)] {
        ops.push(TxOp::update_if(
            k.clone(),
            Update::new().add("count", 1).set("ttl", now + 3 * 24 * 3600),
            Condition::Below("count".into(), cap),
        ));
    }
    ops
}

struct SendCtx {
    ws: String,
    agency: String,
    rel_id: String,
    contact_id: String,
    /// The address the request (and its approval) named.
    to: String,
    /// The contact's address now, when it is no longer `to`.
    current_email: Option<String>,
    subject: String,
    body: String,
    account: AccountRecord,
    mailbox_id: String,
    from_name: String,
    from_address: String,
    smtp: SmtpSettings,
    mailbox: Item,
}

impl SendCtx {
    /// Everything the send-time policy looks at: the send knows its account, contact and message.
    fn policy_input(&self) -> PolicyInput<'_> {
        PolicyInput {
            ws: &self.ws,
            agency: &self.agency,
            to: &self.to,
            mailbox: &self.mailbox,
            account: Some(&self.account),
            contact_id: Some(&self.contact_id),
            subject: Some(&self.subject),
            body: Some(&self.body),
        }
    }
}

enum Loaded {
    Store(String),
    Gone(String),
}

async fn load_context(app: &App, item: &Item) -> Result<SendCtx, Loaded> {
    let store = |e: &dyn std::fmt::Display| Loaded::Store(e.to_string());
    let input = item.get("input").cloned().unwrap_or_default();
    let s = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let ws = records::str_of(item, "workspaceId").unwrap_or_default().to_owned();
    let agency = records::str_of(item, "agencyId").unwrap_or_default().to_owned();
    let (rel_id, contact_id, mailbox_id) = (s("relationshipId"), s("contactId"), s("mailboxId"));
    let rel = match write::load_relationship(app, &ws, &rel_id).await {
        Ok(r) => r,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            return Err(Loaded::Gone("The relationship no longer exists".into()))
        }
        Err(e) => return Err(Loaded::Store(e.message)),
    };
    let account = match write::load_account(app, rel.account_id()).await {
        Ok(a) => a,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            return Err(Loaded::Gone("The account no longer exists".into()))
        }
        Err(e) => return Err(Loaded::Store(e.message)),
    };
    let contact = match app.store.get(&keys::contact(&contact_id)).await.map_err(|e| store(&e))? {
        Some(c) => records::contact_view(&c).map_err(|e| Loaded::Store(e.to_string()))?,
        None => return Err(Loaded::Gone("The contact no longer exists".into())),
    };
    let Some(email) = contact.email else { return Err(Loaded::Gone("The contact has no email address".into())) };
    // Invocations carry the address they were requested for; `to` is it, whatever the contact says now.
    let to = Some(s("to")).filter(|t| !t.is_empty()).unwrap_or_else(|| email.clone());
    let current_email = (!email.eq_ignore_ascii_case(&to)).then_some(email);
    let mailbox = if mailbox_id == crate::platform_mailbox::ID {
        crate::platform_mailbox::item().ok_or_else(|| Loaded::Gone("The platform mailbox is not configured".into()))?
    } else {
        app.store
            .get(&crate::keys::mailbox(&ws, mailbox_id.as_str()))
            .await
            .map_err(|e| store(&e))?
            .ok_or_else(|| Loaded::Gone("The mailbox no longer exists".into()))?
    };
    Ok(SendCtx {
        smtp: smtp_settings(app, &mailbox).await.map_err(|e| match e {
            crate::secret_refs::RefError::Missing(m) => Loaded::Gone(format!("The mailbox's password reference: {m}")),
            crate::secret_refs::RefError::Unavailable(m) => Loaded::Store(m),
        })?,
        from_name: records::str_of(&mailbox, "fromName").unwrap_or_default().to_owned(),
        from_address: records::str_of(&mailbox, "fromAddress").unwrap_or_default().to_owned(),
        mailbox,
        subject: s("subject"),
        body: s("body"),
        rel_id,
        contact_id,
        to,
        current_email,
        ws,
        agency,
        account,
        mailbox_id,
    })
}

/// What the sending policy looks at. The send job fills every field; `POST /v1/policy/validate`
/// fills what it knows (a recipient who is not a contact has no account or contact, and a
/// validation may name a subject without a body).
pub struct PolicyInput<'a> {
    pub ws: &'a str,
    /// The workspace's agency: what it may see of platform suppressions' provenance.
    pub agency: &'a str,
    /// The recipient address, normalised.
    pub to: &'a str,
    /// The sending mailbox's stored item (`WS#<ws>#MBXS` / `<id>`).
    pub mailbox: &'a Item,
    /// The recipient's account, when there is one: DO_NOT_CONTACT and cooling off apply to it.
    pub account: Option<&'a AccountRecord>,
    /// The recipient contact, when known: "the same message" is per contact.
    pub contact_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub body: Option<&'a str>,
}

/// The policy's answer: the reasons that block the send now (empty when it may go out), the
/// day's counters it read (the send job claims against exactly these values) and the limits.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `{code, message, ...}` each; codes: do_not_contact, suppressed, cooling_off,
    /// mailbox_daily_cap, domain_daily_cap, duplicate.
    pub reasons: Vec<Value>,
    /// Facts that do not block: rules that could not be applied to what was given, and a subject
    /// seen recently when no body was given (see `check_policy`).
    pub notes: Vec<Value>,
    pub mailbox_id: String,
    /// The mailbox's counter for today (the platform mailbox's is shared by every workspace).
    pub mailbox_counter: Key,
    pub mailbox_sent: i64,
    pub mailbox_cap: i64,
    pub domain: String,
    pub domain_counter: Key,
    pub domain_sent: i64,
    pub domain_cap: i64,
    pub cooling: CoolingPolicy,
    pub cooling_off_until: Option<String>,
    /// Sends to the account counted towards cooling off (the latest, at most `cooling.sends`).
    pub recent_sends: usize,
}

/// The sending policy, one function for the send job (at send time) and for
/// `POST /v1/policy/validate` (ahead of time). Reads, never writes:
///
/// - account DO_NOT_CONTACT and cooling off (only when the account is known);
/// - suppression of the address or its domain, by the workspace or the platform;
/// - the mailbox's and the recipient domain's sends today against their caps;
/// - "the same message" (workspace, contact, subject and body) within 24 hours — only when the
///   contact, subject and body are all known. With a subject but no body (or no contact) it cannot
///   be decided; a message with that subject to this address within 24 hours is then reported in
///   `notes` (`same_subject_recently`), not as a reason, since the send would not be blocked by it.
pub async fn check_policy(app: &App, p: &PolicyInput<'_>) -> crate::error::DataResult<Verdict> {
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let cooling = CoolingPolicy::from_env();
    let mut cooling_off_until = None;
    let mut recent_sends = 0;
    match p.account {
        Some(account) => {
            if account.do_not_contact() {
                reasons.push(json!({ "code": "do_not_contact", "message": "The account is marked DO_NOT_CONTACT" }));
            }
            let facts = account.facts();
            recent_sends = facts.recent_sends.len();
            cooling_off_until = facts.cooling_off_until(cooling);
        }
        None => notes.push(json!({ "code": "account_unknown",
            "message": "No account is known for this recipient: DO_NOT_CONTACT and cooling off do not apply" })),
    }
    let supp = crate::suppression::blocking(&app.store, p.ws, p.to, p.agency).await?;
    for s in supp {
        reasons.push(json!({ "code": "suppressed", "message": format!("{} is on a suppression list", s.value),
                              "suppression": s }));
    }
    // Cooling off starts only after several sends with no reply (CONTRACT.md), from any
    // workspace, so it protects the partner from every sender alike, ourselves included.
    if let Some(until) = cooling_off_until.as_ref().filter(|u| u.as_str() > time::now_string().as_str()) {
        reasons.push(json!({ "code": "cooling_off", "message": format!("The account is cooling off until {until}"),
                              "until": until }));
    }

    // The day's counters and the duplicate guard: one batch read.
    let day = today();
    let mailbox_id = records::str_of(p.mailbox, "id").unwrap_or_default().to_owned();
    let domain = p.to.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
    let mailbox_counter =
        crate::keys::mailbox_send_count(p.ws, crate::platform_mailbox::is_platform(p.mailbox), &mailbox_id, &day);
    let domain_counter = crate::keys::domain_send_count(p.ws, &domain, &day);
    let counter_keys = [mailbox_counter.clone(), domain_counter.clone()];
    let (exact, subject_only) = match (p.contact_id, p.subject, p.body) {
        (Some(c), Some(s), Some(b)) => (Some(duplicate_key(p.ws, c, s, b)), None),
        (_, Some(s), _) => (None, Some(subject_key(p.ws, p.to, s))),
        _ => (None, None),
    };
    let mut wanted: Vec<Key> = counter_keys.to_vec();
    wanted.extend(exact.iter().chain(subject_only.iter()).cloned());
    let found = app.store.batch_get(&wanted).await?;
    let find = |k: &Key| found.iter().find(|i| Key::of(i).as_ref() == Some(k));
    let count = |k: &Key| find(k).and_then(|i| records::int_of(i, "count")).unwrap_or(0);
    let (mailbox_sent, domain_sent) = (count(&counter_keys[0]), count(&counter_keys[1]));
    let mailbox_cap = records::int_of(p.mailbox, "dailyCap").unwrap_or(50);
    if mailbox_sent >= mailbox_cap {
        reasons.push(json!({ "code": "mailbox_daily_cap",
                              "message": format!("The mailbox has sent its {mailbox_cap} emails today") }));
    }
    let domain_cap = domain_daily_cap();
    if domain_sent >= domain_cap {
        reasons.push(json!({ "code": "domain_daily_cap",
                              "message": format!("{domain_cap} emails went to this recipient domain today") }));
    }
    if exact.as_ref().is_some_and(|k| find(k).is_some()) {
        reasons
            .push(json!({ "code": "duplicate", "message": "The same message went to this contact within 24 hours" }));
    }
    if let Some(seen) = subject_only.as_ref().and_then(find) {
        notes.push(json!({ "code": "same_subject_recently",
            "message": "A message with this subject went to this address within 24 hours; a send is blocked as a duplicate only when its body is the same too",
            "sentAt": records::str_of(seen, "sentAt") }));
    }
    Ok(Verdict {
        reasons,
        notes,
        mailbox_id,
        mailbox_counter,
        mailbox_sent,
        mailbox_cap,
        domain,
        domain_counter,
        domain_sent,
        domain_cap,
        cooling,
        cooling_off_until,
        recent_sends,
    })
}

async fn event(
    app: &App,
    c_ws: &str,
    agency: &str,
    rel: &str,
    new: write::NewEvent,
) -> Result<Item, write::EventError> {
    write::record_event(app, agency, c_ws, rel, new, write::Ride::default(), None).await
}

async fn blocked(app: &App, job: &Job, item: &Item, c: &SendCtx, reasons: Vec<Value>) -> Result<(), HandlerError> {
    let id = records::str_of(item, "invocationId").unwrap_or_default();
    let new = write::NewEvent {
        r#type: EventType::SendBlocked,
        contact_id: Some(c.contact_id.clone()),
        subject: Some(c.subject.clone()),
        content: None,
        metadata: Some(json!({ "invocationId": id, "reasons": reasons, "to": c.to })),
        occurred_at: None,
    };
    event(app, &c.ws, &c.agency, &c.rel_id, new).await.map_err(|e| retry(job, &e.to_string()))?;
    let mut p = inv::problem(422, "send_blocked", "Policy blocked this send");
    p["details"] = json!({ "reasons": reasons });
    finish(app, item, inv::Status::Failed, 0, Value::Null, p).await
}

/// The parts that complete an accepted send, around the EMAIL_SENT event `ev`: the claim's result,
/// the subject guard and, when `finish` holds the invocation as read, its SUCCEEDED and charge.
fn completion_ops(
    id: &str,
    guard: &Key,
    message_id: &str,
    ev: &Item,
    finish: Option<&Item>,
) -> crate::error::DataResult<Vec<TxOp>> {
    let event_id = records::str_of(ev, "id").unwrap_or_default().to_owned();
    let now = time::now_string();
    let sk = guard;
    let mut ops = vec![
        TxOp::update(claim_key(id), Update::new().set("eventId", event_id.clone()).set("sentAt", now.clone())),
        TxOp::put(obj(json!({ "PK": sk.pk, "SK": sk.sk, "entity": "sendSubjectGuard", "invocationId": id,
                              "sentAt": now, "ttl": linkcrm_storage::now_epoch() + DUPLICATE_WINDOW_SECS }))),
    ];
    if let Some(item) = finish {
        let result = json!({ "eventId": event_id, "messageId": message_id });
        ops.extend(inv::finish_ops(item, inv::Status::Succeeded, COST_MILLI, result, Value::Null)?);
        // A campaign's send: its campaign schedules the relationship's next follow-up.
        if let Some(campaign) = linkcrm_core::approvals::campaign_of(item) {
            ops.push(linkcrm_core::jobkinds::campaign_sent_op(id, campaign)?);
        }
    }
    Ok(ops)
}

async fn sent(app: &App, job: &Job, item: &Item, c: &SendCtx, message_id: &str) -> Result<(), HandlerError> {
    let id = records::str_of(item, "invocationId").unwrap_or_default();
    let new = write::NewEvent {
        r#type: EventType::EmailSent,
        contact_id: Some(c.contact_id.clone()),
        subject: Some(c.subject.clone()),
        content: Some(c.body.clone()),
        // `campaignId` is null for a manual send (`relationship/{id}/send-email`); campaign steps
        // put theirs in the invocation's input.
        metadata: Some(json!({ "messageId": message_id, "mailboxId": c.mailbox_id, "invocationId": id, "to": c.to,
                               "campaignId": item.get("input").and_then(|i| i.get("campaignId")).cloned()
                                   .unwrap_or(Value::Null) })),
        occurred_at: None,
    };
    // The message is out: from here on never send again, whatever fails. EMAIL_SENT (with its
    // `MSGID#` reply key), the claim's result and the finish commit together or not at all.
    let record = |finish: bool| {
        let ops: write::RideOps = {
            let (id, message_id, item) = (id.to_owned(), message_id.to_owned(), item.clone());
            let guard = subject_key(&c.ws, &c.to, &c.subject);
            Box::new(move |ev: &Item| completion_ops(&id, &guard, &message_id, ev, finish.then_some(&item)))
        };
        let ride = write::Ride { ops: Some(ops), ..write::Ride::default() };
        write::record_event(app, &c.agency, &c.ws, &c.rel_id, new.clone(), ride, None)
    };
    match record(true).await {
        Ok(_) => Ok(()),
        // The invocation moved since it was read: a redelivery already judged this send uncertain
        // (see the known limit above). The message did go out: record it, without finishing.
        Err(write::EventError::RideConditionFailed) => {
            tracing::warn!(
                invocation = id,
                "the invocation moved during the send; EMAIL_SENT recorded without finishing"
            );
            record(false).await.map(|_| ()).map_err(|e| retry(job, &e.to_string()))
        }
        Err(e) => {
            tracing::error!(invocation = id, error = %e, "EMAIL_SENT could not be recorded after the send");
            Err(retry(job, &e.to_string()))
        }
    }
}

pub(crate) async fn uncertain(
    app: &App,
    job: &Job,
    item: &Item,
    message_id: &str,
    why: &str,
) -> Result<(), HandlerError> {
    let id = records::str_of(item, "invocationId").unwrap_or_default();
    let input = item.get("input").cloned().unwrap_or_default();
    let ws = records::str_of(item, "workspaceId").unwrap_or_default();
    let agency = records::str_of(item, "agencyId").unwrap_or_default();
    let rel = input.get("relationshipId").and_then(Value::as_str).unwrap_or_default();
    let new = write::NewEvent {
        r#type: EventType::SendUncertain,
        contact_id: input.get("contactId").and_then(Value::as_str).map(str::to_owned),
        subject: input.get("subject").and_then(Value::as_str).map(str::to_owned),
        content: None,
        metadata: Some(json!({ "messageId": message_id, "invocationId": id, "reason": why })),
        occurred_at: None,
    };
    event(app, ws, agency, rel, new).await.map_err(|e| retry(job, &e.to_string()))?;
    let p = inv::problem(
        502,
        "send_uncertain",
        &format!("The message may or may not have been delivered ({why}); it is not sent again."),
    );
    finish(app, item, inv::Status::Failed, 0, json!({ "messageId": message_id }), p).await
}

async fn finish(
    app: &App,
    item: &Item,
    status: inv::Status,
    used: i64,
    result: Value,
    error: Value,
) -> Result<(), HandlerError> {
    inv::commit_finish(app, item, inv::Outcome { status, used, result, error }, vec![]).await
}
