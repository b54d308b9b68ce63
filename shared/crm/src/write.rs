//! The CRM write path: accounts by domain, and events with everything they change, committed
//! together.

use super::keys;
use super::records::{self, obj, AccountRecord, RelationshipRecord, LATEST_ORG_CONTACTS, ORG_CONTACT};
use crate::error::{ApiError, ApiResult, DataError, DataResult};
use crate::{outbox, App};
use linkcrm_domain::derive::{contact_stamp, CoolingPolicy, EventFacts};
use linkcrm_domain::enums::{EventType, PipelineStatus, Source};
use linkcrm_domain::normalize::normalize_domain;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Item, StoreError, TxOp, Update};
use serde_json::{json, Value};

/// Attribute prefix on a contact naming a workspace whose events reference it: `refBy#<ws>`.
pub const CONTACT_REF: &str = "refBy#";
/// Counter on a contact bumped by every reference mark, for deletes to condition on.
pub const CONTACT_REF_SEQ: &str = "refSeq";

/// What an event naming a contact does to it: marks the workspace as referencing it, and bumps
/// `refSeq` so a delete that read the contact before the mark fails its condition and reads again.
/// The mark leaves `version` (the contact's ETag) alone: clients see no change.
pub fn contact_ref_mark(ws: &str) -> Update {
    Update::new().set(format!("{CONTACT_REF}{ws}"), true).add(CONTACT_REF_SEQ, 1)
}

/// How often a write retries after losing a race on the same relationship or account.
const ATTEMPTS: usize = 8;

pub fn check_id(kind: IdKind, field: &str, id: &str) -> ApiResult<()> {
    if crate::ids::well_formed(kind, id) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(field, "invalid_request", format!("'{id}' is not a valid id ({}…)", kind.prefix())))
    }
}

pub async fn load_account(app: &App, id: &str) -> ApiResult<AccountRecord> {
    check_id(IdKind::Account, "id", id)?;
    let item = app.store.get(&keys::account(id)).await?;
    item.map(AccountRecord).ok_or_else(|| ApiError::not_found("account_not_found", "account", id))
}

pub async fn account_by_domain(app: &App, domain: &str) -> ApiResult<Option<AccountRecord>> {
    let Some(guard) = app.store.get(&keys::domain_guard(domain)).await? else { return Ok(None) };
    let id = records::str_of(&guard, "accountId").unwrap_or_default().to_owned();
    Ok(app.store.get(&keys::account(&id)).await?.map(AccountRecord))
}

pub fn normalize(field: &str, raw: &str) -> ApiResult<String> {
    normalize_domain(raw).map_err(|e| ApiError::invalid_field(field, "invalid_domain", e.to_string()))
}

