//! `link_building.crm.relationship.*`: a workspace's private pipeline with each partner.

use super::{text, time_param, TAG_RELATIONSHIPS};
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::list::{self, ListResponse};
use crate::listing::merged_page;
use crate::records::{self, obj, AccountRecord, RelationshipRecord};
use crate::write::{self, load_relationship, NewEvent, Ride};
use crate::{lenient, outbox};
use linkcrm_domain::crm::Relationship;
use linkcrm_domain::derive::{CoolingPolicy, RelationshipState};
use linkcrm_domain::enums::{EventType, PipelineStatus, Priority, Source};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Key, Query, SortKey, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn ops() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<Create>(),
        OpSpec::of::<List>(),
        OpSpec::of::<Get>(),
        OpSpec::of::<Patch>(),
        OpSpec::of::<Archive>(),
    ]
}

const URL_MAX: usize = 2000;
const NOTES_MAX: usize = 20_000;

fn url(field: &str, raw: Option<String>) -> ApiResult<Option<String>> {
    let v = text(field, raw, URL_MAX)?;
    if let Some(u) = &v {
        if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains(char::is_whitespace) {
            return Err(ApiError::invalid_field(field, "invalid_request", "must be an http(s) URL"));
        }
    }
    Ok(v)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["accountId"], "properties": { "accountId": { "type": "string" } } }, { "required": ["domain"], "properties": { "domain": { "type": "string" } } }]))]
pub struct CreateInput {
    /// The partner, by id…
    pub account_id: Option<crate::ids::Id<crate::ids::Account>>,
    /// …or by domain (a new domain creates its account).
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub domain: Option<String>,
    /// How the partner was found; MANUAL by default.
    pub source: Option<Source>,
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub source_details: Option<Value>,
    /// The starting stage; PROSPECTING by default.
    pub status: Option<PipelineStatus>,
    pub priority: Option<Priority>,
    #[schemars(length(max = 20000))]
    pub raw_notes: Option<String>,
    #[schemars(pattern(crate::rules::HTTP_URL))]
    pub target_blog_post: Option<String>,
    #[schemars(pattern(crate::rules::HTTP_URL))]
    pub our_content: Option<String>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.crm.relationship.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Start a relationship with a partner (one per workspace and account)";
    const TAG: &'static str = TAG_RELATIONSHIPS;
    type Input = CreateInput;
    type Output = Relationship;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Relationship>> {
        let ws = ctx.workspace().to_owned();
        let source = input.source.unwrap_or(Source::Manual);
        let fields = [
            text("rawNotes", input.raw_notes, NOTES_MAX)?,
            url("targetBlogPost", input.target_blog_post)?,
            url("ourContent", input.our_content)?,
        ];
        if input.source_details.as_ref().is_some_and(|d| !d.is_object()) {
            return Err(ApiError::invalid_field("sourceDetails", "invalid_request", "must be an object"));
        }
        let account = match (&input.account_id, &input.domain) {
            (Some(id), None) => write::load_account(&ctx.app, id).await.map_err(|e| rename_field(e, "accountId"))?,
            (None, Some(d)) => {
                let domain = write::normalize("domain", d)?;
                write::ensure_account(&ctx.app, &domain, source).await?
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "accountId",
                    "invalid_request",
                    "give exactly one of accountId or domain",
                ))
            }
        };
        let id = linkcrm_domain::new_id(IdKind::Relationship);
        let now = time::now_string();
        let status = input.status.unwrap_or(PipelineStatus::Prospecting);
        let state = RelationshipState::new(status, &now);
        let mut item = records::new_relationship_item(
            &id,
            &ws,
            &account,
            source,
            input.source_details,
            input.priority,
            fields,
            &state,
            &now,
        );
        item.insert("initialStatus".into(), json!(status));
        let guard = keys::workspace_account(&ws, account.id());
        let guard_item = obj(json!({
            "PK": guard.pk, "SK": guard.sk, "entity": "workspaceAccount", "relationshipId": id,
            "status": status, "lastContactedByUsAt": null, "archived": false,
        }));
        let rel = RelationshipRecord(item.clone());
        let view = rel.view(false)?;
        let other = account.contacted_by_other_org(&ws, CoolingPolicy::from_env());
        let reply = Reply::created(rel.view(other)?).with_version(1);
        let ops = vec![
            TxOp::put_if(guard_item, Condition::NotExists),
            TxOp::put_if(item, Condition::NotExists),
            outbox::event("link_building.relationship.created", Some(&ws), json!(view)),
        ];
        match ctx.commit(ops, &reply).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                let existing = ctx.app.store.get(&guard).await?.unwrap_or_default();
                let rid = records::str_of(&existing, "relationshipId").unwrap_or_default();
                return Err(ApiError::conflict(
                    "relationship_exists",
                    format!("This workspace already has relationship '{rid}' with {}.", account.domain()),
                )
                .with_details(
                    json!({ "relationshipId": rid, "accountId": account.id(), "archived": existing.get("archived") }),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(reply)
    }
}

