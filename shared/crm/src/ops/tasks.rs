//! `link_building.crm.task.*`: a workspace's to-dos, optionally about an opportunity, a
//! relationship or a contact. Open tasks with a due time are in a due index (GSI3), so what is
//! due and overdue is one Query.

use super::activities::target;
use super::TAG_PIPELINE;
use crate::catalogue::{Effect, Family, IdInput, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, Id};
use crate::list::{self, ListResponse};
use crate::records::{self, obj};
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Item, Query, SortKey, StoreError, TxOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn ops() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<Create>(),
        OpSpec::of::<List>(),
        OpSpec::of::<Get>(),
        OpSpec::of::<Update_>(),
        OpSpec::of::<Complete>(),
        OpSpec::of::<Delete>(),
    ]
}

const TITLE_MAX: usize = 300;
const NOTES_MAX: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Open,
    Done,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub title: String,
    pub notes: Option<String>,
    pub due_at: Option<String>,
    pub status: TaskStatus,
    pub opportunity_id: Option<String>,
    pub relationship_id: Option<String>,
    #[serde(default)]
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    /// The member it is assigned to.
    #[serde(default)]
    pub assignee_id: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

fn view(item: &Item) -> ApiResult<Task> {
    Ok(records::parse("task", item)?)
}

/// The stored item of `t`: in its opportunity's index, and in the due index while open with a
/// due time.
fn task_item(ws: &str, t: &Task) -> Item {
    let key = keys::task(ws, &t.id);
    let mut item = obj(json!(t));
    for (k, v) in [("PK", json!(key.pk)), ("SK", json!(key.sk)), ("entity", json!("task")), ("workspaceId", json!(ws))]
    {
        item.insert(k.into(), v);
    }
    if let Some(o) = &t.opportunity_id {
        item.insert("GSI1PK".into(), json!(keys::opportunity_tasks_pk(ws, o)));
        item.insert("GSI1SK".into(), json!(t.id));
    }
    if let (TaskStatus::Open, Some(due)) = (t.status, &t.due_at) {
        item.insert("GSI3PK".into(), json!(keys::tasks_due_pk(ws)));
        item.insert("GSI3SK".into(), json!(keys::task_due_sort(due, &t.id)));
    }
    item
}

async fn load(ctx: &Ctx, id: &str) -> ApiResult<Task> {
    match ctx.app.store.get(&keys::task(ctx.workspace(), id)).await? {
        Some(item) => view(&item),
        None => Err(ApiError::not_found("task_not_found", "task", id)),
    }
}

fn title_of(raw: String) -> ApiResult<String> {
    linkcrm_core::validate::header_text("title", Some(raw), TITLE_MAX)?
        .ok_or_else(|| ApiError::invalid_field("title", "invalid_request", "is required"))
}

fn due_of(raw: &str) -> ApiResult<String> {
    linkcrm_core::validate::time_param("dueAt", raw)
}

