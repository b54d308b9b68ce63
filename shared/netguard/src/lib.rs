//! The platform's one guard for outbound connections to hosts a tenant supplies (SMTP servers
//! today; IMAP servers, webhook URLs and link checks later).
//!
//! Without it a tenant could point us at `169.254.169.254` and read the cloud metadata service
//! (server-side request forgery), or at `10.0.0.5:6379` and map our internal network from which
//! ports answer, refuse or time out, as told by the error we show them. So every host is resolved
//! here and refused when any of its addresses is private, loopback, link-local, CGNAT, multicast,
//! documentation, metadata or otherwise not public, IPv4 and IPv6, IP literals included (the table
//! is in `ranges.rs`).
//!
//! Checking a name and then handing the *name* to a client library is not enough: the library
//! resolves it again, and a DNS server the tenant controls can answer with a public address the
//! first time and `127.0.0.1` the second (DNS rebinding). Callers must therefore connect only to
//! the addresses [`Guard::resolve`] returns, or let [`Guard::connect_tcp`] do it. When TLS follows,
//! verify the certificate against the original host name, not the address.
//!
//! Errors carry the detail for the operator log (their `Display`); tenants get
//! [`GuardError::tenant_message`] only, which never says what a name resolved to or how a
//! connection failed.
//!
//! `LINKCRM_ALLOW_PRIVATE_TARGETS=true` ([`Guard::from_env`]) lets everything through, for local
//! development and tests against servers on the same machine.

mod host;
#[cfg(feature = "reqwest")]
pub mod http;
mod ranges;
#[cfg(test)]
mod tests;

pub use ranges::Blocked;

use host::Host;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Set to `true`, `1` or `yes` to let [`Guard::from_env`] allow private targets.
pub const ALLOW_PRIVATE_VAR: &str = "LINKCRM_ALLOW_PRIVATE_TARGETS";

/// A resolver that does not answer in this time is not going to; the caller's request is waiting.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a guard lets connections go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    allow_private: bool,
}

impl Guard {
    /// Public addresses only: the setting for anything deployed.
    pub fn strict() -> Guard {
        Guard { allow_private: false }
    }

    /// Every address, for local use and tests. Host names are still validated.
    pub fn allowing_private() -> Guard {
        Guard { allow_private: true }
    }

    /// [`allowing_private`](Self::allowing_private) when `LINKCRM_ALLOW_PRIVATE_TARGETS` is `true`,
    /// `1` or `yes` (any case); otherwise [`strict`](Self::strict), so a typo fails closed.
    pub fn from_env() -> Guard {
        Self::from_env_value(std::env::var(ALLOW_PRIVATE_VAR).ok().as_deref())
    }

