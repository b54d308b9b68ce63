//! The SERP and competitor campaigns' pipeline (seed 002): research → normalise and dedupe →
//! screen (own and excluded domains, DO_NOT_CONTACT, cooling-off, suppressed, contacted within the
//! window, the relationship's status, the DR filter) → relationships and members → contact
//! discovery → drafts (the `draft` step shared with custom campaigns) → WAITING_APPROVAL.
//!
//! Each stage is a `campaign_step` job, and each ends by committing its mark on the campaign
//! record together with the next stage's job, so a crash (`kill -9`) resumes at the stage that
//! was running, and a redelivered job finds its mark and does nothing. Within a stage every
//! candidate moves one way (`new` → `enrolled` | `skipped`) in a transaction guarded by its
//! state, so nothing is screened, made or charged twice; a crash may repeat only the provider call
//! that was in flight.
//!
//! Credits: the start reserves the estimate on the campaign's invocation (research, metrics for
//! the DR filter, discovery, LLM drafts: CONTRACT's prices); each charge is taken from that
//! reservation in the transaction of the work it pays for; contact discovery runs as child
//! `link_building.crm.contact.discover` invocations whose reservations are moved over from the
//! campaign's; the rest is released when the pipeline finishes or the campaign is cancelled.

use crate::invocations as inv;
use crate::jobs::retry;
use crate::keys;
use crate::records::{self as rec, Status};
use crate::App;
use linkcrm_core::credits::{self, Pool};
use linkcrm_core::jobkinds::{JobKind, WORK_QUEUE};
use linkcrm_crm::records::{int_of, obj, str_of, AccountRecord};
use linkcrm_domain::derive::CoolingPolicy;
use linkcrm_domain::enums::Source;
use linkcrm_domain::time;
use linkcrm_jobs::{HandlerError, Job, StoreQueue};
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp, Update};
use serde_json::{json, Value};
use std::time::Duration;

pub const SERP_SKILL: &str = "link_building.serp_outreach";
pub const COMPETITOR_SKILL: &str = "link_building.competitor_outreach";
/// CONTRACT prices, in thousandths of a credit.
pub const SERP_RESEARCH_MILLI: i64 = 1000;
pub const BACKLINKS_PULL_MILLI: i64 = 2000;
pub const METRICS_MILLI: i64 = 100;
pub use crate::writer::LLM_DRAFT_MILLI;
/// Candidates screened per query page, and accounts per discovery.
const PAGE: usize = 25;
const DISCOVERY_BATCH: usize = 25;

/// What a campaign of `candidates` domains may cost at most: the research, a metrics refresh for
/// each candidate when a DR filter is set, a discovery for each, an LLM draft for each.
pub fn estimate(competitor: bool, candidates: u32, dr_filter: bool, llm: bool) -> i64 {
    let research = if competitor { BACKLINKS_PULL_MILLI } else { SERP_RESEARCH_MILLI };
    let per = linkcrm_crm::discovery::PER_ACCOUNT_MILLI
        + if dr_filter { METRICS_MILLI } else { 0 }
        + if llm { LLM_DRAFT_MILLI } else { 0 };
    research + per * candidates as i64
}

fn step_op(campaign: &str, step: &str, extra: Value, delay: Duration) -> Result<TxOp, HandlerError> {
    let mut payload = json!({ "campaignId": campaign, "step": step });
    if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
        p.extend(e);
    }
    StoreQueue::enqueue_op(WORK_QUEUE, &Job::new(JobKind::CampaignStep.as_str(), payload), delay)
        .map_err(|e| HandlerError::Fail(format!("campaign job refused by the queue: {e}")))
}

/// The first stage's job, committed with the campaign.
pub fn start_op(campaign: &str) -> Result<TxOp, HandlerError> {
    step_op(campaign, "research", json!({}), Duration::ZERO)
}

/// Commits `ops` with a mark `attr` on the campaign (set once) and the next stage's job.
/// `meta` is what else changes on the campaign record with the mark.
async fn advance(
    app: &App,
    campaign: &str,
    attr: &str,
    meta: Update,
    next: Option<TxOp>,
    mut ops: Vec<TxOp>,
) -> Result<(), HandlerError> {
    ops.insert(
        0,
        TxOp::update_if(
            keys::campaign(campaign),
            meta.set(attr, time::now_string()),
            Condition::AttrAbsent(attr.into()),
        ),
    );
    ops.extend(next);
    match app.store.transact(ops).await {
        Ok(()) => Ok(()),
        // Marked by an earlier delivery, which committed the next job with it.
        Err(StoreError::ConditionFailed { op: Some(0) }) => Ok(()),
        Err(StoreError::ConditionFailed { .. }) => Err(HandlerError::Retry { after: Duration::from_millis(500) }),
        Err(e) => Err(retry(&e)),
    }
}

/// The campaign's invocation, and the pool it reserved from.
struct Billing {
    item: Item,
    pool: Pool,
    ws: String,
    skill: String,
    id: String,
}

async fn billing(app: &App, meta: &Item) -> Result<Option<Billing>, HandlerError> {
    let Some(id) = str_of(meta, "invocationId") else { return Ok(None) };
    let Some(item) = app.store.get(&inv::key(id)).await.map_err(|e| retry(&e))? else { return Ok(None) };
    let pool = inv::pool_of_item(&item).map_err(|e| HandlerError::Fail(e.to_string()))?;
    Ok(Some(Billing {
        pool,
        ws: str_of(&item, "workspaceId").unwrap_or_default().to_owned(),
        skill: str_of(&item, "skill").unwrap_or_default().to_owned(),
        id: id.to_owned(),
        item,
    }))
}

