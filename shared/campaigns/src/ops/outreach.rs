//! SERP and competitor outreach (seed 002; the anchor's `/v1/link-building/serp-outreach` and, by
//! analogy, `/competitor-outreach`): a keyword's top results, or a competitor's referring
//! domains, become a campaign of drafts waiting for approval (`crate::pipeline`). The start
//! answers 202 with the campaign and its invocation; the other endpoints are the unified
//! campaign operations, limited to campaigns of the endpoint's type.

use crate::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::invocations as inv;
use crate::list::ListResponse;
use crate::ops::campaigns::{self as c, FollowUpInput};
use crate::ops::drafts;
use crate::ops::research::Device;
use crate::ops::writing::Tone;
use crate::records::{self as rec, Campaign, CampaignSummary, Status, Type};
use crate::{keys, lenient, outbox, pipeline};
use axum::http::StatusCode;
use linkcrm_crm::records::obj;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TAG: &str = "Campaigns";

/// Which partners a SERP or competitor campaign keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filters {
    /// Lowest Domain Rating kept (a missing DR is fetched from Ahrefs first, 0.1 credit).
    #[serde(rename = "minDR")]
    #[schemars(range(min = 0, max = 100))]
    pub min_dr: Option<f64>,
    #[serde(rename = "maxDR")]
    #[schemars(range(min = 0, max = 100))]
    pub max_dr: Option<f64>,
    /// Domains (and their subdomains) never contacted by this campaign.
    #[schemars(length(max = 500), inner(pattern(linkcrm_core::rules::DOMAIN)))]
    pub exclude_domains: Option<Vec<String>>,
    /// Skip accounts this workspace emailed within this many days (default 90; 0 keeps them).
    #[schemars(range(min = 0, max = 3650))]
    pub exclude_contacted_within_days: Option<u32>,
}

