//! Black-box harness: the real binary, a real HTTP client, a fresh store per test.
#![allow(dead_code)]

use linkcrm_testkit::server::{Options, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;

pub const BIN: &str = env!("CARGO_BIN_EXE_linkcrm");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Dynamo,
}

/// A running server on a fresh store with two agencies: ours (`admin_key`) and a stranger's.
pub struct Env {
    pub server: Server,
    pub backend: Backend,
    pub opts: Options,
    pub other_agency_key: String,
    _dir: tempfile::TempDir,
}

fn store_args(backend: Backend, dir: &std::path::Path) -> (Vec<String>, Vec<(String, String)>) {
    match backend {
        Backend::Embedded => (vec!["--data-dir".into(), dir.display().to_string()], vec![]),
        Backend::Dynamo => dynamo::args(),
    }
}

impl Env {
    pub async fn start(backend: Backend) -> Env {
        Env::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let (args, store_env) = store_args(backend, dir.path());
        // Benchmarks run against a release build: `LINKCRM_TEST_BIN` names it.
        let bin = std::env::var("LINKCRM_TEST_BIN").unwrap_or_else(|_| BIN.to_owned());
        let mut opts = Options::new(&bin);
        for a in &args {
            opts = opts.arg(a.clone());
        }
        for (k, v) in store_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(env.iter().copied()) {
            opts = opts.env(k, v);
        }
        // Two agencies made by the operator CLI before the server starts.
        let other = format!("sk_live_agency_other{}", linkcrm_testkit::server::unique());
        cli(&opts, &["agency", "create", "--name", "Our agency", "--key", &opts.admin_key.clone()]);
        cli(&opts, &["agency", "create", "--name", "Another agency", "--key", &other]);
        let server = Server::start(&opts).expect("server starts");
        Env { server, backend, opts, other_agency_key: other, _dir: dir }
    }

    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().to_owned()
    }

    /// A client acting with the agency key.
    pub fn agency(&self) -> Api {
        Api::new(&self.server.base_url, &self.server.admin_key)
    }

    pub fn other_agency(&self) -> Api {
        Api::new(&self.server.base_url, &self.other_agency_key)
    }

    pub fn anonymous(&self) -> Api {
        Api { base: self.server.base_url.clone(), key: None, headers: vec![], client: client() }
    }

    /// Restarts the server on the same store (after a crash or a stop).
    pub fn restart(&mut self) {
        self.server = Server::start(&self.opts).expect("server restarts");
    }
}

/// Runs the binary's CLI against the same store, returning stdout.
pub fn cli(opts: &Options, args: &[&str]) -> String {
    let out = std::process::Command::new(&opts.bin)
        .args(&opts.args)
        .args(args)
        .envs(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .output()
        .expect("cli runs");
    assert!(out.status.success(), "cli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap()
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    client: reqwest::Client,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json error with this status and code, and returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "expected {status} {code}, got {}: {}", self.status, self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"].as_str().unwrap(), format!("https://linkcrm.dev/errors/{code}"));
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(self.body["requestId"].as_str(), self.header("x-request-id"), "requestId matches the header");
        &self.body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        &self.body
    }
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        Api { base: base.to_owned(), key: Some(key.to_owned()), headers: vec![], client: client() }
    }

    pub fn with_key(&self, key: &str) -> Api {
        Api { key: Some(key.to_owned()), ..self.clone() }
    }

    pub fn with_header(&self, k: &str, v: &str) -> Api {
        let mut a = self.clone();
        a.headers.push((k.to_owned(), v.to_owned()));
        a
    }

    pub fn in_workspace(&self, ws: &str) -> Api {
        self.with_header("X-Workspace-Id", ws)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        let r = req.send().await.expect("request is answered");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&body.to_string())).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&body.to_string())).await
    }
    #[allow(dead_code)]
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(&body.to_string())).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a workspace and returns its id.
    pub async fn create_workspace(&self, name: &str) -> String {
        let r = self.post("/v1/workspaces", json!({ "name": name })).await;
        r.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// Creates a workspace key with the given scopes (None: defaults) and returns its secret.
    /// Polls the invocation until its status is one of `statuses` (at most `within`); returns it.
    #[allow(dead_code)]
    pub async fn wait_invocation(&self, id: &str, statuses: &[&str], within: std::time::Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let b = self.get(&format!("/v1/agent/invocations/{id}")).await.ok(200).clone();
            if statuses.contains(&b["status"].as_str().unwrap_or_default()) {
                return b;
            }
            assert!(std::time::Instant::now() < deadline, "invocation {id} still {} after {within:?}", b["status"]);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn create_key(&self, ws: &str, scopes: Option<&[&str]>) -> String {
        let mut body = json!({ "name": "test key" });
        if let Some(s) = scopes {
            body["scopes"] = json!(s);
        }
        let r = self.post(&format!("/v1/workspaces/{ws}/api-keys"), body).await;
        r.ok(201)["key"].as_str().unwrap().to_owned()
    }
}

/// Runs `$body(Backend)` (an async fn) once per backend, as `embedded` and `dynamodb` tests in a
/// module; for bodies that start their server with settings of their own.
#[macro_export]
macro_rules! each_backend {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                $body(common::Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                $body(common::Backend::Dynamo).await
            }
        }
    };
}

/// Runs a test body once per backend, as `embedded` and `dynamodb` tests in a module.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            use super::*;
            #[allow(unused_mut)]
            async fn run(mut $env: common::Env) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                run(common::Env::start(common::Backend::Embedded).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                run(common::Env::start(common::Backend::Dynamo).await).await
            }
        }
    };
}

pub mod dynamo {
    /// Store arguments and environment for a server on a fresh table in the shared moto server.
    pub fn args() -> (Vec<String>, Vec<(String, String)>) {
        let (endpoint, table) = super::dynamo_table();
        (
            vec!["--store".into(), "dynamodb".into(), "--table".into(), table],
            vec![
                ("AWS_ENDPOINT_URL".into(), endpoint),
                ("AWS_ACCESS_KEY_ID".into(), "test".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
            ],
        )
    }
}

/// A fresh table in the test binary's moto server: (endpoint, table name).
pub fn dynamo_table() -> (String, String) {
    let moto = linkcrm_testkit::Moto::shared().expect("moto server");
    let table = linkcrm_testkit::unique_table_name("api");
    let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&moto.endpoint, &table);
    // Called from multi-threaded test runtimes, which may block one worker on setup.
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(store.create_table()))
        .expect("create table");
    (moto.endpoint.clone(), table)
}
