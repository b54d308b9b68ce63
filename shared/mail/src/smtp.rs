//! The SMTP adapter: one connection per send, to the sending mailbox's own server.
//!
//! We drive lettre's connection step by step rather than through `AsyncSmtpTransport::send`,
//! because the transport reports a dropped connection the same way before `DATA` (nothing
//! delivered, safe to retry) and after the message body (perhaps delivered). Sends are at most
//! once, so the caller must be told which it was. No pooling: every mailbox has its own server
//! and credentials, and outreach volume per mailbox is low.
//!
//! With [`Security::StartTls`] and [`Security::Tls`] the server's certificate is always verified
//! against the system's trusted CAs, plus any given to [`SmtpMailer::with_root_certificates`]
//! (`LINKCRM_SMTP_CA_FILE` through [`SmtpMailer::from_env`]) for private mail servers. There is no
//! switch to turn verification off.
//!
//! The server is reached only at an address the SSRF guard (`linkcrm-netguard`) vetted: a mailbox
//! whose host is or resolves to a private, loopback, link-local or metadata address is refused
//! before any packet leaves, and the connection goes to the vetted address, so a DNS answer that
//! changes in between cannot redirect it. How a connection failed (refused, timed out, a blocked
//! address) is logged for the operator; the error a tenant sees says only that the mail server
//! could not be reached, so it cannot be used to map networks.

use crate::{Accepted, MailError, Mailer, OutgoingEmail, Security, SmtpSettings};
use async_trait::async_trait;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use linkcrm_netguard::{Guard, GuardError};
use std::error::Error as StdError;
use std::path::Path;
use std::time::Duration;

/// A PEM file of extra CA certificates to trust, read by [`SmtpMailer::from_env`].
pub const CA_FILE_VAR: &str = "LINKCRM_SMTP_CA_FILE";

/// What a tenant is told when the mail server could not be reached, however that happened.
pub const UNREACHABLE: &str = "could not connect to the mail server";

/// Default limit for each phase: connecting (with EHLO, STARTTLS and AUTH), the envelope, and the
/// message data with the server's verdict. RFC 5321 section 4.5.3.2 allows servers minutes per
/// step, but a worker waiting that long on one mailbox holds up the queue; a failure before the
/// data is retried later anyway.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends through each mailbox's own SMTP server.
///
/// TLS certificates are verified against the system's CAs and the extra CAs added with
/// [`with_root_certificates`](Self::with_root_certificates), e.g. a company CA that signed a
/// private mail server's certificate. The certificate must also be valid for the mailbox's host
/// as configured (a name, or an IP address listed in the certificate).
#[derive(Clone, Debug)]
pub struct SmtpMailer {
    timeout: Duration,
    /// Trusted in addition to the system's CAs.
    extra_roots: Vec<Certificate>,
    /// Which addresses a mail server may be at.
    guard: Guard,
}

impl Default for SmtpMailer {
    fn default() -> Self {
        SmtpMailer { timeout: DEFAULT_TIMEOUT, extra_roots: vec![], guard: Guard::strict() }
    }
}

impl SmtpMailer {
    /// Trusts the system's CAs only and reaches public addresses only; does not read the
    /// environment (see [`from_env`](Self::from_env)).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the mailer reach the addresses `guard` allows (`Guard::allowing_private()` for a mail
    /// server on this machine or network).
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// As [`new`](Self::new), also trusting the CA certificates in the PEM file named by
    /// `LINKCRM_SMTP_CA_FILE` when it is set and not empty. A file that cannot be read or holds no
    /// certificate is an error, so a misconfiguration shows at startup rather than as failed sends.
    /// The guard follows `LINKCRM_ALLOW_PRIVATE_TARGETS` (`Guard::from_env`).
    pub fn from_env() -> Result<Self, MailError> {
        let mailer = Self::new().with_guard(Guard::from_env());
        match std::env::var_os(CA_FILE_VAR).filter(|v| !v.is_empty()) {
            Some(path) => mailer.with_root_certificates_file(Path::new(&path)),
            None => Ok(mailer),
        }
    }

