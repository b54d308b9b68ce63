//! The inbound context's records: settings, partner modes, eval gates.

use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::App;
use linkcrm_core::items::{obj, str_of};
use linkcrm_storage::{Item, Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How the negotiator works for a workspace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The master switch: off, requests are only recorded.
    pub enabled: bool,
    /// Send replies without a person when every gate passes (the workspace's explicit decision:
    /// such replies do not wait for `outreach_send` approval). Only a key with
    /// `workspaces:admin` may turn it on.
    pub autonomous: bool,
    /// `professional`, `friendly`, `casual` or `formal`.
    pub default_tone: String,
    /// What to steer replies towards (e.g. "we prefer link swaps to paid posts").
    pub angles: Vec<String>,
    /// Only requests that arrive in these mailboxes (all when empty).
    pub mailbox_ids: Vec<String>,
    /// Declined requests get a short polite reply (2 credits) instead of none.
    pub send_declines: bool,
    /// The workspace's inbound campaign (`icmp_…`), made when first enabled.
    pub campaign_id: Option<String>,
    pub updated_at: Option<String>,
}

pub async fn load_settings(app: &App, ws: &str) -> ApiResult<Settings> {
    match app.store.get(&keys::settings(ws)).await? {
        Some(item) => Ok(linkcrm_core::items::parse("inbound settings", &item)?),
        None => Ok(defaults()),
    }
}

/// A workspace's settings before it changed any: off.
pub fn defaults() -> Settings {
    Settings { default_tone: "professional".into(), ..Settings::default() }
}

pub fn settings_item(ws: &str, s: &Settings, version: i64) -> Item {
    let k = keys::settings(ws);
    let mut item = obj(json!(s));
    item.insert("PK".into(), json!(k.pk));
    item.insert("SK".into(), json!(k.sk));
    item.insert("entity".into(), json!("inboundSettings"));
    item.insert("workspaceId".into(), json!(ws));
    item.insert("version".into(), json!(version));
    item
}

/// How replies sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Professional,
    Friendly,
    Casual,
    Formal,
}

impl Tone {
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Professional => "professional",
            Tone::Friendly => "friendly",
            Tone::Casual => "casual",
            Tone::Formal => "formal",
        }
    }
}

/// A partner's mode for one workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Replies go out on their own when every gate passes.
    AutoRespond,
    /// A person decides every reply.
    AlwaysEscalate,
    /// Requests are declined (with a short reply when the workspace sends declines).
    DeclineByDefault,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::AutoRespond => "auto_respond",
            Mode::AlwaysEscalate => "always_escalate",
            Mode::DeclineByDefault => "decline_by_default",
        }
    }
}

/// The partner's own mode, if the workspace set one.
pub async fn account_mode(app: &App, ws: &str, account: &str) -> ApiResult<Option<Mode>> {
    let item = app.store.get(&keys::account_mode(ws, account)).await?;
    Ok(item.and_then(|i| i.get("mode").cloned()).and_then(|m| serde_json::from_value(m).ok()))
}

/// What a gate does when its condition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    EscalateToApproval,
    Decline,
    MarkSpam,
    TagAndContinue,
    Hold,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::EscalateToApproval => "escalate_to_approval",
            Action::Decline => "decline",
            Action::MarkSpam => "mark_spam",
            Action::TagAndContinue => "tag_and_continue",
            Action::Hold => "hold",
        }
    }
}

/// `then`: the action, why, and for `hold` until when (a time, or an ISO 8601 duration such as
/// `PT8H` from when the request arrived); for `tag_and_continue` the tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Then {
    pub action: Action,
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
    #[schemars(length(max = 64))]
    pub until: Option<String>,
    #[schemars(length(max = 64))]
    pub tag: Option<String>,
}

/// An eval gate as the API shows it (the current version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// `gate_…`
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// Always `link_building.inbound`.
    #[serde(rename = "applies_to")]
    pub applies_to: String,
    /// `{field, op, value}`, `{all: [...]}`, `{any: [...]}` or `{llm_check: "..."}`.
    pub when: Value,
    pub then: Then,
    /// Lower runs first (ties: older first).
    pub priority: i64,
    pub enabled: bool,
    /// Every change makes a new version; a decision records the version that fired.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

pub fn gate_item(g: &Gate) -> Item {
    let k = keys::gate(&g.workspace_id, &g.id);
    let mut item = obj(json!(g));
    item.insert("PK".into(), json!(k.pk));
    item.insert("SK".into(), json!(k.sk));
    item.insert("entity".into(), json!("evalGate"));
    item
}

pub fn gate_version_item(g: &Gate) -> Item {
    let k = keys::gate_version(&g.id, g.version);
    let mut item = obj(json!(g));
    item.insert("PK".into(), json!(k.pk));
    item.insert("SK".into(), json!(k.sk));
    item.insert("entity".into(), json!("evalGateVersion"));
    item
}

/// A workspace has at most this many gates.
pub const MAX_GATES: usize = 100;

/// The workspace's gates in the order they run: priority, then age.
pub async fn gates(app: &App, ws: &str) -> ApiResult<Vec<Gate>> {
    let page = app.store.query(Query::partition(keys::gates_pk(ws)).limit(MAX_GATES)).await?;
    let mut out: Vec<Gate> =
        page.items.iter().map(|i| linkcrm_core::items::parse("eval gate", i)).collect::<Result<_, _>>()?;
    out.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.created_at.cmp(&b.created_at)));
    Ok(out)
}

pub async fn load_gate(app: &App, ws: &str, id: &str) -> ApiResult<Gate> {
    linkcrm_crm::write::check_id(linkcrm_domain::IdKind::EvalGate, "id", id)?;
    match app.store.get(&keys::gate(ws, id)).await? {
        Some(item) if str_of(&item, "workspaceId") == Some(ws) => Ok(linkcrm_core::items::parse("eval gate", &item)?),
        _ => Err(ApiError::not_found("eval_gate_not_found", "eval gate", id)),
    }
}
