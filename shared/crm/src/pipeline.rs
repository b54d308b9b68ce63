//! Pipeline stages and opportunities (seed 004's "leads"), as records.
//!
//! - A workspace's stages are one item (`keys::stage_set`): the ordered list, and per stage the
//!   count and value of its opportunities (`n_<stage>`, `v_<stage>`, value in cents). Every
//!   workspace starts with [`linkcrm_domain::stages::DEFAULTS`], written on first use.
//! - An opportunity is private to its workspace. When it names a relationship it is *linked*:
//!   its stage moves are LEAD_STAGE_CHANGED events on that relationship (replay reproduces them),
//!   and the relationship's derived status moves it along ([`follow_status`], called by
//!   `write::record_event` in the event's transaction). The relationship counts its linked
//!   opportunities (`oppCount`), so events on relationships without any read nothing more.

use crate::error::{ApiError, ApiResult, DataResult};
use crate::keys;
use crate::records::{int_of, obj, str_of, RelationshipRecord};
use crate::write::NewEvent;
use crate::App;
use linkcrm_domain::enums::{EventType, PipelineStatus};
use linkcrm_domain::stages::{self, StageFacts, StageKind};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Index, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The relationship attribute counting its linked opportunities.
pub const OPP_COUNT: &str = "oppCount";
/// The most stages a workspace may have.
pub const MAX_STAGES: usize = 50;

pub fn has_opportunities(rel: &RelationshipRecord) -> bool {
    int_of(&rel.0, OPP_COUNT).unwrap_or(0) > 0
}

/// One stage as stored in the stage set.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageDef {
    pub id: String,
    pub name: String,
    pub kind: StageKind,
    pub sort_order: i64,
    pub default_probability_pct: i64,
    pub color_key: Option<String>,
    /// The relationship status this stage stands for.
    pub system_key: PipelineStatus,
    /// Set while the stage is being deleted: the stage its opportunities are moving to. Nothing
    /// new moves into it meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting_into: Option<String>,
}

/// A stage as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub id: String,
    pub name: String,
    /// open, won or lost: the status of the opportunities in it.
    pub kind: StageKind,
    pub sort_order: i64,
    pub default_probability_pct: i64,
    pub color_key: Option<String>,
    pub system_key: PipelineStatus,
    /// Opportunities in this stage.
    pub lead_count: i64,
    /// Their summed value, USD.
    pub value: f64,
    /// Present while the stage is being deleted: where its opportunities are moving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleting_into: Option<String>,
}

/// A workspace's stages, as read.
#[derive(Clone, Debug)]
pub struct StageSet {
    pub stages: Vec<StageDef>,
    pub version: i64,
    pub item: Item,
}

fn count_attr(stage: &str) -> String {
    format!("n_{stage}")
}
fn value_attr(stage: &str) -> String {
    format!("v_{stage}")
}

impl StageSet {
    fn from_item(item: Item) -> DataResult<StageSet> {
        let mut stages: Vec<StageDef> = serde_json::from_value(item.get("stages").cloned().unwrap_or(json!([])))
            .map_err(|e| crate::records::corrupt("stage set", e))?;
        stages.sort_by_key(|s| s.sort_order);
        let version = int_of(&item, "version").unwrap_or(1);
        Ok(StageSet { stages, version, item })
    }

    pub fn get(&self, id: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// Stage `id`, or 404 `stage_not_found` naming `field`.
    pub fn find(&self, id: &str) -> ApiResult<&StageDef> {
        self.get(id).ok_or_else(|| ApiError::not_found("stage_not_found", "stage", id))
    }

    /// Stage `id` as a place to move opportunities to: not one being deleted (409).
    pub fn destination(&self, id: &str) -> ApiResult<&StageDef> {
        let s = self.find(id)?;
        if s.deleting_into.is_some() {
            return Err(ApiError::conflict("stage_being_deleted", format!("Stage {id} is being deleted.")));
        }
        Ok(s)
    }

    pub fn count(&self, id: &str) -> i64 {
        int_of(&self.item, &count_attr(id)).unwrap_or(0)
    }

    pub fn value_cents(&self, id: &str) -> i64 {
        int_of(&self.item, &value_attr(id)).unwrap_or(0)
    }

    pub fn view(&self, s: &StageDef) -> Stage {
        Stage {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind,
            sort_order: s.sort_order,
            default_probability_pct: s.default_probability_pct,
            color_key: s.color_key.clone(),
            system_key: s.system_key,
            lead_count: self.count(&s.id),
            value: cents_to_usd(self.value_cents(&s.id)),
            deleting_into: s.deleting_into.clone(),
        }
    }

    pub fn views(&self) -> Vec<Stage> {
        self.stages.iter().map(|s| self.view(s)).collect()
    }

    pub fn facts(&self) -> Vec<StageFacts<'_>> {
        self.stages
            .iter()
            .map(|s| StageFacts { id: &s.id, kind: s.kind, system_key: s.system_key, sort_order: s.sort_order })
            .collect()
    }

