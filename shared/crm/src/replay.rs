//! Replay: rebuild every relationship's and account's derived state from the event logs alone,
//! with the same fold the write path uses, and compare it with (or write it over) what is stored.
//!
//! Replay is maintenance, not a request path: it walks every account through the domain-rating
//! index shards and every relationship through its account, one Query per partition page.

use super::keys;
use super::records::{self, AccountRecord, RelationshipRecord, LATEST_ORG_CONTACTS, ORG_CONTACT};
use crate::campaign_facts;
use linkcrm_domain::campaign::{Attribution, Tally};
use linkcrm_domain::derive::{AccountContactFacts, CoolingPolicy, EventFacts, RelationshipState};
use linkcrm_domain::enums::{EventType, PipelineStatus};
use linkcrm_storage::{Condition, DynStore, Index, Item, Query, Result, Update};
use serde::Serialize;
use serde_json::{json, Value};

/// What replay found for one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub kind: &'static str,
    pub id: String,
    pub stored: Value,
    pub replayed: Value,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub accounts: usize,
    pub relationships: usize,
    pub events: usize,
    pub mismatches: Vec<Mismatch>,
    /// Records rewritten from their events (only with `write`).
    pub repaired: usize,
    /// Campaigns whose counters were recomputed from their members' events.
    pub campaigns: usize,
    /// Opportunities linked to a relationship whose stage was recomputed from its events.
    pub opportunities: usize,
    /// Each campaign's counters as its members' events make them (filled while walking).
    #[serde(skip)]
    pub campaign_tallies: std::collections::BTreeMap<String, Tally>,
}

/// Every item of a partition, page by page.
pub(crate) async fn all(store: &DynStore, q: Query) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(q.clone().limit(500).after(cursor)).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

pub fn facts_of(event: &Item) -> Option<EventFacts> {
    let meta = event.get("metadata");
    Some(EventFacts {
        r#type: records::str_of(event, "type").and_then(EventType::parse)?,
        occurred_at: records::str_of(event, "occurredAt")?.to_owned(),
        workspace_id: records::str_of(event, "organizationId").unwrap_or_default().to_owned(),
        status_to: meta.and_then(|m| m.get("to")).and_then(Value::as_str).and_then(PipelineStatus::parse),
        out_of_office: meta.and_then(|m| m.get("replyClass")).and_then(Value::as_str) == Some("out_of_office"),
        link: linkcrm_domain::links::fact_of(
            records::str_of(event, "type").and_then(EventType::parse)?,
            records::str_of(event, "id").unwrap_or_default(),
            meta,
        ),
    })
}

/// A relationship's events in commit order.
async fn relationship_events(store: &DynStore, rel: &RelationshipRecord) -> Result<Vec<Item>> {
    let mut events =
        all(store, Query::index(Index::Gsi1, keys::relationship_events_pk(rel.workspace(), rel.account_id()))).await?;
    events.sort_by_key(|e| records::int_of(e, "seq").unwrap_or(0));
    Ok(events)
}

/// One campaign's part in a relationship, from the relationship's events in commit order.
pub fn replay_attribution(campaign: &str, events: &[Item]) -> Attribution {
    let mut a = Attribution::default();
    for e in events {
        let Some(t) = records::str_of(e, "type").and_then(EventType::parse) else { continue };
        let at = records::str_of(e, "occurredAt").unwrap_or_default();
        let f = campaign_facts::facts(t, at, e.get("metadata"));
        a.apply(campaign, &f, campaign_facts::hard_bounce(e.get("metadata")));
    }
    a
}

/// A relationship's state from its creation and its events in commit order.
pub async fn replay_relationship(store: &DynStore, rel: &RelationshipRecord) -> Result<(RelationshipState, usize)> {
    let initial =
        records::str_of(&rel.0, "initialStatus").and_then(PipelineStatus::parse).unwrap_or(PipelineStatus::Prospecting);
    let created = records::str_of(&rel.0, "createdAt").unwrap_or_default();
    let events = relationship_events(store, rel).await?;
    let mut state = RelationshipState::new(initial, created);
    for e in &events {
        if let Some(f) = facts_of(e) {
            state.apply(&f);
        }
    }
    Ok((state, events.len()))
}