/// The account of a domain, created if nobody has it yet. Concurrent creators agree on one.
pub async fn ensure_account(app: &App, domain: &str, source: Source) -> ApiResult<AccountRecord> {
    for _ in 0..ATTEMPTS {
        if let Some(existing) = account_by_domain(app, domain).await? {
            return Ok(existing);
        }
        let id = linkcrm_domain::new_id(IdKind::Account);
        let now = time::now_string();
        let account = new_account_item(&id, domain, source, &now);
        let guard = keys::domain_guard(domain);
        let ops = vec![
            TxOp::put_if(
                obj(json!({"PK": guard.pk, "SK": guard.sk, "entity": "domainGuard", "accountId": id})),
                Condition::NotExists,
            ),
            TxOp::put_if(account.clone(), Condition::NotExists),
            TxOp::update(keys::counters(), Update::new().add("accountCount", 1)),
            outbox::event("link_building.account.created", None, json!({ "accountId": id, "domain": domain })),
        ];
        match app.store.transact(ops).await {
            Ok(()) => return Ok(AccountRecord(account)),
            // Someone else created it first: read theirs.
            Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The account was being created concurrently; retry."))
}

fn new_account_item(id: &str, domain: &str, source: Source, now: &str) -> Item {
    records::new_account_item(id, domain, source, now)
}

/// A relationship this workspace may see; another workspace's is reported as not found.
pub async fn load_relationship(app: &App, ws: &str, id: &str) -> ApiResult<RelationshipRecord> {
    check_id(IdKind::Relationship, "id", id)?;
    workspace_relationship(app, ws, id)
        .await?
        .ok_or_else(|| ApiError::not_found("relationship_not_found", "relationship", id))
}

/// Relationship `id` if it is workspace `ws`'s (another workspace's reads as absent).
async fn workspace_relationship(app: &App, ws: &str, id: &str) -> Result<Option<RelationshipRecord>, StoreError> {
    Ok(app
        .store
        .get(&keys::relationship(id))
        .await?
        .filter(|item| records::str_of(item, "organizationId") == Some(ws))
        .map(RelationshipRecord))
}

/// The workspace's relationship with the account of `domain` (normalised), made when it has none
/// (source and details as given): `(relationship, created)`. For the pipelines that add partners
/// in bulk; a concurrent creator of the same pair wins and its relationship is returned.
pub async fn ensure_relationship(
    app: &App,
    ws: &str,
    domain: &str,
    source: Source,
    source_details: Option<Value>,
) -> ApiResult<(RelationshipRecord, bool)> {
    let account = ensure_account(app, domain, source).await?;
    let guard = keys::workspace_account(ws, account.id());
    for _ in 0..3 {
        if let Some(existing) = app.store.get(&guard).await? {
            let rid = records::str_of(&existing, "relationshipId").unwrap_or_default().to_owned();
            if let Some(rel) = workspace_relationship(app, ws, &rid).await? {
                return Ok((rel, false));
            }
        }
        let id = linkcrm_domain::new_id(IdKind::Relationship);
        let now = time::now_string();
        let state = linkcrm_domain::derive::RelationshipState::new(PipelineStatus::Prospecting, &now);
        let mut item = records::new_relationship_item(
            &id,
            ws,
            &account,
            source,
            source_details.clone(),
            None,
            [None, None, None],
            &state,
            &now,
        );
        item.insert("initialStatus".into(), json!(PipelineStatus::Prospecting));
        let guard_item = obj(json!({
            "PK": guard.pk, "SK": guard.sk, "entity": "workspaceAccount", "relationshipId": id,
            "status": PipelineStatus::Prospecting, "lastContactedByUsAt": null, "archived": false,
        }));
        let rel = RelationshipRecord(item.clone());
        let view = rel.view(false)?;
        let ops = vec![
            TxOp::put_if(guard_item, Condition::NotExists),
            TxOp::put_if(item, Condition::NotExists),
            crate::outbox::event("link_building.relationship.created", Some(ws), json!(view)),
        ];
        match app.store.transact(ops).await {
            Ok(()) => return Ok((rel, true)),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The relationship was being created concurrently; retry."))
}

/// An event to record on a relationship.
#[derive(Clone)]
pub struct NewEvent {
    pub r#type: EventType,
    pub contact_id: Option<String>,
    pub subject: Option<String>,
    pub content: Option<String>,
    pub metadata: Option<Value>,
    /// Back-dating; now when absent.
    pub occurred_at: Option<String>,
}

impl NewEvent {
    fn clone_with_from(&self, from: PipelineStatus) -> NewEvent {
        let mut e = self.clone();
        if e.r#type == EventType::StatusChanged {
            if let Some(Value::Object(m)) = e.metadata.as_mut() {
                m.insert("from".into(), json!(from));
            }
        }
        e
    }
}

/// Builds extra transaction parts for one attempt of `record_event`, given the event item that
/// attempt is about to write (its id changes from attempt to attempt).
pub type RideOps = Box<dyn Fn(&Item) -> DataResult<Vec<TxOp>> + Send + Sync>;

/// Why [`record_event`] recorded nothing. The event operations answer it as a problem (the
/// `From` below is the one place that decides how); workers match on it.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("relationship {0} not found in this workspace")]
    RelationshipNotFound(String),
    /// `If-Match` named another version than the current one.
    #[error("the relationship is at version {0}, not the one named")]
    PreconditionFailed(i64),
    /// A STATUS_CHANGED to the status the relationship already has.
    #[error("the relationship's status is already {0}")]
    StatusUnchanged(PipelineStatus),
    /// A condition of [`Ride::ops`] failed: retrying would not change that.
    #[error("a change committed with this event no longer applies")]
    RideConditionFailed,
    /// Other writers changed the relationship on every attempt.
    #[error("the relationship changed concurrently too often")]
    Contention,
    #[error("the event's transaction would have {0} parts")]
    TooManyParts(usize),
    #[error(transparent)]
    Data(#[from] DataError),
}

impl From<StoreError> for EventError {
    fn from(e: StoreError) -> Self {
        EventError::Data(e.into())
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::RelationshipNotFound(id) => ApiError::not_found("relationship_not_found", "relationship", &id),
            EventError::PreconditionFailed(current) => ApiError::precondition_failed(current),
            EventError::StatusUnchanged(status) => status_unchanged(status),
            EventError::RideConditionFailed => ApiError::conflict(
                RIDE_CONDITION_FAILED,
                "A change committed with this event no longer applies; nothing was recorded.",
            ),
            EventError::Contention => {
                ApiError::conflict("conflict", "The relationship changed concurrently too often; retry.")
            }
            EventError::TooManyParts(parts) => {
                tracing::error!(parts, "an event's transaction would exceed the store's limit");
                ApiError::internal()
            }
            EventError::Data(e) => e.into(),
        }
    }
}

/// The most parts one transaction may have (DynamoDB's TransactWriteItems limit).
pub const MAX_TX_PARTS: usize = 100;

/// Field changes that ride along with the event in the same transaction (a PATCH that also
/// changes the status), and the version the caller read (`If-Match`).
#[derive(Default)]
pub struct Ride {
    pub set: Vec<(String, Value)>,
    /// Changes to the workspace-account summary item.
    pub guard_set: Vec<(String, Value)>,
    pub if_version: Option<i64>,
    /// Events recorded after this one in the same transaction, in order (a stage move's status
    /// change). A STATUS_CHANGED to the status the relationship has by then is left out.
    pub follow: Vec<NewEvent>,
    /// Other items' changes committed in the event's transaction (the send job's claim result and
    /// invocation finish). Called again on every attempt, so the parts are rebuilt around that
    /// attempt's event. They must not touch an item the event itself writes (relationship,
    /// workspace-account summary, account, contact, event, `MSGID#`, outbox). When one of their
    /// conditions fails, `record_event` does not retry: it answers 409 `ride_condition_failed`.
    pub ops: Option<RideOps>,
}

/// The code `record_event` answers with when a condition of `Ride::ops` failed.
pub const RIDE_CONDITION_FAILED: &str = "ride_condition_failed";

/// Records an event and everything it changes — the relationship's derived state and index keys,
/// the workspace-account summary, the shared account's contact facts, the outbox — in one
/// transaction. Retries when another writer changed the relationship (or the account's recent
/// sends) between read and write. `read` is the relationship as the caller just read it, if it did.
pub async fn record_event(
    app: &App,
    agency_id: &str,
    ws: &str,
    rel_id: &str,
    new: NewEvent,
    ride: Ride,
    read: Option<RelationshipRecord>,
) -> Result<Item, EventError> {
    let policy = CoolingPolicy::from_env();
    // The caller's fresh read serves the first attempt; a retry reads again.
    let mut read = read;
    for _ in 0..ATTEMPTS {
        let rel = match read.take() {
            Some(r) => r,
            None => workspace_relationship(app, ws, rel_id)
                .await?
                .ok_or_else(|| EventError::RelationshipNotFound(rel_id.to_owned()))?,
        };
        // Id and time are taken after the read each attempt: a commit needs the latest `seq`, so
        // the log's time order (and id order) follows commit order for events that are not
        // back-dated.
        let id = linkcrm_domain::new_id(IdKind::Event);
        let now = time::now_string();
        let occurred_at = new.occurred_at.clone().unwrap_or_else(|| now.clone());
        if let Some(v) = ride.if_version {
            if v != rel.version() {
                return Err(EventError::PreconditionFailed(rel.version()));
            }
        }
        let facts = facts_of(&new, &occurred_at, ws, &id);
        let before = rel.state();
        // A status change that would not change the status is not an event: two concurrent
        // changes to the same status record one STATUS_CHANGED, not a second whose `from` equals
        // its `to`. The status read here is pinned by the relationship's condition below.
        let status_change = new.r#type == EventType::StatusChanged;
        if status_change && facts.status_to == Some(before.status) {
            return Err(EventError::StatusUnchanged(before.status));
        }
        let mut after = before.clone();
        after.apply(&facts);
        // A status change records where it started from as of this attempt's read, so the log
        // stays a chain even when concurrent changes made an earlier attempt lose.
        let new = new.clone_with_from(before.status);

        let acct = rel.account_id().to_owned();
        let event_item = event_item(&id, agency_id, ws, &rel, &new, &occurred_at, &now, after.seq);
        // Events that follow this one in the same commit: the caller's (a stage move's status
        // change), or the moves of the relationship's open opportunities that a derived status
        // change carries along (CONTRACT "Derived state"; `crate::pipeline`).
        let mut extra: Vec<(NewEvent, Item)> = Vec::new();
        for f in &ride.follow {
            let f_id = linkcrm_domain::new_id(IdKind::Event);
            let f_facts = facts_of(f, &now, ws, &f_id);
            if f.r#type == EventType::StatusChanged && f_facts.status_to == Some(after.status) {
                continue;
            }
            let f = f.clone_with_from(after.status);
            after.apply(&f_facts);
            let item = self::event_item_of(&f_id, agency_id, ws, &rel, &f, &now, after.seq);
            extra.push((f, item));
        }
        let derived =
            ride.follow.is_empty() && !matches!(new.r#type, EventType::StatusChanged | EventType::LeadStageChanged);
        let mut pipeline_ops = Vec::new();
        if derived && before.status != after.status && crate::pipeline::has_opportunities(&rel) {
            let (moves, ops) = crate::pipeline::follow_status(app, ws, &rel, after.status, &now).await?;
            for m in moves {
                let m_id = linkcrm_domain::new_id(IdKind::Event);
                after.apply(&facts_of(&m, &now, ws, &m_id));
                let item = self::event_item_of(&m_id, agency_id, ws, &rel, &m, &now, after.seq);
                extra.push((m, item));
            }
            pipeline_ops = ops;
        }
        let mut rel_update = Update::new().set("updatedAt", now.clone()).add("version", 1);
        for (k, v) in records::state_attrs(rel_id, ws, &after) {
            rel_update = rel_update.set(k, v);
        }
        for (k, v) in &ride.set {
            rel_update = rel_update.set(k.clone(), v.clone());
        }
        let mut rel_cond = vec![
            Condition::Equals("seq".into(), json!(before.seq)),
            // Opportunities linked since the read would miss the moves this event carries.
            match rel.0.get(crate::pipeline::OPP_COUNT) {
                Some(v) => Condition::Equals(crate::pipeline::OPP_COUNT.into(), v.clone()),
                None => Condition::AttrAbsent(crate::pipeline::OPP_COUNT.into()),
            },
        ];
        if status_change {
            rel_cond.push(Condition::Equals("status".into(), json!(before.status)));
        }
        if let Some(v) = ride.if_version {
            rel_cond.push(Condition::VersionEquals(v));
        }
        let mut ops = vec![
            TxOp::put_if(event_item.clone(), Condition::NotExists),
            TxOp::update_if(keys::relationship(rel_id), rel_update, Condition::And(rel_cond)),
        ];
        // The workspace-account summary changes only with the status or our last contact (most
        // events, notes and replies, leave both): no write for nothing.
        let summary_changes = before.status != after.status
            || before.last_contacted_by_us_at != after.last_contacted_by_us_at
            || !ride.guard_set.is_empty();
        if summary_changes {
            ops.push(TxOp::update_if(
                keys::workspace_account(ws, &acct),
                ride.guard_set.iter().fold(
                    Update::new()
                        .set("status", json!(after.status))
                        .set("lastContactedByUsAt", json!(after.last_contacted_by_us_at)),
                    |u, (k, v)| u.set(k.clone(), v.clone()),
                ),
                Condition::Exists,
            ));
        }
        if let Some(op) = account_op(app, &acct, &facts, policy).await? {
            ops.push(op);
        }
        // Contacts are shared: remember which workspaces' events name one, so a delete from one
        // workspace cannot pull it from under another's history.
        if let Some(cid) = &new.contact_id {
            ops.push(TxOp::update_if(keys::contact(cid), contact_ref_mark(ws), Condition::Exists));
        }
        if let Some(op) = message_id_op(&new, &id, ws, rel_id) {
            ops.push(op);
        }
        // The campaigns this relationship is in: their members' attribution and counters.
        ops.extend(crate::campaign_facts::event_ops(app, &rel, &new, &occurred_at).await?);
        let event_view = json!(records::event_view(&event_item)?);
        ops.push(outbox::event("link_building.event.created", Some(ws), event_view.clone()));
        for (e, item) in &extra {
            ops.push(TxOp::put_if(item.clone(), Condition::NotExists));
            ops.extend(crate::campaign_facts::event_ops(app, &rel, e, &now).await?);
            ops.push(outbox::event("link_building.event.created", Some(ws), json!(records::event_view(item)?)));
        }
        ops.extend(pipeline_ops);
        // Webhook payloads are snapshots at commit: the relationship as this transaction leaves
        // it (CONTACTED_BY_OTHER_ORG is a read-time view and is not applied), its version, and
        // what changed.
        let version = rel.version() + 1;
        let snapshot = || -> Result<Value, EventError> {
            let mut item = rel.0.clone();
            for (k, v) in records::state_attrs(rel_id, ws, &after) {
                item.insert(k.into(), v);
            }
            for (k, v) in &ride.set {
                item.insert(k.clone(), v.clone());
            }
            item.insert("updatedAt".into(), json!(now));
            item.insert("version".into(), json!(version));
            Ok(json!(RelationshipRecord(item).view(false)?))
        };
        if before.status != after.status {
            ops.push(outbox::event(
                "link_building.relationship.status_changed",
                Some(ws),
                json!({ "relationshipId": rel_id, "accountId": acct, "from": before.status, "to": after.status,
                        "eventId": id, "relationship": snapshot()?, "previous": { "status": before.status },
                        "version": version }),
            ));
        }
        if new.r#type == EventType::LinkPlaced {
            ops.push(outbox::event(
                "link_building.link.placed",
                Some(ws),
                json!({ "relationshipId": rel_id, "accountId": acct, "eventId": id,
                        "linkUrl": new.metadata.as_ref().and_then(|m| m.get("linkUrl")), "occurredAt": occurred_at,
                        "event": event_view, "relationship": snapshot()?, "version": version }),
            ));
        }
        // A placed link with its page's URL is monitored from now on: the monitoring context makes
        // its record from this job (the link id is the event's, so a repeat makes one link).
        if facts.link.is_some() && new.r#type == EventType::LinkPlaced {
            ops.push(link_track_op(ws, rel_id, &id)?);
        }
        let email_type = match new.r#type {
            EventType::EmailSent => Some("link_building.email.sent"),
            EventType::EmailReceived => Some("link_building.email.received"),
            EventType::EmailBounced => Some("link_building.email.bounced"),
            EventType::EmailOpened => Some("link_building.email.opened"),
            _ => None,
        };
        if let Some(t) = email_type {
            let mut data = event_view.clone();
            data["relationshipStatus"] = json!(after.status);
            data["relationshipVersion"] = json!(version);
            ops.push(outbox::event(t, Some(ws), data));
        }
        let ride_from = ops.len();
        if let Some(build) = &ride.ops {
            ops.extend(build(&event_item)?);
        }
        if ops.len() > MAX_TX_PARTS {
            return Err(EventError::TooManyParts(ops.len()));
        }
        match app.store.transact(ops).await {
            Ok(()) => return Ok(event_item),
            // The caller's own parts failed: retrying the event would not change that.
            Err(StoreError::ConditionFailed { op: Some(i) }) if i >= ride_from => {
                return Err(EventError::RideConditionFailed)
            }
            Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EventError::Contention)
}

