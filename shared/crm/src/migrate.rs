//! Key-layout migrations of stored items: operator commands (`linkcrm store migrate`), safe to run
//! again and safe beside live traffic (each rewrite is conditioned on the item still being there
//! and moves only index attributes, which no request writes after an event is created).
//!
//! Event indexes (the performance issue): a relationship event was indexed five times (by
//! relationship, workspace, workspace and account, agency and account, account). Now it is
//! indexed three times: GSI1 `WS#<ws>#ACCT#<acct>#EVTS` (a workspace has one relationship per
//! account, so this is the relationship's timeline), GSI2 `WS#<ws>#EVTS`, and GSI4
//! `ACCT#<acct>#EVTS` / `<agency>#<time>#<id>` (an agency's events with the account are a prefix;
//! replay reads the whole partition). [`event_indexes`] moves events written before, and fills
//! `latestOrgContacts` (what lists read of an account) on accounts written before it existed.

use super::keys;
use super::records::{self, AccountRecord, RelationshipRecord};
use super::replay::all;
use linkcrm_storage::{Condition, DynStore, Index, Item, Key, Query, Result, TxOp, Update};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationReport {
    pub accounts: usize,
    pub relationships: usize,
    /// Events still in the old layout (rewritten with `write`).
    pub events_to_move: usize,
    pub events_moved: usize,
    /// Accounts whose `latestOrgContacts` is missing or disagrees with their per-workspace
    /// stamps (written with `write`).
    pub accounts_to_fill: usize,
    pub accounts_filled: usize,
    /// Accounts missing from the metrics due index (put in it with `write`).
    pub accounts_to_index: usize,
    pub accounts_indexed: usize,
}

/// The index attributes an event has in the current layout, and the old ones it must lose.
fn current_index_update(event: &Item) -> Option<Update> {
    let s = |k| records::str_of(event, k);
    let (ws, acct, agency) = (s("organizationId")?, s("accountId")?, s("agencyId")?);
    let (id, at) = (s("id")?, s("occurredAt")?);
    Some(
        Update::new()
            .set("GSI1PK", keys::relationship_events_pk(ws, acct))
            .set("GSI4PK", keys::account_events_pk(acct))
            .set("GSI4SK", keys::agency_event_sort(agency, at, id))
            .remove("GSI3PK")
            .remove("GSI3SK")
            .remove("GSI5PK")
            .remove("GSI5SK"),
    )
}

/// Finds (and with `write`, moves) every relationship event still indexed the old way: every
/// account through the domain-rating shards, its relationships, each one's old partition.
pub async fn event_indexes(store: &DynStore, write: bool) -> Result<MigrationReport> {
    let mut report = MigrationReport::default();
    for shard in 0..keys::ACCOUNT_SHARDS {
        for item in all(store, Query::index(Index::Gsi1, keys::accounts_by_dr_pk(shard))).await? {
            report.accounts += 1;
            let account = AccountRecord(item);
            // Accounts written before lists read `latestOrgContacts` have only the stamps.
            let latest = account.facts().latest_org_contacts();
            if account.latest_org_contacts() != latest {
                report.accounts_to_fill += 1;
                if write {
                    let update = Update::new().set(records::LATEST_ORG_CONTACTS, serde_json::json!(latest));
                    store.update(&keys::account(account.id()), update, Some(Condition::Exists)).await?;
                    report.accounts_filled += 1;
                }
            }
            // Accounts written before the metrics due index: put them in it.
            if account.0.get("GSI3PK").is_none() {
                report.accounts_to_index += 1;
                if write {
                    let shard = keys::shard_of(account.id(), keys::ACCOUNT_SHARDS);
                    let at = records::str_of(&account.0, "ahrefStatsUpdatedAt");
                    let update = Update::new()
                        .set("GSI3PK", keys::metrics_due_pk(shard))
                        .set("GSI3SK", keys::metrics_due_sort(at, account.id()));
                    match store
                        .update(&keys::account(account.id()), update, Some(Condition::AttrAbsent("GSI3PK".into())))
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_condition_failed() => {}
                        Err(e) => return Err(e),
                    }
                    report.accounts_indexed += 1;
                }
            }
            let rels = all(store, Query::index(Index::Gsi3, keys::account_relationships_pk(account.id()))).await?;
            for r in rels {
                report.relationships += 1;
                let rel = RelationshipRecord(r);
                let old = all(store, Query::index(Index::Gsi1, keys::legacy_relationship_events_pk(rel.id()))).await?;
                report.events_to_move += old.len();
                if !write {
                    continue;
                }
                let mut ops = Vec::new();
                for event in &old {
                    let (Some(key), Some(update)) = (Key::of(event), current_index_update(event)) else {
                        tracing::warn!(event = ?event.get("id"), "event without the attributes its keys need; left as is");
                        continue;
                    };
                    ops.push(TxOp::update_if(key, update, Condition::Exists));
                    if ops.len() == 100 {
                        report.events_moved += ops.len();
                        store.transact(std::mem::take(&mut ops)).await?;
                    }
                }
                if !ops.is_empty() {
                    report.events_moved += ops.len();
                    store.transact(ops).await?;
                }
            }
        }
    }
    Ok(report)
}
