//! When a scheduled bulk action runs: `daily:HH:MM` or `weekly:<day>:HH:MM`, in an IANA time
//! zone. A local time that does not exist (the spring-forward gap) runs at the first minute after
//! the gap; one that happens twice (the autumn fold) runs at the first.

use crate::bulk::{self, resolve_for, unprocessable, Ask, Workspaces};
use crate::keys;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use linkcrm_core::error::{ApiError, ApiResult};
use linkcrm_core::items::{self, obj};
use linkcrm_core::App;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Index, Item, Key, Query, SortKey, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const PATTERN: &str =
    r"^(daily:([01][0-9]|2[0-3]):[0-5][0-9]|weekly:(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9])$";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    Daily(NaiveTime),
    Weekly(Weekday, NaiveTime),
}

pub fn parse(s: &str) -> Option<Spec> {
    let hm = |h: &str, m: &str| NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0);
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["daily", h, m] if h.len() == 2 && m.len() == 2 => Some(Spec::Daily(hm(h, m)?)),
        ["weekly", d, h, m] if h.len() == 2 && m.len() == 2 => {
            let day = match *d {
                "mon" => Weekday::Mon,
                "tue" => Weekday::Tue,
                "wed" => Weekday::Wed,
                "thu" => Weekday::Thu,
                "fri" => Weekday::Fri,
                "sat" => Weekday::Sat,
                "sun" => Weekday::Sun,
                _ => return None,
            };
            Some(Spec::Weekly(day, hm(h, m)?))
        }
        _ => None,
    }
}

/// The instant a local date and time means in `tz` (see the module's rule for gaps and folds).
fn at(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut t = date.and_time(time);
    for _ in 0..180 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) => return x.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => t += Duration::minutes(1),
        }
    }
    Utc.from_utc_datetime(&date.and_time(time))
}

/// The first run strictly after `after`.
pub fn next_after(spec: Spec, tz: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let local_day = after.with_timezone(&tz).date_naive();
    for offset in 0..9 {
        let day = local_day + Duration::days(offset);
        let (ok, time) = match spec {
            Spec::Daily(t) => (true, t),
            Spec::Weekly(d, t) => (day.weekday() == d, t),
        };
        if ok {
            let when = at(tz, day, time);
            if when > after {
                return when;
            }
        }
    }
    unreachable!("a daily or weekly time comes within 8 days")
}

// Scheduled bulk actions as records, and the tick that starts the due ones.

/// A scheduled bulk action as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// `bsch_…`
    pub id: String,
    pub action: String,
    /// As given: `"all"`, a list of ids, or `{tags}`; resolved again at each run.
    pub workspaces: Value,
    pub config: Value,
    /// `daily:HH:MM` or `weekly:mon:09:00`.
    pub schedule: String,
    pub time_zone: String,
    /// `active` or `paused`.
    pub status: String,
    /// `paused_by_user` or `key_revoked` when paused.
    pub paused_reason: Option<String>,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
    /// The bulk action (parent invocation) of the last run.
    pub last_invocation_id: Option<String>,
    /// The key that created it; revoking that key pauses the schedule.
    pub key_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub fn item_of(s: &Schedule, agency: &str, key_hash: &str) -> Item {
    let k = keys::schedule(agency, &s.id);
    let mut item = obj(json!(s));
    item.insert("PK".into(), k.pk.into());
    item.insert("SK".into(), k.sk.into());
    item.insert("entity".into(), "bulkSchedule".into());
    item.insert("agencyId".into(), agency.into());
    item.insert("keyHash".into(), key_hash.into());
    if s.status == "active" {
        if let Some(next) = &s.next_run_at {
            item.insert("GSI3PK".into(), keys::SCHEDULES_DUE.into());
            item.insert("GSI3SK".into(), keys::schedule_due_sort(next, &s.id).into());
        }
    }
    item
}

pub fn parse_item(item: &Item) -> ApiResult<Schedule> {
    Ok(items::parse("bulk schedule", item)?)
}

pub fn workspaces_value(w: &Workspaces) -> Value {
    match w {
        Workspaces::All => json!("all"),
        Workspaces::Ids(ids) => json!(ids),
        Workspaces::Tags(tags) => json!({ "tags": tags }),
    }
}

pub fn workspaces_of(v: &Value) -> Option<Workspaces> {
    serde_json::from_value(v.clone()).ok()
}

pub fn tz_of(name: &str) -> ApiResult<Tz> {
    name.parse::<Tz>()
        .map_err(|_| unprocessable("timeZone", "invalid_time_zone", format!("'{name}' is not an IANA time zone")))
}

/// What one tick did.
#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tick {
    pub started: u32,
    pub paused: u32,
    pub failed: u32,
}

fn pause_op(item: &Item, reason: &str) -> TxOp {
    let v = items::int_of(item, "version").unwrap_or(1);
    TxOp::update_if(
        Key::of(item).expect("a stored item has a key"),
        Update::new()
            .set("status", "paused")
            .set("pausedReason", reason)
            .set("updatedAt", time::now_string())
            .add("version", 1)
            .remove("GSI3PK")
            .remove("GSI3SK"),
        Condition::VersionEquals(v),
    )
}