/// The job that starts monitoring the link a LINK_PLACED names.
fn link_track_op(ws: &str, rel_id: &str, event_id: &str) -> Result<TxOp, EventError> {
    use linkcrm_core::jobkinds::JobKind;
    let job = linkcrm_jobs::Job::new(
        JobKind::LinkTrack.as_str(),
        json!({ "workspaceId": ws, "relationshipId": rel_id, "eventId": event_id }),
    );
    Ok(linkcrm_jobs::StoreQueue::enqueue_op(JobKind::LinkTrack.store_queue(), &job, std::time::Duration::ZERO)
        .map_err(DataError::from)?)
}

/// A follow-up event's item (recorded now, in the same commit as the event it follows).
fn event_item_of(
    id: &str,
    agency: &str,
    ws: &str,
    rel: &RelationshipRecord,
    new: &NewEvent,
    now: &str,
    seq: i64,
) -> Item {
    event_item(id, agency, ws, rel, new, new.occurred_at.as_deref().unwrap_or(now), now, seq)
}

/// What the fold needs of an event.
fn facts_of(new: &NewEvent, occurred_at: &str, ws: &str, event_id: &str) -> EventFacts {
    EventFacts {
        link: linkcrm_domain::links::fact_of(new.r#type, event_id, new.metadata.as_ref()),
        r#type: new.r#type,
        occurred_at: new.occurred_at.clone().unwrap_or_else(|| occurred_at.to_owned()),
        workspace_id: ws.to_owned(),
        status_to: new
            .metadata
            .as_ref()
            .and_then(|m| m.get("to"))
            .and_then(Value::as_str)
            .and_then(PipelineStatus::parse),
        out_of_office: new.metadata.as_ref().and_then(|m| m.get("replyClass")).and_then(Value::as_str)
            == Some("out_of_office"),
    }
}

/// The code `record_event` answers a STATUS_CHANGED with when the relationship already has that
/// status (as of the commit it would have made).
pub const STATUS_UNCHANGED: &str = "status_unchanged";

fn status_unchanged(status: PipelineStatus) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        STATUS_UNCHANGED,
        format!("The relationship's status is already {status}; nothing was recorded."),
    )
    .with_details(json!({ "status": status }))
}

