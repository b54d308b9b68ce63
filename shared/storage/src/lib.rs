//! The `Store` port: one single-table item store with two adapters that keep the same semantics.
//!
//! - [`embedded::EmbeddedStore`]: redb, an ACID ordered key-value store, for the local binary.
//! - [`dynamo::DynamoStore`]: DynamoDB through aws-sdk-dynamodb and serde_dynamo.
//!
//! `conformance` (behind the feature of that name) holds the one test suite both adapters must pass.

pub mod aws;
pub mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dynamo;
pub mod embedded;
#[cfg(feature = "conformance")]
pub mod fault;
mod model;
pub mod table;

pub use model::*;

use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    /// A write's condition did not hold. For a transaction, `op` is the failing part's index when
    /// the backend says which.
    #[error("condition failed")]
    ConditionFailed { op: Option<usize> },
    /// Another transaction touched the same items at the same moment; safe to retry.
    #[error("transaction conflict")]
    Conflict,
    #[error("item of {size} bytes exceeds the item size limit")]
    ItemTooLarge { size: usize },
    /// The request itself is malformed (bad key, duplicate items in a transaction, ...): a bug.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The backend could not be reached or throttled us: retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, StoreError::ConditionFailed { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Strongly consistent read of one item; expired items read as absent.
    async fn get(&self, key: &Key) -> Result<Option<Item>>;
    /// Writes a whole item (its PK and SK attributes name it).
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<()>;
    async fn delete(&self, key: &Key, cond: Option<Condition>) -> Result<()>;
    /// Applies atomic actions and returns the item as it is afterwards.
    async fn update(&self, key: &Key, update: Update, cond: Option<Condition>) -> Result<Item>;
    /// One page of a partition, in sort-key order. The primary index reads consistently;
    /// secondary indexes may lag a write (as DynamoDB's GSIs do).
    async fn query(&self, q: Query) -> Result<Page>;
    /// Reads many items; absent ones are left out. Order follows `keys`.
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>>;
    /// [`Store::batch_get`] returning only `attrs` of each item (with its key and `ttl`): for
    /// pages that need a field or two of many items. It may read eventually consistently (on
    /// DynamoDB it does, at half the read units), as the index queries that list pages do.
    async fn batch_get_attrs(&self, keys: &[Key], attrs: &[&str]) -> Result<Vec<Item>>;
    /// Deletes every key, unconditionally; absent keys are fine. Not atomic (as DynamoDB's
    /// BatchWriteItem): on an error some keys may be gone and others not, and repeating the call
    /// finishes it.
    async fn delete_many(&self, keys: &[Key]) -> Result<()>;
    /// All parts commit or none does.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<()>;
    /// Which backend this is, for logs and diagnostics.
    fn backend(&self) -> &'static str;
}

pub type DynStore = Arc<dyn Store>;

/// Checks shared by both adapters before a request reaches the backend.
pub(crate) fn validate_item(item: &Item) -> Result<Key> {
    let key = Key::of(item).ok_or_else(|| StoreError::Invalid("item lacks string PK/SK".into()))?;
    validate_key(&key)?;
    for (attr, value) in item {
        validate_index_value(attr, value)?;
    }
    let size = item_size(item);
    if size > table::table().max_item_bytes {
        return Err(StoreError::ItemTooLarge { size });
    }
    Ok(key)
}

/// The attributes secondary indexes are keyed on.
const INDEX_KEY_ATTRS: [&str; 8] = ["GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "GSI4PK", "GSI4SK"];

/// An index key attribute, when present, is a non-empty string without NUL (DynamoDB refuses
/// another type or an empty string; the embedded store's index layout needs no NUL). Refused the
/// same way by both adapters rather than indexed by one and skipped by the other.
fn validate_index_value(attr: &str, value: &serde_json::Value) -> Result<()> {
    if !INDEX_KEY_ATTRS.contains(&attr) {
        return Ok(());
    }
    match value.as_str() {
        Some(s) if !s.is_empty() && !s.contains('\0') => Ok(()),
        _ => Err(StoreError::Invalid(format!("index key {attr} must be a non-empty string, not {value}"))),
    }
}

/// The values an update sets on index key attributes, checked before anything is sent.
pub(crate) fn validate_update(update: &Update) -> Result<()> {
    for action in &update.actions {
        if let Action::Set(attr, value) = action {
            validate_index_value(attr, value)?;
        }
    }
    Ok(())
}

pub(crate) fn validate_key(key: &Key) -> Result<()> {
    if key.pk.is_empty() || key.sk.is_empty() || key.pk.contains('\0') || key.sk.contains('\0') {
        return Err(StoreError::Invalid(format!("bad key {key:?}")));
    }
    Ok(())
}

pub(crate) fn validate_tx(ops: &[TxOp]) -> Result<()> {
    if ops.is_empty() || ops.len() > table::table().max_transaction_items {
        return Err(StoreError::Invalid(format!(
            "a transaction takes 1 to {} parts",
            table::table().max_transaction_items
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        let key = op.key().ok_or_else(|| StoreError::Invalid("transaction part without key".into()))?;
        validate_key(&key)?;
        if !seen.insert(key.clone()) {
            return Err(StoreError::Invalid(format!("two transaction parts touch {key:?}")));
        }
        match op {
            TxOp::Put { item, .. } => {
                validate_item(item)?;
            }
            TxOp::Update { update, .. } => validate_update(update)?,
            _ => {}
        }
    }
    Ok(())
}
