//! `mailboxes.*`: a workspace's sending identities. The SMTP password is write-only: sealed at
//! rest (see `secrets.rs`) or named as a secret reference, and never returned.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::list::{self, ListResponse};
use crate::{lenient, outbox};
use linkcrm_crm::records;
use linkcrm_crm::write::check_id;
use linkcrm_domain::normalize::{normalize_domain, normalize_email};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, Item, Query, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TAG: &str = "Mailboxes";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Upgrade a plain connection with STARTTLS, refusing to send if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (local development only).
    None,
}

/// A sending identity as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mailbox {
    pub id: String,
    pub workspace_id: String,
    pub from_name: String,
    pub from_address: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_username: Option<String>,
    pub security: Security,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    /// Where the password comes from instead, e.g. `env:SMTP_PASSWORD`.
    pub password_ref: Option<String>,
    /// Sends per UTC day at most.
    pub daily_cap: u32,
    pub active: bool,
    /// Where replies are read from (IMAP); absent when the mailbox is not polled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<ImapView>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    Tls,
    /// A plain connection upgraded with STARTTLS (port 143), refused if the server cannot.
    Starttls,
}

/// A mailbox's IMAP settings and how its polling goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImapView {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: Option<String>,
    pub folder: String,
    /// Days of earlier mail the first poll reads (0: only what arrives after it).
    pub backfill_days: u32,
    /// Whether an IMAP password is stored (never returned); without one the SMTP password is used.
    pub has_password: bool,
    pub password_ref: Option<String>,
    /// `gmail` or `outlook` for a mailbox connected with OAuth (XOAUTH2).
    pub oauth_provider: Option<String>,
    /// For an OAuth mailbox: `pending` (waiting for consent), `connected`, or `revoked` (the
    /// provider refused the refresh token: connect it again).
    pub oauth_status: Option<String>,
    /// `ok`, `failing` (the last poll failed: see `lastError`), or `pending` (not polled yet).
    pub status: String,
    pub last_polled_at: Option<String>,
    pub last_success_at: Option<String>,
    pub next_poll_at: Option<String>,
    /// Polls failed in a row; each doubles the wait before the next (at most an hour).
    pub consecutive_failures: u32,
    /// The last poll's failure: `code` (`imap_login_failed`, `imap_tls_failed`,
    /// `imap_unreachable`, ...), `message`, `at`.
    pub last_error: Option<Value>,
}

fn imap_view(item: &Item) -> Option<ImapView> {
    let host = records::str_of(item, "imapHost")?.to_owned();
    let security = match records::str_of(item, "imapSecurity") {
        Some("starttls") => ImapSecurity::Starttls,
        _ => ImapSecurity::Tls,
    };
    let failures = records::int_of(item, "imapFailures").unwrap_or(0).max(0) as u32;
    let last_error = item.get("imapError").filter(|v| !v.is_null()).cloned();
    let status = match (records::str_of(item, "imapLastPolledAt"), &last_error) {
        (None, None) => "pending",
        (_, Some(_)) => "failing",
        _ => "ok",
    };
    Some(ImapView {
        host,
        port: records::int_of(item, "imapPort").unwrap_or(993) as u16,
        security,
        username: records::str_of(item, "imapUsername").map(str::to_owned),
        folder: records::str_of(item, "imapFolder").unwrap_or("INBOX").to_owned(),
        backfill_days: records::int_of(item, "backfillDays").unwrap_or(0).max(0) as u32,
        has_password: item.get("imapPasswordSealed").is_some_and(|v| !v.is_null()),
        password_ref: records::str_of(item, "imapPasswordRef").map(str::to_owned),
        oauth_provider: records::str_of(item, "oauthProvider").map(str::to_owned),
        oauth_status: records::str_of(item, "oauthStatus").map(str::to_owned),
        status: status.to_owned(),
        last_polled_at: records::str_of(item, "imapLastPolledAt").map(str::to_owned),
        last_success_at: records::str_of(item, "imapLastSuccessAt").map(str::to_owned),
        next_poll_at: records::str_of(item, "imapNextPollAt").map(str::to_owned),
        consecutive_failures: failures,
        last_error,
    })
}

