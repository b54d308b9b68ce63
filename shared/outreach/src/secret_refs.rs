//! Secret references: where a mailbox keeps its SMTP password instead of storing it (sealed) in
//! the table. `env:NAME` reads the process environment; a Secrets Manager ARN is fetched with
//! `GetSecretValue` (the function's role may read `linkcrm/*` secrets; see template.yaml) and kept
//! for [`CACHE_FOR`], so a batch of sends costs one call. A secret whose string is a JSON object
//! with a `password` field yields that field (the shape the console's "credentials" secrets
//! take); any other string is the password itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

pub const CACHE_FOR: Duration = Duration::from_secs(300);

/// Why a reference gave no secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefError {
    /// The reference names nothing that exists (unset variable, deleted secret, no access):
    /// retrying will not help until someone fixes the mailbox or the secret.
    #[error("{0}")]
    Missing(String),
    /// Secrets Manager could not be reached or throttled us.
    #[error("{0}")]
    Unavailable(String),
}

/// Whether `raw` has the shape of a reference this module can resolve.
pub fn is_reference(raw: &str) -> bool {
    match raw.strip_prefix("env:") {
        Some(name) => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        None => is_secret_arn(raw),
    }
}

fn is_secret_arn(raw: &str) -> bool {
    // arn:<partition>:secretsmanager:<region>:<account>:secret:<name>
    let parts: Vec<&str> = raw.splitn(7, ':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "secretsmanager"
        && parts[5] == "secret"
        && !parts[6].is_empty()
        && raw.len() < 2048
}

static CLIENT: OnceCell<aws_sdk_secretsmanager::Client> = OnceCell::const_new();
static CACHE: Mutex<Option<HashMap<String, (String, Instant)>>> = Mutex::new(None);

async fn client() -> &'static aws_sdk_secretsmanager::Client {
    CLIENT
        .get_or_init(|| async {
            let config = linkcrm_storage::aws::sdk_config().await;
            aws_sdk_secretsmanager::Client::new(config)
        })
        .await
}

/// The secret a reference names.
pub async fn resolve(reference: &str) -> Result<String, RefError> {
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name).map_err(|_| RefError::Missing(format!("environment variable {name} is not set")));
    }
    if !is_secret_arn(reference) {
        return Err(RefError::Missing("not a secret reference".into()));
    }
    if let Some((value, at)) = CACHE.lock().unwrap().as_ref().and_then(|c| c.get(reference)).cloned() {
        if at.elapsed() < CACHE_FOR {
            return Ok(value);
        }
    }
    let out = client().await.get_secret_value().secret_id(reference).send().await.map_err(|e| {
        let service = e.as_service_error();
        let missing = service.is_some_and(|s| {
            s.is_resource_not_found_exception() || s.is_invalid_parameter_exception() || s.is_decryption_failure()
        }) || e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 400 | 403 | 404));
        let message = format!("Secrets Manager: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e));
        if missing {
            RefError::Missing(message)
        } else {
            RefError::Unavailable(message)
        }
    })?;
    let raw = out.secret_string().ok_or_else(|| RefError::Missing("the secret has no string value".into()))?;
    let value = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(o)) => match o.get("password").and_then(serde_json::Value::as_str) {
            Some(p) => p.to_owned(),
            None => return Err(RefError::Missing("the secret is a JSON object without a \"password\" field".into())),
        },
        _ => raw.to_owned(),
    };
    CACHE
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(reference.to_owned(), (value.clone(), Instant::now()));
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_shapes() {
        assert!(is_reference("env:SMTP_PASSWORD"));
        assert!(is_reference("arn:aws:secretsmanager:eu-west-1:123456789012:secret:linkcrm/smtp-AbCdEf"));
        assert!(is_reference("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:linkcrm/x"));
        for bad in ["env:", "env:A-B", "arn:aws:s3:::bucket", "arn:aws:secretsmanager:eu-west-1:1:secret:", "hunter2"] {
            assert!(!is_reference(bad), "{bad}");
        }
    }
}
