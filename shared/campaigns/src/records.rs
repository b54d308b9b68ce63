//! Campaign records as stored and as the API shows them.

use crate::keys;
use linkcrm_crm::records::{int_of, str_of};
use linkcrm_domain::campaign::Tally;
use linkcrm_storage::Item;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Campaign status (CONTRACT "Campaigns").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Paused,
    Completed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Active, Status::Paused, Status::Completed, Status::Cancelled];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Whether the campaign is over (nothing of it is sent any more).
    pub fn ended(self) -> bool {
        matches!(self, Status::Completed | Status::Cancelled)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Serp,
    Competitor,
    Inbound,
    Custom,
}

impl Type {
    pub const ALL: [Type; 4] = [Type::Serp, Type::Competitor, Type::Inbound, Type::Custom];
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Serp => "serp",
            Type::Competitor => "competitor",
            Type::Inbound => "inbound",
            Type::Custom => "custom",
        }
    }
    pub fn parse(s: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

pub fn status_of(item: &Item) -> Status {
    str_of(item, "status").and_then(Status::parse).unwrap_or(Status::Active)
}

/// The counters as stored on the campaign record.
pub fn tally_of(item: &Item) -> Tally {
    let n = |k: &str| int_of(item, k).unwrap_or(0);
    Tally {
        drafted: n("drafted"),
        sent: n("sent"),
        bounced: n("bounced"),
        hard_bounced: n("hardBounced"),
        opened: n("opened"),
        replied: n("replied"),
        placed: n("placed"),
    }
}

/// A campaign in a list (seed 001's shape).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSummary {
    pub id: String,
    pub r#type: Type,
    pub name: String,
    /// Custom campaigns: what it is for, and its target keywords.
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub created_at: String,
    pub status: Status,
    pub drafts_count: i64,
    pub sent_count: i64,
    pub replied_count: i64,
    pub placed_count: i64,
}

/// Counts and rates (CONTRACT: rates are count / sent, two decimals, 0 when nothing was sent).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub drafted: i64,
    pub sent: i64,
    pub delivered: i64,
    pub opened: i64,
    pub replied: i64,
    pub placed: i64,
    pub open_rate: f64,
    pub reply_rate: f64,
    pub placement_rate: f64,
}

impl Summary {
    pub fn of(t: &Tally) -> Summary {
        Summary {
            drafted: t.drafted,
            sent: t.sent,
            delivered: t.sent - t.bounced,
            opened: t.opened,
            replied: t.replied,
            placed: t.placed,
            open_rate: Tally::rate(t.opened, t.sent),
            reply_rate: Tally::rate(t.replied, t.sent),
            placement_rate: Tally::rate(t.placed, t.sent),
        }
    }
}

/// One campaign with its settings and summary.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: String,
    pub r#type: Type,
    pub name: String,
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub workspace_id: String,
    pub status: Status,
    pub pause_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Drafting: a template, or a subject and body; the mailbox sends go from.
    pub settings: Value,
    /// Relationships in the campaign, and drafts still waiting for a decision.
    pub members_count: i64,
    pub awaiting_approval_count: i64,
    pub drafts_count: i64,
    pub sent_count: i64,
    pub replied_count: i64,
    pub placed_count: i64,
    pub summary: Summary,
    /// SERP and competitor campaigns: the invocation running the pipeline (its `result` lists
    /// every domain researched and what became of it).
    pub invocation_id: Option<String>,
    /// SERP and competitor campaigns: `researching`, `screening`, `discovering`, `drafting`,
    /// `ready` (every partner has its draft or its reason).
    pub stage: Option<String>,
    /// Domains the research found (SERP and competitor campaigns).
    pub candidates_count: Option<i64>,
}

