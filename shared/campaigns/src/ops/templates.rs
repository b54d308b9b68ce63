//! `link_building.templates.*`: a workspace's email templates (subject and body with the
//! placeholders of CONTRACT "Templates and writing"), and a preview rendered for a relationship.
//! Item `WS#<ws>#TPLS` / `<tpl id>`: the list is one Query.

use crate::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::{self, ListResponse};
use crate::placeholders::{self, TemplateError, Values};
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_crm::records::{self, obj, str_of};
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

const TAG: &str = "Templates";
const NAME_MAX: usize = 200;
const SUBJECT_MAX: usize = 998;
const BODY_MAX: usize = 100_000;

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub category: Option<String>,
    /// The placeholders subject and body use, in order of first use.
    pub placeholders: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

fn view(item: &Item) -> ApiResult<Template> {
    Ok(records::parse("template", item)?)
}

/// Checks a subject or body for unknown placeholders: 400 `invalid_template` naming it.
pub fn check(field: &str, text: &str) -> ApiResult<Vec<String>> {
    placeholders::used(text).map_err(|TemplateError::Unknown(name)| {
        ApiError::invalid_field(
            field,
            "invalid_template",
            format!("unknown placeholder {{{name}}}; known: {}", placeholders::NAMES.join(", ")),
        )
        .with_details(json!({ "placeholder": name }))
    })
}

