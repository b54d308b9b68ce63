//! `link_building.campaign.respond` (seed 001): a person's reply to a received message.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use linkcrm_crm::write;
use linkcrm_outreach::ops::send_email::{self, NewSend, ReplySend};
use linkcrm_storage::StoreError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RespondInput {
    /// The received message (`msg_…`) this answers.
    pub inbound_message_id: crate::ids::Id<crate::ids::Message>,
    /// Plain text.
    #[schemars(length(max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: String,
    /// `Re: <their subject>` when absent.
    #[schemars(length(max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: Option<String>,
    /// `"now"` (the default) or an RFC 3339 time.
    #[schemars(pattern(linkcrm_core::rules::NOW_OR_TIME))]
    pub schedule_at: Option<String>,
    /// The mailbox the message arrived in, else the workspace's first active one.
    pub mailbox_id: Option<crate::ids::Id<crate::ids::SendingMailbox>>,
}

pub struct Respond;
impl Operation for Respond {
    const NAME: &'static str = "link_building.campaign.respond";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Inbound;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = 2000;
    const SUMMARY: &'static str =
        "Reply to a received message, threaded (2 credits; waits for approval only under approvalPolicy.inbound_respond)";
    const TAG: &'static str = "Inbound negotiator";
    type Input = RespondInput;
    type Output = Value;

    async fn run(ctx: Ctx, input: RespondInput) -> ApiResult<Reply<Value>> {
        let ws = ctx.workspace().to_owned();
        let not_found =
            || ApiError::not_found("inbound_message_not_found", "inbound message", &input.inbound_message_id);
        let msg = linkcrm_outreach::inbound::load_by_id(&ctx.app, &input.inbound_message_id)
            .await?
            .filter(|m| m.workspace_id == ws)
            .ok_or_else(not_found)?;
        let body = linkcrm_core::validate::text("body", Some(input.body), 100_000)?
            .ok_or_else(|| ApiError::invalid_field("body", "invalid_request", "is required"))?;
        let subject = match input.subject {
            Some(s) => linkcrm_core::validate::header_text("subject", Some(s), 998)?
                .ok_or_else(|| ApiError::invalid_field("subject", "invalid_request", "cannot be empty"))?,
            None => crate::drafting::re(&msg.subject),
        };
        let schedule_at = match input.schedule_at.as_deref().map(str::trim) {
            None | Some("now") => None,
            Some(t) => {
                linkcrm_core::validate::time_param("scheduleAt", t)?;
                Some(t.to_owned())
            }
        };
        let to = msg.from.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "inbound_message_without_sender",
                "The message has no sender to reply to.",
            )
        })?;
        let unassigned = || {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "inbound_message_unassigned",
                "The message belongs to no relationship yet: assign it (POST /v1/link-building/inbound/{id}/assign) first.",
            )
        };
        // The partner: the negotiator's, or the relationship the message was matched or assigned to.
        let negotiated = msg.negotiation.as_ref().and_then(|n| n.relationship_id.clone().zip(n.contact_id.clone()));
        let (rel, contact) = match negotiated {
            Some((rel_id, contact)) => (write::load_relationship(&ctx.app, &ws, &rel_id).await?, contact),
            None => {
                let rel_id = msg.relationship_id.clone().ok_or_else(unassigned)?;
                let rel = write::load_relationship(&ctx.app, &ws, &rel_id).await?;
                // A sender address no contact can hold (mail allows more than we store) cannot be
                // replied to from here.
                let (contact, at) = match write::ensure_contact(&ctx.app, &ws, rel.account_id(), &to, None, None).await
                {
                    Err(e) if e.code == "invalid_email" => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "inbound_message_without_sender",
                            "The message's sender address cannot be replied to.",
                        ))
                    }
                    other => other?,
                };
                if at != rel.account_id() {
                    return Err(linkcrm_outreach::ops::send_email::contact_not_at_account(rel.account_id()));
                }
                (rel, contact)
            }
        };
        let named = input.mailbox_id.as_ref().map(|m| m.as_str().to_owned());
        let arrived = msg.mailbox_id.clone().filter(|m| m != linkcrm_outreach::platform_mailbox::ID);
        let mailbox = send_email::resolve_mailbox(&ctx.app, &ws, named.or(arrived).as_deref()).await?;
        let mut references = msg.references.clone();
        references.extend(msg.message_id.clone());
        // A negotiated request's reply counts for the inbound campaign.
        let campaign = match &msg.negotiation {
            Some(_) => crate::records::load_settings(&ctx.app, &ws).await?.campaign_id,
            None => None,
        };
        let (ops, reply_body, mark) = send_email::send_ops(
            ctx.workspace_record(),
            &mailbox,
            NewSend {
                rel_id: rel.id(),
                contact_id: &contact,
                to: &to,
                subject: &subject,
                body: &body,
                html: None,
                schedule_at: schedule_at.as_deref(),
                campaign_id: campaign.as_deref(),
                follow_up: None,
                track_opens: false,
                reply: Some(ReplySend {
                    in_reply_to: msg.message_id.clone(),
                    references,
                    inbound_message_id: msg.id.clone(),
                    needs_approval: None,
                    approval_reason: None,
                }),
            },
        )?;
        let reply = Reply { status: Some(StatusCode::ACCEPTED), body: Some(reply_body), version: None };
        let pool = linkcrm_core::workspace::pool_of(&linkcrm_core::workspace::from_record(ctx.workspace_record())?);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { op: Some(i) }) if i == mark => {
                Err(ApiError::not_found("contact_not_found", "contact", &contact))
            }
            Err(StoreError::ConditionFailed { .. }) => Err(linkcrm_core::credits::insufficient(
                &ctx.app.store,
                &pool,
                "link_building.campaign.send_email",
                2000,
            )
            .await),
            Err(e) => Err(e.into()),
        }
    }
}
