//! A router served on loopback and a small JSON client for it, for tests that drive the API
//! in-process (the worker Lambda tests set their data up through it).

use reqwest::Method;
use serde_json::Value;

/// Serves `router` on a free loopback port until the test's runtime ends; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    base
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    workspace: Option<String>,
}

impl Client {
    pub fn new(base: &str, key: &str) -> Self {
        Client { http: reqwest::Client::new(), base: base.to_owned(), key: key.to_owned(), workspace: None }
    }

    /// The same key, acting in one workspace (`X-Workspace-Id`).
    pub fn in_workspace(&self, ws: &str) -> Self {
        Client { workspace: Some(ws.to_owned()), ..self.clone() }
    }

    /// Status and JSON body (`Null` when the body is not JSON).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(ws) = &self.workspace {
            req = req.header("X-Workspace-Id", ws);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The body of a call that must answer `expect`.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>, expect: u16) -> Value {
        let (status, v) = self.call(method.clone(), path, body).await;
        assert_eq!(status, expect, "{method} {path} answered {status}: {v}");
        v
    }
}
