//! `link_building.crm.company.*`: a workspace's companies (seed 004), its own view of partners.
//! A company with a domain is linked to the shared account of that domain (one company per
//! account in a workspace), and its opportunities to the workspace's relationship with it; a
//! company without one stays private to the workspace until a domain is set. Its fields
//! (name, relationship type, lifecycle, owner) are the workspace's own.

use super::TAG_PIPELINE;
use crate::catalogue::{Effect, Family, IdInput, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, Id};
use crate::list::{self, ListResponse};
use crate::pipeline::{OppRecord, OPP_COUNT};
use crate::records::{self, obj, str_of};
use crate::write;
use crate::{keys, lenient};
use linkcrm_domain::enums::Source;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Cursor, Index, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Create>(), OpSpec::of::<List>(), OpSpec::of::<Get>(), OpSpec::of::<Update_>()]
}

const NAME_MAX: usize = 200;
/// An owner or assignee filter: a member id, `me` or `unassigned`.
pub(crate) const OWNER: &str = r"^(me|unassigned|mem_[0-7][0-9A-HJKMNP-TV-Z]{25})$";
/// Opportunities a company's new domain links in one request; more is refused (not built yet).
const LINK_MAX: usize = 90;
/// Pages a filtered list reads at most to fill one page.
const LIST_PAGES: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RelationshipType {
    Prospect,
    Customer,
    Vendor,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Active,
    Inactive,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    pub id: String,
    pub name: String,
    /// The partner's site; null for a company private to the workspace.
    pub domain: Option<String>,
    /// The shared account of the domain.
    pub account_id: Option<String>,
    pub relationship_type: RelationshipType,
    pub lifecycle: Lifecycle,
    pub owner_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub fn view(item: &Item) -> ApiResult<Company> {
    Ok(records::parse("company", item)?)
}

fn company_item(ws: &str, c: &Company) -> Item {
    let key = keys::company(ws, &c.id);
    let mut item = obj(json!(c));
    for (k, v) in [
        ("PK", json!(key.pk)),
        ("SK", json!(key.sk)),
        ("entity", json!("company")),
        ("workspaceId", json!(ws)),
        ("nameLower", json!(c.name.to_lowercase())),
    ] {
        item.insert(k.into(), v);
    }
    item
}

/// Company `id` of the caller's workspace, or 404.
pub async fn load(ctx: &Ctx, id: &str) -> ApiResult<Company> {
    match ctx.app.store.get(&keys::company(ctx.workspace(), id)).await? {
        Some(item) => view(&item),
        None => Err(ApiError::not_found("company_not_found", "company", id)),
    }
}

/// Member `id` of the caller's workspace (an owner or assignee), or 404 `member_not_found`.
pub(crate) async fn check_member(ctx: &Ctx, id: &str) -> ApiResult<()> {
    match ctx.app.store.get(&linkcrm_core::keys::member(ctx.workspace(), id)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("member_not_found", "member", id)),
    }
}

/// An owner filter (in query parameter `field`): a member id, `me` (the calling key's member) or
/// `unassigned`.
pub(crate) fn owner_filter(ctx: &Ctx, field: &str, raw: Option<&str>) -> ApiResult<Option<Option<String>>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some("unassigned") => Ok(Some(None)),
        // A key that acts for no member owns nothing: `me` matches no record.
        Some("me") => Ok(Some(Some(ctx.caller.member_id.clone().unwrap_or_default()))),
        Some(id) if linkcrm_domain::id::is_id(IdKind::Member, id) => Ok(Some(Some(id.to_owned()))),
        Some(_) => Err(ApiError::invalid_field(field, "invalid_request", "a member id, me, or unassigned")),
    }
}

fn conflict_exists(id: &str) -> ApiError {
    ApiError::conflict("company_exists", format!("The workspace already has a company for this domain: {id}."))
        .with_details(json!({ "companyId": id }))
}