/// Validated filters as stored in the campaign's settings.
pub fn filters_value(f: Filters) -> ApiResult<Value> {
    for (field, v) in [("filters.minDR", f.min_dr), ("filters.maxDR", f.max_dr)] {
        if v.is_some_and(|d| !(0.0..=100.0).contains(&d) || !d.is_finite()) {
            return Err(ApiError::invalid_field(field, "invalid_request", "must be 0 to 100"));
        }
    }
    if let (Some(a), Some(b)) = (f.min_dr, f.max_dr) {
        if a > b {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_filters",
                format!("filters.maxDR ({b}) is below filters.minDR ({a}): no domain could pass."),
            ));
        }
    }
    let mut excluded = Vec::new();
    for (i, d) in f.exclude_domains.unwrap_or_default().iter().enumerate() {
        excluded.push(linkcrm_crm::write::normalize(&format!("filters.excludeDomains[{i}]"), d)?);
    }
    if excluded.len() > 500 {
        return Err(ApiError::invalid_field("filters.excludeDomains", "invalid_request", "at most 500 domains"));
    }
    let days = f.exclude_contacted_within_days.unwrap_or(90);
    if days > 3650 {
        return Err(ApiError::invalid_field("filters.excludeContactedWithinDays", "invalid_request", "0 to 3650"));
    }
    Ok(json!({ "minDR": f.min_dr, "maxDR": f.max_dr, "excludeDomains": excluded,
               "excludeContactedWithinDays": days }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DraftingMode {
    /// Rendered from `templateId`, or `subject` and `body` (free).
    Template,
    /// Written per partner by the LLM (3 credits each), from the template when one is given.
    Llm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BacklinkMode {
    /// The competitor's domain without its subdomains.
    Domain,
    /// The domain and every subdomain.
    Subdomains,
}

/// What both starts share: who to write to, how, and follow-ups.
struct Common {
    name: Option<String>,
    filters: Option<Filters>,
    contact_roles: Option<Vec<String>>,
    seniority: Option<Vec<String>>,
    template_id: Option<crate::ids::Id<crate::ids::Template>>,
    subject: Option<String>,
    body: Option<String>,
    drafting: Option<DraftingMode>,
    tone: Option<Tone>,
    angle: Option<String>,
    follow_ups: Option<Vec<FollowUpInput>>,
    mailbox_id: Option<crate::ids::Id<crate::ids::SendingMailbox>>,
    track_opens: Option<bool>,
    send_window: Option<crate::ops::campaigns::SendWindowInput>,
}

macro_rules! start_input {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[schemars(extend("anyOf" = [
            { "required": ["templateId"], "properties": { "subject": false, "body": false } },
            { "required": ["subject", "body"], "properties": { "templateId": false } },
            { "required": ["drafting"], "properties": { "drafting": { "const": "llm" }, "subject": false, "body": false } }
        ]))]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
            pub name: Option<String>,
            pub filters: Option<Filters>,
            /// Roles to find and prefer (`editor`, `content manager`); matched against positions.
            #[schemars(length(max = 20), inner(length(min = 1, max = 100), pattern(linkcrm_core::rules::ONE_LINE)))]
            pub contact_roles: Option<Vec<String>>,
            /// Apollo seniorities to find and prefer (`manager`, `director`, ...).
            #[schemars(length(max = 10), inner(length(min = 1, max = 50), pattern(linkcrm_core::rules::ONE_LINE)))]
            pub seniority: Option<Vec<String>>,
            #[serde(default)]
            #[schemars(with = "crate::ids::Id<crate::ids::Template>")]
            pub template_id: Option<crate::ids::Id<crate::ids::Template>>,
            #[serde(default)]
            #[schemars(with = "String", length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
            pub subject: Option<String>,
            #[serde(default)]
            #[schemars(with = "String", length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
            pub body: Option<String>,
            /// `template` (default) or `llm`.
            pub drafting: Option<DraftingMode>,
            /// Used with `drafting: llm` (ignored otherwise).
            pub tone: Option<Tone>,
            /// Used with `drafting: llm` (ignored otherwise): the hook, why you are writing to them.
            #[schemars(length(max = 1000))]
            pub angle: Option<String>,
            #[schemars(length(max = 5))]
            pub follow_ups: Option<Vec<FollowUpInput>>,
            pub mailbox_id: Option<crate::ids::Id<crate::ids::SendingMailbox>>,
            /// Sends carry a tracking pixel and record EMAIL_OPENED (default false; opens are
            /// approximate).
            pub track_opens: Option<bool>,
            pub send_window: Option<crate::ops::campaigns::SendWindowInput>,
        }
        impl $name {
            fn common(self) -> (Common, ($($t,)*)) {
                (
                    Common {
                        name: self.name,
                        filters: self.filters,
                        contact_roles: self.contact_roles,
                        seniority: self.seniority,
                        template_id: self.template_id,
                        subject: self.subject,
                        body: self.body,
                        drafting: self.drafting,
                        tone: self.tone,
                        angle: self.angle,
                        follow_ups: self.follow_ups,
                        mailbox_id: self.mailbox_id,
                        track_opens: self.track_opens,
                        send_window: self.send_window,
                    },
                    ($(self.$f,)*),
                )
            }
        }
    };
}

start_input! {
    /// A SERP campaign: the keyword's top organic results become partners.
    SerpStartInput {
        #[schemars(length(min = 1, max = 700), pattern(linkcrm_core::rules::ONE_LINE))]
        keyword: String,
        /// Results researched (default 20, at most 100).
        #[schemars(range(min = 1, max = 100))]
        top_n: Option<u32>,
        /// A location as DataForSEO spells it; the workspace's `primaryLocation` by default.
        #[schemars(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9 ,.'()-]{1,100}$"))]
        location: Option<String>,
        #[schemars(pattern(r"^[a-z]{2}(-[A-Za-z]{2,4})?$"))]
        language: Option<String>,
        device: Option<Device>,
    }
}

start_input! {
    /// A competitor campaign: the domains linking to a competitor (Ahrefs) become partners.
    CompetitorStartInput {
        #[schemars(pattern(linkcrm_core::rules::DOMAIN))]
        competitor_domain: String,
        /// `domain` (default) or `subdomains`.
        mode: Option<BacklinkMode>,
        /// Referring domains researched (default 100, at most 1,000).
        #[schemars(range(min = 1, max = 1000))]
        limit: Option<u32>,
    }
}

/// A started campaign: the campaign and the invocation that runs its pipeline.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    #[serde(flatten)]
    pub campaign: Campaign,
    /// `{invocationId, skill, status, estimatedCost, links}`; its `result` lists every domain
    /// researched with what became of it.
    pub invocation: Value,
}