/// IMAP settings as given on create or update, checked.
struct ImapInput {
    host: Option<Option<String>>,
    port: Option<u16>,
    security: Option<ImapSecurity>,
    username: Option<Option<String>>,
    password: Option<String>,
    password_ref: Option<String>,
    folder: Option<String>,
    backfill_days: Option<u32>,
}

impl ImapInput {
    fn given(&self) -> bool {
        self.host.is_some()
            || self.port.is_some()
            || self.security.is_some()
            || self.username.is_some()
            || self.password.is_some()
            || self.password_ref.is_some()
            || self.folder.is_some()
            || self.backfill_days.is_some()
    }

    /// The update of an item's IMAP attributes. `had` says whether the mailbox has IMAP now.
    async fn apply(self, ctx: &Ctx, ws: &str, id: &str, had: bool, mut u: Update) -> ApiResult<Update> {
        if !self.given() {
            return Ok(u);
        }
        if let Some(None) = self.host {
            // Polling stops: the settings, the secret and the due-index entry go.
            for a in [
                "imapHost",
                "imapPort",
                "imapSecurity",
                "imapUsername",
                "imapFolder",
                "backfillDays",
                "imapPasswordSealed",
                "imapPasswordRef",
                "imapError",
                "imapFailures",
                "imapNextPollAt",
                "GSI3PK",
                "GSI3SK",
            ] {
                u = u.remove(a);
            }
            return Ok(u);
        }
        if !had && !matches!(self.host, Some(Some(_))) {
            // The body is well formed; the mailbox has no IMAP server these settings could apply to.
            let mut e =
                ApiError::invalid_field("imapHost", "imap_host_required", "is required to read this mailbox over IMAP");
            e.status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Err(e);
        }
        if let Some(Some(h)) = &self.host {
            u = u.set("imapHost", check_host(ctx, "imapHost", h).await?);
        }
        let security = self.security.unwrap_or(ImapSecurity::Tls);
        if let Some(s) = self.security {
            u = u.set("imapSecurity", json!(s));
        } else if !had {
            u = u.set("imapSecurity", json!(security));
        }
        match self.port {
            Some(0) => return Err(ApiError::invalid_field("imapPort", "invalid_request", "must be 1 to 65535")),
            Some(p) => u = u.set("imapPort", p),
            None if !had => u = u.set("imapPort", if security == ImapSecurity::Tls { 993 } else { 143 }),
            None => {}
        }
        if let Some(user) = self.username {
            u = u.set("imapUsername", json!(crate::validate::text("imapUsername", user, 320)?));
        }
        if let Some(f) = self.folder {
            let f = crate::validate::header_text("imapFolder", Some(f), 200)?
                .ok_or_else(|| ApiError::invalid_field("imapFolder", "invalid_request", "cannot be empty"))?;
            u = u.set("imapFolder", f);
        } else if !had {
            u = u.set("imapFolder", "INBOX");
        }
        if let Some(d) = self.backfill_days {
            if d > 365 {
                return Err(ApiError::invalid_field("backfillDays", "invalid_request", "must be 0 to 365"));
            }
            u = u.set("backfillDays", d);
        }
        match (self.password, self.password_ref) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_field(
                    "imapPasswordRef",
                    "invalid_request",
                    "give imapPassword or imapPasswordRef, not both",
                ))
            }
            (Some(p), None) => u = u.set("imapPasswordSealed", ctx.app.seal(&p)).remove("imapPasswordRef"),
            (None, Some(r)) => {
                u = u.set("imapPasswordRef", check_ref("imapPasswordRef", &r)?).remove("imapPasswordSealed")
            }
            (None, None) => {}
        }
        // Changed settings are tried at once, with a clean slate.
        let now = time::now_string();
        Ok(u.set("imapNextPollAt", now.clone())
            .set("imapFailures", 0)
            .remove("imapError")
            .set("GSI3PK", crate::keys::imap_due_pk())
            .set("GSI3SK", crate::keys::imap_due_sort(&now, ws, id)))
    }
}

use crate::keys::mailbox as key;