/// An account's contact facts from every relationship event with it, in any order.
pub async fn replay_account_facts(
    store: &DynStore,
    account_id: &str,
    policy: CoolingPolicy,
) -> Result<(AccountContactFacts, usize)> {
    let events = all(store, Query::index(Index::Gsi4, keys::account_events_pk(account_id))).await?;
    let mut facts = AccountContactFacts::default();
    for e in &events {
        if let Some(f) = facts_of(e) {
            facts.apply(&f, policy);
        }
    }
    Ok((facts, events.len()))
}

/// What the account's own log says: DO_NOT_CONTACT (sticky), and the negotiated prices (the
/// last PRICE_UPDATED per field, in `priceSeq` order) with the time of the last change.
#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLog {
    pub do_not_contact: bool,
    pub prices: std::collections::BTreeMap<String, Value>,
    pub prices_updated_at: Option<String>,
}

pub async fn replay_account_log(store: &DynStore, account_id: &str) -> Result<AccountLog> {
    let mut history = all(store, Query::index(Index::Gsi1, keys::account_history_pk(account_id))).await?;
    history.sort_by_key(|e| records::int_of(e, "seq").unwrap_or(0));
    let mut log = AccountLog::default();
    for e in &history {
        match records::str_of(e, "type").and_then(EventType::parse) {
            Some(EventType::DoNotContactSet) => log.do_not_contact = true,
            Some(EventType::PriceUpdated) => {
                let details = e.get("metadata").and_then(|m| m.get("details")).and_then(Value::as_object);
                for (field, change) in details.into_iter().flatten() {
                    log.prices.insert(field.clone(), change.get("to").cloned().unwrap_or(Value::Null));
                }
                log.prices_updated_at = records::str_of(e, "occurredAt").map(str::to_owned);
            }
            _ => {}
        }
    }
    Ok(log)
}

/// The stored counterpart of `AccountLog`, for the fields the log speaks about.
fn stored_log(account: &AccountRecord, replayed: &AccountLog) -> AccountLog {
    AccountLog {
        do_not_contact: account.do_not_contact(),
        prices: replayed.prices.keys().map(|k| (k.clone(), account.0.get(k).cloned().unwrap_or(Value::Null))).collect(),
        prices_updated_at: replayed
            .prices_updated_at
            .as_ref()
            .and_then(|_| records::str_of(&account.0, "pricesUpdatedAt").map(str::to_owned)),
    }
}

fn rel_stored(rel: &RelationshipRecord) -> RelationshipState {
    rel.state()
}

/// Checks (and with `write`, repairs) every account and relationship.
pub async fn run(store: &DynStore, policy: CoolingPolicy, write: bool) -> Result<Report> {
    let mut report = Report::default();
    for shard in 0..keys::ACCOUNT_SHARDS {
        let accounts = all(store, Query::index(Index::Gsi1, keys::accounts_by_dr_pk(shard))).await?;
        for item in accounts {
            let account = AccountRecord(item);
            check_account(store, &account, policy, write, &mut report).await?;
            let rels = all(store, Query::index(Index::Gsi3, keys::account_relationships_pk(account.id()))).await?;
            for r in rels {
                check_relationship(store, &RelationshipRecord(r), write, &mut report).await?;
            }
        }
    }
    check_campaigns(store, write, &mut report).await?;
    Ok(report)
}

