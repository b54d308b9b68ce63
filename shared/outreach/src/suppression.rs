//! Suppression: addresses and domains nobody in a workspace (or on the platform) may email.
//! Scopes (CONTRACT.md): a workspace's own list (manual entries, unsubscribes from its emails);
//! platform-wide for hard bounces. DO_NOT_CONTACT on an account is the account-wide scope.
//!
//! A platform-wide entry stops every workspace of every agency, so only evidence the platform
//! itself gathered may make one: a hard bounce of a message the platform sent, to that very
//! recipient, that arrived through a channel the platform reads (the platform mailbox, a mailbox
//! it polls). A bounce a workspace posts through the API is its word alone and suppresses for that
//! workspace only. Every entry records its provenance, so an agency can see why an address is
//! blocked and an operator can lift a platform entry (`linkcrm suppression lift`).

use crate::error::{ApiError, ApiResult};
use linkcrm_domain::normalize::{normalize_domain, normalize_email};
use linkcrm_storage::{DynStore, Item, Key};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Email,
    Domain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuppressionSource {
    /// Added by hand through the API.
    Manual,
    /// The recipient used an unsubscribe link or replied asking to stop.
    Unsubscribe,
    /// A hard bounce: the address does not exist (platform-wide).
    Bounce,
}

/// How what caused an entry reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A workspace's API key: added by hand, or mail posted to `/v1/link-building/inbound/email`.
    Api,
    /// The recipient used the unsubscribe link of one of our emails.
    UnsubscribeLink,
    /// Mail that arrived in the platform's own mailbox.
    PlatformMailbox,
    /// Mail the platform read from a workspace's mailbox itself.
    PolledMailbox,
}

impl Channel {
    /// Whether mail from this channel is what the platform itself received, rather than what a
    /// workspace says it received: only such mail may suppress platform-wide.
    pub fn read_by_platform(self) -> bool {
        matches!(self, Channel::PlatformMailbox | Channel::PolledMailbox)
    }
}

/// Why an entry exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The workspace whose key, mail or link caused it. On a platform entry it is shown only to
    /// that workspace's agency.
    pub workspace_id: Option<String>,
    pub channel: Channel,
    /// The `Message-ID` of the message behind it (the bounce report or the reply), if any.
    pub message_id: Option<String>,
    /// The stored inbound message (`msg_…`), if any.
    pub inbound_message_id: Option<String>,
}

/// One entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub kind: Kind,
    /// The address or domain, normalised.
    pub value: String,
    /// The workspace whose list holds it; null for platform-wide entries.
    pub workspace_id: Option<String>,
    pub source: SuppressionSource,
    pub reason: Option<String>,
    pub created_at: String,
    /// Null only for entries made before provenance was recorded.
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

pub use crate::keys::suppression_pk as scope_pk;

pub fn key(workspace: Option<&str>, kind: Kind, value: &str) -> Key {
    let k = match kind {
        Kind::Email => "email",
        Kind::Domain => "domain",
    };
    crate::keys::suppression(workspace, k, value)
}

/// Normalises what a caller names: exactly one of an email or a domain.
pub fn target(email: Option<&str>, domain: Option<&str>) -> ApiResult<(Kind, String)> {
    match (email, domain) {
        (Some(e), None) => normalize_email(e)
            .map(|v| (Kind::Email, v))
            .ok_or_else(|| ApiError::invalid_field("email", "invalid_email", format!("'{e}' is not an email address"))),
        (None, Some(d)) => normalize_domain(d)
            .map(|v| (Kind::Domain, v))
            .map_err(|e| ApiError::invalid_field("domain", "invalid_domain", e.to_string())),
        _ => Err(ApiError::invalid_field("email", "invalid_request", "give exactly one of email or domain")),
    }
}

/// The stored entry; `agency` is the agency of the workspace that caused it, kept to decide who may
/// see that workspace's id.
pub fn item(s: &Suppression, agency: Option<&str>) -> Item {
    let k = key(s.workspace_id.as_deref(), s.kind, &s.value);
    crate::platform::to_item(&k, "suppression", s, serde_json::json!({ "agencyId": agency }))
}

/// A stored entry as agency `viewer` may see it: another agency's workspace behind a platform
/// entry stays unnamed.
pub fn view(item: &Item, viewer: &str) -> crate::error::DataResult<Suppression> {
    let mut s: Suppression = linkcrm_crm::records::parse("suppression", item)?;
    let own = item.get("agencyId").and_then(Value::as_str) == Some(viewer);
    if let Some(p) = s.provenance.as_mut().filter(|_| s.workspace_id.is_none() && !own) {
        p.workspace_id = None;
    }
    Ok(s)
}