/// A mail server's host as given, if it may be used: a host name or IP address that is not, and
/// does not now resolve to, a private, loopback, link-local or metadata address (the SSRF guard,
/// which also vets every connection at send time). A name that does not resolve yet is accepted;
/// the send-time check decides then.
async fn check_host(ctx: &Ctx, field: &'static str, raw: &str) -> ApiResult<String> {
    let host = raw.trim().to_ascii_lowercase();
    let ip_like = host.parse::<std::net::IpAddr>().is_ok();
    if !(ip_like || host == "localhost" || normalize_domain(&host).is_ok()) {
        return Err(ApiError::invalid_field(field, "invalid_request", "must be a host name or an IP address"));
    }
    use linkcrm_netguard::GuardError;
    match ctx.app.config.guard().resolve(&host, 25).await {
        Ok(_) | Err(GuardError::Unresolvable { .. } | GuardError::Connect { .. }) => Ok(host),
        Err(e) => {
            tracing::info!(error = %e, "mailbox host refused by the network guard");
            Err(ApiError::invalid_field(
                field,
                "invalid_host",
                "is not allowed: a mail server must be at a public internet address",
            ))
        }
    }
}

fn check_ref(field: &'static str, raw: &str) -> ApiResult<String> {
    if crate::secret_refs::is_reference(raw) {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::invalid_field(field, "invalid_request", "must be env:NAME or a Secrets Manager ARN"))
    }
}

fn view(item: &Item) -> ApiResult<Mailbox> {
    let mut m: Mailbox = records::parse("mailbox", item)?;
    m.has_password = item.get("passwordSealed").is_some_and(|v| !v.is_null());
    m.imap = imap_view(item);
    Ok(m)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("allOf" = [{ "not": { "required": ["password", "passwordRef"] } },
                              { "not": { "required": ["imapPassword", "imapPasswordRef"] } }]))]
pub struct CreateInput {
    #[schemars(length(max = 200), pattern(crate::rules::ONE_LINE))]
    pub from_name: String,
    #[schemars(pattern(crate::rules::EMAIL))]
    pub from_address: String,
    #[schemars(pattern(crate::rules::HOST))]
    pub smtp_host: String,
    /// 587 by default.
    #[schemars(range(min = 1))]
    pub smtp_port: Option<u16>,
    #[schemars(length(max = 320))]
    pub smtp_username: Option<String>,
    /// Write-only; stored sealed.
    pub password: Option<String>,
    /// Instead of `password`: `env:NAME` or a Secrets Manager ARN.
    #[schemars(pattern(crate::rules::SECRET_REF))]
    pub password_ref: Option<String>,
    pub security: Option<Security>,
    /// 50 by default, at most 10,000.
    #[schemars(range(min = 1, max = 10000))]
    pub daily_cap: Option<u32>,
    /// Read replies from this IMAP server (the poller); leave out to only send.
    #[schemars(pattern(crate::rules::HOST))]
    pub imap_host: Option<String>,
    /// 993 with `tls` (the default), 143 with `starttls`.
    #[schemars(range(min = 1))]
    pub imap_port: Option<u16>,
    pub imap_security: Option<ImapSecurity>,
    /// Defaults to smtpUsername, then fromAddress.
    #[schemars(length(max = 320))]
    pub imap_username: Option<String>,
    /// Write-only; stored sealed. Without it (or imapPasswordRef) the SMTP password is used.
    pub imap_password: Option<String>,
    #[schemars(pattern(crate::rules::SECRET_REF))]
    pub imap_password_ref: Option<String>,
    /// `INBOX` by default.
    #[schemars(length(min = 1, max = 200), pattern(crate::rules::ONE_LINE))]
    pub imap_folder: Option<String>,
    /// Days of earlier mail the first poll reads (default 0: only mail arriving after it).
    #[schemars(range(max = 365))]
    pub backfill_days: Option<u32>,
}

pub struct Create;
impl Operation for Create {
    const NAME: &'static str = "mailboxes.create";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Add a sending mailbox (SMTP); the password is never returned";
    const TAG: &'static str = TAG;
    type Input = CreateInput;
    type Output = Mailbox;

