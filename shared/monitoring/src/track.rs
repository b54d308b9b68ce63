//! Links start being monitored: from the `link_track` job a LINK_PLACED commits with, and from
//! `linkcrm links backfill` for the LINK_PLACED events recorded before monitoring existed.

use crate::{keys, records};
use linkcrm_core::error::{ApiResult, DataError};
use linkcrm_core::items;
use linkcrm_core::App;
use linkcrm_domain::links::{self, LinkState, Track};
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp, Update};
use serde::Serialize;
use serde_json::{json, Value};

/// A URL the checker can fetch: `http(s)://` with a host.
fn http_url(raw: &str) -> Option<String> {
    let u = url::Url::parse(raw.trim()).ok()?;
    (matches!(u.scheme(), "http" | "https") && u.host_str().is_some()).then(|| u.to_string())
}

/// The expected link from a LINK_PLACED's metadata and its relationship (CONTRACT "Placed links").
pub fn expected_of(meta: Option<&Value>, our_content: Option<&str>) -> records::Expected {
    let m = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let rel = links::rel_tokens(m("rel"));
    records::Expected {
        target_url: m("targetUrl").and_then(http_url).or_else(|| our_content.and_then(http_url)),
        anchor_text: m("anchorText").map(str::to_owned),
        rel: if rel.is_empty() { "follow".to_owned() } else { rel.join(" ") },
    }
}

/// What starting one link did.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    Made(String),
    /// Already monitored (a redelivered job, a second backfill).
    Exists(String),
    /// The event has no `linkUrl` (or is not a LINK_PLACED): nothing to monitor.
    NotALink,
}

/// Makes the monitored link of one LINK_PLACED event (id derived from the event's), with the
/// workspace's pending count; idempotent. Its first check is due at once, or, with `spread`, at a
/// point of the next `spread` fixed by its id (a backfill's links are then checked spread over
/// the interval instead of all at once, and stay spread).
pub async fn start(app: &App, event: &Item, spread: std::time::Duration) -> Result<Started, DataError> {
    let event_id = items::str_of(event, "id").unwrap_or_default();
    let meta = event.get("metadata");
    let is_placed = items::str_of(event, "type") == Some("LINK_PLACED");
    let page = meta.and_then(|m| m.get("linkUrl")).and_then(Value::as_str).and_then(http_url);
    let (Some(link_id), Some(page), true) = (links::link_id_of(event_id), page, is_placed) else {
        return Ok(Started::NotALink);
    };
    let ws = items::str_of(event, "organizationId").unwrap_or_default().to_owned();
    let rel_id = items::str_of(event, "relationshipId").unwrap_or_default().to_owned();
    let agency = items::str_of(event, "agencyId").unwrap_or_default().to_owned();
    if app.store.get(&keys::link(&ws, &link_id)).await?.is_some() {
        return Ok(Started::Exists(link_id));
    }
    let rel = app.store.get(&linkcrm_crm::keys::relationship(&rel_id)).await?;
    let our_content = rel.as_ref().and_then(|r| items::str_of(r, "ourContent"));
    let now = time::now_string();
    let offset = match spread.as_secs() {
        0 => 0,
        s => (crate::keys::due_shard_hash(&link_id) as u64) % s,
    };
    let due = time::format(chrono::Utc::now() + chrono::Duration::seconds(offset as i64));
    let link = records::Link {
        id: link_id.clone(),
        workspace_id: ws.clone(),
        relationship_id: rel_id,
        account_id: items::str_of(event, "accountId").unwrap_or_default().to_owned(),
        campaign_id: meta.and_then(|m| m.get("campaignId")).and_then(Value::as_str).map(str::to_owned),
        event_id: event_id.to_owned(),
        link_url: page,
        expected: expected_of(meta, our_content),
        state: LinkState::Pending,
        state_changed_at: None,
        first_seen_at: None,
        last_checked_at: None,
        last_result: None,
        last_check: None,
        next_check_at: Some(due.clone()),
        checks_paused_at: None,
        absent_since: None,
        unreachable_since: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        version: 1,
    };
    let track = Track { state: Some(LinkState::Pending), ..Track::default() };
    let ops = vec![
        TxOp::put_if(records::link_item(&link, &agency, &track, None, Some(&due)), Condition::NotExists),
        TxOp::update(keys::summary(&ws), Update::new().add(LinkState::Pending.as_str(), 1)),
    ];
    match app.store.transact(ops).await {
        Ok(()) => Ok(Started::Made(link_id)),
        Err(StoreError::ConditionFailed { .. }) => Ok(Started::Exists(link_id)),
        Err(e) => Err(e.into()),
    }
}

