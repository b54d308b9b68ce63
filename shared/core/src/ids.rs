//! Ids at the edge: one parser for every id a request carries, in the path, the query or the body.
//!
//! An input field typed `Id<Contact>` deserialises only from a well-formed contact id (`ct_` and 26
//! Crockford base32 characters, as issued), so a NUL, a CR/LF, a right-to-left mark, an over-long
//! or non-ASCII value or another kind's prefix is a 400 naming the field before any operation sees
//! it, and never reaches a storage key. Its JSON Schema carries the same rule as a `pattern`, so
//! the OpenAPI document says exactly what the server accepts.

use linkcrm_domain::IdKind;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{Deserializer, Error};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A kind of id: its prefix (through `IdKind`), how errors name it, and ids that are not minted
/// but stand for something fixed (`mbx_platform`).
pub trait IdSpec: Send + Sync + 'static {
    const KIND: IdKind;
    const WHAT: &'static str;
    const NAME: &'static str;
    const FIXED: &'static [&'static str] = &[];
    /// Other kinds whose ids are accepted too (a campaign id of any type).
    const ALSO: &'static [IdKind] = &[];
}

macro_rules! id_kinds {
    ($($name:ident => $kind:ident, $what:literal, $schema:literal $(, fixed = [$($fixed:literal),*])?;)+) => {
        $(
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl IdSpec for $name {
                const KIND: IdKind = IdKind::$kind;
                const WHAT: &'static str = $what;
                const NAME: &'static str = $schema;
                $(const FIXED: &'static [&'static str] = &[$($fixed),*];)?
            }
        )+
    };
}

id_kinds! {
    Account => Account, "an account", "AccountId";
    Contact => Contact, "a contact", "ContactId";
    Relationship => Relationship, "a relationship", "RelationshipId";
    Event => Event, "an event", "EventId";
    Workspace => Workspace, "a workspace", "WorkspaceId";
    ApiKey => ApiKey, "an API key", "ApiKeyId";
    Invocation => Invocation, "an invocation", "InvocationId";
    Approval => Approval, "an approval", "ApprovalId";
    Mailbox => Mailbox, "a mailbox", "MailboxId";
    SendingMailbox => Mailbox, "a mailbox", "SendingMailboxId", fixed = ["mbx_platform"];
    Message => Message, "an inbound message", "MessageId";
    Template => Template, "a template", "TemplateId";
    EvalGate => EvalGate, "an eval gate", "EvalGateId";
    Webhook => Webhook, "a webhook", "WebhookId";
    WebhookMessage => WebhookMessage, "a webhook message", "WebhookMessageId";
    BulkSchedule => BulkSchedule, "a scheduled bulk action", "BulkScheduleId";
    Stage => Stage, "a pipeline stage", "StageId";
    Opportunity => Opportunity, "an opportunity", "OpportunityId";
    Task => Task, "a task", "TaskId";
    Company => Company, "a company", "CompanyId";
    Member => Member, "a member", "MemberId";
    Membership => Membership, "a company membership", "MembershipId";
    MarketingList => MarketingList, "a marketing list", "MarketingListId";
    Link => Link, "a monitored link", "LinkId";
}

/// A campaign id of any type (`scmp_`, `ccmp_`, `icmp_`, `cmp_`).
#[derive(Debug, Clone, Copy)]
pub struct Campaign;
impl IdSpec for Campaign {
    const KIND: IdKind = IdKind::Campaign;
    const WHAT: &'static str = "a campaign";
    const NAME: &'static str = "CampaignId";
    const ALSO: &'static [IdKind] = &[IdKind::SerpCampaign, IdKind::CompetitorCampaign, IdKind::InboundCampaign];
}

/// Crockford base32 as ids write it (upper case; no I, L, O, U).
const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CLASS: &str = "[0-9A-HJKMNP-TV-Z]";
/// Longer than any id; a longer value is refused without being looked at further.
const MAX_LEN: usize = 64;

/// Why a value is not an id of the kind asked for, in words fit for a 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(String);

impl std::ops::Deref for IdError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A well-formed id of kind `K`.
pub struct Id<K>(String, PhantomData<K>);

