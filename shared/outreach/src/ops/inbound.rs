//! `link_building.inbound.*`: received mail handed over (`receive`), read, assigned, and mailboxes
//! polled now. What a message does is `crate::inbound`'s.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::inbound::{
    classify_text, commit_with_event, event_for, load, unsubscribe_ops, InboundMessage, Written, WRITE_ATTEMPTS,
};
use crate::lenient;
use crate::list::{self, ListResponse};
use axum::http::StatusCode;
use linkcrm_crm::records;
use linkcrm_crm::write::load_relationship;
use linkcrm_domain::enums::ReplyClass;
use linkcrm_storage::{Condition, Index, Query, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use crate::inbound::{receive, Source};

const TAG: &str = "Inbound mail";
use crate::keys::{inbound_message as key, inbound_pk as index_pk};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiveInput {
    /// The whole message as received (RFC 5322: headers, blank line, body), at most 400 KB.
    #[schemars(pattern(crate::rules::RAW_EMAIL))]
    pub raw: String,
}

pub struct Receive;
impl Operation for Receive {
    const NAME: &'static str = "link_building.inbound.receive";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Hand over a received email (raw RFC 5322): matched to its thread, classified, recorded";
    /// A message handed over again (same Message-ID) answers 200 with what was recorded.
    const ALSO_SUCCEEDS_WITH: &'static [StatusCode] = &[StatusCode::OK];
    const TAG: &'static str = TAG;
    type Input = ReceiveInput;
    type Output = InboundMessage;

    async fn run(ctx: Ctx, input: ReceiveInput) -> ApiResult<Reply<InboundMessage>> {
        receive(&ctx, &input.raw, Source::api()).await
    }
}

pub use crate::catalogue::IdInput;

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.inbound.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "One received message";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Message>;
    type Output = InboundMessage;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Message>) -> ApiResult<Reply<InboundMessage>> {
        Ok(Reply::ok(load(&ctx, &input.id).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub relationship_id: Option<crate::ids::Id<crate::ids::Relationship>>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub matched: Option<bool>,
    pub class: Option<ReplyClass>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.inbound.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Received messages, newest first (a page may hold fewer than limit when filtered)";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<InboundMessage>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<InboundMessage>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let mut filters = Vec::new();
        if let Some(r) = &input.relationship_id {
            filters.push(Condition::Equals("relationshipId".into(), json!(r)));
        }
        if let Some(m) = input.matched {
            filters.push(Condition::Equals("matched".into(), json!(m)));
        }
        if let Some(c) = input.class {
            filters.push(Condition::Equals("class".into(), json!(c)));
        }
        let scope = format!("inbound.list#{ws}");
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = Query::index(Index::Gsi1, index_pk(&ws)).backward().limit(limit).after(cursor);
        if !filters.is_empty() {
            q = q.filter(Condition::And(filters));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page
            .items
            .iter()
            .map(|i| records::parse("inbound message", i))
            .collect::<crate::error::DataResult<Vec<InboundMessage>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignInput {
    pub id: crate::ids::Id<crate::ids::Message>,
    /// The relationship the message belongs to.
    pub relationship_id: crate::ids::Id<crate::ids::Relationship>,
}

pub struct Assign;
impl Operation for Assign {
    const NAME: &'static str = "link_building.inbound.assign";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Outreach;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Tie an unmatched message to a relationship: records EMAIL_RECEIVED on it";
    const TAG: &'static str = TAG;
    type Input = AssignInput;
    type Output = InboundMessage;

    async fn run(ctx: Ctx, input: AssignInput) -> ApiResult<Reply<InboundMessage>> {
        let mut msg = load(&ctx, &input.id).await?;
        let rel = load_relationship(&ctx.app, ctx.workspace(), &input.relationship_id).await?;
        let already = || ApiError::conflict("inbound_message_already_matched", "The message is already matched.");
        if msg.matched {
            return Err(already());
        }
        let (class, rule) = match &msg.class {
            Some(c) => (*c, msg.class_rule.clone().unwrap_or_default()),
            None => classify_text(&msg),
        };
        msg.matched = true;
        msg.relationship_id = Some(rel.id().to_owned());
        msg.class = Some(class);
        msg.class_rule = Some(rule);
        for _ in 0..WRITE_ATTEMPTS {
            let extra = unsubscribe_ops(&ctx, &msg).await?;
            let new = event_for(&msg, &msg.text.clone(), None, None);
            // Of two concurrent assigns, one wins: the update holds only while it is unmatched.
            let parts = move |m: &InboundMessage| {
                let update = Update::new()
                    .set("matched", true)
                    .set("relationshipId", m.relationship_id.clone())
                    .set("class", json!(m.class))
                    .set("classRule", m.class_rule.clone())
                    .set("eventId", m.event_id.clone());
                let mut ops =
                    vec![TxOp::update_if(key(&m.id), update, Condition::Equals("matched".into(), json!(false)))];
                ops.extend(extra.iter().cloned());
                ops
            };
            match commit_with_event(&ctx, msg.clone(), rel.id(), new, parts).await? {
                Written::Done(m) => return Ok(Reply { status: Some(StatusCode::OK), ..Reply::ok(*m) }),
                Written::Lost => {
                    if load(&ctx, &input.id).await?.matched {
                        return Err(already());
                    }
                }
            }
        }
        Err(ApiError::conflict(
            "inbound_write_conflict",
            "The message could not be assigned for concurrent changes; try again.",
        ))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollInput {
    /// Poll only this mailbox; otherwise every mailbox of the workspace with IMAP settings.
    pub mailbox_id: Option<crate::ids::Id<crate::ids::Mailbox>>,
}

/// One mailbox's part of a poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailboxPoll {
    pub mailbox_id: String,
    /// Messages recorded for the first time.
    pub replies_found: u32,
    /// Messages read again that were already recorded.
    pub already_recorded: u32,
    /// Messages that could not be recorded and were passed over.
    pub failed: u32,
    /// Another poll of this mailbox was running; it was left to finish.
    pub busy: bool,
    /// Why reading the mailbox failed (also shown on the mailbox as `imap.lastError`).
    pub error: Option<Value>,
}

/// What `POST /inbound/poll` found (seed 003's `replies/poll`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollOutput {
    /// New messages recorded, over every mailbox polled.
    pub replies_found: u32,
    /// Mailboxes that could not be read, plus messages that could not be recorded.
    pub failed: u32,
    pub mailboxes: Vec<MailboxPoll>,
}

pub struct Poll;
impl Operation for Poll {
    const NAME: &'static str = "link_building.inbound.poll";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Outreach;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Read the workspace's IMAP mailboxes now (otherwise every LINKCRM_IMAP_POLL_SECS): new replies recorded";
    const TAG: &'static str = TAG;
    type Input = PollInput;
    type Output = PollOutput;

    async fn run(ctx: Ctx, input: PollInput) -> ApiResult<Reply<PollOutput>> {
        use crate::polling;
        let ws = ctx.workspace().to_owned();
        let boxes: Vec<polling::PolledMailbox> = match &input.mailbox_id {
            Some(id) => {
                let item = ctx
                    .app
                    .store
                    .get(&crate::keys::mailbox(&ws, id))
                    .await?
                    .ok_or_else(|| ApiError::not_found("mailbox_not_found", "mailbox", id))?;
                let m = polling::polled(item).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "mailbox_without_imap",
                        "The mailbox has no IMAP settings to poll.",
                    )
                })?;
                vec![m]
            }
            None => {
                let q = Query::partition(crate::keys::mailboxes_pk(&ws)).limit(200);
                ctx.app.store.query(q).await?.items.into_iter().filter_map(polling::polled).collect()
            }
        };
        let reader = polling::reader(&ctx.app).map_err(|e| {
            tracing::error!(error = %e, "the IMAP reader cannot be built");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "imap_unavailable",
                "Mailboxes cannot be read: the server's IMAP settings are invalid.",
            )
        })?;
        let reports = futures::future::join_all(boxes.iter().map(|m| polling::poll(&ctx.app, &reader, m))).await;
        let mailboxes: Vec<MailboxPoll> = reports
            .into_iter()
            .map(|r| MailboxPoll {
                mailbox_id: r.mailbox_id,
                replies_found: r.found,
                already_recorded: r.already_recorded,
                failed: r.failed,
                busy: r.busy,
                error: r.error.map(|e| json!({ "code": e.code, "message": e.message })),
            })
            .collect();
        Ok(Reply::ok(PollOutput {
            replies_found: mailboxes.iter().map(|m| m.replies_found).sum(),
            failed: mailboxes.iter().map(|m| m.failed + u32::from(m.error.is_some())).sum(),
            mailboxes,
        }))
    }
}