impl Billing {
    /// Takes `amount` from the reservation and charges it (the transaction fails on the first
    /// part when the reservation cannot cover it or the invocation is no longer running).
    fn charge(&self, amount: i64) -> Vec<TxOp> {
        let mut ops = vec![TxOp::update_if(
            inv::key(&self.id),
            Update::new().add("reservedMilli", -amount).add("usedMilli", amount).add("version", 1),
            Condition::And(vec![
                Condition::AtLeast("reservedMilli".into(), amount),
                Condition::Equals("status".into(), json!(inv::Status::Running)),
            ]),
        )];
        ops.extend(credits::charge(&self.pool, &self.ws, &self.skill, &self.id, amount, amount));
        ops
    }

    /// Moves `amount` of the reservation to a child invocation (the pool's reserved total is
    /// unchanged: the child charges or releases it when it finishes).
    fn transfer(&self, amount: i64) -> TxOp {
        TxOp::update_if(
            inv::key(&self.id),
            Update::new().add("reservedMilli", -amount).add("version", 1),
            Condition::And(vec![
                Condition::AtLeast("reservedMilli".into(), amount),
                Condition::Equals("status".into(), json!(inv::Status::Running)),
            ]),
        )
    }
}

pub async fn handle(app: &App, meta: &Item, job: &Job) -> Result<bool, HandlerError> {
    let step = job.payload.get("step").and_then(Value::as_str).unwrap_or_default();
    match step {
        "research" => research(app, meta).await.map(|_| true),
        "screen" => screen(app, meta).await.map(|_| true),
        "discover" => discover(app, meta).await.map(|_| true),
        "discover_wait" => discover_wait(app, meta, job).await.map(|_| true),
        "complete_check" => complete_check(app, meta).await.map(|_| true),
        _ => Ok(false),
    }
}

// ---------------------------------------------------------------------------------------------
// Research

fn settings(meta: &Item) -> Value {
    meta.get("settings").cloned().unwrap_or_default()
}

/// One research result before screening.
struct Found {
    domain: String,
    rank: u32,
    details: Value,
    dr: Option<f64>,
}

async fn research(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    if rec::status_of(meta).ended() || meta.get("researchedAt").is_some() {
        return Ok(());
    }
    let Some(mut bill) = billing(app, meta).await? else { return Ok(()) };
    if inv::status(&bill.item) == inv::Status::Pending {
        match app.store.transact(vec![inv::transition(&bill.item, inv::Status::Running, vec![])]).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(retry(&e)),
        }
        bill = billing(app, meta).await?.ok_or_else(|| HandlerError::Fail("invocation vanished".into()))?;
    }
    if inv::status(&bill.item) != inv::Status::Running {
        return Ok(()); // cancelled or finished
    }
    let s = settings(meta);
    let ws = bill.ws.clone();
    let competitor = str_of(meta, "type") == Some("competitor");
    let (found, cost) = if competitor {
        let target = s["competitorDomain"].as_str().unwrap_or_default().to_owned();
        let mode = match s["mode"].as_str() {
            Some("subdomains") => linkcrm_providers::ahrefs::Mode::Subdomains,
            _ => linkcrm_providers::ahrefs::Mode::Domain,
        };
        let limit = s["limit"].as_u64().unwrap_or(100) as u32;
        let fetched = match crate::providers::ahrefs(app, &ws).await {
            Ok((client, owner)) => {
                let got = client.backlinks(&target, mode, limit).await;
                linkcrm_core::health::observe(app, &ws, "ahrefs", &got).await;
                got.map_err(|e| crate::providers::failed("ahrefs", owner, e))
            }
            Err(e) => Err(e),
        };
        match fetched {
            Ok(rows) => (
                rows.into_iter()
                    .enumerate()
                    .filter_map(|(i, b)| {
                        let host = host_of(&b.url_from)?;
                        Some(Found {
                            domain: host,
                            rank: i as u32 + 1,
                            dr: b.domain_rating_source,
                            details: json!({ "competitorDomain": target, "urlFrom": b.url_from, "urlTo": b.url_to,
                                             "anchor": b.anchor, "title": b.title }),
                        })
                    })
                    .collect::<Vec<_>>(),
                BACKLINKS_PULL_MILLI,
            ),
            Err(e) => return research_failed(app, meta, &bill, e).await,
        }
    } else {
        let r = crate::ops::research::Research {
            query: s["keyword"].as_str().unwrap_or_default().to_owned(),
            top_n: s["topN"].as_u64().unwrap_or(20) as u32,
            location: s["location"].as_str().map(str::to_owned),
            language: s["language"].as_str().map(str::to_owned),
            device: if s["device"] == "mobile" {
                crate::ops::research::Device::Mobile
            } else {
                crate::ops::research::Device::Desktop
            },
        };
        match crate::ops::research::fetch(app, &ws, &r, Some(24 * 3600)).await {
            Ok((results, cached, _)) => (
                results
                    .into_iter()
                    .map(|x| Found {
                        domain: x.domain,
                        rank: x.rank,
                        dr: None,
                        details: json!({ "keyword": r.query, "url": x.url, "title": x.title }),
                    })
                    .collect(),
                if cached { 0 } else { SERP_RESEARCH_MILLI },
            ),
            Err(e) => return research_failed(app, meta, &bill, e).await,
        }
    };
    // Normalised and deduplicated: the best-ranked row of a domain stands for it.
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for f in found {
        let (domain, state, reason) = match linkcrm_crm::write::normalize("domain", &f.domain) {
            Ok(d) => (d, "new", Value::Null),
            Err(e) => {
                (f.domain.to_ascii_lowercase(), "skipped", json!({ "code": "invalid_domain", "message": e.message }))
            }
        };
        if domain.is_empty() || !seen.insert(domain.clone()) {
            continue;
        }
        let k = keys::candidate(&campaign, &domain);
        items.push(obj(json!({ "PK": k.pk, "SK": k.sk, "entity": "campaignCandidate", "domain": domain,
            "rank": f.rank, "details": f.details, "dr": f.dr, "state": state, "reason": reason })));
    }
    let count = items.len();
    for chunk in items.chunks(PAGE) {
        let ops: Vec<TxOp> = chunk.iter().cloned().map(|i| TxOp::put_if(i, Condition::NotExists)).collect();
        match app.store.transact(ops).await {
            Ok(()) => {}
            // Written by an earlier run cut off after this chunk: keep what it screened.
            Err(StoreError::ConditionFailed { .. }) => {
                for i in chunk {
                    match app.store.transact(vec![TxOp::put_if(i.clone(), Condition::NotExists)]).await {
                        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                        Err(e) => return Err(retry(&e)),
                    }
                }
            }
            Err(e) => return Err(retry(&e)),
        }
    }
    let ops = if cost > 0 { bill.charge(cost) } else { vec![] };
    let next = Some(step_op(&campaign, "screen", json!({}), Duration::ZERO)?);
    advance(app, &campaign, "researchedAt", Update::new().set("candidates", count), next, ops).await
}

