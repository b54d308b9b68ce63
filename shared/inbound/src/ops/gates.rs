//! `link_building.inbound.eval_gate.*`: a workspace's eval gates, every change a new version.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::ListResponse;
use crate::records::{self, Action, Gate, Then};
use crate::{keys, outbox};
use axum::http::StatusCode;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Query, StoreError, TxOp};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

const TAG: &str = "Inbound negotiator";
pub const APPLIES_TO: &str = "link_building.inbound";

/// A gate the body carries well but that cannot work: 422 `invalid_gate`, naming where.
fn invalid_gate(field: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid_field(field, "invalid_gate", message);
    e.status = StatusCode::UNPROCESSABLE_ENTITY;
    e
}

fn check_when(when: &Value) -> ApiResult<()> {
    linkcrm_domain::gates::parse_when(when).map(|_| ()).map_err(|e| invalid_gate(&e.path, e.message))
}

/// An ISO 8601 duration (`PT8H`, `P1D`, `P1DT2H30M`) in seconds.
pub fn duration_secs(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_uppercase();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in date.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'W' => 7 * 86_400,
            'D' => 86_400,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() {
        return None;
    }
    if let Some(t) = time {
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: i64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                'H' => 3600,
                'M' => 60,
                'S' => 1,
                _ => return None,
            };
            any = true;
        }
        if !num.is_empty() {
            return None;
        }
    }
    (any && total > 0 && total <= 90 * 86_400).then_some(total)
}

fn check_then(then: &Then) -> ApiResult<()> {
    match then.action {
        Action::Hold => {
            let until = then
                .until
                .as_deref()
                .ok_or_else(|| invalid_gate("then.until", "hold needs until: a time or an ISO 8601 duration"))?;
            if time::parse(until).is_none() && duration_secs(until).is_none() {
                return Err(invalid_gate(
                    "then.until",
                    "must be an RFC 3339 time or an ISO 8601 duration such as PT8H (at most 90 days)",
                ));
            }
        }
        _ if then.until.is_some() => return Err(invalid_gate("then.until", "applies to the hold action only")),
        _ => {}
    }
    Ok(())
}

fn check_name(name: String) -> ApiResult<String> {
    let n = linkcrm_core::validate::header_text("name", Some(name), 100)?
        .ok_or_else(|| ApiError::invalid_field("name", "invalid_request", "is required"))?;
    Ok(n)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInput {
    #[schemars(length(min = 1, max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: String,
    /// `link_building.inbound` (the default).
    #[schemars(pattern(r"^link_building\.inbound$"))]
    pub applies_to: Option<String>,
    /// `{field, op, value}` (fields: intent, senderDR, amountMentioned (USD), mentionsMoney,
    /// hourOfDay, priorRelationshipStatus, repliedBefore, fromFreeMailProvider, linkCount, subject,
    /// text, fromAddress, fromDomain; ops: eq, ne, lt, lte, gt, gte, in, contains, matches),
    /// `{all: [...]}`, `{any: [...]}`, or `{llm_check: "a yes/no question"}` (0.5 credits each time
    /// it is asked).
    pub when: Value,
    pub then: Then,
    /// Lower runs first (default 100).
    #[schemars(range(min = -1000000, max = 1000000))]
    pub priority: Option<i64>,
    pub enabled: Option<bool>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.inbound.eval_gate.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Add an eval gate: a condition on inbound requests and what to do when it holds";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Gate;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Gate>> {
        let ws = ctx.workspace().to_owned();
        let name = check_name(input.name)?;
        if input.applies_to.as_deref().is_some_and(|a| a != APPLIES_TO) {
            return Err(ApiError::invalid_field("applies_to", "invalid_request", format!("must be {APPLIES_TO}")));
        }
        check_when(&input.when)?;
        check_then(&input.then)?;
        if records::gates(&ctx.app, &ws).await?.len() >= records::MAX_GATES {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_gates",
                format!("A workspace has at most {} eval gates.", records::MAX_GATES),
            ));
        }
        let now = time::now_string();
        let gate = Gate {
            id: linkcrm_domain::new_id(IdKind::EvalGate),
            workspace_id: ws.clone(),
            name,
            applies_to: APPLIES_TO.into(),
            when: input.when,
            then: input.then,
            priority: input.priority.unwrap_or(100),
            enabled: input.enabled.unwrap_or(true),
            version: 1,
            created_at: now.clone(),
            updated_at: now,
        };
        let ops = vec![
            TxOp::put_if(records::gate_item(&gate), Condition::NotExists),
            TxOp::put_if(records::gate_version_item(&gate), Condition::NotExists),
            outbox::event(
                "link_building.inbound.eval_gate.created",
                Some(&ws),
                json!({ "id": gate.id, "version": 1, "gate": gate }),
            ),
        ];
        let reply = Reply::created(gate).with_version(1);
        ctx.commit(ops, &reply).await?;
        Ok(reply)
    }
}

