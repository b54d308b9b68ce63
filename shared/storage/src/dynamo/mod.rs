//! DynamoDB adapter (aws-sdk-dynamodb + serde_dynamo).
//!
//! Two things DynamoDB does differently from the port, and how this adapter hides them:
//! - TTL deletion is lazy (up to days late), so an item whose `ttl` has passed is dropped from
//!   every read here, and conditions are rendered to treat it as absent. An update must not
//!   build on such an item's stale attributes either: updates carry a guard that the item is not
//!   expired-but-stored, and on that guard failing the item is replaced wholesale instead.
//! - `Action::Max` and `Action::Min` have no update-expression form (nor do two actions on one attribute). It is
//!   done optimistically: read, compute, write guarded by "the decision taken from the read
//!   still stands" (for other computed attributes: "the value is still the one read"), and on a
//!   failed guard look again (the failed write returns the item) and retry.
//!
//! Conditional writes ask for the stored item on failure (`ReturnValuesOnConditionCheckFailure`),
//! which tells the caller's failed condition from one of the adapter's own guards without
//! another read.

mod batch;
mod convert;
mod error;
mod expr;
mod schema;
mod tx;

use crate::{
    is_expired, item_size, now_epoch, validate_item, validate_key, validate_tx, Condition, Item, Key, Page, Query,
    Result, Store, StoreError, TxOp, Update, PK, SK,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use convert::{from_dynamo, key_map, to_dynamo, AttrMap};
use error::classify;
use expr::{mentions, needs_snapshot, normalize_sort_key, plan_update, Expr, Planned, Write};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Rounds of read-compute-write for updates whose guard keeps failing under contention.
const MAX_ATTEMPTS: usize = 10;

/// SDK requests sent, per operation (retries inside the SDK count once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: u64,
    pub put: u64,
    pub delete: u64,
    pub update: u64,
    pub query: u64,
    pub batch_get: u64,
    pub batch_write: u64,
    pub transact: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.get + self.put + self.delete + self.update + self.query + self.batch_get + self.batch_write + self.transact
    }
}

#[derive(Debug, Default)]
struct Counters {
    get: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    update: AtomicU64,
    query: AtomicU64,
    batch_get: AtomicU64,
    batch_write: AtomicU64,
    transact: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    counters: Arc<Counters>,
}

/// A conditional write that failed on its condition, with the stored item it saw (DynamoDB
/// returns it with `ReturnValuesOnConditionCheckFailure::AllOld`; `None`: no item).
enum WriteError {
    Condition(Option<Item>),
    Store(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

fn live(stored: Option<Item>, now: i64) -> Option<Item> {
    stored.filter(|i| !is_expired(i, now))
}

fn holds(cond: Option<&Condition>, stored: Option<&Item>) -> bool {
    let live = stored.filter(|i| !is_expired(i, now_epoch()));
    cond.is_none_or(|c| c.holds(live))
}

fn old_item(map: Option<&AttrMap>) -> Result<Option<Item>> {
    map.cloned().map(from_dynamo).transpose()
}

impl DynamoStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        DynamoStore { client, table: table_name.into(), counters: Arc::default() }
    }

    /// The process's shared SDK configuration ([`crate::aws::sdk_config`]: environment, profile,
    /// role, `AWS_ENDPOINT_URL`); `endpoint` overrides the endpoint.
    pub async fn from_env(table_name: &str, endpoint: Option<&str>) -> Self {
        match endpoint {
            Some(url) => Self::new(Client::new(&crate::aws::loader().endpoint_url(url).load().await), table_name),
            None => Self::new(Client::new(crate::aws::sdk_config().await), table_name),
        }
    }