    async fn run(ctx: Ctx, input: CreateInput) -> ApiResult<Reply<Mailbox>> {
        let ws = ctx.workspace().to_owned();
        let from_name = crate::validate::header_text("fromName", Some(input.from_name), 200)?
            .ok_or_else(|| ApiError::invalid_field("fromName", "invalid_request", "is required"))?;
        let from_address = normalize_email(&input.from_address)
            .ok_or_else(|| ApiError::invalid_field("fromAddress", "invalid_email", "is not an email address"))?;
        let smtp_host = check_host(&ctx, "smtpHost", &input.smtp_host).await?;
        let smtp_port = input.smtp_port.unwrap_or(587);
        if smtp_port == 0 {
            return Err(ApiError::invalid_field("smtpPort", "invalid_request", "must be 1 to 65535"));
        }
        let daily_cap = input.daily_cap.unwrap_or(50);
        if !(1..=10_000).contains(&daily_cap) {
            return Err(ApiError::invalid_field("dailyCap", "invalid_request", "must be 1 to 10000"));
        }
        if input.password.is_some() && input.password_ref.is_some() {
            return Err(ApiError::invalid_field(
                "passwordRef",
                "invalid_request",
                "give password or passwordRef, not both",
            ));
        }
        let password_ref = input.password_ref.as_deref().map(|r| check_ref("passwordRef", r)).transpose()?;
        let sealed = input.password.as_deref().map(|p| ctx.app.seal(p));
        let now = time::now_string();
        let id = linkcrm_domain::new_id(IdKind::Mailbox);
        let m = Mailbox {
            id: id.clone(),
            workspace_id: ws.clone(),
            from_name,
            from_address,
            smtp_host,
            smtp_port,
            smtp_username: crate::validate::text("smtpUsername", input.smtp_username, 320)?,
            security: input.security.unwrap_or(Security::Starttls),
            has_password: sealed.is_some(),
            password_ref,
            daily_cap,
            active: true,
            imap: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let k = key(&ws, &id);
        let mut item = crate::platform::to_item(&k, "mailbox", &m, json!({ "version": 1 }));
        item.insert("passwordSealed".into(), json!(sealed));
        let imap = ImapInput {
            host: input.imap_host.map(Some),
            port: input.imap_port,
            security: input.imap_security,
            username: input.imap_username.map(Some),
            password: input.imap_password,
            password_ref: input.imap_password_ref,
            folder: input.imap_folder,
            backfill_days: input.backfill_days,
        };
        imap.apply(&ctx, &ws, &id, false, Update::new()).await?.apply(&mut item).map_err(|e| {
            tracing::error!(error = %e, "mailbox IMAP settings");
            ApiError::internal()
        })?;
        let m = view(&item)?;
        let ops = vec![
            TxOp::put_if(item, Condition::NotExists),
            outbox::event("mailbox.created", Some(&ws), json!({ "mailboxId": id, "fromAddress": m.from_address })),
        ];
        let reply = Reply::created(m).with_version(1);
        ctx.commit(ops, &reply).await?;
        Ok(reply)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "mailboxes.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List the workspace's sending mailboxes";
    const TAG: &'static str = TAG;
    type Input = ListInput;
    type Output = ListResponse<Mailbox>;

    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<Mailbox>>> {
        let ws = ctx.workspace().to_owned();
        let limit = list::limit(input.limit)?;
        let scope = format!("mailboxes.list#{ws}");
        let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
        let page =
            ctx.app.store.query(Query::partition(crate::keys::mailboxes_pk(&ws)).limit(limit).after(cursor)).await?;
        let data = page.items.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
        Ok(Reply::ok(ListResponse { data, next_cursor: ctx.app.seal_cursor(&scope, page.cursor), total: None }))
    }
}

pub use crate::catalogue::IdInput;

async fn load(ctx: &Ctx, id: &str) -> ApiResult<Item> {
    check_id(IdKind::Mailbox, "id", id)?;
    ctx.app
        .store
        .get(&key(ctx.workspace(), id))
        .await?
        .ok_or_else(|| ApiError::not_found("mailbox_not_found", "mailbox", id))
}

pub struct Get;
impl Operation for Get {
    const NAME: &'static str = "mailboxes.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Get one mailbox (never its password)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Mailbox>;
    type Output = Mailbox;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Mailbox>) -> ApiResult<Reply<Mailbox>> {
        let item = load(&ctx, &input.id).await?;
        let version = records::int_of(&item, "version").unwrap_or(1);
        Ok(Reply::ok(view(&item)?).with_version(version))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("allOf" = [{ "not": { "required": ["password", "passwordRef"] } },
                              { "not": { "required": ["imapPassword", "imapPasswordRef"] } }]))]
pub struct PatchInput {
    pub id: crate::ids::Id<crate::ids::Mailbox>,
    #[schemars(length(max = 200), pattern(crate::rules::ONE_LINE))]
    pub from_name: Option<String>,
    #[schemars(pattern(crate::rules::HOST))]
    pub smtp_host: Option<String>,
    #[schemars(range(min = 1))]
    pub smtp_port: Option<u16>,
    #[schemars(length(max = 320))]
    pub smtp_username: Option<String>,
    /// Replaces the stored password (and clears passwordRef).
    pub password: Option<String>,
    /// Replaces the stored password with a reference.
    #[schemars(pattern(crate::rules::SECRET_REF))]
    pub password_ref: Option<String>,
    pub security: Option<Security>,
    #[schemars(range(min = 1, max = 10000))]
    pub daily_cap: Option<u32>,
    pub active: Option<bool>,
    /// Read replies from this IMAP server (the poller); leave out to only send.
    /// `null` stops polling and forgets the IMAP settings.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>", pattern(crate::rules::HOST))]
    pub imap_host: Option<Option<String>>,
    /// 993 with `tls` (the default), 143 with `starttls`.
    #[schemars(range(min = 1))]
    pub imap_port: Option<u16>,
    pub imap_security: Option<ImapSecurity>,
    /// Defaults to smtpUsername, then fromAddress.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>", length(max = 320))]
    pub imap_username: Option<Option<String>>,
    /// Write-only; stored sealed. Without it (or imapPasswordRef) the SMTP password is used.
    pub imap_password: Option<String>,
    #[schemars(pattern(crate::rules::SECRET_REF))]
    pub imap_password_ref: Option<String>,
    /// `INBOX` by default.
    #[schemars(length(min = 1, max = 200), pattern(crate::rules::ONE_LINE))]
    pub imap_folder: Option<String>,
    /// Days of earlier mail the first poll reads (default 0: only mail arriving after it).
    #[schemars(range(max = 365))]
    pub backfill_days: Option<u32>,
}

pub struct Patch;
impl Operation for Patch {
    const NAME: &'static str = "mailboxes.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Change a mailbox's settings, password or cap";
    const TAG: &'static str = TAG;
    type Input = PatchInput;
    type Output = Mailbox;