/// The research could not be done: the invocation fails (its reservation released) and the
/// campaign is cancelled with the reason, so nothing waits on it.
async fn research_failed(
    app: &App,
    meta: &Item,
    bill: &Billing,
    e: crate::error::ApiError,
) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    tracing::warn!(%campaign, code = e.code, "campaign research failed");
    let error = inv::problem(e.status.as_u16(), e.code, &e.message);
    let mut ops = finish_ops(bill, inv::Status::Failed, json!({ "domains": [] }), error)?;
    ops.extend(end_ops(meta, Status::Cancelled, Some("research_failed")));
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(retry(&e)),
    }
}

/// Ends a campaign by rule (completed, or cancelled by a failed research): status, totals,
/// timeline and its outbox event.
fn end_ops(meta: &Item, to: Status, reason: Option<&str>) -> Vec<TxOp> {
    let id = str_of(meta, "id").unwrap_or_default();
    let ws = str_of(meta, "workspaceId").unwrap_or_default();
    let from = rec::status_of(meta);
    let created = str_of(meta, "createdAt").unwrap_or_default();
    let now = time::now_string();
    let mut u = Update::new()
        .set("status", to.as_str())
        .set("updatedAt", now.clone())
        .set("endReason", json!(reason))
        .add("version", 1);
    for (k, v) in rec::index_attrs(ws, id, created, to) {
        u = u.set(k, v);
    }
    let event = if to == Status::Completed { "completed" } else { "cancelled" };
    let tl = keys::timeline(id, &now, event);
    let data = rec::event_data(meta, Some(&u), json!({ "reason": reason }));
    vec![
        TxOp::update_if(keys::campaign(id), u, Condition::Equals("status".into(), json!(from))),
        TxOp::update(
            keys::campaign_totals(ws),
            Update::new().add(format!("status#{}", from.as_str()), -1).add(format!("status#{}", to.as_str()), 1),
        ),
        TxOp::put(obj(json!({ "PK": tl.pk, "SK": tl.sk, "entity": "campaignTimeline", "at": now, "event": event,
                              "reason": reason }))),
        linkcrm_core::outbox::event(&format!("link_building.campaign.{event}"), Some(ws), data),
    ]
}

// ---------------------------------------------------------------------------------------------
// Screening

async fn screen(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    if rec::status_of(meta).ended() || meta.get("screenedAt").is_some() {
        return Ok(());
    }
    let Some(bill) = billing(app, meta).await? else { return Ok(()) };
    let ws_item = app
        .store
        .get(&linkcrm_core::keys::workspace(&bill.ws))
        .await
        .map_err(|e| retry(&e))?
        .ok_or_else(|| HandlerError::Fail("workspace vanished".into()))?;
    let own = str_of(&ws_item, "primaryDomain").map(str::to_owned);
    // One pass in key order: candidates only ever leave `new`, so a page once passed holds
    // nothing left to do (a redelivered job starts again from the first page and skips them).
    let mut cursor = None;
    loop {
        // Settings are read again per page: a PATCH of the filters applies to what is left.
        let meta = app.store.get(&keys::campaign(&campaign)).await.map_err(|e| retry(&e))?.unwrap_or_default();
        if rec::status_of(&meta).ended() {
            return Ok(());
        }
        let q = Query::partition(keys::candidates_pk(&campaign)).limit(PAGE).after(cursor.take());
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        // Fresh per page: charges move the invocation's version.
        let Some(bill) = billing(app, &meta).await? else { return Ok(()) };
        for cand in page.items.iter().filter(|c| str_of(c, "state") == Some("new")) {
            screen_one(app, &meta, &bill, own.as_deref(), cand).await?;
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let next = Some(step_op(&campaign, "discover", json!({}), Duration::ZERO)?);
    advance(app, &campaign, "screenedAt", Update::new(), next, vec![]).await
}

/// The host of an absolute http(s) URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn reason(code: &str, message: impl Into<String>) -> Value {
    json!({ "code": code, "message": message.into() })
}

fn matches_domain(domain: &str, rule: &str) -> bool {
    domain == rule || domain.ends_with(&format!(".{rule}"))
}

async fn settle_candidate(
    app: &App,
    campaign: &str,
    domain: &str,
    u: Update,
    mut ops: Vec<TxOp>,
) -> Result<(), HandlerError> {
    ops.insert(
        0,
        TxOp::update_if(keys::candidate(campaign, domain), u, Condition::Equals("state".into(), json!("new"))),
    );
    match app.store.transact(ops).await {
        // Settled by an earlier delivery: its outcome stands.
        Ok(()) | Err(StoreError::ConditionFailed { op: Some(0) }) => Ok(()),
        Err(StoreError::ConditionFailed { .. }) => {
            // The reservation could not cover a charge: the candidate is skipped, uncharged.
            let u = Update::new()
                .set("state", "skipped")
                .set("reason", reason("insufficient_credits", "The campaign's credit reservation is used up"));
            let op =
                TxOp::update_if(keys::candidate(campaign, domain), u, Condition::Equals("state".into(), json!("new")));
            match app.store.transact(vec![op]).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
                Err(e) => Err(retry(&e)),
            }
        }
        Err(e) => Err(retry(&e)),
    }
}

