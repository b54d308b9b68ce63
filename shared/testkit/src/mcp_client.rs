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