impl<K: IdSpec> Id<K> {
    /// Checks `raw` as an id of kind `K`; the error says why in words fit for a 400.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        check::<K>(raw).map(|()| Id(raw.to_owned(), PhantomData))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The JSON Schema `pattern` of this kind.
    pub fn pattern() -> String {
        let prefixes: Vec<&str> = std::iter::once(K::KIND).chain(K::ALSO.iter().copied()).map(IdKind::prefix).collect();
        let prefix = if prefixes.len() == 1 { prefixes[0].to_owned() } else { format!("({})", prefixes.join("|")) };
        let minted = format!("{prefix}[0-7]{CLASS}{{25}}");
        if K::FIXED.is_empty() {
            format!("^{minted}$")
        } else {
            format!("^({minted}|{})$", K::FIXED.join("|"))
        }
    }
}

/// Whether `raw` is an id of `kind` exactly as issued (the prefix, then 26 upper-case Crockford
/// base32 characters). The one rule every id position applies.
pub fn well_formed(kind: IdKind, raw: &str) -> bool {
    raw.strip_prefix(kind.prefix()).is_some_and(|body| {
        body.len() == 26 && body.chars().all(|c| ALPHABET.contains(c)) && body.as_bytes()[0] <= b'7'
    })
}

fn check<K: IdSpec>(raw: &str) -> Result<(), IdError> {
    if raw.chars().any(|c| c.is_control() || is_format_char(c)) {
        return Err(IdError(format!("must be {} id; it contains control or formatting characters", K::WHAT)));
    }
    if !raw.is_ascii() {
        return Err(IdError(format!("must be {} id; ids are ASCII", K::WHAT)));
    }
    if raw.len() > MAX_LEN {
        return Err(IdError(format!("must be {} id; this is {} characters long", K::WHAT, raw.len())));
    }
    if K::FIXED.contains(&raw) {
        return Ok(());
    }
    let prefix = K::KIND.prefix();
    if well_formed(K::KIND, raw) || K::ALSO.iter().any(|k| well_formed(*k, raw)) {
        Ok(())
    } else {
        Err(IdError(format!("'{raw}' is not {} id ({prefix} followed by 26 characters)", K::WHAT)))
    }
}

/// Invisible characters that change how text reads (bidirectional marks and overrides, zero-width
/// joiners, the byte-order mark): refused in ids, which are shown back in errors and logs.
pub fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

impl<K> std::ops::Deref for Id<K> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<K> AsRef<str> for Id<K> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        Id(self.0.clone(), PhantomData)
    }
}

impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K> PartialEq<str> for Id<K> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<K> PartialEq<String> for Id<K> {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl<K> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<K> From<Id<K>> for String {
    fn from(id: Id<K>) -> String {
        id.0
    }
}

impl<'de, K: IdSpec> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        check::<K>(&raw).map_err(D::Error::custom)?;
        Ok(Id(raw, PhantomData))
    }
}

impl<K: IdSpec> serde::Serialize for Id<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<K: IdSpec> JsonSchema for Id<K> {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed(K::NAME)
    }

    // Inlined, so a path or query parameter carries its pattern without following a reference.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": Self::pattern(),
            "description": format!("{} id ({}…)", capitalised(K::WHAT), K::KIND.prefix()),
        })
    }
}

fn capitalised(what: &str) -> String {
    // "an account" → "An account"
    let mut c = what.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_of_the_kind_pass() {
        let good = linkcrm_domain::new_id(IdKind::Contact);
        assert!(Id::<Contact>::parse(&good).is_ok());
        let bad = [
            "ct_a\0b".to_owned(),
            format!("{good}\r\nX: y"),
            format!("\u{202E}{good}"),
            good.to_ascii_lowercase(),
            good.replacen("ct_", "acct_", 1),
            format!("{good}0"),
            "ct_".to_owned() + &"Z".repeat(26),
            "ct_é".to_owned(),
            "x".repeat(10_000),
            String::new(),
        ];
        for b in &bad {
            let err = Id::<Contact>::parse(b).err().unwrap_or_else(|| panic!("{b:?} must be refused"));
            assert!(!err.contains('\0') && !err.contains('\u{202E}') && err.len() < 200, "{err:?}");
        }
        assert!(Id::<SendingMailbox>::parse("mbx_platform").is_ok());
        assert!(Id::<Mailbox>::parse("mbx_platform").is_err(), "the platform's is not a workspace's to manage");
        assert!(Id::<Contact>::parse("mbx_platform").is_err());
    }

    #[test]
    fn the_pattern_says_what_the_parser_accepts() {
        assert_eq!(Id::<Contact>::pattern(), "^ct_[0-7][0-9A-HJKMNP-TV-Z]{25}$");
        assert_eq!(Id::<SendingMailbox>::pattern(), "^(mbx_[0-7][0-9A-HJKMNP-TV-Z]{25}|mbx_platform)$");
    }
}
