//! The audit log: every successful write through the executor records who did it (key, agency or
//! workspace key), the operation, its targets, the request id, the idempotency key and when, in
//! the same transaction as the change.
//!
//! How: the executor runs a writing operation inside [`scope`], and the app's store is an
//! [`AuditingStore`]. The first transaction that operation commits carries the audit entry as one
//! more part; a plain put or delete becomes a transaction with it. An operation whose first write
//! is an `update` (which answers the item) writes the entry right after it. Work done outside a
//! request (jobs, schedules) is not in a scope and writes no entry. Entries live
//! `LINKCRM_AUDIT_RETENTION_DAYS` (365) through the table's TTL.
//!
//! Item: `AUDIT#<ws>` (or `AUDIT#<agency>` for agency-level operations) / `<aud id>`; ids sort by
//! time, so a window is one range Query.

use async_trait::async_trait;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Item, Key, Page, Query, Result, Store, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const DEFAULT_RETENTION_DAYS: i64 = 365;

/// How long entries are kept: `LINKCRM_AUDIT_RETENTION_DAYS` (1 to 3650), 365 by default.
pub fn retention_days() -> i64 {
    std::env::var("LINKCRM_AUDIT_RETENTION_DAYS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|d| (1..=3650).contains(d))
        .unwrap_or(DEFAULT_RETENTION_DAYS)
}

pub use crate::keys::audit_pk as partition;

/// One audit entry, as stored and as `GET /v1/audit` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `aud_…`
    pub id: String,
    pub at: String,
    /// The operation, by its catalogue name (`link_building.crm.relationship.create`).
    pub operation: String,
    /// The API key that made the call (`key_…`).
    pub key_id: String,
    /// `agency` or `workspace`.
    pub key_kind: String,
    pub agency_id: String,
    /// The workspace the call acted in; null for agency-level operations.
    pub workspace_id: Option<String>,
    /// Ids the call named or created.
    pub target_ids: Vec<String>,
    pub request_id: String,
    pub idempotency_key: Option<String>,
}

/// What the executor knows about a writing call before it runs.
pub struct Pending {
    entry: Entry,
    written: bool,
    /// Writes that are not the operation's change (health records): never audited.
    off: bool,
}

tokio::task_local! {
    static AUDIT: Arc<Mutex<Pending>>;
}

/// Runs `f` (an operation) so that its first successful write carries `entry`.
pub async fn scope<F: std::future::Future>(entry: Entry, f: F) -> F::Output {
    AUDIT.scope(Arc::new(Mutex::new(Pending { entry, written: false, off: false })), f).await
}

/// Runs `f` with no audit: for bookkeeping writes made during an operation that are not its
/// change (an integration's recorded health).
pub async fn outside<F: std::future::Future>(f: F) -> F::Output {
    let entry = Entry {
        id: String::new(),
        at: String::new(),
        operation: String::new(),
        key_id: String::new(),
        key_kind: String::new(),
        agency_id: String::new(),
        workspace_id: None,
        target_ids: Vec::new(),
        request_id: String::new(),
        idempotency_key: None,
    };
    AUDIT.scope(Arc::new(Mutex::new(Pending { entry, written: true, off: true })), f).await
}

/// Ids in an operation's input that name things: `id` and the `…Id`/`…Ids` fields, top level.
pub fn targets_of(input: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(obj) = input.as_object() else { return out };
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str().filter(|s| looks_like_id(s)) {
            if !out.iter().any(|x| x == s) && out.len() < 20 {
                out.push(s.to_owned());
            }
        }
    };
    for (k, v) in obj {
        if k == "id" || k.ends_with("Id") {
            push(v);
        } else if k.ends_with("Ids") {
            for x in v.as_array().into_iter().flatten() {
                push(x);
            }
        }
    }
    out
}

fn looks_like_id(s: &str) -> bool {
    s.len() <= 64 && s.split_once('_').is_some_and(|(p, rest)| !p.is_empty() && p.len() <= 6 && rest.len() >= 8)
}

/// The entry's item.
pub fn item(e: &Entry) -> Item {
    let owner = e.workspace_id.as_deref().unwrap_or(&e.agency_id);
    let mut item = crate::items::obj(json!(e));
    item.insert("PK".into(), partition(owner).into());
    item.insert("SK".into(), e.id.clone().into());
    item.insert("entity".into(), "audit".into());
    item.insert("ttl".into(), (chrono::Utc::now().timestamp() + retention_days() * 86_400).into());
    item
}

/// A new entry's id and time.
pub fn new_entry(
    operation: &str,
    caller: &crate::context::Caller,
    workspace: Option<&str>,
    targets: Vec<String>,
    idempotency_key: Option<String>,
) -> Entry {
    Entry {
        id: linkcrm_domain::new_id(IdKind::Audit),
        at: time::now_string(),
        operation: operation.to_owned(),
        key_id: caller.key_id.clone(),
        key_kind: if caller.is_agency() { "agency" } else { "workspace" }.to_owned(),
        agency_id: caller.agency_id.clone(),
        workspace_id: workspace.map(str::to_owned),
        target_ids: targets,
        request_id: crate::context::current_request_id(),
        idempotency_key,
    }
}

