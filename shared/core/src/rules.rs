//! What free-text fields accept, as JSON Schema `pattern`s for the OpenAPI document.
//!
//! Each pattern describes a subset of what the field's check in its operation accepts (which also
//! trims, normalises and takes IDNs), so any value matching it is taken: the document never
//! promises what the server refuses. Patterns are ECMA-262 regular expressions, anchored.

/// An email address (`normalize_email`).
pub const EMAIL: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,30}(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,30})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}$";

/// A domain (`normalize_domain`, which also takes a URL and strips `www.`).
pub const DOMAIN: &str = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}$";

/// An http(s) URL with a host name, without spaces.
pub const HTTP_URL: &str = r"^https?://([A-Za-z0-9-]{1,20}\.){1,3}[A-Za-z]{2,12}(/[!-~]{0,500})?$";

/// Text with something in it besides spaces.
pub const NOT_BLANK: &str = r"\S";

/// One line of text with something in it: no control characters (what becomes a mail header).
pub const ONE_LINE: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// A time as RFC 3339, or a date (`time_param`); past dates only, so "not in the future" holds.
pub const TIME: &str = r"^(19[0-9]{2}|20[01][0-9]|202[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]0[0-9]:[0-5][0-9]))?$";

/// `now`, or a time as [`TIME`] (a reply's `scheduleAt`).
pub const NOW_OR_TIME: &str = r"^now$|^(19[0-9]{2}|20[01][0-9]|202[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]0[0-9]:[0-5][0-9]))?$";

/// A moment in time as RFC 3339 (not a bare date), in the past.
pub const TIMESTAMP: &str = r"^(19[0-9]{2}|20[01][0-9]|202[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]0[0-9]:[0-5][0-9])$";

/// A workspace tag.
pub const TAG: &str = r"^[A-Za-z0-9:_./-]{1,64}$";

/// A provider's API key or a password: printable ASCII without spaces.
pub const SECRET: &str = r"^[!-~]{8,200}$";

/// A host name or an IP address as a mail server's address.
pub const HOST: &str = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}$";

/// A reference to a secret held elsewhere (`secret_refs::is_reference`).
pub const SECRET_REF: &str =
    r"^(env:[A-Za-z0-9_]{1,64}|arn:aws:secretsmanager:[a-z0-9-]{1,20}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,100})$";

/// A raw email: at least a header the parser needs, then the rest of the message.
pub const RAW_EMAIL: &str = r"^From: [A-Za-z0-9._-]{1,30}@[A-Za-z0-9-]{1,30}\.[a-z]{2,6}\r\n";
