//! A `Store` that fails on purpose: wraps another store and answers chosen calls with a chosen
//! error (a transaction conflict, throttling, an outage), so tests can drive the error paths that
//! only a busy DynamoDB reaches. Test builds only (the `conformance` feature).

use crate::{Condition, Item, Key, Page, Query, Result, Store, StoreError, TxOp, Update};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// The store calls a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Get,
    Put,
    Delete,
    Update,
    Query,
    BatchGet,
    Transact,
}

struct Rule {
    call: Call,
    error: StoreError,
    /// Calls left to fail; `None` fails every call until cleared.
    remaining: Option<usize>,
    /// Matching calls to let through before failing.
    skip: usize,
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    rules: Mutex<Vec<Rule>>,
    injected: Mutex<usize>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<FaultyStore> {
        Arc::new(FaultyStore { inner, rules: Mutex::new(Vec::new()), injected: Mutex::new(0) })
    }

    /// Every `call` fails with `error` from now on (`times`: only the next that many).
    pub fn fail(&self, call: Call, error: StoreError, times: Option<usize>) {
        self.fail_after(0, call, error, times);
    }

    /// As [`fail`](Self::fail), after letting the next `skip` such calls through.
    pub fn fail_after(&self, skip: usize, call: Call, error: StoreError, times: Option<usize>) {
        self.rules.lock().unwrap().push(Rule { call, error, remaining: times, skip });
    }

    /// No more faults.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// How many calls were failed on purpose so far.
    pub fn injected(&self) -> usize {
        *self.injected.lock().unwrap()
    }

    fn check(&self, call: Call) -> Result<()> {
        let mut rules = self.rules.lock().unwrap();
        let Some(rule) = rules.iter_mut().find(|r| r.call == call && r.remaining != Some(0)) else { return Ok(()) };
        if rule.skip > 0 {
            rule.skip -= 1;
            return Ok(());
        }
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        *self.injected.lock().unwrap() += 1;
        Err(rule.error.clone())
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.check(Call::Get)?;
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<()> {
        self.check(Call::Put)?;
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Condition>) -> Result<()> {
        self.check(Call::Delete)?;
        self.inner.delete(key, cond).await
    }
    async fn update(&self, key: &Key, update: Update, cond: Option<Condition>) -> Result<Item> {
        self.check(Call::Update)?;
        self.inner.update(key, update, cond).await
    }
    async fn query(&self, q: Query) -> Result<Page> {
        self.check(Call::Query)?;
        self.inner.query(q).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>> {
        self.check(Call::BatchGet)?;
        self.inner.batch_get(keys).await
    }
    async fn batch_get_attrs(&self, keys: &[Key], attrs: &[&str]) -> Result<Vec<Item>> {
        self.check(Call::BatchGet)?;
        self.inner.batch_get_attrs(keys, attrs).await
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<()> {
        self.check(Call::Delete)?;
        self.inner.delete_many(keys).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<()> {
        self.check(Call::Transact)?;
        self.inner.transact(ops).await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

/// A conflict, as DynamoDB reports a transaction that met another on the same items.
pub fn conflict() -> StoreError {
    StoreError::Conflict
}

/// Throttling, as DynamoDB reports exceeded throughput.
pub fn throttled() -> StoreError {
    StoreError::Unavailable("ProvisionedThroughputExceededException (injected)".into())
}
