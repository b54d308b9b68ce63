//! CSV exports of a campaign (`GET /v1/link-building/campaign/{id}/export/{kind}`): its
//! relationships, its sends, its replies. RFC 4180 (CRLF, quoted where needed), a header row,
//! and cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) made
//! inert with a leading `'` (OWASP's advice against CSV injection). A response carries at most
//! 5 MB (API Gateway stops at 6 MB); `Link: <…>; rel="next"` leads to the rest, cursor-paged
//! like the lists (O(page) per response).

use crate::catalogue::{Effect, Family, FileBody, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::invocations as inv;
use crate::keys;
use crate::list::ListResponse;
use crate::ops::campaigns::{domain_status, load};
use linkcrm_crm::campaign_facts;
use linkcrm_crm::records::str_of;
use linkcrm_storage::{Condition, Index, Item, Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Bytes per response: 5 MB, less what one more store page of rows may add.
fn max_bytes() -> usize {
    std::env::var("LINKCRM_EXPORT_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(5 * 1024 * 1024)
}
/// Rows read per store page (tests shrink it with `LINKCRM_EXPORT_PAGE_ROWS`), and the longest
/// cell kept (so one page adds at most ~1 MB to a response).
fn page_rows() -> usize {
    std::env::var("LINKCRM_EXPORT_PAGE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(100)
        .min(100)
}
const MAX_CELL: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Relationships,
    Sends,
    Replies,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// `relationships`, `sends` or `replies`.
    pub kind: Kind,
    /// From the previous response's `Link: rel="next"`.
    pub cursor: Option<String>,
}

/// One CSV cell: formula triggers neutralised, quoted when it holds a comma, quote or line break.
pub fn cell(v: &str) -> String {
    let mut s: String = v.chars().take(MAX_CELL).collect();
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        s.insert(0, '\'');
    }
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn row(cells: &[String]) -> String {
    let mut line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub struct Export;
impl Operation for Export {
    const NAME: &'static str = "link_building.campaign.export";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Export a campaign's relationships, sends or replies as CSV (RFC 4180; at most 5 MB per response, Link rel=next to the rest; free)";
    const TAG: &'static str = "Campaigns";
    const FILE: bool = true;
    type Input = ExportInput;
    type Output = FileBody;

    async fn run(ctx: Ctx, input: ExportInput) -> ApiResult<Reply<FileBody>> {
        load(&ctx, &input.id).await?;
        let scope = format!("{}#{}#{:?}", Self::NAME, input.id.as_str(), input.kind);
        let mut cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let first = cursor.is_none();
        let (name, header): (&str, &[&str]) = match input.kind {
            Kind::Relationships => (
                "relationships",
                &[
                    "domain",
                    "relationship_id",
                    "account_id",
                    "status",
                    "draft_status",
                    "contact_id",
                    "sends",
                    "bounces",
                    "first_sent_at",
                    "last_sent_at",
                    "replied_at",
                    "placed_at",
                    "link_url",
                    "follow_up_status",
                    "reason",
                ],
            ),
            Kind::Sends => (
                "sends",
                &[
                    "draft_id",
                    "relationship_id",
                    "contact_id",
                    "to",
                    "subject",
                    "status",
                    "follow_up_step",
                    "scheduled_at",
                    "created_at",
                    "updated_at",
                    "error",
                ],
            ),
            Kind::Replies => (
                "replies",
                &["domain", "relationship_id", "event_id", "received_at", "contact_id", "subject", "class", "text"],
            ),
        };
        let mut out = String::new();
        if first {
            out.push_str(&row(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
        }
        // Room for one more page of rows under the limit (a small limit, in tests, is the budget).
        let max = max_bytes();
        let budget = if max > 2 * 1024 * 1024 { max - 1024 * 1024 } else { max };
        let mut rows = 0u64;
        let now = chrono::Utc::now();
        loop {
            let pk = match input.kind {
                Kind::Sends => keys::drafts_pk(&input.id),
                _ => keys::campaign_members_pk(&input.id),
            };
            let page = ctx.app.store.query(Query::partition(pk).limit(page_rows()).after(cursor.take())).await?;
            match input.kind {
                Kind::Relationships => {
                    for m in &page.items {
                        let att = campaign_facts::attribution_of(m);
                        let s = domain_status(m, now);
                        out.push_str(&row(&[
                            text(m.get("domain")),
                            text(m.get("relationshipId")),
                            text(m.get("accountId")),
                            text(s.get("status")),
                            text(m.get("draftStatus")),
                            text(m.get("contactId")),
                            att.sent.to_string(),
                            att.bounced.to_string(),
                            att.first_sent_at.clone().unwrap_or_default(),
                            att.last_sent_at.clone().unwrap_or_default(),
                            att.replied_at.clone().unwrap_or_default(),
                            att.placed_at.clone().unwrap_or_default(),
                            att.link_url.clone().unwrap_or_default(),
                            text(m.get("followUpStatus")),
                            text(m.get("reason").and_then(|r| r.get("code"))),
                        ]));
                        rows += 1;
                    }
                }
                Kind::Sends => {
                    let wanted: Vec<_> =
                        page.items.iter().filter_map(|d| str_of(d, "invocationId")).map(inv::key).collect();
                    let mut found = ctx.app.store.batch_get(&wanted).await?;
                    found.sort_by(|a, b| str_of(a, "invocationId").cmp(&str_of(b, "invocationId")));
                    for i in &found {
                        let input = i.get("input").cloned().unwrap_or_default();
                        out.push_str(&row(&[
                            text(i.get("invocationId")),
                            text(input.get("relationshipId")),
                            text(input.get("contactId")),
                            text(input.get("to")),
                            text(input.get("subject")),
                            crate::ops::drafts::draft_status(i).to_owned(),
                            text(input.get("followUpStep")),
                            text(input.get("scheduleAt")),
                            text(i.get("createdAt")),
                            text(i.get("updatedAt")),
                            text(i.get("error").and_then(|e| e.get("code"))),
                        ]));
                        rows += 1;
                    }
                }
                Kind::Replies => {
                    for m in &page.items {
                        let att = campaign_facts::attribution_of(m);
                        if att.replied_at.is_none() {
                            continue;
                        }
                        for e in replies(&ctx, m, att.first_sent_at.as_deref(), false).await? {
                            out.push_str(&row(&[
                                text(m.get("domain")),
                                text(m.get("relationshipId")),
                                text(e.get("id")),
                                text(e.get("occurredAt")),
                                text(e.get("contactId")),
                                text(e.get("subject")),
                                text(e.get("metadata").and_then(|x| x.get("replyClass"))),
                                text(e.get("content")),
                            ]));
                            rows += 1;
                        }
                    }
                }
            }
            cursor = page.cursor;
            if cursor.is_none() || out.len() >= budget {
                break;
            }
        }
        let next = ctx.app.seal_cursor(&scope, cursor);
        Ok(Reply::ok(FileBody {
            content_type: "text/csv; charset=utf-8; header=present".into(),
            filename: format!("{}-{name}.csv", input.id.as_str()),
            body: out,
            rows,
            next_cursor: next,
        }))
    }
}

/// A member's replies: EMAIL_RECEIVED on its relationship since the campaign's first send to it
/// (out-of-office ones only when asked), newest first, at most 50.
async fn replies(ctx: &Ctx, m: &Item, since: Option<&str>, out_of_office: bool) -> ApiResult<Vec<Item>> {
    let (Some(ws), Some(account)) = (str_of(m, "workspaceId"), str_of(m, "accountId")) else { return Ok(vec![]) };
    let q = Query::index(Index::Gsi1, linkcrm_crm::keys::relationship_events_pk(ws, account))
        .backward()
        .limit(50)
        .filter(Condition::Equals("type".into(), json!("EMAIL_RECEIVED")));
    let page = ctx.app.store.query(q).await?;
    Ok(page
        .items
        .into_iter()
        .filter(|e| since.is_none_or(|s| str_of(e, "occurredAt").unwrap_or_default() >= s))
        .filter(|e| {
            out_of_office
                || e.get("metadata").and_then(|x| x.get("replyClass")).and_then(Value::as_str) != Some("out_of_office")
        })
        .collect())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepliesInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// Members read per page (default 50, at most 200); each brings its replies.
    #[serde(default, deserialize_with = "crate::lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A reply to the campaign: an EMAIL_RECEIVED on a member's relationship after the campaign's
/// first send to it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignReply {
    pub event_id: String,
    pub relationship_id: Option<String>,
    pub domain: Option<String>,
    pub contact_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub received_at: Option<String>,
    /// interested, not_interested, asks_price, out_of_office, unsubscribe, other.
    pub class: Option<String>,
    pub text: Option<String>,
    pub inbound_message_id: Option<String>,
    /// The `Message-ID` the reply answers (`In-Reply-To`): a send's `messageId` when it names one.
    pub in_reply_to: Option<String>,
}

pub struct Replies;
impl Operation for Replies {
    const NAME: &'static str = "link_building.campaign.replies";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "List the replies to a campaign (its partners' emails after its first send to them), with their class (free)";
    const TAG: &'static str = "Campaigns";
    type Input = RepliesInput;
    type Output = ListResponse<CampaignReply>;

    async fn run(ctx: Ctx, input: RepliesInput) -> ApiResult<Reply<ListResponse<CampaignReply>>> {
        let limit = input.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(crate::error::ApiError::invalid_field("limit", "invalid_request", "must be between 1 and 200"));
        }
        load(&ctx, &input.id).await?;
        let scope = format!("{}#{}", Self::NAME, input.id.as_str());
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let page = ctx
            .app
            .store
            .query(Query::partition(keys::campaign_members_pk(&input.id)).limit(limit as usize).after(cursor))
            .await?;
        let mut data = Vec::new();
        for m in &page.items {
            let att = campaign_facts::attribution_of(m);
            let Some(first) = att.first_sent_at.as_deref() else { continue };
            for e in replies(&ctx, m, Some(first), true).await? {
                let meta = e.get("metadata").cloned().unwrap_or_default();
                let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
                data.push(CampaignReply {
                    event_id: str_of(&e, "id").unwrap_or_default().to_owned(),
                    relationship_id: str_of(m, "relationshipId").map(str::to_owned),
                    domain: str_of(m, "domain").map(str::to_owned),
                    contact_id: str_of(&e, "contactId").map(str::to_owned),
                    from: s(meta.get("from")),
                    subject: str_of(&e, "subject").map(str::to_owned),
                    received_at: str_of(&e, "occurredAt").map(str::to_owned),
                    class: s(meta.get("replyClass")),
                    text: str_of(&e, "content").map(str::to_owned),
                    inbound_message_id: s(meta.get("inboundMessageId")),
                    in_reply_to: s(meta.get("inReplyTo")),
                });
            }
        }
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_are_quoted_and_formulas_made_inert() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell(""), "");
    }
}