fn list_of(field: &str, v: Option<Vec<String>>, max: usize, len: usize) -> ApiResult<Vec<String>> {
    let v = v.unwrap_or_default();
    if v.len() > max {
        return Err(ApiError::invalid_field(field, "invalid_request", format!("at most {max} values")));
    }
    let mut out = Vec::new();
    for (i, s) in v.into_iter().enumerate() {
        let s = linkcrm_core::validate::header_text(&format!("{field}[{i}]"), Some(s), len)?
            .ok_or_else(|| ApiError::invalid_field(format!("{field}[{i}]"), "invalid_request", "is empty"))?;
        out.push(s);
    }
    Ok(out)
}

async fn start(
    ctx: Ctx,
    kind: Type,
    common: Common,
    mut settings: Value,
    candidates: u32,
) -> ApiResult<Reply<Started>> {
    let ws = ctx.workspace().to_owned();
    let llm = common.drafting == Some(DraftingMode::Llm);
    let drafts_from =
        c::drafting_settings(&ctx, &mut settings, common.template_id.as_ref(), common.subject, common.body);
    if !drafts_from.await? && !llm {
        return Err(ApiError::invalid_field(
            "templateId",
            "invalid_request",
            "give a templateId, or a subject and a body, or drafting: llm",
        ));
    }
    settings["drafting"] = json!(if llm { "llm" } else { "template" });
    settings["tone"] = json!(common.tone);
    settings["angle"] = json!(linkcrm_core::validate::text("angle", common.angle, 1000)?);
    settings["mailboxId"] = json!(common.mailbox_id);
    settings["trackOpens"] = json!(common.track_opens.unwrap_or(false));
    settings["sendWindow"] = match common.send_window {
        Some(w) => c::send_window_value(w)?,
        None => Value::Null,
    };
    settings["contactRoles"] = json!(list_of("contactRoles", common.contact_roles, 20, 100)?);
    settings["seniority"] = json!(list_of("seniority", common.seniority, 10, 50)?);
    let filters = filters_value(common.filters.unwrap_or_default())?;
    let dr_filter = !filters["minDR"].is_null() || !filters["maxDR"].is_null();
    settings["filters"] = filters;
    settings["followUps"] = c::follow_up_settings(&ctx, common.follow_ups.unwrap_or_default()).await?;
    if let Some(m) = &common.mailbox_id {
        linkcrm_outreach::ops::send_email::resolve_mailbox(&ctx.app, &ws, Some(m.as_str())).await?;
    }
    // The providers the pipeline needs must be configured now (503 here, not half-way).
    match kind {
        Type::Competitor => {
            crate::providers::ahrefs(&ctx.app, &ws).await?;
        }
        _ => {
            crate::providers::dataforseo(&ctx.app, &ws).await?;
            if dr_filter {
                crate::providers::ahrefs(&ctx.app, &ws).await?;
            }
        }
    }
    if llm {
        crate::providers::llm(&ctx.app, &ws).await?;
    }
    let name = match common.name {
        Some(n) => linkcrm_core::validate::header_text("name", Some(n), 200)?
            .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is empty"))?,
        None => match kind {
            Type::Competitor => format!("vs {}", settings["competitorDomain"].as_str().unwrap_or_default()),
            _ => format!("SERP: {}", settings["keyword"].as_str().unwrap_or_default()),
        },
    };
    let (id_kind, skill) = match kind {
        Type::Competitor => (linkcrm_domain::IdKind::CompetitorCampaign, pipeline::COMPETITOR_SKILL),
        _ => (linkcrm_domain::IdKind::SerpCampaign, pipeline::SERP_SKILL),
    };
    let id = linkcrm_domain::new_id(id_kind);
    let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
    let pool = linkcrm_core::workspace::pool_of(&workspace);
    let reserved = pipeline::estimate(kind == Type::Competitor, candidates, dr_filter, llm);
    let inv_id = inv::new_id();
    let mut inv_item = inv::new_item(&inv::NewInvocation {
        id: &inv_id,
        ws: &ws,
        skill,
        input: json!({ "campaignId": id, "settings": settings }),
        pool: &pool,
        reserved_milli: reserved,
        duration_seconds: 10 + 3 * candidates as i64,
    });
    inv_item.insert("agencyId".into(), json!(ctx.caller.agency_id));
    inv_item.insert("usedMilli".into(), json!(0));
    let now = time::now_string();
    let key = keys::campaign(&id);
    let mut item = obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "campaign", "id": id, "type": kind, "name": name,
        "workspaceId": ws, "agencyId": ctx.caller.agency_id, "status": Status::Active,
        "createdAt": now, "updatedAt": now, "version": 1, "settings": settings, "invocationId": inv_id,
        "drafted": 0, "sent": 0, "bounced": 0, "hardBounced": 0, "opened": 0, "replied": 0, "placed": 0,
        "members": 0, "awaiting": 0,
    }));
    for (k, v) in rec::index_attrs(&ws, &id, &now, Status::Active) {
        item.insert(k.into(), v);
    }
    let tl = keys::timeline(&id, &now, "campaign_created");
    let invocation = {
        let v = inv::view(&inv_item);
        json!({ "invocationId": inv_id, "agentId": v["agentId"], "skill": skill, "status": v["status"],
                "estimatedCost": v["estimatedCost"],
                "links": { "self": format!("/v1/agent/invocations/{inv_id}") } })
    };
    let campaign = rec::view(&item);
    let reply =
        Reply { status: Some(StatusCode::ACCEPTED), body: Some(Started { campaign, invocation }), version: Some(1) };
    let created = outbox::event("link_building.campaign.created", Some(&ws), rec::event_data(&item, None, json!({})));
    let mut ops = vec![
        TxOp::put_if(item, Condition::NotExists),
        TxOp::put_if(inv_item, Condition::NotExists),
        TxOp::update(keys::campaign_totals(&ws), Update::new().add("total", 1).add("status#active", 1)),
        TxOp::put(obj(json!({ "PK": tl.pk, "SK": tl.sk, "entity": "campaignTimeline", "at": now,
                              "event": "campaign_created" }))),
        created,
        pipeline::start_op(&id).map_err(|e| {
            tracing::error!(error = ?e, "campaign job rejected by the queue");
            ApiError::internal()
        })?,
    ];
    ops.extend(linkcrm_core::credits::reserve(&pool, &ws, skill, &inv_id, reserved));
    match ctx.commit(ops, &reply).await {
        Ok(()) => Ok(reply),
        Err(StoreError::ConditionFailed { .. }) => {
            Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, skill, reserved).await)
        }
        Err(e) => Err(e.into()),
    }
}

