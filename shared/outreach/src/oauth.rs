//! Mailboxes connected with OAuth 2.0 (Gmail, Microsoft 365): their IMAP logins use SASL XOAUTH2
//! with an access token refreshed from the sealed refresh token.

use crate::items as records;
use crate::polling::PollError;
use crate::App;
use linkcrm_storage::Item;

/// The access token an IMAP login of this mailbox uses, or `None` for a password mailbox.
pub async fn access_token(_app: &App, item: &Item) -> Result<Option<String>, PollError> {
    match records::str_of(item, "oauthProvider") {
        None => Ok(None),
        Some(_) => Err(PollError {
            code: "oauth_not_connected".into(),
            message: "the mailbox's OAuth connection is not finished".into(),
        }),
    }
}
