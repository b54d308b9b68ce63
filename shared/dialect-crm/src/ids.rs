//! Ids as the dialect shows them: the decoded, hyphenated UUID of our prefixed id (CONTRACT
//! "Names and ids"), and back. The prefix is known from the field an id arrives in.

use linkcrm_domain::id::{decode, encode};
use linkcrm_domain::IdKind;
use serde_json::Value;

/// Our id (`stg_01J…`) as its UUID (`0190…-…`); anything else as it is.
pub fn to_uuid(ours: &str) -> String {
    match ours.split_once('_') {
        Some((_, body)) => match decode(body) {
            Some(u) => u.hyphenated().to_string(),
            None => ours.to_owned(),
        },
        None => ours.to_owned(),
    }
}

/// A JSON id of ours as a UUID (null stays null).
pub fn uuid_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(to_uuid(s)),
        other => other.clone(),
    }
}

/// A UUID the client sent, as our id of `kind`; our own prefixed id is accepted too. None when it
/// is neither.
pub fn to_ours(kind: IdKind, raw: &str) -> Option<String> {
    let raw = raw.trim();
    if linkcrm_domain::id::is_id(kind, raw) {
        return Some(raw.to_owned());
    }
    let u = uuid::Uuid::parse_str(raw).ok()?;
    // Only the hyphenated (or simple) text forms; a URN or braces would be another spelling.
    if raw.len() != 36 && raw.len() != 32 {
        return None;
    }
    // Ids are UUIDv7 encoded in 26 Crockford characters: the first carries 3 bits, so every
    // 128-bit value round-trips.
    let ours = format!("{}{}", kind.prefix(), encode(u));
    Some(ours)
}

/// Ids of ours inside a message (`No opportunity with id 'opp_…'`) written as UUIDs.
pub fn uuids_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('_') && word.len() > 26 {
            let converted = to_uuid(word);
            out.push_str(&converted);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_uuid() {
        let ours = linkcrm_domain::new_id(IdKind::Stage);
        let u = to_uuid(&ours);
        assert_eq!(u.len(), 36);
        assert_eq!(to_ours(IdKind::Stage, &u).as_deref(), Some(ours.as_str()));
        assert_eq!(to_ours(IdKind::Stage, &u.to_uppercase()).as_deref(), Some(ours.as_str()));
        assert_eq!(to_ours(IdKind::Stage, &ours).as_deref(), Some(ours.as_str()));
        assert_eq!(to_ours(IdKind::Stage, "not-a-uuid"), None);
        assert_eq!(to_ours(IdKind::Stage, &format!("{{{u}}}")), None);
        assert_eq!(to_ours(IdKind::Opportunity, &ours), None, "another kind's prefixed id");
    }

    #[test]
    fn messages_name_uuids() {
        let ours = linkcrm_domain::new_id(IdKind::Opportunity);
        let text = format!("No opportunity with id '{ours}'.");
        assert_eq!(uuids_in_text(&text), format!("No opportunity with id '{}'.", to_uuid(&ours)));
        assert_eq!(uuids_in_text("title: is required"), "title: is required");
    }
}