fn rename_field(mut e: ApiError, field: &str) -> ApiError {
    for fe in &mut e.errors {
        fe.field = field.to_owned();
    }
    e
}

pub use crate::catalogue::IdInput;

/// The relationship as this workspace sees it: one more read for the shared account.
async fn view_of(ctx: &Ctx, rel: &RelationshipRecord) -> ApiResult<Relationship> {
    let acct = ctx
        .app
        .store
        .batch_get_attrs(&[keys::account(rel.account_id())], records::ACCOUNT_LIST_ATTRS)
        .await?
        .pop()
        .map(AccountRecord);
    let other = acct.is_some_and(|a| a.contacted_by_other_org(ctx.workspace(), CoolingPolicy::from_env()));
    Ok(rel.view(other)?)
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.crm.relationship.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one relationship";
    const TAG: &'static str = TAG_RELATIONSHIPS;
    type Input = IdInput<crate::ids::Relationship>;
    type Output = Relationship;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Relationship>) -> ApiResult<Reply<Relationship>> {
        let rel = load_relationship(&ctx.app, ctx.workspace(), &input.id).await?;
        Ok(Reply::ok(view_of(&ctx, &rel).await?).with_version(rel.version()))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Comma-separated pipeline statuses (as shown, so CONTACTED_BY_OTHER_ORG works too).
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(with = "Option<String>", pattern(r"^(PROSPECTING|APPROVED_TO_CONTACT|QUEUED|CONTACTED_BY_US|CONTACTED_BY_OTHER_ORG|ACTIVELY_ENGAGED|LINK_PLACED|NOT_INTERESTED|INACTIVE)(,(PROSPECTING|APPROVED_TO_CONTACT|QUEUED|CONTACTED_BY_US|CONTACTED_BY_OTHER_ORG|ACTIVELY_ENGAGED|LINK_PLACED|NOT_INTERESTED|INACTIVE))*$"))]
    pub status: Option<Vec<String>>,
    pub priority: Option<Priority>,
    pub account_id: Option<crate::ids::Id<crate::ids::Account>>,
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub domain: Option<String>,
    pub source: Option<Source>,
    /// Only relationships whose last event is at or after this time (RFC 3339 or a date).
    #[schemars(pattern(crate::rules::TIME))]
    pub since: Option<String>,
    /// Archived relationships are left out unless this is true.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub include_archived: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.relationship.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List this workspace's relationships, most recent activity first";
    const TAG: &'static str = TAG_RELATIONSHIPS;
    type Input = ListInput;
    type Output = ListResponse<Relationship>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Relationship>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let wanted: Option<Vec<PipelineStatus>> = input
            .status
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|s| {
                        PipelineStatus::parse(s).ok_or_else(|| {
                            ApiError::invalid_field("status", "invalid_request", format!("unknown status '{s}'"))
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()
            })
            .transpose()?;
        let since = input.since.as_deref().map(|s| time_param("since", s)).transpose()?;
        let mut filters = Vec::new();
        if input.include_archived != Some(true) {
            filters.push(Condition::Equals("archived".into(), json!(false)));
        }
        if let Some(p) = input.priority {
            filters.push(Condition::Equals("priority".into(), json!(p)));
        }
        if let Some(s) = input.source {
            filters.push(Condition::Equals("source".into(), json!(s)));
        }
        let filter = (!filters.is_empty()).then(|| Condition::And(filters.clone()));

        // One partner: the workspace-account guard names the relationship directly.
        let one_account = match (&input.account_id, &input.domain) {
            (Some(id), _) => Some(Some(id.to_string())),
            (None, Some(d)) => {
                let domain = write::normalize("domain", d)?;
                Some(write::account_by_domain(&ctx.app, &domain).await?.map(|a| a.id().to_owned()))
            }
            _ => None,
        };
        let (items, next) = match one_account {
            Some(acct) => {
                let mut found = Vec::new();
                if let Some(acct) = acct {
                    if let Some(guard) = ctx.app.store.get(&keys::workspace_account(&ws, &acct)).await? {
                        let rid = records::str_of(&guard, "relationshipId").unwrap_or_default();
                        if let Some(item) = ctx.app.store.get(&keys::relationship(rid)).await? {
                            let keep = filter.as_ref().is_none_or(|f| f.holds(Some(&item)))
                                && since.as_ref().is_none_or(|s| {
                                    records::str_of(&item, "lastEventAt").is_some_and(|t| t >= s.as_str())
                                });
                            if keep {
                                found.push(item);
                            }
                        }
                    }
                }
                (found, None)
            }
            None => {
                let sk = since.as_ref().map(|s| SortKey::AtLeast(s.clone())).unwrap_or(SortKey::All);
                let partitions: Vec<(Index, String)> = match &wanted {
                    None => vec![(Index::Gsi1, keys::workspace_relationships_pk(&ws))],
                    Some(statuses) => stored_statuses(statuses)
                        .into_iter()
                        .map(|s| (Index::Gsi2, keys::workspace_status_pk(&ws, s.as_str())))
                        .collect(),
                };
                let queries = partitions
                    .into_iter()
                    .map(|(index, pk)| {
                        let q = Query::index(index, pk).sk(sk.clone()).backward();
                        match &filter {
                            Some(f) => q.filter(f.clone()),
                            None => q,
                        }
                    })
                    .collect();
                let scope = format!("relationship.list#{ws}#{:?}#{:?}", wanted, since);
                let page = merged_page(&ctx.app, &scope, queries, limit, input.cursor.as_deref()).await?;
                (page.items, page.next)
            }
        };

        // One BatchGetItem of the accounts decides CONTACTED_BY_OTHER_ORG for the whole page,
        // reading only the attribute that decides it.
        let mut acct_keys: Vec<Key> =
            items.iter().filter_map(|i| records::str_of(i, "accountId")).map(keys::account).collect();
        acct_keys.sort();
        acct_keys.dedup();
        let accounts: HashMap<String, AccountRecord> = ctx
            .app
            .store
            .batch_get_attrs(&acct_keys, records::ACCOUNT_LIST_ATTRS)
            .await?
            .into_iter()
            .map(|i| (records::str_of(&i, "id").unwrap_or_default().to_owned(), AccountRecord(i)))
            .collect();
        let policy = CoolingPolicy::from_env();
        let mut data = Vec::new();
        for item in items {
            let rel = RelationshipRecord(item);
            let other = accounts.get(rel.account_id()).is_some_and(|a| a.contacted_by_other_org(&ws, policy));
            let view = rel.view(other)?;
            if wanted.as_ref().is_none_or(|w| w.contains(&view.status)) {
                data.push(view);
            }
        }
        Ok(Reply::ok(ListResponse { data, next_cursor: next, total: None }))
    }
}