/// The anchor's create path (`POST /v1/link-building/inbound/eval-gate`), the same as `create`.
pub struct CreateAtAnchorPath;
impl Operation for CreateAtAnchorPath {
    const NAME: &'static str = "link_building.inbound.eval_gate.add";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Add an eval gate at the anchor's path (the same as link_building.inbound.eval_gate.create)";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Gate;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Gate>> {
        Create::run(ctx, input).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInput {}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.inbound.eval_gate.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "The workspace's eval gates in the order they run (priority, then age)";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Gate>;

    async fn run(ctx: Ctx, _: ListInput) -> ApiResult<Reply<ListResponse<Gate>>> {
        let data = records::gates(&ctx.app, ctx.workspace()).await?;
        let total = Some(data.len() as u64);
        Ok(Reply::ok(ListResponse { data, next_cursor: None, total }))
    }
}

pub use crate::catalogue::IdInput;

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "link_building.inbound.eval_gate.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "One eval gate (its current version)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::EvalGate>;
    type Output = Gate;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::EvalGate>) -> ApiResult<Reply<Gate>> {
        let g = records::load_gate(&ctx.app, ctx.workspace(), &input.id).await?;
        let v = g.version;
        Ok(Reply::ok(g).with_version(v))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInput {
    pub id: crate::ids::Id<crate::ids::EvalGate>,
    #[schemars(length(min = 1, max = 100), pattern(linkcrm_core::rules::ONE_LINE))]
    pub name: Option<String>,
    pub when: Option<Value>,
    pub then: Option<Then>,
    #[schemars(range(min = -1000000, max = 1000000))]
    pub priority: Option<i64>,
    pub enabled: Option<bool>,
}

pub struct Update;
impl Operation for Update {
    const NAME: &'static str = "link_building.inbound.eval_gate.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Change an eval gate: a new version (the older ones stay readable)";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = Gate;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<Gate>> {
        let ws = ctx.workspace().to_owned();
        let mut g = records::load_gate(&ctx.app, &ws, &input.id).await?;
        let previous = g.clone();
        let before = g.version;
        if ctx.if_match.is_some_and(|v| v != before) {
            return Err(ApiError::precondition_failed(before));
        }
        if let Some(n) = input.name {
            g.name = check_name(n)?;
        }
        if let Some(w) = input.when {
            check_when(&w)?;
            g.when = w;
        }
        if let Some(t) = input.then {
            check_then(&t)?;
            g.then = t;
        }
        if let Some(p) = input.priority {
            g.priority = p;
        }
        if let Some(e) = input.enabled {
            g.enabled = e;
        }
        g.version = before + 1;
        g.updated_at = time::now_string();
        let ops = vec![
            TxOp::put_if(records::gate_item(&g), Condition::Equals("version".into(), json!(before))),
            TxOp::put_if(records::gate_version_item(&g), Condition::NotExists),
            outbox::event(
                "link_building.inbound.eval_gate.updated",
                Some(&ws),
                json!({ "id": g.id, "version": g.version, "gate": g, "previous": previous }),
            ),
        ];
        match ctx.app.store.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                return Err(ApiError::conflict("conflict", "The gate changed while this request ran; read it again."))
            }
            Err(e) => return Err(e.into()),
        }
        let v = g.version;
        Ok(Reply::ok(g).with_version(v))
    }
}

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "link_building.inbound.eval_gate.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Remove an eval gate (its versions stay readable, for the decisions that cite them)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::EvalGate>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::EvalGate>) -> ApiResult<Reply<()>> {
        let ws = ctx.workspace().to_owned();
        let g = records::load_gate(&ctx.app, &ws, &input.id).await?;
        let ops = vec![
            TxOp::delete(keys::gate(&ws, &g.id)),
            outbox::event(
                "link_building.inbound.eval_gate.deleted",
                Some(&ws),
                json!({ "id": g.id, "version": g.version, "previous": g }),
            ),
        ];
        ctx.app.store.transact(ops).await?;
        Ok(Reply::no_content())
    }
}

pub struct Versions;
impl Operation for Versions {
    const NAME: &'static str = "link_building.inbound.eval_gate.versions";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Every version of an eval gate, oldest first (also of a deleted one)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::EvalGate>;
    type Output = ListResponse<Gate>;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::EvalGate>) -> ApiResult<Reply<ListResponse<Gate>>> {
        linkcrm_crm::write::check_id(IdKind::EvalGate, "id", &input.id)?;
        let page = ctx.app.store.query(Query::partition(keys::gate_versions_pk(&input.id)).limit(1000)).await?;
        let data: Vec<Gate> = page
            .items
            .iter()
            .map(|i| linkcrm_core::items::parse("eval gate version", i))
            .collect::<Result<Vec<Gate>, _>>()?
            .into_iter()
            .filter(|g| g.workspace_id == ctx.workspace())
            .collect();
        if data.is_empty() {
            return Err(ApiError::not_found("eval_gate_not_found", "eval gate", &input.id));
        }
        let total = Some(data.len() as u64);
        Ok(Reply::ok(ListResponse { data, next_cursor: None, total }))
    }
}