fn keywords_of(item: &Item) -> Vec<String> {
    match item.get("keywords") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

pub fn summary_view(item: &Item) -> CampaignSummary {
    let t = tally_of(item);
    CampaignSummary {
        id: str_of(item, "id").unwrap_or_default().to_owned(),
        r#type: str_of(item, "type").and_then(Type::parse).unwrap_or(Type::Custom),
        name: str_of(item, "name").unwrap_or_default().to_owned(),
        description: str_of(item, "description").map(str::to_owned),
        keywords: keywords_of(item),
        created_at: str_of(item, "createdAt").unwrap_or_default().to_owned(),
        status: status_of(item),
        drafts_count: t.drafted,
        sent_count: t.sent,
        replied_count: t.replied,
        placed_count: t.placed,
    }
}

pub fn view(item: &Item) -> Campaign {
    let t = tally_of(item);
    let s = summary_view(item);
    Campaign {
        id: s.id,
        r#type: s.r#type,
        name: s.name,
        description: s.description,
        keywords: s.keywords,
        workspace_id: str_of(item, "workspaceId").unwrap_or_default().to_owned(),
        status: s.status,
        pause_reason: str_of(item, "pauseReason").map(str::to_owned),
        created_at: s.created_at,
        updated_at: str_of(item, "updatedAt").unwrap_or_default().to_owned(),
        settings: item.get("settings").cloned().unwrap_or_else(|| json!({})),
        members_count: int_of(item, "members").unwrap_or(0),
        awaiting_approval_count: int_of(item, "awaiting").unwrap_or(0),
        drafts_count: t.drafted,
        sent_count: t.sent,
        replied_count: t.replied,
        placed_count: t.placed,
        summary: Summary::of(&t),
        invocation_id: str_of(item, "invocationId").map(str::to_owned),
        stage: str_of(item, "invocationId").map(|_| stage(item).to_owned()),
        candidates_count: int_of(item, "candidates"),
    }
}

/// A `link_building.campaign.*` event's data: the campaign as the REST API shows it once `change`
/// (the transaction's update of its item; `None` for a new item) is applied, its `version`, and
/// `previous` (the status before) when the status changes. `extra` fields (`reason`, counts) are
/// added at the top level beside `id`, `type`, `name`, `from` and `to`.
pub fn event_data(item: &Item, change: Option<&linkcrm_storage::Update>, extra: Value) -> Value {
    let mut after = item.clone();
    if let Some(u) = change {
        if let Err(e) = u.apply(&mut after) {
            tracing::error!(error = %e, "campaign update does not apply to its own item");
        }
    }
    let (before, now) = (status_of(item), status_of(&after));
    let view = view(&after);
    let mut data = json!({
        "id": view.id, "type": view.r#type, "name": view.name,
        "version": int_of(&after, "version").unwrap_or(1),
        "campaign": view,
    });
    if change.is_some() && before != now {
        data["from"] = json!(before);
        data["to"] = json!(now);
        data["previous"] = json!({ "status": before });
    }
    if let (Value::Object(d), Value::Object(x)) = (&mut data, extra) {
        d.extend(x);
    }
    data
}

/// Where a SERP or competitor campaign's pipeline is (the marks its stages leave).
fn stage(item: &Item) -> &'static str {
    let has = |k: &str| item.get(k).is_some();
    if has("pipelineDoneAt") || has("draftsReadyAt") {
        "ready"
    } else if has("discoveredAt") {
        "drafting"
    } else if has("screenedAt") {
        "discovering"
    } else if has("researchedAt") {
        "screening"
    } else {
        "researching"
    }
}

/// The index attributes of a campaign in `status`.
pub fn index_attrs(ws: &str, id: &str, created_at: &str, status: Status) -> [(&'static str, Value); 4] {
    let sort = keys::created_sort(created_at, id);
    [
        ("GSI1PK", json!(keys::campaigns_pk(ws))),
        ("GSI1SK", json!(sort.clone())),
        ("GSI2PK", json!(keys::campaigns_status_pk(ws, status.as_str()))),
        ("GSI2SK", json!(sort)),
    ]
}

/// Whether the campaign's sends carry the open-tracking pixel (`settings.trackOpens`).
pub fn tracks_opens(item: &Item) -> bool {
    item.get("settings").and_then(|s| s.get("trackOpens")).and_then(Value::as_bool).unwrap_or(false)
}
