//! `link_building.crm.stage.*` and `link_building.crm.opportunity.*`: a workspace's own pipeline
//! stages, each standing for one relationship status, and its opportunities (seed 004's leads).
//! Records and the follow rule: `crate::pipeline`.

use super::TAG_PIPELINE;
use crate::catalogue::{Effect, Family, IdInput, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, Id};
use crate::list::{self, ListResponse};
use crate::pipeline::{self, cents_to_usd, usd_to_cents, OppRecord, StageDef, StageSet, OPP_COUNT};
use crate::records::{self, str_of};
use crate::write::{self, NewEvent, Ride};
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_domain::enums::{EventType, PipelineStatus, Source};
use linkcrm_domain::stages::{self, StageKind};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn ops() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<StageList>(),
        OpSpec::of::<StageCreate>(),
        OpSpec::of::<StageUpdate>(),
        OpSpec::of::<StageReorder>(),
        OpSpec::of::<StageDelete>(),
        OpSpec::of::<OppCreate>(),
        OpSpec::of::<OppList>(),
        OpSpec::of::<OppGet>(),
        OpSpec::of::<OppUpdate>(),
        OpSpec::of::<OppMove>(),
        OpSpec::of::<OppDelete>(),
    ]
}

const NAME_MAX: usize = 100;
const TITLE_MAX: usize = 200;
/// The largest value an opportunity may carry, USD.
const VALUE_MAX: f64 = 1_000_000_000.0;
const DATE: &str = r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

fn conflict_retry() -> ApiError {
    ApiError::conflict("conflict", "The pipeline changed while this request ran; read it again.")
}

use super::unprocessable;

fn name_of(field: &str, raw: String) -> ApiResult<String> {
    linkcrm_core::validate::header_text(field, Some(raw), NAME_MAX)?
        .ok_or_else(|| ApiError::invalid_field(field, "invalid_request", "is required"))
}

fn check_system_key(k: PipelineStatus) -> ApiResult<PipelineStatus> {
    if stages::mappable(k) {
        Ok(k)
    } else {
        Err(unprocessable(
            "systemKey",
            "invalid_system_key",
            "CONTACTED_BY_OTHER_ORG is computed when a relationship is read; no stage can stand for it",
        ))
    }
}

fn check_unique_name(set: &[StageDef], name: &str, except: Option<&str>) -> ApiResult<()> {
    if set.iter().any(|s| Some(s.id.as_str()) != except && s.name.to_lowercase() == name.to_lowercase()) {
        return Err(ApiError::conflict("stage_name_taken", format!("A stage is already named {name:?}.")));
    }
    Ok(())
}

/// Numbers the stages 0.. in their order.
fn renumber(stages: &mut [StageDef]) {
    for (i, s) in stages.iter_mut().enumerate() {
        s.sort_order = i as i64;
    }
}

fn last_open_guard(stages: &[StageDef]) -> ApiResult<()> {
    if stages.iter().any(|s| s.kind == StageKind::Open) {
        Ok(())
    } else {
        Err(ApiError::conflict("last_open_stage", "The pipeline must keep at least one open stage."))
    }
}

/// Commits a new stage list under the version read; the answer is the list as it now stands.
async fn replace(ctx: &Ctx, set: &StageSet, stages: Vec<StageDef>) -> ApiResult<StageSet> {
    let ws = ctx.workspace();
    let now = time::now_string();
    match ctx.app.store.transact(vec![set.replace_op(ws, &stages, &now)]).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => return Err(conflict_retry()),
        Err(e) => return Err(e.into()),
    }
    // The counters are not part of the list: the item read still holds them.
    Ok(StageSet { stages, version: set.version + 1, item: set.item.clone() })
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageListOutput {
    /// Every stage, in order.
    pub data: Vec<pipeline::Stage>,
    /// Always null: the list is whole.
    pub next_cursor: Option<String>,
    pub total: u64,
    /// The stage list's version (also its ETag).
    pub version: i64,
}

