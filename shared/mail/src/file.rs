//! A mailer for local development: each email becomes an `.eml` file that any mail client opens.

use crate::{Accepted, MailError, Mailer, OutgoingEmail, SmtpSettings};
use async_trait::async_trait;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct FileMailer {
    dir: PathBuf,
}

impl FileMailer {
    /// Writes into `dir`, which is created on the first send if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileMailer { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for FileMailer {
    /// Whether the folder can be written.
    async fn verify(&self, _mailbox: &SmtpSettings) -> Result<(), MailError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Unavailable(format!("cannot create {}: {e}", self.dir.display())))
    }

    /// The mailbox settings are ignored: nothing leaves the machine.
    async fn send(&self, _mailbox: &SmtpSettings, email: &OutgoingEmail) -> Result<Accepted, MailError> {
        let bytes = email.render()?;
        let io = |e: std::io::Error| MailError::Unavailable(format!("writing to {}: {e}", self.dir.display()));
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        // Message ids are unique, and a name from one sorts files in sending order (uuid v7).
        let name: String = email
            .message_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "@.-_".contains(c) { c } else { '_' })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        // Write then rename, so a reader watching the folder never sees half a message.
        let partial = self.dir.join(format!(".{name}.eml.partial"));
        tokio::fs::write(&partial, &bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(Accepted { message_id: email.message_id.clone(), server_response: format!("written to {}", path.display()) })
    }
}