    fn from_env_value(value: Option<&str>) -> Guard {
        let allow = value.is_some_and(|v| ["true", "1", "yes"].iter().any(|yes| v.trim().eq_ignore_ascii_case(yes)));
        Guard { allow_private: allow }
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Why this guard refuses `ip`, or `None` when it may be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Option<Blocked> {
        if self.allow_private {
            return None;
        }
        ranges::classify(ip)
    }

    /// Resolves `host` (a DNS name, an IPv4 literal, or an IPv6 literal with or without brackets)
    /// and returns the addresses to connect to, with `port`. Connect to these and nothing else.
    ///
    /// Refuses the host when *any* address is blocked, not just the ones we would try: a name
    /// with both public and private records is how a rebinding attack hides. A host that is not
    /// a plausible name (empty, spaces or control characters, over 253 characters, empty labels
    /// or labels over 63, a numeric form other than a standard IP literal) is refused without a
    /// lookup. The lookup itself is limited to [`RESOLVE_TIMEOUT`].
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        let name = match host::parse(host) {
            Err(why) => return Err(GuardError::Invalid { host: shown(host), why }),
            Ok(Host::Ip(ip)) => return self.vet(host, [SocketAddr::new(ip, port)]),
            Ok(Host::Name(name)) => name,
        };
        let found = match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => return Err(GuardError::Unresolvable { host: shown(host), detail: e.to_string() }),
            Err(_) => {
                let detail = format!("no answer within {RESOLVE_TIMEOUT:?}");
                return Err(GuardError::Unresolvable { host: shown(host), detail });
            }
        };
        self.vet(host, found)
    }

    fn vet(&self, host: &str, found: impl IntoIterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, GuardError> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in found {
            if let Some(what) = self.check_ip(addr.ip()) {
                // Logged here as well as by the caller: a refusal is a security event even when
                // the caller turns the error into a quiet "could not connect".
                tracing::warn!(host = %shown(host), addr = %addr.ip(), class = %what, "refused outbound connection");
                return Err(GuardError::Blocked { host: shown(host), addr: addr.ip(), what });
            }
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(GuardError::Unresolvable { host: shown(host), detail: "no addresses".to_owned() });
        }
        Ok(addrs)
    }

    /// Resolves `host` as [`resolve`](Self::resolve) does and connects over TCP to the first of
    /// its vetted addresses that answers, never resolving again. `timeout` bounds the whole call,
    /// lookup included. Returns the stream and the address it is connected to.
    pub async fn connect_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(TcpStream, SocketAddr), GuardError> {
        let deadline = Instant::now() + timeout;
        let addrs = match tokio::time::timeout_at(deadline, self.resolve(host, port)).await {
            Ok(addrs) => addrs?,
            Err(_) => {
                let detail = format!("no answer within {timeout:?}");
                return Err(GuardError::Unresolvable { host: shown(host), detail });
            }
        };
        let mut failures = Vec::new();
        for (i, &addr) in addrs.iter().enumerate() {
            // Share the time left among the addresses still untried, so one that silently drops
            // packets cannot use up the others' chance.
            let left = deadline.saturating_duration_since(Instant::now());
            let slice = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
            match tokio::time::timeout(slice, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok((stream, addr)),
                Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
                Err(_) => failures.push(format!("{addr}: no answer within {slice:?}")),
            }
        }
        Err(GuardError::Connect { host: shown(host), detail: failures.join("; ") })
    }
}

/// Why a host was refused or could not be reached. `Display` is for the operator log;
/// tenants get [`tenant_message`](Self::tenant_message).
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Not something we will look up.
    #[error("{host:?} is not a valid host: {why}")]
    Invalid { host: String, why: &'static str },
    /// The host is, or resolves to, an address outbound connections may not reach.
    #[error("{host:?} is or resolves to {addr}, a {what} address, which outbound connections may not reach")]
    Blocked { host: String, addr: IpAddr, what: Blocked },
    /// No such name, the lookup failed, or it timed out.
    #[error("could not resolve {host:?}: {detail}")]
    Unresolvable { host: String, detail: String },
    /// Every vetted address refused, failed or timed out (only from [`Guard::connect_tcp`]).
    #[error("could not connect to {host:?}: {detail}")]
    Connect { host: String, detail: String },
}

impl GuardError {
    /// What a tenant may be told.
    ///
    /// Blocked names, unknown names and failed connections read the same, or a tenant could probe
    /// which internal names exist (our resolver may know private zones) and which internal ports
    /// are open. Only a blocked IP literal is named as such: the tenant typed the address, so
    /// saying it is not allowed reveals nothing, and it tells them what to fix.
    pub fn tenant_message(&self) -> &'static str {
        match self {
            GuardError::Invalid { .. } => "the server name is not a valid host name or IP address",
            GuardError::Blocked { host, .. } if matches!(host::parse(host), Ok(Host::Ip(_))) => {
                "this address is not allowed: the server must have a public internet address"
            }
            GuardError::Blocked { .. } | GuardError::Unresolvable { .. } | GuardError::Connect { .. } => {
                "could not connect to the server"
            }
        }
    }
}

/// The host as it goes into errors and logs: bounded, since it is tenant input of any length.
fn shown(host: &str) -> String {
    host.chars().take(256).collect()
}
