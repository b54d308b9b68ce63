//! Seed 001's unified campaign endpoints and the custom campaign (`POST /v1/link-building/campaign`
//! with `type: "custom"`). A campaign's record `CMP#<id>` / `#META` holds its settings, status and
//! counters (the counters events move are kept by crm's writer, `campaign_facts`); its members
//! `CMP#<id>#RELS` / `<rel>`; its drafts and sends `CMP#<id>#DRAFTS` / `<inv>`.

use crate::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::{self, ListResponse};
use crate::records::{self as rec, Campaign, CampaignSummary, Status, Type};
use crate::{keys, lenient, outbox};
use axum::http::StatusCode;
use linkcrm_crm::campaign_facts::{self, Enrol};
use linkcrm_crm::records::{int_of, obj, str_of, RelationshipRecord};
use linkcrm_domain::enums::Source;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Index, Item, Query, SortKey, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TAG: &str = "Campaigns";
/// Partners a create or add request may name at once, by relationship and by domain each.
pub const MAX_MEMBERS_PER_REQUEST: usize = 100;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("campaign_not_found", "campaign", id)
}

/// Campaign `id` of the caller's workspace (another's reads as not found).
pub async fn load(ctx: &Ctx, id: &str) -> ApiResult<Item> {
    let item = ctx.app.store.get(&keys::campaign(id)).await?.ok_or_else(|| not_found(id))?;
    if str_of(&item, "workspaceId") != Some(ctx.workspace()) || str_of(&item, "entity") != Some("campaign") {
        return Err(not_found(id));
    }
    Ok(item)
}

fn version(item: &Item) -> i64 {
    int_of(item, "version").unwrap_or(1)
}

// ---------------------------------------------------------------------------------------------
// Create (custom)

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["templateId"], "properties": { "subject": false, "body": false } },
    { "required": ["subject", "body"], "properties": { "templateId": false } },
    { "properties": { "templateId": false, "subject": false, "body": false } }
]))]
pub struct CreateInput {
    /// `custom` (SERP and competitor campaigns start at their own endpoints).
    #[schemars(extend("enum" = ["custom"]))]
    pub r#type: String,
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: String,
    /// What the campaign is for, in the team's words.
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// Target keywords (kept with the campaign, for discovery and reporting).
    #[schemars(length(max = 50), inner(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE)))]
    pub keywords: Option<Vec<String>>,
    /// Partners by relationship (at most 100 per request; add more with `/relationships`).
    #[schemars(length(max = 100))]
    pub relationship_ids: Option<Vec<crate::ids::Id<crate::ids::Relationship>>>,
    /// Partners by domain: the workspace's relationship with each, made when it has none.
    #[schemars(length(max = 100), inner(pattern(linkcrm_core::rules::DOMAIN)))]
    pub domains: Option<Vec<String>>,
    /// Drafts from this template...
    #[serde(default)]
    #[schemars(with = "crate::ids::Id<crate::ids::Template>")]
    pub template_id: Option<crate::ids::Id<crate::ids::Template>>,
    /// ... or from this subject and body (placeholders allowed). Without either, the campaign
    /// makes no drafts: its sends are `send-email` calls.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: Option<String>,
    /// The mailbox sends go from (the workspace's first active one when absent).
    pub mailbox_id: Option<crate::ids::Id<crate::ids::SendingMailbox>>,
    /// Follow-ups after each send, in order (at most 5).
    #[schemars(length(max = 5))]
    pub follow_ups: Option<Vec<FollowUpInput>>,
    /// Sends carry an HTML part with a tracking pixel and record EMAIL_OPENED (default false:
    /// pixels hurt cold-email deliverability, and privacy-protecting clients make opens approximate).
    pub track_opens: Option<bool>,
    pub send_window: Option<SendWindowInput>,
}

/// One follow-up step: `afterDays` after the send before it, from a template or a body (and an
/// optional subject; without one it is "Re: " and the subject it follows).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["templateId"], "properties": { "subject": false, "body": false } },
    { "required": ["body"], "properties": { "templateId": false } }
]))]
pub struct FollowUpInput {
    #[schemars(range(min = 1, max = 60))]
    pub after_days: u32,
    #[serde(default)]
    #[schemars(with = "crate::ids::Id<crate::ids::Template>")]
    pub template_id: Option<crate::ids::Id<crate::ids::Template>>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// When the campaign's emails may go out: these weekdays, from `start` to `end` (HH:MM, `end`
/// may be 24:00), in the workspace's `settings.timeZone` (UTC when unset). Sends due outside it
/// wait for its next opening.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendWindowInput {
    #[schemars(length(min = 1, max = 7))]
    pub days: Vec<Weekday>,
    #[schemars(pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    #[schemars(pattern(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub end: String,
}

