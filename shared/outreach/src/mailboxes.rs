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
