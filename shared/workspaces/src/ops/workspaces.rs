//! `workspaces.*`: an agency's client workspaces.

use crate::auth::{self, WorkspaceRecord};
use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::{self, ListResponse};
use crate::platform::to_item;
use crate::{credits, keys, lenient, outbox};
use linkcrm_domain::normalize::normalize_domain;
use linkcrm_domain::platform::{Workspace, WorkspaceSettings};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Key, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

const MAX_TAGS: usize = 20;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    /// 1 to 200 characters.
    #[schemars(length(max = 200), pattern(crate::rules::NOT_BLANK))]
    pub name: String,
    /// The client's own site, e.g. `acme.com`.
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub primary_domain: Option<String>,
    /// Free-form labels such as `industry:saas`.
    #[serde(default)]
    #[schemars(extend("items" = { "type": "string", "pattern": crate::rules::TAG }))]
    #[schemars(length(max = 20))]
    pub tags: Vec<String>,
    #[serde(default)]
    pub settings: WorkspaceSettings,
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid_field("name", "invalid_request", "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

fn check_domain(raw: Option<&str>) -> ApiResult<Option<String>> {
    raw.map(|d| {
        normalize_domain(d).map_err(|e| ApiError::invalid_field("primaryDomain", "invalid_domain", e.to_string()))
    })
    .transpose()
}

fn check_tags(tags: &[String]) -> ApiResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_field("tags", "invalid_request", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim();
        let ok = !t.is_empty() && t.len() <= 64 && t.chars().all(|c| c.is_ascii_alphanumeric() || ":_-./".contains(c));
        if !ok {
            return Err(ApiError::invalid_field(
                format!("tags[{i}]"),
                "invalid_request",
                "tags are 1 to 64 letters, digits or : _ - . /",
            ));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

fn workspace_item(ws: &Workspace, version: i64) -> linkcrm_storage::Item {
    to_item(&keys::workspace(&ws.id), "workspace", ws, json!({ "version": version }))
}

fn pointer_item(key: Key, ws: &Workspace) -> linkcrm_storage::Item {
    let v =
        json!({ "PK": key.pk, "SK": key.sk, "entity": "workspacePointer", "workspaceId": ws.id, "active": ws.active });
    v.as_object().cloned().expect("object")
}

pub use linkcrm_core::workspace::from_record;

/// The one transaction that creates a workspace: the record, its pointers, the agency's counters
/// and the outbox event. Public so the benchmark loader creates workspaces exactly as the API does.
pub fn create_ops(ws: &Workspace) -> Vec<TxOp> {
    let mut ops = vec![
        TxOp::put_if(workspace_item(ws, 1), Condition::NotExists),
        TxOp::put(pointer_item(keys::agency_workspace(&ws.agency_id, &ws.id), ws)),
        TxOp::update_if(
            keys::agency(&ws.agency_id),
            Update::new().add("workspaceCount", 1).add("activeWorkspaceCount", 1),
            Condition::Exists,
        ),
        outbox::event("workspace.created", Some(&ws.id), serde_json::to_value(ws).expect("serialises")),
    ];
    for tag in &ws.tags {
        ops.push(TxOp::put(pointer_item(keys::tag_pointer(&ws.agency_id, tag, &ws.id), ws)));
    }
    ops
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "workspaces.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Create a client workspace";
    const TAG: &'static str = "Workspaces";
    type Input = CreateInput;
    type Output = Workspace;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Workspace>> {
        let now = time::now_string();
        let ws = Workspace {
            id: linkcrm_domain::new_id(IdKind::Workspace),
            agency_id: ctx.caller.agency_id.clone(),
            name: check_name(&input.name)?,
            primary_domain: check_domain(input.primary_domain.as_deref())?,
            tags: check_tags(&input.tags)?,
            active: true,
            settings: check_settings(input.settings)?,
            created_at: now.clone(),
            updated_at: now,
            last_active_at: None,
            usage: None,
            health: None,
            archived_at: None,
        };
        let ops = create_ops(&ws);
        let reply = Reply::created(ws).with_version(1);
        ctx.commit(ops, &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Only workspaces carrying this tag.
    pub tag: Option<String>,
    /// Also embed, comma-separated: `usage` (credits this cycle), `health` (each integration's
    /// status, from recorded outcomes; no call out per row), `lastActiveAt` (the latest write).
    #[schemars(pattern(r"^(usage|health|lastActiveAt)(,(usage|health|lastActiveAt))*$"))]
    pub include: Option<String>,
    /// `true` for active workspaces, `false` for archived ones.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// What `include` asks the list to embed.
#[derive(Default)]
struct Include {
    usage: bool,
    health: bool,
    last_active: bool,
}

impl Include {
    fn parse(raw: Option<&str>) -> ApiResult<Include> {
        let mut inc = Include::default();
        for part in raw.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "usage" => inc.usage = true,
                "health" => inc.health = true,
                "lastActiveAt" => inc.last_active = true,
                other => {
                    return Err(ApiError::invalid_field(
                        "include",
                        "invalid_request",
                        format!("'{other}' cannot be included (usage, health, lastActiveAt)"),
                    ))
                }
            }
        }
        Ok(inc)
    }

    /// Reads what was asked for the page: usage in BatchGetItems of 100 keys, the latest audit
    /// entry per workspace (one Query of one item), health from recorded outcomes.
    async fn embed(&self, ctx: &Ctx, data: &mut [Workspace]) -> ApiResult<()> {
        if self.usage {
            let (_, end, label) = credits::cycle(linkcrm_domain::time::now());
            let keys: Vec<Key> = data
                .iter()
                .flat_map(|ws| [linkcrm_core::workspace::pool_of(ws).key(), credits::usage_key(&ws.id, &label)])
                .collect();
            let mut found = Vec::new();
            for chunk in keys.chunks(100) {
                found.extend(ctx.app.store.batch_get(chunk).await?);
            }
            let milli = |k: &Key, attr: &str| {
                found
                    .iter()
                    .find(|i| Key::of(i).as_ref() == Some(k))
                    .and_then(|i| i.get(attr))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            for ws in data.iter_mut() {
                let (pool, usage) = (linkcrm_core::workspace::pool_of(ws).key(), credits::usage_key(&ws.id, &label));
                ws.usage = Some(linkcrm_domain::platform::WorkspaceUsage {
                    credits_used_this_cycle: milli(&usage, "used") as f64 / 1000.0,
                    credits_remaining: milli(&pool, "available") as f64 / 1000.0,
                    cycle_ends_at: end.clone(),
                });
            }
        }
        if self.last_active {
            for ws in data.iter_mut() {
                let q = Query::partition(linkcrm_core::keys::audit_pk(&ws.id)).backward().limit(1).attrs(&["at"]);
                let page = ctx.app.store.query(q).await?;
                ws.last_active_at = page
                    .items
                    .first()
                    .and_then(|i| i.get("at"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| Some(ws.updated_at.clone()));
            }
        }
        if self.health {
            for ws in data.iter_mut() {
                let summary = linkcrm_agency::health::summary(&ctx.app, &ws.id).await?;
                let as_text = |s: linkcrm_core::health::Status| {
                    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                };
                ws.health = Some(summary.into_iter().map(|(k, v)| (k, as_text(v))).collect());
            }
        }
        Ok(())
    }
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "workspaces.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = None;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "List the workspaces this key can access, newest first";
    const TAG: &'static str = "Workspaces";
    type Input = ListInput;
    type Output = ListResponse<Workspace>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Workspace>>> {
        let limit = list::limit(input.limit)?;
        let include = Include::parse(input.include.as_deref())?;
        // A workspace key sees its own workspace only.
        if let Some(own) = ctx.caller.key_workspace.clone() {
            let record = auth::authorize_workspace(&ctx.app, &ctx.caller, &own).await?;
            let ws = from_record(&record)?;
            let keep =
                input.active.is_none_or(|a| a == ws.active) && input.tag.as_ref().is_none_or(|t| ws.tags.contains(t));
            let mut data = if keep { vec![ws] } else { vec![] };
            include.embed(&ctx, &mut data).await?;
            let total = Some(data.len() as u64);
            return Ok(Reply::ok(ListResponse { data, next_cursor: None, total }));
        }
        let agency = ctx.caller.agency_id.clone();
        let scope = format!("workspaces.list#{agency}#{}", input.tag.as_deref().unwrap_or(""));
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let pk = match &input.tag {
            Some(tag) => keys::tag_pk(&agency, tag),
            None => keys::agency_workspaces_pk(&agency),
        };
        let mut q = Query::partition(pk).backward().limit(limit).after(cursor);
        if let Some(active) = input.active {
            q = q.filter(Condition::Equals("active".into(), active.into()));
        }
        let page = ctx.app.store.query(q).await?;
        let wanted: Vec<Key> = page
            .items
            .iter()
            .filter_map(|p| p.get("workspaceId").and_then(Value::as_str))
            .map(keys::workspace)
            .collect();
        let found = ctx.app.store.batch_get(&wanted).await?;
        let mut data =
            found.into_iter().map(|item| from_record(&WorkspaceRecord { item })).collect::<ApiResult<Vec<_>>>()?;
        include.embed(&ctx, &mut data).await?;
        let total = match (&input.tag, input.active) {
            (Some(_), _) => None,
            (None, active) => {
                let a = ctx.app.store.get(&keys::agency(&agency)).await?.unwrap_or_default();
                let n = |k: &str| a.get(k).and_then(Value::as_u64).unwrap_or(0);
                Some(match active {
                    None => n("workspaceCount"),
                    Some(true) => n("activeWorkspaceCount"),
                    Some(false) => n("workspaceCount").saturating_sub(n("activeWorkspaceCount")),
                })
            }
        };
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total }))
    }
}

pub use crate::catalogue::IdInput;

/// Loads a workspace addressed by path for this caller. A workspace key of an archived
/// workspace can no longer act in it.
async fn addressed(ctx: &Ctx, id: &str) -> ApiResult<WorkspaceRecord> {
    let record = auth::authorize_workspace(&ctx.app, &ctx.caller, id).await?;
    if !ctx.caller.is_agency() && !record.active() {
        return Err(ApiError::forbidden("workspace_archived", format!("Workspace '{id}' is archived.")));
    }
    Ok(record)
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "workspaces.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = None;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Get one workspace";
    const TAG: &'static str = "Workspaces";
    type Input = IdInput<crate::ids::Workspace>;
    type Output = Workspace;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<Workspace>> {
        let record = addressed(&ctx, &input.id).await?;
        let version = record.version();
        Ok(Reply::ok(from_record(&record)?).with_version(version))
    }
}

pub struct Current;
impl Operation for Current {
    const NAME: &'static str = "workspaces.current";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = None;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "The workspace this request acts in (the key's own, or X-Workspace-Id)";
    const TAG: &'static str = "Workspaces";
    type Input = Empty;
    type Output = Workspace;

    async fn run(ctx: Ctx, _: Empty) -> ApiResult<Reply<Workspace>> {
        let record = ctx.workspace_record();
        let version = record.version();
        Ok(Reply::ok(from_record(record)?).with_version(version))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    #[schemars(length(max = 200), pattern(crate::rules::NOT_BLANK))]
    pub name: Option<String>,
    /// A domain, or null to clear it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub primary_domain: Option<Option<String>>,
    /// Replaces the tag list.
    #[schemars(extend("items" = { "type": "string", "pattern": crate::rules::TAG }))]
    #[schemars(length(max = 20))]
    pub tags: Option<Vec<String>>,
    /// Merged into the current settings (JSON merge patch): send only what changes.
    #[schemars(schema_with = "settings_patch")]
    pub settings: Option<Value>,
    /// `true` restores an archived workspace, `false` archives it (agency keys only).
    pub active: Option<bool>,
}

/// Settings a schema cannot judge: the time zone must be one the IANA database knows.
fn check_settings(
    s: linkcrm_domain::platform::WorkspaceSettings,
) -> ApiResult<linkcrm_domain::platform::WorkspaceSettings> {
    if let Some(tz) = &s.time_zone {
        if linkcrm_domain::send_window::zone(Some(tz)).is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_time_zone",
                format!("settings.timeZone: {tz} is not an IANA time zone (such as Europe/Berlin)."),
            ));
        }
    }
    Ok(s)
}

