//! A campaign's drafts (its send invocations, CONTRACT "Campaigns"), bulk approval and rejection,
//! and seed 001's one-off `send-email` within a campaign.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::invocations as inv;
use crate::list::ListResponse;
use crate::ops::campaigns::load;
use crate::records::{self as rec};
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_crm::records::{obj, str_of};
use linkcrm_storage::{Item, Key, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const TAG: &str = "Campaigns";

/// A draft's status as lists show it (CONTRACT).
pub fn draft_status(invocation: &Item) -> &'static str {
    let code = invocation.get("error").and_then(|e| e.get("code")).and_then(Value::as_str).unwrap_or("");
    match inv::status(invocation) {
        inv::Status::WaitingApproval => "awaiting_approval",
        inv::Status::Pending | inv::Status::Running => "approved",
        inv::Status::Succeeded => "sent",
        inv::Status::Cancelled if code == "rejected" => "rejected",
        inv::Status::Cancelled if code == "approval_expired" => "expired",
        inv::Status::Cancelled => "cancelled",
        inv::Status::Failed if code == "send_blocked" => "blocked",
        inv::Status::Failed => "failed",
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Draft {
    /// The send invocation's id (`inv_…`).
    pub id: String,
    pub campaign_id: String,
    pub relationship_id: Option<String>,
    pub contact_id: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub scheduled_at: Option<String>,
    /// awaiting_approval, approved, sent, rejected, blocked, failed, cancelled, expired.
    pub status: String,
    pub approval_id: Option<String>,
    pub created_at: Option<String>,
    /// When the email went out (sends that did), and its `Message-ID`.
    pub sent_at: Option<String>,
    pub message_id: Option<String>,
    /// A follow-up's step (1 for the first), null for a first email.
    pub follow_up_step: Option<i64>,
    pub error: Option<Value>,
}

fn draft_view(campaign: &str, item: &Item) -> Draft {
    let input = item.get("input").cloned().unwrap_or_default();
    let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    Draft {
        id: str_of(item, "invocationId").unwrap_or_default().to_owned(),
        campaign_id: campaign.to_owned(),
        relationship_id: s("relationshipId"),
        contact_id: s("contactId"),
        to: s("to"),
        subject: s("subject"),
        body: s("body"),
        scheduled_at: s("scheduleAt"),
        status: draft_status(item).to_owned(),
        approval_id: str_of(item, "approvalId").map(str::to_owned),
        created_at: str_of(item, "createdAt").map(str::to_owned),
        sent_at: (draft_status(item) == "sent").then(|| str_of(item, "updatedAt").map(str::to_owned)).flatten(),
        message_id: item
            .get("result")
            .and_then(|r| r.get("messageId"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        follow_up_step: input.get("followUpStep").and_then(Value::as_i64),
        error: item.get("error").filter(|e| !e.is_null()).cloned(),
    }
}

/// One page of a campaign's drafts, oldest first, with their invocations (one Query and one
/// batch read).
async fn page(
    ctx: &Ctx,
    id: &str,
    limit: usize,
    cursor: Option<linkcrm_storage::Cursor>,
) -> ApiResult<(Vec<Item>, Option<linkcrm_storage::Cursor>)> {
    let p = ctx.app.store.query(Query::partition(keys::drafts_pk(id)).limit(limit).after(cursor)).await?;
    let wanted: Vec<Key> = p.items.iter().filter_map(|d| str_of(d, "invocationId")).map(inv::key).collect();
    let found = ctx.app.store.batch_get(&wanted).await?;
    let by_id: BTreeMap<&str, &Item> =
        found.iter().map(|i| (str_of(i, "invocationId").unwrap_or_default(), i)).collect();
    let items = p
        .items
        .iter()
        .filter_map(|d| str_of(d, "invocationId").and_then(|i| by_id.get(i)).map(|i| (*i).clone()))
        .collect();
    Ok((items, p.cursor))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftsInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// Only drafts in this status.
    #[schemars(extend("enum" = ["awaiting_approval", "approved", "sent", "rejected", "blocked", "failed", "cancelled", "expired"]))]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct Drafts;
impl Operation for Drafts {
    const NAME: &'static str = "link_building.campaign.drafts";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List a campaign's drafts and sends with their status, oldest first";
    const TAG: &'static str = TAG;
    type Input = DraftsInput;
    type Output = ListResponse<Draft>;

    async fn run(ctx: Ctx, input: DraftsInput) -> ApiResult<Reply<ListResponse<Draft>>> {
        let limit = crate::list::limit(input.limit)?;
        load(&ctx, &input.id).await?;
        let scope = format!("{}#{}", Self::NAME, input.id.as_str());
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let (items, next) = page(&ctx, &input.id, limit, cursor).await?;
        let data = items
            .iter()
            .map(|i| draft_view(&input.id, i))
            .filter(|d| input.status.as_deref().is_none_or(|s| d.status == s))
            .collect();
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, next), total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftEdit {
    #[schemars(length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: Option<String>,
    #[schemars(length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// The drafts to approve (at most 100); all drafts waiting for approval when absent.
    #[schemars(length(min = 1, max = 100))]
    pub draft_ids: Option<Vec<crate::ids::Id<crate::ids::Invocation>>>,
    /// Edits by draft id (each must be one of the drafts approved: else 422 `invalid_edits`).
    #[schemars(extend("propertyNames" = { "pattern": "^inv_[0-7][0-9A-HJKMNP-TV-Z]{25}$" }))]
    pub edits: Option<BTreeMap<String, DraftEdit>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// The drafts to reject (at most 100); all drafts waiting for approval when absent.
    #[schemars(length(min = 1, max = 100))]
    pub draft_ids: Option<Vec<crate::ids::Id<crate::ids::Invocation>>>,
    #[schemars(length(max = 2000))]
    pub reason: Option<String>,
}

/// A bulk decision, as both operations take it.
pub struct DecideInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    pub draft_ids: Option<Vec<crate::ids::Id<crate::ids::Invocation>>>,
    pub edits: Option<BTreeMap<String, DraftEdit>>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecideOutput {
    pub decided: Vec<String>,
    /// `{draftId, code, message}` for each draft that was not decided.
    pub failed: Vec<Value>,
}

async fn decide(ctx: &Ctx, input: DecideInput, approve: bool) -> ApiResult<DecideOutput> {
    let item = load(ctx, &input.id).await?;
    if rec::status_of(&item).ended() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_state",
            format!("The campaign is {}.", rec::status_of(&item).as_str()),
        ));
    }
    let mut edits = input.edits.unwrap_or_default();
    let ids: Vec<String> = match input.draft_ids {
        Some(ids) => ids.into_iter().map(|i| i.into_string()).collect(),
        None => {
            // Every draft waiting for approval, page by page.
            let mut out = Vec::new();
            let mut cursor = None;
            loop {
                let (items, next) = page(ctx, &input.id, 200, cursor).await?;
                out.extend(
                    items
                        .iter()
                        .filter(|i| inv::status(i) == inv::Status::WaitingApproval)
                        .filter_map(|i| str_of(i, "invocationId").map(str::to_owned)),
                );
                match next {
                    Some(c) if out.len() < 1000 => cursor = Some(c),
                    _ => break,
                }
            }
            out
        }
    };
    if let Some(k) = edits.keys().find(|k| !ids.contains(k)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_edits",
            "An edit names a draft that is not among those approved; nothing was approved.",
        )
        .with_details(json!({ "draftId": k })));
    }
    let (mut decided, mut failed) = (Vec::new(), Vec::new());
    for id in ids {
        // Only this campaign's drafts.
        let belongs = ctx.app.store.get(&keys::draft(&input.id, &id)).await?.is_some();
        if !belongs {
            failed.push(json!({ "draftId": id, "code": "draft_not_found", "message": "Not a draft of this campaign" }));
            continue;
        }
        let outcome = if approve {
            let e = edits.remove(&id);
            let (s, b) = e.map(|e| (e.subject, e.body)).unwrap_or_default();
            linkcrm_core::ops::approvals::approve(ctx, &id, s, b).await
        } else {
            linkcrm_core::ops::approvals::reject(ctx, &id, input.reason.clone()).await
        };
        match outcome {
            Ok(_) => decided.push(id),
            Err(e) => failed.push(json!({ "draftId": id, "code": e.code, "message": e.message })),
        }
    }
    Ok(DecideOutput { decided, failed })
}

pub struct Approve;
impl Operation for Approve {
    const NAME: &'static str = "link_building.campaign.approve";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Approve a campaign's drafts (all waiting, or draftIds, with optional edits per draft); each then records DRAFT_APPROVED and SEND_QUEUED and is sent";
    const TAG: &'static str = TAG;
    type Input = ApproveInput;
    type Output = DecideOutput;

    async fn run(ctx: Ctx, input: ApproveInput) -> ApiResult<Reply<DecideOutput>> {
        let input = DecideInput { id: input.id, draft_ids: input.draft_ids, edits: input.edits, reason: None };
        Ok(Reply::ok(decide(&ctx, input, true).await?))
    }
}

pub struct Reject;
impl Operation for Reject {
    const NAME: &'static str = "link_building.campaign.reject";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Reject a campaign's drafts (all waiting, or draftIds); their credits are released";
    const TAG: &'static str = TAG;
    type Input = RejectInput;
    type Output = DecideOutput;

    async fn run(ctx: Ctx, input: RejectInput) -> ApiResult<Reply<DecideOutput>> {
        let input = DecideInput { id: input.id, draft_ids: input.draft_ids, edits: None, reason: input.reason };
        Ok(Reply::ok(decide(&ctx, input, false).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    pub relationship_id: crate::ids::Id<crate::ids::Relationship>,
    #[schemars(length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: String,
    #[schemars(length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: String,
    /// RFC 3339; now when absent.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub schedule_at: Option<String>,
    /// Else the contact last emailed in the relationship, else the account's `bestContactId`.
    pub contact_id: Option<crate::ids::Id<crate::ids::Contact>>,
}

pub struct SendEmail;
impl Operation for SendEmail {
    const NAME: &'static str = "link_building.campaign.send_email";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = linkcrm_outreach::sending::COST_MILLI as u64;
    const SUMMARY: &'static str =
        "Send a one-off email within a campaign (approval-gated by workspace policy; answers 202 with the invocation; 2 credits per email sent)";
    const TAG: &'static str = TAG;
    type Input = SendInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: SendInput) -> ApiResult<Reply<Value>> {
        let campaign = load(&ctx, &input.id).await?;
        let status = rec::status_of(&campaign);
        if status.ended() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_state_for_send",
                format!("The campaign is {}; nothing more is sent in it.", status.as_str()),
            ));
        }
        let ws = ctx.workspace().to_owned();
        let subject = linkcrm_core::validate::header_text("subject", Some(input.subject), 998)?
            .ok_or_else(|| ApiError::invalid_field("subject", "invalid_request", "is required"))?;
        let body = linkcrm_core::validate::text("body", Some(input.body), 100_000)?
            .ok_or_else(|| ApiError::invalid_field("body", "invalid_request", "is required"))?;
        if let Some(s) = &input.schedule_at {
            linkcrm_core::validate::time_param("scheduleAt", s)?;
        }
        let rel = linkcrm_crm::write::load_relationship(&ctx.app, &ws, &input.relationship_id).await?;
        let contact = match &input.contact_id {
            Some(c) => crate::ops::drafting::contact_at(&ctx.app, &rel, c).await?,
            None => {
                let last = crate::ops::drafting::last_emailed_contact(&ctx.app, &rel).await?;
                let found = match last {
                    Some(c) => ctx.app.store.get(&linkcrm_crm::keys::contact(&c)).await?,
                    None => None,
                };
                match found {
                    Some(c) => c,
                    None => crate::ops::drafting::best_contact(&ctx.app, &rel).await?.ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "no_contact",
                            "The relationship has no contact to write to: name a contactId, or set the account's bestContactId.",
                        )
                    })?,
                }
            }
        };
        let contact_id = str_of(&contact, "id").unwrap_or_default().to_owned();
        let to = str_of(&contact, "email").map(str::to_owned).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contact_without_email",
                "The contact has no email address.",
            )
        })?;
        // A relationship written to within the campaign becomes one of its members.
        if !linkcrm_crm::campaign_facts::campaign_ids(&rel.0).iter().any(|c| c == input.id.as_str()) {
            if let Err(linkcrm_crm::campaign_facts::Enrol::TooMany) =
                crate::ops::campaigns::enrol(&ctx, &input.id, &rel).await?
            {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "too_many_campaigns",
                    "The relationship is in too many campaigns to join this one.",
                ));
            }
        }
        let mailbox_id = campaign.get("settings").and_then(|s| s.get("mailboxId")).and_then(Value::as_str);
        let mailbox = linkcrm_outreach::ops::send_email::resolve_mailbox(&ctx.app, &ws, mailbox_id).await?;
        let (mut ops, reply_body, mark) = linkcrm_outreach::ops::send_email::send_ops(
            ctx.workspace_record(),
            &mailbox,
            linkcrm_outreach::ops::send_email::NewSend {
                rel_id: rel.id(),
                contact_id: &contact_id,
                to: &to,
                subject: &subject,
                body: &body,
                html: None,
                schedule_at: input.schedule_at.as_deref(),
                campaign_id: Some(&input.id),
                follow_up: None,
                track_opens: crate::records::tracks_opens(&campaign),
                reply: None,
            },
        )?;
        let inv_id = reply_body["invocationId"].as_str().unwrap_or_default().to_owned();
        let waits = reply_body["status"] == json!("WAITING_APPROVAL");
        ops.extend(pointer_ops(&input.id, &inv_id, rel.id(), waits, false));
        let reply = Reply { status: Some(StatusCode::ACCEPTED), body: Some(reply_body), version: None };
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { op: Some(i) }) if i == mark => {
                Err(ApiError::not_found("contact_not_found", "contact", &contact_id))
            }
            Err(StoreError::ConditionFailed { .. }) => {
                let pool =
                    linkcrm_core::workspace::pool_of(&linkcrm_core::workspace::from_record(ctx.workspace_record())?);
                Err(linkcrm_core::credits::insufficient(
                    &ctx.app.store,
                    &pool,
                    linkcrm_outreach::sending::SKILL,
                    linkcrm_outreach::sending::COST_MILLI,
                )
                .await)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The draft pointer for a new send of the campaign, and the counts it moves: `drafted` for a
/// draft the campaign wrote (`drafted`), `awaiting` while it waits for approval.
pub fn pointer_ops(campaign: &str, invocation: &str, rel: &str, waits: bool, drafted: bool) -> Vec<TxOp> {
    let k = keys::draft(campaign, invocation);
    let mut u = Update::new();
    if waits {
        u = u.add("awaiting", 1);
    }
    if drafted {
        u = u.add("drafted", 1);
    }
    let mut ops = vec![TxOp::put(obj(json!({ "PK": k.pk, "SK": k.sk, "entity": "campaignDraft",
        "invocationId": invocation, "relationshipId": rel, "campaignId": campaign })))];
    if waits || drafted {
        ops.push(TxOp::update(keys::campaign(campaign), u));
    }
    ops
}
