//! Which credentials a workspace's calls to a data provider use: the workspace's own (set with
//! `PUT /v1/workspaces/{id}/integrations/<provider>`, sealed at rest, never returned) or else the
//! platform's from the environment. Apollo keeps its own module (it also tracks quota).
//!
//! | provider | workspace fields | platform environment |
//! |---|---|---|
//! | `dataforseo` | `login`, `password` | `LINKCRM_DATAFORSEO_LOGIN`, `LINKCRM_DATAFORSEO_PASSWORD`, `LINKCRM_DATAFORSEO_BASE_URL` |
//! | `ahrefs` | `apiKey` | `LINKCRM_AHREFS_API_KEY`, `LINKCRM_AHREFS_BASE_URL` |
//! | `llm` | `apiKey`, `model` | `LINKCRM_LLM_API_KEY`, `LINKCRM_LLM_MODEL`, `LINKCRM_LLM_BASE_URL` |
//!
//! Base URLs are the platform's only: a tenant names a key, never a host.

use crate::error::ApiResult;
use crate::items;
use crate::App;
use serde_json::Value;

pub const PROVIDERS: [&str; 3] = ["dataforseo", "ahrefs", "llm"];

/// Credentials for one provider, and whose they are.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// `workspace` or `platform`.
    pub owner: &'static str,
    /// The secret parts by field name (`apiKey`, `login`, `password`) and plain ones (`model`).
    pub fields: std::collections::BTreeMap<String, String>,
}

impl Credentials {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The platform's credentials for `provider`, if configured.
pub fn platform(provider: &str) -> Option<Credentials> {
    let mut fields = std::collections::BTreeMap::new();
    match provider {
        "dataforseo" => {
            fields.insert("login".into(), env("LINKCRM_DATAFORSEO_LOGIN")?);
            fields.insert("password".into(), env("LINKCRM_DATAFORSEO_PASSWORD")?);
        }
        "ahrefs" => {
            fields.insert("apiKey".into(), env("LINKCRM_AHREFS_API_KEY")?);
        }
        "llm" => {
            fields.insert("apiKey".into(), env("LINKCRM_LLM_API_KEY")?);
            if let Some(m) = env("LINKCRM_LLM_MODEL") {
                fields.insert("model".into(), m);
            }
        }
        _ => return None,
    }
    Some(Credentials { owner: "platform", fields })
}

/// The platform's base URL for `provider` (the providers' own by default).
pub fn base_url(provider: &str) -> Option<String> {
    match provider {
        "dataforseo" => env("LINKCRM_DATAFORSEO_BASE_URL"),
        "ahrefs" => env("LINKCRM_AHREFS_BASE_URL"),
        "llm" => env("LINKCRM_LLM_BASE_URL"),
        _ => None,
    }
}

/// The workspace's own credentials for `provider`, else the platform's, else none.
pub async fn resolve(app: &App, ws: &str, provider: &str) -> ApiResult<Option<Credentials>> {
    let item = app.store.get(&crate::keys::provider_integration(ws, provider)).await?;
    Ok(of_item(app, item.as_ref(), provider))
}

/// [`resolve`] from the workspace's integration item, already read (`None`: it has none).
pub fn of_item(app: &App, item: Option<&linkcrm_storage::Item>, provider: &str) -> Option<Credentials> {
    if let Some(item) = item {
        let mut fields = std::collections::BTreeMap::new();
        if let Some(Value::Object(sealed)) = item.get("sealed") {
            for (k, v) in sealed {
                if let Some(open) = v.as_str().and_then(|s| app.open_sealed(s)) {
                    fields.insert(k.clone(), open);
                }
            }
        }
        if let Some(m) = items::str_of(item, "model") {
            fields.insert("model".into(), m.to_owned());
        }
        return Some(Credentials { owner: "workspace", fields });
    }
    platform(provider)
}
