//! A real SMTP server on loopback (aiosmtpd, `infra/smtp_server.py`) that keeps what it accepts.
//!
//! The interpreter is found as for [`crate::moto`]. Each test starts its own server, so what
//! [`SmtpServer::received`] returns is exactly what that test sent. The recipient's local part
//! picks the server's answer: `reject…` 550, `defer…` 451, `slow…` no answer for 30 s, `drop…`
//! stores the message and hangs up before replying (see the script's doc).
//!
//! With [`ServerTls::StartTls`] or [`ServerTls::Implicit`] the server presents a certificate for
//! `localhost` and 127.0.0.1 signed by a CA made for that server alone ([`SmtpServer::ca_pem`]);
//! a client trusts that CA and nothing else about the test, so its certificate checks stay on.

use crate::moto::{await_ready, python, repo_root};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Importing asyncio and aiosmtpd takes well under a second; allow for a loaded machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct SmtpServer {
    pub port: u16,
    /// Where the server stores accepted messages; removed when the value drops.
    pub dir: PathBuf,
    /// The test CA's certificate file (PEM), with TLS: clients trust it to verify the server.
    pub ca_file: Option<PathBuf>,
    child: Child,
    _dir: tempfile::TempDir,
}

/// How the server protects sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerTls {
    /// Plain text; STARTTLS not offered.
    #[default]
    None,
    /// Offers STARTTLS and requires it before mail or AUTH (530 otherwise); AUTH is offered only
    /// after it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// What [`SmtpServer::start_with`] starts.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Offers AUTH and accepts only this user and password (others get 535).
    pub user: Option<(String, String)>,
    pub tls: ServerTls,
    /// With TLS, the one host name or IP address the server's certificate is for, instead of
    /// `localhost` and 127.0.0.1 (to test that clients check the name).
    pub cert_name: Option<String>,
    /// Also offers AUTH XOAUTH2, checking each bearer token at this introspection URL.
    pub introspection_url: Option<String>,
}

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    /// The bytes after `DATA`, exactly as sent (CRLF line endings, dot-stuffing removed).
    pub raw: Vec<u8>,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The AUTH user of the session, when the client authenticated.
    pub authenticated_as: Option<String>,
    /// Whether the session was encrypted (STARTTLS or implicit TLS) when the message came.
    pub tls: bool,
}

impl ReceivedMessage {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The unfolded value of the first header called `name` (any case) in the top-level header
    /// section, as it appears on the wire (not decoded).
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            match value.as_mut() {
                Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
                Some(_) => break,
                None => {
                    if let Some((n, v)) = line.split_once(':') {
                        if n.eq_ignore_ascii_case(name) {
                            value = Some(v.trim_start().to_owned());
                        }
                    }
                }
            }
        }
        value.map(|v| v.trim_end().to_owned())
    }
}

impl SmtpServer {
    /// A server accepting mail from anyone.
    pub fn start() -> anyhow::Result<SmtpServer> {
        Self::start_with(SmtpOptions::default())
    }

    /// A server that also offers AUTH and accepts only `user`/`password` (others get 535).
    pub fn start_with_user(user: &str, password: &str) -> anyhow::Result<SmtpServer> {
        Self::start_with(SmtpOptions { user: Some((user.into(), password.into())), ..SmtpOptions::default() })
    }

    /// A server offering and requiring STARTTLS, with a fresh test CA.
    pub fn start_starttls() -> anyhow::Result<SmtpServer> {
        Self::start_with(SmtpOptions { tls: ServerTls::StartTls, ..SmtpOptions::default() })
    }

    /// A server speaking TLS from the first byte (SMTPS), with a fresh test CA.
    pub fn start_implicit_tls() -> anyhow::Result<SmtpServer> {
        Self::start_with(SmtpOptions { tls: ServerTls::Implicit, ..SmtpOptions::default() })
    }

