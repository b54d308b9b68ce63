//! Leads: a custom campaign's partners as outreach tools show them (seed 003). A lead is a
//! membership (`CMP#<id>#RELS` / `<rel>`) with what the team knew when adding it (URL, title,
//! contact email, scores, source) and the lead status a person set. Its id is the relationship's.
//! The status shown is the one set, unless the campaign's own mail moved on since
//! (`linkcrm_domain::lead::status`). Setting a status with a pipeline counterpart records
//! STATUS_CHANGED on the relationship with `metadata.leadStatus`, in one transaction with the
//! lead; `bounced` and `lost` change only the lead.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::ListResponse;
use crate::records as rec;
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_crm::campaign_facts::{self, Enrol};
use linkcrm_crm::records::{obj, str_of};
use linkcrm_crm::write::{self, NewEvent, Ride};
use linkcrm_domain::campaign::Attribution;
use linkcrm_domain::enums::{EventType, Source};
use linkcrm_domain::lead::{self, LeadStatus};
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TAG: &str = "Campaigns";
/// Leads one add or status request may carry.
pub const MAX_LEADS_PER_REQUEST: usize = 100;

/// A lead as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lead {
    /// The lead's id: the workspace's relationship with the site.
    pub relationship_id: String,
    pub campaign_id: String,
    pub account_id: Option<String>,
    pub domain: Option<String>,
    pub website_url: Option<String>,
    pub website_title: Option<String>,
    pub contact_id: Option<String>,
    pub contact_email: Option<String>,
    pub quality_score: Option<f64>,
    pub relevance_score: Option<f64>,
    pub guest_post_likelihood: Option<f64>,
    pub source: Option<String>,
    pub snippet: Option<String>,
    /// `discovered`, `contacted`, `replied`, `placed`, `bounced`, `lost`.
    pub status: LeadStatus,
    /// When a person last set the status (null when only the campaign's mail moved it).
    pub status_set_at: Option<String>,
    pub notes: Option<String>,
    pub added_at: Option<String>,
    /// The campaign's next follow-up to this lead, when one is scheduled or was stopped.
    pub follow_up: Option<FollowUpState>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowUpState {
    /// `scheduled`, `cancelled`, `sent`, ...
    pub status: Option<String>,
    pub step: Option<i64>,
    /// The send (invocation) it follows.
    pub after: Option<String>,
    pub due_at: Option<String>,
    pub scheduled_at: Option<String>,
    pub reason: Option<Value>,
}

pub fn view(member: &Item) -> Lead {
    let lead = member.get("lead").and_then(Value::as_object);
    let s = |k: &str| lead.and_then(|l| l.get(k)).and_then(Value::as_str).map(str::to_owned);
    let f = |k: &str| lead.and_then(|l| l.get(k)).and_then(Value::as_f64);
    let att: Attribution = member.get("att").and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
    let set_at = str_of(member, "leadStatusAt");
    let set = str_of(member, "leadStatus").and_then(LeadStatus::parse).zip(set_at);
    Lead {
        relationship_id: str_of(member, "relationshipId").unwrap_or_default().to_owned(),
        campaign_id: str_of(member, "campaignId").unwrap_or_default().to_owned(),
        account_id: str_of(member, "accountId").map(str::to_owned),
        domain: str_of(member, "domain").map(str::to_owned),
        website_url: s("websiteUrl"),
        website_title: s("websiteTitle"),
        contact_id: s("contactId"),
        contact_email: s("contactEmail"),
        quality_score: f("qualityScore"),
        relevance_score: f("relevanceScore"),
        guest_post_likelihood: f("guestPostLikelihood"),
        source: s("source"),
        snippet: s("snippet"),
        status: lead::status(set, &att),
        status_set_at: set_at.map(str::to_owned),
        notes: str_of(member, "leadNotes").map(str::to_owned),
        added_at: str_of(member, "addedAt").map(str::to_owned),
        follow_up: str_of(member, "followUpStatus").map(|status| FollowUpState {
            status: Some(status.to_owned()),
            step: member.get("followUpStep").and_then(Value::as_i64),
            after: str_of(member, "followUpAfter").map(str::to_owned),
            due_at: str_of(member, "followUpDueAt").map(str::to_owned),
            scheduled_at: str_of(member, "followUpScheduledAt").map(str::to_owned),
            reason: member.get("followUpReason").filter(|r| !r.is_null()).cloned(),
        }),
    }
}

