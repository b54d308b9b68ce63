//! Query-string inputs arrive as strings; these accept either the typed JSON value (MCP, bodies)
//! or its text form (`limit=50`, `active=true`, `status=A,B`).

use serde::de::{Deserializer, Error};
use serde::Deserialize;
use serde_json::Value;

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(&v)
            .and_then(|s| s.parse::<u32>().ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a non-negative whole number")),
    }
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(&v)
            .and_then(|s| s.parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a whole number")),
    }
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match text(&v).as_deref() {
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            _ => Err(D::Error::custom("expected true or false")),
        },
    }
}

/// A comma-separated list (`A,B`) or a JSON array of strings.
pub fn opt_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(D::Error::custom("expected strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::String(s)) => {
            Ok(Some(s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect()))
        }
        Some(_) => Err(D::Error::custom("expected a comma-separated list")),
    }
}

/// Tells "absent" (`None`, with `#[serde(default)]`) from "null" (`Some(None)`) in a PATCH body,
/// where null clears a field and absence leaves it alone.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::<T>::deserialize(d)?))
}