/// An EMAIL_SENT carrying `metadata.messageId` also writes the `MSGID#` lookup item, in the same
/// transaction, so inbound mail can be matched to the relationship it answers. A plain put: the
/// message id is globally unique, and re-recording the same send points at the latest event.
fn message_id_op(new: &NewEvent, event_id: &str, ws: &str, rel_id: &str) -> Option<TxOp> {
    if new.r#type != EventType::EmailSent {
        return None;
    }
    let mid = new.metadata.as_ref()?.get("messageId")?.as_str()?.trim().trim_matches(['<', '>']);
    if mid.is_empty() {
        return None;
    }
    let key = crate::keys::message_id(mid);
    let meta = |k: &str| new.metadata.as_ref().and_then(|m| m.get(k)).cloned().unwrap_or(Value::Null);
    Some(TxOp::put(obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "messageId", "messageId": mid,
        "relationshipId": rel_id, "workspaceId": ws, "eventId": event_id,
        "contactId": new.contact_id, "mailboxId": meta("mailboxId"), "invocationId": meta("invocationId"),
        "campaignId": meta("campaignId"),
    }))))
}

/// The shared account's change for an event, if it has one. Counters and first/last stamps are
/// order-independent atomic updates; the recent-sends list is guarded by the value read.
async fn account_op(app: &App, acct: &str, e: &EventFacts, policy: CoolingPolicy) -> DataResult<Option<TxOp>> {
    let key = keys::account(acct);
    match e.r#type {
        EventType::EmailSent => {
            let current = app
                .store
                .get(&key)
                .await?
                .map(AccountRecord)
                .ok_or_else(|| records::corrupt("account", format!("{acct} is missing under its relationship")))?;
            // The fold replay uses gives the read-modify-write values; counters and stamps are
            // written as order-independent actions below.
            let before = current.facts();
            let mut after = before.clone();
            after.apply(e, policy);
            let stamp = contact_stamp(&e.occurred_at, &e.workspace_id);
            let update = Update::new()
                .add("contactAttemptCount", 1)
                .min("firstContact", stamp.clone())
                .max("lastContact", stamp)
                .max(format!("{ORG_CONTACT}{}", e.workspace_id), e.occurred_at.clone())
                .set("recentSends", json!(after.recent_sends))
                .set(LATEST_ORG_CONTACTS, json!(after.latest_org_contacts()));
            // Both read-modify-write attributes are guarded by the values they were computed from.
            let latest_guard = match current.0.get(LATEST_ORG_CONTACTS) {
                Some(v) => Condition::Equals(LATEST_ORG_CONTACTS.into(), v.clone()),
                None => Condition::AttrAbsent(LATEST_ORG_CONTACTS.into()),
            };
            let guard =
                Condition::And(vec![Condition::Equals("recentSends".into(), json!(before.recent_sends)), latest_guard]);
            Ok(Some(TxOp::update_if(key, update, guard)))
        }
        EventType::EmailReceived if !e.out_of_office => {
            let update = Update::new().add("receivedCount", 1).max("lastReceivedAt", e.occurred_at.clone());
            Ok(Some(TxOp::update_if(key, update, Condition::Exists)))
        }
        _ => Ok(None),
    }
}

