//! `link_building.crm.contact.*` operations.
//!
//! Contacts are shared platform-wide like their accounts, but every call acts in a workspace: the
//! caller's workspace decides whose event references may block a delete, and binds list cursors.
//!
//! One contact per email: an `EMAIL#<email>` guard item is written, moved and removed in the same
//! transaction as the contact itself, so two concurrent creators (or a create racing a PATCH that
//! takes the same email) cannot both win.

use super::{text, TAG_CONTACTS};
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::list::{self, ListResponse};
use crate::listing::merged_page;
use crate::records;
use crate::write::{self, check_id, CONTACT_REF, CONTACT_REF_SEQ as REF_SEQ};
use crate::{lenient, outbox, App};
use linkcrm_domain::crm::Contact;
use linkcrm_domain::enums::Source;
use linkcrm_domain::normalize::normalize_email;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn ops() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<List>(),
        OpSpec::of::<Get>(),
        OpSpec::of::<Create>(),
        OpSpec::of::<Patch>(),
        OpSpec::of::<Delete>(),
    ]
}

/// Names, positions, handles: one line each.
const MAX_NAME: usize = 200;
const MAX_NOTES: usize = 10_000;
const MAX_URL: usize = 2_000;

/// How often a create or delete retries after losing a race it can safely redo.
const ATTEMPTS: usize = 5;

// ---------------------------------------------------------------------------------------------
// Field checks shared by create and patch.

/// A single-line field: trimmed, empty reads as absent, at most `max` characters.
fn line(field: &str, raw: Option<String>, max: usize) -> ApiResult<Option<String>> {
    text(field, raw.map(|s| s.trim().to_owned()), max)
}

fn email(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => normalize_email(&s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field("email", "invalid_email", format!("'{s}' is not an email address"))),
    }
}

fn linkedin(raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(url) = line("linkedinUrl", raw, MAX_URL)? else { return Ok(None) };
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    // Something after the scheme that could be a host, and no spaces (it is shown as a link).
    let host_ok = rest.is_some_and(|r| r.split(['/', '?', '#']).next().is_some_and(|h| h.contains('.')));
    if !host_ok || url.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_field("linkedinUrl", "invalid_request", "must be an http(s) URL"));
    }
    Ok(Some(url))
}

/// The writable fields of a new contact, checked (PATCH checks each sent field with the same
/// functions).
struct Fields {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    position: Option<String>,
    seniority: Option<String>,
    linkedin_url: Option<String>,
    twitter_handle: Option<String>,
    notes: Option<String>,
    apollo_person_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Records.

use crate::records::{contact_item, email_guard_item};

fn version_of(item: &Item) -> i64 {
    records::int_of(item, "version").unwrap_or(1)
}

/// Workspaces whose events reference the contact (`refBy#<ws>` attributes).
fn referencing_workspaces(item: &Item) -> Vec<&str> {
    item.iter().filter(|(_, v)| v.as_bool() == Some(true)).filter_map(|(k, _)| k.strip_prefix(CONTACT_REF)).collect()
}

async fn load(app: &App, id: &str) -> ApiResult<Item> {
    check_id(IdKind::Contact, "id", id)?;
    app.store.get(&keys::contact(id)).await?.ok_or_else(|| ApiError::not_found("contact_not_found", "contact", id))
}

/// A workspace's own fields on a shared contact.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Overlay {
    notes: Option<String>,
    phone: Option<String>,
    owner_id: Option<String>,
    /// Kept by the membership operations.
    primary_company_id: Option<String>,
}

impl Overlay {
    fn of(item: Option<&Item>) -> Overlay {
        let s = |k: &str| item.and_then(|i| records::str_of(i, k)).map(str::to_owned);
        Overlay {
            notes: s("notes"),
            phone: s("phone"),
            owner_id: s("ownerId"),
            primary_company_id: s("primaryCompanyId"),
        }
    }
    fn onto(self, c: Contact) -> Contact {
        Contact {
            notes: self.notes,
            phone: self.phone,
            owner_id: self.owner_id,
            primary_company_id: self.primary_company_id,
            ..c
        }
    }
    fn item(&self, ws: &str, contact: &str) -> Item {
        records::contact_overlay_item(
            ws,
            contact,
            self.notes.as_deref(),
            self.phone.as_deref(),
            self.owner_id.as_deref(),
            self.primary_company_id.as_deref(),
        )
    }
}

