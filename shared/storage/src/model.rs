//! The vocabulary of the `Store` port: items, keys, conditions, updates, queries.
//!
//! Items are JSON objects (`serde_json::Map`): strings, numbers, booleans, null, lists and maps map
//! one-to-one onto DynamoDB's S, N, BOOL, NULL, L and M, so the same item round-trips through both
//! adapters unchanged. Key attributes are always strings.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

pub type Item = serde_json::Map<String, Value>;

/// Primary-key attribute names (fixed by `infra/table.json`).
pub const PK: &str = "PK";
pub const SK: &str = "SK";
/// Epoch seconds after which an item reads as absent.
pub const TTL: &str = "ttl";
/// Optimistic-concurrency counter kept by the domain on versioned items.
pub const VERSION: &str = "version";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key { pk: pk.into(), sk: sk.into() }
    }

    /// The key of an item, if it carries string PK and SK attributes.
    pub fn of(item: &Item) -> Option<Key> {
        Some(Key { pk: item.get(PK)?.as_str()?.to_owned(), sk: item.get(SK)?.as_str()?.to_owned() })
    }
}

/// Which key a query runs on: the table's own key or one of its global secondary indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
    Gsi3,
    Gsi4,
}

impl Index {
    pub const SECONDARY: [Index; 4] = [Index::Gsi1, Index::Gsi2, Index::Gsi3, Index::Gsi4];

    pub fn name(self) -> Option<&'static str> {
        match self {
            Index::Primary => None,
            Index::Gsi1 => Some("GSI1"),
            Index::Gsi2 => Some("GSI2"),
            Index::Gsi3 => Some("GSI3"),
            Index::Gsi4 => Some("GSI4"),
        }
    }

    /// (partition key attribute, sort key attribute)
    pub fn key_attrs(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => (PK, SK),
            Index::Gsi1 => ("GSI1PK", "GSI1SK"),
            Index::Gsi2 => ("GSI2PK", "GSI2SK"),
            Index::Gsi3 => ("GSI3PK", "GSI3SK"),
            Index::Gsi4 => ("GSI4PK", "GSI4SK"),
        }
    }
}

/// A condition on the item a write targets. An item whose TTL has passed counts as absent.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The item exists (and has not expired).
    Exists,
    /// No live item has this key.
    NotExists,
    /// The item exists and `attr` equals the value.
    Equals(String, Value),
    /// The item is absent, or exists without `attr`.
    AttrAbsent(String),
    /// The item exists and carries `attr`.
    AttrPresent(String),
    /// The item exists and the number `attr` is at least the value.
    AtLeast(String, i64),
    /// The item is absent, lacks `attr`, or the number `attr` is below the value: a quota check
    /// ("fewer than n so far") that an `Add` can carry without reading the counter first.
    Below(String, i64),
    /// The item exists and its `version` attribute equals the value.
    VersionEquals(i64),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

impl Condition {
    /// The attributes the condition reads (`version` for [`Condition::VersionEquals`]).
    pub fn attrs(&self) -> Vec<&str> {
        match self {
            Condition::Exists | Condition::NotExists => Vec::new(),
            Condition::Equals(a, _)
            | Condition::AttrAbsent(a)
            | Condition::AttrPresent(a)
            | Condition::AtLeast(a, _)
            | Condition::Below(a, _) => vec![a.as_str()],
            Condition::VersionEquals(_) => vec!["version"],
            Condition::And(cs) | Condition::Or(cs) => cs.iter().flat_map(Condition::attrs).collect(),
        }
    }

    /// Evaluates the condition against the current (live) item. Both adapters use this definition:
    /// the embedded store directly, the DynamoDB adapter to classify a failed conditional write.
    pub fn holds(&self, item: Option<&Item>) -> bool {
        match self {
            Condition::Exists => item.is_some(),
            Condition::NotExists => item.is_none(),
            Condition::Equals(attr, v) => item.and_then(|i| i.get(attr)).is_some_and(|x| values_equal(x, v)),
            Condition::AttrAbsent(attr) => item.is_none_or(|i| !i.contains_key(attr)),
            Condition::AttrPresent(attr) => item.is_some_and(|i| i.contains_key(attr)),
            Condition::AtLeast(attr, n) => {
                item.and_then(|i| i.get(attr)).and_then(number_of).is_some_and(|x| x >= *n as f64)
            }
            Condition::Below(attr, n) => match item.and_then(|i| i.get(attr)) {
                None => true,
                Some(v) => number_of(v).is_some_and(|x| x < *n as f64),
            },
            Condition::VersionEquals(n) => {
                item.and_then(|i| i.get(VERSION)).and_then(number_of).is_some_and(|x| x == *n as f64)
            }
            Condition::And(cs) => cs.iter().all(|c| c.holds(item)),
            Condition::Or(cs) => cs.iter().any(|c| c.holds(item)),
        }
    }
}

