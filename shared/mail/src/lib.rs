//! Email out (the [`Mailer`] port and its adapters) and in (parsing and classifying received mail).
//!
//! - [`outgoing`]: the message we send, rendered to RFC 5322 with threading and RFC 8058 headers.
//! - [`SmtpMailer`]: sends through the mailbox's own SMTP server; [`FileMailer`]: writes `.eml`
//!   files for local development.
//! - [`inbound`]: parses a received message (replies, auto-replies, delivery status notifications).
//! - [`classify`]: named, explainable rules that turn a parsed message into a reply class or an
//!   inbound request intent.

pub mod classify;
mod dsn;
mod file;
pub mod imap;
pub mod inbound;
pub mod ooo;
pub mod outgoing;
mod quotes;
mod smtp;

pub use classify::{classify_reply, classify_request};
pub use file::FileMailer;
pub use imap::{FolderSession, ImapAuth, ImapError, ImapReader, ImapSecurity, ImapSettings, MailboxReader};
pub use inbound::{parse, Bounce, BounceKind, InboundEmail, ParseError};
pub use outgoing::{new_message_id, OutgoingEmail};
pub use smtp::{SmtpMailer, CA_FILE_VAR, UNREACHABLE};

use async_trait::async_trait;
use std::fmt;

/// Sends one email through one mailbox.
///
/// Sending is at most once (CONTRACT.md, Sending): an implementation never retries on its own; the
/// error says whether a later attempt is safe and useful.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mailbox: &SmtpSettings, email: &OutgoingEmail) -> Result<Accepted, MailError>;

    /// Whether a send through `mailbox` could start now: the session a send opens (connection,
    /// TLS, login), then QUIT, sending nothing.
    async fn verify(&self, mailbox: &SmtpSettings) -> Result<(), MailError>;
}

/// How to reach a sending mailbox's SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    /// Never printed: `Debug` shows only whether one is set.
    pub password: Option<String>,
    pub security: Security,
    /// The server's own configuration names this host (the platform mailbox), not a tenant: it
    /// may be a relay on a private network, so the SSRF guard does not refuse private addresses
    /// for it. Tenants' mailboxes are always `false`.
    pub operator_configured: bool,
    /// `password` is an OAuth 2.0 access token: authenticate with SASL XOAUTH2 (Gmail, Microsoft
    /// 365) instead of PLAIN/LOGIN.
    pub xoauth2: bool,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("security", &self.security)
            .field("operator_configured", &self.operator_configured)
            .field("xoauth2", &self.xoauth2)
            .finish()
    }
}

/// Transport security towards the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain text. Only for loopback test servers and local relays.
    None,
    /// Connect in plain text, then upgrade with STARTTLS; refuses to continue without it (port 587).
    /// The certificate is verified as with [`Security::Tls`].
    StartTls,
    /// TLS from the first byte (implicit TLS, port 465). The server's certificate must be valid for
    /// the host as configured and chain to a trusted CA (see [`SmtpMailer`]).
    Tls,
}

/// The server took responsibility for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The `Message-ID` sent, without angle brackets; replies refer to it.
    pub message_id: String,
    /// The server's final reply, e.g. `250 2.0.0 Ok: queued as 4F2A`.
    pub server_response: String,
}

/// Why a send did not end in [`Accepted`]. Each variant tells the caller what it may do next.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MailError {
    /// The server refused for good (5xx): never retry the same message to the same recipient.
    #[error("rejected by the server ({code}): {message}")]
    Rejected { code: u16, message: String },
    /// The server refused for now (4xx): retrying later is expected to work.
    #[error("deferred by the server ({code}): {message}")]
    Deferred { code: u16, message: String },
    /// The server could not be reached or stopped answering before the message was handed over;
    /// nothing was delivered, so retrying is safe.
    #[error("mail server unavailable: {0}")]
    Unavailable(String),
    /// The connection failed after the message data was sent and before the server's verdict: the
    /// message may or may not have been accepted. Retrying could deliver it twice, so the caller
    /// records the send as uncertain instead (CONTRACT.md: SEND_UNCERTAIN).
    #[error("outcome unknown after the message was sent: {0}")]
    Uncertain(String),
    /// The email or the settings cannot be sent as they are (bad address, header, URL; a server
    /// certificate that is not trusted or not valid for the host): nothing was sent, and retrying
    /// would fail the same way until someone changes the email, the settings or the server.
    #[error("invalid email or mailbox settings: {0}")]
    Invalid(String),
}

impl MailError {
    /// Whether sending the same message again later may succeed without risking a duplicate.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MailError::Deferred { .. } | MailError::Unavailable(_))
    }
}