/// The contact and workspace `ws`'s own fields on it, in one batch read.
async fn load_with_notes(app: &App, ws: &str, id: &str) -> ApiResult<(Item, Overlay)> {
    check_id(IdKind::Contact, "id", id)?;
    let (contact_key, note_key) = (keys::contact(id), keys::contact_note(ws, id));
    let found = app.store.batch_get(&[contact_key.clone(), note_key.clone()]).await?;
    let of = |k: &linkcrm_storage::Key| found.iter().find(|i| linkcrm_storage::Key::of(i).as_ref() == Some(k));
    let item = of(&contact_key).cloned().ok_or_else(|| ApiError::not_found("contact_not_found", "contact", id))?;
    Ok((item, Overlay::of(of(&note_key))))
}

/// Contacts as workspace `ws` sees them: the shared record with its own notes (one batch read).
pub(crate) async fn with_notes(app: &App, ws: &str, mut contacts: Vec<Contact>) -> ApiResult<Vec<Contact>> {
    if contacts.is_empty() {
        return Ok(contacts);
    }
    let wanted: Vec<_> = contacts.iter().map(|c| keys::contact_note(ws, &c.id)).collect();
    let found = app.store.batch_get(&wanted).await?;
    let overlays: std::collections::HashMap<&str, &Item> =
        found.iter().filter_map(|n| Some((records::str_of(n, "contactId")?, n))).collect();
    let contacts = contacts
        .drain(..)
        .map(|c| {
            let o = Overlay::of(overlays.get(c.id.as_str()).copied());
            o.onto(c)
        })
        .collect();
    Ok(contacts)
}

/// The identity of a shared contact: what another workspace's sends and history rely on. Only
/// changed while no other workspace references the contact.
const IDENTITY_FIELDS: [&str; 6] = ["email", "firstName", "lastName", "position", "linkedinUrl", "twitterHandle"];

fn in_use(others: usize, what: &str) -> ApiError {
    // Only a count is told; which workspaces they are is theirs to know.
    ApiError::conflict(
        "contact_in_use",
        format!("Events or sends of {others} other workspace(s) reference this contact; its {what}."),
    )
    .with_details(json!({ "workspaces": others }))
}

/// The condition that no workspace started referencing the contact since `item` was read.
fn no_new_references(item: &Item) -> Condition {
    match item.get(REF_SEQ) {
        Some(v) => Condition::Equals(REF_SEQ.into(), v.clone()),
        None => Condition::AttrAbsent(REF_SEQ.into()),
    }
}

/// The contact that holds an email, if any.
async fn holder_of(app: &App, email: &str) -> ApiResult<Option<String>> {
    let guard = app.store.get(&keys::email_guard(email)).await?;
    Ok(guard.as_ref().and_then(|g| records::str_of(g, "contactId")).map(str::to_owned))
}

fn contact_exists(email: &str, holder: &str) -> ApiError {
    ApiError::conflict("contact_exists", format!("A contact with the email '{email}' already exists."))
        .with_details(json!({ "contactId": holder }))
}

fn race_lost() -> ApiError {
    ApiError::conflict("conflict", "The contact changed while this request ran; read it again and retry.")
}