/// A send window as stored in the campaign's settings (422 `invalid_send_window` when it never opens).
pub fn send_window_value(w: SendWindowInput) -> ApiResult<Value> {
    let days: Vec<String> = w.days.iter().map(|d| format!("{d:?}").to_ascii_lowercase()).collect();
    match linkcrm_domain::send_window::SendWindow::parse(&days, &w.start, &w.end) {
        Ok(win) => Ok(win.to_json()),
        Err(linkcrm_domain::send_window::WindowError::Time(t)) => {
            Err(ApiError::invalid_field("sendWindow", "invalid_request", format!("{t} is not a time as HH:MM")))
        }
        Err(e) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_send_window", format!("sendWindow: {e}.")))
        }
    }
}

/// What a campaign drafts from, into its settings: a template (copied in), or a subject and a
/// body (checked). `false` when neither was given; 400 for a mix of the two.
pub async fn drafting_settings(
    ctx: &Ctx,
    settings: &mut Value,
    template_id: Option<&crate::ids::Id<crate::ids::Template>>,
    subject: Option<String>,
    body: Option<String>,
) -> ApiResult<bool> {
    match (template_id, subject, body) {
        (Some(t), None, None) => {
            let tpl = crate::ops::templates::load(ctx, t).await?;
            settings["templateId"] = json!(t.as_str());
            settings["subject"] = tpl.get("subject").cloned().unwrap_or_default();
            settings["body"] = tpl.get("body").cloned().unwrap_or_default();
            Ok(true)
        }
        (None, Some(s), Some(b)) => {
            let s = linkcrm_core::validate::header_text("subject", Some(s), 998)?.unwrap_or_default();
            let b = linkcrm_core::validate::text("body", Some(b), 100_000)?.unwrap_or_default();
            crate::ops::templates::check("subject", &s)?;
            crate::ops::templates::check("body", &b)?;
            settings["subject"] = json!(s);
            settings["body"] = json!(b);
            Ok(true)
        }
        (None, None, None) => Ok(false),
        _ => Err(ApiError::invalid_field(
            "templateId",
            "invalid_request",
            "give a templateId, or a subject and a body (not both)",
        )),
    }
}