    /// The first stage (by order) standing for `status` (and not being deleted).
    pub fn first_with(&self, status: PipelineStatus) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.system_key == status && s.deleting_into.is_none())
    }

    pub fn first_open(&self) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.kind == StageKind::Open && s.deleting_into.is_none())
    }

    /// Writes `stages` as the new list, under the version read; a stage new to the list starts
    /// its counters at 0 (their presence is what lets opportunities move into it).
    pub fn replace_op(&self, ws: &str, stages: &[StageDef], now: &str) -> TxOp {
        let mut update = Update::new().set("stages", json!(stages)).set("updatedAt", now).add("version", 1);
        for s in stages.iter().filter(|s| self.get(&s.id).is_none()) {
            update = update.set(count_attr(&s.id), 0).set(value_attr(&s.id), 0);
        }
        TxOp::update_if(keys::stage_set(ws), update, Condition::VersionEquals(self.version))
    }
}

pub fn cents_to_usd(c: i64) -> f64 {
    c as f64 / 100.0
}

pub fn usd_to_cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// The workspace's stages; the defaults are written on first use (concurrent first uses agree
/// on one set).
pub async fn stage_set(app: &App, ws: &str) -> DataResult<StageSet> {
    let key = keys::stage_set(ws);
    for _ in 0..3 {
        if let Some(item) = app.store.get(&key).await? {
            return StageSet::from_item(item);
        }
        let now = time::now_string();
        let stages: Vec<StageDef> = stages::DEFAULTS
            .iter()
            .enumerate()
            .map(|(i, (name, kind, status, pct, color))| StageDef {
                id: linkcrm_domain::new_id(IdKind::Stage),
                name: (*name).to_owned(),
                kind: *kind,
                sort_order: i as i64,
                default_probability_pct: *pct as i64,
                color_key: Some((*color).to_owned()),
                system_key: *status,
                deleting_into: None,
            })
            .collect();
        let mut item = obj(json!({
            "PK": key.pk, "SK": key.sk, "entity": "stageSet", "workspaceId": ws, "stages": stages,
            "createdAt": now, "updatedAt": now, "version": 1,
        }));
        for s in &stages {
            item.insert(count_attr(&s.id), json!(0));
            item.insert(value_attr(&s.id), json!(0));
        }
        match app.store.transact(vec![TxOp::put_if(item.clone(), Condition::NotExists)]).await {
            Ok(()) => return StageSet::from_item(item),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Three lost races in a row: the caller answers it as a conflict to retry.
    Err(StoreError::Conflict.into())
}

/// The counter changes of opportunities moving between stages: `(from, to, value cents)`, where
/// `None` is "no stage" (created or deleted). One update of the stage set, conditioned on every
/// destination stage still being in it (a deleted stage's counters are gone).
pub fn counters_op(ws: &str, moves: &[(Option<&str>, Option<&str>, i64)]) -> Option<TxOp> {
    let mut delta: Vec<(String, i64)> = Vec::new();
    let mut bump = |attr: String, n: i64| match delta.iter_mut().find(|(a, _)| *a == attr) {
        Some((_, d)) => *d += n,
        None => delta.push((attr, n)),
    };
    for (from, to, cents) in moves {
        if from == to {
            continue;
        }
        if let Some(f) = from {
            bump(count_attr(f), -1);
            bump(value_attr(f), -cents);
        }
        if let Some(t) = to {
            bump(count_attr(t), 1);
            bump(value_attr(t), *cents);
        }
    }
    let delta: Vec<_> = delta.into_iter().filter(|(_, n)| *n != 0).collect();
    if delta.is_empty() {
        return None;
    }
    let mut live: Vec<Condition> = Vec::new();
    for to in moves.iter().filter_map(|(_, t, _)| *t) {
        let c = Condition::AttrPresent(count_attr(to));
        if !live.contains(&c) {
            live.push(c);
        }
    }
    let update = delta.into_iter().fold(Update::new(), |u, (a, n)| u.add(a, n));
    let cond = if live.is_empty() { Condition::Exists } else { Condition::And(live) };
    Some(TxOp::update_if(keys::stage_set(ws), update, cond))
}

/// An opportunity as stored.
#[derive(Clone, Debug)]
pub struct OppRecord(pub Item);

impl OppRecord {
    pub fn id(&self) -> &str {
        str_of(&self.0, "id").unwrap_or_default()
    }
    pub fn stage_id(&self) -> &str {
        str_of(&self.0, "stageId").unwrap_or_default()
    }
    pub fn relationship_id(&self) -> Option<&str> {
        str_of(&self.0, "relationshipId")
    }
    pub fn value_cents(&self) -> i64 {
        int_of(&self.0, "valueCents").unwrap_or(0)
    }
    pub fn version(&self) -> i64 {
        int_of(&self.0, "version").unwrap_or(1)
    }
}

/// An opportunity item; linked ones are in the relationship's index (GSI1), all are in their
/// stage's (GSI2).
pub fn opportunity_item(ws: &str, id: &str, fields: Value, stage: &str, rel: Option<&str>, now: &str) -> Item {
    let key = keys::opportunity(ws, id);
    let mut item = obj(fields);
    let base = json!({
        "PK": key.pk, "SK": key.sk, "entity": "opportunity", "id": id, "workspaceId": ws, "stageId": stage,
        "initialStageId": stage, "relationshipId": rel, "createdAt": now, "updatedAt": now, "version": 1,
        "GSI2PK": keys::stage_opportunities_pk(ws, stage), "GSI2SK": id,
    });
    for (k, v) in base.as_object().expect("an object") {
        item.insert(k.clone(), v.clone());
    }
    if let Some(r) = rel {
        item.insert("GSI1PK".into(), json!(keys::relationship_opportunities_pk(ws, r)));
        item.insert("GSI1SK".into(), json!(id));
    }
    item
}

/// The update that puts an opportunity in stage `to`, conditioned on the stage it was read in.
pub fn move_op(ws: &str, opp: &OppRecord, to: &str, now: &str) -> TxOp {
    TxOp::update_if(
        keys::opportunity(ws, opp.id()),
        Update::new()
            .set("stageId", to)
            .set("GSI2PK", keys::stage_opportunities_pk(ws, to))
            .set("updatedAt", now)
            .add("version", 1),
        Condition::Equals("stageId".into(), json!(opp.stage_id())),
    )
}

/// The LEAD_STAGE_CHANGED event of a linked opportunity's move.
pub fn stage_changed_event(opp: &OppRecord, from: &StageDef, to: &StageDef, automatic: bool) -> NewEvent {
    NewEvent {
        r#type: EventType::LeadStageChanged,
        contact_id: None,
        subject: None,
        content: None,
        metadata: Some(json!({
            "opportunityId": opp.id(), "fromStageId": from.id, "toStageId": to.id, "fromStage": from.name,
            "toStage": to.name, "systemKey": to.system_key, "automatic": automatic,
        })),
        occurred_at: None,
    }
}

/// The opportunities linked to a relationship (at most 100 are moved by one event).
pub async fn linked(app: &App, ws: &str, rel: &str) -> DataResult<Vec<OppRecord>> {
    let page =
        app.store.query(Query::index(Index::Gsi1, keys::relationship_opportunities_pk(ws, rel)).limit(100)).await?;
    Ok(page.items.into_iter().map(OppRecord).collect())
}

/// What a derived status change of `rel` to `status` does to its open linked opportunities: each
/// further behind moves to the first stage standing for `status` (`stages::follow`). Returns the
/// LEAD_STAGE_CHANGED events to record and the opportunity and counter updates, for the event's
/// transaction.
pub async fn follow_status(
    app: &App,
    ws: &str,
    rel: &RelationshipRecord,
    status: PipelineStatus,
    now: &str,
) -> DataResult<(Vec<NewEvent>, Vec<TxOp>)> {
    let set = stage_set(app, ws).await?;
    let facts = set.facts();
    let mut events = Vec::new();
    let mut ops = Vec::new();
    let mut moves = Vec::new();
    for opp in linked(app, ws, rel.id()).await? {
        let Some(to) = stages::follow(&facts, opp.stage_id(), status) else { continue };
        let (Some(from), Some(to)) = (set.get(opp.stage_id()), set.get(to)) else { continue };
        if to.deleting_into.is_some() {
            continue;
        }
        events.push(stage_changed_event(&opp, from, to, true));
        ops.push(move_op(ws, &opp, &to.id, now));
        moves.push((from.id.clone(), to.id.clone(), opp.value_cents()));
    }
    let refs: Vec<(Option<&str>, Option<&str>, i64)> =
        moves.iter().map(|(f, t, c)| (Some(f.as_str()), Some(t.as_str()), *c)).collect();
    ops.extend(counters_op(ws, &refs));
    Ok((events, ops))
}
