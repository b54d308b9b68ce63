//! `link_building.crm.account.*`: the shared partner accounts, as one workspace sees them.
//!
//! Accounts are platform-wide (every agency sees the same prices, ratings and DO_NOT_CONTACT
//! flag); what is private is the workspace's own relationship with each, which these operations
//! attach as `relationshipInThisWorkspace`.

mod list;
mod read;
mod write;

pub use list::{List, ListInput};
pub use read::{AccountDetail, Get, History, HistoryInput, IdInput};
pub use write::{DoNotContact, DoNotContactInput, Patch, PatchFields, PatchInput};

use super::TAG_ACCOUNTS;
use crate::catalogue::OpSpec;
use crate::error::ApiResult;
use crate::keys;
use crate::records::{str_of, AccountRecord};
use crate::App;
use linkcrm_domain::crm::Account;
use linkcrm_domain::derive::{displayed_status, CoolingPolicy};
use linkcrm_domain::enums::PipelineStatus;
use linkcrm_storage::Key;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

pub fn ops() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<List>(),
        OpSpec::of::<Get>(),
        OpSpec::of::<Patch>(),
        OpSpec::of::<History>(),
        OpSpec::of::<DoNotContact>(),
    ]
}

/// An account in a list: the shared record plus this workspace's relationship with it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountItem {
    #[serde(flatten)]
    pub account: Account,
    /// This workspace's relationship with the account, or null when it has none. An archived
    /// relationship still counts (and is shown with `archived: true`): the workspace keeps its
    /// one relationship per account, and its history with the partner, after archiving.
    pub relationship_in_this_workspace: Option<RelationshipSummary>,
}

/// What an account list shows of the workspace's relationship (the full record is
/// `GET /v1/link-building/crm/relationship/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipSummary {
    pub id: String,
    /// As the workspace sees it: PROSPECTING, APPROVED_TO_CONTACT or QUEUED read as
    /// CONTACTED_BY_OTHER_ORG while another workspace's contact is recent.
    pub status: PipelineStatus,
    pub last_contacted_by_us_at: Option<String>,
    pub archived: bool,
}

/// This workspace's relationship with each of `accounts`, in their order, from ONE
/// BatchGetItem of the workspace–account guards. The guards carry the summary (relationship id,
/// stored status, last send) so a page of accounts never reads the relationships themselves.
pub(crate) async fn relationship_summaries(
    app: &App,
    ws: &str,
    accounts: &[AccountRecord],
    policy: CoolingPolicy,
) -> ApiResult<Vec<Option<RelationshipSummary>>> {
    if accounts.is_empty() {
        return Ok(vec![]);
    }
    let wanted: Vec<Key> = accounts.iter().map(|a| keys::workspace_account(ws, a.id())).collect();
    let found: HashMap<Key, linkcrm_storage::Item> =
        app.store.batch_get(&wanted).await?.into_iter().filter_map(|g| Some((Key::of(&g)?, g))).collect();
    Ok(accounts
        .iter()
        .zip(&wanted)
        .map(|(account, key)| {
            let guard = found.get(key)?;
            // A guard without a relationship id is a creation that never committed its
            // relationship; it is not a relationship.
            let id = str_of(guard, "relationshipId")?.to_owned();
            let stored = str_of(guard, "status").and_then(PipelineStatus::parse).unwrap_or(PipelineStatus::Prospecting);
            Some(RelationshipSummary {
                id,
                status: displayed_status(stored, account.contacted_by_other_org(ws, policy)),
                last_contacted_by_us_at: str_of(guard, "lastContactedByUsAt").map(str::to_owned),
                archived: guard.get("archived").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect())
}