pub(crate) fn number_of(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Equality as DynamoDB sees it: numbers compare by value (1 == 1.0), the rest structurally.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Ordering for `Max`: numbers by value, strings by UTF-8 bytes (as DynamoDB orders them).
/// Values of different kinds do not compare.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// One change to one top-level attribute. An update of a missing item creates it (as DynamoDB's
/// UpdateItem does) unless a condition requires it to exist.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Set(String, Value),
    Remove(String),
    /// Adds to a number; a missing attribute counts as 0.
    Add(String, i64),
    /// Sets the attribute only if the item does not carry it yet.
    SetIfAbsent(String, Value),
    /// Sets the attribute if it is missing or smaller (numbers, or strings such as RFC 3339 times).
    Max(String, Value),
    /// Sets the attribute if it is missing or larger.
    Min(String, Value),
}

impl Action {
    pub fn attr(&self) -> &str {
        match self {
            Action::Set(a, _)
            | Action::Remove(a)
            | Action::Add(a, _)
            | Action::SetIfAbsent(a, _)
            | Action::Max(a, _)
            | Action::Min(a, _) => a,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub actions: Vec<Action>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, attr: impl Into<String>, v: impl Into<Value>) -> Self {
        self.actions.push(Action::Set(attr.into(), v.into()));
        self
    }
    pub fn remove(mut self, attr: impl Into<String>) -> Self {
        self.actions.push(Action::Remove(attr.into()));
        self
    }
    pub fn add(mut self, attr: impl Into<String>, n: i64) -> Self {
        self.actions.push(Action::Add(attr.into(), n));
        self
    }
    pub fn set_if_absent(mut self, attr: impl Into<String>, v: impl Into<Value>) -> Self {
        self.actions.push(Action::SetIfAbsent(attr.into(), v.into()));
        self
    }
    pub fn max(mut self, attr: impl Into<String>, v: impl Into<Value>) -> Self {
        self.actions.push(Action::Max(attr.into(), v.into()));
        self
    }
    pub fn min(mut self, attr: impl Into<String>, v: impl Into<Value>) -> Self {
        self.actions.push(Action::Min(attr.into(), v.into()));
        self
    }
    /// Whether the update holds a `Max` or `Min`, which DynamoDB can only do after a read.
    pub fn has_max(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Max(..) | Action::Min(..)))
    }

    /// Applies the actions to an item (the embedded store's semantics, and the DynamoDB adapter's
    /// reference for `Max`). `Add` on a non-number is [`StoreError::Invalid`], as DynamoDB
    /// refuses it.
    pub fn apply(&self, item: &mut Item) -> Result<(), crate::StoreError> {
        for a in &self.actions {
            match a {
                Action::Set(k, v) => {
                    item.insert(k.clone(), v.clone());
                }
                Action::Remove(k) => {
                    item.remove(k);
                }
                Action::Add(k, n) => {
                    let cur = match item.get(k) {
                        None | Some(Value::Null) => 0,
                        Some(v) => v
                            .as_i64()
                            .ok_or_else(|| crate::StoreError::Invalid(format!("attribute {k} is not an integer")))?,
                    };
                    item.insert(k.clone(), Value::from(cur + n));
                }
                Action::SetIfAbsent(k, v) => {
                    item.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Action::Max(k, v) => {
                    let replace = match item.get(k) {
                        None | Some(Value::Null) => true,
                        Some(cur) => compare_values(cur, v) == Some(Ordering::Less),
                    };
                    if replace {
                        item.insert(k.clone(), v.clone());
                    }
                }
                Action::Min(k, v) => {
                    let replace = match item.get(k) {
                        None | Some(Value::Null) => true,
                        Some(cur) => compare_values(cur, v) == Some(Ordering::Greater),
                    };
                    if replace {
                        item.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The sort-key part of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKey {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
    AtLeast(String),
    After(String),
    AtMost(String),
    Before(String),
}

impl SortKey {
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            SortKey::All => true,
            SortKey::Prefix(p) => sk.starts_with(p.as_str()),
            SortKey::Between(a, b) => sk >= a.as_str() && sk <= b.as_str(),
            SortKey::AtLeast(a) => sk >= a.as_str(),
            SortKey::After(a) => sk > a.as_str(),
            SortKey::AtMost(b) => sk <= b.as_str(),
            SortKey::Before(b) => sk < b.as_str(),
        }
    }
}

/// A query over one partition of the table or of an index, in sort-key order.
#[derive(Clone, Debug)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk: SortKey,
    /// Ascending sort-key order when true.
    pub forward: bool,
    /// Items examined per page (before `filter`), as DynamoDB counts `Limit`.
    pub limit: usize,
    pub cursor: Option<Cursor>,
    /// Applied to each examined item; items that fail it are dropped from the page.
    pub filter: Option<Condition>,
    /// Only these attributes (plus `PK`, `SK` and `ttl`) come back, as DynamoDB's
    /// ProjectionExpression; the filter still sees the whole item. `None` returns whole items.
    pub attrs: Option<Vec<String>>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Query {
            index: Index::Primary,
            pk: pk.into(),
            sk: SortKey::All,
            forward: true,
            limit: 100,
            cursor: None,
            filter: None,
            attrs: None,
        }
    }
    pub fn index(index: Index, pk: impl Into<String>) -> Self {
        Query { index, ..Query::partition(pk) }
    }
    pub fn sk(mut self, sk: SortKey) -> Self {
        self.sk = sk;
        self
    }
    pub fn prefix(self, p: impl Into<String>) -> Self {
        self.sk(SortKey::Prefix(p.into()))
    }
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn forward(mut self, forward: bool) -> Self {
        self.forward = forward;
        self
    }
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }
    pub fn after(mut self, c: Option<Cursor>) -> Self {
        self.cursor = c;
        self
    }
    pub fn filter(mut self, c: Condition) -> Self {
        self.filter = Some(c);
        self
    }
    /// Returns only these attributes of each item (with its key and `ttl`).
    pub fn attrs(mut self, attrs: &[&str]) -> Self {
        self.attrs = Some(attrs.iter().map(|a| (*a).to_owned()).collect());
        self
    }
}

/// Whether a projection keeps `name`: the projected attributes, the item's key and `ttl` (which
/// both adapters read to hide expired items).
pub fn projected(attrs: &[String], name: &str) -> bool {
    name == crate::PK || name == crate::SK || name == crate::TTL || attrs.iter().any(|a| a == name)
}

/// Cuts an item down to a projection.
pub fn project(item: &mut Item, attrs: &[String]) {
    item.retain(|k, _| projected(attrs, k));
}

/// Where a query page stopped: the key of the last examined item, opaque to callers. The API layer
/// wraps it again to bind it to the caller's workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Key attributes of the last examined item (PK, SK and the index's keys).
    #[serde(rename = "k")]
    pub last: std::collections::BTreeMap<String, String>,
}