/// The follow-up steps as stored in the campaign's settings (templates copied in).
pub async fn follow_up_settings(ctx: &Ctx, steps: Vec<FollowUpInput>) -> ApiResult<Value> {
    if steps.len() > 5 {
        return Err(ApiError::invalid_field("followUps", "invalid_request", "at most 5 follow-ups"));
    }
    let mut out = Vec::new();
    for (i, f) in steps.into_iter().enumerate() {
        let field = |k: &str| format!("followUps[{i}].{k}");
        if !(1..=60).contains(&f.after_days) {
            return Err(ApiError::invalid_field(field("afterDays"), "invalid_request", "must be 1 to 60"));
        }
        let (subject, body) = match (&f.template_id, f.subject, f.body) {
            (Some(t), None, None) => {
                let tpl = crate::ops::templates::load(ctx, t).await?;
                (str_of(&tpl, "subject").map(str::to_owned), str_of(&tpl, "body").unwrap_or_default().to_owned())
            }
            (None, s, Some(b)) => {
                let s = match s {
                    Some(s) => linkcrm_core::validate::header_text(&field("subject"), Some(s), 998)?,
                    None => None,
                };
                let b = linkcrm_core::validate::text(&field("body"), Some(b), 100_000)?.unwrap_or_default();
                (s, b)
            }
            _ => {
                return Err(ApiError::invalid_field(
                    field("templateId"),
                    "invalid_request",
                    "give a templateId, or a body (and optionally a subject)",
                ))
            }
        };
        if let Some(s) = &subject {
            crate::ops::templates::check(&field("subject"), s)?;
        }
        crate::ops::templates::check(&field("body"), &body)?;
        out.push(json!({ "afterDays": f.after_days, "templateId": f.template_id.as_ref().map(|t| t.as_str()),
                         "subject": subject, "body": body }));
    }
    Ok(json!(out))
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.campaign.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Start a custom campaign with partners by relationship or domain; drafts from a template or subject and body wait for approval";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Campaign>> {
        if input.r#type != "custom" {
            return Err(ApiError::invalid_field(
                "type",
                "invalid_request",
                "must be custom here; SERP and competitor campaigns start at /v1/link-building/serp-outreach and /competitor-outreach",
            ));
        }
        let ws = ctx.workspace().to_owned();
        let name = linkcrm_core::validate::header_text("name", Some(input.name), 200)?
            .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
        let description = match input.description {
            Some(d) if d.chars().count() > 2000 => {
                return Err(ApiError::invalid_field("description", "invalid_request", "at most 2000 characters"))
            }
            Some(d) if !d.trim().is_empty() => Some(d),
            _ => None,
        };
        let keywords = keywords_of(input.keywords.unwrap_or_default())?;
        let mut settings = json!({ "templateId": null, "subject": null, "body": null, "mailboxId": input.mailbox_id });
        // Without a template or a subject and body the campaign makes no drafts: its sends are
        // send-email calls.
        drafting_settings(&ctx, &mut settings, input.template_id.as_ref(), input.subject, input.body).await?;
        if let Some(m) = &input.mailbox_id {
            linkcrm_outreach::ops::send_email::resolve_mailbox(&ctx.app, &ws, Some(m.as_str())).await?;
        }
        settings["followUps"] = follow_up_settings(&ctx, input.follow_ups.unwrap_or_default()).await?;
        settings["trackOpens"] = json!(input.track_opens.unwrap_or(false));
        settings["sendWindow"] = match input.send_window {
            Some(w) => send_window_value(w)?,
            None => Value::Null,
        };
        let rels =
            resolve_partners(&ctx, input.relationship_ids.unwrap_or_default(), input.domains.unwrap_or_default())
                .await?;
        let id = linkcrm_domain::new_id(linkcrm_domain::IdKind::Campaign);
        let now = time::now_string();
        let key = keys::campaign(&id);
        let mut item = obj(json!({
            "PK": key.pk, "SK": key.sk, "entity": "campaign", "id": id, "type": Type::Custom, "name": name,
            "workspaceId": ws, "agencyId": ctx.caller.agency_id, "status": Status::Active,
            "createdAt": now, "updatedAt": now, "version": 1, "settings": settings,
            "drafted": 0, "sent": 0, "bounced": 0, "hardBounced": 0, "opened": 0, "replied": 0, "placed": 0,
            "members": 0, "awaiting": 0, "description": description, "keywords": keywords,
        }));
        for (k, v) in rec::index_attrs(&ws, &id, &now, Status::Active) {
            item.insert(k.into(), v);
        }
        let totals = Update::new().add("total", 1).add("status#active", 1);
        let created =
            outbox::event("link_building.campaign.created", Some(&ws), rec::event_data(&item, None, json!({})));
        let ops = vec![
            TxOp::put_if(item, Condition::NotExists),
            TxOp::update(keys::campaign_totals(&ws), totals),
            TxOp::put(timeline_item(&id, &now, "campaign_created", None)),
            created,
        ];
        ctx.app.store.transact(ops).await?;
        // Members join one transaction each (each also changes its relationship's campaign list);
        // a crash part-way leaves a campaign with the members that joined, all consistent.
        let mut added = 0;
        for rel in &rels {
            if enrol(&ctx, &id, rel).await?.is_ok() {
                added += 1;
            }
        }
        if added > 0 {
            crate::jobs::enqueue_drafting(&ctx.app, &id).await?;
        }
        let item = load(&ctx, &id).await?;
        Ok(Reply::created(rec::view(&item)).with_version(version(&item)))
    }
}

/// Keywords trimmed, one line each, without repeats (case-insensitive), in the order given.
fn keywords_of(raw: Vec<String>) -> ApiResult<Vec<String>> {
    if raw.len() > 50 {
        return Err(ApiError::invalid_field("keywords", "invalid_request", "at most 50 keywords"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, k) in raw.into_iter().enumerate() {
        let field = format!("keywords[{i}]");
        let k = linkcrm_core::validate::header_text(&field, Some(k), 200)?
            .ok_or_else(|| ApiError::invalid_field(field, "invalid_request", "must not be blank"))?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&k)) {
            out.push(k);
        }
    }
    Ok(out)
}

fn timeline_item(id: &str, at: &str, name: &str, extra: Option<Value>) -> Item {
    let k = keys::timeline(id, at, name);
    let mut item = obj(json!({ "PK": k.pk, "SK": k.sk, "entity": "campaignTimeline", "at": at, "event": name }));
    if let Some(Value::Object(m)) = extra {
        item.extend(m);
    }
    item
}