// ---------------------------------------------------------------------------------------------
// Create.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["accountId"], "properties": { "accountId": { "type": "string" } } }, { "required": ["domain"], "properties": { "domain": { "type": "string" } } }]))]
pub struct CreateInput {
    /// The contact's account. Send this or `domain`, not both.
    pub account_id: Option<crate::ids::Id<crate::ids::Account>>,
    /// The account's domain (a URL is fine); the account is created if nobody has it yet. Send this
    /// or `accountId`, not both.
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub domain: Option<String>,
    /// At most 200 characters.
    #[schemars(length(max = 200))]
    pub first_name: Option<String>,
    /// At most 200 characters.
    #[schemars(length(max = 200))]
    pub last_name: Option<String>,
    /// Unique platform-wide: a second contact with the same email is refused with 409.
    #[schemars(pattern(crate::rules::EMAIL))]
    pub email: Option<String>,
    /// At most 200 characters, e.g. "Senior Editor".
    #[schemars(length(max = 200))]
    pub position: Option<String>,
    /// At most 200 characters, e.g. "manager".
    #[schemars(length(max = 200))]
    pub seniority: Option<String>,
    /// An http(s) URL, at most 2,000 characters.
    #[schemars(pattern(crate::rules::HTTP_URL))]
    pub linkedin_url: Option<String>,
    /// At most 200 characters, e.g. "@marolafsson".
    #[schemars(length(max = 200))]
    pub twitter_handle: Option<String>,
    /// At most 10,000 characters.
    #[schemars(length(max = 10000))]
    pub notes: Option<String>,
    /// This workspace's own: a phone number (at most 40 characters).
    #[schemars(length(max = 40))]
    pub phone: Option<String>,
    /// This workspace's own: the member who owns the contact here.
    pub owner_id: Option<crate::ids::Id<crate::ids::Member>>,
    /// At most 200 characters.
    #[schemars(length(max = 200))]
    pub apollo_person_id: Option<String>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.crm.contact.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Create a contact at an account (by id) or a domain (created if new)";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = CreateInput;
    type Output = Contact;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Contact>> {
        // Check everything before the account is resolved: resolving a domain may create an
        // account, which should not happen for a request that is refused anyway.
        let fields = Fields {
            first_name: line("firstName", input.first_name, MAX_NAME)?,
            last_name: line("lastName", input.last_name, MAX_NAME)?,
            email: email(input.email)?,
            position: line("position", input.position, MAX_NAME)?,
            seniority: line("seniority", input.seniority, MAX_NAME)?,
            linkedin_url: linkedin(input.linkedin_url)?,
            twitter_handle: line("twitterHandle", input.twitter_handle, MAX_NAME)?,
            notes: text("notes", input.notes, MAX_NOTES)?,
            apollo_person_id: line("apolloPersonId", input.apollo_person_id, MAX_NAME)?,
        };
        let phone = line("phone", input.phone, 40)?;
        let owner_id = match &input.owner_id {
            Some(o) => {
                super::companies::check_member(&ctx, o).await?;
                Some(o.to_string())
            }
            None => None,
        };
        enum Target {
            Id(String),
            Domain(String),
        }
        let target = match (input.account_id, input.domain) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_field("domain", "invalid_request", "send accountId or domain, not both"))
            }
            (None, None) => {
                return Err(ApiError::invalid_field("accountId", "invalid_request", "is required (or send domain)"))
            }
            (Some(id), None) => Target::Id(id.into_string()),
            (None, Some(d)) => Target::Domain(write::normalize("domain", &d)?),
        };
        // A taken email is the common refusal; answering it before resolving the account keeps a
        // refused request from creating an account. The guard in the transaction still decides.
        if let Some(e) = &fields.email {
            if let Some(holder) = holder_of(&ctx.app, e).await? {
                return Err(contact_exists(e, &holder));
            }
        }
        let account = match target {
            Target::Id(id) => write::load_account(&ctx.app, &id).await?,
            Target::Domain(d) => write::ensure_account(&ctx.app, &d, Source::Manual).await?,
        };

        let now = time::now_string();
        let contact = Contact {
            id: linkcrm_domain::new_id(IdKind::Contact),
            account_id: account.id().to_owned(),
            first_name: fields.first_name,
            last_name: fields.last_name,
            email: fields.email,
            position: fields.position,
            seniority: fields.seniority,
            linkedin_url: fields.linkedin_url,
            twitter_handle: fields.twitter_handle,
            notes: fields.notes,
            apollo_person_id: fields.apollo_person_id,
            phone: None,
            owner_id: None,
            primary_company_id: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let ws = ctx.workspace();
        let overlay = Overlay { notes: contact.notes.clone(), phone, owner_id, primary_company_id: None };
        let contact = overlay.clone().onto(contact);
        for _ in 0..ATTEMPTS {
            let mut ops = vec![TxOp::put_if(contact_item(&contact, 1), Condition::NotExists)];
            // The overlay also records that this workspace has the contact (`inWorkspace` lists).
            ops.push(TxOp::put(overlay.item(ws, &contact.id)));
            if let Some(e) = &contact.email {
                ops.push(TxOp::put_if(email_guard_item(e, &contact.id, &contact.account_id), Condition::NotExists));
            }
            ops.push(outbox::event("link_building.contact.created", Some(ws), json!(contact)));
            let reply = Reply::created(contact.clone()).with_version(1);
            match ctx.commit(ops, &reply).await {
                Ok(()) => return Ok(reply),
                // The contact id is new, so a failed condition is the email guard: someone took
                // the email since the check above. Name the winner; if the guard is gone again
                // (its contact was deleted meanwhile), try once more.
                Err(StoreError::ConditionFailed { .. }) => {
                    let e = contact.email.as_deref().ok_or_else(ApiError::internal)?;
                    if let Some(holder) = holder_of(&ctx.app, e).await? {
                        return Err(contact_exists(e, &holder));
                    }
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(race_lost())
    }
}

// ---------------------------------------------------------------------------------------------
// Get.

pub use crate::catalogue::IdInput;

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.crm.contact.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one contact";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = IdInput<crate::ids::Contact>;
    type Output = Contact;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Contact>) -> ApiResult<Reply<Contact>> {
        let (item, overlay) = load_with_notes(&ctx.app, ctx.workspace(), &input.id).await?;
        let contact = overlay.onto(records::contact_view(&item)?);
        Ok(Reply::ok(contact).with_version(version_of(&item)))
    }
}

