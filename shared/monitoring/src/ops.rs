//! `link_building.links.*`: monitored placed links (`/v1/link-building/links`).

use crate::records::{self, Link, LinkCheck};
use crate::run::{self, Billing};
use crate::{keys, settings, CHECK_COST_MILLI};
use axum::http::StatusCode;
use linkcrm_core::catalogue::{Effect, Family, IdInput, OpSpec, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::credits;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::ids::{self, Id};
use linkcrm_core::invocations as inv;
use linkcrm_core::items;
use linkcrm_core::lenient;
use linkcrm_core::list::{self, ListResponse};
use linkcrm_domain::links::LinkState;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Index, Query, SortKey, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const TAG: &str = "Placed links";
const SKILL: &str = "link_building.links.check";

pub fn catalogue() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<List>(),
        OpSpec::of::<Summary>(),
        OpSpec::of::<Get>(),
        OpSpec::of::<Checks>(),
        OpSpec::of::<CheckNow>(),
        OpSpec::of::<Update_>(),
    ]
}

async fn load(ctx: &Ctx, id: &str) -> ApiResult<records::Stored> {
    match ctx.app.store.get(&keys::link(ctx.workspace(), id)).await? {
        Some(item) => Ok(records::parse_link(&item)?),
        None => Err(ApiError::not_found("link_not_found", "link", id)),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub state: Option<LinkState>,
    pub relationship_id: Option<Id<ids::Relationship>>,
    /// Filters the page as read (a page may come back short).
    pub account_id: Option<Id<ids::Account>>,
    /// The campaign the LINK_PLACED named; filters the page as read.
    #[schemars(length(max = 40), pattern(r"^[a-z]{3,4}_[0-9A-Za-z]{26}$"))]
    pub campaign_id: Option<String>,
    /// Links not checked since this time (never checked included); filters the page as read.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub checked_before: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.links.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Links;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "List monitored placed links, newest first (an agency key without X-Workspace-Id lists across its workspaces)";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Link>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Link>>> {
        let limit = list::limit(input.limit)?;
        let checked_before = input
            .checked_before
            .as_deref()
            .map(|raw| linkcrm_core::validate::time_param("checkedBefore", raw))
            .transpose()?;
        let ws = ctx.workspace_id.clone();
        let scope = format!(
            "{}#{}#{}#{:?}#{}",
            Self::NAME,
            ws.as_deref().unwrap_or(&ctx.caller.agency_id),
            input.relationship_id.as_deref().unwrap_or(""),
            input.state,
            checked_before.as_deref().unwrap_or("")
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let q = match (&ws, &input.relationship_id, input.state) {
            (Some(ws), Some(rel), _) => Query::index(Index::Gsi2, keys::relationship_pk(ws, rel)),
            (Some(ws), None, Some(s)) => Query::index(Index::Gsi1, keys::state_pk(ws, s.as_str())),
            (Some(ws), None, None) => Query::partition(keys::links_pk(ws)),
            (None, _, _) => Query::index(Index::Gsi4, keys::agency_pk(&ctx.caller.agency_id)),
        };
        let mut filters = Vec::new();
        if let (Some(s), true) = (input.state, ws.is_none() || input.relationship_id.is_some()) {
            filters.push(Condition::Equals("state".into(), json!(s)));
        }
        if let (Some(r), None) = (&input.relationship_id, &ws) {
            filters.push(Condition::Equals("relationshipId".into(), json!(r.as_str())));
        }
        if let Some(a) = &input.account_id {
            filters.push(Condition::Equals("accountId".into(), json!(a.as_str())));
        }
        if let Some(c) = &input.campaign_id {
            filters.push(Condition::Equals("campaignId".into(), json!(c)));
        }
        if let Some(t) = &checked_before {
            let ms = time::parse(t).map(|t| t.timestamp_millis()).unwrap_or(0);
            filters.push(Condition::Below("lastCheckedEpoch".into(), ms));
        }
        let q = match filters.len() {
            0 => q,
            1 => q.filter(filters.remove(0)),
            _ => q.filter(Condition::And(filters)),
        };
        let page = ctx.app.store.query(q.backward().limit(limit).after(cursor)).await?;
        let data = page.items.iter().map(records::view).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryInput {
    /// Start of the window of changes (inclusive); the start of this month (UTC) when absent.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub since: Option<String>,
    /// End of the window (exclusive); now when absent. A window that ends before it starts is
    /// empty.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub until: Option<String>,
}

/// Links by state now, and the state changes in a window, for a monthly client report.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryOutput {
    pub workspace_id: String,
    /// Links in each state now (`pending`, `live`, `at_risk`, `lost`, `unknown`) and `total`.
    pub counts: Value,
    pub since: String,
    pub until: String,
    /// State changes in `[since, until)`: `lost`, `restored`, `changed` (each with its relationship
    /// event) and `unknown` (moves to unknown, which write none).
    pub changes: Value,
    /// True when the window held more changes than one summary reads (10,000); the counts are of
    /// the first ones.
    pub changes_capped: bool,
    /// Checks this month: `used` of `free`.
    pub checks_this_month: Value,
}

const CHANGES_READ_MAX: usize = 10_000;

pub struct Summary;
impl Operation for Summary {
    const NAME: &'static str = "link_building.links.summary";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Links;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Monitored links by state now, and the state changes in [since, until)";
    const TAG: &'static str = TAG;
    type Input = SummaryInput;
    type Output = SummaryOutput;

    async fn run(ctx: Ctx, input: SummaryInput) -> ApiResult<Reply<SummaryOutput>> {
        let ws = ctx.workspace().to_owned();
        let now = chrono::Utc::now();
        let since = match input.since.as_deref() {
            Some(raw) => linkcrm_core::validate::time_param("since", raw)?,
            None => credits::cycle(now).0,
        };
        let until = match input.until.as_deref() {
            Some(raw) => linkcrm_core::validate::time_param("until", raw)?,
            None => time::format(now),
        };
        // A window that ends before it starts holds no change (a read answers it, as it answers
        // filters that exclude each other, with nothing rather than an error).
        let empty = until <= since;
        let sum = ctx.app.store.get(&keys::summary(&ws)).await?;
        let mut counts = serde_json::Map::new();
        let mut total = 0;
        for s in LinkState::ALL {
            let n = sum.as_ref().and_then(|i| items::int_of(i, s.as_str())).unwrap_or(0).max(0);
            total += n;
            counts.insert(s.as_str().into(), json!(n));
        }
        counts.insert("total".into(), json!(total));
        let mut changes = serde_json::Map::new();
        for k in ["lost", "restored", "changed", "unknown"] {
            changes.insert(k.into(), json!(0));
        }
        let (mut read, mut cursor, mut capped) = (0usize, None, false);
        loop {
            if empty {
                break;
            }
            let q = Query::index(Index::Gsi1, keys::changes_pk(&ws))
                .sk(SortKey::Between(since.clone(), until.clone()))
                .limit(500)
                .after(cursor);
            let page = ctx.app.store.query(q).await?;
            for item in &page.items {
                // The window is half-open: a change at exactly `until` belongs to the next one.
                if items::str_of(item, "checkedAt").is_some_and(|t| t >= until.as_str()) {
                    continue;
                }
                if let Some(k) = items::str_of(item, "change") {
                    if let Some(n) = changes.get_mut(k) {
                        *n = json!(n.as_i64().unwrap_or(0) + 1);
                    }
                }
            }
            read += page.items.len();
            match page.cursor {
                Some(c) if read < CHANGES_READ_MAX => cursor = Some(c),
                Some(_) => {
                    capped = true;
                    break;
                }
                None => break,
            }
        }
        let used = run::used_this_month(&ctx.app, &ws, now).await?;
        Ok(Reply::ok(SummaryOutput {
            workspace_id: ws,
            counts: Value::Object(counts),
            since,
            until,
            changes: Value::Object(changes),
            changes_capped: capped,
            checks_this_month: json!({ "month": run::month(now), "used": used, "free": settings().free_per_month }),
        }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.links.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Links;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one monitored link with its latest check";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Link>;
    type Output = Link;

    async fn run(ctx: Ctx, input: IdInput<ids::Link>) -> ApiResult<Reply<Link>> {
        let l = load(&ctx, &input.id).await?.link;
        let v = l.version;
        Ok(Reply::ok(l).with_version(v))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChecksInput {
    pub id: Id<ids::Link>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct Checks;
impl Operation for Checks {
    const NAME: &'static str = "link_building.links.checks";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Links;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "A monitored link's checks, newest first";
    const TAG: &'static str = TAG;
    type Input = ChecksInput;
    type Output = ListResponse<LinkCheck>;

    async fn run(ctx: Ctx, input: ChecksInput) -> ApiResult<Reply<ListResponse<LinkCheck>>> {
        let limit = list::limit(input.limit)?;
        // The link is the workspace's: its checks are read only after that is known.
        load(&ctx, &input.id).await?;
        let scope = format!("{}#{}", Self::NAME, input.id.as_str());
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let q = Query::partition(keys::checks_pk(&input.id)).backward().limit(limit).after(cursor);
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(records::check_view).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

pub struct CheckNow;
impl Operation for CheckNow {
    const NAME: &'static str = SKILL;
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Links;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = CHECK_COST_MILLI as u64;
    const SUMMARY: &'static str = "Check a link now (queued: answers 202 with an invocation; free within the month's free checks, then 0.05 credits)";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Link>;
    type Output = Value;

    async fn run(ctx: Ctx, input: IdInput<ids::Link>) -> ApiResult<Reply<Value>> {
        let ws = ctx.workspace().to_owned();
        // The link must be this workspace's (404 otherwise) before anything is queued.
        load(&ctx, &input.id).await?;
        let now = chrono::Utc::now();
        let pool = linkcrm_core::workspace::pool_of(&linkcrm_core::workspace::from_record(ctx.workspace_record())?);
        let free = run::used_this_month(&ctx.app, &ws, now).await? < settings().free_per_month;
        let billing = if free { Billing::Free } else { Billing::Credits };
        let reserved = if free { 0 } else { CHECK_COST_MILLI };
        let id = inv::new_id();
        let mut item = inv::new_item(&inv::NewInvocation {
            id: &id,
            ws: &ws,
            skill: SKILL,
            input: json!({ "linkId": input.id.as_str() }),
            pool: &pool,
            reserved_milli: reserved,
            duration_seconds: 15,
        });
        item.insert("agencyId".into(), json!(ctx.caller.agency_id));
        let view = inv::view(&item);
        let claim = linkcrm_domain::new_id(linkcrm_domain::IdKind::Job);
        let lease_until = time::format(now + chrono::Duration::from_std(settings().lease).unwrap_or_default());
        let mut ops = vec![
            TxOp::put_if(item, Condition::NotExists),
            // The check takes the link for the dispatcher's lease: a scheduled check in flight
            // finds its claim gone and stops, and none is dispatched meanwhile.
            TxOp::update_if(
                keys::link(&ws, &input.id),
                Update::new().set("claim", claim.clone()).set("GSI3SK", keys::due_sort(&lease_until, &input.id)),
                // Not the version: a scheduled check committing meanwhile is no reason to refuse.
                Condition::Exists,
            ),
            run::job_op(&ws, &input.id, &claim, "on_demand", Some(&id), Some(billing)).map_err(|e| {
                tracing::error!(error = %e, "link check job rejected by the queue");
                ApiError::internal()
            })?,
        ];
        let allowance_at = ops.len();
        if free {
            ops.push(run::allowance_op(&ws, now));
        } else {
            ops.extend(credits::reserve(&pool, &ws, SKILL, &id, reserved));
        }
        let body = json!({
            "invocationId": view["invocationId"], "agentId": view["agentId"], "skill": view["skill"],
            "status": view["status"], "estimatedCost": view["estimatedCost"], "billed": billing.as_str(),
            "links": { "self": format!("/v1/agent/invocations/{id}"),
                       "link": format!("/v1/link-building/links/{}", input.id.as_str()) },
        });
        let reply = Reply { status: Some(StatusCode::ACCEPTED), body: Some(body), version: None };
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { op: Some(i) }) if i >= allowance_at && !free => {
                Err(credits::insufficient(&ctx.app.store, &pool, SKILL, CHECK_COST_MILLI).await)
            }
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(ApiError::conflict(
                "conflict",
                "The link or this month's free checks changed while this request ran; retry.",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: Id<ids::Link>,
    /// The page the link must point at.
    #[schemars(length(max = 2000), pattern(linkcrm_core::rules::HTTP_URL))]
    pub target_url: Option<String>,
    /// The agreed anchor text; `null` stops comparing anchors.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", length(min = 1, max = 500), pattern(linkcrm_core::rules::ONE_LINE))]
    pub anchor_text: Option<Option<String>>,
    /// `follow`, or the agreed tokens among `nofollow`, `sponsored`, `ugc` (space-separated).
    #[schemars(length(max = 40), pattern(r"^(follow|((nofollow|sponsored|ugc)( (nofollow|sponsored|ugc)){0,2}))$"))]
    pub rel: Option<String>,
}

pub struct Update_;
impl Operation for Update_ {
    const NAME: &'static str = "link_building.links.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Links;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Correct what a link must look like (target, anchor, rel); honours If-Match";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = Link;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Link>> {
        let stored = load(&ctx, &input.id).await?;
        let read = stored.link.version;
        if ctx.if_match.is_some_and(|v| v != read) {
            return Err(ApiError::precondition_failed(read));
        }
        let mut link = stored.link.clone();
        if let Some(t) = input.target_url {
            let u = url::Url::parse(t.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| ApiError::invalid_field("targetUrl", "invalid_request", "must be an http(s) URL"))?;
            link.expected.target_url = Some(u.to_string());
        }
        if let Some(a) = input.anchor_text {
            link.expected.anchor_text = a.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        }
        if let Some(r) = input.rel {
            let words: Vec<&str> = r.split(' ').collect();
            let known = |w: &&str| matches!(*w, "nofollow" | "sponsored" | "ugc");
            if !(r == "follow" || (!words.is_empty() && words.len() <= 3 && words.iter().all(known))) {
                return Err(ApiError::invalid_field(
                    "rel",
                    "invalid_request",
                    "`follow`, or nofollow, sponsored and ugc separated by spaces",
                ));
            }
            let tokens = linkcrm_domain::links::rel_tokens(Some(&r));
            link.expected.rel = if tokens.is_empty() { "follow".into() } else { tokens.join(" ") };
        }
        link.updated_at = time::now_string();
        link.version = read + 1;
        let item = records::link_item(
            &link,
            &stored.agency_id,
            &stored.track,
            stored.claim.as_deref(),
            items::str_of(&stored.item, "GSI3SK").and_then(|s| s.split('#').next()),
        );
        let reply = Reply::ok(link.clone()).with_version(link.version);
        match ctx.commit(vec![TxOp::put_if(item, Condition::VersionEquals(read))], &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                Err(ApiError::conflict("conflict", "The link changed while this request ran; read it again."))
            }
            Err(e) => Err(e.into()),
        }
    }
}
