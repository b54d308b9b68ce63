//! The official Python MCP SDK's client (PyPI `mcp`, pinned in `infra/requirements-test.txt`)
//! running `infra/mcp_conversation.py` against an MCP endpoint: the test's independent client.

use crate::moto::{python, repo_root};
use std::time::Duration;

/// Runs the conversation with `config` (see the script's doc) and returns its output; an `Err`
/// carries the output of a conversation that failed or timed out.
pub async fn converse(config: &serde_json::Value, timeout: Duration) -> Result<String, String> {
    let root = repo_root();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("config.json");
    std::fs::write(&file, config.to_string()).map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(python(&root))
        .arg(root.join("infra").join("mcp_conversation.py"))
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start python: {e}"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("the MCP conversation did not finish within {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Makes, through the REST API at `base` with the agency's key, what the conversation needs: two
/// workspaces, keys (full, read-only, the other workspace's), the seeds' partners (an
/// ACTIVELY_ENGAGED engineering-blog.com with Marina, devleadweekly.com), a mailbox on
/// `smtp_port` and a custom campaign. Returns the conversation's config without `url`.
pub async fn seed_world(base: &str, agency_key: &str, smtp_port: u16) -> serde_json::Value {
    use serde_json::{json, Value};
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, ws: Option<String>, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let mut req = http.request(method, url).bearer_auth(agency_key).json(&body);
            if let Some(ws) = ws {
                req = req.header("x-workspace-id", ws);
            }
            let resp = req.send().await.expect("the API answers");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!((200..300).contains(&status), "{path}: {status} {body}");
            body
        }
    };
    let post = |path: &str, ws: Option<&str>, body: Value| {
        call(reqwest::Method::POST, path.to_owned(), ws.map(String::from), body)
    };
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let ws = id(post("/v1/workspaces", None, json!({ "name": "Acme" })).await);
    let other = id(post("/v1/workspaces", None, json!({ "name": "Beta" })).await);
    for w in [&ws, &other] {
        post(&format!("/v1/workspaces/{w}/credits"), None, json!({ "credits": 50 })).await;
    }
    let rel_path = "/v1/link-building/crm/relationship";
    let engaged = post(rel_path, Some(&ws), json!({ "domain": "engineering-blog.com" })).await;
    let (engaged, account) = (id(engaged.clone()), engaged["accountId"].as_str().unwrap().to_owned());
    post(rel_path, Some(&ws), json!({ "domain": "devleadweekly.com" })).await;
    call(
        reqwest::Method::PATCH,
        format!("{rel_path}/{engaged}"),
        Some(ws.clone()),
        json!({ "status": "ACTIVELY_ENGAGED" }),
    )
    .await;
    let marina = json!({ "accountId": account, "firstName": "Marina", "email": "marina@engineering-blog.com" });
    post("/v1/link-building/crm/contact", Some(&ws), marina).await;
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@acme.example", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp_port, "security": "none" });
    post("/v1/mailboxes", Some(&ws), mbx).await;
    let campaign = json!({ "type": "custom", "name": "PM tools", "relationshipIds": [engaged] });
    let campaign = id(post("/v1/link-building/campaign", Some(&ws), campaign).await);
    let other_rel = id(post(rel_path, Some(&other), json!({ "domain": "beta-partner.com" })).await);
    let key = |w: String, scopes: Option<Vec<&'static str>>| {
        let mut body = json!({ "name": "mcp test" });
        if let Some(s) = scopes {
            body["scopes"] = json!(s);
        }
        let made = post(&format!("/v1/workspaces/{w}/api-keys"), None, body);
        async move { made.await["key"].as_str().unwrap().to_owned() }
    };
    json!({
        "key": key(ws.clone(), None).await,
        "readonly_key": key(ws.clone(), Some(vec!["crm:read", "campaigns:read"])).await,
        "other_key": key(other.clone(), None).await,
        "agency_key": agency_key,
        "workspace": ws,
        "engaged_rel": engaged,
        "other_rel": other_rel,
        "campaign": campaign,
    })
}
