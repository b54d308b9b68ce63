//! The link-building CRM entities with every field seed 002 shows, in its camelCase spelling.

use crate::enums::{EventType, PipelineStatus, Priority, Source, SystemContactStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A partner domain, shared by every workspace on the platform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub domain: String,
    pub name: Option<String>,
    pub source: Option<Source>,
    pub source_details: Option<Value>,
    pub raw_notes: Option<String>,
    pub best_contact_id: Option<String>,
    pub is_active: bool,
    pub last_contacted_at: Option<String>,
    pub system_contact_status: Option<SystemContactStatus>,
    pub first_contacted_at: Option<String>,
    pub first_contacted_by_org_id: Option<String>,
    pub last_contacted_by_org_id: Option<String>,
    pub cooling_off_until: Option<String>,
    pub contact_attempt_count: i64,
    pub price_link_insertion: Option<i64>,
    pub price_guest_post: Option<i64>,
    pub price_context: Option<String>,
    pub prices_updated_at: Option<String>,
    pub domain_rating: Option<i64>,
    pub organic_traffic: Option<i64>,
    pub organic_keywords: Option<i64>,
    pub referring_domains: Option<i64>,
    pub backlinks: Option<i64>,
    pub ahref_stats_updated_at: Option<String>,
    /// Why the account was marked DO_NOT_CONTACT, and when (shown to every workspace, like the
    /// flag itself).
    #[serde(default)]
    pub do_not_contact_reason: Option<String>,
    #[serde(default)]
    pub do_not_contact_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A person at an account. Contacts are shared like their accounts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    pub account_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub position: Option<String>,
    pub seniority: Option<String>,
    pub linkedin_url: Option<String>,
    pub twitter_handle: Option<String>,
    pub notes: Option<String>,
    /// This workspace's own: the contact's phone (never on the shared record); present once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// This workspace's own: the member who owns the contact here; present once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// This workspace's own: the company of the contact's primary membership; present once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_company_id: Option<String>,
    pub apollo_person_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One workspace's private pipeline with one account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub id: String,
    pub organization_id: String,
    pub account_id: String,
    pub account_domain: String,
    pub source: Source,
    pub source_details: Option<Value>,
    pub raw_notes: Option<String>,
    pub target_blog_post: Option<String>,
    pub our_content: Option<String>,
    pub status: PipelineStatus,
    pub priority: Option<Priority>,
    pub contacted_by_us: bool,
    pub first_contacted_by_us_at: Option<String>,
    pub last_contacted_by_us_at: Option<String>,
    pub contacted_by_other_org: bool,
    pub first_contacted_at: Option<String>,
    pub last_event_at: String,
    pub archived: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The worst state of the relationship's monitored placed links (`pending`, `live`,
    /// `at_risk`, `lost`), from their events; present once a LINK_PLACED named a `linkUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_status: Option<String>,
}

/// One interaction: the ground truth every derived status is folded from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    /// The workspace the event belongs to; absent for account-scoped events.
    pub organization_id: Option<String>,
    pub relationship_id: Option<String>,
    pub account_id: String,
    pub contact_id: Option<String>,
    pub r#type: EventType,
    pub subject: Option<String>,
    pub content: Option<String>,
    pub metadata: Option<Value>,
    pub occurred_at: String,
    pub created_at: String,
}
