//! Suppression: addresses and domains nobody in a workspace (or on the platform) may email.
//! Scopes (CONTRACT.md): a workspace's own list (manual entries, unsubscribes from its emails);
//! platform-wide for hard bounces. DO_NOT_CONTACT on an account is the account-wide scope.

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
}

pub fn scope_pk(workspace: Option<&str>) -> String {
    match workspace {
        Some(ws) => format!("SUPP#WS#{ws}"),
        None => "SUPP#PLATFORM".to_owned(),
    }
}

pub fn key(workspace: Option<&str>, kind: Kind, value: &str) -> Key {
    let k = match kind {
        Kind::Email => "email",
        Kind::Domain => "domain",
    };
    Key::new(scope_pk(workspace), format!("{k}#{value}"))
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

pub fn item(s: &Suppression) -> Item {
    let k = key(s.workspace_id.as_deref(), s.kind, &s.value);
    crate::platform::to_item(&k, "suppression", s, Value::Null)
}

/// Every entry that stops `workspace` from emailing `email`: its own list and the platform's, by
/// address and by domain. One BatchGetItem.
pub async fn blocking(store: &DynStore, workspace: &str, email: &str) -> ApiResult<Vec<Suppression>> {
    let email = normalize_email(email).unwrap_or_else(|| email.to_ascii_lowercase());
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
    let keys = [
        key(Some(workspace), Kind::Email, &email),
        key(Some(workspace), Kind::Domain, &domain),
        key(None, Kind::Email, &email),
        key(None, Kind::Domain, &domain),
    ];
    let found = store.batch_get(&keys).await?;
    found.iter().map(|i| crate::crm::records::parse("suppression", i)).collect()
}
