//! `workspaces.credits.grant` and `workspaces.usage`: an agency funds its workspaces and reads
//! what they used this cycle.

use crate::auth;
use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::credits::{self, as_credits};
use crate::error::{ApiError, ApiResult};
use linkcrm_core::workspace::pool_of;
use linkcrm_domain::platform::CreditPool;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

fn milli(item: &Option<linkcrm_storage::Item>, k: &str) -> i64 {
    item.as_ref().and_then(|i| i.get(k)).and_then(Value::as_i64).unwrap_or(0)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    /// Credits to add (up to three decimals).
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 1_000_000_000, "multipleOf" = 0.001))]
    pub credits: f64,
    /// Why, for the ledger (an invoice number, a trial, …).
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Granted {
    pub workspace_id: String,
    /// `workspace` or `agency`: which pool received the credits.
    pub credit_pool: CreditPool,
    pub credits_granted: f64,
    pub credits_remaining: f64,
}

pub struct Grant;
impl Operation for Grant {
    const NAME: &'static str = "workspaces.credits.grant";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Grant credits to a workspace (or to its agency pool)";
    const TAG: &'static str = "Workspaces";
    type Input = GrantInput;
    type Output = Granted;

    async fn run(ctx: Ctx, input: GrantInput) -> ApiResult<Reply<Granted>> {
        let record = auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let ws = super::workspaces::from_record(&record)?;
        let amount = credits::parse_credits("credits", input.credits)?;
        let reason = crate::validate::text("reason", input.reason, 500)?;
        let pool = pool_of(&ws);
        ctx.app.store.transact(credits::grant(&pool, &ws.id, amount, reason.as_deref())).await?;
        let balance = ctx.app.store.get(&pool.key()).await?;
        Ok(Reply::created(Granted {
            workspace_id: ws.id,
            credit_pool: ws.settings.credit_pool,
            credits_granted: amount as f64 / 1000.0,
            credits_remaining: milli(&balance, "available") as f64 / 1000.0,
        }))
    }
}

pub use crate::catalogue::IdInput;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub workspace_id: String,
    pub credit_pool: CreditPool,
    pub credits_used_this_cycle: f64,
    /// What the pool can still spend (reservations of work in progress already taken out).
    pub credits_remaining: f64,
    /// Held by accepted work that has not finished.
    pub credits_reserved: f64,
    pub cycle_starts_at: String,
    pub cycle_ends_at: String,
    /// Credits used this cycle per skill (operation name).
    pub by_skill: BTreeMap<String, f64>,
    /// Credits used this cycle per UTC day (`YYYY-MM-DD`), days with use only.
    pub by_day: BTreeMap<String, f64>,
}

pub struct GetUsage;
impl Operation for GetUsage {
    const NAME: &'static str = "workspaces.usage";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = None;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Credits used this cycle, remaining, and usage by skill";
    const TAG: &'static str = "Workspaces";
    type Input = IdInput<crate::ids::Workspace>;
    type Output = Usage;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<Usage>> {
        let record = auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        if !ctx.caller.is_agency() && !record.active() {
            return Err(ApiError::forbidden("workspace_archived", format!("Workspace '{}' is archived.", input.id)));
        }
        let ws = super::workspaces::from_record(&record)?;
        let pool = pool_of(&ws);
        let (start, end, label) = credits::cycle(linkcrm_domain::time::now());
        let keys = [pool.key(), credits::usage_key(&ws.id, &label)];
        let found = ctx.app.store.batch_get(&keys).await?;
        let find =
            |k: &linkcrm_storage::Key| found.iter().find(|i| linkcrm_storage::Key::of(i).as_ref() == Some(k)).cloned();
        let (balance, usage) = (find(&keys[0]), find(&keys[1]));
        let counted = |prefix: &str| -> BTreeMap<String, f64> {
            usage
                .iter()
                .flat_map(|u| u.iter())
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.as_i64()? as f64 / 1000.0)))
                .collect()
        };
        let (by_skill, by_day) = (counted("skill#"), counted("day#"));
        let to_f = |v: Value| v.as_f64().unwrap_or(0.0);
        Ok(Reply::ok(Usage {
            workspace_id: ws.id,
            credit_pool: ws.settings.credit_pool,
            credits_used_this_cycle: to_f(as_credits(milli(&usage, "used"))),
            credits_remaining: to_f(as_credits(milli(&balance, "available"))),
            credits_reserved: to_f(as_credits(milli(&balance, "reserved"))),
            cycle_starts_at: start,
            cycle_ends_at: end,
            by_skill,
            by_day,
        }))
    }
}