pub struct SerpStart;
impl Operation for SerpStart {
    const NAME: &'static str = "link_building.serp_outreach.start";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = pipeline::SERP_RESEARCH_MILLI as u64;
    const SUMMARY: &'static str = "Start a SERP campaign: the keyword's top results are screened, their contacts found and one draft per partner waits for approval (queued: 202 with the campaign and its invocation; credits reserved as estimated)";
    const TAG: &'static str = TAG;
    type Input = SerpStartInput;
    type Output = Started;

    async fn run(ctx: Ctx, input: SerpStartInput) -> ApiResult<Reply<Started>> {
        let (common, (keyword, top_n, location, language, device)) = input.common();
        let keyword = linkcrm_core::validate::header_text("keyword", Some(keyword), 700)?
            .ok_or_else(|| ApiError::invalid_field("keyword", "invalid_request", "is required"))?;
        let top_n = top_n.unwrap_or(20);
        if !(1..=100).contains(&top_n) {
            return Err(ApiError::invalid_field("topN", "invalid_request", "must be 1 to 100"));
        }
        let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
        let settings = json!({
            "keyword": keyword, "topN": top_n,
            "location": location.or(workspace.settings.primary_location.clone()),
            "language": language.or(workspace.settings.primary_language.clone()),
            "device": device.unwrap_or(Device::Desktop),
        });
        start(ctx, Type::Serp, common, settings, top_n).await
    }
}

