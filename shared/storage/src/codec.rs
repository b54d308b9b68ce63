//! The embedded store's item encoding: a compact binary form of the JSON object an item is.
//!
//! JSON text spends most of an item's bytes on attribute names and punctuation, and decoding it
//! means scanning every character. Here a value is a tag byte and its payload, lengths and
//! integers are varints, and attribute names the tables use are one byte from [`NAMES`] (others
//! are written out). Decoding gives back exactly the `serde_json` value that was encoded (property
//! tested), so every adapter keeps the same semantics.
//!
//! A stored value starting with [`MAGIC`] is this encoding; anything else is JSON text, as stores
//! written before it hold (an item is rewritten in the new form when it is next written, or by
//! `linkcrm store compact`).

use serde_json::{Map, Number, Value};

/// First byte of an encoded item (JSON text starts with `{`).
pub const MAGIC: u8 = 0xB1;
/// First byte of an encoded item compressed with LZ4 (block format): then the encoding's length
/// (a varint) and the compressed encoding. Items repeat their ids and times in several
/// attributes (an event names its id five times, its workspace three), which LZ4 folds away: a
/// stored event shrinks by about half.
pub const MAGIC_LZ4: u8 = 0xB2;
/// Encodings shorter than this are stored as they are.
const COMPRESS_FROM: usize = 128;
/// The largest encoding a compressed item may claim (items are at most 400 KB; the binary form
/// is never longer than the JSON text).
const MAX_PLAIN: u64 = 1 << 20;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Attribute names written as their index + 1 (0 means "the name follows"). Append only: stored
/// items refer to these positions, so an entry may never move or change (the test pins them).
pub const NAMES: &[&str] = &[
    "PK",
    "SK",
    "entity",
    "id",
    "type",
    "status",
    "version",
    "name",
    "createdAt",
    "updatedAt",
    "GSI1PK",
    "GSI1SK",
    "GSI2PK",
    "GSI2SK",
    "GSI3PK",
    "GSI3SK",
    "GSI4PK",
    "GSI4SK",
    "GSI5PK",
    "GSI5SK",
    "ttl",
    "organizationId",
    "workspaceId",
    "agencyId",
    "accountId",
    "relationshipId",
    "contactId",
    "eventId",
    "invocationId",
    "messageId",
    "mailboxId",
    "keyId",
    "occurredAt",
    "metadata",
    "subject",
    "content",
    "seq",
    "domain",
    "source",
    "sourceDetails",
    "priority",
    "archived",
    "notes",
    "email",
    "firstName",
    "lastName",
    "title",
    "lastEventAt",
    "lastContactedByUsAt",
    "firstContactedByUsAt",
    "initialStatus",
    "contactAttemptCount",
    "firstContact",
    "lastContact",
    "recentSends",
    "receivedCount",
    "lastReceivedAt",
    "doNotContact",
    "domainRating",
    "organicTraffic",
    "organicKeywords",
    "referringDomains",
    "backlinks",
    "priceGuestPost",
    "priceLinkInsertion",
    "priceContext",
    "pricesUpdatedAt",
    "isActive",
    "bestContactId",
    "count",
    "state",
    "token",
    "fingerprint",
    "leaseUntil",
    "response",
    "body",
    "scopes",
    "revokedAt",
    "lastUsedAt",
    "settings",
    "skill",
    "input",
    "result",
    "error",
    "reason",
    "description",
    "code",
    "message",
    "details",
    "from",
    "to",
    "kind",
    "payload",
    "attempts",
    "visibleAt",
    "sentAt",
    "value",
    "linkUrl",
    "replyClass",
    "refSeq",
    "rawNotes",
    "ourContent",
    "targetBlogPost",
    "contactedByUs",
    "ahrefStatsUpdatedAt",
    "accountCount",
    "accountDomain",
    "passwordSealed",
    "fromAddress",
    "fromName",
    "provenance",
    "channel",
    "reservedMilli",
    "poolKind",
    "poolId",
    "estimatedCost",
    "approvalId",
    "agentId",
    "creditsUsed",
    "available",
    "reserved",
    "used",
    "timeoutAt",
    "raisedAt",
    "decidedAt",
    "latestOrgContacts",
];