/// Writes `t` over the version read (`expected`), or creates it (`None`).
async fn save(ctx: &Ctx, t: &Task, expected: Option<i64>, reply: &Reply<Task>) -> ApiResult<()> {
    let cond = match expected {
        None => Condition::NotExists,
        Some(v) => Condition::VersionEquals(v),
    };
    match ctx.commit(vec![TxOp::put_if(task_item(ctx.workspace(), t), cond)], reply).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
            Err(ApiError::conflict("conflict", "The task changed while this request ran; read it again."))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    #[schemars(length(min = 1, max = 300), pattern(linkcrm_core::rules::ONE_LINE))]
    pub title: String,
    #[schemars(length(max = 10000))]
    pub notes: Option<String>,
    /// When it is due: an RFC 3339 time or a date.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub due_at: Option<String>,
    pub opportunity_id: Option<Id<ids::Opportunity>>,
    pub relationship_id: Option<Id<ids::Relationship>>,
    pub company_id: Option<Id<ids::Company>>,
    pub contact_id: Option<Id<ids::Contact>>,
    pub assignee_id: Option<Id<ids::Member>>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.crm.task.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Create a task, optionally about an opportunity, relationship or contact";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = CreateInput;
    type Output = Task;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Task>> {
        let title = title_of(input.title)?;
        let notes = linkcrm_core::validate::text("notes", input.notes, NOTES_MAX)?;
        let due_at = input.due_at.as_deref().map(due_of).transpose()?;
        let t = target(
            &ctx,
            input.opportunity_id.as_deref(),
            input.relationship_id.as_deref(),
            input.contact_id.as_deref(),
            false,
        )
        .await?;
        if let Some(c) = &input.company_id {
            super::companies::load(&ctx, c).await?;
        }
        if let Some(a) = &input.assignee_id {
            super::companies::check_member(&ctx, a).await?;
        }
        let now = time::now_string();
        let task = Task {
            id: linkcrm_domain::new_id(IdKind::Task),
            title,
            notes,
            due_at,
            status: TaskStatus::Open,
            opportunity_id: t.opportunity_id().map(str::to_owned),
            relationship_id: t.relationship_id().map(str::to_owned),
            company_id: input
                .company_id
                .map(|c| c.to_string())
                .or_else(|| t.opp.as_ref().and_then(|o| records::str_of(&o.0, "companyId")).map(str::to_owned)),
            contact_id: input.contact_id.map(|c| c.to_string()),
            assignee_id: input.assignee_id.map(|a| a.to_string()),
            completed_at: None,
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        let reply = Reply::created(task.clone()).with_version(1);
        save(&ctx, &task, None, &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub opportunity_id: Option<Id<ids::Opportunity>>,
    /// A member id, `me` or `unassigned`; filters the page as read (a page may come back short).
    #[schemars(length(max = 40), pattern(super::companies::OWNER))]
    pub assignee: Option<String>,
    pub status: Option<TaskStatus>,
    /// Open tasks due before this time (oldest due first).
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub due_before: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.task.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "List tasks: newest first, of an opportunity, by status, or the open ones due before a time (soonest first)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = ListInput;
    type Output = ListResponse<Task>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Task>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let due_before = input.due_before.as_deref().map(due_of).transpose()?;
        // The due index holds open tasks only: done ones are never due.
        if due_before.is_some() && input.status == Some(TaskStatus::Done) {
            return Ok(Reply::ok(ListResponse { data: Vec::new(), next_cursor: None, total: None }));
        }
        let scope = format!(
            "{}#{ws}#{}#{:?}#{}",
            Self::NAME,
            input.opportunity_id.as_deref().unwrap_or(""),
            input.status,
            due_before.as_deref().unwrap_or("")
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let q = if let Some(d) = &due_before {
            Query::index(Index::Gsi3, keys::tasks_due_pk(&ws)).sk(SortKey::Before(format!("{d}#"))).limit(limit)
        } else {
            let q = match &input.opportunity_id {
                Some(o) => Query::index(Index::Gsi1, keys::opportunity_tasks_pk(&ws, o)),
                None => Query::partition(keys::tasks_pk(&ws)),
            };
            let q = q.backward().limit(limit);
            match input.status {
                Some(s) => q.filter(Condition::Equals("status".into(), json!(s))),
                None => q,
            }
        };
        let page = ctx.app.store.query(q.after(cursor)).await?;
        let mut data = page.items.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
        if let Some(a) = super::companies::owner_filter(&ctx, "assignee", input.assignee.as_deref())? {
            data.retain(|t| t.assignee_id == a);
        }
        if let (Some(_), Some(o)) = (&due_before, &input.opportunity_id) {
            data.retain(|t| t.opportunity_id.as_deref() == Some(o.as_str()));
        }
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.crm.task.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one task";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Task>;
    type Output = Task;

    async fn run(ctx: Ctx, input: IdInput<ids::Task>) -> ApiResult<Reply<Task>> {
        let t = load(&ctx, &input.id).await?;
        let v = t.version;
        Ok(Reply::ok(t).with_version(v))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: Id<ids::Task>,
    #[schemars(length(min = 1, max = 300), pattern(linkcrm_core::rules::ONE_LINE))]
    pub title: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", length(max = 10000))]
    pub notes: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", pattern(linkcrm_core::rules::TIME))]
    pub due_at: Option<Option<String>>,
    /// open or done (done stamps completedAt; open clears it).
    pub status: Option<TaskStatus>,
    /// `null` unassigns it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<Id<ids::Member>>")]
    pub assignee_id: Option<Option<Id<ids::Member>>>,
}

fn set_status(t: &mut Task, s: TaskStatus, now: &str) {
    if t.status != s {
        t.status = s;
        t.completed_at = (s == TaskStatus::Done).then(|| now.to_owned());
    }
}

pub struct Update_;
impl Operation for Update_ {
    const NAME: &'static str = "link_building.crm.task.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Change a task's title, notes, due time or status; honours If-Match";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = UpdateInput;
    type Output = Task;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Task>> {
        let mut t = load(&ctx, &input.id).await?;
        let read = t.version;
        if ctx.if_match.is_some_and(|v| v != read) {
            return Err(ApiError::precondition_failed(read));
        }
        let now = time::now_string();
        if let Some(title) = input.title {
            t.title = title_of(title)?;
        }
        if let Some(n) = input.notes {
            t.notes = linkcrm_core::validate::text("notes", n, NOTES_MAX)?;
        }
        if let Some(d) = input.due_at {
            t.due_at = d.as_deref().map(due_of).transpose()?;
        }
        if let Some(s) = input.status {
            set_status(&mut t, s, &now);
        }
        if let Some(a) = input.assignee_id {
            if let Some(a) = &a {
                super::companies::check_member(&ctx, a).await?;
            }
            t.assignee_id = a.map(|a| a.to_string());
        }
        t.updated_at = now;
        t.version = read + 1;
        let reply = Reply::ok(t.clone()).with_version(t.version);
        save(&ctx, &t, Some(read), &reply).await?;
        Ok(reply)
    }
}

pub struct Complete;
impl Operation for Complete {
    const NAME: &'static str = "link_building.crm.task.complete";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Mark a task done (a done task answers as it is)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Task>;
    type Output = Task;

    async fn run(ctx: Ctx, input: IdInput<ids::Task>) -> ApiResult<Reply<Task>> {
        let mut t = load(&ctx, &input.id).await?;
        if t.status == TaskStatus::Done {
            let v = t.version;
            return Ok(Reply::ok(t).with_version(v));
        }
        let read = t.version;
        let now = time::now_string();
        set_status(&mut t, TaskStatus::Done, &now);
        t.updated_at = now;
        t.version = read + 1;
        let reply = Reply::ok(t.clone()).with_version(t.version);
        save(&ctx, &t, Some(read), &reply).await?;
        Ok(reply)
    }
}

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "link_building.crm.task.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Delete a task";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = IdInput<ids::Task>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<ids::Task>) -> ApiResult<Reply<()>> {
        let key = keys::task(ctx.workspace(), &input.id);
        let reply = Reply::no_content();
        match ctx.commit(vec![TxOp::Delete { key, cond: Some(Condition::Exists) }], &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. }) => Err(ApiError::not_found("task_not_found", "task", &input.id)),
            Err(e) => Err(e.into()),
        }
    }
}
