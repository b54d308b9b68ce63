//! A campaign's send window: the weekdays and hours, in the workspace's time zone, when its
//! emails may go out (`sendWindow: {days, start, end}`). A send due outside it waits for the next
//! opening. Times are wall-clock in the zone, so a window keeps its local hours across daylight
//! saving changes; an opening that falls in a spring-forward gap moves to the first valid instant.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendWindow {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after local midnight; `end` may be 1440 (24:00). `start < end`.
    pub start: u32,
    pub end: u32,
}

/// Why a window is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("days must name at least one of mon, tue, wed, thu, fri, sat, sun")]
    Days,
    #[error("{0} is not a time of day as HH:MM")]
    Time(String),
    #[error("end must be after start")]
    Order,
}

fn minutes(s: &str) -> Result<u32, WindowError> {
    if s == "24:00" {
        return Ok(1440);
    }
    NaiveTime::parse_from_str(s, "%H:%M").map(|t| t.hour_min()).map_err(|_| WindowError::Time(s.to_owned()))
}

trait HourMin {
    fn hour_min(&self) -> u32;
}
impl HourMin for NaiveTime {
    fn hour_min(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
}

impl SendWindow {
    pub fn parse(days: &[String], start: &str, end: &str) -> Result<SendWindow, WindowError> {
        let mut set = [false; 7];
        for d in days {
            let i = DAYS.iter().position(|x| *x == d.to_ascii_lowercase()).ok_or(WindowError::Days)?;
            set[i] = true;
        }
        if !set.contains(&true) {
            return Err(WindowError::Days);
        }
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start >= end {
            return Err(WindowError::Order);
        }
        Ok(SendWindow { days: set, start, end })
    }

    /// As stored in a campaign's settings.
    pub fn to_json(&self) -> Value {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let days: Vec<&str> = DAYS.iter().zip(self.days).filter(|(_, on)| *on).map(|(d, _)| *d).collect();
        json!({ "days": days, "start": hm(self.start), "end": hm(self.end) })
    }

    pub fn from_json(v: &Value) -> Option<SendWindow> {
        let days: Vec<String> =
            v.get("days")?.as_array()?.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect();
        SendWindow::parse(&days, v.get("start")?.as_str()?, v.get("end")?.as_str()?).ok()
    }

    fn instant(tz: Tz, date: NaiveDate, minute: u32) -> DateTime<Utc> {
        let naive = date.and_time(NaiveTime::MIN) + Duration::minutes(minute as i64);
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            // In a spring-forward gap: the first instant after it.
            LocalResult::None => (1..=180)
                .find_map(|m| tz.from_local_datetime(&(naive + Duration::minutes(m))).earliest())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
        }
    }

    /// `None` when `now` is inside the window; else the next instant it opens.
    pub fn next_open(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&tz).date_naive();
        for offset in -1..=8 {
            let date = today + Duration::days(offset);
            if !self.days[date.weekday().num_days_from_monday() as usize] {
                continue;
            }
            let (open, close) = (Self::instant(tz, date, self.start), Self::instant(tz, date, self.end));
            if now >= open && now < close {
                return None;
            }
            if open > now {
                return Some(open);
            }
        }
        None
    }
}

/// A time zone by its IANA name (`Europe/Berlin`); UTC when none is set.
pub fn zone(name: Option<&str>) -> Option<Tz> {
    match name {
        None => Some(Tz::UTC),
        Some(n) => n.parse::<Tz>().ok(),
    }
}

