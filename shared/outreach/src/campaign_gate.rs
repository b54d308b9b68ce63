//! What a campaign's status means for one of its sends at send time (CONTRACT "Campaigns": while
//! paused nothing of the campaign is sent). The send job asks before it claims anything:
//!
//! - active (or not a campaign's send): go on;
//! - paused: the send is *held*: a `CMP#<id>#HELD` / `<invocation>` item, written only while the
//!   campaign is still paused (a condition on its record), and the job is done. Resuming gives
//!   every held send back to the queue (the campaigns context's release job), so a resume that
//!   commits between this read and that write makes the write fail and the job look again;
//! - cancelled or completed: the invocation ends CANCELLED (`campaign_cancelled` /
//!   `campaign_completed`) and its credits are released.

use crate::invocations::{self as inv};
use crate::App;
use linkcrm_crm::keys;
use linkcrm_crm::records::{self, obj};
use linkcrm_jobs::HandlerError;
use linkcrm_storage::{Condition, Item, StoreError, TxOp};
use serde_json::{json, Value};
use std::time::Duration;

pub enum Gate {
    Go,
    /// Held until the campaign resumes, or settled (cancelled): the job is done either way.
    Done,
}

pub async fn check(app: &App, item: &Item) -> Result<Gate, HandlerError> {
    let retry = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "campaign gate: store unavailable");
        HandlerError::Retry { after: Duration::from_secs(2) }
    };
    let Some(campaign) = linkcrm_core::approvals::campaign_of(item).map(str::to_owned) else { return Ok(Gate::Go) };
    let id = records::str_of(item, "invocationId").unwrap_or_default().to_owned();
    for _ in 0..3 {
        let Some(meta) = app.store.get(&keys::campaign(&campaign)).await.map_err(|e| retry(&e))? else {
            return Ok(Gate::Go);
        };
        match records::str_of(&meta, "status").unwrap_or("active") {
            "paused" => {
                let held = keys::campaign_held(&campaign, &id);
                let ops = vec![
                    TxOp::check(keys::campaign(&campaign), Condition::Equals("status".into(), json!("paused"))),
                    TxOp::put(obj(json!({ "PK": held.pk, "SK": held.sk, "entity": "heldSend",
                                          "invocationId": id, "campaignId": campaign,
                                          "heldAt": linkcrm_domain::time::now_string() }))),
                ];
                match app.store.transact(ops).await {
                    Ok(()) => {
                        tracing::info!(invocation = %id, %campaign, "send held while its campaign is paused");
                        return Ok(Gate::Done);
                    }
                    Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                    Err(e) => return Err(retry(&e)),
                }
            }
            status @ ("cancelled" | "completed") => {
                let code = format!("campaign_{status}");
                let p =
                    inv::problem(422, &code, &format!("The campaign {campaign} is {status}; this send was not made"));
                let outcome = inv::Outcome { status: inv::Status::Cancelled, used: 0, result: Value::Null, error: p };
                inv::commit_finish(app, item, outcome, vec![]).await?;
                return Ok(Gate::Done);
            }
            _ => return Ok(Gate::Go),
        }
    }
    Err(HandlerError::Retry { after: Duration::from_millis(300) })
}