async fn skip_candidate(app: &App, campaign: &str, domain: &str, why: Value) -> Result<(), HandlerError> {
    settle_candidate(app, campaign, domain, Update::new().set("state", "skipped").set("reason", why), vec![]).await
}

fn load_err(e: crate::error::ApiError) -> HandlerError {
    retry(&e.message)
}

async fn screen_one(
    app: &App,
    meta: &Item,
    bill: &Billing,
    own: Option<&str>,
    cand: &Item,
) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default();
    let ws = bill.ws.as_str();
    let domain = str_of(cand, "domain").unwrap_or_default().to_owned();
    let s = settings(meta);
    let filters = s.get("filters").cloned().unwrap_or_default();
    if own.is_some_and(|o| matches_domain(&domain, o)) {
        return skip_candidate(app, campaign, &domain, reason("own_domain", "The workspace's own domain")).await;
    }
    let excluded = filters["excludeDomains"].as_array().cloned().unwrap_or_default();
    if excluded.iter().filter_map(Value::as_str).any(|x| matches_domain(&domain, x)) {
        return skip_candidate(app, campaign, &domain, reason("excluded_domain", "In the campaign's excludeDomains"))
            .await;
    }
    let account = linkcrm_crm::write::account_by_domain(app, &domain).await.map_err(load_err)?;
    if let Some(a) = &account {
        if a.do_not_contact() {
            return skip_candidate(app, campaign, &domain, reason("do_not_contact", "The account is DO_NOT_CONTACT"))
                .await;
        }
        if a.contacted_by_other_org(ws, CoolingPolicy::from_env()) {
            return skip_candidate(
                app,
                campaign,
                &domain,
                reason("cooling_off", "Another organisation contacted the account recently (cooling-off)"),
            )
            .await;
        }
    }
    if linkcrm_outreach::suppression::domain_suppressed(&app.store, ws, &domain).await.map_err(|e| retry(&e))? {
        return skip_candidate(app, campaign, &domain, reason("suppressed", "The domain is on a suppression list"))
            .await;
    }
    // The workspace's relationship with the account, when it has one.
    let existing = match &account {
        Some(a) => {
            let guard =
                app.store.get(&linkcrm_crm::keys::workspace_account(ws, a.id())).await.map_err(|e| retry(&e))?;
            match guard.as_ref().and_then(|g| str_of(g, "relationshipId")) {
                Some(rel) => Some(linkcrm_crm::write::load_relationship(app, ws, rel).await.map_err(load_err)?),
                None => None,
            }
        }
        None => None,
    };
    if let Some(rel) = &existing {
        if let Some(why) = crate::jobs::skip_reason(rel) {
            return skip_candidate(app, campaign, &domain, why).await;
        }
        let days = filters["excludeContactedWithinDays"].as_i64().unwrap_or(90);
        let recent = str_of(&rel.0, "lastContactedByUsAt")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| chrono::Utc::now().signed_duration_since(t) < chrono::Duration::days(days));
        if days > 0 && recent {
            return skip_candidate(
                app,
                campaign,
                &domain,
                reason("contacted_recently", format!("This workspace emailed the account within {days} days")),
            )
            .await;
        }
    }
    // The DR filter: the research's figure, else the account's, else Ahrefs' (0.1 credit).
    let (min, max) = (filters["minDR"].as_f64(), filters["maxDR"].as_f64());
    let mut charge = Vec::new();
    let mut dr = cand.get("dr").and_then(Value::as_f64);
    let source = if str_of(meta, "type") == Some("competitor") { Source::Competitor } else { Source::Search };
    if min.is_some() || max.is_some() {
        dr = dr.or_else(|| account.as_ref().and_then(|a| a.0.get("domainRating")).and_then(Value::as_f64));
        if dr.is_none() {
            let account = linkcrm_crm::write::ensure_account(app, &domain, source).await.map_err(load_err)?;
            match refresh_metrics(app, ws, &account).await {
                Ok(value) => {
                    // Stored with its event already; charged with the candidate's outcome (a
                    // crash in between leaves the figure stored and uncharged, never charged twice).
                    dr = value;
                    charge.extend(bill.charge(METRICS_MILLI));
                }
                Err(e) if e.status.is_server_error() && e.code != "provider_unavailable" => return Err(load_err(e)),
                Err(e) => {
                    return skip_candidate(
                        app,
                        campaign,
                        &domain,
                        json!({ "code": "metrics_unavailable", "message": e.message }),
                    )
                    .await
                }
            }
        }
        let out = match dr {
            None => Some(reason("dr_unknown", "Ahrefs has no Domain Rating for the domain")),
            Some(d) if min.is_some_and(|m| d < m) => {
                Some(reason("dr_out_of_range", format!("DR {d} is below {}", min.unwrap_or(0.0))))
            }
            Some(d) if max.is_some_and(|m| d > m) => {
                Some(reason("dr_out_of_range", format!("DR {d} is above {}", max.unwrap_or(100.0))))
            }
            _ => None,
        };
        if let Some(why) = out {
            let u = Update::new().set("state", "skipped").set("reason", why).set("dr", json!(dr));
            return settle_candidate(app, campaign, &domain, u, charge).await;
        }
    }
    let mut details = cand.get("details").cloned().unwrap_or_else(|| json!({}));
    details["campaignId"] = json!(campaign);
    if source == Source::Search {
        details["serpRank"] = cand.get("rank").cloned().unwrap_or_default();
    }
    let (rel, _) =
        linkcrm_crm::write::ensure_relationship(app, ws, &domain, source, Some(details)).await.map_err(load_err)?;
    if existing.is_none() {
        if let Some(why) = crate::jobs::skip_reason(&rel) {
            return skip_candidate(app, campaign, &domain, why).await;
        }
    }
    let enrolled = crate::ops::campaigns::enrol_app(app, campaign, &rel).await.map_err(load_err)?;
    let u = match enrolled {
        Ok(()) | Err(linkcrm_crm::campaign_facts::Enrol::Already) => Update::new()
            .set("state", "enrolled")
            .set("relationshipId", rel.id())
            .set("accountId", rel.account_id())
            .set("dr", json!(dr)),
        Err(linkcrm_crm::campaign_facts::Enrol::TooMany) => Update::new()
            .set("state", "skipped")
            .set("reason", reason("too_many_campaigns", "The relationship is in too many campaigns already")),
    };
    settle_candidate(app, campaign, &domain, u, charge).await
}

