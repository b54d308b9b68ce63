//! Conversions between the port's JSON items and DynamoDB attribute maps.

use crate::{Cursor, Index, Item, Key, Result, StoreError, PK, SK};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_dynamo::aws_sdk_dynamodb_1 as sd;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub(super) type AttrMap = HashMap<String, AttributeValue>;

pub(super) fn to_av(v: &Value) -> Result<AttributeValue> {
    sd::to_attribute_value(v).map_err(|e| StoreError::Invalid(format!("unencodable value: {e}")))
}

pub(super) fn to_dynamo(item: &Item) -> Result<AttrMap> {
    sd::to_item(item).map_err(|e| StoreError::Invalid(format!("unencodable item: {e}")))
}

/// serde_dynamo parses N as i64 first, then u64, then f64, so integers stay integers.
pub(super) fn from_dynamo(map: AttrMap) -> Result<Item> {
    sd::from_item(map).map_err(|e| StoreError::Internal(format!("undecodable item: {e}")))
}

pub(super) fn key_map(key: &Key) -> AttrMap {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The item a key names, with nothing else in it.
pub(super) fn key_item(key: &Key) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), Value::String(key.pk.clone()));
    item.insert(SK.to_owned(), Value::String(key.sk.clone()));
    item
}

/// `LastEvaluatedKey` holds only key attributes, all strings in this table.
pub(super) fn cursor_from(last_evaluated: AttrMap) -> Result<Cursor> {
    let mut last = BTreeMap::new();
    for (name, value) in last_evaluated {
        match value {
            AttributeValue::S(s) => {
                last.insert(name, s);
            }
            other => {
                return Err(StoreError::Internal(format!(
                    "non-string key attribute {name} in LastEvaluatedKey: {other:?}"
                )))
            }
        }
    }
    Ok(Cursor { last })
}

/// `ExclusiveStartKey` for a query on `index`: the table key plus the index key.
pub(super) fn start_key(cursor: &Cursor, index: Index) -> Result<AttrMap> {
    let (ip, is) = index.key_attrs();
    let mut map = HashMap::new();
    for attr in [PK, SK, ip, is] {
        let v = cursor.get(attr).ok_or_else(|| StoreError::Invalid(format!("cursor lacks {attr} for this query")))?;
        map.insert(attr.to_owned(), AttributeValue::S(v.to_owned()));
    }
    Ok(map)
}