/// A relationship event as stored, with every index key. Public so the benchmark loader writes
/// exactly the layout the write path does.
#[allow(clippy::too_many_arguments)]
pub fn event_item(
    id: &str,
    agency: &str,
    ws: &str,
    rel: &RelationshipRecord,
    new: &NewEvent,
    occurred_at: &str,
    now: &str,
    seq: i64,
) -> Item {
    let key = keys::event(id);
    let acct = rel.account_id();
    let sort = keys::time_sort(occurred_at, id);
    obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "event",
        "id": id, "organizationId": ws, "relationshipId": rel.id(), "accountId": acct, "contactId": new.contact_id,
        "type": new.r#type, "subject": new.subject, "content": new.content, "metadata": new.metadata,
        "occurredAt": occurred_at, "createdAt": now, "agencyId": agency, "seq": seq,
        "GSI1PK": keys::relationship_events_pk(ws, acct), "GSI1SK": sort,
        "GSI2PK": keys::workspace_events_pk(ws), "GSI2SK": sort,
        "GSI4PK": keys::account_events_pk(acct), "GSI4SK": keys::agency_event_sort(agency, occurred_at, id),
    }))
}

/// An account-scoped event (price change, DO_NOT_CONTACT, metrics): the account log every
/// workspace reads. Returns the item to add to the caller's transaction.
pub fn account_event_item(
    acct: &str,
    r#type: EventType,
    ws: Option<&str>,
    key_id: &str,
    metadata: Value,
    seq: i64,
) -> Item {
    let id = linkcrm_domain::new_id(IdKind::Event);
    let now = time::now_string();
    let key = keys::event(&id);
    obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "event",
        "id": id, "organizationId": ws, "relationshipId": null, "accountId": acct, "contactId": null,
        "type": r#type, "subject": null, "content": null,
        "metadata": { "workspaceId": ws, "keyId": key_id, "details": metadata },
        "occurredAt": now, "createdAt": now, "seq": seq,
        "GSI1PK": keys::account_history_pk(acct), "GSI1SK": keys::time_sort(&now, &id),
    }))
}

