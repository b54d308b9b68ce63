//! DynamoDB adapter (aws-sdk-dynamodb + serde_dynamo).
//!
//! Two things DynamoDB does differently from the port, and how this adapter hides them:
//! - TTL deletion is lazy (up to days late), so an item whose `ttl` has passed is dropped from
//!   every read here, and conditions are rendered to treat it as absent. An update must not
//!   build on such an item's stale attributes either: updates carry a guard that the item is not
//!   expired-but-stored, and on that guard failing the item is replaced wholesale instead.
//! - `Action::Max` has no update-expression form. It is done optimistically: read, compute,
//!   write guarded by "the attribute still holds what was read", and on a failed guard look
//!   again (the failed write returns the item) and retry.

mod convert;
mod error;
mod expr;
mod schema;

use crate::{
    is_expired, item_size, now_epoch, validate_item, validate_key, validate_tx, Condition, Item,
    Key, Page, Query, Result, Store, StoreError, TxOp, Update, PK, SK,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use convert::{from_dynamo, key_map, to_dynamo, AttrMap};
use error::{classify, from_code};
use expr::{mentions, needs_snapshot, normalize_sort_key, plan_update, Expr, Planned, Write};
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Rounds of read-compute-write for updates whose guard keeps failing under contention.
const MAX_ATTEMPTS: usize = 10;
/// BatchGetItem's limit on keys per request.
const BATCH_GET_KEYS: usize = 100;
/// BatchGetItem requests in flight at once for a large `batch_get`.
const BATCH_GET_PARALLEL: usize = 4;
/// Rounds of UnprocessedKeys that return nothing before giving up as throttled.
const BATCH_GET_IDLE_ROUNDS: u32 = 8;

/// SDK requests sent, per operation (retries inside the SDK count once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: u64,
    pub put: u64,
    pub delete: u64,
    pub update: u64,
    pub query: u64,
    pub batch_get: u64,
    pub transact: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.get
            + self.put
            + self.delete
            + self.update
            + self.query
            + self.batch_get
            + self.transact
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
        DynamoStore {
            client,
            table: table_name.into(),
            counters: Arc::default(),
        }
    }

    /// The SDK's default configuration chain (environment, profile, instance role), including
    /// `AWS_ENDPOINT_URL`; `endpoint` overrides the endpoint.
    pub async fn from_env(table_name: &str, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let conf = loader.load().await;
        Self::new(Client::new(&conf), table_name)
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
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "linkcrm-static",
            ))
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            .build();
        Self::new(Client::from_conf(conf), table_name)
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
            transact: c.transact.load(Relaxed),
        }
    }

    pub fn reset_request_counts(&self) {
        let c = &self.counters;
        for n in [
            &c.get,
            &c.put,
            &c.delete,
            &c.update,
            &c.query,
            &c.batch_get,
            &c.transact,
        ] {
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

    /// Stored items (expired or not) for distinct keys, by BatchGetItem.
    async fn read_stored_many(&self, keys: &[Key]) -> Result<HashMap<Key, Item>> {
        // Collected first: a lazy `map` closure in the stream's type trips async_trait's
        // Send check ("FnOnce is not general enough").
        let chunks: Vec<_> = keys
            .chunks(BATCH_GET_KEYS)
            .map(|c| self.batch_get_chunk(c))
            .collect();
        let found: Vec<Vec<Item>> = futures::stream::iter(chunks)
            .buffer_unordered(BATCH_GET_PARALLEL)
            .try_collect()
            .await?;
        Ok(found
            .into_iter()
            .flatten()
            .filter_map(|item| Some((Key::of(&item)?, item)))
            .collect())
    }

    async fn batch_get_chunk(&self, keys: &[Key]) -> Result<Vec<Item>> {
        let mut pending: Vec<AttrMap> = keys.iter().map(key_map).collect();
        let mut items = Vec::with_capacity(keys.len());
        let mut idle_rounds = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Internal(format!("request build: {e}")))?;
            bump(&self.counters.batch_get);
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| classify(e, 0))?;
            let got = out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default();
            let progressed = !got.is_empty();
            for map in got {
                items.push(from_dynamo(map)?);
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            // Unprocessed keys with nothing returned mean throttling: back off. A partial answer
            // (the 16 MB response limit) is continued at once.
            if !pending.is_empty() && !progressed {
                idle_rounds += 1;
                if idle_rounds > BATCH_GET_IDLE_ROUNDS {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem keeps returning unprocessed keys".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10 << idle_rounds)).await;
            } else {
                idle_rounds = 0;
            }
        }
        Ok(items)
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

    /// One transaction part. `snapshot` as for [`plan_update`].
    fn tx_part(
        &self,
        op: &TxOp,
        snapshot: Option<&Option<Item>>,
        now: i64,
    ) -> Result<TransactWriteItem> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Internal(format!("request build: {e}"))
        };
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        let mut expr = Expr::new(now);
        let part = match op {
            TxOp::Put { item, cond } => {
                let condition = cond.as_ref().map(|c| expr.condition(c)).transpose()?;
                let (names, values) = expr.finish();
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_dynamo(item)?))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().put(put)
            }
            TxOp::Delete { key, cond } => {
                let condition = cond.as_ref().map(|c| expr.condition(c)).transpose()?;
                let (names, values) = expr.finish();
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().delete(delete)
            }
            TxOp::Check { key, cond } => {
                let condition = expr.condition(cond)?;
                let (names, values) = expr.finish();
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().condition_check(check)
            }
            TxOp::Update { key, update, cond } => {
                let plan = plan_update(key, update, cond.as_ref(), snapshot, now)?;
                let (names, values) = plan.expr.finish();
                match plan.write {
                    Write::Update(update_expression) => {
                        let update = aws_sdk_dynamodb::types::Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(key)))
                            .update_expression(update_expression)
                            .set_condition_expression(plan.condition)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .return_values_on_condition_check_failure(all_old)
                            .build()
                            .map_err(build)?;
                        TransactWriteItem::builder().update(update)
                    }
                    Write::Put(item) => {
                        let put = Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(to_dynamo(&item)?))
                            .set_condition_expression(plan.condition)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .return_values_on_condition_check_failure(all_old)
                            .build()
                            .map_err(build)?;
                        TransactWriteItem::builder().put(put)
                    }
                    Write::Unchanged(_) => {
                        let check = ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(key)))
                            .set_condition_expression(plan.condition)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .return_values_on_condition_check_failure(all_old)
                            .build()
                            .map_err(build)?;
                        TransactWriteItem::builder().condition_check(check)
                    }
                }
            }
        };
        Ok(part.build())
    }
}

