//! The IMAP adapter: reads new messages from a mailbox's folder for the poller
//! (`linkcrm_outreach::polling`).
//!
//! One connection per poll. The server is reached only at an address the SSRF guard vetted (as for
//! SMTP), over TLS from the first byte (`tls`, port 993) or upgraded with STARTTLS (`starttls`,
//! port 143); a server that does not offer STARTTLS is refused rather than read in the clear.
//! Certificates are verified against the system's CAs plus any extra ones
//! (`LINKCRM_IMAP_CA_FILE`), with no switch to turn verification off. Login is a password
//! (`LOGIN`) or SASL `XOAUTH2` with an OAuth access token (Gmail, Microsoft 365).
//!
//! Messages are read with `BODY.PEEK[]`, so polling never marks anything `\Seen`, and at most
//! [`MAX_FETCH_BYTES`] of each (the inbound parser's limit; the text part of a reply comes first).

use async_imap::types::Fetch;
use futures::TryStreamExt;
use linkcrm_netguard::{Guard, GuardError};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

/// A PEM file of extra CA certificates to trust for IMAP servers.
pub const IMAP_CA_FILE_VAR: &str = "LINKCRM_IMAP_CA_FILE";

/// How much of one message is read: the inbound parser takes at most this.
pub const MAX_FETCH_BYTES: usize = crate::inbound::MAX_SIZE;

/// Connecting, TLS and login, and then each command, must finish within this.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    Tls,
    /// A plain connection upgraded with STARTTLS (port 143); refused if the server cannot.
    StartTls,
}

/// How to log in.
#[derive(Clone, PartialEq, Eq)]
pub enum ImapAuth {
    Password {
        username: String,
        password: String,
    },
    /// SASL XOAUTH2 with an OAuth 2.0 access token.
    XOAuth2 {
        username: String,
        access_token: String,
    },
}

impl fmt::Debug for ImapAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImapAuth::Password { username, .. } => write!(f, "Password({username:?}, <redacted>)"),
            ImapAuth::XOAuth2 { username, .. } => write!(f, "XOAuth2({username:?}, <redacted>)"),
        }
    }
}

/// Where a mailbox's messages are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub auth: ImapAuth,
    /// `INBOX` unless the mailbox names another folder.
    pub folder: String,
    /// The server's own configuration names this host (the platform mailbox): it may be on a
    /// private network. Tenants' mailboxes are always `false`.
    pub operator_configured: bool,
}

/// What went wrong, in words a tenant may see (no addresses, no server banners).
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The host is refused by the SSRF guard.
    #[error("{0}")]
    Refused(String),
    /// No connection, a timeout, or a dropped connection: worth trying again later.
    #[error("{0}")]
    Unreachable(String),
    /// TLS failed (an untrusted certificate, no STARTTLS).
    #[error("{0}")]
    Tls(String),
    /// The server refused the credentials.
    #[error("{0}")]
    Auth(String),
    /// The folder does not exist or the server does not give UIDs.
    #[error("{0}")]
    Folder(String),
    /// The server answered something else than IMAP expects.
    #[error("{0}")]
    Protocol(String),
    /// Settings this adapter cannot use (a bad CA file).
    #[error("{0}")]
    Invalid(String),
}

impl ImapError {
    /// A short machine-readable kind, shown on the mailbox with the message.
    pub fn code(&self) -> &'static str {
        match self {
            ImapError::Refused(_) => "imap_host_refused",
            ImapError::Unreachable(_) => "imap_unreachable",
            ImapError::Tls(_) => "imap_tls_failed",
            ImapError::Auth(_) => "imap_login_failed",
            ImapError::Folder(_) => "imap_folder_unavailable",
            ImapError::Protocol(_) => "imap_protocol_error",
            ImapError::Invalid(_) => "imap_invalid_settings",
        }
    }
}

/// The selected folder's identity and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderState {
    /// UIDs are only comparable under the same `UIDVALIDITY`.
    pub uid_validity: u32,
    /// The UID the next message will get (when the server says).
    pub uid_next: Option<u32>,
    pub exists: u32,
}

