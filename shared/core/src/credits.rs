//! The credit ledger, in thousandths of a credit. A queued action reserves its estimate when it
//! is accepted (402 `insufficient_credits` if the pool cannot cover it), is charged what it
//! actually used when it completes, and releases the rest. Each step is a set of transaction
//! parts, so the caller commits it together with the state change that justifies it (an
//! invocation moving to SUCCEEDED is charged exactly once because both happen in one transaction).

use crate::error::{ApiError, ApiResult};
use chrono::{Datelike, TimeZone, Utc};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Item, Key, TxOp, Update};
use serde_json::json;

/// Where a workspace's credits come from: its own pool, or its agency's (`creditPool: agency`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pool {
    Workspace(String),
    Agency(String),
}

impl Pool {
    pub fn key(&self) -> Key {
        match self {
            Pool::Workspace(ws) => crate::keys::workspace_credits(ws),
            Pool::Agency(ag) => crate::keys::agency_credits(ag),
        }
    }
}

pub use crate::keys::{ledger_pk, usage as usage_key};

/// The billing cycle: calendar months, UTC. (start, end, label `YYYY-MM`).
pub fn cycle(now: chrono::DateTime<Utc>) -> (String, String, String) {
    let start = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().expect("valid date");
    let (y, m) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    let end = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().expect("valid date");
    (time::format(start), time::format(end), format!("{:04}-{:02}", now.year(), now.month()))
}

/// Credits as the API shows them (a decimal number of credits).
pub fn as_credits(milli: i64) -> serde_json::Value {
    json!(milli as f64 / 1000.0)
}

/// Parses a credit amount: positive, at most three decimals, at most a billion credits.
pub fn parse_credits(field: &str, v: f64) -> ApiResult<i64> {
    let milli = (v * 1000.0).round();
    if !v.is_finite() || v <= 0.0 || ((v * 1000.0) - milli).abs() > 1e-6 || milli > 1e12 {
        return Err(ApiError::invalid_field(
            field,
            "invalid_request",
            "a positive number of credits with at most three decimals",
        ));
    }
    Ok(milli as i64)
}

fn ledger_entry(
    ws: &str,
    kind: &str,
    amount: i64,
    skill: Option<&str>,
    invocation: Option<&str>,
    note: Option<&str>,
) -> Item {
    let id = linkcrm_domain::new_id(IdKind::Request).replacen("req_", "led_", 1);
    let v = json!({
        "PK": ledger_pk(ws), "SK": id, "entity": "ledgerEntry", "id": id, "kind": kind,
        "milliCredits": amount, "skill": skill, "invocationId": invocation, "note": note, "at": time::now_string(),
    });
    v.as_object().cloned().expect("object")
}

/// Adds credits to a pool.
pub fn grant(pool: &Pool, ws: &str, amount: i64, note: Option<&str>) -> Vec<TxOp> {
    vec![
        TxOp::update(pool.key(), Update::new().add("granted", amount).add("available", amount)),
        TxOp::put(ledger_entry(ws, "grant", amount, None, None, note)),
    ]
}

/// Holds `amount` for an accepted action; the transaction fails on this part (its condition)
/// when the pool cannot cover it — see `insufficient`.
pub fn reserve(pool: &Pool, ws: &str, skill: &str, invocation: &str, amount: i64) -> Vec<TxOp> {
    vec![
        TxOp::update_if(
            pool.key(),
            Update::new().add("available", -amount).add("reserved", amount),
            Condition::AtLeast("available".into(), amount),
        ),
        TxOp::put(ledger_entry(ws, "reserve", amount, Some(skill), Some(invocation), None)),
    ]
}

/// What a charge adds to the cycle's usage item: the total, the skill's and the UTC day's
/// (`day#YYYY-MM-DD`), so usage by skill and by day is one read.
fn usage_update(skill: &str, amount: i64) -> Update {
    let day = time::now().format("%Y-%m-%d").to_string();
    Update::new().add("used", amount).add(format!("skill#{skill}"), amount).add(format!("day#{day}"), amount)
}

