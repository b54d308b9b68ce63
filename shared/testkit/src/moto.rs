//! A moto DynamoDB server on loopback, run from `infra/moto_server.py`.
//!
//! The Python interpreter is `$LINKCRM_PYTHON`, else `<repo>/.venv/bin/python` when present,
//! else `python3`; it needs `infra/requirements-test.txt` installed. Tests share one server per
//! test binary ([`Moto::shared`]) and isolate themselves with [`unique_table_name`].

use anyhow::{anyhow, bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// moto imports a lot of modules on start; a loaded CI machine can take a while.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Moto {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Starts a server of its own, stopped when the value drops.
    pub fn start() -> anyhow::Result<Moto> {
        let root = repo_root();
        let python = python(&root);
        let script = root.join("infra").join("moto_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0", "--exit-on-stdin-eof"])
            // The server exits when this pipe closes, which happens when the test process
            // ends however it ends, so no server outlives its tests (a static is never dropped).
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;

        let port = await_ready(&mut child, "moto server", "moto", STARTUP_TIMEOUT)?;
        Ok(Moto { endpoint: format!("http://127.0.0.1:{port}"), child })
    }

    /// The test binary's one server, started on first use.
    pub fn shared() -> anyhow::Result<&'static Moto> {
        // The first start's error is kept (an anyhow error cannot be cloned) as its full text.
        static SHARED: OnceLock<Result<Moto, Arc<anyhow::Error>>> = OnceLock::new();
        SHARED.get_or_init(|| Moto::start().map_err(Arc::new)).as_ref().map_err(|e| anyhow!("{e:#}"))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A table name no other test (in this or another process) uses: `<prefix>-<pid>-<time>-<n>`.
pub fn unique_table_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' })
        .take(120)
        .collect();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

pub(crate) fn python(root: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("LINKCRM_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = root.join(".venv").join("bin").join("python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Waits for a helper server's first stdout line, `READY <port>`, and returns the port. On any
/// other outcome the child is stopped and the error says what to install (`package`).
pub(crate) fn await_ready(child: &mut Child, what: &str, package: &str, timeout: Duration) -> anyhow::Result<u16> {
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(BufReader::new(stdout).lines().next());
    });
    let line = match rx.recv_timeout(timeout) {
        Ok(Some(Ok(line))) => line,
        Ok(_) => {
            let status = child.wait().ok();
            bail!(
                "{what} exited before it was ready ({status:?}); is {package} installed? \
                 (pip install -r infra/requirements-test.txt, or set LINKCRM_PYTHON)"
            );
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} not ready after {timeout:?}");
        }
    };
    match line.strip_prefix("READY ").and_then(|p| p.trim().parse().ok()) {
        Some(port) => Ok(port),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("unexpected first line from the {what}: {line:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique_and_valid() {
        let a = unique_table_name("conformance test/1");
        let b = unique_table_name("conformance test/1");
        assert_ne!(a, b);
        assert!(a.starts_with("conformance-test-1-"));
        assert!(a.len() <= 255 && a.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }

    #[test]
    fn moto_answers_and_stops_on_drop() {
        let moto = Moto::start().expect("moto starts");
        let addr = moto.endpoint.trim_start_matches("http://").to_owned();
        std::net::TcpStream::connect(&addr).expect("moto listens");
        let pid = moto.child.id();
        drop(moto);
        #[cfg(target_os = "linux")]
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "moto process {pid} still exists");
    }
}