    /// Limit for each phase of a send (see [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(timeout: Duration) -> Self {
        SmtpMailer { timeout, ..Self::default() }
    }

    /// Also trusts the CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks) when
    /// verifying servers, for mail servers whose certificate a private CA signed. The system's CAs
    /// stay trusted.
    pub fn with_root_certificates(self, pem: &[u8]) -> Result<Self, MailError> {
        self.add_roots(pem, "")
    }

    /// [`with_root_certificates`](Self::with_root_certificates) with the contents of a file.
    pub fn with_root_certificates_file(self, path: &Path) -> Result<Self, MailError> {
        let origin = format!(" in {}", path.display());
        let pem = std::fs::read(path)
            .map_err(|e| MailError::Invalid(format!("extra CA certificates{origin}: cannot read: {e}")))?;
        self.add_roots(&pem, &origin)
    }

    fn add_roots(mut self, pem: &[u8], origin: &str) -> Result<Self, MailError> {
        let invalid = |why: &str| MailError::Invalid(format!("extra CA certificates{origin}: {why}"));
        // lettre's parser accepts text without any certificate in it, which would trust nothing.
        if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid("no PEM certificate (-----BEGIN CERTIFICATE-----) found"));
        }
        let certificate = Certificate::from_pem(pem).map_err(|e| invalid(&e.to_string()))?;
        self.extra_roots.push(certificate);
        Ok(self)
    }

    fn tls_parameters(&self, host: &str) -> Result<TlsParameters, MailError> {
        let mut builder = TlsParameters::builder(host.to_owned());
        for certificate in &self.extra_roots {
            builder = builder.add_root_certificate(certificate.clone());
        }
        builder.build().map_err(|e| MailError::Invalid(format!("TLS settings for {host}: {e}")))
    }

    async fn connect(&self, mailbox: &SmtpSettings) -> Result<AsyncSmtpConnection, MailError> {
        let hello = ClientId::default();
        let tls = || self.tls_parameters(&mailbox.host);
        let wrapper = match mailbox.security {
            Security::Tls => Some(tls()?),
            Security::None | Security::StartTls => None,
        };
        let guard = if mailbox.operator_configured { Guard::allowing_private() } else { self.guard };
        let addresses = guard.resolve(&mailbox.host, mailbox.port).await.map_err(refused)?;
        let mut conn =
            AsyncSmtpConnection::connect_tokio1(addresses.as_slice(), Some(self.timeout), &hello, wrapper, None)
                .await
                .map_err(|e| connect_error(&mailbox.host, e))?;
        if mailbox.security == Security::StartTls {
            // Refuse to go on in plain text: that would send the password and the message in the
            // clear to whoever stripped the STARTTLS offer.
            if !conn.can_starttls() {
                hang_up(&mut conn).await;
                return Err(MailError::Unavailable(format!("{} does not offer STARTTLS", mailbox.host)));
            }
            let parameters = match tls() {
                Ok(p) => p,
                Err(e) => {
                    hang_up(&mut conn).await;
                    return Err(e);
                }
            };
            if let Err(e) = conn.starttls(parameters, &hello).await {
                // After a failed handshake lettre has no stream left to say QUIT on (it would
                // panic); dropping the connection closes it.
                if e.status().is_some() {
                    hang_up(&mut conn).await;
                }
                return Err(connect_error(&mailbox.host, e));
            }
        }
        if let Some(username) = &mailbox.username {
            let credentials = Credentials::new(username.clone(), mailbox.password.clone().unwrap_or_default());
            let mechanisms: &[Mechanism] =
                if mailbox.xoauth2 { &[Mechanism::Xoauth2] } else { &[Mechanism::Plain, Mechanism::Login] };
            if let Err(e) = conn.auth(mechanisms, &credentials).await {
                hang_up(&mut conn).await;
                return Err(before_data(e));
            }
        }
        Ok(conn)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn verify(&self, mailbox: &SmtpSettings) -> Result<(), MailError> {
        let mut conn = tokio::time::timeout(self.timeout, self.connect(mailbox))
            .await
            .map_err(|_| MailError::Unavailable(UNREACHABLE.into()))??;
        hang_up(&mut conn).await;
        Ok(())
    }

    async fn send(&self, mailbox: &SmtpSettings, email: &OutgoingEmail) -> Result<Accepted, MailError> {
        // Build before connecting: an invalid email should not cost a connection.
        let message = email.message()?;
        let envelope = message.envelope().clone();
        let bytes = message.formatted();

        // lettre's own timeout covers only the TCP connect in async mode; a server that accepts the
        // connection and then stays silent must not hold the worker, so each phase has a deadline.
        let mut conn = tokio::time::timeout(self.timeout, self.connect(mailbox)).await.map_err(|_| {
            tracing::warn!(host = %mailbox.host, port = mailbox.port, timeout = ?self.timeout, "mail server did not answer");
            MailError::Unavailable(UNREACHABLE.into())
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

/// A failure connecting, or negotiating TLS, or later before the message content was sent.
///
/// A TLS handshake that fails (above all a certificate that is not trusted, expired or not valid
/// for the host) is [`MailError::Invalid`], not retryable: nothing was sent, and trying again
/// would fail the same way until the mailbox's settings, the server's certificate or the trusted
/// CAs change, which needs a person; retries would only delay the report.
fn connect_error(host: &str, e: SmtpError) -> MailError {
    match tls_failure(&e) {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => MailError::Invalid(format!(
            "the TLS certificate of {host} is not accepted ({tls}), so nothing was sent: it must be \
             valid for {host} and signed by a trusted CA (a private CA can be added with {CA_FILE_VAR})"
        )),
        Some(other) => MailError::Invalid(format!("TLS with {host} failed ({other}), so nothing was sent")),
        None => before_data(e),
    }
}

/// The rustls error behind a failed TLS handshake. lettre reports it as a connection error whose
/// source is the `io::Error` tokio-rustls wraps it in (and `io::Error::source` skips the wrapped
/// error, hence `get_ref`).
fn tls_failure(e: &SmtpError) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return Some(tls);
            }
        }
        next = err.source();
    }
    None
}

/// A failure before the message content was sent: a server verdict, or a connection that failed
/// (told to the tenant without its detail).
fn before_data(e: SmtpError) -> MailError {
    verdict(&e).unwrap_or_else(|| {
        tracing::warn!(error = %e, "mail server connection failed");
        MailError::Unavailable(UNREACHABLE.into())
    })
}

/// A host the guard refused: not retried when the address itself is not allowed (that needs a
/// person to change the mailbox), retried later when the name did not resolve.
fn refused(e: GuardError) -> MailError {
    tracing::warn!(error = %e, "mail server refused by the network guard");
    match e {
        GuardError::Invalid { .. } | GuardError::Blocked { .. } => {
            MailError::Invalid(format!("{UNREACHABLE}: {}", e.tenant_message()))
        }
        GuardError::Unresolvable { .. } | GuardError::Connect { .. } => MailError::Unavailable(UNREACHABLE.into()),
    }
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
