//! Agencies and API keys as stored records: creation (CLI and bootstrap) and the server secret.

use crate::{auth, keys, outbox};
use linkcrm_domain::platform::{Agency, ApiKey, SCOPES};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, DynStore, Item, StoreError, TxOp};
use serde::Serialize;
use serde_json::{json, Value};

/// Serialises a domain record into a store item under `key`.
pub fn to_item<T: Serialize>(key: &linkcrm_storage::Key, entity: &str, record: &T, extra: Value) -> Item {
    let mut item = match serde_json::to_value(record).expect("records serialise") {
        Value::Object(m) => m,
        _ => unreachable!("records are objects"),
    };
    item.insert("PK".into(), key.pk.clone().into());
    item.insert("SK".into(), key.sk.clone().into());
    item.insert("entity".into(), entity.into());
    if let Value::Object(m) = extra {
        item.extend(m);
    }
    item
}

/// The two items of a key (lookup by hash, listing under its owner) for one transaction.
pub fn api_key_ops(key: &ApiKey, secret: &str) -> Vec<TxOp> {
    let hash = auth::hash_secret(secret);
    let auth_key = keys::api_key_auth(&hash);
    let auth_item = json!({
        "PK": auth_key.pk, "SK": auth_key.sk, "entity": "apiKeyAuth", "keyId": key.id, "agencyId": key.agency_id,
        "workspaceId": key.workspace_id, "scopes": key.scopes, "createdAt": key.created_at, "memberId": key.member_id,
    });
    let pointer = keys::api_key_pointer(&key.agency_id, key.workspace_id.as_deref(), &key.id);
    vec![
        TxOp::put_if(auth_item.as_object().cloned().expect("object"), Condition::NotExists),
        TxOp::put_if(to_item(&pointer, "apiKey", key, json!({ "hash": hash })), Condition::NotExists),
    ]
}

pub fn new_api_key(
    name: &str,
    agency_id: &str,
    workspace_id: Option<&str>,
    scopes: Vec<String>,
    secret: &str,
) -> ApiKey {
    ApiKey {
        id: linkcrm_domain::new_id(IdKind::ApiKey),
        name: name.to_owned(),
        scopes,
        agency_id: agency_id.to_owned(),
        workspace_id: workspace_id.map(str::to_owned),
        prefix: auth::display_prefix(secret),
        created_at: time::now_string(),
        last_used_at: None,
        revoked_at: None,
        member_id: None,
    }
}

/// Creates an agency with its first (agency) key; `secret` is used verbatim when given.
/// Returns the agency and the secret, which is shown once and stored only as a hash.
pub async fn create_agency(store: &DynStore, name: &str, secret: Option<String>) -> anyhow::Result<(Agency, String)> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty() && name.len() <= 200, "an agency name is 1 to 200 characters");
    let secret = secret.unwrap_or_else(|| auth::generate_secret(true));
    anyhow::ensure!(
        secret.len() >= 16 && secret.len() <= 256 && !secret.contains(char::is_whitespace),
        "a key is 16 to 256 characters without spaces"
    );
    let agency =
        Agency { id: linkcrm_domain::new_id(IdKind::Agency), name: name.to_owned(), created_at: time::now_string() };
    let key = new_api_key("Agency key", &agency.id, None, SCOPES.iter().map(|s| s.to_string()).collect(), &secret);
    let mut ops = vec![TxOp::put_if(
        to_item(
            &keys::agency(&agency.id),
            "agency",
            &agency,
            json!({ "version": 1, "workspaceCount": 0, "activeWorkspaceCount": 0 }),
        ),
        Condition::NotExists,
    )];
    ops.extend(api_key_ops(&key, &secret));
    ops.push(outbox::event("agency.created", None, json!({ "agencyId": agency.id, "name": agency.name })));
    store.transact(ops).await.map_err(|e| match e {
        StoreError::ConditionFailed { .. } => anyhow::anyhow!("that key is already in use"),
        other => anyhow::anyhow!(other),
    })?;
    // From now on the store is not empty: the server must not create a default agency.
    let _ = store.put(marker(), Some(Condition::NotExists)).await;
    Ok((agency, secret))
}

fn marker() -> Item {
    let k = keys::bootstrap();
    json!({ "PK": k.pk, "SK": k.sk, "entity": "bootstrap", "at": time::now_string() })
        .as_object()
        .cloned()
        .expect("object")
}

/// On a store no agency was ever created in, creates the first agency with `admin_key` (or a
/// generated key). Returns the new secret when it made one, so the caller can print it once.
pub async fn bootstrap(store: &DynStore, admin_key: Option<String>) -> anyhow::Result<Option<(Agency, String)>> {
    if store.get(&keys::bootstrap()).await?.is_some() {
        return Ok(None);
    }
    // Claim the bootstrap first so two starting processes do not both create an agency.
    match store.put(marker(), Some(Condition::NotExists)).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    create_agency(store, "Default agency", admin_key).await.map(Some)
}

/// The server's signing secret, created once per store and shared by every process using it.
pub async fn load_or_create_secret(store: &DynStore) -> Result<Vec<u8>, StoreError> {
    let key = keys::secret();
    if let Some(item) = store.get(&key).await? {
        let stored = item.get("secret").and_then(Value::as_str).unwrap_or_default();
        return match hex::decode(stored) {
            Ok(bytes) if !bytes.is_empty() => Ok(bytes),
            _ => Err(StoreError::Internal("the stored server secret is not hex".into())),
        };
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Internal(format!("no randomness: {e}")))?;
    let item = json!({ "PK": key.pk, "SK": key.sk, "entity": "secret", "secret": hex::encode(bytes) });
    match store.put(item.as_object().cloned().expect("object"), Some(Condition::NotExists)).await {
        Ok(()) => Ok(bytes.to_vec()),
        Err(StoreError::ConditionFailed { .. }) => Box::pin(load_or_create_secret(store)).await,
        Err(e) => Err(e),
    }
}