/// Each campaign's counters against the sums of its members' attributions (`drafted` is not an
/// event count and is left as it is).
pub async fn check_campaigns(store: &DynStore, write: bool, report: &mut Report) -> Result<()> {
    let tallies = std::mem::take(&mut report.campaign_tallies);
    report.campaigns = tallies.len();
    for (id, replayed) in tallies {
        let Some(item) = store.get(&keys::campaign(&id)).await? else { continue };
        let n = |k: &str| records::int_of(&item, k).unwrap_or(0);
        let stored = Tally {
            drafted: 0,
            sent: n("sent"),
            bounced: n("bounced"),
            hard_bounced: n("hardBounced"),
            opened: n("opened"),
            replied: n("replied"),
            placed: n("placed"),
        };
        if stored != replayed {
            report.mismatches.push(Mismatch {
                kind: "campaign",
                id: id.clone(),
                stored: json!(stored),
                replayed: json!(replayed),
            });
            if write {
                let mut u = Update::new();
                for (field, v) in Tally::FIELDS.iter().zip(replayed.values()).skip(1) {
                    u = u.set(*field, v);
                }
                store.update(&keys::campaign(&id), u, Some(Condition::Exists)).await?;
                report.repaired += 1;
            }
        }
    }
    Ok(())
}

/// The relationship's memberships against its events; adds each attribution to its campaign's
/// replayed tally.
async fn check_memberships(store: &DynStore, rel: &RelationshipRecord, write: bool, report: &mut Report) -> Result<()> {
    let ids = campaign_facts::campaign_ids(&rel.0);
    if ids.is_empty() {
        return Ok(());
    }
    let events = relationship_events(store, rel).await?;
    for cmp in ids {
        let key = keys::campaign_member(&cmp, rel.id());
        let Some(member) = store.get(&key).await? else { continue };
        let replayed = replay_attribution(&cmp, &events);
        let stored = campaign_facts::attribution_of(&member);
        let t = report.campaign_tallies.entry(cmp.clone()).or_default();
        *t = t.plus(&replayed.tally());
        if stored != replayed {
            report.mismatches.push(Mismatch {
                kind: "campaignMember",
                id: format!("{cmp}/{}", rel.id()),
                stored: json!(stored),
                replayed: json!(replayed),
            });
            if write {
                store.update(&key, Update::new().set("att", json!(replayed)), Some(Condition::Exists)).await?;
                report.repaired += 1;
            }
        }
    }
    Ok(())
}

pub async fn check_account(
    store: &DynStore,
    account: &AccountRecord,
    policy: CoolingPolicy,
    write: bool,
    report: &mut Report,
) -> Result<()> {
    report.accounts += 1;
    let (facts, n) = replay_account_facts(store, account.id(), policy).await?;
    report.events += n;
    let log = replay_account_log(store, account.id()).await?;
    let dnc = log.do_not_contact;
    let stored = (account.facts(), stored_log(account, &log));
    let latest_stale = account.latest_org_contacts() != facts.latest_org_contacts();
    if stored.0 != facts || stored.1 != log || latest_stale {
        report.mismatches.push(Mismatch {
            kind: "account",
            id: account.id().to_owned(),
            stored: json!({ "facts": stored.0, "log": stored.1 }),
            replayed: json!({ "facts": facts, "log": log }),
        });
        if write {
            let mut u = Update::new()
                .set("contactAttemptCount", facts.contact_attempt_count)
                .set("firstContact", json!(facts.first_contact))
                .set("lastContact", json!(facts.last_contact))
                .set("receivedCount", facts.received_count)
                .set("lastReceivedAt", json!(facts.last_received_at))
                .set("recentSends", json!(facts.recent_sends))
                .set("doNotContact", dnc);
            for (field, v) in &log.prices {
                u = u.set(field.clone(), v.clone());
            }
            if let Some(t) = &log.prices_updated_at {
                u = u.set("pricesUpdatedAt", t.clone());
            }
            for k in account.0.keys().filter(|k| k.starts_with(ORG_CONTACT)) {
                if !facts.last_contact_by_org.contains_key(&k[ORG_CONTACT.len()..]) {
                    u = u.remove(k.clone());
                }
            }
            for (org, t) in &facts.last_contact_by_org {
                u = u.set(format!("{ORG_CONTACT}{org}"), t.clone());
            }
            u = u.set(LATEST_ORG_CONTACTS, json!(facts.latest_org_contacts()));
            store.update(&keys::account(account.id()), u, Some(Condition::Exists)).await?;
            report.repaired += 1;
        }
    }
    Ok(())
}