fn stage_list(set: &StageSet) -> Reply<StageListOutput> {
    let data = set.views();
    Reply::ok(StageListOutput { total: data.len() as u64, data, next_cursor: None, version: set.version })
        .with_version(set.version)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub struct StageList;
impl Operation for StageList {
    const NAME: &'static str = "link_building.crm.stage.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "The workspace's pipeline stages in order, each with the relationship status it stands for and its opportunity count";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = Empty;
    type Output = StageListOutput;

    async fn run(ctx: Ctx, _: Empty) -> ApiResult<Reply<StageListOutput>> {
        Ok(stage_list(&pipeline::stage_set(&ctx.app, ctx.workspace()).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageCreateInput {
    #[schemars(length(min = 1, max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: String,
    /// open (default), won or lost.
    pub kind: Option<StageKind>,
    /// The relationship status the stage stands for. Default: for an open stage the status of the
    /// stage it follows, for won LINK_PLACED, for lost NOT_INTERESTED.
    pub system_key: Option<PipelineStatus>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schemars(with = "Option<i64>", range(min = 0, max = 100))]
    pub default_probability_pct: Option<i64>,
    #[schemars(length(min = 1, max = 32), pattern(linkcrm_core::rules::TAG))]
    pub color_key: Option<String>,
    /// Where it goes (0 = first). Default: after the last stage of its kind.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schemars(with = "Option<i64>", range(min = 0, max = 50))]
    pub position: Option<i64>,
}

fn probability(field: &str, v: Option<i64>) -> ApiResult<Option<i64>> {
    match v {
        Some(p) if !(0..=100).contains(&p) => {
            Err(ApiError::invalid_field(field, "invalid_request", "must be between 0 and 100"))
        }
        other => Ok(other),
    }
}

fn color(v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(c)
            if c.is_empty() || c.len() > 32 || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch)) =>
        {
            Err(ApiError::invalid_field("colorKey", "invalid_request", "1-32 of A-Z a-z 0-9 - _"))
        }
        other => Ok(other),
    }
}

pub struct StageCreate;
impl Operation for StageCreate {
    const NAME: &'static str = "link_building.crm.stage.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Add a pipeline stage standing for one relationship status (at most 50 stages)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = StageCreateInput;
    type Output = pipeline::Stage;

    async fn run(ctx: Ctx, input: StageCreateInput) -> ApiResult<Reply<pipeline::Stage>> {
        let name = name_of("name", input.name)?;
        let pct = probability("defaultProbabilityPct", input.default_probability_pct)?;
        let color_key = color(input.color_key)?;
        let set = pipeline::stage_set(&ctx.app, ctx.workspace()).await?;
        if set.stages.len() >= pipeline::MAX_STAGES {
            return Err(unprocessable("name", "too_many_stages", "A pipeline has at most 50 stages."));
        }
        check_unique_name(&set.stages, &name, None)?;
        let kind = input.kind.unwrap_or(StageKind::Open);
        let mut stages = set.stages.clone();
        let position = match input.position {
            Some(p) => (p.max(0) as usize).min(stages.len()),
            None => stages.iter().rposition(|s| s.kind == kind).map(|i| i + 1).unwrap_or(stages.len()),
        };
        let system_key = match input.system_key {
            Some(k) => check_system_key(k)?,
            None => match kind {
                StageKind::Open => position
                    .checked_sub(1)
                    .and_then(|i| stages.get(i))
                    .filter(|s| s.kind == StageKind::Open)
                    .map(|s| s.system_key)
                    .unwrap_or(PipelineStatus::Prospecting),
                StageKind::Won => PipelineStatus::LinkPlaced,
                StageKind::Lost => PipelineStatus::NotInterested,
            },
        };
        let stage = StageDef {
            id: linkcrm_domain::new_id(IdKind::Stage),
            name,
            kind,
            sort_order: 0,
            default_probability_pct: pct.unwrap_or(match kind {
                StageKind::Won => 100,
                _ => 0,
            }),
            color_key,
            system_key,
            deleting_into: None,
        };
        stages.insert(position, stage.clone());
        renumber(&mut stages);
        let after = replace(&ctx, &set, stages).await?;
        Ok(Reply::created(after.view(after.find(&stage.id)?)).with_version(after.version))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageUpdateInput {
    pub id: Id<ids::Stage>,
    #[schemars(length(min = 1, max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: Option<String>,
    pub kind: Option<StageKind>,
    pub system_key: Option<PipelineStatus>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schemars(with = "Option<i64>", range(min = 0, max = 100))]
    pub default_probability_pct: Option<i64>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", length(min = 1, max = 32), pattern(linkcrm_core::rules::TAG))]
    pub color_key: Option<Option<String>>,
}

pub struct StageUpdate;
impl Operation for StageUpdate {
    const NAME: &'static str = "link_building.crm.stage.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Rename a stage or change its kind, system status, default probability or colour (the last open stage stays open)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = StageUpdateInput;
    type Output = pipeline::Stage;

    async fn run(ctx: Ctx, input: StageUpdateInput) -> ApiResult<Reply<pipeline::Stage>> {
        let set = pipeline::stage_set(&ctx.app, ctx.workspace()).await?;
        set.find(&input.id)?;
        let mut stages = set.stages.clone();
        let name = input.name.map(|n| name_of("name", n)).transpose()?;
        if let Some(n) = &name {
            check_unique_name(&stages, n, Some(&input.id))?;
        }
        let pct = probability("defaultProbabilityPct", input.default_probability_pct)?;
        let color_key = input.color_key.map(color).transpose()?;
        let system_key = input.system_key.map(check_system_key).transpose()?;
        let s = stages.iter_mut().find(|s| s.id == *input.id).expect("found above");
        if let Some(n) = name {
            s.name = n;
        }
        if let Some(k) = input.kind {
            s.kind = k;
        }
        if let Some(k) = system_key {
            s.system_key = k;
        }
        if let Some(p) = pct {
            s.default_probability_pct = p;
        }
        if let Some(c) = color_key {
            s.color_key = c;
        }
        last_open_guard(&stages)?;
        let after = replace(&ctx, &set, stages).await?;
        Ok(Reply::ok(after.view(after.find(&input.id)?)).with_version(after.version))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageReorderInput {
    /// Every stage's id, in the new order.
    #[schemars(length(min = 1, max = 50))]
    pub stage_ids: Vec<Id<ids::Stage>>,
}

pub struct StageReorder;
impl Operation for StageReorder {
    const NAME: &'static str = "link_building.crm.stage.reorder";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Put the stages in a new order (name every stage once)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = StageReorderInput;
    type Output = StageListOutput;

    async fn run(ctx: Ctx, input: StageReorderInput) -> ApiResult<Reply<StageListOutput>> {
        let set = pipeline::stage_set(&ctx.app, ctx.workspace()).await?;
        let mut seen: Vec<&str> = Vec::new();
        for id in &input.stage_ids {
            if seen.contains(&id.as_str()) || set.get(id).is_none() {
                break;
            }
            seen.push(id);
        }
        if seen.len() != input.stage_ids.len() || seen.len() != set.stages.len() {
            return Err(unprocessable(
                "stageIds",
                "invalid_stage_order",
                format!("name each of the {} stages exactly once", set.stages.len()),
            ));
        }
        let mut stages: Vec<StageDef> = seen.iter().filter_map(|id| set.get(id).cloned()).collect();
        renumber(&mut stages);
        Ok(stage_list(&replace(&ctx, &set, stages).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDeleteInput {
    pub id: Id<ids::Stage>,
    /// Where its opportunities go; required when it has any.
    pub move_leads_to: Option<Id<ids::Stage>>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageDeleted {
    pub id: String,
    pub deleted: bool,
    /// Opportunities moved to `moveLeadsTo` (always 0 now: they move in a job).
    pub moved_leads: u64,
    /// Opportunities being moved to `moveLeadsTo` by the deletion's job (202); the stage goes
    /// when they have moved.
    pub moving_leads: u64,
}

pub struct StageDelete;
impl Operation for StageDelete {
    const NAME: &'static str = "link_building.crm.stage.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const ALSO_SUCCEEDS_WITH: &'static [StatusCode] = &[StatusCode::ACCEPTED];
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Delete a stage (the last open stage cannot go); with opportunities, 202: they move to moveLeadsTo in a job, then it goes";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = StageDeleteInput;
    type Output = StageDeleted;

    async fn run(ctx: Ctx, input: StageDeleteInput) -> ApiResult<Reply<StageDeleted>> {
        let ws = ctx.workspace().to_owned();
        let set = pipeline::stage_set(&ctx.app, &ws).await?;
        let stage = set.find(&input.id)?.clone();
        if stage.deleting_into.is_some() {
            // Already under way: the same answer again.
            let moving = set.count(&stage.id).max(0) as u64;
            let reply = StageDeleted { id: stage.id.clone(), deleted: false, moved_leads: 0, moving_leads: moving };
            return Ok(Reply { status: Some(StatusCode::ACCEPTED), body: Some(reply), version: None });
        }
        let stages: Vec<StageDef> = set.stages.iter().filter(|s| s.id != *input.id).cloned().collect();
        last_open_guard(&stages)?;
        let target = match &input.move_leads_to {
            Some(t) if t.as_str() == input.id.as_str() => {
                return Err(unprocessable("moveLeadsTo", "invalid_request", "must be another stage"))
            }
            Some(t) => Some(set.destination(t)?.clone()),
            None => None,
        };
        let any = ctx
            .app
            .store
            .query(Query::index(Index::Gsi2, keys::stage_opportunities_pk(&ws, &input.id)).limit(1))
            .await?
            .items;
        if any.is_empty() {
            let reply =
                Reply::ok(StageDeleted { id: input.id.to_string(), deleted: true, moved_leads: 0, moving_leads: 0 });
            return match ctx.commit(vec![remove_stage_op(&set, &ws, &input.id)], &reply).await {
                Ok(()) => Ok(reply),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict_retry()),
                Err(e) => Err(e.into()),
            };
        }
        let Some(target) = &target else {
            return Err(ApiError::conflict(
                "stage_has_leads",
                format!("The stage holds {} opportunities; name moveLeadsTo.", set.count(&input.id)),
            ));
        };
        // The stage is marked (nothing moves into it any more) and its opportunities move in a
        // job, committed together; the stage goes when the last one has moved.
        let mut marked = set.stages.clone();
        for s in marked.iter_mut().filter(|s| s.id == *input.id) {
            s.deleting_into = Some(target.id.clone());
        }
        let job = linkcrm_jobs::Job::new(
            linkcrm_core::jobkinds::JobKind::StageMove.as_str(),
            json!({ "workspaceId": ws, "stageId": input.id.as_str() }),
        );
        let job_op =
            linkcrm_jobs::StoreQueue::enqueue_op(linkcrm_core::jobkinds::WORK_QUEUE, &job, std::time::Duration::ZERO)
                .map_err(|e| {
                tracing::error!(error = %e, "stage move job rejected by the queue");
                ApiError::internal()
            })?;
        let moving = set.count(&input.id).max(0) as u64;
        let reply = Reply {
            status: Some(StatusCode::ACCEPTED),
            body: Some(StageDeleted { id: input.id.to_string(), deleted: false, moved_leads: 0, moving_leads: moving }),
            version: None,
        };
        let now = time::now_string();
        match ctx.commit(vec![set.replace_op(&ws, &marked, &now), job_op], &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict_retry()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Removes stage `id` from the list, conditioned on the version read and on nothing being left
/// in it.
fn remove_stage_op(set: &StageSet, ws: &str, id: &str) -> TxOp {
    let mut stages: Vec<StageDef> = set.stages.iter().filter(|s| s.id != id).cloned().collect();
    renumber(&mut stages);
    TxOp::update_if(
        keys::stage_set(ws),
        Update::new()
            .set("stages", json!(stages))
            .remove(format!("n_{id}"))
            .remove(format!("v_{id}"))
            .set("updatedAt", time::now_string())
            .add("version", 1),
        Condition::And(vec![Condition::VersionEquals(set.version), Condition::Equals(format!("n_{id}"), json!(0))]),
    )
}

/// The `stage_move` job: moves a stage's opportunities, a page at a time, into the stage it is
/// being deleted into (linked ones as LEAD_STAGE_CHANGED events), then removes the stage. Safe to
/// run again: each move is conditioned on the stage it read, and a gone stage ends it.
pub async fn handle_stage_move(
    app: &std::sync::Arc<crate::App>,
    job: &linkcrm_jobs::Job,
) -> Result<(), linkcrm_jobs::HandlerError> {
    use linkcrm_jobs::HandlerError;
    let retry = || HandlerError::Retry { after: std::time::Duration::from_secs(2) };
    let s = |k: &str| job.payload.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (ws, stage) = (s("workspaceId"), s("stageId"));
    let Some(ctx) = Ctx::for_workspace(app, &ws, "stage_move").await.map_err(|_| retry())? else { return Ok(()) };
    for _ in 0..1000 {
        let set = pipeline::stage_set(app, &ws).await.map_err(|_| retry())?;
        let Some(into) = set.get(&stage).and_then(|s| s.deleting_into.clone()) else { return Ok(()) };
        let Some(target) = set.get(&into).cloned() else {
            return Err(HandlerError::Fail(format!("stage {stage} is being deleted into {into}, which is gone")));
        };
        let page = app
            .store
            .query(Query::index(Index::Gsi2, keys::stage_opportunities_pk(&ws, &stage)).limit(25))
            .await
            .map_err(|_| retry())?;
        if page.items.is_empty() {
            return match app.store.transact(vec![remove_stage_op(&set, &ws, &stage)]).await {
                Ok(()) => Ok(()),
                Err(_) => Err(retry()),
            };
        }
        for item in page.items {
            match move_to(&ctx, &set, OppRecord(item), &target, false, None).await {
                Ok(()) => {}
                // Moved or deleted meanwhile: the next page read tells.
                Err(e) if e.status == StatusCode::CONFLICT || e.status == StatusCode::NOT_FOUND => {}
                Err(_) => return Err(retry()),
            }
        }
    }
    Err(retry())
}

/// An opportunity as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Opportunity {
    pub id: String,
    pub title: String,
    /// The relationship it is linked to: its stage moves are that relationship's events.
    pub relationship_id: Option<String>,
    pub account_id: Option<String>,
    pub company_id: Option<String>,
    pub owner_id: Option<String>,
    pub contact_id: Option<String>,
    pub stage_id: String,
    /// The stage's name.
    pub stage: String,
    /// open, won or lost: the kind of its stage.
    pub status: StageKind,
    /// USD.
    pub value: Option<f64>,
    /// Its own, else the stage's default.
    pub probability_pct: i64,
    pub expected_close_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

fn opp_view(set: &StageSet, item: &Item) -> ApiResult<Opportunity> {
    let stage_id = str_of(item, "stageId").unwrap_or_default();
    let stage =
        set.get(stage_id).ok_or_else(|| records::corrupt("opportunity", format!("unknown stage {stage_id}")))?;
    let s = |k: &str| str_of(item, k).map(str::to_owned);
    Ok(Opportunity {
        id: s("id").unwrap_or_default(),
        title: s("title").unwrap_or_default(),
        relationship_id: s("relationshipId"),
        account_id: s("accountId"),
        company_id: s("companyId"),
        owner_id: s("ownerId"),
        contact_id: s("contactId"),
        stage_id: stage.id.clone(),
        stage: stage.name.clone(),
        status: stage.kind,
        value: records::int_of(item, "valueCents").map(cents_to_usd),
        probability_pct: records::int_of(item, "probabilityPct").unwrap_or(stage.default_probability_pct),
        expected_close_date: s("expectedCloseDate"),
        created_at: s("createdAt").unwrap_or_default(),
        updated_at: s("updatedAt").unwrap_or_default(),
        version: records::int_of(item, "version").unwrap_or(1),
    })
}

async fn load_opp(ctx: &Ctx, id: &str) -> ApiResult<OppRecord> {
    ctx.app
        .store
        .get(&keys::opportunity(ctx.workspace(), id))
        .await?
        .map(OppRecord)
        .ok_or_else(|| ApiError::not_found("opportunity_not_found", "opportunity", id))
}

fn value_cents(v: Option<f64>) -> ApiResult<Option<i64>> {
    match v {
        Some(x) if !x.is_finite() || !(0.0..=VALUE_MAX).contains(&x) => {
            Err(ApiError::invalid_field("value", "invalid_request", "must be between 0 and 1000000000 (USD)"))
        }
        other => Ok(other.map(usd_to_cents)),
    }
}

fn close_date(v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(d) if chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").is_err() => {
            // The schema's pattern takes 2027-02-30; no calendar does.
            Err(unprocessable("expectedCloseDate", "invalid_date", "must be a calendar date, YYYY-MM-DD"))
        }
        other => Ok(other),
    }
}

use super::check_contact;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OppCreateInput {
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub title: String,
    /// Links it to this relationship.
    pub relationship_id: Option<Id<ids::Relationship>>,
    /// Links it to the workspace's relationship with this partner (made when it has none).
    #[schemars(length(max = 253), pattern(linkcrm_core::rules::DOMAIN))]
    pub domain: Option<String>,
    /// Its company; one with a domain links it to the workspace's relationship with that partner.
    pub company_id: Option<Id<ids::Company>>,
    pub owner_id: Option<Id<ids::Member>>,
    pub contact_id: Option<Id<ids::Contact>>,
    /// Default: the first stage standing for the linked relationship's status, else the first
    /// open stage.
    pub stage_id: Option<Id<ids::Stage>>,
    /// USD.
    #[schemars(range(min = 0.0, max = 1000000000.0))]
    pub value: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schemars(with = "Option<i64>", range(min = 0, max = 100))]
    pub probability_pct: Option<i64>,
    #[schemars(pattern(DATE))]
    pub expected_close_date: Option<String>,
}

pub struct OppCreate;
impl Operation for OppCreate {
    const NAME: &'static str = "link_building.crm.opportunity.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Create an opportunity (a deal in the workspace's pipeline), linked to a relationship when one is named";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = OppCreateInput;
    type Output = Opportunity;

    async fn run(ctx: Ctx, input: OppCreateInput) -> ApiResult<Reply<Opportunity>> {
        let ws = ctx.workspace().to_owned();
        let title = linkcrm_core::validate::header_text("title", Some(input.title), TITLE_MAX)?
            .ok_or_else(|| ApiError::invalid_field("title", "invalid_request", "is required"))?;
        let cents = value_cents(input.value)?;
        let pct = probability("probabilityPct", input.probability_pct)?;
        let close = close_date(input.expected_close_date)?;
        if let Some(c) = &input.contact_id {
            check_contact(&ctx, c).await?;
        }
        if let Some(o) = &input.owner_id {
            super::companies::check_member(&ctx, o).await?;
        }
        let company = match &input.company_id {
            Some(_) if input.relationship_id.is_some() || input.domain.is_some() => {
                return Err(unprocessable(
                    "companyId",
                    "invalid_request",
                    "name companyId, relationshipId or domain, not several",
                ))
            }
            Some(c) => Some(super::companies::company_link(&ctx, c).await?),
            None => None,
        };
        let (company, company_rel) = match company {
            Some((c, r)) => (Some(c), r),
            None => (None, None),
        };
        let rel = match (&input.relationship_id, &input.domain) {
            _ if company.is_some() => company_rel,
            (Some(r), _) => Some(write::load_relationship(&ctx.app, &ws, r).await?),
            (None, Some(d)) => {
                let domain = write::normalize("domain", d)?;
                Some(write::ensure_relationship(&ctx.app, &ws, &domain, Source::Manual, None).await?.0)
            }
            (None, None) => None,
        };
        if let (Some(r), Some(d)) = (&rel, &input.domain) {
            if input.relationship_id.is_some() {
                let acct = write::load_account(&ctx.app, r.account_id()).await?;
                if acct.domain() != write::normalize("domain", d)? {
                    return Err(unprocessable(
                        "domain",
                        "invalid_request",
                        "names another partner than relationshipId",
                    ));
                }
            }
        }
        let set = pipeline::stage_set(&ctx.app, &ws).await?;
        let stage = match &input.stage_id {
            Some(s) => set.destination(s)?,
            None => rel
                .as_ref()
                .and_then(|r| set.first_with(r.status()))
                .filter(|s| s.kind == StageKind::Open)
                .or_else(|| set.first_open())
                .ok_or_else(|| records::corrupt("stage set", "no open stage"))?,
        };
        let id = linkcrm_domain::new_id(IdKind::Opportunity);
        let now = time::now_string();
        let item = pipeline::opportunity_item(
            &ws,
            &id,
            json!({ "title": title, "accountId": rel.as_ref().map(|r| r.account_id()),
                    "contactId": input.contact_id.as_ref().map(|c| c.as_str()), "valueCents": cents,
                    "probabilityPct": pct, "expectedCloseDate": close,
                    "companyId": company.as_ref().map(|c| c.id.clone()),
                    "ownerId": input.owner_id.as_ref().map(|o| o.as_str()) }),
            &stage.id,
            rel.as_ref().map(|r| r.id()),
            &now,
        );
        let mut item = item;
        if let Some(c) = &company {
            item.insert("GSI3PK".into(), json!(keys::company_opportunities_pk(&ws, &c.id)));
            item.insert("GSI3SK".into(), json!(id));
        }
        let mut ops = vec![TxOp::put_if(item.clone(), Condition::NotExists)];
        ops.extend(pipeline::counters_op(&ws, &[(None, Some(&stage.id), cents.unwrap_or(0))]));
        if let Some(r) = &rel {
            ops.push(TxOp::update_if(keys::relationship(r.id()), Update::new().add(OPP_COUNT, 1), Condition::Exists));
        }
        let reply = Reply::created(opp_view(&set, &item)?).with_version(1);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict_retry()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OppListInput {
    pub stage_id: Option<Id<ids::Stage>>,
    pub relationship_id: Option<Id<ids::Relationship>>,
    pub company_id: Option<Id<ids::Company>>,
    /// A member id, `me` (the calling key's member) or `unassigned`; filters the page as read
    /// (a page may come back short).
    #[schemars(length(max = 40), pattern(super::companies::OWNER))]
    pub owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct OppList;
impl Operation for OppList {
    const NAME: &'static str = "link_building.crm.opportunity.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List the workspace's opportunities, newest first, by stage or relationship";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = OppListInput;
    type Output = ListResponse<Opportunity>;

    async fn run(ctx: Ctx, input: OppListInput) -> ApiResult<Reply<ListResponse<Opportunity>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let filters = [input.stage_id.is_some(), input.relationship_id.is_some(), input.company_id.is_some()];
        let several = filters.iter().filter(|f| **f).count() > 1;
        let owner = super::companies::owner_filter(&ctx, "owner", input.owner.as_deref())?;
        let scope = format!(
            "{}#{ws}#{}#{}#{}#{:?}",
            Self::NAME,
            input.stage_id.as_deref().unwrap_or(""),
            input.relationship_id.as_deref().unwrap_or(""),
            input.company_id.as_deref().unwrap_or(""),
            owner
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let set = pipeline::stage_set(&ctx.app, &ws).await?;
        let (q, total) = match (&input.stage_id, &input.relationship_id) {
            (Some(s), _) => {
                set.find(s)?;
                (Query::index(Index::Gsi2, keys::stage_opportunities_pk(&ws, s)), Some(set.count(s).max(0) as u64))
            }
            (None, Some(r)) => (Query::index(Index::Gsi1, keys::relationship_opportunities_pk(&ws, r)), None),
            (None, None) if input.company_id.is_some() => {
                let c = input.company_id.as_deref().unwrap_or_default();
                (Query::index(Index::Gsi3, keys::company_opportunities_pk(&ws, c)), None)
            }
            (None, None) => (
                Query::partition(keys::opportunities_pk(&ws)),
                Some(set.stages.iter().map(|s| set.count(&s.id).max(0) as u64).sum()),
            ),
        };
        let page = ctx.app.store.query(q.backward().limit(limit).after(cursor)).await?;
        let mut data = page.items.iter().map(|i| opp_view(&set, i)).collect::<ApiResult<Vec<_>>>()?;
        // One filter picks the index; the others (and the owner) filter the page as read.
        let same = |want: Option<&str>, have: Option<&str>| want.is_none_or(|w| have == Some(w));
        data.retain(|d| {
            same(input.stage_id.as_deref(), Some(d.stage_id.as_str()))
                && same(input.relationship_id.as_deref(), d.relationship_id.as_deref())
                && same(input.company_id.as_deref(), d.company_id.as_deref())
                && owner.as_ref().is_none_or(|o| d.owner_id == *o)
        });
        let total = if owner.is_some() || several { None } else { total };
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total }))
    }
}

pub struct OppGet;
impl Operation for OppGet {
    const NAME: &'static str = "link_building.crm.opportunity.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one opportunity with its stage";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Opportunity>;
    type Output = Opportunity;

    async fn run(ctx: Ctx, input: IdInput<ids::Opportunity>) -> ApiResult<Reply<Opportunity>> {
        let (opp, set) = tokio::try_join!(load_opp(&ctx, &input.id), async {
            Ok::<_, ApiError>(pipeline::stage_set(&ctx.app, ctx.workspace()).await?)
        })?;
        let v = opp_view(&set, &opp.0)?;
        let version = v.version;
        Ok(Reply::ok(v).with_version(version))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OppUpdateInput {
    pub id: Id<ids::Opportunity>,
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub title: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<Id<ids::Contact>>")]
    pub contact_id: Option<Option<Id<ids::Contact>>>,
    /// USD; `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<f64>", range(min = 0.0, max = 1000000000.0))]
    pub value: Option<Option<f64>>,
    /// `null` falls back to the stage's default.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<i64>", range(min = 0, max = 100))]
    pub probability_pct: Option<Option<i64>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", pattern(DATE))]
    pub expected_close_date: Option<Option<String>>,
    /// `null` unassigns it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<Id<ids::Member>>")]
    pub owner_id: Option<Option<Id<ids::Member>>>,
}

pub struct OppUpdate;
impl Operation for OppUpdate {
    const NAME: &'static str = "link_building.crm.opportunity.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Change an opportunity's title, contact, value, probability or expected close date; honours If-Match (stage moves: /move)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = OppUpdateInput;
    type Output = Opportunity;

    async fn run(ctx: Ctx, input: OppUpdateInput) -> ApiResult<Reply<Opportunity>> {
        let ws = ctx.workspace().to_owned();
        let opp = load_opp(&ctx, &input.id).await?;
        if let Some(v) = ctx.if_match.filter(|v| *v != opp.version()) {
            let _ = v;
            return Err(ApiError::precondition_failed(opp.version()));
        }
        let mut update = Update::new();
        let mut item = opp.0.clone();
        let mut set_attr = |u: Update, k: &str, v: Value| {
            item.insert(k.to_owned(), v.clone());
            u.set(k, v)
        };
        if let Some(t) = input.title {
            let t = linkcrm_core::validate::header_text("title", Some(t), TITLE_MAX)?
                .ok_or_else(|| ApiError::invalid_field("title", "invalid_request", "is required"))?;
            update = set_attr(update, "title", json!(t));
        }
        if let Some(c) = input.contact_id {
            if let Some(c) = &c {
                check_contact(&ctx, c).await?;
            }
            update = set_attr(update, "contactId", json!(c.as_ref().map(|c| c.as_str())));
        }
        let mut counters = None;
        if let Some(v) = input.value {
            let cents = value_cents(v)?;
            let delta = cents.unwrap_or(0) - opp.value_cents();
            if delta != 0 {
                counters = Some(TxOp::update_if(
                    keys::stage_set(&ws),
                    Update::new().add(format!("v_{}", opp.stage_id()), delta),
                    Condition::Exists,
                ));
            }
            update = set_attr(update, "valueCents", json!(cents));
        }
        if let Some(p) = input.probability_pct {
            update = set_attr(update, "probabilityPct", json!(probability("probabilityPct", p)?));
        }
        if let Some(d) = input.expected_close_date {
            update = set_attr(update, "expectedCloseDate", json!(close_date(d)?));
        }
        if let Some(o) = input.owner_id {
            if let Some(o) = &o {
                super::companies::check_member(&ctx, o).await?;
            }
            update = set_attr(update, "ownerId", json!(o.as_ref().map(|o| o.as_str())));
        }
        let now = time::now_string();
        let version = opp.version() + 1;
        update = set_attr(update, "updatedAt", json!(now));
        item.insert("version".into(), json!(version));
        let update = update.add("version", 1);
        let set = pipeline::stage_set(&ctx.app, &ws).await?;
        let reply = Reply::ok(opp_view(&set, &item)?).with_version(version);
        let mut ops = vec![TxOp::update_if(
            keys::opportunity(&ws, opp.id()),
            update,
            Condition::And(vec![
                Condition::VersionEquals(opp.version()),
                Condition::Equals("stageId".into(), json!(opp.stage_id())),
            ]),
        )];
        ops.extend(counters);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict_retry()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OppMoveInput {
    pub id: Id<ids::Opportunity>,
    pub stage_id: Id<ids::Stage>,
}

/// Moves `opp` to `to`. A linked opportunity's move is a LEAD_STAGE_CHANGED on its relationship,
/// followed in the same commit (when `sets_status`: a person's move, not a deleted stage's
/// housekeeping) by a STATUS_CHANGED to the stage's system status when the relationship has
/// another; the opportunity and the stage counters change in that commit.
async fn move_to(
    ctx: &Ctx,
    set: &StageSet,
    opp: OppRecord,
    to: &StageDef,
    sets_status: bool,
    idempotent: Option<&Reply<Opportunity>>,
) -> ApiResult<()> {
    let ws = ctx.workspace().to_owned();
    let from = set.find(opp.stage_id())?.clone();
    let now = time::now_string();
    let mut own_ops = vec![pipeline::move_op(&ws, &opp, &to.id, &now)];
    own_ops.extend(pipeline::counters_op(&ws, &[(Some(&from.id), Some(&to.id), opp.value_cents())]));
    let Some(rel_id) = opp.relationship_id().map(str::to_owned) else {
        let result = match idempotent {
            Some(reply) => ctx.commit(own_ops, reply).await,
            None => ctx.app.store.transact(own_ops).await,
        };
        return match result {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict_retry()),
            Err(e) => Err(e.into()),
        };
    };
    let event = pipeline::stage_changed_event(&opp, &from, to, false);
    let status = NewEvent {
        r#type: EventType::StatusChanged,
        contact_id: None,
        subject: None,
        content: None,
        metadata: Some(json!({ "to": to.system_key, "reason": format!("opportunity moved to {}", to.name),
                               "opportunityId": opp.id(), "stageId": to.id })),
        occurred_at: None,
    };
    let pending = idempotent.and(ctx.idempotency.clone());
    let body = match idempotent {
        Some(r) => {
            Some((r.status, serde_json::to_value(&r.body).map_err(|e| records::corrupt("opportunity", e))?, r.version))
        }
        None => None,
    };
    let ride = Ride {
        follow: if sets_status { vec![status] } else { Vec::new() },
        ops: Some(Box::new(move |_event: &Item| {
            let mut ops = own_ops.clone();
            if let (Some(p), Some((status, body, version))) = (&pending, &body) {
                ops.push(p.done_part(*status, Some(body.clone()), *version));
            }
            Ok(ops)
        })),
        ..Ride::default()
    };
    match write::record_event(&ctx.app, &ctx.caller.agency_id, &ws, &rel_id, event, ride, None).await {
        Ok(_) => {
            if idempotent.is_some() {
                if let Some(p) = &ctx.idempotency {
                    p.mark_committed();
                }
            }
            Ok(())
        }
        Err(write::EventError::RideConditionFailed) => Err(conflict_retry()),
        Err(e) => Err(e.into()),
    }
}

pub struct OppMove;
impl Operation for OppMove {
    const NAME: &'static str = "link_building.crm.opportunity.move";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Move an opportunity to a stage; a linked one records LEAD_STAGE_CHANGED and, when the stage stands for another status, STATUS_CHANGED on its relationship";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = OppMoveInput;
    type Output = Opportunity;

    async fn run(ctx: Ctx, input: OppMoveInput) -> ApiResult<Reply<Opportunity>> {
        let ws = ctx.workspace().to_owned();
        let (opp, set) = tokio::try_join!(load_opp(&ctx, &input.id), async {
            Ok::<_, ApiError>(pipeline::stage_set(&ctx.app, &ws).await?)
        })?;
        let to = set.destination(&input.stage_id)?.clone();
        let mut item = opp.0.clone();
        if opp.stage_id() == to.id {
            let v = opp_view(&set, &item)?;
            let version = v.version;
            return Ok(Reply::ok(v).with_version(version));
        }
        let version = opp.version() + 1;
        item.insert("stageId".into(), json!(to.id));
        item.insert("updatedAt".into(), json!(time::now_string()));
        item.insert("version".into(), json!(version));
        let reply = Reply::ok(opp_view(&set, &item)?).with_version(version);
        move_to(&ctx, &set, opp, &to, true, Some(&reply)).await?;
        Ok(reply)
    }
}

pub struct OppDelete;
impl Operation for OppDelete {
    const NAME: &'static str = "link_building.crm.opportunity.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Delete an opportunity (its relationship and events stay)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Opportunity>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<ids::Opportunity>) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace().to_owned();
        let opp = load_opp(&ctx, &input.id).await?;
        let mut ops = vec![TxOp::Delete {
            key: keys::opportunity(&ws, opp.id()),
            cond: Some(Condition::Equals("stageId".into(), json!(opp.stage_id()))),
        }];
        ops.extend(pipeline::counters_op(&ws, &[(Some(opp.stage_id()), None, opp.value_cents())]));
        if let Some(r) = opp.relationship_id() {
            ops.push(TxOp::update_if(keys::relationship(r), Update::new().add(OPP_COUNT, -1), Condition::Exists));
        }
        let reply = Reply::no_content();
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict_retry()),
            Err(e) => Err(e.into()),
        }
    }
}
