//! Agencies, their workspaces and API keys.

use crate::enums::ApprovalMode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agency {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// Approval policy per kind of outside-world step. Keys are snake_case, as the anchor spells them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    #[serde(default = "require")]
    pub publish: ApprovalMode,
    #[serde(default = "require")]
    pub outreach_send: ApprovalMode,
    #[serde(default = "auto")]
    pub indexing_submit: ApprovalMode,
    /// A campaign's follow-ups: `auto` (approving a draft approves the follow-ups it previewed)
    /// or `require_approval` (each follow-up waits for its own decision).
    #[serde(default = "auto")]
    pub follow_up: ApprovalMode,
    /// A person's manual reply to inbound mail: `auto` (the reply is itself the decision).
    #[serde(default = "auto")]
    pub inbound_respond: ApprovalMode,
}

fn require() -> ApprovalMode {
    ApprovalMode::RequireApproval
}
fn auto() -> ApprovalMode {
    ApprovalMode::Auto
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            publish: require(),
            outreach_send: require(),
            indexing_submit: auto(),
            follow_up: auto(),
            inbound_respond: auto(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CreditPool {
    Workspace,
    Agency,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSettings {
    #[serde(default)]
    pub primary_location: Option<String>,
    #[serde(default)]
    pub primary_language: Option<String>,
    #[serde(default)]
    pub approval_policy: ApprovalPolicy,
    #[serde(default = "workspace_pool")]
    pub credit_pool: CreditPool,
    /// IANA time zone (`Europe/Berlin`) of the workspace's send windows; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"))]
    pub time_zone: Option<String>,
    /// The legal basis the workspace records for cold outreach (GDPR art. 6): shown by the
    /// policy check; `legitimate_interest` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<LegalBasis>,
}

/// A lawful basis for processing a recipient's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    LegitimateInterest,
    Consent,
    Contract,
}

impl LegalBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::LegitimateInterest => "legitimate_interest",
            LegalBasis::Consent => "consent",
            LegalBasis::Contract => "contract",
        }
    }
}

fn workspace_pool() -> CreditPool {
    CreditPool::Workspace
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        WorkspaceSettings {
            primary_location: None,
            primary_language: None,
            approval_policy: ApprovalPolicy::default(),
            credit_pool: CreditPool::Workspace,
            time_zone: None,
            legal_basis: None,
        }
    }
}

/// One client of an agency: one brand, isolated data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    pub agency_id: String,
    pub name: String,
    pub primary_domain: Option<String>,
    pub tags: Vec<String>,
    pub active: bool,
    pub settings: WorkspaceSettings,
    pub created_at: String,
    pub updated_at: String,
    /// The time of the workspace's latest write (from its audit log), with `include=lastActiveAt`.
    pub last_active_at: Option<String>,
    pub archived_at: Option<String>,
    /// With `include=usage` on the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WorkspaceUsage>,
    /// With `include=health` on the list: each integration's status (`healthy`, `warning`,
    /// `error`, `not_connected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<std::collections::BTreeMap<String, String>>,
}

/// A workspace's credits this cycle, as the list embeds it (the anchor's shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUsage {
    pub credits_used_this_cycle: f64,
    pub credits_remaining: f64,
    pub cycle_ends_at: String,
}

/// Permissions a key can carry. Agency keys hold all of them.
pub const SCOPES: &[&str] =
    &["crm:read", "crm:write", "campaigns:read", "campaigns:write", "webhooks:manage", "workspaces:admin"];

/// An API key as listed: never the secret, only a recognisable prefix of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub agency_id: String,
    /// Absent for agency keys.
    pub workspace_id: Option<String>,
    /// The first characters of the secret, to recognise it (`sk_live_ab12…`).
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The workspace member the key acts for (`me` in the seed 004 dialect), if any.
    #[serde(default)]
    pub member_id: Option<String>,
}