    async fn run(ctx: Ctx, input: PatchInput) -> ApiResult<Reply<Mailbox>> {
        let item = load(&ctx, &input.id).await?;
        let version = records::int_of(&item, "version").unwrap_or(1);
        if ctx.if_match.is_some_and(|v| v != version) {
            return Err(ApiError::precondition_failed(version));
        }
        let mut u = Update::new().set("updatedAt", time::now_string()).add("version", 1);
        if let Some(n) = input.from_name {
            let n = crate::validate::header_text("fromName", Some(n), 200)?
                .ok_or_else(|| ApiError::invalid_field("fromName", "invalid_request", "cannot be empty"))?;
            u = u.set("fromName", n);
        }
        if let Some(h) = input.smtp_host {
            u = u.set("smtpHost", check_host(&ctx, "smtpHost", &h).await?);
        }
        if let Some(p) = input.smtp_port {
            if p == 0 {
                return Err(ApiError::invalid_field("smtpPort", "invalid_request", "must be 1 to 65535"));
            }
            u = u.set("smtpPort", p);
        }
        if let Some(user) = input.smtp_username {
            u = u.set("smtpUsername", json!(crate::validate::text("smtpUsername", Some(user), 320)?));
        }
        match (input.password, input.password_ref) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_field(
                    "passwordRef",
                    "invalid_request",
                    "give password or passwordRef, not both",
                ))
            }
            (Some(p), None) => u = u.set("passwordSealed", ctx.app.seal(&p)).set("passwordRef", Value::Null),
            (None, Some(r)) => {
                u = u.set("passwordRef", check_ref("passwordRef", &r)?).set("passwordSealed", Value::Null)
            }
            (None, None) => {}
        }
        if let Some(s) = input.security {
            u = u.set("security", json!(s));
        }
        if let Some(c) = input.daily_cap {
            if !(1..=10_000).contains(&c) {
                return Err(ApiError::invalid_field("dailyCap", "invalid_request", "must be 1 to 10000"));
            }
            u = u.set("dailyCap", c);
        }
        if let Some(a) = input.active {
            u = u.set("active", a);
        }
        let imap = ImapInput {
            host: input.imap_host,
            port: input.imap_port,
            security: input.imap_security,
            username: input.imap_username,
            password: input.imap_password,
            password_ref: input.imap_password_ref,
            folder: input.imap_folder,
            backfill_days: input.backfill_days,
        };
        let had = crate::polling::has_imap(&item);
        let u = imap.apply(&ctx, ctx.workspace(), &input.id, had, u).await?;
        let k = key(ctx.workspace(), &input.id);
        let after = match ctx.app.store.update(&k, u, Some(Condition::VersionEquals(version))).await {
            Ok(i) => i,
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(ApiError::conflict(
                    "conflict",
                    "The mailbox changed while this request ran; read it again and retry.",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Reply::ok(view(&after)?).with_version(version + 1))
    }
}