/// The campaign, which must be this workspace's custom campaign (and, for adding, not ended).
pub async fn open_campaign(ctx: &Ctx, id: &str, adding: bool) -> ApiResult<Item> {
    let item = super::campaigns::load(ctx, id).await?;
    if str_of(&item, "type") != Some("custom") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_state",
            "Leads belong to custom campaigns; SERP and competitor campaigns find their own partners.",
        ));
    }
    if adding && rec::status_of(&item).ended() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_state",
            format!("The campaign is {}; leads cannot be added.", rec::status_of(&item).as_str()),
        ));
    }
    Ok(item)
}

// ---------------------------------------------------------------------------------------------
// Add

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadInput {
    /// The site's URL (or bare domain); the lead is the workspace's relationship with its domain.
    #[schemars(length(min = 1, max = 2048))]
    pub website_url: String,
    #[schemars(length(max = 500))]
    pub website_title: Option<String>,
    /// The person to write to: found among contacts by email, or made at the site's account.
    #[schemars(length(max = 320))]
    pub contact_email: Option<String>,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub quality_score: Option<f64>,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub relevance_score: Option<f64>,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub guest_post_likelihood: Option<f64>,
    /// Where the lead came from (`manual`, `serp`, a tool's name).
    #[schemars(length(max = 100))]
    pub source: Option<String>,
    #[schemars(length(max = 2000))]
    pub snippet: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    #[schemars(length(min = 1, max = 100))]
    pub leads: Vec<LeadInput>,
}

/// A lead not added: `already_member` (skipped: the site is in the campaign already, possibly
/// named twice in this request) or why it failed (`invalid_domain`, `invalid_email`,
/// `too_many_campaigns`, `invalid_score`). A site that asked not to be contacted is added like
/// any other: the sending policy blocks every send to it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadProblem {
    pub index: usize,
    pub website_url: String,
    pub relationship_id: Option<String>,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddOutput {
    pub added: Vec<Lead>,
    pub skipped: Vec<LeadProblem>,
    pub failed: Vec<LeadProblem>,
}

fn score(field: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !(0.0..=1.0).contains(&x) || x.is_nan() => Err(format!("{field} must be between 0 and 1")),
        other => Ok(other),
    }
}

