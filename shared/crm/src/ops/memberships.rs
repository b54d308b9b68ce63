//! `link_building.crm.contact.membership.*`: which of the workspace's companies a shared contact
//! belongs to, in what role, and which is the contact's primary company here (at most one).
//! `link_building.crm.marketing_list.*`: the workspace's lists of contacts for prospecting.

use super::TAG_PIPELINE;
use crate::catalogue::{Effect, Family, IdInput, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, Id};
use crate::list::ListResponse;
use crate::records::{self, obj, str_of};
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn ops() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<MsCreate>(),
        OpSpec::of::<MsList>(),
        OpSpec::of::<MsUpdate>(),
        OpSpec::of::<MsDelete>(),
        OpSpec::of::<CompanyContacts>(),
        OpSpec::of::<Forget>(),
        OpSpec::of::<ListCreate>(),
        OpSpec::of::<ListList>(),
        OpSpec::of::<ListGet>(),
        OpSpec::of::<ListAdd>(),
    ]
}

/// Memberships a contact may have in one workspace.
const MAX_MEMBERSHIPS: usize = 50;
/// Contacts (or companies) one add names at most.
const MAX_ADD: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: String,
    pub contact_id: String,
    pub company_id: String,
    pub role: Option<String>,
    pub is_primary: bool,
    pub created_at: String,
}

fn ms_view(item: &Item) -> ApiResult<Membership> {
    Ok(records::parse("membership", item)?)
}

fn ms_item(ws: &str, m: &Membership) -> Item {
    let key = keys::contact_membership(ws, &m.contact_id, &m.company_id);
    let mut item = obj(json!(m));
    for (k, v) in [
        ("PK", json!(key.pk)),
        ("SK", json!(key.sk)),
        ("entity", json!("membership")),
        ("workspaceId", json!(ws)),
        ("GSI1PK", json!(keys::company_contacts_pk(ws, &m.company_id))),
        ("GSI1SK", json!(m.contact_id)),
    ] {
        item.insert(k.into(), v);
    }
    item
}

/// A contact's memberships in the caller's workspace (the contact must exist).
pub async fn memberships_of(ctx: &Ctx, contact: &str) -> ApiResult<Vec<Membership>> {
    let page = ctx
        .app
        .store
        .query(Query::partition(keys::contact_memberships_pk(ctx.workspace(), contact)).limit(MAX_MEMBERSHIPS))
        .await?;
    page.items.iter().map(ms_view).collect()
}

use super::check_contact;

/// The updates that make `primary` the contact's only primary membership.
fn unset_other_primaries(ws: &str, all: &[Membership], primary: &str) -> Vec<TxOp> {
    all.iter()
        .filter(|m| m.is_primary && m.id != primary)
        .map(|m| {
            TxOp::update_if(
                keys::contact_membership(ws, &m.contact_id, &m.company_id),
                Update::new().set("isPrimary", false),
                Condition::Exists,
            )
        })
        .collect()
}

/// The contact's primary company as this workspace sees it, on its overlay (made if it has none).
fn primary_op(ws: &str, contact: &str, company: Option<&str>) -> TxOp {
    TxOp::update(
        keys::contact_note(ws, contact),
        Update::new().set("contactId", contact).set("inWorkspace", true).set("primaryCompanyId", json!(company)),
    )
}