// ---------------------------------------------------------------------------------------------
// List.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Only this account's contacts.
    pub account_id: Option<crate::ids::Id<crate::ids::Account>>,
    /// The contact with this email (at most one: emails are unique).
    #[schemars(pattern(crate::rules::EMAIL))]
    pub email: Option<String>,
    /// Only the contacts this workspace has: created or annotated here (newest first).
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub in_workspace: Option<bool>,
    /// 1 to 200; 50 when absent.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.contact.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List contacts, newest first: all, one account's, or the one with an email";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = ListInput;
    type Output = ListResponse<Contact>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Contact>>> {
        let limit = list::limit(input.limit)?;
        let ws = ctx.workspace();

        if let Some(raw) = input.email {
            let e = email(Some(raw))?
                .ok_or_else(|| ApiError::invalid_field("email", "invalid_email", "must not be empty"))?;
            // A lookup answers in one page, so no cursor was ever handed out for it.
            if input.cursor.is_some() {
                return Err(ApiError::invalid_field("cursor", "invalid_cursor", "is not a cursor this list returned"));
            }
            let mut data = Vec::new();
            if let Some(id) = holder_of(&ctx.app, &e).await? {
                // The guard's contact may be deleted meanwhile: then there is nothing to list.
                match load_with_notes(&ctx.app, ws, &id).await {
                    Ok((item, overlay)) => {
                        let c = overlay.onto(records::contact_view(&item)?);
                        if input.account_id.as_ref().is_none_or(|a| *a == c.account_id) {
                            data.push(c);
                        }
                    }
                    Err(e) if e.code == "contact_not_found" => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(Reply::ok(ListResponse { data, next_cursor: None, total: None }));
        }

        if input.in_workspace == Some(true) {
            if input.account_id.is_some() {
                return Err(ApiError::invalid_field("inWorkspace", "invalid_request", "takes no accountId"));
            }
            // The workspace's overlays, newest contact first, then the contacts in one batch.
            let scope = format!("{}#{ws}#in", List::NAME);
            let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
            let q = Query::partition(keys::contact_note(ws, "").pk).backward().limit(limit).after(cursor);
            let page = ctx.app.store.query(q).await?;
            let ids: Vec<_> =
                page.items.iter().filter_map(|i| records::str_of(i, "contactId")).map(keys::contact).collect();
            let found = if ids.is_empty() { Vec::new() } else { ctx.app.store.batch_get(&ids).await? };
            let mut data = Vec::new();
            for o in &page.items {
                let id = records::str_of(o, "contactId").unwrap_or_default();
                if let Some(c) = found.iter().find(|c| records::str_of(c, "id") == Some(id)) {
                    data.push(Overlay::of(Some(o)).onto(records::contact_view(c)?));
                }
            }
            let next_cursor = ctx.app.seal_cursor(&scope, page.cursor);
            return Ok(Reply::ok(ListResponse { data, next_cursor, total: None }));
        }
        if let Some(acct) = &input.account_id {
            // One Query: the index projects every attribute, so no follow-up reads.
            let scope = format!("{}#{ws}#acct#{acct}", List::NAME);
            let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
            let q = Query::index(Index::Gsi1, keys::account_contacts_pk(acct)).backward().limit(limit).after(cursor);
            let page = ctx.app.store.query(q).await?;
            let data = page.items.iter().map(records::contact_view).collect::<crate::error::DataResult<Vec<_>>>()?;
            let data = with_notes(&ctx.app, ws, data).await?;
            let next_cursor = ctx.app.seal_cursor(&scope, page.cursor);
            return Ok(Reply::ok(ListResponse { data, next_cursor, total: None }));
        }

        // Every contact: ids sort by creation, so each shard read backwards is newest first, and
        // merging the shards keeps that order.
        let scope = format!("{}#{ws}#all", List::NAME);
        let queries = (0..keys::CONTACT_SHARDS)
            .map(|s| Query::index(Index::Gsi2, keys::contacts_pk(s)).backward())
            .collect::<Vec<_>>();
        let page = merged_page(&ctx.app, &scope, queries, limit, input.cursor.as_deref()).await?;
        let data = page.items.iter().map(records::contact_view).collect::<crate::error::DataResult<Vec<_>>>()?;
        let data = with_notes(&ctx.app, ws, data).await?;
        Ok(Reply::ok(ListResponse { data, next_cursor: page.next, total: None }))
    }
}

// ---------------------------------------------------------------------------------------------
// Patch.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: crate::ids::Id<crate::ids::Contact>,
    /// Contacts do not move between accounts: only the current account id is accepted.
    #[serde(default)]
    #[schemars(skip)]
    pub account_id: Option<Value>,
    /// Not accepted: contacts do not move between accounts.
    #[serde(default)]
    #[schemars(skip)]
    pub domain: Option<Value>,
    /// Null clears it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 200))]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 200))]
    pub last_name: Option<Option<String>>,
    /// Moves the contact to this email (409 `contact_exists` if another contact has it), freeing
    /// the old one. Null clears it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(pattern(crate::rules::EMAIL))]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 200))]
    pub position: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 200))]
    pub seniority: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(pattern(crate::rules::HTTP_URL))]
    pub linkedin_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 200))]
    pub twitter_handle: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 10000))]
    pub notes: Option<Option<String>>,
    /// This workspace's own phone number; `null` clears it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 40))]
    pub phone: Option<Option<String>>,
    /// This workspace's owner of the contact; `null` clears it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<crate::ids::Id<crate::ids::Member>>")]
    pub owner_id: Option<Option<crate::ids::Id<crate::ids::Member>>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 200))]
    pub apollo_person_id: Option<Option<String>>,
}