/// Asks Ahrefs for `account`'s metrics (through the workspace's credentials, else the
/// platform's) and stores them on the shared account with its METRICS_REFRESHED event
/// (`linkcrm_crm::metrics::set_metrics`); answers the Domain Rating.
pub async fn refresh_metrics(app: &App, ws: &str, account: &AccountRecord) -> crate::error::ApiResult<Option<f64>> {
    let (client, owner) = crate::providers::ahrefs(app, ws).await?;
    let m = client.metrics(account.domain()).await.map_err(|e| crate::providers::failed("ahrefs", owner, e))?;
    store_metrics(app, account.id(), &m).await?;
    Ok(m.domain_rating)
}

/// Ahrefs' figures as the account keeps them.
pub async fn store_metrics(
    app: &App,
    account: &str,
    m: &linkcrm_providers::ahrefs::DomainMetrics,
) -> crate::error::ApiResult<()> {
    let n = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
    let metrics = linkcrm_crm::metrics::Metrics {
        domain_rating: m.domain_rating.map(|d| d.round().clamp(0.0, 100.0) as i64),
        organic_traffic: n(m.org_traffic),
        organic_keywords: n(m.org_keywords),
        referring_domains: n(m.live_refdomains),
        backlinks: n(m.live_backlinks),
    };
    if metrics == linkcrm_crm::metrics::Metrics::default() {
        return Ok(()); // Ahrefs had no figure at all
    }
    linkcrm_crm::metrics::set_metrics(app, account, &metrics).await.map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Contact discovery

fn has_email(c: &Item) -> bool {
    str_of(c, "email").is_some_and(|e| !e.is_empty())
}

/// Whether a contact's position or seniority matches what the campaign asked for (any contact
/// with an email when it asked for nothing).
pub fn fits(c: &Item, roles: &[String], seniority: &[String]) -> bool {
    let pos = str_of(c, "position").unwrap_or_default().to_lowercase();
    let sen = str_of(c, "seniority").unwrap_or_default().to_lowercase();
    (roles.is_empty() || roles.iter().any(|r| pos.contains(&r.to_lowercase())))
        && (seniority.is_empty() || seniority.iter().any(|s| sen == s.to_lowercase()))
}

pub fn list(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Whether the account already has someone to write to: a `bestContactId`, or a contact with an
/// email that fits the roles.
async fn has_contact(app: &App, account: &str, roles: &[String], seniority: &[String]) -> Result<bool, HandlerError> {
    let a = app.store.get(&linkcrm_crm::keys::account(account)).await.map_err(|e| retry(&e))?;
    if a.as_ref().and_then(|a| str_of(a, "bestContactId")).is_some() {
        return Ok(true);
    }
    let q = Query::index(linkcrm_storage::Index::Gsi1, linkcrm_crm::keys::account_contacts_pk(account)).limit(50);
    let page = app.store.query(q).await.map_err(|e| retry(&e))?;
    Ok(page.items.iter().any(|c| has_email(c) && fits(c, roles, seniority)))
}

async fn discover(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    if rec::status_of(meta).ended() || meta.get("discoveryStartedAt").is_some() {
        return Ok(());
    }
    let s = settings(meta);
    let (roles, seniority) = (list(&s, "contactRoles"), list(&s, "seniority"));
    let agency = str_of(meta, "agencyId").map(str::to_owned);
    let mut wanted: Vec<(String, String)> = Vec::new(); // (relationship, account)
    let mut cursor = None;
    loop {
        let q = Query::partition(keys::campaign_members_pk(&campaign)).limit(200).after(cursor.take());
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        for m in &page.items {
            if str_of(m, "state") != Some("pending") || m.get("discoveryId").is_some() {
                continue;
            }
            let (Some(rel), Some(account)) = (str_of(m, "relationshipId"), str_of(m, "accountId")) else { continue };
            if !has_contact(app, account, &roles, &seniority).await? {
                wanted.push((rel.to_owned(), account.to_owned()));
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for batch in wanted.chunks(DISCOVERY_BATCH) {
        let Some(bill) = billing(app, meta).await? else { return Ok(()) };
        let accounts: Vec<&str> = batch.iter().map(|(_, a)| a.as_str()).collect();
        let (reserved, seconds) = linkcrm_crm::discovery::estimate(accounts.len());
        let child = inv::new_id();
        let mut item = inv::new_item(&inv::NewInvocation {
            id: &child,
            ws: &bill.ws,
            skill: linkcrm_crm::discovery::SKILL,
            input: json!({ "accountIds": accounts, "roles": roles, "seniority": seniority, "campaignId": campaign }),
            pool: &bill.pool,
            reserved_milli: reserved,
            duration_seconds: seconds,
        });
        item.insert("agencyId".into(), json!(agency));
        item.insert("parentInvocationId".into(), json!(bill.id));
        let job = Job::new(JobKind::Discover.as_str(), json!({ "invocationId": child }));
        let d = keys::discovery(&campaign, &child);
        let mut ops = vec![
            bill.transfer(reserved),
            TxOp::put_if(item, Condition::NotExists),
            StoreQueue::enqueue_op(WORK_QUEUE, &job, Duration::ZERO)
                .map_err(|e| HandlerError::Fail(format!("discover job refused: {e}")))?,
            TxOp::put(obj(json!({ "PK": d.pk, "SK": d.sk, "entity": "campaignDiscovery", "invocationId": child,
                                  "accounts": accounts.len() }))),
        ];
        for (rel, _) in batch {
            ops.push(TxOp::update_if(
                keys::campaign_member(&campaign, rel),
                Update::new().set("discoveryId", child.clone()),
                Condition::AttrAbsent("discoveryId".into()),
            ));
        }
        match app.store.transact(ops).await {
            Ok(()) => {}
            // Started by an earlier delivery, or the reservation moved: look again.
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(HandlerError::Retry { after: Duration::from_millis(300) })
            }
            Err(e) => return Err(retry(&e)),
        }
    }
    let wait = step_op(&campaign, "discover_wait", json!({ "seq": 0 }), Duration::from_millis(500))?;
    advance(app, &campaign, "discoveryStartedAt", Update::new().set("waitSeq", 0), Some(wait), vec![]).await
}

/// Waits (by re-queuing itself; one chain, guarded by `waitSeq`) until every discovery the
/// campaign started has finished, then drafts.
async fn discover_wait(app: &App, meta: &Item, job: &Job) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    if rec::status_of(meta).ended() || meta.get("discoveredAt").is_some() {
        return Ok(());
    }
    let seq = job.payload.get("seq").and_then(Value::as_i64).unwrap_or(0);
    if int_of(meta, "waitSeq") != Some(seq) {
        return Ok(()); // a stale copy of the chain
    }
    let mut open = 0;
    let mut cursor = None;
    loop {
        let q = Query::partition(keys::discoveries_pk(&campaign)).limit(100).after(cursor.take());
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        let ids: Vec<_> = page.items.iter().filter_map(|d| str_of(d, "invocationId")).map(inv::key).collect();
        for item in app.store.batch_get(&ids).await.map_err(|e| retry(&e))? {
            if matches!(inv::status(&item), inv::Status::Pending | inv::Status::Running) {
                open += 1;
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if open > 0 {
        let next = step_op(&campaign, "discover_wait", json!({ "seq": seq + 1 }), Duration::from_secs(1))?;
        let ops = vec![
            TxOp::update_if(
                keys::campaign(&campaign),
                Update::new().set("waitSeq", seq + 1),
                Condition::Equals("waitSeq".into(), json!(seq)),
            ),
            next,
        ];
        return match app.store.transact(ops).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(retry(&e)),
        };
    }
    let draft = StoreQueue::enqueue_op(
        WORK_QUEUE,
        &Job::new(JobKind::CampaignStep.as_str(), json!({ "campaignId": campaign, "step": "draft" })),
        Duration::ZERO,
    )
    .map_err(|e| HandlerError::Fail(e.to_string()))?;
    advance(app, &campaign, "discoveredAt", Update::new(), Some(draft), vec![]).await
}

// ---------------------------------------------------------------------------------------------
// Finishing the pipeline

/// The invocation's end: status, result, what was used, and the rest of the reservation
/// released, conditional on the version read.
fn finish_ops(bill: &Billing, status: inv::Status, result: Value, error: Value) -> Result<Vec<TxOp>, HandlerError> {
    let left = int_of(&bill.item, "reservedMilli").unwrap_or(0);
    let used = int_of(&bill.item, "usedMilli").unwrap_or(0);
    let mut ops = vec![inv::transition(
        &bill.item,
        status,
        vec![
            ("creditsUsed", credits::as_credits(used)),
            ("result", result),
            ("error", error),
            ("reservedMilli", json!(0)),
        ],
    )];
    if left > 0 {
        ops.extend(credits::release(&bill.pool, &bill.ws, &bill.skill, &bill.id, left));
    }
    Ok(ops)
}

/// The per-domain results of the pipeline, best-ranked first: each candidate's screening
/// outcome, and for those that joined, the draft's (drafted, or skipped and why).
async fn results(app: &App, campaign: &str) -> Result<Value, HandlerError> {
    let mut cands = Vec::new();
    let mut cursor = None;
    loop {
        let q = Query::partition(keys::candidates_pk(campaign)).limit(200).after(cursor.take());
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        cands.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut members = std::collections::HashMap::new();
    let mut cursor = None;
    loop {
        let q = Query::partition(keys::campaign_members_pk(campaign)).limit(200).after(cursor.take());
        let page = app.store.query(q).await.map_err(|e| retry(&e))?;
        for m in page.items {
            if let Some(r) = str_of(&m, "relationshipId") {
                members.insert(r.to_owned(), m);
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    cands.sort_by_key(|c| int_of(c, "rank").unwrap_or(i64::MAX));
    let (mut drafted, mut skipped) = (0, 0);
    let rows: Vec<Value> = cands
        .iter()
        .map(|c| {
            let mut row = json!({ "domain": str_of(c, "domain"), "rank": c.get("rank"), "dr": c.get("dr") });
            let member = str_of(c, "relationshipId").and_then(|r| members.get(r));
            match (str_of(c, "state"), member) {
                (Some("enrolled"), Some(m)) => {
                    row["relationshipId"] = json!(str_of(m, "relationshipId"));
                    match str_of(m, "state") {
                        Some("drafted") => {
                            drafted += 1;
                            row["status"] = json!("drafted");
                            row["draftId"] = json!(str_of(m, "draftInvocationId"));
                        }
                        _ => {
                            skipped += 1;
                            row["status"] = json!("skipped");
                            row["reason"] = m.get("reason").cloned().unwrap_or(Value::Null);
                        }
                    }
                }
                _ => {
                    skipped += 1;
                    row["status"] = json!("filtered");
                    row["reason"] = c.get("reason").cloned().unwrap_or(Value::Null);
                }
            }
            row
        })
        .collect();
    Ok(json!({ "campaignId": campaign, "candidates": rows.len(), "drafted": drafted, "skipped": skipped,
               "domains": rows }))
}

/// After the draft step: the campaign's invocation succeeds with the per-domain results (the
/// rest of its reservation released), and the completion rule is checked.
pub async fn drafted(app: &App, campaign: &str) -> Result<(), HandlerError> {
    let Some(meta) = app.store.get(&keys::campaign(campaign)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    if str_of(&meta, "invocationId").is_none()
        || meta.get("discoveredAt").is_none()
        || meta.get("pipelineDoneAt").is_some()
    {
        return Ok(());
    }
    for _ in 0..5 {
        let Some(bill) = billing(app, &meta).await? else { return Ok(()) };
        if inv::status(&bill.item) != inv::Status::Running {
            break;
        }
        let result = results(app, campaign).await?;
        let ops = finish_ops(&bill, inv::Status::Succeeded, result, Value::Null)?;
        match app.store.transact(ops).await {
            Ok(()) => break,
            Err(StoreError::ConditionFailed { .. }) => continue, // a charge moved the version
            Err(e) => return Err(retry(&e)),
        }
    }
    let check = step_op(campaign, "complete_check", json!({}), Duration::ZERO)?;
    advance(app, campaign, "pipelineDoneAt", Update::new(), Some(check), vec![]).await
}

/// A cancelled campaign's pipeline: its invocation is cancelled with what it used charged and
/// the rest released.
pub async fn cancelled(app: &App, meta: &Item) -> Result<(), HandlerError> {
    for _ in 0..5 {
        let Some(bill) = billing(app, meta).await? else { return Ok(()) };
        if !matches!(inv::status(&bill.item), inv::Status::Pending | inv::Status::Running) {
            return Ok(());
        }
        let result = results(app, str_of(meta, "id").unwrap_or_default()).await?;
        let ops = finish_ops(&bill, inv::Status::Cancelled, result, Value::Null)?;
        match app.store.transact(ops).await {
            Ok(()) => return Ok(()),
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(retry(&e)),
        }
    }
    Err(HandlerError::Retry { after: Duration::from_secs(1) })
}

// ---------------------------------------------------------------------------------------------
// Completion (CONTRACT): research done and nothing pending

/// Asks for a completion check soon (at most one queued at a time per campaign).
pub async fn request_check(app: &App, meta: &Item) -> Result<(), HandlerError> {
    request_check_in(app, meta, Duration::from_secs(1)).await
}

async fn request_check_in(app: &App, meta: &Item, delay: Duration) -> Result<(), HandlerError> {
    let t = str_of(meta, "type");
    if !matches!(t, Some("serp" | "competitor")) || meta.get("pipelineDoneAt").is_none() || rec::status_of(meta).ended()
    {
        return Ok(());
    }
    let campaign = str_of(meta, "id").unwrap_or_default();
    let ops = vec![
        TxOp::update_if(
            keys::campaign(campaign),
            Update::new().set("checkQueuedAt", time::now_string()),
            Condition::AttrAbsent("checkQueuedAt".into()),
        ),
        step_op(campaign, "complete_check", json!({}), delay)?,
    ];
    match app.store.transact(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(retry(&e)),
    }
}

async fn complete_check(app: &App, meta: &Item) -> Result<(), HandlerError> {
    let campaign = str_of(meta, "id").unwrap_or_default().to_owned();
    // Clear the mark first: a change after this read asks for another check.
    app.store
        .transact(vec![TxOp::update(keys::campaign(&campaign), Update::new().remove("checkQueuedAt"))])
        .await
        .map_err(|e| retry(&e))?;
    let Some(meta) = app.store.get(&keys::campaign(&campaign)).await.map_err(|e| retry(&e))? else { return Ok(()) };
    if rec::status_of(&meta) != Status::Active
        || meta.get("pipelineDoneAt").is_none()
        || int_of(&meta, "awaiting").unwrap_or(0) > 0
    {
        return Ok(());
    }
    // A send not yet finished, or a follow-up still to go, keeps it open.
    let mut cursor = None;
    loop {
        let p = app
            .store
            .query(Query::partition(keys::drafts_pk(&campaign)).limit(100).after(cursor.take()))
            .await
            .map_err(|e| retry(&e))?;
        let ids: Vec<_> = p.items.iter().filter_map(|d| str_of(d, "invocationId")).map(inv::key).collect();
        for item in app.store.batch_get(&ids).await.map_err(|e| retry(&e))? {
            match inv::status(&item) {
                inv::Status::WaitingApproval => return Ok(()),
                // On its way: look again when it has gone (a send that ends blocked or failed
                // tells the campaign nothing).
                inv::Status::Pending | inv::Status::Running => {
                    // A send waiting for its time (scheduled, or the send window) is looked at
                    // again just after it; one on its way, in ten seconds.
                    let due = ["sendWindowWaitUntil"]
                        .iter()
                        .filter_map(|k| str_of(&item, k))
                        .chain(item.get("input").and_then(|i| i.get("scheduleAt")).and_then(Value::as_str))
                        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .max();
                    let wait = due
                        .map(|t| (t - chrono::Utc::now()).num_seconds() + 30)
                        .unwrap_or(10)
                        .clamp(10, linkcrm_jobs::MAX_DELAY.as_secs() as i64);
                    return request_check_in(app, &meta, Duration::from_secs(wait as u64)).await;
                }
                _ => {}
            }
        }
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut cursor = None;
    loop {
        let q = Query::partition(keys::campaign_members_pk(&campaign))
            .limit(200)
            .after(cursor.take())
            .filter(Condition::Equals("followUpStatus".into(), json!("scheduled")));
        let p = app.store.query(q).await.map_err(|e| retry(&e))?;
        if !p.items.is_empty() {
            return Ok(());
        }
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let held =
        app.store.query(Query::partition(keys::campaign_held_pk(&campaign)).limit(1)).await.map_err(|e| retry(&e))?;
    if !held.items.is_empty() {
        return Ok(());
    }
    match app.store.transact(end_ops(&meta, Status::Completed, None)).await {
        Ok(()) => {
            tracing::info!(%campaign, "campaign completed: research done and nothing pending");
            Ok(())
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(retry(&e)),
    }
}

/// Adds `extra` to a transaction, folded into the part that already touches the same item (a
/// transaction may touch an item once): numbers added are summed, conditions joined.
pub fn merge_ops(ops: &mut Vec<TxOp>, extra: Vec<TxOp>) {
    use linkcrm_storage::Action;
    'next: for op in extra {
        if let TxOp::Update { key, update, cond } = &op {
            for existing in ops.iter_mut() {
                let TxOp::Update { key: k, update: u, cond: c } = existing else { continue };
                if k != key {
                    continue;
                }
                for a in &update.actions {
                    match a {
                        Action::Add(attr, n) => {
                            if let Some(Action::Add(_, m)) =
                                u.actions.iter_mut().find(|b| matches!(b, Action::Add(x, _) if x == attr))
                            {
                                *m += n;
                            } else {
                                u.actions.push(a.clone());
                            }
                        }
                        other => u.actions.push(other.clone()),
                    }
                }
                *c = match (c.take(), cond.clone()) {
                    (Some(a), Some(b)) => Some(Condition::And(vec![a, b])),
                    (a, b) => a.or(b),
                };
                continue 'next;
            }
        }
        ops.push(op);
    }
}

// ---------------------------------------------------------------------------------------------
// Drafts: the brief the Writer gets, and what a charged draft costs

/// The campaign's brief for its writer: its template, topic, tone and angle.
pub fn brief(meta: &Item) -> crate::writer::Brief {
    let s = settings(meta);
    let template = match (s["subject"].as_str(), s["body"].as_str()) {
        (Some(a), Some(b)) => Some((a.to_owned(), b.to_owned())),
        _ => None,
    };
    let topic = s["topic"]
        .as_str()
        .or(s["keyword"].as_str())
        .map(str::to_owned)
        .or_else(|| s["competitorDomain"].as_str().map(|c| format!("sites that link to {c}")))
        .unwrap_or_else(|| str_of(meta, "name").unwrap_or_default().to_owned());
    crate::writer::Brief {
        template,
        topic,
        tone: s["tone"].as_str().and_then(|t| t.parse().ok()).unwrap_or_default(),
        angle: s["angle"].as_str().map(str::to_owned),
    }
}

/// The parts that charge `amount` from the campaign's reservation (`None`: the campaign has no
/// invocation, so nothing reserved to charge from).
pub async fn charge_ops(app: &App, meta: &Item, amount: i64) -> Result<Option<Vec<TxOp>>, HandlerError> {
    Ok(billing(app, meta).await?.map(|b| b.charge(amount)))
}
