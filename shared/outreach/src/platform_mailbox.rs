//! The platform mailbox: one sending identity from the server's configuration, for a local
//! binary (or a deployment) whose workspaces have not added mailboxes of their own. A workspace
//! without an active mailbox sends through it; one with mailboxes uses its own unless a send names
//! this one (`mailboxId: "mbx_platform"`). Its daily cap counts the sends of every workspace
//! together (`PLATFORM#SENDCAP`), since it is one address towards the world.
//!
//! Configuration: `LINKCRM_SMTP_HOST` (required to enable it), `LINKCRM_SMTP_PORT` (587),
//! `LINKCRM_SMTP_SECURITY` (`starttls`, `tls` or `none`), `LINKCRM_SMTP_USERNAME`,
//! `LINKCRM_SMTP_PASSWORD` (read when sending, never stored), `LINKCRM_SMTP_FROM_ADDRESS`
//! (required), `LINKCRM_SMTP_FROM_NAME`, `LINKCRM_SMTP_DAILY_CAP` (200).

use linkcrm_domain::normalize::normalize_email;
use linkcrm_storage::Item;
use serde_json::json;

pub const ID: &str = "mbx_platform";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The platform mailbox as a mailbox item, when configured.
pub fn item() -> Option<Item> {
    let host = var("LINKCRM_SMTP_HOST")?;
    let Some(from) = var("LINKCRM_SMTP_FROM_ADDRESS").as_deref().and_then(normalize_email) else {
        tracing::warn!("LINKCRM_SMTP_HOST is set without a valid LINKCRM_SMTP_FROM_ADDRESS: no platform mailbox");
        return None;
    };
    let security = match var("LINKCRM_SMTP_SECURITY").as_deref() {
        Some("none") => "none",
        Some("tls") => "tls",
        _ => "starttls",
    };
    let mut m = json!({
        "id": ID, "workspaceId": null, "platform": true,
        "fromName": var("LINKCRM_SMTP_FROM_NAME").unwrap_or_default(), "fromAddress": from,
        "smtpHost": host, "smtpPort": var("LINKCRM_SMTP_PORT").and_then(|p| p.parse::<u16>().ok()).unwrap_or(587),
        "smtpUsername": var("LINKCRM_SMTP_USERNAME"), "security": security,
        "dailyCap": var("LINKCRM_SMTP_DAILY_CAP").and_then(|c| c.parse::<u32>().ok()).unwrap_or(200),
        "active": true,
    });
    if var("LINKCRM_SMTP_PASSWORD").is_some() {
        m["passwordRef"] = json!("env:LINKCRM_SMTP_PASSWORD");
    }
    m.as_object().cloned()
}

/// Whether a mailbox item is the platform's.
pub fn is_platform(mailbox: &Item) -> bool {
    mailbox.get("id").and_then(|v| v.as_str()) == Some(ID)
}