fn conflict() -> ApiError {
    ApiError::conflict("conflict", "The contact's memberships changed while this request ran; read them again.")
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MsCreateInput {
    /// The contact (path).
    pub id: Id<ids::Contact>,
    pub company_id: Id<ids::Company>,
    #[schemars(length(max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub role: Option<String>,
    /// Makes it the contact's primary company here (the first membership is primary anyway).
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub is_primary: Option<bool>,
}

pub struct MsCreate;
impl Operation for MsCreate {
    const NAME: &'static str = "link_building.crm.contact.membership.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Make a contact a member of one of the workspace's companies (one membership per company)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = MsCreateInput;
    type Output = Membership;

    async fn run(ctx: Ctx, input: MsCreateInput) -> ApiResult<Reply<Membership>> {
        let ws = ctx.workspace().to_owned();
        check_contact(&ctx, &input.id).await?;
        super::companies::load(&ctx, &input.company_id).await?;
        let role = linkcrm_core::validate::header_text("role", input.role, 100)?;
        let all = memberships_of(&ctx, &input.id).await?;
        if all.len() >= MAX_MEMBERSHIPS {
            return Err(super::unprocessable(
                "companyId",
                "too_many_memberships",
                "a contact has at most 50 memberships",
            ));
        }
        if let Some(m) = all.iter().find(|m| m.company_id == *input.company_id) {
            return Err(ApiError::conflict("membership_exists", "The contact is already a member of this company.")
                .with_details(json!({ "membershipId": m.id })));
        }
        let is_primary = input.is_primary.unwrap_or(false) || !all.iter().any(|m| m.is_primary);
        let m = Membership {
            id: linkcrm_domain::new_id(IdKind::Membership),
            contact_id: input.id.to_string(),
            company_id: input.company_id.to_string(),
            role,
            is_primary,
            created_at: time::now_string(),
        };
        let mut ops = vec![TxOp::put_if(ms_item(&ws, &m), Condition::NotExists)];
        if is_primary {
            ops.extend(unset_other_primaries(&ws, &all, &m.id));
            ops.push(primary_op(&ws, &m.contact_id, Some(&m.company_id)));
        }
        let reply = Reply::created(m);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict()),
            Err(e) => Err(e.into()),
        }
    }
}

pub struct MsList;
impl Operation for MsList {
    const NAME: &'static str = "link_building.crm.contact.membership.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "A contact's company memberships in the workspace";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Contact>;
    type Output = ListResponse<Membership>;

