//! Mailbox polling: new messages read over IMAP and handed to the inbound pipeline
//! (`crate::inbound::receive`) exactly as posted mail is, so threading, classification, bounces and
//! unsubscribes behave the same (docs/inbound-mail.md, "Reading mailboxes").
//!
//! - **Checkpoint.** `IMAPPOLL#<mailbox>` keeps (`uidValidity`, `lastUid`). A poll reads the UIDs
//!   above `lastUid` in batches; after each batch has committed it moves `lastUid` to the last
//!   message it recorded (or found already recorded). The first poll starts at `UIDNEXT` (nothing
//!   old is imported) unless the mailbox sets `backfillDays`; a changed `UIDVALIDITY` makes the
//!   poll read again every message since the day before its last successful poll.
//! - **Once.** Each message is recorded under its `Message-ID` (per workspace), or under
//!   `imap:<mailbox>:<sha-256 of the message>` without one, in the message's own transaction. A poller
//!   that dies after a commit but before the checkpoint moved reads the message again and finds it
//!   recorded; nothing is recorded twice and nothing is skipped. (A message without a
//!   `Message-ID` is known by the digest of its bytes, which survive a UIDVALIDITY change.)
//! - **One poller per mailbox.** A lease on the checkpoint item (`leaseUntil`, `leaseOwner`, taken
//!   with a condition) keeps two pollers (the timer and `POST /inbound/poll`, or two workers) off
//!   the same mailbox; a poller that died leaves a lease that runs out.
//! - **Failures.** A login, TLS or connection failure is written on the mailbox (`imapStatus`:
//!   code, message, time, consecutive failures) and the next poll backs off (interval × 2^failures,
//!   at most an hour); the checkpoint does not move, so nothing is lost.
//! - **Schedule.** Mailboxes with IMAP are on the due index (GSI3 `IMAP#DUE`, sorted by
//!   `nextPollAt`); the local binary's timer and, in AWS, the inbound worker's EventBridge schedule
//!   read it every `LINKCRM_IMAP_POLL_SECS` (120).
//! - **Routing.** A tenant mailbox's mail belongs to its workspace. Mail in the platform mailbox
//!   (`LINKCRM_IMAP_*`) belongs to the workspace of the send it answers (the `MSGID#` item of its
//!   `In-Reply-To`, `References` or a bounce's original message); mail answering nothing is
//!   counted as `unrouted` and left in the mailbox.