fn name_index(name: &str) -> Option<usize> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| NAMES.iter().enumerate().map(|(i, n)| (*n, i)).collect()).get(name).copied()
}

/// Encodes an item (a JSON object), compressed when that saves at least a tenth.
pub fn encode(item: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(MAGIC);
    put_object(&mut out, item);
    if out.len() < COMPRESS_FROM {
        return out;
    }
    let packed = lz4_flex::block::compress(&out[1..]);
    if packed.len() + 4 > out.len() * 9 / 10 {
        return out;
    }
    let mut z = Vec::with_capacity(packed.len() + 4);
    z.push(MAGIC_LZ4);
    put_varint(&mut z, (out.len() - 1) as u64);
    z.extend_from_slice(&packed);
    z
}

/// The binary encoding of a stored value (after the magic byte), decompressed if need be;
/// `None` for JSON text.
fn body(bytes: &[u8]) -> Result<Option<std::borrow::Cow<'_, [u8]>>, String> {
    match bytes.first() {
        Some(&MAGIC) => Ok(Some(bytes[1..].into())),
        Some(&MAGIC_LZ4) => {
            let mut r = Reader { bytes, at: 1 };
            let n = r.varint()?;
            if n > MAX_PLAIN {
                return Err("compressed item claims an impossible size".into());
            }
            let mut plain = vec![0u8; n as usize];
            let got = lz4_flex::block::decompress_into(&bytes[r.at..], &mut plain).map_err(|e| e.to_string())?;
            if got != plain.len() {
                return Err("compressed item shorter than it claims".into());
            }
            Ok(Some(plain.into()))
        }
        _ => Ok(None),
    }
}

/// Decodes what [`encode`] wrote, or JSON text.
pub fn decode(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match body(bytes)? {
        Some(b) => {
            let mut r = Reader { bytes: &b, at: 0 };
            match r.value(0)? {
                Value::Object(m) if r.at == b.len() => Ok(m),
                Value::Object(_) => Err("trailing bytes after the item".into()),
                _ => Err("the stored item is not an object".into()),
            }
        }
        None => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
    }
}

/// Decodes only the top-level attributes `keep` accepts; the others are stepped over without
/// building their values (a list that shows two fields of a large item pays for those two).
/// JSON text is decoded whole, then cut down.
pub fn decode_some(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Result<Map<String, Value>, String> {
    let Some(b) = body(bytes)? else {
        let mut m = decode(bytes)?;
        m.retain(|k, _| keep(k));
        return Ok(m);
    };
    let bytes: &[u8] = &b;
    let mut r = Reader { bytes, at: 0 };
    if r.byte()? != OBJECT {
        return Err("the stored item is not an object".into());
    }
    let n = r.varint()?;
    if n > (bytes.len() - r.at) as u64 {
        return Err("object longer than the item".into());
    }
    let mut m = Map::new();
    for _ in 0..n {
        let name: std::borrow::Cow<'_, str> = match r.varint()? {
            0 => {
                let len = r.varint()?;
                std::str::from_utf8(r.take(len)?).map_err(|_| "string is not UTF-8")?.into()
            }
            i => (*NAMES.get(i as usize - 1).ok_or("unknown attribute name")?).into(),
        };
        if keep(&name) {
            let v = r.value(1)?;
            m.insert(name.into_owned(), v);
        } else {
            r.skip(1)?;
        }
    }
    if r.at != bytes.len() {
        return Err("trailing bytes after the item".into());
    }
    Ok(m)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_object(out: &mut Vec<u8>, m: &Map<String, Value>) {
    out.push(OBJECT);
    put_varint(out, m.len() as u64);
    for (k, v) in m {
        match name_index(k) {
            Some(i) => put_varint(out, i as u64 + 1),
            None => {
                put_varint(out, 0);
                put_str(out, k);
            }
        }
        put_value(out, v);
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push(INT);
                put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
            } else if let Some(u) = n.as_u64() {
                out.push(UINT);
                put_varint(out, u);
            } else {
                out.push(FLOAT);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(STR);
            put_str(out, s);
        }
        Value::Array(a) => {
            out.push(ARRAY);
            put_varint(out, a.len() as u64);
            for v in a {
                put_value(out, v);
            }
        }
        Value::Object(m) => put_object(out, m),
    }
}