/// The stored statuses that can show as the requested ones: CONTACTED_BY_OTHER_ORG is also how
/// PROSPECTING, APPROVED_TO_CONTACT and QUEUED read while another workspace's contact is recent.
fn stored_statuses(wanted: &[PipelineStatus]) -> Vec<PipelineStatus> {
    use PipelineStatus::*;
    let mut out: Vec<PipelineStatus> = Vec::new();
    for s in wanted {
        let extra: &[PipelineStatus] =
            if *s == ContactedByOtherOrg { &[Prospecting, ApprovedToContact, Queued] } else { &[] };
        for x in std::iter::once(s).chain(extra) {
            if !out.contains(x) {
                out.push(*x);
            }
        }
    }
    out
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchInput {
    pub id: crate::ids::Id<crate::ids::Relationship>,
    /// A manual status change, recorded as a STATUS_CHANGED event in the same transaction.
    pub status: Option<PipelineStatus>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<Priority>")]
    pub priority: Option<Option<Priority>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 20000))]
    pub raw_notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(pattern(crate::rules::HTTP_URL))]
    pub target_blog_post: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(pattern(crate::rules::HTTP_URL))]
    pub our_content: Option<Option<String>>,
    /// `false` restores an archived relationship.
    pub archived: Option<bool>,
}

pub struct Patch;
impl Operation for Patch {
    const NAME: &'static str = "link_building.crm.relationship.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Update status, priority or notes; a status change is logged as STATUS_CHANGED";
    const TAG: &'static str = TAG_RELATIONSHIPS;
    type Input = PatchInput;
    type Output = Relationship;

