//! `GET /account/{id}` (the account with this workspace's relationship, the account's contacts
//! and this workspace's recent events) and `GET /account/{id}/history` (the account-scoped log
//! every workspace shares).

use super::{relationship_summaries, RelationshipSummary, TAG_ACCOUNTS};
use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::lenient;
use crate::list::{self, ListResponse};
use crate::records::{contact_view, event_view};
use crate::{keys, write};
use linkcrm_domain::crm::{Account, Contact, Event};
use linkcrm_domain::derive::CoolingPolicy;
use linkcrm_storage::{Index, Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Contacts shown with an account; more are listed by `GET /contact?accountId=…`.
pub const DETAIL_CONTACTS: usize = 100;
/// This workspace's most recent events shown with an account.
pub const DETAIL_EVENTS: usize = 50;

pub use crate::catalogue::IdInput;

/// One account in full, as one workspace sees it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetail {
    #[serde(flatten)]
    pub account: Account,
    /// This workspace's relationship, or null (an archived one still counts).
    pub relationship_in_this_workspace: Option<RelationshipSummary>,
    /// The people at the account (shared, like the account), oldest first, up to 100.
    pub contacts: Vec<Contact>,
    /// The 50 most recent events of THIS workspace with the account, newest first. Other
    /// workspaces' events stay private; the shared account log is `/history`.
    pub recent_events: Vec<Event>,
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.crm.account.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get an account with this workspace's relationship, its contacts and recent events";
    const TAG: &'static str = TAG_ACCOUNTS;
    type Input = IdInput<crate::ids::Account>;
    type Output = AccountDetail;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Account>) -> ApiResult<Reply<AccountDetail>> {
        let ws = ctx.workspace();
        let policy = CoolingPolicy::from_env();
        let record = write::load_account(&ctx.app, &input.id).await?;
        let id = record.id().to_owned();
        let store = &ctx.app.store;
        let contacts = store.query(Query::index(Index::Gsi1, keys::account_contacts_pk(&id)).limit(DETAIL_CONTACTS));
        let events = store
            .query(Query::index(Index::Gsi1, keys::relationship_events_pk(ws, &id)).backward().limit(DETAIL_EVENTS));
        let relationship = relationship_summaries(&ctx.app, ws, std::slice::from_ref(&record), policy);
        let (contacts, events, mut relationship) = futures::try_join!(
            async { contacts.await.map_err(Into::into) },
            async { events.await.map_err(Into::into) },
            relationship
        )?;
        let contacts = contacts.items.iter().map(contact_view).collect::<crate::error::DataResult<Vec<_>>>()?;
        let contacts = crate::ops::contacts::with_notes(&ctx.app, ws, contacts).await?;
        let detail = AccountDetail {
            account: record.view(policy)?,
            relationship_in_this_workspace: relationship.pop().flatten(),
            contacts,
            recent_events: events.items.iter().map(event_view).collect::<crate::error::DataResult<_>>()?,
        };
        Ok(Reply::ok(detail).with_version(record.version()))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryInput {
    pub id: crate::ids::Id<crate::ids::Account>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct History;
impl Operation for History {
    const NAME: &'static str = "link_building.crm.account.history";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "The account's shared log, newest first: PRICE_UPDATED, DO_NOT_CONTACT_SET, METRICS_REFRESHED (every workspace sees it)";
    const TAG: &'static str = TAG_ACCOUNTS;
    type Input = HistoryInput;
    type Output = ListResponse<Event>;

    async fn run(ctx: Ctx, input: HistoryInput) -> ApiResult<Reply<ListResponse<Event>>> {
        let limit = list::limit(input.limit)?;
        let record = write::load_account(&ctx.app, &input.id).await?;
        let scope = format!("{}#{}#{}", History::NAME, ctx.workspace(), record.id());
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let q = Query::index(Index::Gsi1, keys::account_history_pk(record.id())).backward().limit(limit).after(cursor);
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(event_view).collect::<crate::error::DataResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}