/// The start of the current calendar week (Monday 00:00) and the end of the current day (the next
/// midnight), in the zone named (UTC when none or unknown), as UTC instants.
pub fn week_and_day(now: DateTime<Utc>, zone_name: Option<&str>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::{Datelike, Duration, TimeZone};
    let tz = zone(zone_name).unwrap_or(Tz::UTC);
    let local = now.with_timezone(&tz).date_naive();
    let midnight = |d: chrono::NaiveDate| {
        let naive = d.and_hms_opt(0, 0, 0).expect("midnight");
        // A midnight that does not exist (a zone's spring-forward at 00:00) is taken an hour on.
        tz.from_local_datetime(&naive)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(naive + Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now)
    };
    let monday = local - Duration::days(local.weekday().num_days_from_monday() as i64);
    (midnight(monday), midnight(local + Duration::days(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_week_starts_on_monday_and_the_day_ends_at_midnight_in_the_zone() {
        // Sunday 2026-12-06 23:30 UTC is Monday 00:30 in Berlin.
        let now = at("2026-12-06T23:30:00Z");
        let (week, day) = week_and_day(now, None);
        assert_eq!((week, day), (at("2026-11-30T00:00:00Z"), at("2026-12-07T00:00:00Z")));
        let (week, day) = week_and_day(now, Some("Europe/Berlin"));
        assert_eq!((week, day), (at("2026-12-06T23:00:00Z"), at("2026-12-07T23:00:00Z")));
        let (week, _) = week_and_day(now, Some("America/New_York"));
        assert_eq!(week, at("2026-11-30T05:00:00Z"));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekdays_9_to_17() -> SendWindow {
        let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"].iter().map(|s| s.to_string()).collect();
        SendWindow::parse(&days, "09:00", "17:00").unwrap()
    }

    #[test]
    fn inside_the_window_sends_now() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Wednesday 2026-12-09 10:00 in Berlin is 09:00 UTC.
        assert_eq!(weekdays_9_to_17().next_open(at("2026-12-09T09:00:00Z"), berlin), None);
        assert_eq!(weekdays_9_to_17().next_open(at("2026-12-09T15:59:00Z"), berlin), None);
    }

    #[test]
    fn outside_it_waits_for_the_next_opening_in_the_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Wednesday 17:00 Berlin (16:00 UTC): closed; Thursday 09:00 Berlin = 08:00 UTC.
        assert_eq!(weekdays_9_to_17().next_open(at("2026-12-09T16:00:00Z"), berlin), Some(at("2026-12-10T08:00:00Z")));
        // Friday evening: Monday morning.
        assert_eq!(weekdays_9_to_17().next_open(at("2026-12-11T20:00:00Z"), berlin), Some(at("2026-12-14T08:00:00Z")));
        // Early Wednesday in Berlin while still Tuesday in UTC.
        assert_eq!(weekdays_9_to_17().next_open(at("2026-12-08T23:30:00Z"), berlin), Some(at("2026-12-09T08:00:00Z")));
        // New York: 09:00 EST = 14:00 UTC.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(weekdays_9_to_17().next_open(at("2026-12-09T13:00:00Z"), ny), Some(at("2026-12-09T14:00:00Z")));
    }

    #[test]
    fn local_hours_hold_across_daylight_saving() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Berlin moves to CEST on Sunday 2027-03-28: Monday 09:00 is 07:00 UTC, the Friday before 08:00 UTC.
        assert_eq!(weekdays_9_to_17().next_open(at("2027-03-26T17:00:00Z"), berlin), Some(at("2027-03-29T07:00:00Z")));
        // A window opening at 02:30 on the spring-forward night opens at 03:00 local (01:00 UTC).
        let sunday = SendWindow::parse(&["sun".to_string()], "02:30", "04:00").unwrap();
        assert_eq!(sunday.next_open(at("2027-03-27T12:00:00Z"), berlin), Some(at("2027-03-28T01:00:00Z")));
    }

    #[test]
    fn bad_windows_are_refused() {
        assert_eq!(SendWindow::parse(&[], "09:00", "17:00"), Err(WindowError::Days));
        assert_eq!(SendWindow::parse(&["someday".into()], "09:00", "17:00"), Err(WindowError::Days));
        assert_eq!(SendWindow::parse(&["mon".into()], "17:00", "09:00"), Err(WindowError::Order));
        assert!(matches!(SendWindow::parse(&["mon".into()], "9am", "17:00"), Err(WindowError::Time(_))));
        let w = SendWindow::parse(&["Mon".into(), "sun".into()], "00:00", "24:00").unwrap();
        assert_eq!(w.to_json(), json!({ "days": ["mon", "sun"], "start": "00:00", "end": "24:00" }));
        assert_eq!(SendWindow::from_json(&w.to_json()), Some(w));
        assert_eq!(zone(Some("Mars/Olympus")), None);
        assert_eq!(zone(None), Some(Tz::UTC));
    }
}