/// The error for a cancelled transaction none of whose parts failed a condition.
fn cancellation_error(reasons: &[CancellationReason], ops: &[TxOp]) -> StoreError {
    let failed = reasons
        .iter()
        .zip(ops)
        .find(|(r, _)| r.code().is_some_and(|c| c != "None"));
    match failed {
        Some((r, op)) => {
            let size = match op {
                TxOp::Put { item, .. } => item_size(item),
                _ => 0,
            };
            from_code(
                r.code().unwrap_or_default(),
                r.message().unwrap_or_default(),
                size,
            )
        }
        None => StoreError::Internal("transaction cancelled without a reason".into()),
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
        let start = q
            .cursor
            .as_ref()
            .map(|c| convert::start_key(c, q.index))
            .transpose()?;
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
        let cursor = out
            .last_evaluated_key
            .map(convert::cursor_from)
            .transpose()?;
        Ok(Page { items, cursor })
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>> {
        for k in keys {
            validate_key(k)?;
        }
        // BatchGetItem refuses duplicate keys in one request.
        let mut seen = HashSet::new();
        let distinct: Vec<Key> = keys.iter().filter(|k| seen.insert(*k)).cloned().collect();
        let found = self.read_stored_many(&distinct).await?;
        let now = now_epoch();
        Ok(keys
            .iter()
            .filter_map(|k| found.get(k))
            .filter(|i| !is_expired(i, now))
            .cloned()
            .collect())
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<()> {
        validate_tx(&ops)?;
        let mut snapshots: Vec<Option<Option<Item>>> = vec![None; ops.len()];
        let planned_reads: Vec<Key> = ops
            .iter()
            .filter_map(|op| match op {
                TxOp::Update { key, update, .. } if needs_snapshot(update) => Some(key.clone()),
                _ => None,
            })
            .collect();
        if !planned_reads.is_empty() {
            let mut stored = self.read_stored_many(&planned_reads).await?;
            for (op, snap) in ops.iter().zip(&mut snapshots) {
                if let TxOp::Update { key, update, .. } = op {
                    if needs_snapshot(update) {
                        *snap = Some(stored.remove(key));
                    }
                }
            }
        }

        for _ in 0..MAX_ATTEMPTS {
            let now = now_epoch();
            let parts = ops
                .iter()
                .zip(&snapshots)
                .map(|(op, snap)| self.tx_part(op, snap.as_ref(), now))
                .collect::<Result<Vec<_>>>()?;
            bump(&self.counters.transact);
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(parts))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    e.cancellation_reasons().to_vec()
                }
                _ => {
                    let size = ops
                        .iter()
                        .map(|op| match op {
                            TxOp::Put { item, .. } => item_size(item),
                            _ => 0,
                        })
                        .max()
                        .unwrap_or(0);
                    return Err(classify(err, size));
                }
            };
            let failed: Vec<usize> = reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            if failed.is_empty() {
                return Err(cancellation_error(&reasons, &ops));
            }
            // Put, Delete and Check parts carry only the caller's condition. Update parts also
            // carry ours: those that still satisfy the caller's are planned again from the item
            // the failure returned.
            for i in failed {
                match ops.get(i) {
                    Some(TxOp::Update { cond, .. }) => {
                        let stored = old_item(reasons[i].item())?;
                        if !holds(cond.as_ref(), stored.as_ref()) {
                            return Err(StoreError::ConditionFailed { op: Some(i) });
                        }
                        snapshots[i] = Some(stored);
                    }
                    _ => return Err(StoreError::ConditionFailed { op: Some(i) }),
                }
            }
        }
        Err(StoreError::Conflict)
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}
