//! Approvals as records: the human gate in front of an outside-world step (today an outreach
//! send). The item `APPR#<id>` / `#`, on GSI1 as `WS#<ws>#APPRS` / `<raisedAt>#<id>`; its statuses;
//! how long it waits; the op that closes it. The operations on approvals are `ops::approvals`.

use crate::items::{self as records, obj};
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Item, TxOp, Update};
use serde_json::{json, Value};

pub use linkcrm_domain::enums::ApprovalStatus as Status;
const DEFAULT_TIMEOUT_SECS: i64 = 7 * 24 * 3600;

/// How long an approval waits before it expires: `LINKCRM_APPROVAL_TIMEOUT_SECS` (a positive
/// number of seconds), 7 days by default.
pub fn timeout() -> chrono::Duration {
    let secs = std::env::var("LINKCRM_APPROVAL_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|s| *s > 0 && *s <= 10 * 365 * 24 * 3600)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    chrono::Duration::seconds(secs)
}

pub use crate::keys::{approval as key, approvals_pk as workspace_pk};

/// The approval for a new invocation (`invocation` is its item, before it is written).
pub fn new_item(invocation: &Item, to: &str, subject: &str, body: &str, scheduled_at: Option<&str>) -> Item {
    let inv_id = records::str_of(invocation, "invocationId").unwrap_or_default();
    let id = format!("appr_{}", inv_id.strip_prefix("inv_").unwrap_or(inv_id));
    let ws = records::str_of(invocation, "workspaceId").unwrap_or_default();
    let now = chrono::Utc::now();
    let raised = time::now_string();
    let timeout = (now + timeout()).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let k = key(&id);
    obj(json!({
        "PK": k.pk, "SK": k.sk, "entity": "approval",
        "GSI1PK": workspace_pk(ws), "GSI1SK": format!("{raised}#{id}"),
        "approvalId": id, "invocationId": inv_id, "workspaceId": ws,
        "agentId": records::str_of(invocation, "agentId"), "skill": records::str_of(invocation, "skill"),
        "step": "send_email",
        "preview": { "to": to, "subject": subject, "body": body, "scheduledAt": scheduled_at },
        "reason": "Workspace policy: outreach_send=require_approval",
        "raisedAt": raised, "timeoutAt": timeout, "status": Status::Pending,
    }))
}

/// The campaign a draft belongs to (`input.campaignId` of its invocation), if it is one.
pub fn campaign_of(invocation: &Item) -> Option<&str> {
    invocation.get("input").and_then(|i| i.get("campaignId")).and_then(Value::as_str)
}

/// The ops that close a pending approval (if the invocation has one). A campaign's draft also
/// gets the job that carries the decision into its campaign (`JobKind::CampaignDraft`): for an
/// approval that job, not the approval, queues the send, after recording DRAFT_APPROVED and
/// SEND_QUEUED on the relationship.
pub fn close_op(invocation: &Item, status: Status, extra: Vec<(&str, Value)>) -> Vec<TxOp> {
    let Some(id) = records::str_of(invocation, "approvalId") else { return vec![] };
    let mut u = Update::new().set("status", status).set("decidedAt", time::now_string());
    for (k, v) in extra {
        u = u.set(k, v);
    }
    let mut ops = vec![TxOp::update_if(key(id), u, Condition::Equals("status".into(), json!(Status::Pending)))];
    if let Some(campaign) = campaign_of(invocation) {
        let inv = records::str_of(invocation, "invocationId").unwrap_or_default();
        ops.extend(crate::jobkinds::campaign_draft_op(inv, campaign, status).ok());
    }
    ops
}