/// Charges what a completed action used and releases the rest of its reservation.
pub fn charge(pool: &Pool, ws: &str, skill: &str, invocation: &str, reserved: i64, used: i64) -> Vec<TxOp> {
    let (_, _, label) = cycle(time::now());
    vec![
        TxOp::update(
            pool.key(),
            Update::new().add("reserved", -reserved).add("available", reserved - used).add("used", used),
        ),
        TxOp::update(usage_key(ws, &label), usage_update(skill, used)),
        TxOp::put(ledger_entry(ws, "charge", used, Some(skill), Some(invocation), None)),
    ]
}

/// Charges a synchronous action that needed no reservation (a provider call answered in the
/// request): only while the pool still covers it, so a pool spent meanwhile makes the
/// transaction fail and the caller answers 402. The caller checks the balance before the call,
/// and charges only after the call succeeded: a request that dies in between is not charged.
pub fn spend(pool: &Pool, ws: &str, skill: &str, reference: &str, amount: i64) -> Vec<TxOp> {
    let (_, _, label) = cycle(time::now());
    vec![
        TxOp::update_if(
            pool.key(),
            Update::new().add("available", -amount).add("used", amount),
            Condition::AtLeast("available".into(), amount),
        ),
        TxOp::update(usage_key(ws, &label), usage_update(skill, amount)),
        TxOp::put(ledger_entry(ws, "charge", amount, Some(skill), Some(reference), None)),
    ]
}

/// Whether the pool has `amount` available now (the check before a synchronous charge).
pub async fn covers(
    store: &linkcrm_storage::DynStore,
    pool: &Pool,
    amount: i64,
) -> Result<bool, linkcrm_storage::StoreError> {
    Ok(store.get(&pool.key()).await?.and_then(|i| i.get("available").and_then(serde_json::Value::as_i64)).unwrap_or(0)
        >= amount)
}

/// Gives back a reservation (failed, rejected or cancelled work is never charged).
pub fn release(pool: &Pool, ws: &str, skill: &str, invocation: &str, reserved: i64) -> Vec<TxOp> {
    vec![
        TxOp::update(pool.key(), Update::new().add("reserved", -reserved).add("available", reserved)),
        TxOp::put(ledger_entry(ws, "release", reserved, Some(skill), Some(invocation), None)),
    ]
}

/// The 402 for a reservation the pool could not cover, with what was needed and what is left.
pub async fn insufficient(store: &linkcrm_storage::DynStore, pool: &Pool, skill: &str, required: i64) -> ApiError {
    let available = match store.get(&pool.key()).await {
        Ok(Some(item)) => item.get("available").and_then(serde_json::Value::as_i64).unwrap_or(0),
        _ => 0,
    };
    ApiError::new(
        axum::http::StatusCode::PAYMENT_REQUIRED,
        "insufficient_credits",
        format!("Need {} credits to run {skill}; you have {}.", required as f64 / 1000.0, available as f64 / 1000.0),
    )
    .with_details(json!({ "required": as_credits(required), "available": as_credits(available), "skill": skill }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_calendar_months() {
        let t = time::parse("2026-12-31T23:59:59Z").unwrap();
        let (start, end, label) = cycle(t);
        assert_eq!(
            (start.as_str(), end.as_str(), label.as_str()),
            ("2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z", "2026-12")
        );
    }

    #[test]
    fn amounts_have_at_most_three_decimals() {
        assert_eq!(parse_credits("c", 0.4).unwrap(), 400);
        assert_eq!(parse_credits("c", 2.0).unwrap(), 2000);
        assert_eq!(parse_credits("c", 1500.125).unwrap(), 1_500_125);
        for bad in [0.0, -1.0, 0.0004, f64::NAN, 2e12] {
            assert!(parse_credits("c", bad).is_err(), "{bad}");
        }
    }
}
