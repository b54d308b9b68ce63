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
            _ => return window(app, item, &meta, &id).await,
        }
    }
    Err(HandlerError::Retry { after: Duration::from_millis(300) })
}

/// An active campaign's send window (`settings.sendWindow`, in the workspace's time zone): a send
/// due outside it is queued again for the next opening (`sendWindowWaitUntil` on the invocation
/// says so), and this delivery is done.
async fn window(app: &App, item: &Item, meta: &Item, id: &str) -> Result<Gate, HandlerError> {
    use linkcrm_domain::send_window::{zone, SendWindow};
    let Some(w) = meta.get("settings").and_then(|s| s.get("sendWindow")).and_then(SendWindow::from_json) else {
        return Ok(Gate::Go);
    };
    let retry = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "send window: store unavailable");
        HandlerError::Retry { after: Duration::from_secs(2) }
    };
    let ws = records::str_of(item, "workspaceId").unwrap_or_default();
    let ws_item = app.store.get(&linkcrm_core::keys::workspace(ws)).await.map_err(|e| retry(&e))?;
    let name = ws_item.as_ref().and_then(|w| w.get("settings")).and_then(|s| s.get("timeZone")).and_then(Value::as_str);
    let tz = zone(name).unwrap_or(chrono_tz::Tz::UTC);
    let Some(at) = w.next_open(chrono::Utc::now(), tz) else { return Ok(Gate::Go) };
    let at = linkcrm_domain::time::format(at);
    let job = linkcrm_core::jobkinds::send_job_op(id, Some(&at)).map_err(|e| retry(&e.message))?;
    let note = TxOp::update(inv::key(id), linkcrm_storage::Update::new().set("sendWindowWaitUntil", at.clone()));
    app.store.transact(vec![note, job]).await.map_err(|e| retry(&e))?;
    tracing::info!(invocation = %id, until = %at, "send waits for its campaign's send window");
    Ok(Gate::Done)
}