/// The account of `domain`, and the guard op claiming it for company `id` (or the company that
/// already has it).
async fn claim_domain(ctx: &Ctx, id: &str, raw: &str) -> ApiResult<(String, String, TxOp)> {
    let domain = write::normalize("domain", raw)?;
    let account = write::ensure_account(&ctx.app, &domain, Source::Manual).await?;
    let guard = keys::company_account(ctx.workspace(), account.id());
    if let Some(existing) = ctx.app.store.get(&guard).await? {
        return Err(conflict_exists(str_of(&existing, "companyId").unwrap_or_default()));
    }
    let item = obj(json!({ "PK": guard.pk, "SK": guard.sk, "entity": "companyAccount", "companyId": id }));
    Ok((domain, account.id().to_owned(), TxOp::put_if(item, Condition::NotExists)))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: String,
    /// The partner's site: links the company to the shared account of that domain.
    #[schemars(length(max = 253), pattern(linkcrm_core::rules::DOMAIN))]
    pub domain: Option<String>,
    /// prospect (default), customer, vendor or both.
    pub relationship_type: Option<RelationshipType>,
    /// active (default) or inactive.
    pub lifecycle: Option<Lifecycle>,
    pub owner_id: Option<Id<ids::Member>>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.crm.company.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Create a company: with a domain it is the workspace's view of that partner's shared account; without one it is private";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = CreateInput;
    type Output = Company;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Company>> {
        let ws = ctx.workspace().to_owned();
        let name = linkcrm_core::validate::header_text("name", Some(input.name), NAME_MAX)?
            .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
        if let Some(o) = &input.owner_id {
            check_member(&ctx, o).await?;
        }
        let id = linkcrm_domain::new_id(IdKind::Company);
        let mut ops = Vec::new();
        let (domain, account_id) = match &input.domain {
            Some(d) => {
                let (domain, acct, guard) = claim_domain(&ctx, &id, d).await?;
                ops.push(guard);
                (Some(domain), Some(acct))
            }
            None => (None, None),
        };
        let now = time::now_string();
        let c = Company {
            id,
            name,
            domain,
            account_id,
            relationship_type: input.relationship_type.unwrap_or(RelationshipType::Prospect),
            lifecycle: input.lifecycle.unwrap_or(Lifecycle::Active),
            owner_id: input.owner_id.map(|o| o.to_string()),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        ops.push(TxOp::put_if(company_item(&ws, &c), Condition::NotExists));
        let reply = Reply::created(c.clone()).with_version(1);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Err(ApiError::conflict(
                "company_exists",
                "Another company took this domain meanwhile; read them again.",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub relationship_type: Option<RelationshipType>,
    pub lifecycle: Option<Lifecycle>,
    /// A member id, `me` (the calling key's member) or `unassigned`.
    #[schemars(length(max = 40), pattern(OWNER))]
    pub owner: Option<String>,
    /// Companies whose name contains this, ignoring case.
    #[schemars(length(min = 1, max = 200))]
    pub search: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.company.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "List the workspace's companies, newest first, by relationship type, lifecycle, owner or a name search";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = ListInput;
    type Output = ListResponse<Company>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Company>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let owner = owner_filter(&ctx, "owner", input.owner.as_deref())?;
        let search = input.search.as_deref().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
        let scope = format!(
            "{}#{ws}#{:?}#{:?}#{:?}#{}",
            Self::NAME,
            input.relationship_type,
            input.lifecycle,
            owner,
            search.as_deref().unwrap_or("")
        );
        let mut cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let keep = |c: &Company| {
            input.relationship_type.is_none_or(|t| t == c.relationship_type)
                && input.lifecycle.is_none_or(|l| l == c.lifecycle)
                && owner.as_ref().is_none_or(|o| *o == c.owner_id)
                && search.as_ref().is_none_or(|s| c.name.to_lowercase().contains(s.as_str()))
        };
        // Filters are read-time: read pages until one is full (the cursor then points at the last
        // company given) or the partition ends; a page may come back short after LIST_PAGES reads.
        let mut data = Vec::new();
        let mut next: Option<Cursor> = None;
        'pages: for _ in 0..LIST_PAGES {
            let page = ctx
                .app
                .store
                .query(Query::partition(keys::companies_pk(&ws)).backward().limit(limit).after(cursor.take()))
                .await?;
            for item in &page.items {
                let c = view(item)?;
                if keep(&c) {
                    data.push(c);
                    if data.len() == limit {
                        next = Cursor::for_item(Index::Primary, item);
                        break 'pages;
                    }
                }
            }
            next = page.cursor.clone();
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, next), total: None }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.crm.company.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one company";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Company>;
    type Output = Company;

    async fn run(ctx: Ctx, input: IdInput<ids::Company>) -> ApiResult<Reply<Company>> {
        let c = load(&ctx, &input.id).await?;
        let v = c.version;
        Ok(Reply::ok(c).with_version(v))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: Id<ids::Company>,
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: Option<String>,
    /// Sets the partner's site of a company that has none: links it, and its opportunities, to
    /// the partner. A domain once set does not change.
    #[schemars(length(max = 253), pattern(linkcrm_core::rules::DOMAIN))]
    pub domain: Option<String>,
    pub relationship_type: Option<RelationshipType>,
    pub lifecycle: Option<Lifecycle>,
    /// `null` unassigns it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<Id<ids::Member>>")]
    pub owner_id: Option<Option<Id<ids::Member>>>,
}

pub struct Update_;
impl Operation for Update_ {
    const NAME: &'static str = "link_building.crm.company.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Change a company; setting the domain of a private one links it and its opportunities to that partner; honours If-Match";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = UpdateInput;
    type Output = Company;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Company>> {
        let ws = ctx.workspace().to_owned();
        let mut c = load(&ctx, &input.id).await?;
        let read = c.version;
        if ctx.if_match.is_some_and(|v| v != read) {
            return Err(ApiError::precondition_failed(read));
        }
        if let Some(n) = input.name {
            c.name = linkcrm_core::validate::header_text("name", Some(n), NAME_MAX)?
                .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
        }
        if let Some(t) = input.relationship_type {
            c.relationship_type = t;
        }
        if let Some(l) = input.lifecycle {
            c.lifecycle = l;
        }
        if let Some(o) = input.owner_id {
            if let Some(o) = &o {
                check_member(&ctx, o).await?;
            }
            c.owner_id = o.map(|o| o.to_string());
        }
        let mut ops = Vec::new();
        if let Some(d) = &input.domain {
            match &c.domain {
                Some(current) if write::normalize("domain", d)? == *current => {}
                Some(_) => {
                    return Err(super::unprocessable(
                        "domain",
                        "company_domain_set",
                        "a company's domain does not change once set",
                    ));
                }
                None => {
                    let (domain, acct, guard) = claim_domain(&ctx, &c.id, d).await?;
                    ops.push(guard);
                    ops.extend(link_opportunities(&ctx, &c.id, &domain).await?);
                    c.domain = Some(domain);
                    c.account_id = Some(acct);
                }
            }
        }
        c.updated_at = time::now_string();
        c.version = read + 1;
        ops.push(TxOp::put_if(company_item(&ws, &c), Condition::VersionEquals(read)));
        let reply = Reply::ok(c.clone()).with_version(c.version);
        match ctx.commit(ops, &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                Err(ApiError::conflict("conflict", "The company changed while this request ran; read it again."))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The changes that link a company's unlinked opportunities to the workspace's relationship with
/// its new domain (made if needed): each opportunity's link, and the relationship's count.
async fn link_opportunities(ctx: &Ctx, company: &str, domain: &str) -> ApiResult<Vec<TxOp>> {
    let ws = ctx.workspace();
    let page = ctx
        .app
        .store
        .query(Query::index(Index::Gsi3, keys::company_opportunities_pk(ws, company)).limit(LINK_MAX + 1))
        .await?;
    let opps: Vec<OppRecord> =
        page.items.into_iter().map(OppRecord).filter(|o| o.relationship_id().is_none()).collect();
    if opps.is_empty() {
        return Ok(Vec::new());
    }
    if opps.len() > LINK_MAX || page.cursor.is_some() {
        return Err(super::unprocessable(
            "domain",
            "too_many_opportunities",
            format!("linking more than {LINK_MAX} opportunities at once is not built yet"),
        ));
    }
    let (rel, _) = write::ensure_relationship(&ctx.app, ws, domain, Source::Manual, None).await?;
    let mut ops: Vec<TxOp> = opps
        .iter()
        .map(|o| {
            TxOp::update_if(
                keys::opportunity(ws, o.id()),
                Update::new()
                    .set("relationshipId", rel.id())
                    .set("accountId", rel.account_id())
                    .set("GSI1PK", keys::relationship_opportunities_pk(ws, rel.id()))
                    .set("GSI1SK", o.id())
                    .add("version", 1),
                Condition::AttrAbsent("GSI1PK".into()),
            )
        })
        .collect();
    ops.push(TxOp::update_if(
        keys::relationship(rel.id()),
        Update::new().add(OPP_COUNT, opps.len() as i64),
        Condition::Exists,
    ));
    Ok(ops)
}

/// The company of an opportunity being created: checked, and (when it has a domain) the
/// workspace's relationship with it, made if needed.
pub(crate) async fn company_link(
    ctx: &Ctx,
    id: &str,
) -> ApiResult<(Company, Option<crate::records::RelationshipRecord>)> {
    let c = load(ctx, id).await?;
    let rel = match &c.domain {
        Some(d) => Some(write::ensure_relationship(&ctx.app, ctx.workspace(), d, Source::Manual, None).await?.0),
        None => None,
    };
    Ok((c, rel))
}
