//! Domain metrics (Ahrefs' domain rating and traffic figures) on the shared account, set by the
//! scheduled refresh (`linkcrm_campaigns::metrics`), a campaign's DR filter, or the operator CLI
//! (`linkcrm account set-metrics`). Accounts are indexed by when they were last refreshed
//! (`keys::metrics_due_pk`), so the schedule finds the due ones without a Scan.

use super::keys;
use super::records::{int_of, AccountRecord};
use super::write::{account_event_item, load_account};
use crate::error::{ApiError, ApiResult};
use crate::{outbox, App};
use linkcrm_domain::enums::EventType;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, StoreError, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The key id recorded on events the system writes by itself (no API key behind them).
pub const SYSTEM_ACTOR: &str = "system";
const ATTEMPTS: usize = 8;

/// New metric values; `None` leaves a metric as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub domain_rating: Option<i64>,
    pub organic_traffic: Option<i64>,
    pub organic_keywords: Option<i64>,
    pub referring_domains: Option<i64>,
    pub backlinks: Option<i64>,
}

impl Metrics {
    fn fields(&self) -> [(&'static str, Option<i64>); 5] {
        [
            ("domainRating", self.domain_rating),
            ("organicTraffic", self.organic_traffic),
            ("organicKeywords", self.organic_keywords),
            ("referringDomains", self.referring_domains),
            ("backlinks", self.backlinks),
        ]
    }

    fn check(&self) -> ApiResult<()> {
        if self.domain_rating.is_some_and(|d| !(0..=100).contains(&d)) {
            return Err(ApiError::invalid_field("domainRating", "invalid_request", "must be between 0 and 100"));
        }
        for (field, v) in self.fields() {
            if v.is_some_and(|v| v < 0) {
                return Err(ApiError::invalid_field(field, "invalid_request", "must not be negative"));
            }
        }
        if self.fields().iter().all(|(_, v)| v.is_none()) {
            return Err(ApiError::bad_request("invalid_request", "Give at least one metric."));
        }
        Ok(())
    }
}

/// Stores the metrics on the account, moves its place in the by-rating index (GSI1 sort key) with
/// the rating, stamps `ahrefStatsUpdatedAt`, and writes a METRICS_REFRESHED account event with
/// the old and new values — all in one transaction guarded by the account's version (retried
/// when an API write got there first). Update actions only, so concurrent contact counters on
/// the same item are kept.
pub async fn set_metrics(app: &App, acct: &str, metrics: &Metrics) -> ApiResult<AccountRecord> {
    metrics.check()?;
    for _ in 0..ATTEMPTS {
        let record = load_account(app, acct).await?;
        let version = record.version();
        let now = time::now_string();
        let shard = keys::shard_of(record.id(), keys::ACCOUNT_SHARDS);
        let mut update = Update::new()
            .set("ahrefStatsUpdatedAt", now.clone())
            .set("GSI3PK", keys::metrics_due_pk(shard))
            .set("GSI3SK", keys::metrics_due_sort(Some(&now), record.id()))
            .set("updatedAt", now)
            .add("version", 1);
        let mut changes = Map::new();
        for (field, value) in metrics.fields() {
            let Some(value) = value else { continue };
            changes.insert(field.into(), json!({ "from": int_of(&record.0, field), "to": value }));
            update = update.set(field, value);
        }
        if let Some(dr) = metrics.domain_rating {
            update = update.set("GSI1SK", keys::dr_sort(Some(dr), record.id()));
        }
        // metricsSeq orders the account's metric events for replay, like priceSeq for prices.
        let seq = int_of(&record.0, "metricsSeq").unwrap_or(0) + 1;
        update = update.set("metricsSeq", seq);
        let changes = Value::Object(changes);
        let event =
            account_event_item(record.id(), EventType::MetricsRefreshed, None, SYSTEM_ACTOR, changes.clone(), seq);
        let ops = vec![
            TxOp::update_if(keys::account(record.id()), update.clone(), Condition::VersionEquals(version)),
            outbox::event(
                "link_building.account.metrics_refreshed",
                None,
                json!({ "accountId": record.id(), "domain": record.domain(), "eventId": event["id"], "changes": changes }),
            ),
            TxOp::put_if(event, Condition::NotExists),
        ];
        match app.store.transact(ops).await {
            Ok(()) => {
                let mut record = record;
                update.apply(&mut record.0).map_err(|_| ApiError::internal())?;
                return Ok(record);
            }
            Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The account changed concurrently too often; retry."))
}

/// Accounts whose metrics are older than `cutoff` (or were never fetched), oldest first, at most
/// `limit`: one Query per shard of the due index.
pub async fn due_accounts(app: &App, cutoff: &str, limit: usize) -> ApiResult<Vec<AccountRecord>> {
    let mut out = Vec::new();
    for shard in 0..keys::ACCOUNT_SHARDS {
        if out.len() >= limit {
            break;
        }
        let q = linkcrm_storage::Query::index(linkcrm_storage::Index::Gsi3, keys::metrics_due_pk(shard))
            .sk(linkcrm_storage::SortKey::Before(cutoff.to_owned()))
            .limit(limit - out.len());
        out.extend(app.store.query(q).await?.items.into_iter().map(AccountRecord));
    }
    Ok(out)
}

/// Whether some workspace works with the account: a relationship not archived and not
/// NOT_INTERESTED or INACTIVE (one Query of the account's relationships).
pub async fn has_active_relationship(app: &App, account: &str) -> ApiResult<bool> {
    let q =
        linkcrm_storage::Query::index(linkcrm_storage::Index::Gsi3, keys::account_relationships_pk(account)).limit(100);
    let page = app.store.query(q).await?;
    Ok(page.items.iter().any(|r| {
        let rel = super::records::RelationshipRecord(r.clone());
        !rel.archived()
            && !matches!(
                rel.status(),
                linkcrm_domain::enums::PipelineStatus::NotInterested | linkcrm_domain::enums::PipelineStatus::Inactive
            )
    }))
}

/// Puts an account that needs no refresh (no active relationship) back at the end of the due
/// index, as if refreshed now, unless it moved meanwhile.
pub async fn defer(app: &App, record: &AccountRecord) -> ApiResult<()> {
    let shard = keys::shard_of(record.id(), keys::ACCOUNT_SHARDS);
    let now = time::now_string();
    let u = Update::new()
        .set("GSI3PK", keys::metrics_due_pk(shard))
        .set("GSI3SK", keys::metrics_due_sort(Some(&now), record.id()));
    let cond = match record.0.get("GSI3SK") {
        Some(v) => Condition::Equals("GSI3SK".into(), v.clone()),
        None => Condition::AttrAbsent("GSI3SK".into()),
    };
    match app.store.transact(vec![TxOp::update_if(keys::account(record.id()), u, cond)]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The workspaces with a relationship to the account, archived ones included (a partner's
/// DO_NOT_CONTACT concerns every workspace that knows it), one page of the account's
/// relationships at a time.
pub async fn workspaces_with_relationship(app: &App, account: &str) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut cursor = None;
    loop {
        let q = linkcrm_storage::Query::index(linkcrm_storage::Index::Gsi3, keys::account_relationships_pk(account))
            .limit(200)
            .after(cursor);
        let page = app.store.query(q).await?;
        for r in page.items {
            let ws = super::records::RelationshipRecord(r).workspace().to_owned();
            if !ws.is_empty() && !out.contains(&ws) {
                out.push(ws);
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}
