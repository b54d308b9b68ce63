//! Delivery status notifications (RFC 3464): `multipart/report; report-type=delivery-status` with a
//! machine-readable `message/delivery-status` part. We read that part rather than the human text,
//! whose wording differs for every mail server.

use crate::inbound::{normalise_id, Bounce, BounceKind};
use mail_parser::{Message, MimeHeaders, PartType};

pub(crate) fn bounce(message: &Message<'_>) -> Option<Bounce> {
    let status = message.parts.iter().find_map(|part| {
        let is_status = part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status") || s.eq_ignore_ascii_case("global-delivery-status")
                })
        });
        if !is_status {
            return None;
        }
        match &part.body {
            PartType::Text(t) => Some(t.as_bytes()),
            PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.as_ref()),
            _ => None,
        }
    })?;
    let groups = field_groups(&String::from_utf8_lossy(status));

    // The first group is about the message; each later one about one recipient. A report may
    // also list recipients that were delivered: only a failure or a delay is a bounce.
    let recipients = || groups.iter().skip(1).filter(|g| field(g, "action").is_some());
    let failed = recipients()
        .find(|g| field(g, "action").is_some_and(|a| a.eq_ignore_ascii_case("failed")))
        .or_else(|| recipients().find(|g| field(g, "action").is_some_and(|a| a.eq_ignore_ascii_case("delayed"))))?;

    let action = field(failed, "action")?.to_ascii_lowercase();
    let status = field(failed, "status").and_then(|s| s.split_whitespace().next()).unwrap_or("").to_owned();
    let kind = if action == "delayed" || status.starts_with('4') { BounceKind::Soft } else { BounceKind::Hard };
    let recipient = field(failed, "final-recipient").or_else(|| field(failed, "original-recipient")).map(address_part);
    Some(Bounce {
        recipient,
        status,
        kind,
        action,
        diagnostic: field(failed, "diagnostic-code").map(str::to_owned),
        original_message_id: original_message_id(message),
    })
}

/// Header-like fields, unfolded, in groups separated by blank lines; names lowercased.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = vec![];
    let mut current: Vec<(String, String)> = vec![];
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// `rfc822; <user@example.com>` → `user@example.com`.
fn address_part(value: &str) -> String {
    let address = value.split_once(';').map_or(value, |(_, a)| a);
    address.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

/// The bounced message's id, from a returned `message/rfc822` copy or `text/rfc822-headers`.
fn original_message_id(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(inner) => inner.message_id().map(normalise_id),
        PartType::Text(text) if part.is_content_type("text", "rfc822-headers") => {
            let groups = field_groups(text);
            groups.first().and_then(|g| field(g, "message-id")).map(normalise_id)
        }
        _ => None,
    })
}