pub struct CompetitorStart;
impl Operation for CompetitorStart {
    const NAME: &'static str = "link_building.competitor_outreach.start";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::ACCEPTED);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = pipeline::BACKLINKS_PULL_MILLI as u64;
    const SUMMARY: &'static str = "Start a competitor campaign: the domains linking to a competitor (Ahrefs) are screened, their contacts found and one draft per partner waits for approval (queued: 202; credits reserved as estimated)";
    const TAG: &'static str = TAG;
    type Input = CompetitorStartInput;
    type Output = Started;

    async fn run(ctx: Ctx, input: CompetitorStartInput) -> ApiResult<Reply<Started>> {
        let (common, (competitor, mode, limit)) = input.common();
        let competitor = linkcrm_crm::write::normalize("competitorDomain", &competitor)?;
        let limit = limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::invalid_field("limit", "invalid_request", "must be 1 to 1000"));
        }
        let mode = match mode.unwrap_or(BacklinkMode::Domain) {
            BacklinkMode::Domain => "domain",
            BacklinkMode::Subdomains => "subdomains",
        };
        let settings = json!({ "competitorDomain": competitor, "mode": mode, "limit": limit });
        start(ctx, Type::Competitor, common, settings, limit).await
    }
}

// ---------------------------------------------------------------------------------------------
// The campaign operations, per type

/// An input that names a campaign.
pub trait CampaignRef {
    fn campaign_id(&self) -> &str;
}
impl CampaignRef for IdInput<crate::ids::Campaign> {
    fn campaign_id(&self) -> &str {
        &self.id
    }
}
impl CampaignRef for drafts::DraftsInput {
    fn campaign_id(&self) -> &str {
        &self.id
    }
}
impl CampaignRef for drafts::ApproveInput {
    fn campaign_id(&self) -> &str {
        &self.id
    }
}
impl CampaignRef for drafts::RejectInput {
    fn campaign_id(&self) -> &str {
        &self.id
    }
}
impl CampaignRef for c::UpdateInput {
    fn campaign_id(&self) -> &str {
        &self.id
    }
}

macro_rules! typed {
    ($name:ident, $inner:ty, $wire:literal, $prefix:literal, $summary:literal) => {
        pub struct $name;
        impl Operation for $name {
            const NAME: &'static str = $wire;
            const EFFECT: Effect = <$inner as Operation>::EFFECT;
            const FAMILY: Family = Family::Campaigns;
            const SCOPE: Option<&'static str> = <$inner as Operation>::SCOPE;
            const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
            const SUCCESS: Option<StatusCode> = <$inner as Operation>::SUCCESS;
            const SUMMARY: &'static str = $summary;
            const TAG: &'static str = TAG;
            type Input = <$inner as Operation>::Input;
            type Output = <$inner as Operation>::Output;

            async fn run(ctx: Ctx, input: Self::Input) -> ApiResult<Reply<Self::Output>> {
                if !input.campaign_id().starts_with($prefix) {
                    return Err(ApiError::not_found("campaign_not_found", "campaign", input.campaign_id()));
                }
                <$inner as Operation>::run(ctx, input).await
            }
        }
    };
}

