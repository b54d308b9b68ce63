//! Received mail, parsed into what the CRM acts on: who wrote, which of our messages it answers,
//! what it says, whether a machine wrote it, and whether it reports a failed delivery.

use crate::{dsn, quotes};
use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, Message, MessageParser, PartType};

/// Larger messages are refused unread. Replies to outreach are a few kilobytes; anything near the
/// limit is an attachment we do not keep, and refusing it bounds the work one message can cause.
pub const MAX_SIZE: usize = 400 * 1024;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("message is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not an email: {0}")]
    Malformed(String),
}

/// A sender or recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub address: String,
    pub name: Option<String>,
}

/// A parsed inbound message. Message ids are without angle brackets, as in [`crate::OutgoingEmail`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundEmail {
    pub message_id: Option<String>,
    /// The first id of `In-Reply-To`: the message this one answers.
    pub in_reply_to: Option<String>,
    /// The thread, oldest first.
    pub references: Vec<String>,
    pub from: Option<Participant>,
    pub to: Vec<Participant>,
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    /// The plain-text body, or the text of the HTML body when there is no plain one.
    pub text: String,
    /// What the sender wrote in this message: `text` without quoted history and signature.
    pub reply_text: String,
    /// `Auto-Submitted` (RFC 3834) when present and not `no`, e.g. `auto-replied`.
    pub auto_submitted: Option<String>,
    /// Non-standard auto-reply markers some servers use instead: `X-Autoreply`, `X-Autorespond`,
    /// `Precedence: auto_reply`.
    pub x_autoreply: bool,
    /// `Precedence: bulk|list|junk`: mass mail, never a personal answer.
    pub precedence: Option<String>,
    /// `List-Id` (RFC 2919): sent through a mailing list.
    pub list_id: Option<String>,
    /// Present when the message is a delivery status notification reporting a failure or delay.
    pub bounce: Option<Bounce>,
}

impl InboundEmail {
    /// Sent by a machine, not a person: `Auto-Submitted`, an auto-reply marker, `List-Id` or
    /// `Precedence: bulk|list|junk`. Such a message is recorded, but never taken as a request.
    pub fn is_automated(&self) -> bool {
        self.auto_submitted.is_some()
            || self.x_autoreply
            || self.list_id.is_some()
            || matches!(self.precedence.as_deref(), Some("bulk" | "list" | "junk"))
    }
}

/// What a delivery status notification (RFC 3464) reports about the first recipient it lists as
/// failed or delayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounce {
    /// `Final-Recipient` (else `Original-Recipient`), the address part only.
    pub recipient: Option<String>,
    /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: String,
    pub kind: BounceKind,
    /// `Action` as reported: `failed` or `delayed`.
    pub action: String,
    /// `Diagnostic-Code`, e.g. `smtp; 550 5.1.1 user unknown`.
    pub diagnostic: Option<String>,
    /// The `Message-ID` of the message that bounced, from the returned copy or its headers: ties
    /// the bounce to our send even when the report has no `In-Reply-To`.
    pub original_message_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceKind {
    /// 5.x.x: the address does not work; suppress it.
    Hard,
    /// 4.x.x (or `Action: delayed`): may still be delivered, or work later.
    Soft,
}

pub fn parse(raw: &[u8]) -> Result<InboundEmail, ParseError> {
    if raw.len() > MAX_SIZE {
        return Err(ParseError::TooLarge { size: raw.len(), limit: MAX_SIZE });
    }
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| ParseError::Malformed("no header section".into()))?;
    if message.from().is_none() && message.message_id().is_none() && message.date().is_none() {
        // Any text "parses"; real mail has at least one of these.
        return Err(ParseError::Malformed("no From, Message-ID or Date header".into()));
    }

    let auto_submitted = header_text(&message, "Auto-Submitted").filter(|v| !v.eq_ignore_ascii_case("no"));
    let precedence = header_text(&message, "Precedence").map(|v| v.to_ascii_lowercase());
    let x_autoreply = ["X-Autoreply", "X-Autorespond", "X-Autoresponder"]
        .iter()
        .any(|name| header_text(&message, name).is_some_and(|v| !v.eq_ignore_ascii_case("no")))
        || precedence.as_deref() == Some("auto_reply");
    let from = message.from().and_then(|a| a.first()).and_then(participant);
    let to = message.to().map(|a| a.iter().filter_map(participant).collect()).unwrap_or_default();

    Ok(InboundEmail {
        message_id: message.message_id().map(normalise_id).filter(|id| !id.is_empty()),
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: ids(message.references()),
        from,
        to,
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        date: message.date().and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        text: message.body_text(0).map(|t| t.trim().to_owned()).unwrap_or_default(),
        reply_text: reply_text(&message),
        auto_submitted,
        x_autoreply,
        precedence: precedence.filter(|p| p != "auto_reply"),
        list_id: header_text(&message, "List-Id").map(|v| v.chars().take(300).collect()),
        bounce: dsn::bounce(&message),
    })
}

/// The first text body, HTML cut at its quoted history before it is flattened to text.
fn reply_text(message: &Message<'_>) -> String {
    let part = message.text_body.first().and_then(|&i| message.parts.get(i as usize));
    let text = match part.map(|p| &p.body) {
        Some(PartType::Text(text)) => quotes::fresh_text(text),
        Some(PartType::Html(html)) => quotes::fresh_html(html),
        _ => String::new(),
    };
    text.trim().to_owned()
}

/// A message id without brackets or surrounding space.
pub(crate) fn normalise_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.as_ref()).collect(),
        _ => vec![],
    };
    list.into_iter().map(normalise_id).filter(|id| !id.is_empty()).collect()
}

fn participant(addr: &mail_parser::Addr<'_>) -> Option<Participant> {
    let address = addr.address()?.trim();
    if address.is_empty() {
        return None;
    }
    let name = addr.name().map(str::trim).filter(|n| !n.is_empty() && *n != address).map(str::to_owned);
    Some(Participant { address: address.to_owned(), name })
}

/// The unfolded, trimmed value of the first header called `name` (any case) in the message's own
/// header section. Read from the raw bytes, so it works for headers mail-parser does not know.
pub(crate) fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    let header = message.headers().iter().find(|h| h.name().eq_ignore_ascii_case(name))?;
    let raw = message.raw_message().get(header.offset_start() as usize..header.offset_end() as usize)?;
    let text = String::from_utf8_lossy(raw);
    let unfolded = text.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    Some(unfolded).filter(|v| !v.is_empty())
}