fn trimmed(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub struct Add;
impl Operation for Add {
    const NAME: &'static str = "link_building.campaign.leads.add";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Add leads (sites with their contact, scores and source) to a custom campaign; duplicates are skipped";
    const TAG: &'static str = TAG;
    type Input = AddInput;
    type Output = AddOutput;

    async fn run(ctx: Ctx, input: AddInput) -> ApiResult<Reply<AddOutput>> {
        Ok(Reply::ok(add(&ctx, &input.id, input.leads).await?))
    }
}

/// Adds `leads` to custom campaign `id` (open): each one's relationship (made when new) and
/// contact (found by email, or made), then its membership; what was added, skipped or failed.
pub async fn add(ctx: &Ctx, id: &str, leads: Vec<LeadInput>) -> ApiResult<AddOutput> {
    if leads.len() > MAX_LEADS_PER_REQUEST {
        return Err(ApiError::invalid_field(
            "leads",
            "invalid_request",
            format!("at most {MAX_LEADS_PER_REQUEST} leads per request"),
        ));
    }
    open_campaign(ctx, id, true).await?;
    let ws = ctx.workspace().to_owned();
    let mut out = AddOutput { added: Vec::new(), skipped: Vec::new(), failed: Vec::new() };
    for (index, l) in leads.into_iter().enumerate() {
        let url = l.website_url.trim().to_owned();
        let problem = |code: &str, message: String, rel: Option<String>| LeadProblem {
            index,
            website_url: url.clone(),
            relationship_id: rel,
            code: code.to_owned(),
            message,
        };
        let domain = match linkcrm_domain::normalize::normalize_domain(&url) {
            Ok(d) => d,
            Err(e) => {
                out.failed.push(problem("invalid_domain", e.to_string(), None));
                continue;
            }
        };
        let scores = (|| {
            Ok::<_, String>((
                score("qualityScore", l.quality_score)?,
                score("relevanceScore", l.relevance_score)?,
                score("guestPostLikelihood", l.guest_post_likelihood)?,
            ))
        })();
        let (quality, relevance, likelihood) = match scores {
            Ok(s) => s,
            Err(m) => {
                out.failed.push(problem("invalid_score", m, None));
                continue;
            }
        };
        let email = match trimmed(l.contact_email) {
            None => None,
            Some(e) => match linkcrm_domain::normalize::normalize_email(&e) {
                Some(e) => Some(e),
                None => {
                    out.failed.push(problem("invalid_email", format!("'{e}' is not an email address"), None));
                    continue;
                }
            },
        };
        let details = json!({ "campaign": true, "lead": true });
        let (rel, _) = match write::ensure_relationship(&ctx.app, &ws, &domain, Source::Import, Some(details)).await {
            Ok(r) => r,
            Err(e) if e.status.is_client_error() => {
                out.failed.push(problem(e.code, e.message, None));
                continue;
            }
            Err(e) => return Err(e),
        };
        let contact = match &email {
            Some(e) => Some(write::ensure_contact(&ctx.app, &ws, rel.account_id(), e, None, None).await?.0),
            None => None,
        };
        let lead = json!({
            "websiteUrl": url, "websiteTitle": trimmed(l.website_title), "contactId": contact,
            "contactEmail": email, "qualityScore": quality, "relevanceScore": relevance,
            "guestPostLikelihood": likelihood, "source": trimmed(l.source), "snippet": trimmed(l.snippet),
        });
        let extra = obj(json!({ "lead": lead }));
        match super::campaigns::enrol_with(&ctx.app, id, &rel, extra).await? {
            Ok(member) => out.added.push(view(&member)),
            Err(Enrol::Already) => out.skipped.push(problem(
                "already_member",
                format!("{domain} is already a lead of this campaign"),
                Some(rel.id().to_owned()),
            )),
            Err(Enrol::TooMany) => out.failed.push(problem(
                "too_many_campaigns",
                format!("The relationship is in {} campaigns already", campaign_facts::MAX_CAMPAIGNS_PER_RELATIONSHIP),
                Some(rel.id().to_owned()),
            )),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// List and get

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// Comma list of lead statuses.
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(
        with = "Option<String>",
        pattern(
            r"^(discovered|contacted|replied|placed|bounced|lost)(,(discovered|contacted|replied|placed|bounced|lost))*$"
        )
    )]
    pub status: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.campaign.leads.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List a campaign's leads in the order they were added, with their status (free)";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Lead>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Lead>>> {
        let limit = crate::list::limit(input.limit)?;
        let mut wanted = Vec::new();
        for s in input.status.unwrap_or_default() {
            wanted.push(LeadStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid_field("status", "invalid_request", format!("unknown lead status '{s}'"))
            })?);
        }
        super::campaigns::load(&ctx, &input.id).await?;
        let scope = format!("{}#{}#{wanted:?}", Self::NAME, input.id.as_str());
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let page = ctx
            .app
            .store
            .query(Query::partition(keys::campaign_members_pk(&input.id)).limit(limit).after(cursor))
            .await?;
        // The status is derived (the mail may have moved it), so it filters after the read: a
        // page may hold fewer than `limit`; `nextCursor` goes on.
        let data = page.items.iter().map(view).filter(|l| wanted.is_empty() || wanted.contains(&l.status)).collect();
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    pub relationship_id: crate::ids::Id<crate::ids::Relationship>,
}

fn lead_not_found(id: &str) -> ApiError {
    ApiError::not_found("lead_not_found", "lead in this campaign", id)
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.campaign.leads.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one lead of a campaign by its relationship id (free)";
    const TAG: &'static str = TAG;
    type Input = GetInput;
    type Output = Lead;

    async fn run(ctx: Ctx, input: GetInput) -> ApiResult<Reply<Lead>> {
        super::campaigns::load(&ctx, &input.id).await?;
        let member = ctx
            .app
            .store
            .get(&keys::campaign_member(&input.id, &input.relationship_id))
            .await?
            .ok_or_else(|| lead_not_found(&input.relationship_id))?;
        Ok(Reply::ok(view(&member)))
    }
}

