//! `workspaces.members.*`: the people of a workspace that records (companies, opportunities,
//! tasks) are owned by or assigned to, and that a key may act for (`me` in the seed 004 dialect).

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::ListResponse;
use crate::{auth, keys};
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

const TAG: &str = "Members";

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: String,
}

fn view(item: &Item) -> ApiResult<Member> {
    Ok(linkcrm_core::items::parse("member", item)?)
}

async fn writable_workspace(ctx: &Ctx, id: &str) -> ApiResult<()> {
    let record = auth::authorize_workspace(&ctx.app, &ctx.caller, id).await?;
    if !record.active() {
        return Err(ApiError::forbidden("workspace_archived", format!("Workspace '{id}' is archived.")));
    }
    Ok(())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    #[schemars(length(min = 1, max = 200), pattern(crate::rules::ONE_LINE))]
    pub name: String,
    #[schemars(length(max = 320), pattern(crate::rules::EMAIL))]
    pub email: Option<String>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "workspaces.members.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Add a member to a workspace (an owner or assignee of records; keys may act for one)";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Member;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Member>> {
        writable_workspace(&ctx, &input.id).await?;
        let name = linkcrm_core::validate::header_text("name", Some(input.name), 200)?
            .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
        let email = match input.email {
            Some(e) => Some(
                linkcrm_domain::normalize::normalize_email(&e)
                    .ok_or_else(|| ApiError::invalid_field("email", "invalid_email", "is not an email address"))?,
            ),
            None => None,
        };
        let m = Member {
            id: linkcrm_domain::new_id(linkcrm_domain::IdKind::Member),
            name,
            email,
            created_at: time::now_string(),
        };
        let key = keys::member(&input.id, &m.id);
        let mut item = linkcrm_core::items::obj(json!(m));
        for (k, v) in [
            ("PK", json!(key.pk)),
            ("SK", json!(key.sk)),
            ("entity", json!("member")),
            ("workspaceId", json!(input.id.as_str())),
        ] {
            item.insert(k.into(), v);
        }
        let reply = Reply::created(m);
        ctx.commit(vec![TxOp::put_if(item, Condition::NotExists)], &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "workspaces.members.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "List a workspace's members (at most 1,000)";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Member>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Member>>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let page = ctx.app.store.query(Query::partition(keys::members_pk(&input.id)).limit(1000)).await?;
        let data = page.items.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
        let total = Some(data.len() as u64);
        Ok(Reply::ok(ListResponse { data, next_cursor: None, total }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    pub member_id: crate::ids::Id<crate::ids::Member>,
}

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "workspaces.members.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Remove a member (records keep the id they were owned by)";
    const TAG: &'static str = TAG;
    type Input = DeleteInput;
    type Output = ();

    async fn run(ctx: Ctx, input: DeleteInput) -> ApiResult<Reply<()>> {
        writable_workspace(&ctx, &input.id).await?;
        let key = keys::member(&input.id, &input.member_id);
        let reply = Reply::no_content();
        match ctx.commit(vec![TxOp::Delete { key, cond: Some(Condition::Exists) }], &reply).await {
            Ok(()) => Ok(reply),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(ApiError::not_found("member_not_found", "member", &input.member_id))
            }
            Err(e) => Err(e.into()),
        }
    }
}