    async fn run(ctx: Ctx, input: PatchInput) -> ApiResult<Reply<Relationship>> {
        let ws = ctx.workspace().to_owned();
        let mut set: Vec<(String, Value)> = Vec::new();
        if let Some(p) = input.priority {
            set.push(("priority".into(), json!(p)));
        }
        if let Some(n) = input.raw_notes {
            set.push(("rawNotes".into(), json!(text("rawNotes", n, NOTES_MAX)?)));
        }
        if let Some(u) = input.target_blog_post {
            set.push(("targetBlogPost".into(), json!(url("targetBlogPost", u)?)));
        }
        if let Some(u) = input.our_content {
            set.push(("ourContent".into(), json!(url("ourContent", u)?)));
        }
        let mut rel = load_relationship(&ctx.app, &ws, &input.id).await?;
        if let Some(to) = input.status.filter(|s| *s != rel.status()) {
            let mut set = set.clone();
            archive_change(&mut set, input.archived, &rel);
            // The change is an event: it goes through the same path as every other event.
            let event = NewEvent {
                r#type: EventType::StatusChanged,
                contact_id: None,
                subject: None,
                content: None,
                metadata: Some(
                    json!({ "from": rel.status(), "to": to, "keyId": ctx.caller.key_id, "source": "manual" }),
                ),
                occurred_at: None,
            };
            let guard_set = input.archived.map(|a| vec![("archived".to_owned(), json!(a))]).unwrap_or_default();
            let ride = Ride { set, guard_set, if_version: ctx.if_match, ops: None, follow: Vec::new() };
            match write::record_event(&ctx.app, &ctx.caller.agency_id, &ws, &input.id, event, ride, Some(rel)).await {
                Ok(_) => {
                    let rel = load_relationship(&ctx.app, &ws, &input.id).await?;
                    let version = rel.version();
                    return Ok(Reply::ok(view_of(&ctx, &rel).await?).with_version(version));
                }
                // A concurrent change got there first: the status is what was asked for, and
                // nothing is logged twice. The other fields are still this request's to set.
                Err(write::EventError::StatusUnchanged(_)) => rel = load_relationship(&ctx.app, &ws, &input.id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        archive_change(&mut set, input.archived, &rel);
        let rel = if set.is_empty() {
            rel
        } else {
            // Only the fields sent are set, so without If-Match a concurrent writer (an event
            // changing the status, say) loses nothing and need not make this request fail.
            let guard = match ctx.if_match {
                Some(v) if v != rel.version() => return Err(ApiError::precondition_failed(rel.version())),
                Some(v) => Condition::VersionEquals(v),
                None => Condition::Exists,
            };
            let mut update = Update::new().set("updatedAt", time::now_string()).add("version", 1);
            for (k, v) in &set {
                update = update.set(k.clone(), v.clone());
            }
            let mut ops = vec![TxOp::update_if(keys::relationship(&input.id), update, guard)];
            if let Some(a) = input.archived {
                ops.push(TxOp::update_if(
                    keys::workspace_account(&ws, rel.account_id()),
                    Update::new().set("archived", a),
                    Condition::Exists,
                ));
            }
            ops.push(outbox::event(
                "link_building.relationship.updated",
                Some(&ws),
                json!({ "relationshipId": input.id }),
            ));
            match ctx.app.store.transact(ops).await {
                Ok(()) => {}
                // Only If-Match can fail here: the version moved on since the client read it.
                Err(StoreError::ConditionFailed { .. }) => {
                    let now = load_relationship(&ctx.app, &ws, &input.id).await?;
                    return Err(ApiError::precondition_failed(now.version()));
                }
                Err(e) => return Err(e.into()),
            }
            load_relationship(&ctx.app, &ws, &input.id).await?
        };
        let version = rel.version();
        Ok(Reply::ok(view_of(&ctx, &rel).await?).with_version(version))
    }
}

/// Adds the archive flag's change to `set` when it differs from the relationship as read.
fn archive_change(set: &mut Vec<(String, Value)>, archived: Option<bool>, rel: &RelationshipRecord) {
    if let Some(a) = archived.filter(|a| *a != rel.archived()) {
        set.push(("archived".into(), json!(a)));
        set.push(("archivedAt".into(), if a { json!(time::now_string()) } else { Value::Null }));
    }
}

pub struct Archive;
impl Operation for Archive {
    const NAME: &'static str = "link_building.crm.relationship.archive";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Archive a relationship (its events remain)";
    const TAG: &'static str = TAG_RELATIONSHIPS;
    type Input = IdInput<crate::ids::Relationship>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Relationship>) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace().to_owned();
        let rel = load_relationship(&ctx.app, &ws, &input.id).await?;
        if rel.archived() {
            return Ok(Reply::no_content());
        }
        let now = time::now_string();
        let ops = vec![
            TxOp::update_if(
                keys::relationship(&input.id),
                Update::new()
                    .set("archived", true)
                    .set("archivedAt", now.clone())
                    .set("updatedAt", now)
                    .add("version", 1),
                Condition::Exists,
            ),
            TxOp::update_if(
                keys::workspace_account(&ws, rel.account_id()),
                Update::new().set("archived", true),
                Condition::Exists,
            ),
            outbox::event("link_building.relationship.archived", Some(&ws), json!({ "relationshipId": input.id })),
        ];
        ctx.app.store.transact(ops).await?;
        Ok(Reply::no_content())
    }
}
