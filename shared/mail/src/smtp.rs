//! The SMTP adapter: one connection per send, to the sending mailbox's own server.
//!
//! We drive lettre's connection step by step rather than through `AsyncSmtpTransport::send`,
//! because the transport reports a dropped connection the same way before `DATA` (nothing
//! delivered, safe to retry) and after the message body (perhaps delivered). Sends are at most
//! once, so the caller must be told which it was. No pooling: every mailbox has its own server
//! and credentials, and outreach volume per mailbox is low.

use crate::{Accepted, MailError, Mailer, OutgoingEmail, Security, SmtpSettings};
use async_trait::async_trait;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use std::error::Error as _;
use std::time::Duration;

/// Default limit for each phase: connecting (with EHLO, STARTTLS and AUTH), the envelope, and the
/// message data with the server's verdict. RFC 5321 section 4.5.3.2 allows servers minutes per
/// step, but a worker waiting that long on one mailbox holds up the queue; a failure before the
/// data is retried later anyway.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct SmtpMailer {
    timeout: Duration,
}

impl Default for SmtpMailer {
    fn default() -> Self {
        SmtpMailer { timeout: DEFAULT_TIMEOUT }
    }
}

impl SmtpMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Limit for each phase of a send (see [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(timeout: Duration) -> Self {
        SmtpMailer { timeout }
    }

    async fn connect(&self, mailbox: &SmtpSettings) -> Result<AsyncSmtpConnection, MailError> {
        let hello = ClientId::default();
        let tls = || {
            TlsParameters::new(mailbox.host.clone())
                .map_err(|e| MailError::Invalid(format!("TLS settings for {}: {e}", mailbox.host)))
        };
        let wrapper = match mailbox.security {
            Security::Tls => Some(tls()?),
            Security::None | Security::StartTls => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (mailbox.host.as_str(), mailbox.port),
            Some(self.timeout),
            &hello,
            wrapper,
            None,
        )
        .await
        .map_err(before_data)?;
        if mailbox.security == Security::StartTls {
            // Refuse to go on in plain text: that would send the password and the message in the
            // clear to whoever stripped the STARTTLS offer.
            if !conn.can_starttls() {
                hang_up(&mut conn).await;
                return Err(MailError::Unavailable(format!("{} does not offer STARTTLS", mailbox.host)));
            }
            if let Err(e) = conn.starttls(tls()?, &hello).await {
                hang_up(&mut conn).await;
                return Err(before_data(e));
            }
        }
        if let Some(username) = &mailbox.username {
            let credentials = Credentials::new(username.clone(), mailbox.password.clone().unwrap_or_default());
            if let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials).await {
                hang_up(&mut conn).await;
                return Err(before_data(e));
            }
        }
        Ok(conn)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mailbox: &SmtpSettings, email: &OutgoingEmail) -> Result<Accepted, MailError> {
        // Build before connecting: an invalid email should not cost a connection.
        let message = email.message()?;
        let envelope = message.envelope().clone();
        let bytes = message.formatted();

        // lettre's own timeout covers only the TCP connect in async mode; a server that accepts the
        // connection and then stays silent must not hold the worker, so each phase has a deadline.
        let mut conn = tokio::time::timeout(self.timeout, self.connect(mailbox)).await.map_err(|_| {
            MailError::Unavailable(format!("no answer from {} within {:?}", mailbox.host, self.timeout))
        })??;
        let mut options = vec![];
        let non_ascii = envelope.from().into_iter().chain(envelope.to()).any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                hang_up(&mut conn).await;
                return Err(MailError::Invalid("non-ASCII address but the server lacks SMTPUTF8".into()));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        // Envelope: any failure here means the server has not got the message.
        let envelope_steps = async {
            conn.command(Mail::new(envelope.from().cloned(), options)).await?;
            for to in envelope.to() {
                conn.command(Rcpt::new(to.clone(), vec![])).await?;
            }
            conn.command(Data).await
        };
        match tokio::time::timeout(self.timeout, envelope_steps).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                hang_up(&mut conn).await;
                return Err(before_data(e));
            }
            Err(_) => {
                hang_up(&mut conn).await;
                return Err(MailError::Unavailable(format!("envelope not answered within {:?}", self.timeout)));
            }
        }

        // Content: a reply code is a verdict; anything else leaves the outcome unknown.
        let result = tokio::time::timeout(self.timeout, conn.message(&bytes)).await;
        hang_up(&mut conn).await;
        match result {
            Ok(Ok(response)) => {
                Ok(Accepted { message_id: email.message_id.clone(), server_response: describe(&response) })
            }
            Ok(Err(e)) => Err(verdict(&e).unwrap_or_else(|| MailError::Uncertain(e.to_string()))),
            Err(_) => Err(MailError::Uncertain(format!("no verdict on the message within {:?}", self.timeout))),
        }
    }
}

/// Says QUIT and closes, waiting briefly: the outcome is already decided, and a server that stopped
/// answering would otherwise hold us on the QUIT reply.
async fn hang_up(conn: &mut AsyncSmtpConnection) {
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.abort()).await;
}

/// A failure before the message content was sent: a server verdict or "unavailable".
fn before_data(e: SmtpError) -> MailError {
    verdict(&e).unwrap_or_else(|| MailError::Unavailable(e.to_string()))
}

/// The server's reply code, when the error is one: 5xx rejects, 4xx defers.
fn verdict(e: &SmtpError) -> Option<MailError> {
    let code = e.status()?;
    let code: u16 = code.to_string().parse().ok()?;
    let message = e.source().map(|s| s.to_string()).unwrap_or_default();
    if e.is_permanent() {
        Some(MailError::Rejected { code, message })
    } else if e.is_transient() {
        Some(MailError::Deferred { code, message })
    } else {
        None
    }
}

fn describe(response: &Response) -> String {
    let text = response.message().collect::<Vec<_>>().join(" ");
    format!("{} {text}", response.code())
}
