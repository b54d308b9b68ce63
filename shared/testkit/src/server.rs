//! Starts the real `linkcrm` binary on a free loopback port for black-box tests.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub base_url: String,
    pub admin_key: String,
    child: Child,
    /// Lines the server wrote to stderr (its JSON logs), collected in the background.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub bin: PathBuf,
    /// Extra arguments after the binary (e.g. `--store dynamodb --table t`).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub admin_key: String,
}

impl Options {
    pub fn new(bin: impl AsRef<Path>) -> Self {
        Options {
            bin: bin.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            admin_key: format!("sk_live_agency_test{}", unique()),
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// A process-unique suffix for names.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}{:x}{}", std::process::id(), nanos & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

impl Server {
    /// Starts the binary with `--bind 127.0.0.1:0` and waits until it says where it listens.
    pub fn start(opts: &Options) -> anyhow::Result<Server> {
        let mut cmd = Command::new(&opts.bin);
        cmd.args(&opts.args)
            .arg("--bind")
            .arg("127.0.0.1:0")
            .env("LINKCRM_ADMIN_KEY", &opts.admin_key)
            .env("RUST_LOG", "info")
            // The tests' mail servers are on loopback; a test of the SSRF guard sets it back to false.
            .env("LINKCRM_ALLOW_PRIVATE_TARGETS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", opts.bin.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = listening(&line) {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => {
                Ok(Server { base_url: format!("http://{addr}"), admin_key: opts.admin_key.clone(), child, logs })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("server did not start; its log:\n{}", logs.lock().unwrap().join("\n"))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// `kill -9`: no chance to flush or drain anything.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit and returns its status code.
    pub fn terminate(&mut self) -> anyhow::Result<Option<i32>> {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        for _ in 0..200 {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("server did not stop within 10 s of SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address from the server's `"listening":"127.0.0.1:PORT"` log line.
fn listening(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("listening")?.as_str().map(str::to_owned)
}

impl Server {
    /// Waits up to `timeout` for the process to exit by itself; returns whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }
}
