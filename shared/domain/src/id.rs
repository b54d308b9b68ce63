//! Typed, prefixed, time-sortable identifiers.
//!
//! Every id is a prefix plus a UUIDv7 written in Crockford base32 (26 characters, like a ULID):
//! `acct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B`. Base32 of a fixed-width number sorts like the number, so ids
//! sort by creation time, and any id converts to the bare UUID a dialect may want to show.

use std::sync::Mutex;
use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Kinds of ids and their prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    Account,
    Contact,
    Relationship,
    Event,
    Workspace,
    Agency,
    ApiKey,
    Invocation,
    Request,
    Approval,
    Campaign,
    SerpCampaign,
    CompetitorCampaign,
    InboundCampaign,
    Template,
    EvalGate,
    Webhook,
    WebhookMessage,
    WebhookAttempt,
    BulkSchedule,
    Mailbox,
    Message,
    Agent,
    Job,
    Audit,
    Stage,
    Opportunity,
    Task,
    Company,
    Member,
    Membership,
    MarketingList,
    Link,
    LinkCheck,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Account => "acct_",
            IdKind::Contact => "ct_",
            IdKind::Relationship => "rel_",
            IdKind::Event => "evt_",
            IdKind::Workspace => "ws_",
            IdKind::Agency => "ag_",
            IdKind::ApiKey => "key_",
            IdKind::Invocation => "inv_",
            IdKind::Request => "req_",
            IdKind::Approval => "appr_",
            IdKind::Campaign => "cmp_",
            IdKind::SerpCampaign => "scmp_",
            IdKind::CompetitorCampaign => "ccmp_",
            IdKind::InboundCampaign => "icmp_",
            IdKind::Template => "tpl_",
            IdKind::EvalGate => "gate_",
            IdKind::Webhook => "whk_",
            IdKind::WebhookMessage => "whmsg_",
            IdKind::WebhookAttempt => "whatt_",
            IdKind::BulkSchedule => "bsch_",
            IdKind::Mailbox => "mbx_",
            IdKind::Message => "msg_",
            IdKind::Agent => "agt_",
            IdKind::Job => "job_",
            IdKind::Audit => "aud_",
            IdKind::Stage => "stg_",
            IdKind::Opportunity => "opp_",
            IdKind::Task => "task_",
            IdKind::Company => "co_",
            IdKind::Member => "mem_",
            IdKind::Membership => "cms_",
            IdKind::MarketingList => "mlist_",
            IdKind::Link => "lnk_",
            IdKind::LinkCheck => "lchk_",
        }
    }
}

/// A new id of the given kind. Ids made by one process are strictly increasing.
pub fn new_id(kind: IdKind) -> String {
    format!("{}{}", kind.prefix(), encode(next_uuid()))
}

/// The UUIDv7 behind an id, if it has the expected prefix and a well-formed body.
pub fn parse_id(kind: IdKind, id: &str) -> Option<Uuid> {
    decode(id.strip_prefix(kind.prefix())?)
}

/// Whether `id` is a well-formed id of this kind.
pub fn is_id(kind: IdKind, id: &str) -> bool {
    parse_id(kind, id).is_some()
}

/// Writes a UUID as 26 Crockford base32 characters.
pub fn encode(u: Uuid) -> String {
    let mut n = u.as_u128();
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

pub fn decode(s: &str) -> Option<Uuid> {
    if s.len() != 26 {
        return None;
    }
    let mut n: u128 = 0;
    for (i, c) in s.bytes().enumerate() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())? as u128;
        // The first character carries only 3 bits (26 * 5 = 130).
        if i == 0 && v > 7 {
            return None;
        }
        n = (n << 5) | v;
    }
    Some(Uuid::from_u128(n))
}

/// UUIDv7s that increase strictly within the process, even within one millisecond.
fn next_uuid() -> Uuid {
    static LAST: Mutex<u128> = Mutex::new(0);
    let fresh = Uuid::now_v7().as_u128();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    // Same millisecond (or a clock step back): keep the timestamp, bump the random bits.
    let next = if fresh > *last { fresh } else { *last + 1 };
    *last = next;
    Uuid::from_u128(next)
}

/// The smallest id of `kind` made at or after `ms` (Unix milliseconds): a bound for range reads
/// of time-sorted ids (`SK >= bound_at(evt, since)`).
pub fn bound_at(kind: IdKind, ms: i64) -> String {
    let ms = u128::try_from(ms.max(0)).unwrap_or(0) & ((1u128 << 48) - 1);
    format!("{}{}", kind.prefix(), encode(Uuid::from_u128(ms << 80)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| new_id(IdKind::Event)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        for id in &ids {
            assert!(id.starts_with("evt_") && id.len() == 30);
            let u = parse_id(IdKind::Event, id).unwrap();
            assert_eq!(u.get_version_num(), 7);
            assert_eq!(format!("evt_{}", encode(u)), *id);
        }
        assert!(parse_id(IdKind::Account, &ids[0]).is_none());
        assert!(decode("not-an-id").is_none());
        assert!(decode("ZZZZZZZZZZZZZZZZZZZZZZZZZZ").is_none());
    }

    #[test]
    fn bounds_bracket_the_ids_of_their_millisecond() {
        let before = chrono::Utc::now().timestamp_millis();
        let id = new_id(IdKind::Event);
        let after = chrono::Utc::now().timestamp_millis();
        assert!(bound_at(IdKind::Event, before) <= id);
        assert!(id < bound_at(IdKind::Event, after + 1));
        assert!(is_id(IdKind::Event, &bound_at(IdKind::Event, before)));
    }
}
