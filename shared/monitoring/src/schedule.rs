//! The dispatcher: the links whose check is due, read from the sharded due index (GSI3, no Scan),
//! each claimed and given a `link_check` job in one transaction. The claim moves the link's due
//! time a lease ahead, so a job lost with its worker is dispatched again after the lease; a job
//! that runs finds its claim and commits, or finds another and does nothing.
//!
//! Locally a timer runs [`dispatch_due`]; in AWS the link-check worker's EventBridge schedule does.

use crate::{keys, run, settings};
use chrono::{DateTime, Utc};
use linkcrm_core::items;
use linkcrm_core::App;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Index, Query, SortKey, StoreError, TxOp, Update};
use serde::Serialize;
use serde_json::json;

/// What one tick did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Tick {
    pub dispatched: u32,
    /// Taken by a concurrent tick (or changed) between read and claim.
    pub busy: u32,
}

/// Claims and queues up to `limit` due links per shard.
pub async fn dispatch_due(app: &App, now: DateTime<Utc>, limit: usize) -> Result<Tick, StoreError> {
    let mut tick = Tick::default();
    let upto = format!("{}#~", time::format(now));
    let lease_until = time::format(now + chrono::Duration::from_std(settings().lease).unwrap_or_default());
    for shard in 0..keys::DUE_SHARDS {
        let q = Query::index(Index::Gsi3, keys::due_pk(shard)).sk(SortKey::AtMost(upto.clone())).limit(limit);
        let page = app.store.query(q).await?;
        for item in page.items {
            let (Some(id), Some(ws), Some(seen)) =
                (items::str_of(&item, "id"), items::str_of(&item, "workspaceId"), items::str_of(&item, "GSI3SK"))
            else {
                continue;
            };
            let claim = linkcrm_domain::new_id(linkcrm_domain::IdKind::Job);
            // A link waiting for its confirming re-check says so in its checks.
            let trigger = if item.get("absentSince").is_some_and(|v| !v.is_null()) { "confirm" } else { "scheduled" };
            let job =
                run::job_op(ws, id, &claim, trigger, None, None).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let ops = vec![
                TxOp::update_if(
                    keys::link(ws, id),
                    Update::new().set("claim", claim.clone()).set("GSI3SK", keys::due_sort(&lease_until, id)),
                    Condition::Equals("GSI3SK".into(), json!(seen)),
                ),
                job,
            ];
            match app.store.transact(ops).await {
                Ok(()) => tick.dispatched += 1,
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => tick.busy += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(tick)
}

/// How often the local timer looks for due links (`LINKCRM_LINKCHECK_TICK_SECS`, 60).
pub fn tick_every() -> std::time::Duration {
    std::time::Duration::from_secs_f64(
        std::env::var("LINKCRM_LINKCHECK_TICK_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(60.0),
    )
}