/// A merge patch of `WorkspaceSettings`: any of its fields, null resetting one to its default.
fn settings_patch(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mode = serde_json::json!({ "enum": ["auto", "require_approval", null] });
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "primaryLocation": { "type": ["string", "null"] },
            "primaryLanguage": { "type": ["string", "null"] },
            "creditPool": { "enum": ["workspace", "agency", null] },
            "timeZone": { "type": ["string", "null"], "minLength": 1, "maxLength": 64,
                          "pattern": "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$" },
            "legalBasis": { "enum": ["legitimate_interest", "consent", "contract", null] },
            "approvalPolicy": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": { "publish": mode, "outreach_send": mode, "indexing_submit": mode,
                                "follow_up": mode, "inbound_respond": mode },
            },
        },
    })
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

pub struct Patch;
impl Operation for Patch {
    const NAME: &'static str = "workspaces.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Update a workspace's name, domain, tags or settings";
    const TAG: &'static str = "Workspaces";
    type Input = UpdateInput;
    type Output = Workspace;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Workspace>> {
        let record = addressed(&ctx, &input.id).await?;
        let version = record.version();
        if let Some(expected) = ctx.if_match {
            if expected != version {
                return Err(ApiError::precondition_failed(version));
            }
        }
        let before = from_record(&record)?;
        let mut ws = before.clone();
        if let Some(name) = &input.name {
            ws.name = check_name(name)?;
        }
        if let Some(domain) = &input.primary_domain {
            ws.primary_domain = check_domain(domain.as_deref())?;
        }
        if let Some(tags) = &input.tags {
            ws.tags = check_tags(tags)?;
        }
        if let Some(patch) = &input.settings {
            if !patch.is_object() {
                return Err(ApiError::invalid_field("settings", "invalid_request", "must be an object"));
            }
            let mut merged = serde_json::to_value(&ws.settings).expect("serialises");
            merge_patch(&mut merged, patch);
            ws.settings = check_settings(crate::catalogue::parse_input(merged).map_err(|mut e| {
                for fe in &mut e.errors {
                    fe.field = format!("settings.{}", fe.field);
                }
                e
            })?)?;
        }
        if let Some(active) = input.active {
            if active != ws.active && !ctx.caller.is_agency() {
                return Err(ApiError::forbidden(
                    "agency_key_required",
                    "Only an agency key may archive or restore a workspace.",
                ));
            }
            set_active(&mut ws, active);
        }
        ws.updated_at = time::now_string();
        let ops = change_ops(&before, &ws, version, "workspace.updated");
        commit_change(&ctx, ops).await?;
        Ok(Reply::ok(ws).with_version(version + 1))
    }
}

