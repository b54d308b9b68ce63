//! Timestamps: RFC 3339 UTC with millisecond precision, so strings sort like the instants.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now_string() -> String {
    format(now())
}

/// Parses any RFC 3339 time (any offset) and returns it in UTC.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_fixed_width_utc() {
        let t = super::parse("2026-05-26T10:00:00-04:00").unwrap();
        assert_eq!(super::format(t), "2026-05-26T14:00:00.000Z");
        assert!(super::parse("yesterday").is_none());
    }
}
