//! Test-only doubles for the crate's unit tests: a minimal in-memory `Store` (primary index only,
//! no TTL expiry) and a recording bus. The tests that prove the relay run on the real adapters in
//! `tests/`; these keep the unit tests independent of them.

use crate::{BusError, DomainEvent, EventBus};
use async_trait::async_trait;
use linkcrm_storage::{Condition, Cursor, Index, Item, Key, Page, Query, Store, StoreError, TxOp, Update};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct InMemoryTestStore {
    items: Mutex<BTreeMap<Key, Item>>,
}

impl InMemoryTestStore {
    pub fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }
}

fn check(cond: &Option<Condition>, cur: Option<&Item>) -> Result<(), StoreError> {
    match cond {
        Some(c) if !c.holds(cur) => Err(StoreError::ConditionFailed { op: None }),
        _ => Ok(()),
    }
}

#[async_trait]
impl Store for InMemoryTestStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self.items.lock().unwrap().get(key).cloned())
    }
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), StoreError> {
        self.transact(vec![TxOp::Put { item, cond }]).await
    }
    async fn delete(&self, key: &Key, cond: Option<Condition>) -> Result<(), StoreError> {
        self.transact(vec![TxOp::Delete { key: key.clone(), cond }]).await
    }
    async fn update(&self, key: &Key, update: Update, cond: Option<Condition>) -> Result<Item, StoreError> {
        self.transact(vec![TxOp::Update { key: key.clone(), update, cond }]).await?;
        Ok(self.items.lock().unwrap()[key].clone())
    }
    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        assert_eq!(q.index, Index::Primary, "the test store has no secondary indexes");
        assert!(q.forward, "the test store reads forward only");
        let items = self.items.lock().unwrap();
        let after = q.cursor.as_ref().map(|c| c.last["SK"].clone());
        let mut page: Vec<Item> = items
            .iter()
            .filter(|(k, _)| k.pk == q.pk && q.sk.matches(&k.sk) && after.as_ref().is_none_or(|a| k.sk > *a))
            .map(|(_, v)| v.clone())
            .take(q.limit + 1)
            .collect();
        let more = page.len() > q.limit;
        page.truncate(q.limit);
        let cursor = if more { page.last().and_then(|i| Cursor::for_item(Index::Primary, i)) } else { None };
        Ok(Page { items: page, cursor })
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let items = self.items.lock().unwrap();
        Ok(keys.iter().filter_map(|k| items.get(k).cloned()).collect())
    }
    async fn batch_get_attrs(&self, keys: &[Key], attrs: &[&str]) -> Result<Vec<Item>, StoreError> {
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
        let mut items = self.batch_get(keys).await?;
        items.iter_mut().for_each(|i| linkcrm_storage::project(i, &attrs));
        Ok(items)
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        for k in keys {
            items.remove(k);
        }
        Ok(())
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        for (i, op) in ops.iter().enumerate() {
            let key = op.key().ok_or_else(|| StoreError::Invalid("no key".into()))?;
            let cond = match op {
                TxOp::Put { cond, .. } | TxOp::Update { cond, .. } | TxOp::Delete { cond, .. } => cond.clone(),
                TxOp::Check { cond, .. } => Some(cond.clone()),
            };
            check(&cond, items.get(&key)).map_err(|_| StoreError::ConditionFailed { op: Some(i) })?;
        }
        for op in ops {
            match op {
                TxOp::Put { item, .. } => {
                    items.insert(Key::of(&item).unwrap(), item);
                }
                TxOp::Update { key, update, .. } => {
                    let mut item = items.get(&key).cloned().unwrap_or_else(|| {
                        let mut i = Item::new();
                        i.insert("PK".into(), key.pk.clone().into());
                        i.insert("SK".into(), key.sk.clone().into());
                        i
                    });
                    update.apply(&mut item)?;
                    items.insert(key, item);
                }
                TxOp::Delete { key, .. } => {
                    items.remove(&key);
                }
                TxOp::Check { .. } => {}
            }
        }
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "in-memory-test"
    }
}

/// Records what it publishes; fails while `failures_left` is above zero, and refuses any batch
/// holding the `poison` event id.
#[derive(Default)]
pub struct RecordingBus {
    pub published: Mutex<Vec<DomainEvent>>,
    pub failures_left: AtomicUsize,
    pub poison: Mutex<Option<String>>,
}

impl RecordingBus {
    pub fn ids(&self) -> Vec<String> {
        self.published.lock().unwrap().iter().map(|e| e.id.clone()).collect()
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(BusError::Unavailable("test bus is down".into()));
        }
        let poison = self.poison.lock().unwrap().clone();
        if let Some(p) = poison.filter(|p| events.iter().any(|e| e.id == *p)) {
            return Err(BusError::Refused { failed: 1, detail: format!("{p} is poison") });
        }
        self.published.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}
