//! BatchGetItem (chunks of 100 keys) and BatchWriteItem deletes (chunks of 25), unprocessed
//! requests retried with backoff.

use super::convert::{from_dynamo, key_map, AttrMap};
use super::error::classify;
use super::{bump, DynamoStore};
use crate::{Item, Key, Result, StoreError};
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, WriteRequest};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::time::Duration;

/// BatchGetItem's limit on keys per request.
const BATCH_GET_KEYS: usize = 100;
/// BatchGetItem requests in flight at once for a large `batch_get`.
const BATCH_GET_PARALLEL: usize = 4;
/// Rounds of UnprocessedKeys that return nothing before giving up as throttled.
const BATCH_GET_IDLE_ROUNDS: u32 = 8;

impl DynamoStore {
    /// Stored items (expired or not) for distinct keys, by BatchGetItem.
    /// With `attrs`, only those attributes (and the key and `ttl`) are read back.
    pub(super) async fn read_stored_many(&self, keys: &[Key], attrs: Option<&[&str]>) -> Result<HashMap<Key, Item>> {
        // Collected first: a lazy `map` closure in the stream's type trips async_trait's
        // Send check ("FnOnce is not general enough").
        let chunks: Vec<_> = keys.chunks(BATCH_GET_KEYS).map(|c| self.batch_get_chunk(c, attrs)).collect();
        let found: Vec<Vec<Item>> =
            futures::stream::iter(chunks).buffer_unordered(BATCH_GET_PARALLEL).try_collect().await?;
        Ok(found.into_iter().flatten().filter_map(|item| Some((Key::of(&item)?, item))).collect())
    }

    async fn batch_get_chunk(&self, keys: &[Key], attrs: Option<&[&str]>) -> Result<Vec<Item>> {
        let mut pending: Vec<AttrMap> = keys.iter().map(key_map).collect();
        let mut items = Vec::with_capacity(keys.len());
        let mut idle_rounds = 0;
        let projection = attrs.map(|attrs| {
            let mut expr = super::expr::Expr::new(0);
            let mut wanted: Vec<&str> = attrs.to_vec();
            wanted.extend([crate::PK, crate::SK, crate::TTL]);
            let text = super::projection_expression(&mut expr, &wanted);
            (text, expr.finish().0)
        });
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .set_projection_expression(projection.as_ref().map(|p| p.0.clone()))
                .set_expression_attribute_names(projection.as_ref().and_then(|p| p.1.clone()))
                // Whole items are read consistently; projected reads serve list pages, which
                // index queries already make eventually consistent, at half the read units.
                .consistent_read(projection.is_none())
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
            let got = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
            let progressed = !got.is_empty();
            for map in got {
                items.push(from_dynamo(map)?);
            }
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            // Unprocessed keys with nothing returned mean throttling: back off. A partial answer
            // (the 16 MB response limit) is continued at once.
            if !pending.is_empty() && !progressed {
                idle_rounds += 1;
                if idle_rounds > BATCH_GET_IDLE_ROUNDS {
                    return Err(StoreError::Unavailable("BatchGetItem keeps returning unprocessed keys".into()));
                }
                tokio::time::sleep(Duration::from_millis(10 << idle_rounds)).await;
            } else {
                idle_rounds = 0;
            }
        }
        Ok(items)
    }
}

/// BatchWriteItem's limit on requests per call.
const BATCH_WRITE_ITEMS: usize = 25;

impl DynamoStore {
    /// Unconditional deletes by BatchWriteItem (half the write units a transaction's parts cost).
    pub(super) async fn delete_batches(&self, keys: &[Key]) -> Result<()> {
        for chunk in keys.chunks(BATCH_WRITE_ITEMS) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    let del = DeleteRequest::builder()
                        .set_key(Some(key_map(k)))
                        .build()
                        .map_err(|e| StoreError::Internal(format!("request build: {e}")))?;
                    Ok(WriteRequest::builder().delete_request(del).build())
                })
                .collect::<Result<_>>()?;
            let mut idle_rounds = 0;
            while !pending.is_empty() {
                bump(&self.counters.batch_write);
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| classify(e, 0))?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                // Unprocessed items mean throttling: back off, as the SDK guide says.
                if !pending.is_empty() {
                    idle_rounds += 1;
                    if idle_rounds > BATCH_GET_IDLE_ROUNDS {
                        return Err(StoreError::Unavailable("BatchWriteItem keeps returning unprocessed items".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(10 << idle_rounds)).await;
                }
            }
        }
        Ok(())
    }
}