/// Starts every schedule due at `now` (at most `limit`): each run's parent invocation and fan job
/// commit with the schedule's move to its next time, under the time read, so a run starts once
/// however many ticks overlap. A schedule whose key was revoked is paused instead.
pub async fn run_due(app: &App, now: DateTime<Utc>, limit: usize) -> ApiResult<Tick> {
    let mut tick = Tick::default();
    let upto = format!("{}#~", time::format(now));
    let q = Query::index(Index::Gsi3, keys::SCHEDULES_DUE).sk(SortKey::AtMost(upto)).limit(limit);
    let page = app.store.query(q).await?;
    for item in page.items {
        match start_one(app, &item, now).await {
            Ok(Some(true)) => tick.started += 1,
            Ok(Some(false)) => tick.paused += 1,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = ?e, schedule = ?items::str_of(&item, "id"), "a scheduled bulk action did not start");
                tick.failed += 1;
            }
        }
    }
    Ok(tick)
}

/// `Some(true)` started, `Some(false)` paused, `None` left (someone else moved it).
async fn start_one(app: &App, item: &Item, now: DateTime<Utc>) -> ApiResult<Option<bool>> {
    let s = parse_item(item)?;
    let agency = items::str_of(item, "agencyId").unwrap_or_default().to_owned();
    let hash = items::str_of(item, "keyHash").unwrap_or_default();
    let caller = match linkcrm_core::auth::authenticate_hash(app, hash).await {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            return match app.store.transact(vec![pause_op(item, "key_revoked")]).await {
                Ok(()) => Ok(Some(false)),
                Err(StoreError::ConditionFailed { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        Err(e) => return Err(e),
    };
    let spec = parse(&s.schedule).ok_or_else(ApiError::internal)?;
    let next = time::format(next_after(spec, tz_of(&s.time_zone)?, now));
    let workspaces = match workspaces_of(&s.workspaces) {
        Some(w) => resolve_for(app, &agency, &w).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let ask = Ask {
        caller: &caller,
        action: &s.action,
        config: s.config.clone(),
        workspaces,
        schedule_id: Some(s.id.clone()),
    };
    let (id, mut ops) = bulk::start_ops(&ask)?;
    let v = items::int_of(item, "version").unwrap_or(1);
    ops.push(TxOp::update_if(
        Key::of(item).expect("a stored item has a key"),
        Update::new()
            .set("nextRunAt", next.clone())
            .set("GSI3SK", keys::schedule_due_sort(&next, &s.id))
            .set("lastRunAt", time::format(now))
            .set("lastInvocationId", id)
            .set("updatedAt", time::now_string())
            .add("version", 1),
        Condition::And(vec![Condition::VersionEquals(v), Condition::Equals("status".into(), json!("active"))]),
    ));
    match app.store.transact(ops).await {
        Ok(()) => Ok(Some(true)),
        Err(StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_the_two_forms() {
        assert_eq!(parse("daily:09:30"), Some(Spec::Daily(NaiveTime::from_hms_opt(9, 30, 0).unwrap())));
        assert_eq!(
            parse("weekly:mon:09:00"),
            Some(Spec::Weekly(Weekday::Mon, NaiveTime::from_hms_opt(9, 0, 0).unwrap()))
        );
        for bad in ["daily:24:00", "daily:9:00", "weekly:monday:09:00", "hourly", "weekly:mon:09:60", ""] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let re = regex::Regex::new(PATTERN).unwrap();
        for good in ["daily:00:00", "daily:23:59", "weekly:sun:07:05"] {
            assert!(re.is_match(good) && parse(good).is_some(), "{good}");
        }
    }

    #[test]
    fn daily_and_weekly_in_new_york_and_berlin() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let daily = parse("daily:09:00").unwrap();
        // 2026-12-06 is a Sunday; 09:00 EST is 14:00 UTC.
        assert_eq!(next_after(daily, ny, utc("2026-12-06T13:00:00Z")), utc("2026-12-06T14:00:00Z"));
        assert_eq!(next_after(daily, ny, utc("2026-12-06T14:00:00Z")), utc("2026-12-07T14:00:00Z"));
        let monday = parse("weekly:mon:09:00").unwrap();
        assert_eq!(next_after(monday, ny, utc("2026-12-06T20:00:00Z")), utc("2026-12-07T14:00:00Z"));
        assert_eq!(next_after(monday, ny, utc("2026-12-07T14:00:01Z")), utc("2026-12-14T14:00:00Z"));
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(next_after(monday, berlin, utc("2026-12-06T20:00:00Z")), utc("2026-12-07T08:00:00Z"));
    }

    #[test]
    fn daylight_saving_gap_and_fold() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2027-03-28: 02:00 jumps to 03:00 in Berlin; 02:30 does not exist, so 03:00 CEST (01:00 UTC).
        let gap = parse("daily:02:30").unwrap();
        assert_eq!(next_after(gap, berlin, utc("2027-03-27T12:00:00Z")), utc("2027-03-28T01:00:00Z"));
        // The day after, 02:30 CEST again (00:30 UTC).
        assert_eq!(next_after(gap, berlin, utc("2027-03-28T01:00:00Z")), utc("2027-03-29T00:30:00Z"));
        // 2027-10-31: 02:30 happens twice; the first (CEST, 00:30 UTC) runs.
        assert_eq!(next_after(gap, berlin, utc("2027-10-30T12:00:00Z")), utc("2027-10-31T00:30:00Z"));
        // New York's spring-forward (2027-03-14, 02:00 -> 03:00): 02:15 runs at 03:00 EDT.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            next_after(parse("daily:02:15").unwrap(), ny, utc("2027-03-13T12:00:00Z")),
            utc("2027-03-14T07:00:00Z")
        );
    }
}