/// Whether `domain` is on the workspace's suppression list or the platform's (one BatchGetItem):
/// the check a campaign makes before it takes a domain on as a partner.
pub async fn domain_suppressed(store: &DynStore, workspace: &str, domain: &str) -> crate::error::DataResult<bool> {
    let keys = [key(Some(workspace), Kind::Domain, domain), key(None, Kind::Domain, domain)];
    Ok(!store.batch_get(&keys).await?.is_empty())
}

/// Every entry that stops `workspace` from emailing `email`: its own list and the platform's, by
/// address and by domain, as agency `viewer` may see them. One BatchGetItem.
pub async fn blocking(
    store: &DynStore,
    workspace: &str,
    email: &str,
    viewer: &str,
) -> crate::error::DataResult<Vec<Suppression>> {
    let email = normalize_email(email).unwrap_or_else(|| email.to_ascii_lowercase());
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
    let keys = [
        key(Some(workspace), Kind::Email, &email),
        key(Some(workspace), Kind::Domain, &domain),
        key(None, Kind::Email, &email),
        key(None, Kind::Domain, &domain),
    ];
    let found = store.batch_get(&keys).await?;
    found.iter().map(|i| view(i, viewer)).collect()
}

/// The platform's audit log: one item per operator action, newest last.
pub use crate::keys::platform_audit as audit_key;

/// One line of the platform's audit log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// `aud_…`
    pub id: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    /// Who did it, as the operator's command names them.
    pub actor: String,
    pub at: String,
    /// The record as it was before.
    pub before: Value,
}

/// Lifts the platform-wide suppression of `email` (an operator's decision, e.g. a bounce that
/// turned out to be a mistake): the entry is removed, and the audit line and a
/// `suppression.removed` event are written with it, in one transaction. `None` when the address is
/// not suppressed platform-wide.
pub async fn lift_platform(store: &DynStore, email: &str, reason: &str, actor: &str) -> ApiResult<Option<AuditEntry>> {
    let (kind, value) = target(Some(email), None)?;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid_field("reason", "invalid_request", "say why the entry is lifted"));
    }
    let key = key(None, kind, &value);
    let Some(existing) = store.get(&key).await? else { return Ok(None) };
    let at = linkcrm_domain::time::now_string();
    let entry = AuditEntry {
        id: linkcrm_domain::new_id(linkcrm_domain::IdKind::Audit),
        action: "suppression.lifted".into(),
        target: value.clone(),
        reason: reason.trim().to_owned(),
        actor: actor.to_owned(),
        at: at.clone(),
        before: serde_json::to_value(linkcrm_crm::records::parse::<Suppression>("suppression", &existing)?)
            .unwrap_or_default(),
    };
    let ops = vec![
        linkcrm_storage::TxOp::Delete { key, cond: Some(linkcrm_storage::Condition::Exists) },
        linkcrm_storage::TxOp::put_if(
            crate::platform::to_item(&audit_key(&at, &entry.id), "audit", &entry, Value::Null),
            linkcrm_storage::Condition::NotExists,
        ),
        crate::outbox::event(
            "suppression.removed",
            None,
            serde_json::json!({ "kind": kind, "value": value, "reason": entry.reason, "auditId": entry.id }),
        ),
    ];
    match store.transact(ops).await {
        Ok(()) => Ok(Some(entry)),
        // Lifted concurrently by someone else: nothing is left to lift.
        Err(linkcrm_storage::StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The workspace and address an unsubscribe token names, if it is one this server sealed.
pub fn unsubscribe_target(app: &crate::App, token: &str) -> Option<(String, String)> {
    let text = app.open_token(crate::sending::UNSUBSCRIBE_SCOPE, token).ok()?;
    let (ws, email) = text.split_once('|')?;
    Some((ws.to_owned(), email.to_owned()))
}

/// Someone used an unsubscribe link: the address joins the workspace's list with source
/// `unsubscribe`, with its outbox event, in one transaction. `Ok(false)` when the token is not one
/// this server sealed; a second use is fine.
pub async fn unsubscribe(app: &crate::App, token: &str) -> Result<bool, linkcrm_storage::StoreError> {
    use linkcrm_storage::{Condition, StoreError, TxOp};
    let Some((ws, email)) = unsubscribe_target(app, token) else { return Ok(false) };
    let entry = Suppression {
        kind: Kind::Email,
        value: email,
        workspace_id: Some(ws.clone()),
        source: SuppressionSource::Unsubscribe,
        reason: Some("Unsubscribe link".into()),
        created_at: linkcrm_domain::time::now_string(),
        provenance: Some(Provenance {
            workspace_id: Some(ws.clone()),
            channel: Channel::UnsubscribeLink,
            message_id: None,
            inbound_message_id: None,
        }),
    };
    let ops = vec![
        TxOp::put_if(item(&entry, None), Condition::NotExists),
        crate::outbox::event("suppression.added", Some(&ws), serde_json::json!(entry)),
    ];
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}