    /// A client for a local DynamoDB (moto, DynamoDB Local) with fixed dummy credentials and
    /// region, so tests need no AWS configuration and touch no process environment.
    pub fn for_endpoint(endpoint: &str, table_name: &str) -> Self {
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(60))
            .build();
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "linkcrm-static"))
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            .build();
        Self::new(Client::from_conf(conf), table_name)
    }

    /// Live items (or their projections) for `keys`, in their order.
    async fn batch_read(&self, keys: &[Key], attrs: Option<&[&str]>) -> Result<Vec<Item>> {
        for k in keys {
            validate_key(k)?;
        }
        // BatchGetItem refuses duplicate keys in one request.
        let mut seen = HashSet::new();
        let distinct: Vec<Key> = keys.iter().filter(|k| seen.insert(*k)).cloned().collect();
        let found = self.read_stored_many(&distinct, attrs).await?;
        let now = now_epoch();
        Ok(keys.iter().filter_map(|k| found.get(k)).filter(|i| !is_expired(i, now)).cloned().collect())
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn request_counts(&self) -> RequestCounts {
        let c = &self.counters;
        RequestCounts {
            get: c.get.load(Relaxed),
            put: c.put.load(Relaxed),
            delete: c.delete.load(Relaxed),
            update: c.update.load(Relaxed),
            query: c.query.load(Relaxed),
            batch_get: c.batch_get.load(Relaxed),
            batch_write: c.batch_write.load(Relaxed),
            transact: c.transact.load(Relaxed),
        }
    }

    pub fn reset_request_counts(&self) {
        let c = &self.counters;
        for n in [&c.get, &c.put, &c.delete, &c.update, &c.query, &c.batch_get, &c.batch_write, &c.transact] {
            n.store(0, Relaxed);
        }
    }

    /// The stored item, expired or not.
    async fn read_stored(&self, key: &Key) -> Result<Option<Item>> {
        bump(&self.counters.get);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(e, 0))?;
        out.item.map(from_dynamo).transpose()
    }

    /// Sends one planned update as UpdateItem or PutItem; returns the item afterwards.
    async fn send_planned(&self, key: &Key, plan: Planned) -> Result<Item, WriteError> {
        let (names, values) = plan.expr.finish();
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        match plan.write {
            Write::Unchanged(item) => Ok(item),
            Write::Update(update_expression) => {
                bump(&self.counters.update);
                let out = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .update_expression(update_expression)
                    .set_condition_expression(plan.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values(ReturnValue::AllNew)
                    .return_values_on_condition_check_failure(all_old)
                    .send()
                    .await;
                match out {
                    Ok(out) => Ok(from_dynamo(out.attributes.unwrap_or_else(|| key_map(key)))?),
                    Err(SdkError::ServiceError(se)) => match se.err() {
                        UpdateItemError::ConditionalCheckFailedException(e) => {
                            Err(WriteError::Condition(old_item(e.item())?))
                        }
                        _ => Err(classify(SdkError::ServiceError(se), 0).into()),
                    },
                    Err(e) => Err(classify(e, 0).into()),
                }
            }
            Write::Put(item) => {
                bump(&self.counters.put);
                let out = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(to_dynamo(&item)?))
                    .set_condition_expression(plan.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values_on_condition_check_failure(all_old)
                    .send()
                    .await;
                match out {
                    Ok(_) => Ok(item),
                    Err(SdkError::ServiceError(se)) => match se.err() {
                        PutItemError::ConditionalCheckFailedException(e) => {
                            Err(WriteError::Condition(old_item(e.item())?))
                        }
                        _ => Err(classify(SdkError::ServiceError(se), item_size(&item)).into()),
                    },
                    Err(e) => Err(classify(e, item_size(&item)).into()),
                }
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        validate_key(key)?;
        Ok(live(self.read_stored(key).await?, now_epoch()))
    }

    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<()> {
        validate_item(&item)?;
        let mut expr = Expr::new(now_epoch());
        let condition = cond.as_ref().map(|c| expr.condition(c)).transpose()?;
        let (names, values) = expr.finish();
        bump(&self.counters.put);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_dynamo(&item)?))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| classify(e, item_size(&item)))?;
        Ok(())
    }

    async fn delete(&self, key: &Key, cond: Option<Condition>) -> Result<()> {
        validate_key(key)?;
        let mut expr = Expr::new(now_epoch());
        let condition = cond.as_ref().map(|c| expr.condition(c)).transpose()?;
        let (names, values) = expr.finish();
        bump(&self.counters.delete);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| classify(e, 0))?;
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update, cond: Option<Condition>) -> Result<Item> {
        validate_key(key)?;
        crate::validate_update(&update)?;
        let cond = cond.as_ref();
        let mut snapshot = match needs_snapshot(&update) {
            true => Some(self.read_stored(key).await?),
            false => None,
        };
        for _ in 0..MAX_ATTEMPTS {
            let plan = plan_update(key, &update, cond, snapshot.as_ref(), now_epoch())?;
            if let Write::Unchanged(item) = &plan.write {
                // A write that changes nothing takes effect at the read it was planned from.
                return match cond.is_none_or(|c| c.holds(Some(item))) {
                    true => Ok(item.clone()),
                    false => Err(StoreError::ConditionFailed { op: None }),
                };
            }
            match self.send_planned(key, plan).await {
                Ok(item) => return Ok(item),
                Err(WriteError::Store(e)) => return Err(e),
                // Either the caller's condition failed, or one of ours (the item expired,
                // or an attribute computed here changed since it was read): tell which.
                Err(WriteError::Condition(stored)) => {
                    if !holds(cond, stored.as_ref()) {
                        return Err(StoreError::ConditionFailed { op: None });
                    }
                    snapshot = Some(stored);
                }
            }
        }
        Err(StoreError::Conflict)
    }

    async fn query(&self, q: Query) -> Result<Page> {
        if q.pk.is_empty() {
            return Err(StoreError::Invalid("query without partition key".into()));
        }
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be at least 1".into()));
        }
        let Some(sk) = normalize_sort_key(&q.sk) else {
            return Ok(Page::default());
        };
        let now = now_epoch();
        let (ip, is) = q.index.key_attrs();
        let mut expr = Expr::new(now);
        let key_condition = expr.key_condition(ip, is, &q.pk, &sk);
        // DynamoDB refuses key attributes in a FilterExpression; such filters run here. Both
        // apply after `Limit`, so pages come out the same.
        let (server_filter, local_filter) = match &q.filter {
            Some(f) if mentions(f, &[PK, SK, ip, is]) => (None, Some(f)),
            Some(f) => (Some(expr.filter(f)?), None),
            None => (None, None),
        };
        let start = q.cursor.as_ref().map(|c| convert::start_key(c, q.index)).transpose()?;
        // DynamoDB filters before it projects; a filter run here needs its attributes back.
        let projection = q.attrs.as_ref().map(|attrs| {
            let mut wanted: Vec<&str> = attrs.iter().map(String::as_str).collect();
            wanted.extend([PK, SK, crate::TTL]);
            if let Some(f) = local_filter {
                wanted.extend(f.attrs());
            }
            projection_expression(&mut expr, &wanted)
        });
        let (names, values) = expr.finish();
        bump(&self.counters.query);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.name().map(str::to_owned))
            .key_condition_expression(key_condition)
            .set_filter_expression(server_filter)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_projection_expression(projection)
            .scan_index_forward(q.forward)
            .limit(i32::try_from(q.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            // Global secondary indexes only read eventually consistently.
            .set_consistent_read(q.index.name().is_none().then_some(true))
            .send()
            .await
            .map_err(|e| classify(e, 0))?;
        let mut items = Vec::new();
        for map in out.items.unwrap_or_default() {
            let item = from_dynamo(map)?;
            if !is_expired(&item, now) && local_filter.is_none_or(|f| f.holds(Some(&item))) {
                items.push(item);
            }
        }
        if let Some(attrs) = &q.attrs {
            items.iter_mut().for_each(|i| crate::project(i, attrs));
        }
        let cursor = out.last_evaluated_key.map(convert::cursor_from).transpose()?;
        Ok(Page { items, cursor })
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>> {
        self.batch_read(keys, None).await
    }

    async fn batch_get_attrs(&self, keys: &[Key], attrs: &[&str]) -> Result<Vec<Item>> {
        self.batch_read(keys, Some(attrs)).await
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<()> {
        for k in keys {
            validate_key(k)?;
        }
        let mut seen = HashSet::new();
        let distinct: Vec<Key> = keys.iter().filter(|k| seen.insert(*k)).cloned().collect();
        self.delete_batches(&distinct).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<()> {
        validate_tx(&ops)?;
        self.transact_parts(&ops).await
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}

/// `#n0, #n1, ...` for the attributes (with their names registered), as a ProjectionExpression.
fn projection_expression(expr: &mut Expr, attrs: &[&str]) -> String {
    let mut seen = HashSet::new();
    attrs.iter().filter(|a| seen.insert(**a)).map(|a| expr.name(a)).collect::<Vec<_>>().join(", ")
}
