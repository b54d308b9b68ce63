//! Sending mailboxes as records: what the send job needs from one besides its settings.

use crate::items as records;
use linkcrm_storage::Item;

/// The password a send should use: unsealed, or read from the referenced environment variable.
pub async fn password_of(app: &crate::App, item: &Item) -> Result<Option<String>, crate::secret_refs::RefError> {
    if let Some(sealed) = records::str_of(item, "passwordSealed") {
        return Ok(app.open_sealed(sealed));
    }
    match records::str_of(item, "passwordRef") {
        Some(r) => crate::secret_refs::resolve(r).await.map(Some),
        None => Ok(None),
    }
}

/// The password IMAP logins use: the IMAP one (sealed or a reference), or else the SMTP one.
pub async fn imap_password_of(app: &crate::App, item: &Item) -> Result<Option<String>, crate::secret_refs::RefError> {
    if let Some(sealed) = records::str_of(item, "imapPasswordSealed") {
        return Ok(app.open_sealed(sealed));
    }
    match records::str_of(item, "imapPasswordRef") {
        Some(r) => crate::secret_refs::resolve(r).await.map(Some),
        None => password_of(app, item).await,
    }
}

/// One mailbox's health: SMTP from the recorded outcome of its last sends, IMAP from its poller.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailboxHealth {
    pub mailbox_id: String,
    pub from_address: String,
    pub smtp: linkcrm_core::health::Health,
    pub imap: linkcrm_core::health::Health,
}

/// The health of every mailbox of a workspace (one Query, one BatchGetItem of recorded outcomes).
pub async fn health(app: &crate::App, ws: &str) -> Result<Vec<MailboxHealth>, linkcrm_storage::StoreError> {
    Ok(health_of_items(app, ws).await?.into_iter().map(|(h, _)| h).collect())
}

/// [`health`], each with the mailbox's item (for [`probe_smtp`]).
pub async fn health_of_items(
    app: &crate::App,
    ws: &str,
) -> Result<Vec<(MailboxHealth, Item)>, linkcrm_storage::StoreError> {
    use linkcrm_core::health::{self, Health, Status};
    use linkcrm_core::items::str_of;
    let page = app.store.query(linkcrm_storage::Query::partition(crate::keys::mailboxes_pk(ws)).limit(100)).await?;
    let keys: Vec<_> =
        page.items.iter().filter_map(|m| str_of(m, "id").map(|id| health::key(ws, &format!("smtp:{id}")))).collect();
    let recorded = if keys.is_empty() { Vec::new() } else { app.store.batch_get(&keys).await? };
    Ok(page
        .items
        .iter()
        .filter_map(|m| {
            let id = str_of(m, "id")?.to_owned();
            let smtp_key = health::key(ws, &format!("smtp:{id}"));
            let smtp = recorded
                .iter()
                .find(|r| linkcrm_storage::Key::of(r).as_ref() == Some(&smtp_key))
                .map(Health::of_record)
                .unwrap_or_else(|| Health { status: Status::Healthy, last_checked_at: None, last_error: None });
            let imap = match str_of(m, "imapHost") {
                None => Health { status: Status::NotConnected, last_checked_at: None, last_error: None },
                Some(_) => {
                    let error = m.get("imapError").filter(|v| !v.is_null()).cloned();
                    let revoked = str_of(m, "oauthStatus") == Some("revoked");
                    let polled = str_of(m, "imapLastPolledAt").map(str::to_owned);
                    let status = match (&error, &polled) {
                        _ if revoked => Status::Error,
                        (Some(_), _) if m.get("imapFailures").and_then(serde_json::Value::as_i64).unwrap_or(0) >= 3 => {
                            Status::Error
                        }
                        (Some(_), _) => Status::Warning,
                        (None, None) => Status::Warning,
                        (None, Some(_)) => Status::Healthy,
                    };
                    Health { status, last_checked_at: polled, last_error: error }
                }
            };
            let h = MailboxHealth {
                mailbox_id: id,
                from_address: str_of(m, "fromAddress").unwrap_or_default().to_owned(),
                smtp,
                imap,
            };
            Some((h, m.clone()))
        })
        .collect())
}

/// Opens an SMTP session with the mailbox's server (TLS and login as a send would, then QUIT) and
/// records the outcome as its SMTP health. `None` when its password cannot be read right now.
pub async fn probe_smtp(
    app: &crate::App,
    mailer: &dyn linkcrm_mail::Mailer,
    ws: &str,
    item: &Item,
    previous_error: Option<serde_json::Value>,
) -> Option<linkcrm_core::health::Health> {
    use linkcrm_core::health::{self, Health, Outcome};
    use linkcrm_mail::MailError;
    let id = linkcrm_core::items::str_of(item, "id")?;
    let settings = match crate::sending::smtp_settings(app, item).await {
        Ok(s) => s,
        Err(crate::secret_refs::RefError::Missing(_)) => {
            let o = Outcome::Failed {
                code: "smtp_credentials_missing",
                message: "The mailbox's password or token is missing.",
            };
            let h = Health::now(&o, None);
            health::record(app, ws, &format!("smtp:{id}"), o).await;
            return Some(h);
        }
        Err(_) => return None,
    };
    let outcome = match mailer.verify(&settings).await {
        Ok(()) => Outcome::Ok,
        Err(MailError::Rejected { .. }) => {
            Outcome::Failed { code: "smtp_login_refused", message: "The mail server refused the login." }
        }
        Err(MailError::Deferred { .. }) => {
            Outcome::Failed { code: "smtp_deferred", message: "The mail server refused the session for now." }
        }
        Err(_) => Outcome::Failed {
            code: "smtp_unavailable",
            message: "The mail server could not be reached or refused the session.",
        },
    };
    let h = Health::now(&outcome, previous_error);
    health::record(app, ws, &format!("smtp:{id}"), outcome).await;
    Some(h)
}