typed!(
    SerpGet,
    c::Get,
    "link_building.serp_outreach.get",
    "scmp_",
    "Get one SERP campaign with its settings and summary (free)"
);
typed!(
    SerpDrafts,
    drafts::Drafts,
    "link_building.serp_outreach.drafts",
    "scmp_",
    "List a SERP campaign's drafted outreach emails with their status"
);
typed!(
    SerpApprove,
    drafts::Approve,
    "link_building.serp_outreach.approve",
    "scmp_",
    "Approve a SERP campaign's drafts (all, or draftIds, with optional edits)"
);
typed!(
    SerpReject,
    drafts::Reject,
    "link_building.serp_outreach.reject",
    "scmp_",
    "Reject a SERP campaign's drafts (all, or draftIds)"
);
typed!(
    SerpUpdate,
    c::Update_,
    "link_building.serp_outreach.update",
    "scmp_",
    "Change a SERP campaign's name, filters (for domains not yet screened) or follow-ups; honours If-Match"
);
typed!(
    SerpCancel,
    c::Cancel,
    "link_building.serp_outreach.cancel",
    "scmp_",
    "Cancel a SERP campaign: waiting drafts cancelled, the pipeline stopped, unused credits released"
);
typed!(
    CompetitorGet,
    c::Get,
    "link_building.competitor_outreach.get",
    "ccmp_",
    "Get one competitor campaign with its settings and summary (free)"
);
typed!(
    CompetitorDrafts,
    drafts::Drafts,
    "link_building.competitor_outreach.drafts",
    "ccmp_",
    "List a competitor campaign's drafted outreach emails with their status"
);
typed!(
    CompetitorApprove,
    drafts::Approve,
    "link_building.competitor_outreach.approve",
    "ccmp_",
    "Approve a competitor campaign's drafts (all, or draftIds, with optional edits)"
);
typed!(
    CompetitorReject,
    drafts::Reject,
    "link_building.competitor_outreach.reject",
    "ccmp_",
    "Reject a competitor campaign's drafts (all, or draftIds)"
);
typed!(
    CompetitorUpdate,
    c::Update_,
    "link_building.competitor_outreach.update",
    "ccmp_",
    "Change a competitor campaign's name, filters (for domains not yet screened) or follow-ups; honours If-Match"
);
typed!(
    CompetitorCancel,
    c::Cancel,
    "link_building.competitor_outreach.cancel",
    "ccmp_",
    "Cancel a competitor campaign: waiting drafts cancelled, the pipeline stopped, unused credits released"
);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypedListInput {
    /// Comma list of statuses: active, paused, completed, cancelled.
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(
        with = "Option<String>",
        pattern(r"^(active|paused|completed|cancelled)(,(active|paused|completed|cancelled))*$")
    )]
    pub status: Option<Vec<String>>,
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub since: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

macro_rules! typed_list {
    ($name:ident, $wire:literal, $type:literal, $summary:literal) => {
        pub struct $name;
        impl Operation for $name {
            const NAME: &'static str = $wire;
            const EFFECT: Effect = Effect::Read;
            const FAMILY: Family = Family::Campaigns;
            const SCOPE: Option<&'static str> = Some("campaigns:read");
            const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
            const SUMMARY: &'static str = $summary;
            const TAG: &'static str = TAG;
            type Input = TypedListInput;
            type Output = ListResponse<CampaignSummary>;

            async fn run(ctx: Ctx, input: TypedListInput) -> ApiResult<Reply<ListResponse<CampaignSummary>>> {
                let all = c::ListInput {
                    r#type: Some(vec![$type.to_owned()]),
                    status: input.status,
                    since: input.since,
                    limit: input.limit,
                    cursor: input.cursor,
                };
                c::List::run(ctx, all).await
            }
        }
    };
}

typed_list!(
    SerpList,
    "link_building.serp_outreach.list",
    "serp",
    "List SERP campaigns, newest first, with their counts (free)"
);
typed_list!(
    CompetitorList,
    "link_building.competitor_outreach.list",
    "competitor",
    "List competitor campaigns, newest first, with their counts (free)"
);
