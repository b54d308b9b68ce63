//! Checks of free text and times that many operations share.

use crate::error::{ApiError, ApiResult};

/// A time filter: RFC 3339 (any offset) or a bare date (`2026-05-01` = its start, UTC), in the
/// stored form so it compares with stored times.
pub fn time_param(field: &str, raw: &str) -> ApiResult<String> {
    let raw = raw.trim();
    let parsed = linkcrm_domain::time::parse(raw).or_else(|| {
        chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
    });
    parsed.map(linkcrm_domain::time::format).ok_or_else(|| {
        ApiError::invalid_field(field, "invalid_request", "must be an RFC 3339 time or a YYYY-MM-DD date")
    })
}

/// Text that becomes (part of) a mail header, such as a subject or a sender's display name: one
/// line without control characters, so it can neither break the header nor smuggle another in.
pub fn header_text(field: &str, raw: Option<String>, max: usize) -> ApiResult<Option<String>> {
    let value = text(field, raw, max)?;
    if value.as_deref().is_some_and(|s| s.chars().any(char::is_control)) {
        return Err(ApiError::invalid_field(field, "invalid_request", "must be one line without control characters"));
    }
    Ok(value)
}

/// Bounded free text: trimmed, empty is none, at most `max` characters.
pub fn text(field: &str, raw: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match raw {
        None => Ok(None),
        Some(s) if s.chars().count() > max => {
            Err(ApiError::invalid_field(field, "invalid_request", format!("at most {max} characters")))
        }
        Some(s) => Ok(Some(s).filter(|s| !s.trim().is_empty())),
    }
}