/// One message as read from the server.
#[derive(Clone, Debug)]
pub struct FetchedMessage {
    pub uid: u32,
    /// The message, or its first [`MAX_FETCH_BYTES`].
    pub raw: Vec<u8>,
    /// The whole message's size, when the server said.
    pub size: Option<u32>,
    /// When the server received it (`INTERNALDATE`).
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Opens folders for reading (the port the poller uses; tests may drive a real server only).
#[async_trait::async_trait]
pub trait MailboxReader: Send + Sync {
    async fn open(&self, settings: &ImapSettings) -> Result<Box<dyn FolderSession>, ImapError>;
}

/// A logged-in connection with the folder selected.
#[async_trait::async_trait]
pub trait FolderSession: Send {
    fn state(&self) -> FolderState;
    /// UIDs above `after`, in ascending order, at most `limit`.
    async fn uids_after(&mut self, after: u32, limit: usize) -> Result<Vec<u32>, ImapError>;
    /// UIDs of messages received on or after `since` (IMAP's `SINCE`, by date), ascending.
    async fn uids_since(&mut self, since: chrono::NaiveDate) -> Result<Vec<u32>, ImapError>;
    /// These messages (missing ones, expunged meanwhile, are left out), ascending by UID.
    async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError>;
    /// Logs out (best effort).
    async fn close(self: Box<Self>);
}

/// Reads through each mailbox's own IMAP server.
#[derive(Clone, Debug)]
pub struct ImapReader {
    timeout: Duration,
    extra_roots: Vec<CertificateDer<'static>>,
    guard: Guard,
}

impl Default for ImapReader {
    fn default() -> Self {
        ImapReader { timeout: DEFAULT_TIMEOUT, extra_roots: vec![], guard: Guard::strict() }
    }
}

impl ImapReader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The guard from `LINKCRM_ALLOW_PRIVATE_TARGETS`, extra CAs from `LINKCRM_IMAP_CA_FILE`.
    pub fn from_env() -> Result<Self, ImapError> {
        let reader = Self::new().with_guard(Guard::from_env());
        match std::env::var_os(IMAP_CA_FILE_VAR).filter(|v| !v.is_empty()) {
            Some(path) => reader.with_root_certificates_file(Path::new(&path)),
            None => Ok(reader),
        }
    }

