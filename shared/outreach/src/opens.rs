//! Open tracking, for campaigns that ask for it (`trackOpens`, off by default: a pixel hurts
//! cold-email deliverability, and privacy-protecting mail clients, Apple Mail's above all, load
//! every image for everyone, so opens are approximate). A tracked send carries an HTML part whose
//! last image is `GET /v1/t/o/{token}.gif`, the token sealing the send's invocation id; the first
//! load records EMAIL_OPENED on the relationship (metadata `campaignId`, `invocationId`), once per
//! send (`OPEN#<inv>` guard in the event's transaction); every load answers the same 1×1 GIF.

use crate::invocations as inv;
use crate::{keys, App};
use linkcrm_crm::records::{obj, str_of};
use linkcrm_crm::write::{self, NewEvent, Ride};
use linkcrm_domain::enums::EventType;
use linkcrm_storage::{Condition, TxOp};
use serde_json::{json, Value};

pub const OPEN_SCOPE: &str = "open";

/// The smallest transparent GIF (1×1).
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The pixel's URL for send `invocation`.
pub fn pixel_url(app: &App, invocation: &str) -> String {
    format!("{}/v1/t/o/{}.gif", crate::sending::public_url(), app.seal_token(OPEN_SCOPE, invocation))
}

/// Records the open the token names. `Ok(false)` when the token is not one this server sealed, or
/// names no sent email; a second open of the same send records nothing.
pub async fn record(app: &App, token: &str) -> Result<bool, String> {
    let token = token.strip_suffix(".gif").unwrap_or(token);
    let Ok(id) = app.open_token(OPEN_SCOPE, token) else { return Ok(false) };
    let Some(item) = app.store.get(&inv::key(&id)).await.map_err(|e| e.to_string())? else { return Ok(false) };
    if inv::status(&item) != inv::Status::Succeeded {
        return Ok(false);
    }
    let input = item.get("input").cloned().unwrap_or_default();
    let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(rel), Some(ws)) = (s("relationshipId"), str_of(&item, "workspaceId").map(str::to_owned)) else {
        return Ok(false);
    };
    let agency = str_of(&item, "agencyId").unwrap_or_default().to_owned();
    let guard = keys::open_guard(&id);
    let guard_item = obj(json!({ "PK": guard.pk, "SK": guard.sk, "entity": "openGuard", "invocationId": id,
                                 "at": linkcrm_domain::time::now_string() }));
    let new = NewEvent {
        r#type: EventType::EmailOpened,
        contact_id: s("contactId"),
        subject: s("subject"),
        content: None,
        metadata: Some(json!({ "campaignId": s("campaignId"), "invocationId": id, "approximate": true })),
        occurred_at: None,
    };
    let ride = Ride {
        ops: Some(Box::new(move |_| Ok(vec![TxOp::put_if(guard_item.clone(), Condition::NotExists)]))),
        ..Ride::default()
    };
    match write::record_event(app, &agency, &ws, &rel, new, ride, None).await {
        Ok(_) | Err(write::EventError::RideConditionFailed) => Ok(true),
        Err(write::EventError::RelationshipNotFound(_)) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