/// Nesting deeper than any item we store is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("truncated item")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "length too large")?;
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("truncated item")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.varint()?;
        let s = self.take(n)?;
        std::str::from_utf8(s).map(str::to_owned).map_err(|_| "string is not UTF-8".into())
    }

    /// Steps over one value, checking its structure as `value` would, building nothing.
    fn skip(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("item nested too deeply".into());
        }
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            INT | UINT => {
                self.varint()?;
            }
            FLOAT => {
                self.take(8)?;
            }
            STR => {
                let n = self.varint()?;
                self.take(n)?;
            }
            ARRAY => {
                let n = self.varint()?;
                if n > (self.bytes.len() - self.at) as u64 {
                    return Err("array longer than the item".into());
                }
                for _ in 0..n {
                    self.skip(depth + 1)?;
                }
            }
            OBJECT => {
                let n = self.varint()?;
                if n > (self.bytes.len() - self.at) as u64 {
                    return Err("object longer than the item".into());
                }
                for _ in 0..n {
                    if self.varint()? == 0 {
                        let len = self.varint()?;
                        self.take(len)?;
                    }
                    self.skip(depth + 1)?;
                }
            }
            t => return Err(format!("unknown tag {t}")),
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("item nested too deeply".into());
        }
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => {
                let z = self.varint()?;
                Value::from(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            UINT => Value::from(self.varint()?),
            FLOAT => {
                let b: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
                Number::from_f64(f64::from_le_bytes(b)).map(Value::Number).ok_or("not a finite number")?
            }
            STR => Value::String(self.string()?),
            ARRAY => {
                let n = self.varint()?;
                // Every element takes at least one byte: a count beyond the rest is corrupt.
                if n > (self.bytes.len() - self.at) as u64 {
                    return Err("array longer than the item".into());
                }
                let mut a = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            OBJECT => {
                let n = self.varint()?;
                if n > (self.bytes.len() - self.at) as u64 {
                    return Err("object longer than the item".into());
                }
                let mut m = Map::with_capacity(n as usize);
                for _ in 0..n {
                    let name = match self.varint()? {
                        0 => self.string()?,
                        i => NAMES.get(i as usize - 1).ok_or("unknown attribute name")?.to_string(),
                    };
                    let v = self.value(depth + 1)?;
                    m.insert(name, v);
                }
                Value::Object(m)
            }
            t => return Err(format!("unknown tag {t}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((name(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![prop::sample::select(NAMES).prop_map(str::to_owned), ".{0,20}"]
    }

    proptest! {
        #[test]
        fn every_object_round_trips_exactly(kv in prop::collection::vec((name(), value()), 0..16)) {
            let item: Map<String, Value> = kv.into_iter().collect();
            let bytes = encode(&item);
            prop_assert_eq!(decode(&bytes).unwrap(), item.clone());
            // Key order is kept, as serde_json keeps it (map equality alone ignores order).
            let back = decode(&bytes).unwrap();
            prop_assert_eq!(back.keys().collect::<Vec<_>>(), item.keys().collect::<Vec<_>>());
        }

        #[test]
        fn a_projected_decode_is_the_whole_decode_cut_down(
            kv in prop::collection::vec((name(), value()), 0..16),
            pick in prop::collection::vec(any::<bool>(), 16),
        ) {
            let item: Map<String, Value> = kv.into_iter().collect();
            let wanted: Vec<&String> = item.keys().zip(&pick).filter(|(_, p)| **p).map(|(k, _)| k).collect();
            let keep = |k: &str| wanted.iter().any(|w| w.as_str() == k);
            let mut expected = item.clone();
            expected.retain(|k, _| keep(k));
            let bytes = encode(&item);
            prop_assert_eq!(decode_some(&bytes, keep).unwrap(), expected.clone());
            // JSON text (items written before the binary form) projects as its whole decode does.
            let text = serde_json::to_vec(&item).unwrap();
            let mut whole = decode(&text).unwrap();
            whole.retain(|k, _| keep(k));
            prop_assert_eq!(decode_some(&text, keep).unwrap(), whole);
        }

        #[test]
        fn garbage_is_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut b = vec![MAGIC];
            b.extend(bytes);
            let _ = decode(&b);
            let _ = decode_some(&b, |k| k.len() % 2 == 0);
            b[0] = MAGIC_LZ4;
            let _ = decode(&b);
            let _ = decode_some(&b, |k| k.len() % 2 == 0);
        }

        /// Compressed garbage: a valid header around a corrupted block.
        #[test]
        fn corrupt_compressed_items_are_errors(flip in 0usize..400, byte in any::<u8>()) {
            let mut item = Map::new();
            for i in 0..20 {
                item.insert(format!("attr{i}"), Value::String(format!("WS#ws_01M957VRG2#ACCT#{i}#EVTS")));
            }
            let mut b = encode(&item);
            prop_assert_eq!(b[0], MAGIC_LZ4);
            let at = flip % b.len();
            if at > 0 {
                b[at] ^= byte | 1;
                // Either an error or some item: never a panic, never a read past the input.
                let _ = decode(&b);
            }
        }
    }

    #[test]
    fn json_text_still_reads() {
        let item = decode(br##"{"PK":"A#1","SK":"#","n":3}"##).unwrap();
        assert_eq!(Value::Object(item), json!({"PK": "A#1", "SK": "#", "n": 3}));
    }

    #[test]
    fn an_event_is_less_than_half_its_json() {
        // Distinct ids as ULIDs are (time prefix, random rest), with the event's index keys.
        let (evt, ws, acct) =
            ("evt_01M957VRG2K4TQ8NXW3ZB6HCFD", "ws_01M93ZQ5RJ7MPA2E9VDKX4TN1B", "acct_01M91F8WQCZ3HJ6RT0NBK2YD5X");
        let (rel, ag, at) =
            ("rel_01M94HZK2Q8XWV5MB7RC3JTN6E", "ag_01M90T7BXQ2KZ9WR4HNJ6C8DVM", "2026-12-06T06:00:00.123Z");
        let sort = format!("{at}#{evt}");
        let item = json!({
            "PK": format!("EVT#{evt}"), "SK": "#", "entity": "event",
            "id": evt, "organizationId": ws, "relationshipId": rel, "accountId": acct,
            "contactId": null, "type": "NOTE_ADDED", "subject": null, "content": "Called Marina about the guest post",
            "metadata": {}, "occurredAt": at, "createdAt": "2026-12-06T06:00:01.456Z", "agencyId": ag, "seq": 12,
            "GSI1PK": format!("WS#{ws}#ACCT#{acct}#EVTS"), "GSI1SK": sort, "GSI2PK": format!("WS#{ws}#EVTS"),
            "GSI2SK": sort, "GSI4PK": format!("ACCT#{acct}#EVTS"), "GSI4SK": format!("{ag}#{sort}"),
        });
        let item = item.as_object().unwrap();
        let (stored, text) = (encode(item), serde_json::to_vec(item).unwrap().len());
        assert_eq!(stored[0], MAGIC_LZ4);
        assert!(stored.len() * 2 <= text, "stored {} bytes, JSON {text}", stored.len());
        assert_eq!(&decode(&stored).unwrap(), item);
    }

    /// Stored items refer to names by position: these may never move.
    #[test]
    fn the_name_table_only_grows() {
        assert_eq!(
            &NAMES[..10],
            &["PK", "SK", "entity", "id", "type", "status", "version", "name", "createdAt", "updatedAt"]
        );
        assert_eq!(NAMES[20], "ttl");
        assert_eq!(NAMES.len(), NAMES.iter().collect::<std::collections::HashSet<_>>().len(), "no name twice");
        assert!(NAMES.len() < 0x7F, "names stay one byte");
    }
}