use crate::inbound::{self, Source};
use crate::items as records;
use crate::keys;
use crate::suppression::Channel;
use crate::App;
use linkcrm_core::context::Ctx;
use linkcrm_domain::time;
use linkcrm_mail::imap::{FetchedMessage, FolderSession, ImapAuth, ImapError, ImapSecurity, ImapSettings};
use linkcrm_mail::MailboxReader;
use linkcrm_storage::{Condition, Index, Item, Query, SortKey, StoreError, Update};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Messages fetched per IMAP command.
const BATCH: usize = 25;
/// At most this many messages per poll; the rest waits for the next one (which comes soon: the
/// mailbox stays due).
const MAX_PER_POLL: usize = 500;
/// A poller holds a mailbox this long past its last batch (`LINKCRM_IMAP_LEASE_SECS`, 120): a
/// poller that dies leaves a lease that runs out, and the next poll goes on from the checkpoint.
fn lease_ms() -> i64 {
    let secs = std::env::var("LINKCRM_IMAP_LEASE_SECS").ok().and_then(|v| v.parse::<i64>().ok()).unwrap_or(120);
    secs.max(1) * 1000
}
/// Backoff after failures: the interval doubled per failure, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Seconds between polls of a mailbox (`LINKCRM_IMAP_POLL_SECS`, 120).
pub fn interval() -> Duration {
    let secs = std::env::var("LINKCRM_IMAP_POLL_SECS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(120);
    Duration::from_secs(secs.max(1))
}

/// What one poll of one mailbox did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PollReport {
    pub mailbox_id: String,
    /// Messages recorded for the first time.
    pub found: u32,
    /// Messages read that were already recorded (a repeat after a crash, or a rescan).
    pub already_recorded: u32,
    /// Messages that could not be recorded (not a message, or a failed write); skipped.
    pub failed: u32,
    /// Platform mailbox only: messages that answer no send of ours.
    pub unrouted: u32,
    /// Another poller holds the mailbox now.
    pub busy: bool,
    /// Why the poll itself failed (the mailbox shows it too).
    pub error: Option<PollError>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PollError {
    pub code: String,
    pub message: String,
}

/// Everything a poll needs to know of a mailbox.
#[derive(Clone, Debug)]
pub struct PolledMailbox {
    pub id: String,
    /// `None` for the platform mailbox.
    pub workspace_id: Option<String>,
    pub item: Item,
}

impl PolledMailbox {
    fn platform(&self) -> bool {
        self.workspace_id.is_none()
    }
    fn backfill_days(&self) -> i64 {
        records::int_of(&self.item, "backfillDays").unwrap_or(0)
    }
}

/// Whether a mailbox item has IMAP settings.
pub fn has_imap(item: &Item) -> bool {
    records::str_of(item, "imapHost").is_some()
}

/// The platform mailbox's IMAP settings from the server's configuration, as a mailbox item:
/// `LINKCRM_IMAP_HOST` (enables it), `LINKCRM_IMAP_PORT` (993), `LINKCRM_IMAP_SECURITY`
/// (`tls` or `starttls`), `LINKCRM_IMAP_USERNAME` (default the SMTP username or address),
/// `LINKCRM_IMAP_PASSWORD` (default the SMTP password), `LINKCRM_IMAP_FOLDER` (INBOX).
pub fn platform_mailbox() -> Option<PolledMailbox> {
    let var = |n: &str| std::env::var(n).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let host = var("LINKCRM_IMAP_HOST")?;
    let mut item = crate::platform_mailbox::item().unwrap_or_default();
    let security = if var("LINKCRM_IMAP_SECURITY").as_deref() == Some("starttls") { "starttls" } else { "tls" };
    let default_port = if security == "tls" { 993 } else { 143 };
    item.insert("id".into(), json!(crate::platform_mailbox::ID));
    item.insert("imapHost".into(), json!(host));
    item.insert(
        "imapPort".into(),
        json!(var("LINKCRM_IMAP_PORT").and_then(|p| p.parse::<u16>().ok()).unwrap_or(default_port)),
    );
    item.insert("imapSecurity".into(), json!(security));
    let username = var("LINKCRM_IMAP_USERNAME")
        .or_else(|| var("LINKCRM_SMTP_USERNAME"))
        .or_else(|| var("LINKCRM_SMTP_FROM_ADDRESS"));
    item.insert("imapUsername".into(), json!(username));
    item.insert("imapFolder".into(), json!(var("LINKCRM_IMAP_FOLDER").unwrap_or_else(|| "INBOX".into())));
    if var("LINKCRM_IMAP_PASSWORD").is_some() {
        item.insert("imapPasswordRef".into(), json!("env:LINKCRM_IMAP_PASSWORD"));
    }
    Some(PolledMailbox { id: crate::platform_mailbox::ID.into(), workspace_id: None, item })
}

/// The IMAP settings of a mailbox, its secret resolved: an OAuth access token (refreshed when
/// near expiry), the IMAP password, or else the SMTP password.
async fn settings(app: &App, m: &PolledMailbox) -> Result<ImapSettings, PollError> {
    let item = &m.item;
    let security = match records::str_of(item, "imapSecurity") {
        Some("starttls") => ImapSecurity::StartTls,
        _ => ImapSecurity::Tls,
    };
    let port = records::int_of(item, "imapPort")
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(if security == ImapSecurity::Tls { 993 } else { 143 });
    let username = records::str_of(item, "imapUsername")
        .or_else(|| records::str_of(item, "smtpUsername"))
        .or_else(|| records::str_of(item, "fromAddress"))
        .unwrap_or_default()
        .to_owned();
    let auth = match crate::oauth::access_token(app, item).await? {
        Some(access_token) => ImapAuth::XOAuth2 { username, access_token },
        None => {
            let password = crate::mailboxes::imap_password_of(app, item).await.map_err(|e| PollError {
                code: "imap_password_unavailable".into(),
                message: format!("the IMAP password could not be read ({e})"),
            })?;
            ImapAuth::Password { username, password: password.unwrap_or_default() }
        }
    };
    Ok(ImapSettings {
        host: records::str_of(item, "imapHost").unwrap_or_default().to_owned(),
        port,
        security,
        auth,
        folder: records::str_of(item, "imapFolder").unwrap_or("INBOX").to_owned(),
        operator_configured: m.platform(),
    })
}

/// The checkpoint and lease of a mailbox.
#[derive(Clone, Debug, Default)]
struct Checkpoint {
    uid_validity: Option<u32>,
    last_uid: u32,
    last_success_at: Option<String>,
    /// Mail received before this is never imported: the first poll's time, less `backfillDays`.
    start_at: Option<String>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Takes the mailbox for this poller, or `None` if another holds it.
async fn lease(app: &App, mailbox: &str, owner: &str) -> Result<Option<Checkpoint>, StoreError> {
    let update = Update::new().set("leaseUntil", now_ms() + lease_ms()).set("leaseOwner", owner);
    match app
        .store
        .update(&keys::imap_poll(mailbox), update, Some(Condition::Below("leaseUntil".into(), now_ms())))
        .await
    {
        Ok(item) => Ok(Some(Checkpoint {
            uid_validity: records::int_of(&item, "uidValidity").and_then(|v| u32::try_from(v).ok()),
            last_uid: records::int_of(&item, "lastUid").and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            last_success_at: records::str_of(&item, "lastSuccessAt").map(str::to_owned),
            start_at: records::str_of(&item, "startAt").map(str::to_owned),
        })),
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Moves the checkpoint (only while this poller holds the lease).
async fn save(app: &App, mailbox: &str, owner: &str, cp: &Checkpoint, release: bool) -> Result<(), StoreError> {
    let mut u = Update::new().set("uidValidity", json!(cp.uid_validity)).set("lastUid", cp.last_uid);
    if let Some(at) = &cp.last_success_at {
        u = u.set("lastSuccessAt", at.clone());
    }
    if let Some(at) = &cp.start_at {
        u = u.set("startAt", at.clone());
    }
    if release {
        u = u.set("leaseUntil", 0);
    } else {
        u = u.set("leaseUntil", now_ms() + lease_ms());
    }
    let cond = Condition::Equals("leaseOwner".into(), json!(owner));
    match app.store.update(&keys::imap_poll(mailbox), u, Some(cond)).await {
        Ok(_) => Ok(()),
        // Lost the lease (it ran out and another poller took it): that poller goes on from the
        // last checkpoint; what this one recorded is deduplicated.
        Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps the lease (and nothing else) during a long read.
async fn renew(app: &App, mailbox: &str, owner: &str) -> Result<(), StoreError> {
    let u = Update::new().set("leaseUntil", now_ms() + lease_ms());
    let cond = Condition::Equals("leaseOwner".into(), json!(owner));
    match app.store.update(&keys::imap_poll(mailbox), u, Some(cond)).await {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn release(app: &App, mailbox: &str, owner: &str) {
    let u = Update::new().set("leaseUntil", 0);
    let cond = Condition::Equals("leaseOwner".into(), json!(owner));
    if let Err(e) = app.store.update(&keys::imap_poll(mailbox), u, Some(cond)).await {
        if !matches!(e, StoreError::ConditionFailed { .. }) {
            tracing::warn!(mailbox, error = %e, "could not release the mailbox poll lease");
        }
    }
}

/// Writes how the poll went on the mailbox (and when it is next due).
async fn record_status(app: &App, m: &PolledMailbox, error: Option<&PollError>) {
    let now = chrono::Utc::now();
    let failures = match error {
        None => 0,
        Some(_) => records::int_of(&m.item, "imapFailures").unwrap_or(0) + 1,
    };
    let wait = if failures == 0 {
        interval()
    } else {
        let factor = 2u32.saturating_pow(failures.clamp(0, 20) as u32);
        (interval() * factor).min(MAX_BACKOFF)
    };
    let next = time::format(now + chrono::Duration::from_std(wait).unwrap_or_default());
    let now_s = time::format(now);
    let mut u = Update::new()
        .set("imapLastPolledAt", now_s.clone())
        .set("imapFailures", failures)
        .set("imapNextPollAt", next.clone());
    match error {
        None => {
            u = u.set("imapLastSuccessAt", now_s).set("imapError", Value::Null);
        }
        Some(e) => {
            u = u.set("imapError", json!({ "code": e.code, "message": e.message, "at": now_s }));
        }
    }
    let (key, cond) = match &m.workspace_id {
        Some(ws) => {
            u = u.set("GSI3PK", keys::imap_due_pk()).set("GSI3SK", keys::imap_due_sort(&next, ws, &m.id));
            // Only while it still has IMAP settings (a PATCH may have removed them meanwhile).
            (keys::mailbox(ws, &m.id), Some(Condition::AttrPresent("imapHost".into())))
        }
        None => (keys::imap_poll(&m.id), None),
    };
    match app.store.update(&key, u, cond).await {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => tracing::warn!(mailbox = %m.id, error = %e, "could not record the poll's outcome"),
    }
}

fn poll_error(e: &ImapError) -> PollError {
    PollError { code: e.code().into(), message: e.to_string() }
}

/// Polls one mailbox now: reads what is new, records each message once, moves the checkpoint.
pub async fn poll(app: &Arc<App>, reader: &dyn MailboxReader, m: &PolledMailbox) -> PollReport {
    let mut report = PollReport { mailbox_id: m.id.clone(), ..PollReport::default() };
    let owner = uuid::Uuid::new_v4().to_string();
    let cp = match lease(app, &m.id, &owner).await {
        Ok(Some(cp)) => cp,
        Ok(None) => {
            report.busy = true;
            return report;
        }
        Err(e) => {
            report.error = Some(PollError { code: "store_unavailable".into(), message: e.to_string() });
            return report;
        }
    };
    let outcome = run(app, reader, m, &owner, cp, &mut report).await;
    if let Err(e) = &outcome {
        tracing::info!(mailbox = %m.id, code = %e.code, error = %e.message, "mailbox poll failed");
        report.error = Some(e.clone());
    }
    record_status(app, m, report.error.as_ref()).await;
    release(app, &m.id, &owner).await;
    report
}

async fn run(
    app: &Arc<App>,
    reader: &dyn MailboxReader,
    m: &PolledMailbox,
    owner: &str,
    mut cp: Checkpoint,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let settings = settings(app, m).await?;
    let mut folder = reader.open(&settings).await.map_err(|e| poll_error(&e))?;
    let result = read(app, folder.as_mut(), m, owner, &mut cp, report).await;
    folder.close().await;
    result
}

async fn read(
    app: &Arc<App>,
    folder: &mut dyn FolderSession,
    m: &PolledMailbox,
    owner: &str,
    cp: &mut Checkpoint,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let state = folder.state();
    let store_err = |e: StoreError| PollError { code: "store_unavailable".into(), message: e.to_string() };
    let today = chrono::Utc::now().date_naive();
    // Messages to read before the normal "after lastUid" reading, on a first poll with backfill or
    // after a UIDVALIDITY change (then UIDs start over and the checkpoint means nothing).
    let mut first: Vec<u32> = Vec::new();
    match cp.uid_validity {
        Some(v) if v == state.uid_validity => {}
        previous => {
            let since = match (previous, &cp.last_success_at) {
                (Some(_), Some(at)) => time::parse(at).map(|t| t.date_naive() - chrono::Duration::days(1)),
                (Some(_), None) => Some(today - chrono::Duration::days(1)),
                (None, _) if m.backfill_days() > 0 => Some(today - chrono::Duration::days(m.backfill_days())),
                (None, _) => None,
            };
            if let Some(since) = since {
                first = folder.uids_since(since).await.map_err(|e| poll_error(&e))?;
            }
            let top = match state.uid_next {
                Some(next) => next.saturating_sub(1),
                None => {
                    folder.uids_after(0, usize::MAX).await.map_err(|e| poll_error(&e))?.last().copied().unwrap_or(0)
                }
            };
            if cp.start_at.is_none() {
                let start = chrono::Utc::now() - chrono::Duration::days(m.backfill_days());
                cp.start_at = Some(time::format(start));
            }
            if previous.is_some() {
                tracing::warn!(mailbox = %m.id, from = ?previous, to = state.uid_validity, "UIDVALIDITY changed: reading again since {:?}", since);
            }
            // Everything up to `top` is covered by `first` (or deliberately not imported).
            cp.uid_validity = Some(state.uid_validity);
            cp.last_uid = top;
            first.retain(|u| *u <= top);
        }
    }
    let mut handled = 0usize;
    // The backfill or rescan list first. Until all of it is recorded the stored checkpoint stays
    // as it was (only the lease is renewed), so a poller that dies meanwhile does the list again
    // next time, finding what it already recorded.
    if !first.is_empty() {
        for chunk in first.chunks(BATCH) {
            let fetched = folder.fetch(chunk).await.map_err(|e| poll_error(&e))?;
            // IMAP's SINCE is by day; what came before the mailbox's start stays unread
            // (INTERNALDATE has whole seconds: the second of the start itself is read).
            let start = cp.start_at.as_deref().and_then(time::parse);
            for msg in fetched {
                if let (Some(start), Some(at)) = (start, msg.received_at) {
                    if at < start - chrono::Duration::seconds(1) {
                        continue;
                    }
                }
                record(app, m, &msg, report).await.map_err(store_err)?;
            }
            handled += chunk.len();
            renew(app, &m.id, owner).await.map_err(store_err)?;
        }
    }
    save(app, &m.id, owner, cp, false).await.map_err(store_err)?;
    loop {
        if handled >= MAX_PER_POLL {
            break;
        }
        let uids = folder.uids_after(cp.last_uid, BATCH).await.map_err(|e| poll_error(&e))?;
        if uids.is_empty() {
            break;
        }
        let fetched = folder.fetch(&uids).await.map_err(|e| poll_error(&e))?;
        for msg in &fetched {
            record(app, m, msg, report).await.map_err(store_err)?;
            cp.last_uid = cp.last_uid.max(msg.uid);
        }
        // UIDs expunged between the search and the fetch are passed over.
        if let Some(last) = uids.last() {
            cp.last_uid = cp.last_uid.max(*last);
        }
        handled += uids.len();
        save(app, &m.id, owner, cp, false).await.map_err(store_err)?;
    }
    cp.last_success_at = Some(time::now_string());
    save(app, &m.id, owner, cp, true).await.map_err(store_err)?;
    Ok(())
}

/// Records one message. A store failure stops the poll (the checkpoint stays before the message);
/// a message the pipeline refuses (not a message at all) is counted and passed over.
async fn record(
    app: &Arc<App>,
    m: &PolledMailbox,
    msg: &FetchedMessage,
    report: &mut PollReport,
) -> Result<(), StoreError> {
    let raw = String::from_utf8_lossy(&msg.raw);
    let workspace = match &m.workspace_id {
        Some(ws) => Some(ws.clone()),
        None => route(app, &msg.raw).await?,
    };
    let Some(ws) = workspace else {
        report.unrouted += 1;
        return Ok(());
    };
    let Some(ctx) = Ctx::for_workspace(app, &ws, "system:imap-poller").await? else {
        report.failed += 1;
        return Ok(());
    };
    let source = Source {
        channel: if m.platform() { Channel::PlatformMailbox } else { Channel::PolledMailbox },
        mailbox_id: Some(m.id.clone()),
        // Not the UID: UIDs start over when UIDVALIDITY changes, the bytes do not.
        fallback_id: Some(format!("imap:{}:{}", m.id, content_digest(&msg.raw))),
    };
    match inbound::receive(&ctx, &raw, source).await {
        Ok(reply) if reply.status == Some(axum::http::StatusCode::OK) => report.already_recorded += 1,
        Ok(_) => report.found += 1,
        Err(e) if e.status.is_client_error() => {
            tracing::info!(mailbox = %m.id, uid = msg.uid, code = %e.code, "a polled message was not recorded");
            report.failed += 1;
        }
        Err(e) => {
            tracing::warn!(mailbox = %m.id, uid = msg.uid, code = %e.code, error = %e.message, "recording a polled message failed");
            return Err(StoreError::Unavailable(e.message));
        }
    }
    Ok(())
}

fn content_digest(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(raw))
}

/// The workspace of the send a message answers (platform mailbox): the `MSGID#` item of its
/// bounce's original, its `In-Reply-To`, or its `References`, newest first.
async fn route(app: &App, raw: &[u8]) -> Result<Option<String>, StoreError> {
    let Ok(email) = linkcrm_mail::parse(raw) else { return Ok(None) };
    let mut candidates = Vec::new();
    if let Some(b) = &email.bounce {
        candidates.extend(b.original_message_id.clone());
    }
    candidates.extend(email.in_reply_to.clone());
    candidates.extend(email.references.iter().rev().cloned());
    for mid in candidates {
        if let Some(item) = app.store.get(&linkcrm_crm::keys::message_id(&mid)).await? {
            if let Some(ws) = records::str_of(&item, "workspaceId") {
                return Ok(Some(ws.to_owned()));
            }
        }
    }
    Ok(None)
}

/// The tenant mailboxes due for a poll now, oldest due first (GSI3 `IMAP#DUE`), at most `limit`.
pub async fn due(app: &App, limit: usize) -> Result<Vec<PolledMailbox>, StoreError> {
    let now = time::now_string();
    let q = Query::index(Index::Gsi3, keys::imap_due_pk()).sk(SortKey::Before(format!("{now}~"))).limit(limit);
    let page = app.store.query(q).await?;
    Ok(page.items.into_iter().filter_map(polled).collect())
}

/// A stored mailbox item as something to poll, if it has IMAP settings.
pub fn polled(item: Item) -> Option<PolledMailbox> {
    if !has_imap(&item) {
        return None;
    }
    Some(PolledMailbox {
        id: records::str_of(&item, "id")?.to_owned(),
        workspace_id: Some(records::str_of(&item, "workspaceId")?.to_owned()),
        item,
    })
}

/// What one run of the schedule did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleReport {
    pub polled: usize,
    pub found: u32,
    pub failed_mailboxes: usize,
    pub busy: usize,
}

/// One run of the schedule, in-process (the local binary): every due mailbox, and the platform
/// mailbox, polled a few at a time.
pub async fn poll_due(app: &Arc<App>, reader: &dyn MailboxReader, limit: usize) -> Result<ScheduleReport, StoreError> {
    let mut boxes = due(app, limit).await?;
    if let Some(platform) = platform_mailbox() {
        let state = app.store.get(&keys::imap_poll(&platform.id)).await?;
        let next = state.as_ref().and_then(|s| records::str_of(s, "imapNextPollAt")).map(str::to_owned);
        if next.is_none_or(|n| n <= time::now_string()) {
            let mut platform = platform;
            // Its failure count lives on its poll item (there is no mailbox item to keep it).
            if let Some(f) = state.as_ref().and_then(|s| s.get("imapFailures")).cloned() {
                platform.item.insert("imapFailures".into(), f);
            }
            boxes.push(platform);
        }
    }
    let mut report = ScheduleReport::default();
    for chunk in boxes.chunks(4) {
        let polls = chunk.iter().map(|m| poll(app, reader, m));
        for r in futures::future::join_all(polls).await {
            report.polled += 1;
            report.found += r.found;
            report.failed_mailboxes += usize::from(r.error.is_some());
            report.busy += usize::from(r.busy);
        }
    }
    Ok(report)
}

/// The IMAP reader for `app`: the app's network guard (`LINKCRM_ALLOW_PRIVATE_TARGETS`) and the
/// extra CAs of `LINKCRM_IMAP_CA_FILE`, read once.
pub fn reader(app: &App) -> Result<linkcrm_mail::ImapReader, String> {
    static READER: std::sync::OnceLock<Result<linkcrm_mail::ImapReader, String>> = std::sync::OnceLock::new();
    let base = READER.get_or_init(|| linkcrm_mail::ImapReader::from_env().map_err(|e| e.to_string()));
    base.as_ref().map(|r| r.clone().with_guard(app.config.guard())).map_err(Clone::clone)
}

/// The job kind of one mailbox's poll (AWS: the inbound queue and worker).
pub const JOB_KIND: &str = "mailbox_poll";

/// One run of the schedule in AWS (the inbound worker's EventBridge rule): each due mailbox gets
/// a poll job, committed with its next due time moved one interval on (so the next run does not
/// queue it again while the job waits); the relay forwards the jobs to the inbound queue, where
/// the worker polls. The platform mailbox is queued the same way when due.
pub async fn enqueue_due(app: &App, limit: usize) -> Result<ScheduleReport, StoreError> {
    use linkcrm_jobs::{Job, StoreQueue};
    let mut report = ScheduleReport::default();
    let next = time::format(chrono::Utc::now() + chrono::Duration::from_std(interval()).unwrap_or_default());
    let job_op = |payload: Value| {
        StoreQueue::enqueue_op(linkcrm_domain::jobs::WORK_QUEUE, &Job::new(JOB_KIND, payload), Duration::ZERO)
            .map_err(|e| StoreError::Invalid(e.to_string()))
    };
    for m in due(app, limit).await? {
        let Some(ws) = m.workspace_id.clone() else { continue };
        let seen = records::str_of(&m.item, "imapNextPollAt").map(str::to_owned);
        let bump =
            Update::new().set("imapNextPollAt", next.clone()).set("GSI3SK", keys::imap_due_sort(&next, &ws, &m.id));
        let ops = vec![
            linkcrm_storage::TxOp::update_if(
                keys::mailbox(&ws, &m.id),
                bump,
                match &seen {
                    Some(s) => Condition::Equals("imapNextPollAt".into(), json!(s)),
                    None => Condition::And(vec![
                        Condition::AttrPresent("imapHost".into()),
                        Condition::AttrAbsent("imapNextPollAt".into()),
                    ]),
                },
            ),
            job_op(json!({ "workspaceId": ws, "mailboxId": m.id }))?,
        ];
        match app.store.transact(ops).await {
            Ok(()) => report.polled += 1,
            // Another run queued it, or its settings changed meanwhile.
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => report.busy += 1,
            Err(e) => return Err(e),
        }
    }
    if let Some(platform) = platform_mailbox() {
        let state = app.store.get(&keys::imap_poll(&platform.id)).await?;
        let seen = state.as_ref().and_then(|s| records::str_of(s, "imapNextPollAt")).map(str::to_owned);
        if seen.as_deref().is_none_or(|n| n <= time::now_string().as_str()) {
            let ops = vec![
                linkcrm_storage::TxOp::update_if(
                    keys::imap_poll(&platform.id),
                    Update::new().set("imapNextPollAt", next.clone()),
                    match &seen {
                        Some(s) => Condition::Equals("imapNextPollAt".into(), json!(s)),
                        None => Condition::AttrAbsent("imapNextPollAt".into()),
                    },
                ),
                job_op(json!({ "mailboxId": platform.id }))?,
            ];
            match app.store.transact(ops).await {
                Ok(()) => report.polled += 1,
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => report.busy += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

/// Handles one `mailbox_poll` job: polls the mailbox it names. A failure to read the mailbox is
/// recorded on it (and backs off); the job itself is done either way. Only a store that cannot be
/// reached makes it a retry.
pub async fn handle_job(app: &Arc<App>, job: &linkcrm_jobs::Job) -> Result<(), linkcrm_jobs::HandlerError> {
    use linkcrm_jobs::HandlerError;
    let mailbox = job.payload.get("mailboxId").and_then(Value::as_str).unwrap_or_default();
    let m = match job.payload.get("workspaceId").and_then(Value::as_str) {
        None if mailbox == crate::platform_mailbox::ID => platform_mailbox(),
        None => None,
        Some(ws) => {
            let item = app.store.get(&keys::mailbox(ws, mailbox)).await.map_err(|e| {
                tracing::warn!(error = %e, "mailbox poll job will be retried");
                HandlerError::Retry { after: Duration::from_secs(5) }
            })?;
            item.and_then(polled)
        }
    };
    // The mailbox is gone, or no longer has IMAP settings: nothing to do.
    let Some(m) = m else { return Ok(()) };
    let reader = reader(app).map_err(HandlerError::Fail)?;
    let report = poll(app, &reader, &m).await;
    match &report.error {
        Some(e) if e.code == "store_unavailable" => Err(HandlerError::Retry { after: Duration::from_secs(5) }),
        _ => Ok(()),
    }
}