pub struct Patch;
impl Operation for Patch {
    const NAME: &'static str = "link_building.crm.contact.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Update a contact's fields (null clears one); changing the email frees the old one";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = UpdateInput;
    type Output = Contact;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Contact>> {
        let ws = ctx.workspace();
        let (item, overlay) = load_with_notes(&ctx.app, ws, &input.id).await?;
        let version = version_of(&item);
        if let Some(expected) = ctx.if_match {
            if expected != version {
                return Err(ApiError::precondition_failed(version));
            }
        }
        let before = records::contact_view(&item)?;
        let moving = |field: &str| {
            ApiError::invalid_field(
                field,
                "invalid_request",
                "a contact cannot move to another account; create a new one",
            )
        };
        // A client sending back what it read (its own account id) is not asking for a move.
        if let Some(a) = &input.account_id {
            if a.as_str() != Some(before.account_id.as_str()) {
                return Err(moving("accountId"));
            }
        }
        if input.domain.is_some() {
            return Err(moving("domain"));
        }

        // Each sent field, checked; `None` = leave as is, `Some(None)` = clear.
        fn sent(
            raw: Option<Option<String>>,
            check: impl FnOnce(Option<String>) -> ApiResult<Option<String>>,
        ) -> ApiResult<Option<Option<String>>> {
            raw.map(check).transpose()
        }
        let changes: Vec<(&'static str, Option<Option<String>>)> = vec![
            ("firstName", sent(input.first_name, |v| line("firstName", v, MAX_NAME))?),
            ("lastName", sent(input.last_name, |v| line("lastName", v, MAX_NAME))?),
            ("email", sent(input.email, email)?),
            ("position", sent(input.position, |v| line("position", v, MAX_NAME))?),
            ("seniority", sent(input.seniority, |v| line("seniority", v, MAX_NAME))?),
            ("linkedinUrl", sent(input.linkedin_url, linkedin)?),
            ("twitterHandle", sent(input.twitter_handle, |v| line("twitterHandle", v, MAX_NAME))?),
            ("apolloPersonId", sent(input.apollo_person_id, |v| line("apolloPersonId", v, MAX_NAME))?),
        ];
        let mut next = overlay.clone();
        if let Some(n) = sent(input.notes, |v| text("notes", v, MAX_NOTES))? {
            next.notes = n;
        }
        if let Some(p) = sent(input.phone, |v| line("phone", v, 40))? {
            next.phone = p;
        }
        if let Some(o) = input.owner_id {
            if let Some(o) = &o {
                super::companies::check_member(&ctx, o).await?;
            }
            next.owner_id = o.map(|o| o.to_string());
        }
        let overlay_changed = next != overlay;
        let changed: Vec<(&'static str, Option<String>)> = changes
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .filter(|(k, v)| records::str_of(&item, k) != v.as_deref())
            .collect();
        // Nothing differs: no write, no version bump, no webhook for a change that did not happen.
        if changed.is_empty() && !overlay_changed {
            return Ok(Reply::ok(overlay.onto(before)).with_version(version));
        }
        // Another workspace's sends go to this address and its history names this person: it may
        // not be turned into someone else under them.
        let identity = changed.iter().any(|(k, _)| IDENTITY_FIELDS.contains(k));
        let others = referencing_workspaces(&item).into_iter().filter(|w| *w != ws).count();
        if identity && others > 0 {
            return Err(in_use(others, "name, email, position and profiles cannot be changed"));
        }

        let mut ops = Vec::new();
        let mut after = before.clone();
        let mut new_version = version;
        if !changed.is_empty() {
            let now = time::now_string();
            new_version = version + 1;
            // Only the changed attributes are set: the item also carries `refBy#` marks that event
            // writes add without bumping the version, and rewriting the whole item would drop them.
            let mut update = Update::new().set("updatedAt", now).set("version", new_version);
            for (k, v) in &changed {
                update = update.set(*k, json!(v));
            }
            let mut after_item = item.clone();
            update.apply(&mut after_item).map_err(|_| ApiError::internal())?;
            after = records::contact_view(&after_item)?;
            let mut cond = vec![Condition::VersionEquals(version)];
            if identity {
                // A workspace that starts referencing the contact meanwhile fails the change.
                cond.push(no_new_references(&item));
            }
            ops.push(TxOp::update_if(keys::contact(&before.id), update, Condition::And(cond)));
        }
        let new_email = changed.iter().find(|(k, _)| *k == "email").map(|(_, v)| v.clone());
        if let Some(new_email) = &new_email {
            if let Some(old) = &before.email {
                ops.push(TxOp::Delete { key: keys::email_guard(old), cond: Some(guard_held_by(&before.id)) });
            }
            if let Some(new) = new_email {
                ops.push(TxOp::put_if(email_guard_item(new, &before.id, &before.account_id), Condition::NotExists));
            }
        }
        if overlay_changed {
            ops.push(TxOp::put(next.item(ws, &before.id)));
        }
        let after = next.onto(after);
        ops.push(outbox::event("link_building.contact.updated", Some(ws), json!(after)));
        match ctx.app.store.transact(ops).await {
            Ok(()) => Ok(Reply::ok(after).with_version(new_version)),
            // Either the new email is taken, or another write changed the contact since it was
            // read (its version, the old guard it moved, or a new reference). Tell which. DynamoDB
            // may report a concurrent taker of the same email as a transaction conflict rather
            // than a failed condition, so both are examined.
            Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => {
                if let Some(Some(new)) = &new_email {
                    if let Some(holder) = holder_of(&ctx.app, new).await? {
                        if holder != before.id {
                            return Err(contact_exists(new, &holder));
                        }
                    }
                }
                if identity {
                    let now = load(&ctx.app, &before.id).await?;
                    let others = referencing_workspaces(&now).into_iter().filter(|w| *w != ws).count();
                    if others > 0 {
                        return Err(in_use(others, "name, email, position and profiles cannot be changed"));
                    }
                }
                Err(race_lost())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// An email guard may be removed only by the contact it points at (or if it is already gone).
fn guard_held_by(contact_id: &str) -> Condition {
    Condition::Or(vec![Condition::NotExists, Condition::Equals("contactId".into(), json!(contact_id))])
}

// ---------------------------------------------------------------------------------------------
// Delete.

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "link_building.crm.contact.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Delete a contact, unless another workspace's events reference it (409 contact_in_use)";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = IdInput<crate::ids::Contact>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Contact>) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace();
        for _ in 0..ATTEMPTS {
            let item = load(&ctx.app, &input.id).await?;
            match ctx.app.store.transact(delete_ops(&item, ws)?).await {
                Ok(()) => return Ok(Reply::no_content()),
                // Changed (or deleted) since the read: read again and decide again.
                Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(race_lost())
    }
}

/// The transaction deleting a contact as read, or why workspace `ws` may not delete it.
fn delete_ops(item: &Item, ws: &str) -> ApiResult<Vec<TxOp>> {
    // Contacts are shared: another workspace's history must not lose the person it names. Only a
    // count is told; which workspaces they are is theirs to know.
    let others = referencing_workspaces(item).into_iter().filter(|w| *w != ws).count();
    if others > 0 {
        return Err(in_use(others, "it cannot be deleted"));
    }
    let contact = records::contact_view(item)?;
    // The version guards against PATCHes; the reference counter against an event that names the
    // contact after the read (its mark does not bump the version).
    let mut ops = vec![TxOp::Delete {
        key: keys::contact(&contact.id),
        cond: Some(Condition::And(vec![Condition::VersionEquals(version_of(item)), no_new_references(item)])),
    }];
    if let Some(e) = &contact.email {
        ops.push(TxOp::Delete { key: keys::email_guard(e), cond: Some(guard_held_by(&contact.id)) });
    }
    ops.push(TxOp::delete(keys::contact_note(ws, &contact.id)));
    ops.push(outbox::event("link_building.contact.deleted", Some(ws), json!(contact)));
    Ok(ops)
}

pub use crate::records::contact_not_at_account;

#[cfg(test)]
mod tests {
    //! The reference rules of DELETE at the store level. The only writer of references is the
    //! event write path, which the black-box tests cannot reach until the event endpoints exist;
    //! these apply the very mark it applies (`write::contact_ref_mark`).

    use super::*;
    use crate::context::Caller;
    use linkcrm_core::Config;
    use linkcrm_storage::embedded::EmbeddedStore;
    use std::sync::Arc;

    async fn ctx(dir: &tempfile::TempDir, ws: &str) -> Ctx {
        let store = EmbeddedStore::open(dir.path().join("store.redb")).expect("store opens");
        let app = App::new(Arc::new(store), Config::default(), super::super::catalogue()).await.expect("app starts");
        let caller = Caller {
            key_id: "key_test".into(),
            agency_id: "ag_test".into(),
            key_workspace: Some(ws.into()),
            scopes: vec!["crm:read".into(), "crm:write".into()],
            key_hash: String::new(),
            member_id: None,
        };
        Ctx { app, caller, workspace_id: Some(ws.into()), workspace_record: None, if_match: None, idempotency: None }
    }

    fn input(email: &str) -> CreateInput {
        serde_json::from_value(json!({ "domain": "blog.com", "email": email })).expect("valid input")
    }

    async fn mark(ctx: &Ctx, id: &str, ws: &str) {
        ctx.app.store.update(&keys::contact(id), write::contact_ref_mark(ws), Some(Condition::Exists)).await.unwrap();
    }

    #[tokio::test]
    async fn another_workspaces_reference_blocks_delete_but_ours_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let ours = ctx(&dir, "ws_ours").await;
        let c = Create::run(ours.clone(), input("m@blog.com")).await.unwrap().body.unwrap();

        // Our own events do not hold a contact back, however many.
        mark(&ours, &c.id, "ws_ours").await;
        mark(&ours, &c.id, "ws_ours").await;
        let item = ours.app.store.get(&keys::contact(&c.id)).await.unwrap().unwrap();
        assert!(delete_ops(&item, "ws_ours").is_ok());
        assert_eq!(version_of(&item), 1, "a reference is not a client-visible change");

        // Two other workspaces: refused, with their number and not their ids.
        mark(&ours, &c.id, "ws_b").await;
        mark(&ours, &c.id, "ws_c").await;
        let id = IdInput { id: crate::ids::Id::parse(&c.id).unwrap() };
        let err = Delete::run(ours.clone(), id).await.err().expect("refused");
        assert_eq!((err.status.as_u16(), err.code), (409, "contact_in_use"));
        assert_eq!(err.details, Some(json!({ "workspaces": 2 })));
        assert!(!err.message.contains("ws_b"));
        assert!(ours.app.store.get(&keys::contact(&c.id)).await.unwrap().is_some(), "still there");

        // For one of those workspaces, its own references do not count; ours and ws_c's do.
        let b = Ctx { workspace_id: Some("ws_b".into()), ..ours.clone() };
        let err = Delete::run(b, IdInput { id: crate::ids::Id::parse(&c.id).unwrap() }).await.err().expect("refused");
        assert_eq!(err.details, Some(json!({ "workspaces": 2 })));
    }

    #[tokio::test]
    async fn a_reference_made_after_the_read_fails_the_delete() {
        let dir = tempfile::tempdir().unwrap();
        let ours = ctx(&dir, "ws_ours").await;
        for earlier_marks in [0, 1] {
            let email = format!("m{earlier_marks}@blog.com");
            let c = Create::run(ours.clone(), input(&email)).await.unwrap().body.unwrap();
            for _ in 0..earlier_marks {
                mark(&ours, &c.id, "ws_ours").await;
            }
            let read = ours.app.store.get(&keys::contact(&c.id)).await.unwrap().unwrap();
            let ops = delete_ops(&read, "ws_ours").expect("nobody else references it yet");
            // Another workspace's event names the contact between the read and the write.
            mark(&ours, &c.id, "ws_b").await;
            let err = ours.app.store.transact(ops).await.expect_err("the delete must not commit");
            assert!(err.is_condition_failed(), "{err:?}");
            assert!(ours.app.store.get(&keys::contact(&c.id)).await.unwrap().is_some());
            assert!(ours.app.store.get(&keys::email_guard(&email)).await.unwrap().is_some(), "guard kept too");
            // Read again, the delete is refused for what it now sees.
            let err = Delete::run(ours.clone(), IdInput { id: crate::ids::Id::parse(&c.id).unwrap() })
                .await
                .err()
                .expect("refused");
            assert_eq!(err.code, "contact_in_use");
        }
    }
}