    pub fn with_root_certificates_file(mut self, path: &Path) -> Result<Self, ImapError> {
        let invalid = |why: String| ImapError::Invalid(format!("extra CA certificates in {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("no PEM certificate (-----BEGIN CERTIFICATE-----) found".into()));
        }
        self.extra_roots.extend(certs);
        Ok(self)
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ImapError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for cert in &self.extra_roots {
            roots.add(cert.clone()).map_err(|e| ImapError::Invalid(format!("extra CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ImapError::Invalid(format!("TLS settings: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    async fn tls(&self, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ImapError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ImapError::Invalid(format!("{host} is not a name TLS can verify")))?;
        let connector = tokio_rustls::TlsConnector::from(self.tls_config()?);
        match tokio::time::timeout(self.timeout, connector.connect(name, tcp)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(tls_error(host, e)),
            Err(_) => Err(ImapError::Unreachable(format!("TLS with {host} did not finish in time"))),
        }
    }

    async fn connect(&self, s: &ImapSettings) -> Result<Session, ImapError> {
        let guard = if s.operator_configured { Guard::allowing_private() } else { self.guard };
        let (tcp, _addr) = guard.connect_tcp(&s.host, s.port, self.timeout).await.map_err(|e| match e {
            GuardError::Connect { .. } | GuardError::Unresolvable { .. } => {
                tracing::info!(error = %e, "IMAP server not reachable");
                ImapError::Unreachable(format!("could not connect to the IMAP server {}:{}", s.host, s.port))
            }
            other => {
                tracing::info!(error = %other, "IMAP host refused by the network guard");
                ImapError::Refused(other.tenant_message().to_owned())
            }
        })?;
        let t = self.timeout;
        let stream = match s.security {
            ImapSecurity::Tls => {
                let tls = self.tls(&s.host, tcp).await?;
                let mut client = async_imap::Client::new(tls);
                greeting(&mut client, t).await?;
                client
            }
            ImapSecurity::StartTls => {
                let mut client = async_imap::Client::new(tcp);
                greeting(&mut client, t).await?;
                let started = timed(t, client.run_command_and_check_ok("STARTTLS", None)).await?;
                if let Err(e) = started {
                    return Err(ImapError::Tls(format!(
                        "the IMAP server {} did not accept STARTTLS ({e}); nothing was read in the clear",
                        s.host
                    )));
                }
                let tcp = client.into_inner();
                async_imap::Client::new(self.tls(&s.host, tcp).await?)
            }
        };
        let login = match &s.auth {
            ImapAuth::Password { username, password } => timed(t, stream.login(username, password)).await?,
            ImapAuth::XOAuth2 { username, access_token } => {
                let auth = XOAuth2 { first: Some(format!("user={username}\x01auth=Bearer {access_token}\x01\x01")) };
                timed(t, stream.authenticate("XOAUTH2", auth)).await?
            }
        };
        let session = login.map_err(|(e, _)| {
            tracing::info!(error = %e, host = %s.host, "IMAP login refused");
            ImapError::Auth(format!("the IMAP server {} refused the login ({})", s.host, short(&e)))
        })?;
        Ok(session)
    }
}

type Session = async_imap::Session<TlsStream<TcpStream>>;

struct XOAuth2 {
    first: Option<String>,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    /// The first (empty) challenge gets the token; an error challenge (JSON) gets an empty answer,
    /// after which the server fails the command.
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.first.take().unwrap_or_default()
    }
}

async fn timed<F: std::future::Future>(t: Duration, f: F) -> Result<F::Output, ImapError> {
    tokio::time::timeout(t, f)
        .await
        .map_err(|_| ImapError::Unreachable("the IMAP server did not answer in time".into()))
}

async fn greeting<S>(client: &mut async_imap::Client<S>, t: Duration) -> Result<(), ImapError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + fmt::Debug + Send,
{
    match timed(t, client.read_response()).await? {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Unreachable("the IMAP server closed the connection before greeting".into())),
        Err(e) => Err(ImapError::Unreachable(format!("the IMAP server's greeting could not be read ({e})"))),
    }
}

/// The error's first line, bounded: server texts can be long.
fn short(e: &async_imap::error::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

fn tls_error(host: &str, e: std::io::Error) -> ImapError {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => ImapError::Tls(format!(
            "the TLS certificate of {host} is not accepted ({tls}): it must be valid for {host} and signed \
             by a trusted CA (a private CA can be added with {IMAP_CA_FILE_VAR})"
        )),
        Some(other) => ImapError::Tls(format!("TLS with {host} failed ({other})")),
        None => ImapError::Unreachable(format!("TLS with {host} failed ({e})")),
    }
}

fn command_error(e: async_imap::error::Error) -> ImapError {
    match e {
        async_imap::error::Error::Io(io) => ImapError::Unreachable(format!("the IMAP connection failed ({io})")),
        other => ImapError::Protocol(format!("the IMAP server answered unexpectedly ({})", short(&other))),
    }
}

#[async_trait::async_trait]
impl MailboxReader for ImapReader {
    async fn open(&self, settings: &ImapSettings) -> Result<Box<dyn FolderSession>, ImapError> {
        let mut session = self.connect(settings).await?;
        let t = self.timeout;
        let mailbox = timed(t, session.examine(&settings.folder)).await?.map_err(|e| {
            ImapError::Folder(format!("the folder {:?} cannot be opened ({})", settings.folder, short(&e)))
        })?;
        let Some(uid_validity) = mailbox.uid_validity else {
            return Err(ImapError::Folder("the IMAP server gives no UIDVALIDITY for the folder".into()));
        };
        let state = FolderState { uid_validity, uid_next: mailbox.uid_next, exists: mailbox.exists };
        Ok(Box::new(ImapFolder { session, state, timeout: t }))
    }
}

struct ImapFolder {
    session: Session,
    state: FolderState,
    timeout: Duration,
}

impl ImapFolder {
    async fn search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        let found = timed(self.timeout, self.session.uid_search(query)).await?.map_err(command_error)?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }
}

#[async_trait::async_trait]
impl FolderSession for ImapFolder {
    fn state(&self) -> FolderState {
        self.state
    }

    async fn uids_after(&mut self, after: u32, limit: usize) -> Result<Vec<u32>, ImapError> {
        if self.state.exists == 0 {
            return Ok(vec![]);
        }
        // `n:*` always includes the highest UID, even when it is below n (RFC 3501 6.4.8).
        let mut uids = self.search(&format!("UID {}:*", after.saturating_add(1))).await?;
        uids.retain(|u| *u > after);
        uids.truncate(limit);
        Ok(uids)
    }

    async fn uids_since(&mut self, since: chrono::NaiveDate) -> Result<Vec<u32>, ImapError> {
        if self.state.exists == 0 {
            return Ok(vec![]);
        }
        self.search(&format!("SINCE {}", since.format("%-d-%b-%Y"))).await
    }

    async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
        if uids.is_empty() {
            return Ok(vec![]);
        }
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let query = format!("(UID RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.{MAX_FETCH_BYTES}>)");
        let t = self.timeout;
        let fetched: Vec<Fetch> = timed(t, async {
            let stream = self.session.uid_fetch(&set, &query).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?
        .map_err(command_error)?;
        let mut out: Vec<FetchedMessage> = fetched
            .iter()
            .filter_map(|f| {
                let uid = f.uid?;
                let raw = f.body()?.to_vec();
                let received_at = f.internal_date().map(|d| d.with_timezone(&chrono::Utc));
                Some(FetchedMessage { uid, raw, size: f.size, received_at })
            })
            .filter(|m| uids.contains(&m.uid))
            .collect();
        out.sort_by_key(|m| m.uid);
        out.dedup_by_key(|m| m.uid);
        Ok(out)
    }

    async fn close(mut self: Box<Self>) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}
