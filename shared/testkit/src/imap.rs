//! A real IMAP server on loopback: Debian's Dovecot (`dovecot-imapd`), started from a throwaway
//! configuration in a temp dir, with one passwd-file user and a Maildir.
//!
//! It listens on two free loopback ports: `port` (IMAP, offering STARTTLS and, for the tests'
//! own appends, plain LOGIN) and `tls_port` (IMAPS). The certificate is for `localhost` and
//! 127.0.0.1, signed by a CA made for this server alone ([`ImapServer::ca_file`]), the SMTP
//! tests' pattern. With [`ImapOptions::introspection_url`] it also accepts SASL XOAUTH2 and
//! OAUTHBEARER, checking each token at that OAuth 2.0 introspection endpoint (Dovecot's oauth2
//! passdb), so a test can point it at a fake authorization server.
//!
//! Messages are delivered with IMAP `APPEND` ([`ImapServer::append`]), as another mail client
//! would. [`ImapServer::stop`] and [`ImapServer::start_again`] take it away and bring it back on
//! the same ports with the same mail. Dovecot runs under `sh`, which ends it when the test process
//! ends however it ends (its stdin pipe closes), so no server outlives its tests.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOVECOT: &str = "/usr/sbin/dovecot";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Default)]
pub struct ImapOptions {
    /// Dovecot's oauth2 passdb checks XOAUTH2 tokens here (POST, RFC 7662 introspection, the
    /// answer's `email` naming the user, `active: true`).
    pub introspection_url: Option<String>,
}