    async fn run(ctx: Ctx, input: IdInput<ids::Contact>) -> ApiResult<Reply<ListResponse<Membership>>> {
        check_contact(&ctx, &input.id).await?;
        let data = memberships_of(&ctx, &input.id).await?;
        let total = Some(data.len() as u64);
        Ok(Reply::ok(ListResponse { data, next_cursor: None, total }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MsUpdateInput {
    pub id: Id<ids::Contact>,
    pub membership_id: Id<ids::Membership>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", length(max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub role: Option<Option<String>>,
    /// true makes it the primary one (the others stop being); false leaves the contact without one.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub is_primary: Option<bool>,
}

async fn find(ctx: &Ctx, contact: &str, id: &str) -> ApiResult<(Vec<Membership>, Membership)> {
    let all = memberships_of(ctx, contact).await?;
    let m = all
        .iter()
        .find(|m| m.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("membership_not_found", "membership", id))?;
    Ok((all, m))
}

pub struct MsUpdate;
impl Operation for MsUpdate {
    const NAME: &'static str = "link_building.crm.contact.membership.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Change a membership's role, or make it the contact's primary company";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = MsUpdateInput;
    type Output = Membership;

    async fn run(ctx: Ctx, input: MsUpdateInput) -> ApiResult<Reply<Membership>> {
        let ws = ctx.workspace().to_owned();
        let (all, mut m) = find(&ctx, &input.id, &input.membership_id).await?;
        if let Some(r) = input.role {
            m.role = linkcrm_core::validate::header_text("role", r, 100)?;
        }
        let mut ops = Vec::new();
        if let Some(p) = input.is_primary {
            if p && !m.is_primary {
                ops.extend(unset_other_primaries(&ws, &all, &m.id));
                ops.push(primary_op(&ws, &m.contact_id, Some(&m.company_id)));
            }
            if !p && m.is_primary {
                ops.push(primary_op(&ws, &m.contact_id, None));
            }
            m.is_primary = p;
        }
        ops.push(TxOp::put_if(ms_item(&ws, &m), Condition::Equals("id".into(), json!(m.id))));
        let reply = Reply::ok(m);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MsDeleteInput {
    pub id: Id<ids::Contact>,
    pub membership_id: Id<ids::Membership>,
}

pub struct MsDelete;
impl Operation for MsDelete {
    const NAME: &'static str = "link_building.crm.contact.membership.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "End a contact's membership of a company";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = MsDeleteInput;
    type Output = ();

    async fn run(ctx: Ctx, input: MsDeleteInput) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace().to_owned();
        let (_, m) = find(&ctx, &input.id, &input.membership_id).await?;
        let key = keys::contact_membership(&ws, &m.contact_id, &m.company_id);
        let reply = Reply::no_content();
        let mut ops = vec![TxOp::Delete { key, cond: Some(Condition::Equals("id".into(), json!(m.id))) }];
        if m.is_primary {
            ops.push(primary_op(&ws, &m.contact_id, None));
        }
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(ApiError::not_found("membership_not_found", "membership", &input.membership_id))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A company's contacts in the workspace (their ids, at most 1,000).
pub async fn company_contact_ids(ctx: &Ctx, company: &str) -> ApiResult<Vec<String>> {
    let page = ctx
        .app
        .store
        .query(Query::index(Index::Gsi1, keys::company_contacts_pk(ctx.workspace(), company)).limit(1000))
        .await?;
    Ok(page.items.iter().filter_map(|i| str_of(i, "contactId").map(str::to_owned)).collect())
}

pub struct CompanyContacts;
impl Operation for CompanyContacts {
    const NAME: &'static str = "link_building.crm.company.contacts";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "A company's contacts (its members), as this workspace sees them (at most 1,000)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Company>;
    type Output = ListResponse<linkcrm_domain::crm::Contact>;

    async fn run(
        ctx: Ctx,
        input: IdInput<ids::Company>,
    ) -> ApiResult<Reply<ListResponse<linkcrm_domain::crm::Contact>>> {
        super::companies::load(&ctx, &input.id).await?;
        let ids = company_contact_ids(&ctx, &input.id).await?;
        let mut data = Vec::new();
        for chunk in ids.chunks(100) {
            let keys: Vec<_> = chunk.iter().map(|c| keys::contact(c)).collect();
            let found = ctx.app.store.batch_get(&keys).await?;
            let mut part = Vec::new();
            for id in chunk {
                if let Some(c) = found.iter().find(|c| str_of(c, "id") == Some(id.as_str())) {
                    part.push(records::contact_view(c)?);
                }
            }
            data.extend(super::contacts::with_notes(&ctx.app, ctx.workspace(), part).await?);
        }
        let total = Some(data.len() as u64);
        Ok(Reply::ok(ListResponse { data, next_cursor: None, total }))
    }
}

pub struct Forget;
impl Operation for Forget {
    const NAME: &'static str = "link_building.crm.contact.forget";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    // A POST that answers nothing: say so, as the DELETE routes' 204 is.
    const SUCCESS: Option<StatusCode> = Some(StatusCode::NO_CONTENT);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Remove a shared contact from this workspace: its memberships and this workspace's fields on it, in one transaction (the shared contact stays)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Contact>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<ids::Contact>) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace().to_owned();
        check_contact(&ctx, &input.id).await?;
        let mut ops: Vec<TxOp> = memberships_of(&ctx, &input.id)
            .await?
            .iter()
            .map(|m| TxOp::delete(keys::contact_membership(&ws, &m.contact_id, &m.company_id)))
            .collect();
        ops.push(TxOp::delete(keys::contact_note(&ws, &input.id)));
        let reply = Reply::no_content();
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(conflict()),
            Err(e) => Err(e.into()),
        }
    }
}

// ---- Marketing lists -------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarketingList {
    pub id: String,
    pub name: String,
    pub member_count: i64,
    pub created_at: String,
}

fn list_view(item: &Item) -> ApiResult<MarketingList> {
    Ok(records::parse("marketing list", item)?)
}

async fn load_list(ctx: &Ctx, id: &str) -> ApiResult<MarketingList> {
    match ctx.app.store.get(&keys::marketing_list(ctx.workspace(), id)).await? {
        Some(i) => list_view(&i),
        None => Err(ApiError::not_found("marketing_list_not_found", "marketing list", id)),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListCreateInput {
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: String,
}

pub struct ListCreate;
impl Operation for ListCreate {
    const NAME: &'static str = "link_building.crm.marketing_list.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Create a marketing list of contacts";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = ListCreateInput;
    type Output = MarketingList;

    async fn run(ctx: Ctx, input: ListCreateInput) -> ApiResult<Reply<MarketingList>> {
        let ws = ctx.workspace().to_owned();
        let name = linkcrm_core::validate::header_text("name", Some(input.name), 200)?
            .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
        let l = MarketingList {
            id: linkcrm_domain::new_id(IdKind::MarketingList),
            name,
            member_count: 0,
            created_at: time::now_string(),
        };
        let key = keys::marketing_list(&ws, &l.id);
        let mut item = obj(json!(l));
        for (k, v) in [("PK", json!(key.pk)), ("SK", json!(key.sk)), ("entity", json!("marketingList"))] {
            item.insert(k.into(), v);
        }
        let reply = Reply::created(l);
        ctx.commit(vec![TxOp::put_if(item, Condition::NotExists)], &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub struct ListList;
impl Operation for ListList {
    const NAME: &'static str = "link_building.crm.marketing_list.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "The workspace's marketing lists with their member counts (at most 1,000)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = Empty;
    type Output = ListResponse<MarketingList>;

    async fn run(ctx: Ctx, _: Empty) -> ApiResult<Reply<ListResponse<MarketingList>>> {
        let page = ctx
            .app
            .store
            .query(Query::partition(keys::marketing_lists_pk(ctx.workspace())).backward().limit(1000))
            .await?;
        let data = page.items.iter().map(list_view).collect::<ApiResult<Vec<_>>>()?;
        let total = Some(data.len() as u64);
        Ok(Reply::ok(ListResponse { data, next_cursor: None, total }))
    }
}

pub struct ListGet;
impl Operation for ListGet {
    const NAME: &'static str = "link_building.crm.marketing_list.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one marketing list";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::MarketingList>;
    type Output = MarketingList;

    async fn run(ctx: Ctx, input: IdInput<ids::MarketingList>) -> ApiResult<Reply<MarketingList>> {
        Ok(Reply::ok(load_list(&ctx, &input.id).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListAddInput {
    /// The list (path).
    pub id: Id<ids::MarketingList>,
    #[schemars(length(max = 100))]
    pub contact_ids: Option<Vec<Id<ids::Contact>>>,
    /// Adds each company's contacts.
    #[schemars(length(max = 100))]
    pub company_ids: Option<Vec<Id<ids::Company>>>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    pub list_id: String,
    /// Contacts newly on the list.
    pub added: u64,
    /// Contacts that were on it already.
    pub skipped: u64,
    pub member_count: i64,
}

pub struct ListAdd;
impl Operation for ListAdd {
    const NAME: &'static str = "link_building.crm.marketing_list.add";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Add contacts, or the contacts of companies, to a marketing list (each once; at most 100 named)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = ListAddInput;
    type Output = Added;

    async fn run(ctx: Ctx, input: ListAddInput) -> ApiResult<Reply<Added>> {
        let ws = ctx.workspace().to_owned();
        load_list(&ctx, &input.id).await?;
        let mut contacts: Vec<String> = Vec::new();
        let named = input.contact_ids.as_ref().map_or(0, Vec::len) + input.company_ids.as_ref().map_or(0, Vec::len);
        if named == 0 {
            return Err(super::unprocessable("contactIds", "invalid_request", "name contactIds or companyIds"));
        }
        if named > MAX_ADD {
            return Err(ApiError::invalid_field(
                "contactIds",
                "invalid_request",
                "name at most 100 contacts and companies",
            ));
        }
        for c in input.contact_ids.unwrap_or_default() {
            check_contact(&ctx, &c).await?;
            contacts.push(c.to_string());
        }
        for co in input.company_ids.unwrap_or_default() {
            super::companies::load(&ctx, &co).await?;
            contacts.extend(company_contact_ids(&ctx, &co).await?);
        }
        contacts.sort();
        contacts.dedup();
        let (mut added, mut skipped) = (0u64, 0u64);
        // One transaction per contact: the member item (new only) and the count move together,
        // so a retried request adds nobody twice.
        for c in &contacts {
            let key = keys::marketing_list_member(&ws, &input.id, c);
            let item = obj(json!({ "PK": key.pk, "SK": key.sk, "entity": "marketingListMember", "contactId": c,
                                   "addedAt": time::now_string() }));
            let ops = vec![
                TxOp::put_if(item, Condition::NotExists),
                TxOp::update_if(
                    keys::marketing_list(&ws, &input.id),
                    Update::new().add("memberCount", 1),
                    Condition::Exists,
                ),
            ];
            match ctx.app.store.transact(ops).await {
                Ok(()) => added += 1,
                Err(StoreError::ConditionFailed { .. }) => skipped += 1,
                Err(e) => return Err(e.into()),
            }
        }
        let l = load_list(&ctx, &input.id).await?;
        Ok(Reply::ok(Added { list_id: l.id, added, skipped, member_count: l.member_count }))
    }
}