pub struct Delete;
impl Operation for Delete {
    const NAME: &'static str = "mailboxes.delete";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Remove a mailbox (its sealed password goes with it)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Mailbox>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Mailbox>) -> ApiResult<Reply<()>> {
        load(&ctx, &input.id).await?;
        let ws = ctx.workspace().to_owned();
        let ops = vec![
            TxOp::delete(key(&ws, &input.id)),
            outbox::event("mailbox.deleted", Some(&ws), json!({ "mailboxId": input.id })),
        ];
        ctx.app.store.transact(ops).await?;
        Ok(Reply::no_content())
    }
}

pub use crate::mailboxes::password_of;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectInput {
    /// `gmail` (Google) or `outlook` (Microsoft 365).
    pub r#type: crate::oauth::Provider,
    /// The mailbox's address, which the person consents for.
    #[schemars(pattern(crate::rules::EMAIL))]
    pub address: String,
    #[schemars(length(max = 200), pattern(crate::rules::ONE_LINE))]
    pub from_name: Option<String>,
    /// Instead of the provider's IMAP server (imap.gmail.com, outlook.office365.com).
    #[schemars(pattern(crate::rules::HOST))]
    pub imap_host: Option<String>,
    #[schemars(range(min = 1))]
    pub imap_port: Option<u16>,
    pub imap_security: Option<ImapSecurity>,
    /// Days of earlier mail the first poll reads (default 0).
    #[schemars(range(max = 365))]
    pub backfill_days: Option<u32>,
    /// Instead of the provider's SMTP server (smtp.gmail.com, smtp.office365.com), port 587.
    #[schemars(pattern(crate::rules::HOST))]
    pub smtp_host: Option<String>,
    #[schemars(range(min = 1))]
    pub smtp_port: Option<u16>,
    pub security: Option<Security>,
}

impl ConnectInput {
    /// A connection to the provider's own servers.
    pub fn provider(r#type: crate::oauth::Provider, address: String) -> ConnectInput {
        ConnectInput {
            r#type,
            address,
            from_name: None,
            imap_host: None,
            imap_port: None,
            imap_security: None,
            backfill_days: None,
            smtp_host: None,
            smtp_port: None,
            security: None,
        }
    }
}

/// A mailbox waiting for the person's consent, and where to send them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connecting {
    pub mailbox: Mailbox,
    /// Open this in a browser: the provider asks for consent, then returns to linkcrm's callback.
    pub authorization_url: String,
    /// The URL works until then (15 minutes).
    pub expires_at: String,
}

