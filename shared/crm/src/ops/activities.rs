//! `link_building.crm.activity.*`: calls, emails, meetings and notes logged by hand against an
//! opportunity or a relationship. On a relationship (directly, or through a linked opportunity)
//! an activity is an ACTIVITY_LOGGED event of that relationship, written with its log record in
//! one transaction; it moves no status and no shared counter (a logged "email" is not a send).
//! An activity of an unlinked opportunity is the log record alone.

use super::TAG_PIPELINE;
use crate::catalogue::{Effect, Family, OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, Id};
use crate::list::{self, ListResponse};
use crate::pipeline::OppRecord;
use crate::records::{self, obj, str_of, RelationshipRecord};
use crate::write::{self, NewEvent, Ride};
use crate::{keys, lenient};
use axum::http::StatusCode;
use linkcrm_domain::enums::EventType;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Create>(), OpSpec::of::<List>()]
}

const SUBJECT_MAX: usize = 300;
const BODY_MAX: usize = 10_000;
/// How far ahead of the server's clock `occurredAt` may be.
const FUTURE_SKEW_SECS: i64 = 300;

/// What kind of activity was logged (CONTRACT: ACTIVITY_LOGGED `metadata.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Note,
    Task,
}

/// What an activity or a task is about: an opportunity (and, when linked, its relationship) or a
/// relationship.
pub(crate) struct Target {
    pub opp: Option<OppRecord>,
    pub rel: Option<RelationshipRecord>,
}

impl Target {
    pub fn opportunity_id(&self) -> Option<&str> {
        self.opp.as_ref().map(|o| o.id())
    }
    pub fn relationship_id(&self) -> Option<&str> {
        self.rel.as_ref().map(|r| r.id())
    }
}

