//! List responses and their cursors.

use crate::error::{ApiError, ApiResult};
use crate::App;
use hmac::{Hmac, KeyInit, Mac};
use linkcrm_storage::Cursor;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::Sha256;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// `{ data, nextCursor, total? }`
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Present where a maintained counter makes it cheap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

pub fn limit(raw: Option<u32>) -> ApiResult<usize> {
    match raw {
        None => Ok(DEFAULT_LIMIT as usize),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n as usize),
        Some(_) => {
            Err(ApiError::invalid_field("limit", "invalid_request", format!("must be between 1 and {MAX_LIMIT}")))
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

impl App {
    fn cursor_mac(&self, scope: &str, body: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(self.server_secret()).expect("any key length");
        mac.update(scope.as_bytes());
        mac.update(b"\0");
        mac.update(body.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// Signs any text for a client, bound to `scope`.
    pub fn seal_token(&self, scope: &str, text: &str) -> String {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes());
        format!("{body}.{}", self.cursor_mac(scope, &body))
    }

    /// Opens what `seal_token` made for the same scope; anything else is 400 `invalid_cursor`.
    pub fn open_token(&self, scope: &str, raw: &str) -> ApiResult<String> {
        use base64::Engine;
        let bad = || ApiError::invalid_field("cursor", "invalid_cursor", "is not a cursor this list returned");
        let (body, tag) = raw.rsplit_once('.').ok_or_else(bad)?;
        if self.cursor_mac(scope, body) != tag {
            return Err(bad());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        String::from_utf8(bytes).map_err(|_| bad())
    }

    /// Wraps a store cursor for a client, bound to `scope` (operation and workspace).
    pub fn seal_cursor(&self, scope: &str, cursor: Option<Cursor>) -> Option<String> {
        let body = cursor?.encode();
        Some(format!("{body}.{}", self.cursor_mac(scope, &body)))
    }

    /// Opens a client's cursor; anything forged, truncated or from another scope is 400.
    pub fn open_cursor(&self, scope: &str, raw: Option<&str>) -> ApiResult<Option<Cursor>> {
        let Some(raw) = raw else { return Ok(None) };
        let bad = || ApiError::invalid_field("cursor", "invalid_cursor", "is not a cursor this list returned");
        let (body, tag) = raw.rsplit_once('.').ok_or_else(bad)?;
        if self.cursor_mac(scope, body) != tag {
            return Err(bad());
        }
        Cursor::decode(body).map(Some).ok_or_else(bad)
    }
}
