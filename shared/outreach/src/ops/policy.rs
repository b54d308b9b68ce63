//! `POST /v1/policy/validate` (seed 003's Validate Policy): would a send from one of the
//! workspace's mailboxes to this address be allowed right now, and why not?
//!
//! The answer comes from `sending::check_policy`, the very function the send job applies at send
//! time, so a validation and the send that follows it (with nothing changed in between) agree on
//! every reason code. It only reads: nothing is sent, reserved, counted or recorded.
//!
//! What it knows about the recipient decides which rules apply:
//! - a known contact (by email): its account's DO_NOT_CONTACT and cooling off apply; with
//!   `subject` and `body` the "same message within 24 h" rule is checked exactly as a send is;
//! - an unknown address: the account of its domain, if there is one, stands in (DO_NOT_CONTACT is
//!   account-wide); with no such account those rules do not apply (a note says so);
//! - suppression and both daily caps always apply;
//! - a `subject` without a `body` cannot decide "the same message" (it includes the body): a
//!   message with that subject sent to this address within 24 h is reported as the note
//!   `same_subject_recently`, which does not make `allowed` false.

use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::sending::{self, PolicyInput};
use axum::http::StatusCode;
use linkcrm_crm::records::{self, AccountRecord};
use linkcrm_crm::{keys, write};
use linkcrm_domain::normalize::normalize_email;
use linkcrm_storage::{Item, Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TAG: &str = "Sending policy";

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Validate>()]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateInput {
    /// The address the email would go to.
    #[schemars(pattern(crate::rules::EMAIL))]
    pub recipient_email: String,
    /// The `fromAddress` of one of this workspace's active mailboxes; without it (and without
    /// `mailboxId`), the mailbox a send would go from: the workspace's first active one.
    #[schemars(pattern(crate::rules::EMAIL))]
    pub sender_email: Option<String>,
    /// The mailbox by id instead of by address.
    pub mailbox_id: Option<crate::ids::Id<crate::ids::SendingMailbox>>,
    /// Enables the duplicate check: with `body` exactly as a send does it, alone as a note.
    #[schemars(length(max = 998), pattern(crate::rules::ONE_LINE))]
    pub subject: Option<String>,
    /// With `subject`, checks "the same message within 24 hours" for a known contact.
    #[schemars(length(max = 100000))]
    pub body: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub email: String,
    pub domain: String,
    /// The contact with this email, when there is one.
    pub contact_id: Option<String>,
    /// The account whose DO_NOT_CONTACT and cooling off were applied (the contact's, else the
    /// domain's); null when none is known.
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SenderMailbox {
    pub id: String,
    pub from_address: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Sends claimed from this mailbox today (UTC).
    pub mailbox_sends_today: i64,
    /// Sends claimed from this workspace to the recipient's domain today (UTC).
    pub domain_sends_today: i64,
    /// The account's latest sends counted towards cooling off (any workspace); null without an
    /// account.
    pub account_recent_sends: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoolingOff {
    /// Sends without a reply after which the account cools off.
    pub after_sends: usize,
    /// How long it cools off after the last of them.
    pub days: i64,
    /// When the account's cooling off ends (past or future); null when it never started.
    pub until: Option<String>,
    /// Whether the account is cooling off now.
    pub active: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub mailbox_daily_cap: i64,
    pub domain_daily_cap: i64,
    pub mailbox_remaining_today: i64,
    pub domain_remaining_today: i64,
    pub cooling_off: CoolingOff,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// True when a send now would not be blocked (`reasons` is empty).
    pub allowed: bool,
    /// Each `{code, message, ...}`, the same codes a blocked send carries in
    /// `error.details.reasons`: do_not_contact, suppressed, cooling_off, mailbox_daily_cap,
    /// domain_daily_cap, duplicate.
    pub reasons: Vec<Value>,
    /// Facts that do not block: account_unknown, same_subject_recently.
    pub notes: Vec<Value>,
    /// Which duplicate rule was checked: `message` (contact, subject and body, as a send),
    /// `subject` (subject to this address: a note only) or `none`.
    pub duplicate_check: String,
    pub recipient: Recipient,
    pub mailbox: SenderMailbox,
    pub counts: Counts,
    pub limits: Limits,
    /// The workspace's recorded legal basis for outreach (`settings.legalBasis`):
    /// `legitimate_interest` (the default), `consent` or `contract`.
    pub legal_basis: String,
}

/// The workspace's active mailbox sending as `address` (normalised).
async fn mailbox_of(ctx: &Ctx, ws: &str, address: &str) -> ApiResult<Item> {
    let mut cursor = None;
    loop {
        let page =
            ctx.app.store.query(Query::partition(crate::keys::mailboxes_pk(ws)).limit(100).after(cursor)).await?;
        let found = page.items.into_iter().find(|m| {
            m.get("active").and_then(Value::as_bool).unwrap_or(true)
                && records::str_of(m, "fromAddress").is_some_and(|a| a.eq_ignore_ascii_case(address))
        });
        if let Some(m) = found {
            return Ok(m);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if let Some(m) = crate::platform_mailbox::item()
        .filter(|m| records::str_of(m, "fromAddress").is_some_and(|a| a.eq_ignore_ascii_case(address)))
    {
        return Ok(m);
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "mailbox_not_found",
        format!("No active mailbox of this workspace sends as '{address}'; see GET /v1/mailboxes."),
    )
    .with_details(json!({ "senderEmail": address })))
}

pub struct Validate;
impl Operation for Validate {
    const NAME: &'static str = "policy.validate";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Outreach;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Check a send against the sending policy (suppression, DO_NOT_CONTACT, cooling off, daily caps, duplicates) without sending";
    const TAG: &'static str = TAG;
    type Input = ValidateInput;
    type Output = Validation;

    async fn run(ctx: Ctx, input: ValidateInput) -> ApiResult<Reply<Validation>> {
        let ws = ctx.workspace().to_owned();
        let to = normalize_email(&input.recipient_email)
            .ok_or_else(|| ApiError::invalid_field("recipientEmail", "invalid_email", "is not an email address"))?;
        let subject = crate::validate::header_text("subject", input.subject, 998)?;
        let body = crate::validate::text("body", input.body, 100_000)?;
        let mailbox = match (&input.sender_email, &input.mailbox_id) {
            // Both: the mailbox named, which must send as the address given.
            (Some(sender), Some(id)) => {
                let m = crate::ops::send_email::resolve_mailbox(&ctx.app, &ws, Some(id.as_str())).await?;
                let same = normalize_email(sender)
                    .is_some_and(|s| records::str_of(&m, "fromAddress").is_some_and(|a| a.eq_ignore_ascii_case(&s)));
                if !same {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "mailbox_not_found",
                        format!("Mailbox {} does not send as '{sender}'.", id.as_str()),
                    )
                    .with_details(json!({ "senderEmail": sender, "mailboxId": id.as_str() })));
                }
                m
            }
            (Some(sender), None) => {
                let from = normalize_email(sender).ok_or_else(|| {
                    ApiError::invalid_field("senderEmail", "invalid_email", "is not an email address")
                })?;
                mailbox_of(&ctx, &ws, &from).await?
            }
            (None, id) => {
                crate::ops::send_email::resolve_mailbox(&ctx.app, &ws, id.as_ref().map(|i| i.as_str())).await?
            }
        };
        let domain = to.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();

        // The recipient: a contact (and its account), else the account of its domain.
        let guard = ctx.app.store.get(&keys::email_guard(&to)).await?;
        let contact_id = guard.as_ref().and_then(|g| records::str_of(g, "contactId")).map(str::to_owned);
        let account: Option<AccountRecord> = match guard.as_ref().and_then(|g| records::str_of(g, "accountId")) {
            Some(acct) => ctx.app.store.get(&keys::account(acct)).await?.map(AccountRecord),
            None => match linkcrm_domain::normalize::normalize_domain(&domain) {
                Ok(d) => write::account_by_domain(&ctx.app, &d).await?,
                Err(_) => None,
            },
        };

        let verdict = sending::check_policy(
            &ctx.app,
            &PolicyInput {
                agency: &ctx.caller.agency_id,
                ws: &ws,
                to: &to,
                mailbox: &mailbox,
                account: account.as_ref(),
                contact_id: contact_id.as_deref(),
                subject: subject.as_deref(),
                body: body.as_deref(),
            },
        )
        .await?;
        let duplicate_check = match (&contact_id, &subject, &body) {
            (Some(_), Some(_), Some(_)) => "message",
            (_, Some(_), _) => "subject",
            _ => "none",
        };
        let now = linkcrm_domain::time::now_string();
        let cooling_active = verdict.cooling_off_until.as_deref().is_some_and(|u| u > now.as_str());
        let validation = Validation {
            allowed: verdict.reasons.is_empty(),
            duplicate_check: duplicate_check.into(),
            recipient: Recipient {
                email: to,
                domain,
                contact_id,
                account_id: account.as_ref().map(|a| a.id().to_owned()),
            },
            mailbox: SenderMailbox {
                id: verdict.mailbox_id.clone(),
                from_address: records::str_of(&mailbox, "fromAddress").unwrap_or_default().to_owned(),
            },
            counts: Counts {
                mailbox_sends_today: verdict.mailbox_sent,
                domain_sends_today: verdict.domain_sent,
                account_recent_sends: account.as_ref().map(|_| verdict.recent_sends),
            },
            limits: Limits {
                mailbox_daily_cap: verdict.mailbox_cap,
                domain_daily_cap: verdict.domain_cap,
                mailbox_remaining_today: (verdict.mailbox_cap - verdict.mailbox_sent).max(0),
                domain_remaining_today: (verdict.domain_cap - verdict.domain_sent).max(0),
                cooling_off: CoolingOff {
                    after_sends: verdict.cooling.sends,
                    days: verdict.cooling.days,
                    until: verdict.cooling_off_until.clone(),
                    active: cooling_active,
                },
            },
            reasons: verdict.reasons,
            notes: verdict.notes,
            legal_basis: linkcrm_core::workspace::from_record(ctx.workspace_record())?
                .settings
                .legal_basis
                .unwrap_or(linkcrm_domain::platform::LegalBasis::LegitimateInterest)
                .as_str()
                .to_owned(),
        };
        // A question, not a creation: 200.
        Ok(Reply { status: Some(StatusCode::OK), body: Some(validation), version: None })
    }
}