/// The opportunity and/or relationship named (both must agree), and the contact if one is named.
pub(crate) async fn target(
    ctx: &Ctx,
    opportunity: Option<&str>,
    relationship: Option<&str>,
    contact: Option<&str>,
    required: bool,
) -> ApiResult<Target> {
    let ws = ctx.workspace();
    let opp = match opportunity {
        Some(id) => Some(
            ctx.app
                .store
                .get(&keys::opportunity(ws, id))
                .await?
                .map(OppRecord)
                .ok_or_else(|| ApiError::not_found("opportunity_not_found", "opportunity", id))?,
        ),
        None => None,
    };
    let rel_id = match (relationship, opp.as_ref().and_then(|o| o.relationship_id())) {
        (Some(a), Some(b)) if a != b => {
            return Err(super::unprocessable(
                "relationshipId",
                "invalid_request",
                "the opportunity is linked to another relationship",
            ));
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    if required && opp.is_none() && rel_id.is_none() {
        return Err(super::unprocessable(
            "opportunityId",
            "invalid_request",
            "name opportunityId, relationshipId or companyId",
        ));
    }
    let rel = match rel_id {
        Some(r) => Some(write::load_relationship(&ctx.app, ws, &r).await?),
        None => None,
    };
    if let Some(c) = contact {
        if ctx.app.store.get(&keys::contact(c)).await?.is_none() {
            return Err(ApiError::not_found("contact_not_found", "contact", c));
        }
    }
    Ok(Target { opp, rel })
}

/// An activity as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// The ACTIVITY_LOGGED event's id when it is on a relationship.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    pub subject: String,
    pub body: Option<String>,
    pub occurred_at: String,
    pub opportunity_id: Option<String>,
    pub relationship_id: Option<String>,
    #[serde(default)]
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub created_at: String,
}

fn view(item: &Item) -> ApiResult<Activity> {
    Ok(records::parse("activity", item)?)
}

fn activity_item(ws: &str, a: &Activity) -> Item {
    let key = keys::activity(ws, &a.id);
    let mut item = obj(json!(a));
    for (k, v) in
        [("PK", json!(key.pk)), ("SK", json!(key.sk)), ("entity", json!("activity")), ("workspaceId", json!(ws))]
    {
        item.insert(k.into(), v);
    }
    if let Some(o) = &a.opportunity_id {
        item.insert("GSI1PK".into(), json!(keys::opportunity_activities_pk(ws, o)));
        item.insert("GSI1SK".into(), json!(a.id));
    }
    if let Some(r) = &a.relationship_id {
        item.insert("GSI2PK".into(), json!(keys::relationship_activities_pk(ws, r)));
        item.insert("GSI2SK".into(), json!(a.id));
    }
    if let Some(c) = &a.contact_id {
        item.insert("GSI3PK".into(), json!(keys::contact_activities_pk(ws, c)));
        item.insert("GSI3SK".into(), json!(a.id));
    }
    if let Some(c) = &a.company_id {
        item.insert("GSI4PK".into(), json!(keys::company_activities_pk(ws, c)));
        item.insert("GSI4SK".into(), json!(a.id));
    }
    item
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    /// call, email, meeting, note or task.
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    #[schemars(length(min = 1, max = 300), pattern(linkcrm_core::rules::ONE_LINE))]
    pub subject: String,
    #[schemars(length(max = 10000))]
    pub body: Option<String>,
    /// When it happened (now when absent; not in the future).
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub occurred_at: Option<String>,
    pub opportunity_id: Option<Id<ids::Opportunity>>,
    pub relationship_id: Option<Id<ids::Relationship>>,
    /// A company: with a domain, the activity is on the workspace's relationship with it.
    pub company_id: Option<Id<ids::Company>>,
    pub contact_id: Option<Id<ids::Contact>>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "link_building.crm.activity.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Log a call, email, meeting or note against an opportunity or relationship (an ACTIVITY_LOGGED event; it moves no status)";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = CreateInput;
    type Output = Activity;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Activity>> {
        let ws = ctx.workspace().to_owned();
        let subject = linkcrm_core::validate::header_text("subject", Some(input.subject), SUBJECT_MAX)?
            .ok_or_else(|| ApiError::invalid_field("subject", "invalid_request", "is required"))?;
        let body = linkcrm_core::validate::text("body", input.body, BODY_MAX)?;
        let occurred_at = match &input.occurred_at {
            None => None,
            Some(raw) => {
                let t = time::parse(&linkcrm_core::validate::time_param("occurredAt", raw)?).ok_or_else(|| {
                    ApiError::invalid_field("occurredAt", "invalid_request", "must be an RFC 3339 time or a date")
                })?;
                if (t - time::now()).num_seconds() > FUTURE_SKEW_SECS {
                    return Err(ApiError::invalid_field("occurredAt", "invalid_request", "cannot be in the future"));
                }
                Some(time::format(t))
            }
        };
        let mut t = target(
            &ctx,
            input.opportunity_id.as_deref(),
            input.relationship_id.as_deref(),
            input.contact_id.as_deref(),
            input.company_id.is_none(),
        )
        .await?;
        // A company's activity: the company named, or the opportunity's.
        let company_id = match &input.company_id {
            Some(c) => Some(c.to_string()),
            None => t.opp.as_ref().and_then(|o| str_of(&o.0, "companyId")).map(str::to_owned),
        };
        if let (Some(c), None) = (&input.company_id, &t.rel) {
            let (_, rel) = super::companies::company_link(&ctx, c).await?;
            t.rel = rel;
        }
        let now = time::now_string();
        let base = Activity {
            id: String::new(),
            kind: input.kind,
            subject: subject.clone(),
            body: body.clone(),
            occurred_at: occurred_at.clone().unwrap_or_else(|| now.clone()),
            opportunity_id: t.opportunity_id().map(str::to_owned),
            relationship_id: t.relationship_id().map(str::to_owned),
            company_id,
            contact_id: input.contact_id.as_ref().map(|c| c.to_string()),
            created_at: now.clone(),
        };
        let Some(rel) = t.rel else {
            let a = Activity { id: linkcrm_domain::new_id(IdKind::Event), ..base };
            let reply = Reply::created(a.clone());
            return match ctx.commit(vec![TxOp::put_if(activity_item(&ws, &a), Condition::NotExists)], &reply).await {
                Ok(()) => Ok(reply),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    Err(ApiError::conflict("conflict", "The activity was being written concurrently; retry."))
                }
                Err(e) => Err(e.into()),
            };
        };
        let kind = serde_json::to_value(input.kind).map_err(|e| records::corrupt("activity", e))?;
        let new = NewEvent {
            r#type: EventType::ActivityLogged,
            contact_id: base.contact_id.clone(),
            subject: Some(subject),
            content: body,
            metadata: Some(json!({ "kind": kind, "opportunityId": base.opportunity_id, "companyId": base.company_id })),
            occurred_at,
        };
        // The log record rides in the event's transaction under the event's id (rebuilt on every
        // attempt), with the idempotent answer when the request has a key.
        let pending = ctx.idempotency.clone();
        let template = base.clone();
        let ws_ride = ws.clone();
        let ride = Ride {
            ops: Some(Box::new(move |event: &Item| {
                let a = Activity {
                    id: str_of(event, "id").unwrap_or_default().to_owned(),
                    occurred_at: str_of(event, "occurredAt").unwrap_or_default().to_owned(),
                    ..template.clone()
                };
                let mut ops = vec![TxOp::put_if(activity_item(&ws_ride, &a), Condition::NotExists)];
                if let Some(p) = &pending {
                    ops.push(p.done_part(Some(StatusCode::CREATED), Some(json!(a)), None));
                }
                Ok(ops)
            })),
            ..Ride::default()
        };
        let rel_id = rel.id().to_owned();
        let event = write::record_event(&ctx.app, &ctx.caller.agency_id, &ws, &rel_id, new, ride, Some(rel)).await?;
        if let Some(p) = &ctx.idempotency {
            p.mark_committed();
        }
        Ok(Reply::created(Activity {
            id: str_of(&event, "id").unwrap_or_default().to_owned(),
            occurred_at: str_of(&event, "occurredAt").unwrap_or_default().to_owned(),
            ..base
        }))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub opportunity_id: Option<Id<ids::Opportunity>>,
    pub relationship_id: Option<Id<ids::Relationship>>,
    pub company_id: Option<Id<ids::Company>>,
    pub contact_id: Option<Id<ids::Contact>>,
    /// Only activities logged at or after this time.
    #[schemars(pattern(linkcrm_core::rules::TIME))]
    pub since: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.activity.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "List logged activities, newest first, of the workspace, an opportunity, a relationship or a contact";
    const TAG: &'static str = TAG_PIPELINE;
    type Input = ListInput;
    type Output = ListResponse<Activity>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Activity>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let since = input.since.as_deref().map(|s| linkcrm_core::validate::time_param("since", s)).transpose()?;
        let (q, filter) = if let Some(o) = &input.opportunity_id {
            (Query::index(Index::Gsi1, keys::opportunity_activities_pk(&ws, o)), o.to_string())
        } else if let Some(r) = &input.relationship_id {
            (Query::index(Index::Gsi2, keys::relationship_activities_pk(&ws, r)), r.to_string())
        } else if let Some(c) = &input.contact_id {
            (Query::index(Index::Gsi3, keys::contact_activities_pk(&ws, c)), c.to_string())
        } else if let Some(c) = &input.company_id {
            (Query::index(Index::Gsi4, keys::company_activities_pk(&ws, c)), c.to_string())
        } else {
            (Query::partition(keys::activities_pk(&ws)), String::new())
        };
        let scope = format!(
            "{}#{ws}#{filter}#{:?}#{:?}#{:?}#{:?}#{}",
            Self::NAME,
            input.opportunity_id.as_deref(),
            input.relationship_id.as_deref(),
            input.contact_id.as_deref(),
            input.company_id.as_deref(),
            since.as_deref().unwrap_or("")
        );
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let mut q = q.backward().limit(limit).after(cursor);
        if let Some(s) = &since {
            let ms = time::parse(s).map(|t| t.timestamp_millis()).unwrap_or(0);
            q = q.sk(linkcrm_storage::SortKey::AtLeast(linkcrm_domain::id::bound_at(IdKind::Event, ms)));
        }
        let page = ctx.app.store.query(q).await?;
        let mut data = page.items.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
        // One filter picks the index; the others filter the page as read (it may come back short).
        let same = |want: Option<&str>, have: &Option<String>| want.is_none_or(|w| have.as_deref() == Some(w));
        data.retain(|a| {
            same(input.opportunity_id.as_deref(), &a.opportunity_id)
                && same(input.relationship_id.as_deref(), &a.relationship_id)
                && same(input.contact_id.as_deref(), &a.contact_id)
                && same(input.company_id.as_deref(), &a.company_id)
        });
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}
