//! `workspaces.audit` (an agency reads a workspace's audit log) and `audit.list` (a workspace key
//! reads its own): who changed what, newest first, filtered by operation, key and time.

use super::{SCOPE, TAG};
use linkcrm_core::audit::{self, Entry};
use linkcrm_core::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::ids::{self, Id};
use linkcrm_core::list::ListResponse;
use linkcrm_core::{auth, lenient, rules};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Query, SortKey};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filters {
    /// Only this operation (`link_building.crm.relationship.create`).
    #[schemars(length(min = 1, max = 100), pattern(r"^[a-z_]+(\.[a-z_]+)*$"))]
    pub operation: Option<String>,
    /// Only calls made with this key (`key_…`).
    pub key_id: Option<Id<ids::ApiKey>>,
    /// From this time (RFC 3339).
    #[schemars(pattern(rules::TIMESTAMP))]
    pub since: Option<String>,
    /// Up to this time (RFC 3339).
    #[schemars(pattern(rules::TIMESTAMP))]
    pub until: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceAuditInput {
    pub id: Id<ids::Workspace>,
    #[schemars(length(min = 1, max = 100), pattern(r"^[a-z_]+(\.[a-z_]+)*$"))]
    pub operation: Option<String>,
    pub key_id: Option<Id<ids::ApiKey>>,
    #[schemars(pattern(rules::TIMESTAMP))]
    pub since: Option<String>,
    #[schemars(pattern(rules::TIMESTAMP))]
    pub until: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

async fn list(ctx: &Ctx, ws: &str, f: Filters) -> ApiResult<ListResponse<Entry>> {
    let limit = linkcrm_core::list::limit(f.limit)?;
    let bound = |field: &str, raw: &Option<String>, after: i64| -> ApiResult<Option<String>> {
        match raw {
            None => Ok(None),
            Some(t) => {
                let t = linkcrm_core::validate::time_param(field, t)?;
                let t = time::parse(&t).ok_or_else(ApiError::internal)?;
                Ok(Some(linkcrm_domain::id::bound_at(IdKind::Audit, t.timestamp_millis() + after)))
            }
        }
    };
    let (lo, hi) = (bound("since", &f.since, 0)?, bound("until", &f.until, 1)?);
    let sk = match (lo, hi) {
        (Some(l), Some(h)) => SortKey::Between(l, h),
        (Some(l), None) => SortKey::AtLeast(l),
        (None, Some(h)) => SortKey::Before(h),
        (None, None) => SortKey::All,
    };
    let mut conds = Vec::new();
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    };
    if f.operation.as_deref().is_some_and(|o| !name_ok(o)) {
        return Err(ApiError::invalid_field(
            "operation",
            "invalid_request",
            "must be an operation name such as link_building.crm.relationship.create",
        ));
    }
    if let Some(op) = &f.operation {
        conds.push(Condition::Equals("operation".into(), json!(op)));
    }
    if let Some(k) = &f.key_id {
        conds.push(Condition::Equals("keyId".into(), json!(k.as_str())));
    }
    let scope = format!(
        "audit#{ws}#{:?}#{:?}#{:?}#{:?}",
        f.operation,
        f.key_id.as_ref().map(|k| k.as_str().to_owned()),
        f.since,
        f.until
    );
    let cursor = ctx.app.open_cursor(&scope, f.cursor.as_deref())?;
    let mut q = Query::partition(audit::partition(ws)).sk(sk).backward().limit(limit).after(cursor);
    if !conds.is_empty() {
        q = q.filter(if conds.len() == 1 { conds.remove(0) } else { Condition::And(conds) });
    }
    let page = ctx.app.store.query(q).await?;
    let data = page
        .items
        .iter()
        .map(|i| linkcrm_core::items::parse::<Entry>("audit entry", i).map_err(ApiError::from))
        .collect::<ApiResult<_>>()?;
    Ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None })
}

pub struct WorkspaceAudit;
impl Operation for WorkspaceAudit {
    const NAME: &'static str = "workspaces.audit";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const AGENCY_ONLY: bool = true;
    const SUMMARY: &'static str =
        "A workspace's audit log, newest first: every successful write with its key, operation, targets, request id and idempotency key";
    const TAG: &'static str = TAG;
    type Input = WorkspaceAuditInput;
    type Output = ListResponse<Entry>;

    async fn run(ctx: Ctx, input: WorkspaceAuditInput) -> ApiResult<Reply<ListResponse<Entry>>> {
        let record = auth::authorize_workspace(&ctx.app, &ctx.caller, input.id.as_str()).await?;
        let f = Filters {
            operation: input.operation,
            key_id: input.key_id,
            since: input.since,
            until: input.until,
            limit: input.limit,
            cursor: input.cursor,
        };
        Ok(Reply::ok(list(&ctx, record.id(), f).await?))
    }
}

pub struct OwnAudit;
impl Operation for OwnAudit {
    const NAME: &'static str = "audit.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "The audit log of the key's workspace (or X-Workspace-Id's), newest first";
    const TAG: &'static str = TAG;
    type Input = Filters;
    type Output = ListResponse<Entry>;

    async fn run(ctx: Ctx, input: Filters) -> ApiResult<Reply<ListResponse<Entry>>> {
        let ws = ctx.workspace().to_owned();
        Ok(Reply::ok(list(&ctx, &ws, input).await?))
    }
}
