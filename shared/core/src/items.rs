//! Stored items as JSON objects: reading attributes and parsing whole records.

use crate::error::{DataError, DataResult};
use linkcrm_storage::Item;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub fn corrupt(what: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Corrupt { what: what.to_owned(), why: e.to_string() }
}

pub fn parse<T: DeserializeOwned>(what: &str, item: &Item) -> DataResult<T> {
    // Straight from the borrowed map: no copy of the whole item first.
    T::deserialize(item).map_err(|e| corrupt(what, e))
}

pub fn str_of<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(Value::as_str)
}

pub fn int_of(item: &Item, k: &str) -> Option<i64> {
    item.get(k).and_then(Value::as_i64)
}

pub fn obj(v: Value) -> Item {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}