fn placeholders_of(subject: &str, body: &str) -> ApiResult<Vec<String>> {
    let mut names = check("subject", subject)?;
    for n in check("body", body)? {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

fn required(field: &str, v: Option<String>) -> ApiResult<String> {
    v.ok_or_else(|| ApiError::invalid_field(field, "invalid_request", "is required"))
}

/// Template `id` of the caller's workspace (another's reads as not found).
pub async fn load(ctx: &Ctx, id: &str) -> ApiResult<Item> {
    ctx.app
        .store
        .get(&keys::template(ctx.workspace(), id))
        .await?
        .ok_or_else(|| ApiError::not_found("template_not_found", "template", id))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: String,
    #[schemars(length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: String,
    #[schemars(length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: String,
    #[schemars(length(max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub category: Option<String>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.templates.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Create an email template (subject and body with placeholders such as {firstName})";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Template;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Template>> {
        let ws = ctx.workspace().to_owned();
        let name = required("name", linkcrm_core::validate::header_text("name", Some(input.name), NAME_MAX)?)?;
        let subject =
            required("subject", linkcrm_core::validate::header_text("subject", Some(input.subject), SUBJECT_MAX)?)?;
        let body = required("body", linkcrm_core::validate::text("body", Some(input.body), BODY_MAX)?)?;
        let category = linkcrm_core::validate::header_text("category", input.category, 100)?;
        let used = placeholders_of(&subject, &body)?;
        let id = linkcrm_domain::new_id(linkcrm_domain::IdKind::Template);
        let now = time::now_string();
        let key = keys::template(&ws, &id);
        let item = obj(json!({
            "PK": key.pk, "SK": key.sk, "entity": "template", "id": id, "workspaceId": ws, "name": name,
            "subject": subject, "body": body, "category": category, "placeholders": used,
            "createdAt": now, "updatedAt": now, "version": 1,
        }));
        let reply = Reply::created(view(&item)?).with_version(1);
        ctx.commit(vec![TxOp::put_if(item, Condition::NotExists)], &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Only templates of this category.
    #[schemars(length(max = 100))]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.templates.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List the workspace's templates";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Template>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Template>>> {
        let limit = list::limit(input.limit)?;
        let ws = ctx.workspace();
        let scope = format!("{}#{ws}#{}", Self::NAME, input.category.as_deref().unwrap_or(""));
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = Query::partition(keys::templates_pk(ws)).backward().limit(limit).after(cursor);
        if let Some(c) = &input.category {
            q = q.filter(Condition::Equals("category".into(), json!(c)));
        }
        let page = ctx.app.store.query(q).await?;
        let data = page.items.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.templates.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one template";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Template>;
    type Output = Template;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Template>) -> ApiResult<Reply<Template>> {
        let item = load(&ctx, &input.id).await?;
        let v = view(&item)?;
        let version = v.version;
        Ok(Reply::ok(v).with_version(version))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub id: crate::ids::Id<crate::ids::Template>,
    #[schemars(length(min = 1, max = 200), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: Option<String>,
    #[schemars(length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: Option<String>,
    #[schemars(length(min = 1, max = 100000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub body: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "lenient::nullable")]
    #[schemars(with = "Option<String>", length(max = 100))]
    pub category: Option<Option<String>>,
}

pub struct Update_;
impl Operation for Update_ {
    const NAME: &'static str = "link_building.templates.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Change a template (name, subject, body, category); honours If-Match";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = Template;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Template>> {
        let item = load(&ctx, &input.id).await?;
        let current = view(&item)?;
        if let Some(v) = ctx.if_match.filter(|v| *v != current.version) {
            let _ = v;
            return Err(ApiError::precondition_failed(current.version));
        }
        let name = match input.name {
            Some(n) => required("name", linkcrm_core::validate::header_text("name", Some(n), NAME_MAX)?)?,
            None => current.name.clone(),
        };
        let subject = match input.subject {
            Some(s) => required("subject", linkcrm_core::validate::header_text("subject", Some(s), SUBJECT_MAX)?)?,
            None => current.subject.clone(),
        };
        let body = match input.body {
            Some(b) => required("body", linkcrm_core::validate::text("body", Some(b), BODY_MAX)?)?,
            None => current.body.clone(),
        };
        let category = match input.category {
            Some(c) => linkcrm_core::validate::header_text("category", c, 100)?,
            None => current.category.clone(),
        };
        let used = placeholders_of(&subject, &body)?;
        let now = time::now_string();
        let update = Update::new()
            .set("name", name)
            .set("subject", subject)
            .set("body", body)
            .set("category", json!(category))
            .set("placeholders", json!(used))
            .set("updatedAt", now)
            .add("version", 1);
        let key = keys::template(ctx.workspace(), &input.id);
        match ctx
            .app
            .store
            .transact(vec![TxOp::update_if(key, update, Condition::VersionEquals(current.version))])
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(ApiError::conflict(
                    "conflict",
                    "The template changed while this request ran; read it again.",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let v = view(&load(&ctx, &input.id).await?)?;
        let version = v.version;
        Ok(Reply::ok(v).with_version(version))
    }
}

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "link_building.templates.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Campaigns;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Delete a template (campaigns keep the copy they were started with)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Template>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Template>) -> ApiResult<Reply<()>> {
        let key = keys::template(ctx.workspace(), &input.id);
        match ctx.app.store.transact(vec![TxOp::Delete { key, cond: Some(Condition::Exists) }]).await {
            Ok(()) => Ok(Reply::no_content()),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(ApiError::not_found("template_not_found", "template", &input.id))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderInput {
    pub id: crate::ids::Id<crate::ids::Template>,
    pub relationship_id: crate::ids::Id<crate::ids::Relationship>,
    /// The relationship's best contact when absent (the account's `bestContactId`, else its first
    /// contact with an email).
    pub contact_id: Option<crate::ids::Id<crate::ids::Contact>>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub subject: String,
    pub body: String,
    pub contact_id: Option<String>,
    /// Placeholders with no value and no fallback: a campaign makes no draft for this partner
    /// (`missing_placeholder_value`). The preview shows them as written.
    pub missing_placeholders: Vec<String>,
}

pub struct Render;
impl Operation for Render {
    const NAME: &'static str = "link_building.templates.render";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Preview a template rendered for a relationship and contact (free)";
    const TAG: &'static str = TAG;
    type Input = RenderInput;
    type Output = Rendered;

    async fn run(ctx: Ctx, input: RenderInput) -> ApiResult<Reply<Rendered>> {
        let tpl = view(&load(&ctx, &input.id).await?)?;
        let rel = linkcrm_crm::write::load_relationship(&ctx.app, ctx.workspace(), &input.relationship_id).await?;
        let contact = match &input.contact_id {
            Some(c) => Some(crate::ops::drafting::contact_at(&ctx.app, &rel, c).await?),
            None => crate::ops::drafting::best_contact(&ctx.app, &rel).await?,
        };
        let ws_name = str_of(&ctx.workspace_record().item, "name");
        let values = crate::ops::drafting::values(&ctx.app, ws_name, &rel, contact.as_ref(), None, None).await?;
        let (subject, missing_s) = preview(&tpl.subject, &values);
        let (body, missing_b) = preview(&tpl.body, &values);
        let mut missing = missing_s;
        for m in missing_b {
            if !missing.contains(&m) {
                missing.push(m);
            }
        }
        let contact_id = contact.as_ref().and_then(|c| str_of(c, "id")).map(str::to_owned);
        Ok(Reply::ok(Rendered { subject, body, contact_id, missing_placeholders: missing }))
    }
}

/// A preview: what renders, with the missing placeholders left as written.
fn preview(t: &str, values: &Values) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut missing = Vec::new();
    for p in placeholders::parse(t).unwrap_or_default() {
        match p {
            placeholders::Piece::Text(s) => out.push_str(s),
            placeholders::Piece::Slot { name, fallback } => match (values.0.get(name), fallback) {
                (Some(v), _) => out.push_str(v),
                (None, Some(f)) => out.push_str(f),
                (None, None) => {
                    out.push_str(&format!("{{{name}}}"));
                    if !missing.contains(&name.to_owned()) {
                        missing.push(name.to_owned());
                    }
                }
            },
        }
    }
    (out, missing)
}
