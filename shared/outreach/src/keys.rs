//! Storage keys of the outreach records: mailboxes, send claims and counters, inbound messages,
//! suppression entries. The one place they are spelled (`docs/access-patterns.md` lists them).

use linkcrm_storage::Key;
use sha2::{Digest, Sha256};

/// A workspace's sending mailboxes: `WS#<ws>#MBXS` / `<mailbox id>`.
pub fn mailboxes_pk(ws: &str) -> String {
    format!("WS#{ws}#MBXS")
}
pub fn mailbox(ws: &str, id: &str) -> Key {
    Key::new(mailboxes_pk(ws), id)
}
/// A mailbox's IMAP checkpoint (`uidValidity`, `lastUid`) and poll lease.
pub fn imap_poll(mailbox: &str) -> Key {
    Key::new(format!("IMAPPOLL#{mailbox}"), "#")
}
/// Mailboxes with IMAP settings by when they are next due for a poll (GSI3 of mailbox items).
pub fn imap_due_pk() -> String {
    "IMAP#DUE".to_owned()
}
pub fn imap_due_sort(next_poll_at: &str, ws: &str, mailbox: &str) -> String {
    format!("{next_poll_at}#{ws}#{mailbox}")
}
/// A started OAuth connection of a mailbox, taken once by the callback.
pub fn oauth_state(state: &str) -> Key {
    Key::new(format!("OAUTHSTATE#{state}"), "#")
}
pub fn inbound_message(id: &str) -> Key {
    Key::new(format!("INBOUND#{id}"), "#")
}
/// One stored inbound message per workspace and `Message-ID`.
pub fn inbound_guard(ws: &str, message_id: &str) -> Key {
    Key::new(format!("INMSG#{ws}#{message_id}"), "#")
}
/// A workspace's inbound messages on GSI1.
pub fn inbound_pk(ws: &str) -> String {
    format!("WS#{ws}#INBOUND")
}
/// A workspace's suppression list, or the platform's.
pub fn suppression_pk(workspace: Option<&str>) -> String {
    match workspace {
        Some(ws) => format!("SUPP#WS#{ws}"),
        None => "SUPP#PLATFORM".to_owned(),
    }
}
/// One suppression entry: `email#<address>` or `domain#<domain>` in its scope.
pub fn suppression(workspace: Option<&str>, kind: &str, value: &str) -> Key {
    Key::new(suppression_pk(workspace), format!("{kind}#{value}"))
}
/// The platform's audit log: one item per operator action, newest last.
pub fn platform_audit(at: &str, id: &str) -> Key {
    Key::new("AUDIT#PLATFORM", format!("{at}#{id}"))
}
/// The platform mailbox's daily counters (shared by every workspace).
pub fn platform_send_cap(sk: &str) -> Key {
    Key::new("PLATFORM#SENDCAP", sk)
}
/// A send invocation's claim: taken before talking SMTP, so a send happens at most once.
pub fn send_claim(invocation: &str) -> Key {
    Key::new(format!("SENDCLAIM#{invocation}"), "#")
}
/// A workspace's per-mailbox and per-domain daily counters.
pub fn send_cap_pk(ws: &str) -> String {
    format!("WS#{ws}#SENDCAP")
}
/// The sort key of a mailbox's count of sends on a day.
pub fn mailbox_day(mailbox: &str, day: &str) -> String {
    format!("mbx#{mailbox}#{day}")
}
/// A workspace's count of sends to a recipient domain on a day.
pub fn domain_send_count(ws: &str, domain: &str, day: &str) -> Key {
    Key::new(send_cap_pk(ws), format!("dom#{domain}#{day}"))
}
/// A mailbox's count of sends on a day: the workspace's counter, or the platform's for the
/// platform mailbox.
pub fn mailbox_send_count(ws: &str, platform: bool, mailbox: &str, day: &str) -> Key {
    let sk = mailbox_day(mailbox, day);
    if platform {
        platform_send_cap(&sk)
    } else {
        Key::new(send_cap_pk(ws), sk)
    }
}
/// "The same message": same workspace, contact, subject and body (CONTRACT.md, Sending).
pub fn send_duplicate(ws: &str, contact: &str, subject: &str, body: &str) -> Key {
    Key::new(format!("SENDDUP#{}", digest(&[ws, contact, subject, body])), "#")
}
/// "A message with this subject went to this address" (within 24 h).
pub fn send_subject(ws: &str, to: &str, subject: &str) -> Key {
    Key::new(format!("SENDSUBJ#{}", digest(&[ws, &to.to_ascii_lowercase(), subject])), "#")
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}
/// A send's open, recorded once: `OPEN#<send invocation>` / `#`.
pub fn open_guard(invocation: &str) -> Key {
    Key::new(format!("OPEN#{invocation}"), "#")
}
