//! What a tenant typed as a host: an IP literal, a DNS name, or nothing we will look up.

use std::net::{IpAddr, Ipv6Addr};

pub(crate) enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// Splits literals from names, and refuses anything that is neither before a resolver sees it.
///
/// The system resolver also accepts legacy IPv4 spellings (`127.1`, `0x7f.1`, `2130706433`,
/// `0177.0.0.1`) that `std` does not parse. Such a string must never reach it as a "name", so a
/// name whose last label is numeric is refused: no top-level domain is numeric, so nothing
/// legitimate is lost.
pub(crate) fn parse(host: &str) -> Result<Host<'_>, &'static str> {
    if host.is_empty() {
        return Err("empty");
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("unbalanced bracket")?;
        return inner.parse::<Ipv6Addr>().map(|ip| Host::Ip(IpAddr::V6(ip))).map_err(|_| "not an IPv6 address");
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if host.contains(':') {
        // A malformed IPv6 literal, a zone id (`fe80::1%eth0`) or a `host:port`.
        return Err("not an IP address");
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    if !name.is_ascii() {
        return Err("not ASCII (international names must be given in their xn-- form)");
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("character not allowed in a host name");
        }
        last = label;
    }
    if is_numeric_label(last) {
        return Err("numeric, but not a standard IP address");
    }
    Ok(Host::Name(host))
}

/// Decimal, or `0x` hexadecimal (octal is decimal digits with a leading zero).
fn is_numeric_label(label: &str) -> bool {
    let hex = label.strip_prefix("0x").or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => label.bytes().all(|b| b.is_ascii_digit()),
    }
}