impl Cursor {
    pub fn for_item(index: Index, item: &Item) -> Option<Cursor> {
        let mut last = std::collections::BTreeMap::new();
        let (ip, is) = index.key_attrs();
        for a in [PK, SK, ip, is] {
            last.insert(a.to_owned(), item.get(a)?.as_str()?.to_owned());
        }
        Some(Cursor { last })
    }

    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serialises"))
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(crate) fn get(&self, attr: &str) -> Option<&str> {
        self.last.get(attr).map(String::as_str)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when the query may have more items; pass it back to continue.
    pub cursor: Option<Cursor>,
}

/// One part of an all-or-nothing transaction. At most one part per item.
#[derive(Clone, Debug)]
pub enum TxOp {
    Put { item: Item, cond: Option<Condition> },
    Update { key: Key, update: Update, cond: Option<Condition> },
    Delete { key: Key, cond: Option<Condition> },
    Check { key: Key, cond: Condition },
}

impl TxOp {
    pub fn key(&self) -> Option<Key> {
        match self {
            TxOp::Put { item, .. } => Key::of(item),
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => Some(key.clone()),
        }
    }
    pub fn put(item: Item) -> Self {
        TxOp::Put { item, cond: None }
    }
    pub fn put_if(item: Item, cond: Condition) -> Self {
        TxOp::Put { item, cond: Some(cond) }
    }
    pub fn update(key: Key, update: Update) -> Self {
        TxOp::Update { key, update, cond: None }
    }
    pub fn update_if(key: Key, update: Update, cond: Condition) -> Self {
        TxOp::Update { key, update, cond: Some(cond) }
    }
    pub fn delete(key: Key) -> Self {
        TxOp::Delete { key, cond: None }
    }
    pub fn check(key: Key, cond: Condition) -> Self {
        TxOp::Check { key, cond }
    }
}

/// DynamoDB's item-size rule, approximated the same way on both backends: attribute names plus
/// values (JSON text length for values). Both adapters refuse items above `maxItemBytes`.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Number(_) => 21,
        Value::Bool(_) | Value::Null => 1,
        Value::Array(a) => 3 + a.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        Value::Object(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + value_size(x)).sum::<usize>(),
    }
}

/// Seconds since the epoch, the unit of the TTL attribute.
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether an item has passed its TTL.
pub fn is_expired(item: &Item, now: i64) -> bool {
    item.get(TTL).and_then(Value::as_i64).is_some_and(|t| t <= now)
}