/// The relationships named by id (each must be this workspace's) or by domain (made when the
/// workspace has none with that account).
async fn resolve_partners(
    ctx: &Ctx,
    ids: Vec<crate::ids::Id<crate::ids::Relationship>>,
    domains: Vec<String>,
) -> ApiResult<Vec<RelationshipRecord>> {
    // Each list as its schema says (the two together may name up to twice as many).
    for (field, n) in [("relationshipIds", ids.len()), ("domains", domains.len())] {
        if n > MAX_MEMBERS_PER_REQUEST {
            return Err(ApiError::invalid_field(
                field,
                "invalid_request",
                format!("at most {MAX_MEMBERS_PER_REQUEST} per request"),
            ));
        }
    }
    let ws = ctx.workspace();
    let mut out: Vec<RelationshipRecord> = Vec::new();
    // One BatchGetItem for all of them; another workspace's reads as not found.
    let keys: Vec<_> = ids.iter().map(|id| linkcrm_crm::keys::relationship(id)).collect();
    let found: std::collections::HashMap<String, Item> = ctx
        .app
        .store
        .batch_get(&keys)
        .await?
        .into_iter()
        .filter(|r| str_of(r, "organizationId") == Some(ws) && str_of(r, "entity") == Some("relationship"))
        .filter_map(|r| Some((str_of(&r, "id")?.to_owned(), r)))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let Some(item) = found.get(id.as_str()) else {
            let mut e = ApiError::not_found("relationship_not_found", "relationship", id);
            e.errors.push(linkcrm_core::error::FieldError {
                field: format!("relationshipIds[{i}]"),
                code: "not_found".into(),
                message: "no such relationship in this workspace".into(),
            });
            return Err(e);
        };
        out.push(RelationshipRecord(item.clone()));
    }
    let mut normalised = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        normalised.push(linkcrm_crm::write::normalize(&format!("domains[{i}]"), d)?);
    }
    for d in normalised {
        let details = json!({ "campaign": true });
        let (rel, _) = linkcrm_crm::write::ensure_relationship(&ctx.app, ws, &d, Source::Manual, Some(details)).await?;
        out.push(rel);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.id().to_owned()));
    Ok(out)
}

/// Makes `rel` a member of campaign `id` (and counts it), retrying on a concurrent change of the
/// relationship's campaign list. `Err(Enrol)` when it is already a member or in too many.
pub async fn enrol(ctx: &Ctx, id: &str, rel: &RelationshipRecord) -> ApiResult<Result<(), Enrol>> {
    enrol_app(&ctx.app, id, rel).await
}

pub async fn enrol_app(app: &crate::App, id: &str, rel: &RelationshipRecord) -> ApiResult<Result<(), Enrol>> {
    Ok(enrol_with(app, id, rel, linkcrm_storage::Item::new()).await?.map(|_| ()))
}