// ---------------------------------------------------------------------------------------------
// Status

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// The leads (relationship ids) to change; repeats count once.
    #[schemars(length(min = 1, max = 100))]
    pub relationship_ids: Vec<crate::ids::Id<crate::ids::Relationship>>,
    pub status: LeadStatus,
    /// Replaces the leads' notes when given.
    #[schemars(length(max = 2000))]
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusFailure {
    pub relationship_id: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusOutput {
    pub updated: Vec<Lead>,
    pub failed: Vec<StatusFailure>,
}

pub struct SetStatus;
impl Operation for SetStatus {
    const NAME: &'static str = "link_building.campaign.leads.update_status";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Set the status of leads of a campaign; a status with a pipeline counterpart records STATUS_CHANGED";
    const TAG: &'static str = TAG;
    type Input = StatusInput;
    type Output = StatusOutput;

    async fn run(ctx: Ctx, input: StatusInput) -> ApiResult<Reply<StatusOutput>> {
        if input.relationship_ids.len() > MAX_LEADS_PER_REQUEST {
            return Err(ApiError::invalid_field(
                "relationshipIds",
                "invalid_request",
                format!("at most {MAX_LEADS_PER_REQUEST} leads per request"),
            ));
        }
        if input.notes.as_ref().is_some_and(|n| n.chars().count() > 2000) {
            return Err(ApiError::invalid_field("notes", "invalid_request", "at most 2000 characters"));
        }
        super::campaigns::load(&ctx, &input.id).await?;
        let ws = ctx.workspace().to_owned();
        let mut ids: Vec<String> = Vec::new();
        for id in &input.relationship_ids {
            if !ids.iter().any(|i| i == id.as_str()) {
                ids.push(id.as_str().to_owned());
            }
        }
        let wanted: Vec<_> = ids.iter().map(|r| keys::campaign_member(&input.id, r)).collect();
        let found: std::collections::HashMap<String, Item> = ctx
            .app
            .store
            .batch_get(&wanted)
            .await?
            .into_iter()
            .filter_map(|m| Some((str_of(&m, "relationshipId")?.to_owned(), m)))
            .collect();
        let mut out = StatusOutput { updated: Vec::new(), failed: Vec::new() };
        for rel_id in ids {
            let Some(member) = found.get(&rel_id) else {
                out.failed.push(StatusFailure {
                    relationship_id: rel_id.clone(),
                    code: "lead_not_found".into(),
                    message: "No such lead in this campaign".into(),
                });
                continue;
            };
            match set_status(&ctx, &ws, &input.id, member, input.status, input.notes.clone()).await {
                Ok(m) => out.updated.push(view(&m)),
                Err(e) if e.status.is_client_error() && e.status != StatusCode::TOO_MANY_REQUESTS => {
                    out.failed.push(StatusFailure { relationship_id: rel_id, code: e.code.into(), message: e.message })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Reply::ok(out))
    }
}

/// Sets one lead's status (and notes): with its STATUS_CHANGED when the status has a pipeline
/// counterpart the relationship is not at yet, else the membership alone. Answers the member as
/// written.
async fn set_status(
    ctx: &Ctx,
    ws: &str,
    campaign: &str,
    member: &Item,
    status: LeadStatus,
    notes: Option<String>,
) -> ApiResult<Item> {
    let rel_id = str_of(member, "relationshipId").unwrap_or_default().to_owned();
    let now = time::now_string();
    let mut change = Update::new().set("leadStatus", json!(status)).set("leadStatusAt", json!(now));
    let mut after = member.clone();
    after.insert("leadStatus".into(), json!(status));
    after.insert("leadStatusAt".into(), json!(now));
    if let Some(n) = notes {
        change = change.set("leadNotes", json!(n));
        after.insert("leadNotes".into(), json!(n));
    }
    let key = keys::campaign_member(campaign, &rel_id);
    if let Some(to) = status.pipeline() {
        let new = NewEvent {
            r#type: EventType::StatusChanged,
            contact_id: None,
            subject: None,
            content: None,
            metadata: Some(json!({ "to": to, "leadStatus": status, "campaignId": campaign })),
            occurred_at: None,
        };
        let ride_ops: write::RideOps = {
            let (key, change) = (key.clone(), change.clone());
            Box::new(move |_| Ok(vec![TxOp::update_if(key.clone(), change.clone(), Condition::Exists)]))
        };
        let ride = Ride { ops: Some(ride_ops), ..Ride::default() };
        match write::record_event(&ctx.app, &ctx.caller.agency_id, ws, &rel_id, new, ride, None).await {
            Ok(_) => return Ok(after),
            // Already at that pipeline status: only the lead changes.
            Err(write::EventError::StatusUnchanged(_)) => {}
            Err(write::EventError::RideConditionFailed) => return Err(lead_not_found(&rel_id)),
            Err(e) => return Err(e.into()),
        }
    }
    match ctx.app.store.update(&key, change, Some(Condition::Exists)).await {
        Ok(item) => Ok(item),
        Err(StoreError::ConditionFailed { .. }) => Err(lead_not_found(&rel_id)),
        Err(e) => Err(e.into()),
    }
}
