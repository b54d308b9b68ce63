//! `link_building.crm.dashboard`: the pipeline at a glance (seed 004's dashboard): opportunities
//! and value per stage from the stage counters, this week's activities, sends and replies, and
//! the open tasks due today or overdue. "This week" and "today" are in the workspace's time zone
//! (`settings.timeZone`, UTC when unset); weeks start on Monday.

use super::TAG_PIPELINE;
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::keys;
use crate::pipeline::{self, cents_to_usd};
use linkcrm_domain::stages::StageKind;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Query, SortKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Dashboard>()]
}

/// Pages a count reads at most (1 MB each); past it the count says `countsCapped`.
const MAX_PAGES: usize = 10;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageTotal {
    pub stage_id: String,
    pub name: String,
    pub kind: StageKind,
    pub count: i64,
    /// USD.
    pub value: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardOutput {
    pub leads_by_stage: Vec<StageTotal>,
    /// The summed value of opportunities in open stages, USD.
    pub open_pipeline_value: f64,
    pub activities_this_week: u64,
    /// Open tasks due from now to the end of today.
    pub tasks_due: u64,
    /// Open tasks whose due time has passed.
    pub tasks_overdue: u64,
    /// EMAIL_SENT events this week.
    pub sends_this_week: u64,
    /// EMAIL_RECEIVED events this week.
    pub replies_this_week: u64,
    /// Monday 00:00 of this week and the end of today, in the workspace's zone.
    pub week_start: String,
    pub day_end: String,
    /// True when a count stopped at its read limit (the figures are lower bounds).
    pub counts_capped: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Every item a query finds (projected to `attrs`), up to the page limit: (items, capped).
async fn read_all(ctx: &Ctx, q: Query, attrs: &[&str]) -> ApiResult<(Vec<linkcrm_storage::Item>, bool)> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = ctx.app.store.query(q.clone().attrs(attrs).after(cursor)).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok((out, false)),
        }
    }
    Ok((out, true))
}

pub struct Dashboard;
impl Operation for Dashboard {
    const NAME: &'static str = "link_building.crm.dashboard";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "The pipeline at a glance: opportunities and value per stage, this week's activities, sends and replies, tasks due and overdue";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = Empty;
    type Output = DashboardOutput;

    async fn run(ctx: Ctx, _: Empty) -> ApiResult<Reply<DashboardOutput>> {
        let ws = ctx.workspace().to_owned();
        let zone = ctx.workspace_record().item.get("settings").and_then(|s| s.get("timeZone")).and_then(Value::as_str);
        let now = time::now();
        let (week, day_end) = linkcrm_domain::send_window::week_and_day(now, zone);
        let (week_s, day_end_s, now_s) = (time::format(week), time::format(day_end), time::format(now));
        let acts = Query::partition(keys::activities_pk(&ws))
            .sk(SortKey::AtLeast(linkcrm_domain::id::bound_at(IdKind::Event, week.timestamp_millis())));
        let tasks = Query::index(Index::Gsi3, keys::tasks_due_pk(&ws)).sk(SortKey::Before(format!("{day_end_s}#")));
        let mail = Query::index(Index::Gsi2, crate::keys::workspace_events_pk(&ws))
            .sk(SortKey::AtLeast(keys::time_sort(&week_s, "")))
            .filter(Condition::Or(vec![
                Condition::Equals("type".into(), json!("EMAIL_SENT")),
                Condition::Equals("type".into(), json!("EMAIL_RECEIVED")),
            ]));
        let (set, (acts, c1), (tasks, c2), (mail, c3)) = tokio::try_join!(
            async { Ok::<_, crate::error::ApiError>(pipeline::stage_set(&ctx.app, &ws).await?) },
            read_all(&ctx, acts, &["id"]),
            read_all(&ctx, tasks, &["GSI3SK"]),
            read_all(&ctx, mail, &["type", "occurredAt"]),
        )?;
        let leads_by_stage: Vec<StageTotal> = set
            .stages
            .iter()
            .map(|s| StageTotal {
                stage_id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind,
                count: set.count(&s.id).max(0),
                value: cents_to_usd(set.value_cents(&s.id).max(0)),
            })
            .collect();
        let open_pipeline_value = cents_to_usd(
            set.stages.iter().filter(|s| s.kind == StageKind::Open).map(|s| set.value_cents(&s.id).max(0)).sum(),
        );
        let due_at = |i: &linkcrm_storage::Item| {
            i.get("GSI3SK").and_then(Value::as_str).and_then(|k| k.rsplit_once('#')).map(|(d, _)| d.to_owned())
        };
        let overdue = tasks.iter().filter(|t| due_at(t).is_some_and(|d| d < now_s)).count() as u64;
        let count = |t: &str| {
            mail.iter()
                .filter(|e| e.get("type").and_then(Value::as_str) == Some(t))
                .filter(|e| e.get("occurredAt").and_then(Value::as_str).is_some_and(|o| o <= now_s.as_str()))
                .count() as u64
        };
        Ok(Reply::ok(DashboardOutput {
            leads_by_stage,
            open_pipeline_value,
            activities_this_week: acts.len() as u64,
            tasks_due: tasks.len() as u64 - overdue,
            tasks_overdue: overdue,
            sends_this_week: count("EMAIL_SENT"),
            replies_this_week: count("EMAIL_RECEIVED"),
            week_start: week_s,
            day_end: day_end_s,
            counts_capped: c1 || c2 || c3,
        }))
    }
}