/// The contact who holds `email` (emails are unique among contacts), or a new one at `account`
/// with the name given: `(contact id, its account id)`. For the inbound negotiator, whose
/// senders become contacts. A concurrent creator of the same email wins and its contact is used.
pub async fn ensure_contact(
    app: &App,
    ws: &str,
    account: &str,
    email: &str,
    first_name: Option<String>,
    last_name: Option<String>,
) -> ApiResult<(String, String)> {
    let email = linkcrm_domain::normalize::normalize_email(email)
        .ok_or_else(|| ApiError::invalid_field("email", "invalid_email", "is not an email address"))?;
    for _ in 0..ATTEMPTS {
        if let Some(guard) = app.store.get(&keys::email_guard(&email)).await? {
            let (c, a) = (records::str_of(&guard, "contactId"), records::str_of(&guard, "accountId"));
            if let (Some(c), Some(a)) = (c, a) {
                return Ok((c.to_owned(), a.to_owned()));
            }
        }
        let now = time::now_string();
        let contact = linkcrm_domain::crm::Contact {
            id: linkcrm_domain::new_id(IdKind::Contact),
            account_id: account.to_owned(),
            first_name: first_name.clone(),
            last_name: last_name.clone(),
            email: Some(email.clone()),
            created_at: now.clone(),
            updated_at: now,
            ..Default::default()
        };
        let ops = vec![
            TxOp::put_if(records::contact_item(&contact, 1), Condition::NotExists),
            TxOp::put_if(records::email_guard_item(&email, &contact.id, account), Condition::NotExists),
            outbox::event("link_building.contact.created", Some(ws), json!(contact)),
        ];
        match app.store.transact(ops).await {
            Ok(()) => return Ok((contact.id, account.to_owned())),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The contact was being created concurrently; retry."))
}
