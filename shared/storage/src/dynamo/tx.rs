//! TransactWriteItems.

use super::convert::{key_map, to_dynamo};
use super::error::{classify, from_code};
use super::expr::{needs_snapshot, plan_update, Expr, Write};
use super::{bump, holds, old_item, DynamoStore, MAX_ATTEMPTS};
use crate::{item_size, now_epoch, Item, Key, Result, StoreError, TxOp};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

impl DynamoStore {
    /// TransactWriteItems, re-planning Update parts whose own guards failed.
    pub(super) async fn transact_parts(&self, ops: &[TxOp]) -> Result<()> {
        let mut snapshots: Vec<Option<Option<Item>>> = vec![None; ops.len()];
        let planned_reads: Vec<Key> = ops
            .iter()
            .filter_map(|op| match op {
                TxOp::Update { key, update, .. } if needs_snapshot(update) => Some(key.clone()),
                _ => None,
            })
            .collect();
        if !planned_reads.is_empty() {
            let mut stored = self.read_stored_many(&planned_reads, None).await?;
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
            let err = match self.client.transact_write_items().set_transact_items(Some(parts)).send().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e.cancellation_reasons().to_vec(),
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
                return Err(cancellation_error(&reasons, ops));
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

    /// One transaction part. `snapshot` as for [`plan_update`].
    fn tx_part(&self, op: &TxOp, snapshot: Option<&Option<Item>>, now: i64) -> Result<TransactWriteItem> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Internal(format!("request build: {e}"));
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
    let failed = reasons.iter().zip(ops).find(|(r, _)| r.code().is_some_and(|c| c != "None"));
    match failed {
        Some((r, op)) => {
            let size = match op {
                TxOp::Put { item, .. } => item_size(item),
                _ => 0,
            };
            from_code(r.code().unwrap_or_default(), r.message().unwrap_or_default(), size)
        }
        None => StoreError::Internal("transaction cancelled without a reason".into()),
    }
}