/// Creates (or, for an address the workspace already connected, reuses) an OAuth mailbox and
/// starts its connection: the library function behind `mailboxes.connect` and the inbound
/// settings' `connectedInbox`.
pub async fn connect(ctx: &Ctx, input: ConnectInput) -> ApiResult<Reply<Connecting>> {
    let ws = ctx.workspace().to_owned();
    let provider = input.r#type;
    let config = provider.config().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "oauth_not_configured",
            format!(
                "This server has no OAuth client for {}: the operator sets LINKCRM_OAUTH_{}_CLIENT_ID and _CLIENT_SECRET.",
                provider.as_str(),
                provider.as_str().to_ascii_uppercase()
            ),
        )
    })?;
    let address = normalize_email(&input.address)
        .ok_or_else(|| ApiError::invalid_field("address", "invalid_email", "is not an email address"))?;
    let from_name = crate::validate::header_text("fromName", input.from_name, 200)?.unwrap_or_default();
    let imap_host = match &input.imap_host {
        Some(h) => check_host(ctx, "imapHost", h).await?,
        None => config.imap_host.to_owned(),
    };
    if input.backfill_days.is_some_and(|d| d > 365) {
        return Err(ApiError::invalid_field("backfillDays", "invalid_request", "must be 0 to 365"));
    }
    let smtp_host = match &input.smtp_host {
        Some(h) => check_host(ctx, "smtpHost", h).await?,
        None => config.smtp_host.to_owned(),
    };
    if input.smtp_port == Some(0) || input.imap_port == Some(0) {
        return Err(ApiError::invalid_field("smtpPort", "invalid_request", "must be 1 to 65535"));
    }
    // An address already connected in this workspace is connected again (new consent).
    let existing = ctx
        .app
        .store
        .query(Query::partition(crate::keys::mailboxes_pk(&ws)).limit(200))
        .await?
        .items
        .into_iter()
        .find(|m| records::str_of(m, "fromAddress") == Some(address.as_str()) && m.get("oauthProvider").is_some());
    let now = time::now_string();
    let (id, mut ops) = match existing {
        Some(item) => {
            let id = records::str_of(&item, "id").unwrap_or_default().to_owned();
            let u = Update::new()
                .set("oauthProvider", provider.as_str())
                .set("oauthStatus", "pending")
                .set("updatedAt", now.clone())
                .add("version", 1);
            (id.clone(), vec![TxOp::update_if(key(&ws, &id), u, Condition::Exists)])
        }
        None => {
            let id = linkcrm_domain::new_id(IdKind::Mailbox);
            let security = input.imap_security.unwrap_or(ImapSecurity::Tls);
            let m = Mailbox {
                id: id.clone(),
                workspace_id: ws.clone(),
                from_name,
                from_address: address.clone(),
                smtp_host,
                smtp_port: input.smtp_port.unwrap_or(587),
                smtp_username: Some(address.clone()),
                security: input.security.unwrap_or(Security::Starttls),
                has_password: false,
                password_ref: None,
                daily_cap: 50,
                active: true,
                imap: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            let extra = json!({
                "version": 1, "imapHost": imap_host, "imapSecurity": security,
                "imapPort": input.imap_port.unwrap_or(if security == ImapSecurity::Tls { 993 } else { 143 }),
                "imapUsername": address, "imapFolder": "INBOX", "backfillDays": input.backfill_days.unwrap_or(0),
                "oauthProvider": provider.as_str(), "oauthStatus": "pending",
            });
            let item = crate::platform::to_item(&key(&ws, &id), "mailbox", &m, extra);
            let ops = vec![
                TxOp::put_if(item, Condition::NotExists),
                outbox::event("mailbox.created", Some(&ws), json!({ "mailboxId": id, "fromAddress": address })),
            ];
            (id, ops)
        }
    };
    let started = crate::oauth::start(&ws, &id, provider, &config, &address);
    ops.push(started.state_op);
    ctx.app.store.transact(ops).await?;
    let item = ctx.app.store.get(&key(&ws, &id)).await?.ok_or_else(ApiError::internal)?;
    Ok(Reply::created(Connecting {
        mailbox: view(&item)?,
        authorization_url: started.authorization_url,
        expires_at: started.expires_at,
    }))
}

pub struct Connect;
impl Operation for Connect {
    const NAME: &'static str = "mailboxes.connect";
    const EFFECT: Effect = Effect::Create;
    const FAMILY: Family = Family::Outreach;
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Connect a Gmail or Microsoft 365 mailbox with OAuth: answers the URL where the person consents";
    const TAG: &'static str = TAG;
    type Input = ConnectInput;
    type Output = Connecting;

    async fn run(ctx: Ctx, input: ConnectInput) -> ApiResult<Reply<Connecting>> {
        connect(&ctx, input).await
    }
}
