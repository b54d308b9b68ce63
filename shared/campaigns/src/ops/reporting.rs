//! `link_building.reporting.snapshot`: a workspace's campaign totals and rates (a monthly client
//! report's numbers), summed from its campaigns' maintained counters: one Query over the
//! workspace's campaign index, projected to the counters, per 1 MB of campaigns. An agency key
//! without `X-Workspace-Id` gets one row per workspace of the agency (up to 100 workspaces a call;
//! `cursor` pages on).

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::keys;
use crate::lenient;
use crate::records::{self as rec, Status, Summary};
use crate::App;
use linkcrm_crm::records::str_of;
use linkcrm_domain::campaign::Tally;
use linkcrm_storage::{Index, Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const TAG: &str = "Reporting";
const ATTRS: [&str; 9] = ["status", "drafted", "sent", "bounced", "hardBounced", "opened", "replied", "placed", "id"];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotInput {
    /// Agency-wide only: workspaces per page (default 50, at most 100).
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 100))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignCounts {
    pub total: i64,
    pub active: i64,
    pub paused: i64,
    pub completed: i64,
    pub cancelled: i64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSnapshot {
    pub workspace_id: String,
    pub campaigns: CampaignCounts,
    /// Across every campaign of the workspace (CONTRACT's rates: count / sent, two decimals).
    pub totals: Summary,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub generated_at: String,
    /// One workspace's numbers (a workspace key, or an agency key with `X-Workspace-Id`).
    pub workspace: Option<WorkspaceSnapshot>,
    /// One row per workspace (an agency key without `X-Workspace-Id`).
    pub data: Option<Vec<WorkspaceSnapshot>>,
    pub next_cursor: Option<String>,
}

/// One workspace's snapshot from its campaigns' counters.
pub async fn workspace_snapshot(app: &App, ws: &str) -> ApiResult<WorkspaceSnapshot> {
    let mut tally = Tally::default();
    let mut counts = CampaignCounts::default();
    let mut cursor = None;
    loop {
        let q = Query::index(Index::Gsi1, keys::campaigns_pk(ws)).limit(1000).after(cursor).attrs(&ATTRS);
        let page = app.store.query(q).await?;
        for c in &page.items {
            tally = tally.plus(&rec::tally_of(c));
            counts.total += 1;
            match rec::status_of(c) {
                Status::Active => counts.active += 1,
                Status::Paused => counts.paused += 1,
                Status::Completed => counts.completed += 1,
                Status::Cancelled => counts.cancelled += 1,
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(WorkspaceSnapshot { workspace_id: ws.to_owned(), campaigns: counts, totals: Summary::of(&tally) })
}

pub struct GetSnapshot;
impl Operation for GetSnapshot {
    const NAME: &'static str = "link_building.reporting.snapshot";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::AgencyWide;
    const SUMMARY: &'static str =
        "Campaign totals and rates for a workspace, or one row per workspace for an agency key without X-Workspace-Id (free)";
    const TAG: &'static str = TAG;
    type Input = SnapshotInput;
    type Output = Snapshot;

    async fn run(ctx: Ctx, input: SnapshotInput) -> ApiResult<Reply<Snapshot>> {
        let generated_at = linkcrm_domain::time::now_string();
        if let Some(ws) = ctx.workspace_id.clone() {
            let one = workspace_snapshot(&ctx.app, &ws).await?;
            return Ok(Reply::ok(Snapshot { generated_at, workspace: Some(one), data: None, next_cursor: None }));
        }
        let limit = input.limit.unwrap_or(50).clamp(1, 100) as usize;
        let agency = ctx.caller.agency_id.clone();
        let scope = format!("{}#{agency}", Self::NAME);
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let q = Query::partition(linkcrm_core::keys::agency_workspaces_pk(&agency)).limit(limit).after(cursor);
        let page = ctx.app.store.query(q).await?;
        let mut data = Vec::new();
        for p in &page.items {
            if let Some(ws) = str_of(p, "workspaceId").or_else(|| p.get("SK").and_then(Value::as_str)) {
                data.push(workspace_snapshot(&ctx.app, ws).await?);
            }
        }
        let next_cursor = ctx.app.seal_cursor(&scope, page.cursor);
        Ok(Reply::ok(Snapshot { generated_at, workspace: None, data: Some(data), next_cursor }))
    }
}