/// The audit part a write of this task carries: the entry itself on the first write, then, on a
/// later write that creates more records, an update of the entry's targets. Each put item's `id`
/// is a target (the ids the call creates).
fn pending_part(ops: &[TxOp]) -> Option<(Arc<Mutex<Pending>>, TxOp)> {
    let state = AUDIT.try_with(Clone::clone).ok()?;
    let mut p = state.lock().unwrap_or_else(|e| e.into_inner());
    if p.off {
        return None;
    }
    let mut added = false;
    for op in ops {
        if let TxOp::Put { item, .. } = op {
            let Some(id) = item.get("id").and_then(Value::as_str).filter(|s| looks_like_id(s)) else { continue };
            if item.get("entity").and_then(Value::as_str) == Some("audit") {
                continue;
            }
            if !p.entry.target_ids.iter().any(|x| x == id) && p.entry.target_ids.len() < 20 {
                p.entry.target_ids.push(id.to_owned());
                added = true;
            }
        }
    }
    let part = if !p.written {
        TxOp::put_if(item(&p.entry), Condition::NotExists)
    } else if added {
        let owner = p.entry.workspace_id.as_deref().unwrap_or(&p.entry.agency_id);
        let key = crate::keys::audit_entry(owner, &p.entry.id);
        TxOp::update(key, Update::new().set("targetIds", json!(p.entry.target_ids)))
    } else {
        return None;
    };
    drop(p);
    Some((state, part))
}

fn mark_written(state: &Arc<Mutex<Pending>>) {
    state.lock().unwrap_or_else(|e| e.into_inner()).written = true;
}

/// The app's store: the inner store, plus the audit entry on the first write of an audited call.
pub struct AuditingStore {
    inner: linkcrm_storage::DynStore,
}

impl AuditingStore {
    pub fn new(inner: linkcrm_storage::DynStore) -> Self {
        AuditingStore { inner }
    }

    /// Transactions carry at most 100 parts (DynamoDB); one already full cannot carry the entry,
    /// which is then written beside it.
    const MAX_PARTS: usize = 100;
}

#[async_trait]
impl Store for AuditingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<()> {
        let op = TxOp::Put { item: item.clone(), cond: cond.clone() };
        match pending_part(std::slice::from_ref(&op)) {
            Some((state, part)) => {
                self.inner.transact(vec![op, part]).await?;
                mark_written(&state);
                Ok(())
            }
            None => self.inner.put(item, cond).await,
        }
    }

    async fn delete(&self, key: &Key, cond: Option<Condition>) -> Result<()> {
        match pending_part(&[]) {
            Some((state, part)) => {
                self.inner.transact(vec![TxOp::Delete { key: key.clone(), cond }, part]).await?;
                mark_written(&state);
                Ok(())
            }
            None => self.inner.delete(key, cond).await,
        }
    }

    async fn update(&self, key: &Key, update: Update, cond: Option<Condition>) -> Result<Item> {
        let out = self.inner.update(key, update, cond).await?;
        if let Some((state, TxOp::Put { item, cond })) =
            pending_part(&[]).filter(|(_, p)| matches!(p, TxOp::Put { .. }))
        {
            // An update answers the item, which a transaction cannot: the entry follows it.
            match self.inner.put(item, cond).await {
                Ok(()) => mark_written(&state),
                Err(e) => tracing::error!(error = %e, "could not write the audit entry of an update"),
            }
        }
        Ok(out)
    }

    async fn query(&self, q: Query) -> Result<Page> {
        self.inner.query(q).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>> {
        self.inner.batch_get(keys).await
    }

    async fn batch_get_attrs(&self, keys: &[Key], attrs: &[&str]) -> Result<Vec<Item>> {
        self.inner.batch_get_attrs(keys, attrs).await
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<()> {
        self.inner.delete_many(keys).await
    }

    async fn transact(&self, mut ops: Vec<TxOp>) -> Result<()> {
        let pending = pending_part(&ops);
        match pending {
            Some((state, part)) if ops.len() < Self::MAX_PARTS => {
                ops.push(part);
                self.inner.transact(ops).await?;
                mark_written(&state);
                Ok(())
            }
            Some((state, TxOp::Put { item, cond })) => {
                self.inner.transact(ops).await?;
                if self.inner.put(item, cond).await.is_ok() {
                    mark_written(&state);
                }
                Ok(())
            }
            Some((_, TxOp::Update { key, update, .. })) => {
                self.inner.transact(ops).await?;
                if let Err(e) = self.inner.update(&key, update, None).await {
                    tracing::warn!(error = %e, "could not add targets to the audit entry");
                }
                Ok(())
            }
            _ => self.inner.transact(ops).await,
        }
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_ids_an_input_names() {
        let input = json!({ "id": "rel_01JD3M0X2Z6Q8R4T5V7W9Y0A1B", "contactId": "ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1C",
                            "relationshipIds": ["rel_01JD3M0X2Z6Q8R4T5V7W9Y0A1D"], "name": "rel_not", "subject": "x" });
        assert_eq!(
            targets_of(&input),
            ["rel_01JD3M0X2Z6Q8R4T5V7W9Y0A1B", "ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1C", "rel_01JD3M0X2Z6Q8R4T5V7W9Y0A1D"]
        );
        assert!(targets_of(&json!("x")).is_empty());
    }
}
