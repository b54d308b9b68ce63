//! A webhook receiver on loopback (`infra/webhook_receiver.py`) that checks every delivery's
//! signature with the independent Standard Webhooks library (PyPI `standardwebhooks`) and answers
//! as the path asks (`/ok`, `/fail`, `/gone`, `/redirect`, `/throttle`, `/slow/<ms>`,
//! `/flaky/<n>`; see the script). Each test starts its own.

use crate::moto::{await_ready, python, repo_root};
use anyhow::Context;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Receiver {
    pub port: u16,
    child: Child,
    http: reqwest::Client,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Value,
    pub body: Value,
    pub raw: String,
    /// The signature verified with one of the path's secrets.
    pub verified: bool,
    pub error: Option<String>,
    /// The status it answered.
    pub answered: u16,
    /// Unix seconds (fractional) when it arrived.
    pub at: f64,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers[name].as_str()
    }
}

impl Receiver {
    pub fn start() -> anyhow::Result<Receiver> {
        let root = repo_root();
        let mut child = Command::new(python(&root))
            .arg(root.join("infra").join("webhook_receiver.py"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the webhook receiver")?;
        let port = await_ready(&mut child, "the webhook receiver", "standardwebhooks", Duration::from_secs(60))?;
        Ok(Receiver { port, child, http: reqwest::Client::new() })
    }

    /// The URL of `path` (such as `/ok/a`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Verify deliveries to paths under `prefix` with these secrets.
    pub async fn secrets(&self, prefix: &str, secrets: &[&str]) {
        let r = self
            .http
            .post(self.url("/_secrets"))
            .json(&json!({ "path": prefix, "secrets": secrets }))
            .send()
            .await
            .expect("the receiver answers");
        assert_eq!(r.status().as_u16(), 204);
    }

    pub async fn received(&self) -> Vec<Received> {
        let all: Vec<Value> = self.http.get(self.url("/_received")).send().await.unwrap().json().await.unwrap();
        all.into_iter()
            .map(|r| Received {
                path: r["path"].as_str().unwrap_or_default().to_owned(),
                headers: r["headers"].clone(),
                body: serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null),
                raw: r["body"].as_str().unwrap_or_default().to_owned(),
                verified: r["verified"].as_bool().unwrap_or(false),
                error: r["error"].as_str().map(str::to_owned),
                answered: r["answered"].as_u64().unwrap_or(0) as u16,
                at: r["at"].as_f64().unwrap_or(0.0),
            })
            .collect()
    }

    /// What arrived at paths starting with `prefix`.
    pub async fn at(&self, prefix: &str) -> Vec<Received> {
        self.received().await.into_iter().filter(|r| r.path.starts_with(prefix)).collect()
    }

    /// Waits until `pred` holds for what arrived under `prefix` (at most `within`), and returns it.
    pub async fn wait_for(&self, prefix: &str, within: Duration, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.at(prefix).await;
            if pred(&got) {
                return got;
            }
            if std::time::Instant::now() > deadline {
                panic!("the receiver did not get what was expected at {prefix} within {within:?}; got {got:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