/// [`enrol_app`] with more attributes on the membership (a lead's facts); answers the member as
/// written.
pub async fn enrol_with(
    app: &crate::App,
    id: &str,
    rel: &RelationshipRecord,
    extra: linkcrm_storage::Item,
) -> ApiResult<Result<Item, Enrol>> {
    let mut rel = RelationshipRecord(rel.0.clone());
    for _ in 0..4 {
        let mut member = obj(json!({
            "entity": "campaignMember", "workspaceId": rel.workspace(), "accountId": rel.account_id(),
            "domain": str_of(&rel.0, "accountDomain"), "addedAt": time::now_string(), "state": "pending",
        }));
        member.extend(extra.clone());
        let mut ops = match campaign_facts::enrol_ops(&rel, id, member) {
            Ok(ops) => ops,
            Err(e) => return Ok(Err(e)),
        };
        let written = match &ops[0] {
            TxOp::Put { item, .. } => item.clone(),
            _ => unreachable!("enrol_ops puts the member first"),
        };
        ops.push(TxOp::update_if(keys::campaign(id), Update::new().add("members", 1), Condition::Exists));
        match app.store.transact(ops).await {
            Ok(()) => return Ok(Ok(written)),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                rel = linkcrm_crm::write::load_relationship(app, rel.workspace(), rel.id()).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The relationship changed concurrently; retry."))
}

// ---------------------------------------------------------------------------------------------
// Add relationships

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    #[schemars(length(max = 100))]
    pub relationship_ids: Option<Vec<crate::ids::Id<crate::ids::Relationship>>>,
    #[schemars(length(max = 100), inner(pattern(linkcrm_core::rules::DOMAIN)))]
    pub domains: Option<Vec<String>>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddOutput {
    pub added: Vec<String>,
    /// `{relationshipId, code, message}`: `already_member`, `too_many_campaigns`.
    pub skipped: Vec<Value>,
    pub campaign: Campaign,
}

pub struct AddRelationships;
impl Operation for AddRelationships {
    const NAME: &'static str = "link_building.campaign.relationships.add";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Add partners to a campaign (by relationship or domain); drafts follow for each new one";
    const TAG: &'static str = TAG;
    type Input = AddInput;
    type Output = AddOutput;

    async fn run(ctx: Ctx, input: AddInput) -> ApiResult<Reply<AddOutput>> {
        let item = load(&ctx, &input.id).await?;
        if rec::status_of(&item).ended() {
            return Err(invalid_state(&item, "add partners to"));
        }
        let rels =
            resolve_partners(&ctx, input.relationship_ids.unwrap_or_default(), input.domains.unwrap_or_default())
                .await?;
        let (mut added, mut skipped) = (Vec::new(), Vec::new());
        for rel in &rels {
            match enrol(&ctx, &input.id, rel).await? {
                Ok(()) => added.push(rel.id().to_owned()),
                Err(Enrol::Already) => skipped.push(json!({ "relationshipId": rel.id(), "code": "already_member",
                    "message": "The relationship is already in this campaign" })),
                Err(Enrol::TooMany) => skipped.push(json!({ "relationshipId": rel.id(), "code": "too_many_campaigns",
                    "message": format!("The relationship is in {} campaigns already", campaign_facts::MAX_CAMPAIGNS_PER_RELATIONSHIP) })),
            }
        }
        if !added.is_empty() {
            crate::jobs::enqueue_drafting(&ctx.app, &input.id).await?;
        }
        let item = load(&ctx, &input.id).await?;
        Ok(Reply::ok(AddOutput { added, skipped, campaign: rec::view(&item) }).with_version(version(&item)))
    }
}

// ---------------------------------------------------------------------------------------------
// List and get

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Comma list of types: serp, competitor, inbound, custom.
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(
        with = "Option<String>",
        pattern(r"^(serp|competitor|inbound|custom)(,(serp|competitor|inbound|custom))*$")
    )]
    pub r#type: Option<Vec<String>>,
    /// Comma list of statuses: active, paused, completed, cancelled.
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(
        with = "Option<String>",
        pattern(r"^(active|paused|completed|cancelled)(,(active|paused|completed|cancelled))*$")
    )]
    pub status: Option<Vec<String>>,
    /// Only campaigns created at or after this time.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub since: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.campaign.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List campaigns of every type, newest first, with their counts (free)";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<CampaignSummary>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<CampaignSummary>>> {
        let limit = list::limit(input.limit)?;
        let ws = ctx.workspace().to_owned();
        let types = input.r#type.unwrap_or_default();
        for t in &types {
            if Type::parse(t).is_none() {
                return Err(ApiError::invalid_field("type", "invalid_request", format!("unknown campaign type '{t}'")));
            }
        }
        let statuses = input.status.unwrap_or_default();
        for s in &statuses {
            if Status::parse(s).is_none() {
                return Err(ApiError::invalid_field("status", "invalid_request", format!("unknown status '{s}'")));
            }
        }
        let since = match &input.since {
            Some(s) => Some(linkcrm_core::validate::time_param("since", s)?),
            None => None,
        };
        let scope = format!(
            "{}#{ws}#{}#{}#{}",
            Self::NAME,
            types.join(","),
            statuses.join(","),
            since.as_deref().unwrap_or("")
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        // One status: its own index partition; otherwise the workspace's, filtered.
        let mut q = match statuses.as_slice() {
            [one] => Query::index(Index::Gsi2, keys::campaigns_status_pk(&ws, one)),
            _ => Query::index(Index::Gsi1, keys::campaigns_pk(&ws)),
        };
        q = q.backward().limit(limit).after(cursor);
        if let Some(s) = &since {
            q = q.sk(SortKey::AtLeast(s.clone()));
        }
        let mut filters = Vec::new();
        if statuses.len() > 1 {
            filters
                .push(Condition::Or(statuses.iter().map(|s| Condition::Equals("status".into(), json!(s))).collect()));
        }
        if !types.is_empty() {
            filters.push(Condition::Or(types.iter().map(|t| Condition::Equals("type".into(), json!(t))).collect()));
        }
        if !filters.is_empty() {
            q = q.filter(Condition::And(filters));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(rec::summary_view).collect();
        // `total` is cheap only without a type or time filter: the maintained per-status totals.
        let total = if types.is_empty() && since.is_none() {
            let t = ctx.app.store.get(&keys::campaign_totals(&ws)).await?.unwrap_or_default();
            Some(if statuses.is_empty() {
                int_of(&t, "total").unwrap_or(0)
            } else {
                statuses.iter().map(|s| int_of(&t, &format!("status#{s}")).unwrap_or(0)).sum()
            } as u64)
        } else {
            None
        };
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.campaign.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one campaign with its settings and summary (free)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Campaign>;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Campaign>) -> ApiResult<Reply<Campaign>> {
        let item = load(&ctx, &input.id).await?;
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    /// Domains in `byDomain` (default 200).
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// `byDomainNextCursor` of the previous answer.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub campaign_id: String,
    pub summary: rec::Summary,
    pub timeline: Vec<Value>,
    pub by_domain: Vec<Value>,
    pub by_domain_next_cursor: Option<String>,
    /// Opens come from a tracking pixel: mail clients that load images for privacy inflate them,
    /// and those that block images hide them.
    pub opens_approximate: bool,
}

pub struct GetMetrics;
impl Operation for GetMetrics {
    const NAME: &'static str = "link_building.campaign.metrics";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "A campaign's metrics: summary, timeline and status by domain (free)";
    const TAG: &'static str = TAG;
    type Input = MetricsInput;
    type Output = Metrics;

    async fn run(ctx: Ctx, input: MetricsInput) -> ApiResult<Reply<Metrics>> {
        let limit = input.limit.map(|l| l as usize).unwrap_or(200).clamp(1, 200);
        let item = load(&ctx, &input.id).await?;
        let scope = format!("{}#{}", Self::NAME, input.id.as_str());
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let tl = ctx.app.store.query(Query::partition(keys::timeline_pk(&input.id)).limit(200)).await?;
        let members = ctx
            .app
            .store
            .query(Query::partition(keys::campaign_members_pk(&input.id)).limit(limit).after(cursor))
            .await?;
        let mut timeline: Vec<(String, Value)> = Vec::new();
        let date = |t: &str| t.chars().take(10).collect::<String>();
        for e in &tl.items {
            let at = str_of(e, "at").unwrap_or_default().to_owned();
            let mut v = json!({ "date": date(&at), "event": str_of(e, "event") });
            if let Some(c) = e.get("count") {
                v["count"] = c.clone();
            }
            if let Some(r) = e.get("reason").filter(|r| !r.is_null()) {
                v["reason"] = r.clone();
            }
            timeline.push((at, v));
        }
        for (k, v) in &item {
            if let Some(day) = k.strip_prefix("sent#") {
                if v.as_i64().unwrap_or(0) > 0 {
                    timeline
                        .push((format!("{day}T23:59:59Z"), json!({ "date": day, "event": "emails_sent", "count": v })));
                }
            }
        }
        for (attr, name) in [("firstReplyAt", "first_reply"), ("firstPlacedAt", "first_link_placed")] {
            if let Some(t) = str_of(&item, attr) {
                timeline.push((t.to_owned(), json!({ "date": date(t), "event": name })));
            }
        }
        timeline.sort_by(|a, b| a.0.cmp(&b.0));
        let now = chrono::Utc::now();
        let by_domain = members.items.iter().map(|m| domain_status(m, now)).collect();
        let t = rec::tally_of(&item);
        Ok(Reply::ok(Metrics {
            campaign_id: input.id.to_string(),
            summary: rec::Summary::of(&t),
            timeline: timeline.into_iter().map(|(_, v)| v).collect(),
            by_domain,
            by_domain_next_cursor: ctx.app.seal_cursor(&scope, members.cursor),
            opens_approximate: true,
        }))
    }
}

/// A member's `byDomain` entry (CONTRACT statuses).
pub(crate) fn domain_status(m: &Item, now: chrono::DateTime<chrono::Utc>) -> Value {
    let att = campaign_facts::attribution_of(m);
    let domain = str_of(m, "domain");
    let mut v = json!({ "domain": domain, "relationshipId": str_of(m, "relationshipId") });
    let status = if att.placed_at.is_some() {
        v["linkUrl"] = json!(att.link_url);
        "link_placed"
    } else if att.replied_at.is_some() {
        "replied"
    } else if att.declined_at.is_some() {
        "declined"
    } else if att.sent > 0 && att.bounced >= att.sent {
        "bounced"
    } else if att.sent > 0 {
        let old = att
            .last_sent_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| now.signed_duration_since(t) > chrono::Duration::days(7));
        if old {
            "no_response"
        } else {
            "sent"
        }
    } else {
        match str_of(m, "state") {
            Some("drafted") => match str_of(m, "draftStatus") {
                Some("awaiting_approval") => "awaiting_approval",
                Some("blocked" | "failed" | "rejected" | "cancelled" | "expired") => "blocked",
                _ => "drafted",
            },
            Some("skipped") => {
                v["reason"] = m.get("reason").cloned().unwrap_or(Value::Null);
                "blocked"
            }
            _ => "drafted",
        }
    };
    v["status"] = json!(status);
    if let Some(f) = str_of(m, "followUpStatus") {
        v["followUp"] = json!({ "status": f, "step": m.get("followUpStep"), "dueAt": m.get("followUpDueAt"),
                                "reason": m.get("followUpReason") });
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Status changes: pause, resume, toggle, cancel, complete

fn invalid_state(item: &Item, what: &str) -> ApiError {
    let status = rec::status_of(item);
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_state",
        format!("The campaign is {}; cannot {what} it.", status.as_str()),
    )
    .with_details(json!({ "status": status }))
}

/// Moves campaign `id` from `from` to `to` (guarded by the status read), with its timeline entry
/// and, when given, extra parts. Answers the campaign after the change.
async fn transition(ctx: &Ctx, item: &Item, to: Status, reason: Option<String>, extra: Vec<TxOp>) -> ApiResult<Item> {
    let id = str_of(item, "id").unwrap_or_default().to_owned();
    let ws = ctx.workspace().to_owned();
    let from = rec::status_of(item);
    let now = time::now_string();
    let created = str_of(item, "createdAt").unwrap_or_default();
    let mut u = Update::new().set("status", to.as_str()).set("updatedAt", now.clone()).add("version", 1);
    for (k, v) in rec::index_attrs(&ws, &id, created, to) {
        u = u.set(k, v);
    }
    u = match to {
        Status::Paused => u.set("pauseReason", json!(reason)).set("pausedAt", now.clone()),
        _ => u.set("pauseReason", Value::Null),
    };
    let event = match to {
        Status::Paused => "paused",
        Status::Active => "resumed",
        Status::Completed => "completed",
        Status::Cancelled => "cancelled",
    };
    let data = rec::event_data(item, Some(&u), json!({ "reason": reason }));
    let mut ops = vec![
        TxOp::update_if(keys::campaign(&id), u, Condition::Equals("status".into(), json!(from))),
        TxOp::update(
            keys::campaign_totals(&ws),
            Update::new().add(format!("status#{}", from.as_str()), -1).add(format!("status#{}", to.as_str()), 1),
        ),
        TxOp::put(timeline_item(&id, &now, event, Some(json!({ "reason": reason })))),
        outbox::event(&format!("link_building.campaign.{event}"), Some(&ws), data),
    ];
    ops.extend(extra);
    match ctx.app.store.transact(ops).await {
        Ok(()) => load(ctx, &id).await,
        Err(StoreError::ConditionFailed { op: Some(0) }) => {
            Err(ApiError::conflict("conflict", "The campaign changed while this request ran; read it again."))
        }
        Err(e) => Err(e.into()),
    }
}

async fn pause(ctx: &Ctx, id: &str, reason: Option<String>) -> ApiResult<Item> {
    let item = load(ctx, id).await?;
    match rec::status_of(&item) {
        Status::Active => transition(ctx, &item, Status::Paused, reason, vec![]).await,
        Status::Paused => Err(ApiError::conflict("already_paused", "The campaign is already paused.")),
        _ => Err(invalid_state(&item, "pause")),
    }
}

async fn resume(ctx: &Ctx, id: &str) -> ApiResult<Item> {
    let item = load(ctx, id).await?;
    match rec::status_of(&item) {
        Status::Paused => {
            // Sends held while paused go back to the queue (the release job, committed with the
            // status change so a crash cannot strand them).
            let release = crate::jobs::release_op(id)?;
            transition(ctx, &item, Status::Active, None, vec![release]).await
        }
        Status::Active => Err(ApiError::conflict("already_active", "The campaign is already active.")),
        _ => Err(invalid_state(&item, "resume")),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PauseInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

pub struct Pause;
impl Operation for Pause {
    const NAME: &'static str = "link_building.campaign.pause";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Pause a campaign: nothing of it is sent until it resumes (free)";
    const TAG: &'static str = TAG;
    type Input = PauseInput;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: PauseInput) -> ApiResult<Reply<Campaign>> {
        let reason = linkcrm_core::validate::text("reason", input.reason, 500)?;
        let item = pause(&ctx, &input.id, reason).await?;
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

pub struct Resume;
impl Operation for Resume {
    const NAME: &'static str = "link_building.campaign.resume";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Resume a paused campaign: its held sends go out, under send-time policy (free)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Campaign>;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Campaign>) -> ApiResult<Reply<Campaign>> {
        let item = resume(&ctx, &input.id).await?;
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToggleAction {
    Pause,
    Resume,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToggleInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    pub action: ToggleAction,
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

pub struct Toggle;
impl Operation for Toggle {
    const NAME: &'static str = "link_building.campaign.toggle";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Pause or resume a campaign (action: pause|resume), as the assistant tool does (free)";
    const TAG: &'static str = TAG;
    type Input = ToggleInput;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: ToggleInput) -> ApiResult<Reply<Campaign>> {
        let item = match input.action {
            ToggleAction::Pause => {
                let reason = linkcrm_core::validate::text("reason", input.reason, 500)?;
                pause(&ctx, &input.id, reason).await?
            }
            ToggleAction::Resume => resume(&ctx, &input.id).await?,
        };
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

pub struct Cancel;
impl Operation for Cancel {
    const NAME: &'static str = "link_building.campaign.cancel";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Cancel a campaign: drafts waiting for approval are cancelled and queued sends dropped, their credits released";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Campaign>;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Campaign>) -> ApiResult<Reply<Campaign>> {
        let item = load(&ctx, &input.id).await?;
        if rec::status_of(&item).ended() {
            return Err(invalid_state(&item, "cancel"));
        }
        let jobs = vec![crate::jobs::settle_op(&input.id)?, crate::jobs::release_op(&input.id)?];
        let item = transition(&ctx, &item, Status::Cancelled, None, jobs).await?;
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

pub struct Complete;
impl Operation for Complete {
    const NAME: &'static str = "link_building.campaign.complete";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Complete a custom campaign (refused while drafts wait for approval: approve, reject or cancel them first)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Campaign>;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Campaign>) -> ApiResult<Reply<Campaign>> {
        let item = load(&ctx, &input.id).await?;
        if rec::status_of(&item).ended() {
            return Err(invalid_state(&item, "complete"));
        }
        if str_of(&item, "type") != Some("custom") {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_state",
                "Only custom campaigns are completed by hand; the others complete when nothing is pending.",
            ));
        }
        let awaiting = int_of(&item, "awaiting").unwrap_or(0);
        if awaiting > 0 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "drafts_pending",
                format!("{awaiting} drafts still wait for approval; approve, reject or cancel them first."),
            )
            .with_details(json!({ "awaitingApproval": awaiting })));
        }
        // Sends still queued or held are dropped by the send job (the campaign is completed).
        let jobs = vec![crate::jobs::release_op(&input.id)?];
        let item = transition(&ctx, &item, Status::Completed, None, jobs).await?;
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

// ---------------------------------------------------------------------------------------------
// Update

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: crate::ids::Id<crate::ids::Campaign>,
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: Option<String>,
    /// Replaces the follow-up steps; sends already scheduled follow the new steps when they run.
    #[schemars(length(max = 5))]
    pub follow_ups: Option<Vec<FollowUpInput>>,
    /// SERP and competitor campaigns: replaces the filters, for domains not yet screened.
    pub filters: Option<crate::ops::outreach::Filters>,
    /// Replaces the send window (`null` removes it); sends waiting for the old one go at its
    /// next opening, then follow the new one.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<SendWindowInput>")]
    pub send_window: Option<Option<SendWindowInput>>,
}

pub struct Update_;
impl Operation for Update_ {
    const NAME: &'static str = "link_building.campaign.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Change a campaign's name or follow-ups; honours If-Match";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = Campaign;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Campaign>> {
        let item = load(&ctx, &input.id).await?;
        let current = version(&item);
        if ctx.if_match.is_some_and(|v| v != current) {
            return Err(ApiError::precondition_failed(current));
        }
        if rec::status_of(&item).ended() {
            return Err(invalid_state(&item, "change"));
        }
        let mut u = Update::new().set("updatedAt", time::now_string()).add("version", 1);
        if let Some(n) = input.name {
            let n = linkcrm_core::validate::header_text("name", Some(n), 200)?
                .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
            u = u.set("name", n);
        }
        let mut settings = item.get("settings").cloned().unwrap_or_else(|| json!({}));
        if let Some(f) = input.follow_ups {
            settings["followUps"] = follow_up_settings(&ctx, f).await?;
        }
        if let Some(f) = input.filters {
            if !matches!(str_of(&item, "type"), Some("serp" | "competitor")) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "filters_not_supported",
                    "Only SERP and competitor campaigns have filters.",
                ));
            }
            settings["filters"] = crate::ops::outreach::filters_value(f)?;
        }
        if let Some(w) = input.send_window {
            settings["sendWindow"] = match w {
                Some(w) => send_window_value(w)?,
                None => Value::Null,
            };
        }
        if item.get("settings") != Some(&settings) {
            u = u.set("settings", settings);
        }
        match ctx
            .app
            .store
            .transact(vec![TxOp::update_if(keys::campaign(&input.id), u, Condition::VersionEquals(current))])
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(ApiError::conflict(
                    "conflict",
                    "The campaign changed while this request ran; read it again.",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let item = load(&ctx, &input.id).await?;
        Ok(Reply::ok(rec::view(&item)).with_version(version(&item)))
    }
}

/// The parts that create a workspace's inbound campaign (`icmp_…`, type `inbound`): the
/// negotiator's replies are its sends, the partners who wrote its members. One per workspace;
/// the inbound settings keep its id (the caller's transaction makes it once).
pub fn inbound_campaign_ops(ws: &str, agency: &str, id: &str) -> Vec<TxOp> {
    let now = time::now_string();
    let key = keys::campaign(id);
    let settings = json!({ "templateId": null, "subject": null, "body": null, "mailboxId": null, "followUps": [],
                           "trackOpens": false, "sendWindow": null });
    let mut item = obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "campaign", "id": id, "type": Type::Inbound, "name": "Inbound requests",
        "workspaceId": ws, "agencyId": agency, "status": Status::Active,
        "createdAt": now, "updatedAt": now, "version": 1, "settings": settings,
        "drafted": 0, "sent": 0, "bounced": 0, "hardBounced": 0, "opened": 0, "replied": 0, "placed": 0,
        "members": 0, "awaiting": 0,
    }));
    for (k, v) in rec::index_attrs(ws, id, &now, Status::Active) {
        item.insert(k.into(), v);
    }
    let created = outbox::event("link_building.campaign.created", Some(ws), rec::event_data(&item, None, json!({})));
    vec![
        TxOp::put_if(item, Condition::NotExists),
        TxOp::update(keys::campaign_totals(ws), Update::new().add("total", 1).add("status#active", 1)),
        TxOp::put(timeline_item(id, &now, "campaign_created", None)),
        created,
    ]
}