pub struct ImapServer {
    pub port: u16,
    pub tls_port: u16,
    pub user: String,
    pub password: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The uid/gid Dovecot gives mail processes: ours, or `nobody`'s when we are root (Dovecot never
/// runs mail access as root).
fn mail_ids() -> (u32, u32) {
    let out = |flag: &str| {
        Command::new("id")
            .arg(flag)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    match (out("-u"), out("-g")) {
        (0, _) => (65534, 65534),
        ids => ids,
    }
}

impl ImapServer {
    pub fn start() -> anyhow::Result<ImapServer> {
        Self::start_with(ImapOptions::default())
    }

    pub fn start_with(options: ImapOptions) -> anyhow::Result<ImapServer> {
        anyhow::ensure!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} not found: install Debian's dovecot-imapd (infra/test.sh does)"
        );
        let dir = tempfile::Builder::new().prefix("linkcrm-imap-").tempdir().context("temp dir")?;
        let root = dir.path();
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        // Dovecot reads the config and certificates as root before dropping privileges, but mail
        // processes must reach the Maildir as the mail uid.
        let (uid, gid) = mail_ids();
        Command::new("chown").arg(format!("{uid}:{gid}")).arg(root.join("mail")).status()?;
        let _ = Command::new("chmod").arg("755").arg(root).status();

        let root_s = root.display().to_string();
        let (python, script) = {
            let repo = crate::moto::repo_root();
            (crate::moto::python(&repo), repo.join("infra").join("smtp_server.py"))
        };
        let certs = root.join("tls");
        crate::smtp::make_cert(&python, &script, &certs, None)?;

        let user = "inbox@example.com".to_owned();
        let password = format!("pw-{}", crate::server::unique());
        std::fs::write(root.join("passwd"), format!("{user}:{{PLAIN}}{password}\n"))?;

        let (port, tls_port) = (free_port()?, free_port()?);
        let mut mechanisms = "plain login".to_owned();
        let mut oauth_passdb = String::new();
        if let Some(url) = &options.introspection_url {
            mechanisms.push_str(" xoauth2 oauthbearer");
            std::fs::write(
                root.join("oauth2.conf.ext"),
                format!(
                    "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = email\n\
                     active_attribute = active\nactive_value = true\nforce_introspection = yes\n"
                ),
            )?;
            oauth_passdb = format!(
                "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {root_s}/oauth2.conf.ext\n}}\n"
            );
        }
        let config = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {root_s}/run\nstate_dir = {root_s}/state\n\
             log_path = {root_s}/dovecot.log\nssl = yes\nssl_cert = <{root_s}/tls/cert.pem\n\
             ssl_key = <{root_s}/tls/key.pem\ndisable_plaintext_auth = no\nauth_mechanisms = {mechanisms}\n\
             first_valid_uid = 0\nmail_location = maildir:{root_s}/mail/%u\n\
             {oauth_passdb}passdb {{\n  driver = passwd-file\n  mechanisms = plain login\n  \
             args = scheme=PLAIN username_format=%u {root_s}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={root_s}/mail/%u allow_all_users=yes\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n"
        );
        std::fs::write(root.join("dovecot.conf"), config)?;
        let mut server = ImapServer { port, tls_port, user, password, dir, child: None };
        server.start_again()?;
        Ok(server)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The test CA's certificate file (PEM) the server's certificate chains to.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    /// Dovecot's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Starts Dovecot (again) on the same ports and mail, and waits until it accepts connections.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the IMAP server is already running");
        let root = self.dir.path();
        let _ = std::fs::remove_file(root.join("run").join("master.pid"));
        let conf = root.join("dovecot.conf");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{DOVECOT} -F -c \"$0\" & d=$!; cat >/dev/null; kill $d; wait $d"))
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting dovecot")?;
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let up = [self.port, self.tls_port].iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!("dovecot exited ({status}) before listening:\n{}", self.log());
            }
            anyhow::ensure!(Instant::now() < deadline, "dovecot did not listen in time:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Dovecot; connections are refused until [`start_again`](Self::start_again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn session(&self) -> anyhow::Result<async_imap::Session<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await?.context("no IMAP greeting")?;
        client.login(&self.user, &self.password).await.map_err(|(e, _)| anyhow::anyhow!("login: {e}"))
    }

    /// Delivers a message into `INBOX`, as a mail client's `APPEND` would.
    pub async fn append(&self, raw: &str) -> anyhow::Result<()> {
        self.append_to("INBOX", raw).await
    }

    pub async fn append_to(&self, folder: &str, raw: &str) -> anyhow::Result<()> {
        self.append_many(folder, &[raw.to_owned()]).await
    }

    /// Delivers several messages into `INBOX` in one session, quickly.
    pub async fn append_all(&self, raws: &[String]) -> anyhow::Result<()> {
        self.append_many("INBOX", raws).await
    }

    async fn append_many(&self, folder: &str, raws: &[String]) -> anyhow::Result<()> {
        let mut session = self.session().await?;
        for raw in raws {
            let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
            session.append(folder, None, None, raw.as_bytes()).await.context("APPEND")?;
        }
        session.logout().await?;
        Ok(())
    }

    /// Gives `INBOX` a new `UIDVALIDITY` (what a server does when it rebuilds a folder's index),
    /// with `doveadm mailbox update`.
    pub fn change_uid_validity(&self, value: u32) -> anyhow::Result<()> {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(["mailbox", "update", "-u", &self.user, "--uid-validity", &value.to_string(), "INBOX"])
            .output()
            .context("doveadm")?;
        anyhow::ensure!(out.status.success(), "doveadm: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// The UIDs now in `INBOX`.
    pub async fn uids(&self) -> anyhow::Result<Vec<u32>> {
        let mut session = self.session().await?;
        session.select("INBOX").await?;
        let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
        uids.sort_unstable();
        session.logout().await?;
        Ok(uids)
    }
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dovecot_takes_appends_and_comes_back_after_a_stop() {
        let mut server = ImapServer::start().expect("dovecot starts");
        server.append("From: a@b.example\nSubject: one\nMessage-ID: <1@b.example>\n\nhello\n").await.unwrap();
        server.append("From: a@b.example\nSubject: two\n\nhello\n").await.unwrap();
        assert_eq!(server.uids().await.unwrap(), vec![1, 2]);
        server.stop();
        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
        server.start_again().unwrap();
        assert_eq!(server.uids().await.unwrap(), vec![1, 2], "{}", server.log());
        server.change_uid_validity(4242).unwrap();
        assert_eq!(server.uids().await.unwrap(), vec![1, 2]);
    }
}