/// The `link_track` job: `{workspaceId, relationshipId, eventId}`.
pub async fn handle(app: &App, job: &Job) -> Result<(), HandlerError> {
    let Some(event_id) = job.payload.get("eventId").and_then(Value::as_str) else {
        return Err(HandlerError::Fail("link_track job without eventId".into()));
    };
    let retry = |e: &dyn std::fmt::Display| {
        tracing::warn!(job = %job.id, error = %e, "could not start monitoring a link; retrying");
        HandlerError::Retry { after: std::time::Duration::from_secs(5) }
    };
    let Some(event) = app.store.get(&linkcrm_crm::keys::event(event_id)).await.map_err(|e| retry(&e))? else {
        return Ok(());
    };
    start(app, &event, std::time::Duration::ZERO).await.map_err(|e| retry(&e))?;
    Ok(())
}

/// What a backfill did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backfill {
    pub relationships: u64,
    pub link_placed_events: u64,
    pub started: u64,
    pub already_monitored: u64,
    pub without_link_url: u64,
    /// Relationships whose stored `linkStatus` was rebuilt from their events.
    pub relationships_repaired: u64,
}

/// Every LINK_PLACED ever recorded becomes a monitored link, its first check spread over
/// `spread`, and each relationship's link state is rebuilt from its events. Reads every
/// relationship through the account index and each one's LINK_PLACED events (Queries, no Scan);
/// safe to repeat and to run beside a live server.
pub async fn backfill(app: &App, spread: std::time::Duration) -> ApiResult<Backfill> {
    let mut report = Backfill::default();
    for shard in 0..linkcrm_crm::keys::ACCOUNT_SHARDS {
        for account in all(app, Query::index(Index::Gsi1, linkcrm_crm::keys::accounts_by_dr_pk(shard))).await? {
            let acct = items::str_of(&account, "id").unwrap_or_default().to_owned();
            let rels = all(app, Query::index(Index::Gsi3, linkcrm_crm::keys::account_relationships_pk(&acct))).await?;
            for rel in rels {
                report.relationships += 1;
                let ws = items::str_of(&rel, "organizationId").unwrap_or_default();
                let q = Query::index(Index::Gsi1, linkcrm_crm::keys::relationship_events_pk(ws, &acct))
                    .filter(Condition::Equals("type".into(), json!("LINK_PLACED")));
                let placed = all(app, q).await?;
                let mut any = false;
                for e in &placed {
                    report.link_placed_events += 1;
                    match start(app, e, spread).await? {
                        Started::Made(_) => {
                            report.started += 1;
                            any = true;
                        }
                        Started::Exists(_) => report.already_monitored += 1,
                        Started::NotALink => report.without_link_url += 1,
                    }
                }
                if any {
                    let record = linkcrm_crm::records::RelationshipRecord(rel);
                    let mut r = linkcrm_crm::replay::Report::default();
                    linkcrm_crm::replay::check_relationship(&app.store, &record, true, &mut r).await?;
                    report.relationships_repaired += r.mismatches.len().min(1) as u64;
                }
            }
        }
    }
    Ok(report)
}

async fn all(app: &App, q: Query) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = app.store.query(q.clone().limit(500).after(cursor)).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}