pub async fn check_relationship(
    store: &DynStore,
    rel: &RelationshipRecord,
    write: bool,
    report: &mut Report,
) -> Result<()> {
    report.relationships += 1;
    check_memberships(store, rel, write, report).await?;
    check_opportunities(store, rel, write, report).await?;
    let (replayed, _) = replay_relationship(store, rel).await?;
    let stored = rel_stored(rel);
    if stored != replayed {
        report.mismatches.push(Mismatch {
            kind: "relationship",
            id: rel.id().to_owned(),
            stored: json!(stored),
            replayed: json!(replayed),
        });
        if write {
            let mut u = Update::new().add("version", 1);
            for (k, v) in records::state_attrs(rel.id(), rel.workspace(), &replayed) {
                u = u.set(k, v);
            }
            // Guarded by the sequence read: a concurrent event write wins, and is itself correct.
            store
                .update(&keys::relationship(rel.id()), u, Some(Condition::Equals("seq".into(), json!(stored.seq))))
                .await?;
            let summary = Update::new()
                .set("status", json!(replayed.status))
                .set("lastContactedByUsAt", json!(replayed.last_contacted_by_us_at));
            store
                .update(&keys::workspace_account(rel.workspace(), rel.account_id()), summary, Some(Condition::Exists))
                .await?;
            report.repaired += 1;
        }
    }
    Ok(())
}

/// The stage each of the relationship's linked opportunities is in, from the relationship's
/// LEAD_STAGE_CHANGED events (the last one naming it), else the stage it was created in; and the
/// relationship's count of them.
async fn check_opportunities(
    store: &DynStore,
    rel: &RelationshipRecord,
    write: bool,
    report: &mut Report,
) -> Result<()> {
    let ws = rel.workspace();
    let opps = all(store, Query::index(Index::Gsi1, keys::relationship_opportunities_pk(ws, rel.id()))).await?;
    let stored_count = records::int_of(&rel.0, crate::pipeline::OPP_COUNT).unwrap_or(0);
    if stored_count != opps.len() as i64 {
        report.mismatches.push(Mismatch {
            kind: "relationshipOpportunities",
            id: rel.id().to_owned(),
            stored: json!(stored_count),
            replayed: json!(opps.len()),
        });
        if write {
            let u = Update::new().set(crate::pipeline::OPP_COUNT, opps.len() as i64);
            store.update(&keys::relationship(rel.id()), u, Some(Condition::Exists)).await?;
            report.repaired += 1;
        }
    }
    if opps.is_empty() {
        return Ok(());
    }
    let events = relationship_events(store, rel).await?;
    for opp in opps {
        report.opportunities += 1;
        let id = records::str_of(&opp, "id").unwrap_or_default();
        let replayed = events
            .iter()
            .rev()
            .filter(|e| records::str_of(e, "type") == Some(EventType::LeadStageChanged.as_str()))
            .filter_map(|e| e.get("metadata"))
            .find(|m| m.get("opportunityId").and_then(Value::as_str) == Some(id))
            .and_then(|m| m.get("toStageId").and_then(Value::as_str))
            .or_else(|| records::str_of(&opp, "initialStageId"))
            .unwrap_or_default()
            .to_owned();
        let stored = records::str_of(&opp, "stageId").unwrap_or_default();
        if stored != replayed {
            report.mismatches.push(Mismatch {
                kind: "opportunity",
                id: id.to_owned(),
                stored: json!(stored),
                replayed: json!(replayed),
            });
            if write {
                let u = Update::new()
                    .set("stageId", replayed.clone())
                    .set("GSI2PK", keys::stage_opportunities_pk(ws, &replayed));
                store.update(&keys::opportunity(ws, id), u, Some(Condition::Exists)).await?;
                report.repaired += 1;
            }
        }
    }
    Ok(())
}
