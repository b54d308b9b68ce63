//! A monitored link and its checks, as stored and as the API shows them.

use crate::keys;
use linkcrm_core::error::{ApiResult, DataResult};
use linkcrm_core::items::{self, obj};
use linkcrm_domain::links::{CheckResult, LinkState, Track};
use linkcrm_storage::Item;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the link must look like: target, anchor and rel as agreed (CONTRACT "Placed links").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Expected {
    /// The page the link must point at: `metadata.targetUrl`, else the relationship's
    /// `ourContent`. `null` when neither is a URL: the link cannot be judged until it is set.
    pub target_url: Option<String>,
    /// The agreed anchor text, if one was agreed (compared ignoring case and spacing).
    pub anchor_text: Option<String>,
    /// The agreed rel: `follow`, or the tokens agreed (`sponsored`, `nofollow`, `ugc`).
    pub rel: String,
}

/// One check as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkCheck {
    /// `lchk_…`
    pub id: String,
    pub link_id: String,
    pub checked_at: String,
    pub result: CheckResult,
    /// `scheduled`, `confirm` (the re-check of a missing link) or `on_demand`.
    pub trigger: String,
    pub http_status: Option<u16>,
    /// The page after redirects.
    pub final_url: Option<String>,
    #[serde(default)]
    pub redirects: Vec<String>,
    /// The link as found: `{href, rel, anchor}`.
    pub found: Option<Value>,
    /// Why, in a few words (the rel found, the robots rule, the status, the guard's refusal).
    pub detail: Option<String>,
    pub duration_ms: u64,
    pub state_before: LinkState,
    pub state_after: LinkState,
    /// The relationship event this check wrote (LINK_LOST, LINK_RESTORED, LINK_CHANGED).
    pub event_id: Option<String>,
    /// `free` (within the month's free checks) or `credits`.
    pub billed: String,
}

/// A monitored placed link as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// `lnk_…`, the same UUID as the LINK_PLACED event it came from.
    pub id: String,
    pub workspace_id: String,
    pub relationship_id: String,
    pub account_id: String,
    /// The campaign named by the LINK_PLACED (`metadata.campaignId`), if any.
    pub campaign_id: Option<String>,
    /// The LINK_PLACED event.
    pub event_id: String,
    /// The page holding the link.
    pub link_url: String,
    pub expected: Expected,
    pub state: LinkState,
    pub state_changed_at: Option<String>,
    /// When it was first seen on its page (`null` while `pending`: a URL never seen is never lost).
    pub first_seen_at: Option<String>,
    pub last_checked_at: Option<String>,
    pub last_result: Option<CheckResult>,
    /// The latest check in full.
    pub last_check: Option<LinkCheck>,
    /// When the next scheduled (or confirming) check is due.
    pub next_check_at: Option<String>,
    /// Set while scheduled checks are paused: the month's free checks are used and the credits
    /// ran out. Nothing is marked lost meanwhile; checks resume once credits are added.
    pub checks_paused_at: Option<String>,
    /// The first of the current run of absent results (the confirming check comes an hour later).
    pub absent_since: Option<String>,
    pub unreachable_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// A stored link: the view plus the state machine's track, the claim of the check in flight and
/// the index keys.
pub struct Stored {
    pub link: Link,
    pub agency_id: String,
    pub track: Track,
    pub claim: Option<String>,
    pub item: Item,
}

pub fn parse_link(item: &Item) -> DataResult<Stored> {
    let link: Link = items::parse("link", item)?;
    let track: Track = item.get("track").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or_default();
    Ok(Stored {
        agency_id: items::str_of(item, "agencyId").unwrap_or_default().to_owned(),
        claim: items::str_of(item, "claim").map(str::to_owned),
        link,
        track,
        item: item.clone(),
    })
}

pub fn view(item: &Item) -> ApiResult<Link> {
    Ok(parse_link(item)?.link)
}

/// The whole item of a link: its view, its track, its claim, and the index keys that follow from
/// its state and due time.
pub fn link_item(l: &Link, agency: &str, track: &Track, claim: Option<&str>, due: Option<&str>) -> Item {
    let k = keys::link(&l.workspace_id, &l.id);
    let mut item = obj(json!(l));
    let mut set = |k: &str, v: Value| {
        item.insert(k.into(), v);
    };
    set("PK", json!(k.pk));
    set("SK", json!(k.sk));
    set("entity", json!("link"));
    set("agencyId", json!(agency));
    set("track", json!(track));
    set("GSI1PK", json!(keys::state_pk(&l.workspace_id, l.state.as_str())));
    set("GSI1SK", json!(l.id));
    set("GSI2PK", json!(keys::relationship_pk(&l.workspace_id, &l.relationship_id)));
    set("GSI2SK", json!(l.id));
    set("GSI4PK", json!(keys::agency_pk(agency)));
    set("GSI4SK", json!(l.id));
    if let Some(c) = claim {
        set("claim", json!(c));
    }
    if let Some(at) = due {
        set("GSI3PK", json!(keys::due_pk(keys::due_shard(&l.id))));
        set("GSI3SK", json!(keys::due_sort(at, &l.id)));
    }
    if let Some(at) = &l.last_checked_at {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) {
            set("lastCheckedEpoch", json!(t.timestamp_millis()));
        }
    }
    item
}

/// The stored item of a check; a check that changed the state is also in the workspace's index
/// of changes (GSI1) with `change` = the event kind (`lost`, `restored`, `changed`, or `unknown`
/// for a move to unknown, which writes no event).
pub fn check_item(ws: &str, c: &LinkCheck, change: Option<&str>) -> Item {
    let k = keys::check(&c.link_id, &c.id);
    let mut item = obj(json!(c));
    item.insert("PK".into(), json!(k.pk));
    item.insert("SK".into(), json!(k.sk));
    item.insert("entity".into(), json!("linkCheck"));
    item.insert("workspaceId".into(), json!(ws));
    if let Some(kind) = change {
        item.insert("change".into(), json!(kind));
        item.insert("GSI1PK".into(), json!(keys::changes_pk(ws)));
        item.insert("GSI1SK".into(), json!(format!("{}#{}", c.checked_at, c.id)));
    }
    item
}

pub fn check_view(item: &Item) -> ApiResult<LinkCheck> {
    Ok(items::parse("link check", item)?)
}
