//! What the REST door reads from request headers for the executor: the bearer key and the named
//! workspace, each sent at most once.

use axum::http::{HeaderMap, HeaderValue};
use linkcrm_core::error::{ApiError, ApiResult};

/// The one value of a header that may be sent at most once: two `Authorization` or
/// `X-Workspace-Id` headers are refused rather than letting the first (or the last) win, since
/// proxies and servers disagree on which one that is.
pub fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> ApiResult<Option<&'h HeaderValue>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request("duplicate_header", format!("The {name} header was sent more than once."))
            .with_details(serde_json::json!({ "header": name })));
    }
    Ok(first)
}

/// The key of `Authorization: Bearer <key>`.
pub fn bearer(headers: &HeaderMap) -> ApiResult<&str> {
    let raw = single_header(headers, "authorization")?
        .ok_or_else(|| ApiError::unauthorized("Missing Authorization header; send 'Authorization: Bearer <key>'."))?;
    let raw = raw.to_str().map_err(|_| ApiError::unauthorized("Malformed Authorization header."))?;
    let (scheme, token) = raw
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("Malformed Authorization header; expected 'Bearer <key>'."))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > 256
        || token.contains(char::is_whitespace)
    {
        return Err(ApiError::unauthorized("Malformed Authorization header; expected 'Bearer <key>'."));
    }
    Ok(token)
}

/// The workspace the caller named (`X-Workspace-Id`), or why the header cannot be read.
pub fn workspace_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match single_header(headers, "x-workspace-id")? {
        None => Ok(None),
        Some(v) => Ok(Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid_request", "Malformed X-Workspace-Id header."))?
                .trim()
                .to_owned(),
        )),
    }
}