    pub fn start_with(options: SmtpOptions) -> anyhow::Result<SmtpServer> {
        let root = repo_root();
        let python = python(&root);
        let script = root.join("infra").join("smtp_server.py");
        let dir = tempfile::Builder::new().prefix("linkcrm-smtp-").tempdir().context("temp dir")?;
        let mut command = Command::new(&python);
        command.arg(&script).args(["--host", "127.0.0.1", "--port", "0", "--store"]).arg(dir.path());
        if let Some((user, password)) = &options.user {
            command.args(["--user", &format!("{user}:{password}")]);
        }
        if let Some(url) = &options.introspection_url {
            command.args(["--introspect", url]);
        }
        let mut ca_file = None;
        let flag = match options.tls {
            ServerTls::None => None,
            ServerTls::StartTls => Some("--starttls"),
            ServerTls::Implicit => Some("--tls"),
        };
        if let Some(flag) = flag {
            // Beside the messages, which the store reader picks out by their `.eml` extension.
            let certs = dir.path().join("tls");
            make_cert(&python, &script, &certs, options.cert_name.as_deref())?;
            command.arg(flag).arg(certs.join("cert.pem")).arg(certs.join("key.pem"));
            ca_file = Some(certs.join("ca.pem"));
        }
        let mut child = command
            // The server exits when this pipe closes, i.e. when the test process ends however it
            // ends, so no server outlives its tests.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;

        let port = await_ready(&mut child, "SMTP server", "aiosmtpd", STARTUP_TIMEOUT)?;
        Ok(SmtpServer { port, dir: dir.path().to_owned(), ca_file, child, _dir: dir })
    }

    /// The test CA's certificate (PEM) that the server's certificate chains to, with TLS.
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        let path = self.ca_file.as_ref()?;
        Some(std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
    }

    /// How many times a client has reached RCPT for a `slow*` address (and is waiting there).
    pub fn slow_rcpts(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("slow-rcpt-")).count()
            })
            .unwrap_or(0)
    }

    /// Every message accepted so far, in the order received.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        read_store(&self.dir).unwrap_or_else(|e| panic!("reading {}: {e:#}", self.dir.display()))
    }
}

/// A new test CA and a certificate it signed for `name` (default `localhost` and 127.0.0.1),
/// written into `folder`.
pub(crate) fn make_cert(python: &Path, script: &Path, folder: &Path, name: Option<&str>) -> anyhow::Result<()> {
    let mut command = Command::new(python);
    command.arg(script).arg("--make-cert").arg(folder);
    if let Some(name) = name {
        command.args(["--cert-names", name]);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {} {} --make-cert", python.display(), script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "making the test certificate failed ({}); is cryptography installed? \
         (pip install -r infra/requirements-test.txt, or set LINKCRM_PYTHON)\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn read_store(dir: &Path) -> anyhow::Result<Vec<ReceivedMessage>> {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .into_iter()
        .map(|eml| {
            let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(eml.with_extension("json"))?)?;
            let text = |key: &str| meta.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            Ok(ReceivedMessage {
                raw: std::fs::read(&eml)?,
                mail_from: text("mail_from").unwrap_or_default(),
                rcpt_tos: meta["rcpt_tos"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                authenticated_as: text("authenticated_as"),
                tls: meta["tls"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_unfolded_from_the_top_section() {
        let message = ReceivedMessage {
            raw: b"Subject: a\r\n long one\r\nTo: x@y\r\n\r\nSubject: not this\r\n".to_vec(),
            mail_from: String::new(),
            rcpt_tos: vec![],
            authenticated_as: None,
            tls: false,
        };
        assert_eq!(message.header("subject").as_deref(), Some("a long one"));
        assert_eq!(message.header("To").as_deref(), Some("x@y"));
        assert_eq!(message.header("From"), None);
    }

    #[test]
    fn a_tls_server_brings_its_own_ca_and_a_plain_one_none() {
        let server = SmtpServer::start_starttls().expect("SMTP server starts");
        let ca = String::from_utf8(server.ca_pem().expect("CA")).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        // The certificate files are not mistaken for messages.
        assert!(server.received().is_empty());
        assert!(SmtpServer::start().expect("SMTP server starts").ca_pem().is_none());
    }

    #[test]
    fn starts_and_stops_on_drop() {
        let server = SmtpServer::start().expect("SMTP server starts");
        std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("listens");
        assert!(server.received().is_empty());
        let pid = server.child.id();
        drop(server);
        #[cfg(target_os = "linux")]
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "SMTP server {pid} still exists");
    }
}