fn set_active(ws: &mut Workspace, active: bool) {
    if ws.active != active {
        ws.active = active;
        ws.archived_at = if active { None } else { Some(time::now_string()) };
    }
}

/// The transaction that moves a workspace from `before` to `after`: the record (guarded by its
/// version), pointers for listing and tags, the agency's counters, and the outbox event.
fn change_ops(before: &Workspace, after: &Workspace, version: i64, event: &str) -> Vec<TxOp> {
    let agency = &after.agency_id;
    let mut ops = vec![
        TxOp::put_if(workspace_item(after, version + 1), Condition::VersionEquals(version)),
        TxOp::put(pointer_item(keys::agency_workspace(agency, &after.id), after)),
    ];
    if before.active != after.active {
        let delta = if after.active { 1 } else { -1 };
        ops.push(TxOp::update(keys::agency(agency), Update::new().add("activeWorkspaceCount", delta)));
    }
    for tag in &before.tags {
        if !after.tags.contains(tag) {
            ops.push(TxOp::delete(keys::tag_pointer(agency, tag, &after.id)));
        }
    }
    for tag in &after.tags {
        ops.push(TxOp::put(pointer_item(keys::tag_pointer(agency, tag, &after.id), after)));
    }
    ops.push(outbox::event(event, Some(&after.id), serde_json::to_value(after).expect("serialises")));
    ops
}

async fn commit_change(ctx: &Ctx, ops: Vec<TxOp>) -> ApiResult<()> {
    ctx.app.store.transact(ops).await.map_err(|e| match e {
        StoreError::ConditionFailed { .. } => {
            ApiError::conflict("conflict", "The workspace changed while this request ran; read it again and retry.")
        }
        other => other.into(),
    })
}

pub struct Archive;
impl Operation for Archive {
    const NAME: &'static str = "workspaces.archive";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str = "Archive a workspace (soft delete; its data stays)";
    const TAG: &'static str = "Workspaces";
    type Input = IdInput<crate::ids::Workspace>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<()>> {
        let record = addressed(&ctx, &input.id).await?;
        let before = from_record(&record)?;
        if !before.active {
            return Ok(Reply::no_content());
        }
        let mut ws = before.clone();
        set_active(&mut ws, false);
        ws.updated_at = time::now_string();
        commit_change(&ctx, change_ops(&before, &ws, record.version(), "workspace.archived")).await?;
        Ok(Reply::no_content())
    }
}
