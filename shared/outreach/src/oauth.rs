//! Mailboxes connected with OAuth 2.0 (Gmail, Microsoft 365), where basic IMAP login is retired:
//! their IMAP logins use SASL XOAUTH2 with an access token refreshed from the sealed refresh token.
//!
//! The flow (RFC 6749 authorization code grant with PKCE, RFC 7636):
//! 1. `POST /v1/mailboxes/connect` (or the inbound settings' `connectedInbox`) creates the mailbox,
//!    with the provider's IMAP and SMTP hosts, and a one-time state item (`OAUTHSTATE#<state>`,
//!    15 minutes) holding the PKCE verifier; it answers the provider's authorization URL.
//! 2. The person consents; the provider redirects to the keyless callback
//!    `GET /v1/oauth/mailbox/callback?code&state`, which takes the state item (once), exchanges the
//!    code at the token endpoint and seals the tokens on the mailbox, which then joins the poll
//!    schedule.
//! 3. Each poll uses the access token until a minute before it expires, then refreshes it. A
//!    refresh the provider refuses (`invalid_grant`: revoked, expired) marks the connection
//!    `revoked` and the mailbox shows `oauth_revoked` until it is connected again.
//!
//! Configuration per provider (`GMAIL`, `OUTLOOK`): `LINKCRM_OAUTH_<P>_CLIENT_ID`,
//! `LINKCRM_OAUTH_<P>_CLIENT_SECRET`, and the endpoints `LINKCRM_OAUTH_<P>_AUTH_URL`,
//! `LINKCRM_OAUTH_<P>_TOKEN_URL` (Google's and Microsoft's by default). The redirect URI is
//! `LINKCRM_PUBLIC_URL` + `/v1/oauth/mailbox/callback`; register it with the provider.

use crate::items as records;
use crate::polling::PollError;
use crate::App;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, Item, StoreError, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// The path of the keyless callback.
pub const CALLBACK_PATH: &str = "/v1/oauth/mailbox/callback";
/// How long a started connection waits for the person's consent.
const STATE_TTL_SECS: i64 = 15 * 60;
/// An access token is refreshed this long before it expires.
const REFRESH_MARGIN_SECS: i64 = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Google (Gmail, Google Workspace).
    Gmail,
    /// Microsoft 365 / Outlook.com.
    Outlook,
}

/// A provider's endpoints, scopes and mail servers.
pub struct ProviderConfig {
    pub client_id: String,
    client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub scopes: &'static str,
    pub imap_host: &'static str,
    pub smtp_host: &'static str,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::Outlook => "outlook",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "gmail" => Some(Provider::Gmail),
            "outlook" => Some(Provider::Outlook),
            _ => None,
        }
    }

    /// The operator's OAuth client for this provider, `None` when not configured.
    pub fn config(self) -> Option<ProviderConfig> {
        let p = self.as_str().to_ascii_uppercase();
        let var = |n: &str| std::env::var(format!("LINKCRM_OAUTH_{p}_{n}")).ok().filter(|v| !v.trim().is_empty());
        let (auth, token, scopes, imap, smtp) = match self {
            Provider::Gmail => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://mail.google.com/",
                "imap.gmail.com",
                "smtp.gmail.com",
            ),
            Provider::Outlook => (
                "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                "offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send",
                "outlook.office365.com",
                "smtp.office365.com",
            ),
        };
        Some(ProviderConfig {
            client_id: var("CLIENT_ID")?,
            client_secret: var("CLIENT_SECRET").unwrap_or_default(),
            auth_url: var("AUTH_URL").unwrap_or_else(|| auth.into()),
            token_url: var("TOKEN_URL").unwrap_or_else(|| token.into()),
            scopes,
            imap_host: imap,
            smtp_host: smtp,
        })
    }
}

pub fn redirect_uri() -> String {
    format!("{}{CALLBACK_PATH}", crate::sending::public_url())
}

fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A started connection: the state item to commit (with the mailbox) and the URL to send the
/// person to.
pub struct Started {
    pub state_op: TxOp,
    pub authorization_url: String,
    pub expires_at: String,
}

/// Starts connecting mailbox `mailbox` of `ws` to `provider` for `address`.
pub fn start(ws: &str, mailbox: &str, provider: Provider, config: &ProviderConfig, address: &str) -> Started {
    let state = random_token(24);
    let verifier = random_token(48);
    let expires = chrono::Utc::now() + chrono::Duration::seconds(STATE_TTL_SECS);
    let key = crate::keys::oauth_state(&state);
    let item = records::obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "oauthState", "workspaceId": ws, "mailboxId": mailbox,
        "provider": provider.as_str(), "verifier": verifier, "expiresAt": time::format(expires),
        "ttl": expires.timestamp(),
    }));
    let mut url = format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&code_challenge={}&code_challenge_method=S256&login_hint={}",
        config.auth_url,
        url_encode(&config.client_id),
        url_encode(&redirect_uri()),
        url_encode(config.scopes),
        state,
        pkce_challenge(&verifier),
        url_encode(address),
    );
    if provider == Provider::Gmail {
        // A refresh token is given only with offline access, and again only on a fresh consent.
        url.push_str("&access_type=offline&prompt=consent");
    }
    Started {
        state_op: TxOp::put_if(item, Condition::NotExists),
        authorization_url: url,
        expires_at: time::format(expires),
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
}

#[derive(Debug)]
enum TokenError {
    /// The provider refused the grant (`invalid_grant`, `invalid_client`, ...).
    Refused(String),
    /// The provider could not be reached or answered nonsense: try again later.
    Unavailable(String),
}

async fn token_request(config: &ProviderConfig, form: &[(&str, &str)]) -> Result<TokenResponse, TokenError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let mut all: Vec<(&str, &str)> = vec![("client_id", &config.client_id), ("client_secret", &config.client_secret)];
    all.extend_from_slice(form);
    let body = serde_urlencoded::to_string(&all).map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let resp = client
        .post(&config.token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| TokenError::Unavailable(format!("the token endpoint could not be reached ({e})")))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return serde_json::from_str(&text)
            .map_err(|_| TokenError::Unavailable("the token endpoint's answer is not a token".into()));
    }
    let err: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = err.get("error").and_then(Value::as_str).unwrap_or("").to_owned();
    if status.is_client_error() && !code.is_empty() {
        Err(TokenError::Refused(code))
    } else {
        Err(TokenError::Unavailable(format!("the token endpoint answered {status}")))
    }
}

/// What the callback did, for its page.
pub enum Callback {
    Connected { address: String },
    Refused(String),
    Expired,
}

/// The keyless callback: `code` or `error`, and `state`.
pub async fn callback(app: &App, code: Option<&str>, error: Option<&str>, state: &str) -> Result<Callback, StoreError> {
    let key = crate::keys::oauth_state(state);
    let Some(st) = app.store.get(&key).await? else { return Ok(Callback::Expired) };
    // One use only: whoever deletes it goes on.
    match app.store.transact(vec![TxOp::Delete { key, cond: Some(Condition::Exists) }]).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => return Ok(Callback::Expired),
        Err(e) => return Err(e),
    }
    if records::str_of(&st, "expiresAt").is_none_or(|t| t < time::now_string().as_str()) {
        return Ok(Callback::Expired);
    }
    let (Some(ws), Some(mbx), Some(provider)) = (
        records::str_of(&st, "workspaceId"),
        records::str_of(&st, "mailboxId"),
        records::str_of(&st, "provider").and_then(Provider::parse),
    ) else {
        return Ok(Callback::Expired);
    };
    if let Some(e) = error {
        return Ok(Callback::Refused(format!("the provider reported: {}", e.chars().take(100).collect::<String>())));
    }
    let Some(code) = code else { return Ok(Callback::Refused("no authorization code was given".into())) };
    let Some(config) = provider.config() else {
        return Ok(Callback::Refused("this server no longer has an OAuth client for the provider".into()));
    };
    let verifier = records::str_of(&st, "verifier").unwrap_or_default().to_owned();
    let redirect = redirect_uri();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect),
        ("code_verifier", &verifier),
    ];
    let tokens = match token_request(&config, &form).await {
        Ok(t) => t,
        Err(TokenError::Refused(c)) => return Ok(Callback::Refused(format!("the provider refused the code ({c})"))),
        Err(TokenError::Unavailable(m)) => return Ok(Callback::Refused(m)),
    };
    let Some(refresh) = tokens.refresh_token.as_deref() else {
        return Ok(Callback::Refused("the provider gave no refresh token (offline access was not granted)".into()));
    };
    let now = time::now_string();
    let expires = chrono::Utc::now() + chrono::Duration::seconds(tokens.expires_in.unwrap_or(3600));
    let update = Update::new()
        .set("oauthStatus", "connected")
        .set("oauthConnectedAt", now.clone())
        .set("oauthAccessSealed", app.seal(&tokens.access_token))
        .set("oauthRefreshSealed", app.seal(refresh))
        .set("oauthExpiresAt", time::format(expires))
        .set("imapNextPollAt", now.clone())
        .set("imapFailures", 0)
        .remove("imapError")
        .set("GSI3PK", crate::keys::imap_due_pk())
        .set("GSI3SK", crate::keys::imap_due_sort(&now, ws, mbx));
    let cond = Condition::Equals("oauthProvider".into(), json!(provider.as_str()));
    match app.store.update(&crate::keys::mailbox(ws, mbx), update, Some(cond)).await {
        Ok(item) => {
            Ok(Callback::Connected { address: records::str_of(&item, "fromAddress").unwrap_or_default().to_owned() })
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(Callback::Refused("the mailbox was removed meanwhile".into())),
        Err(e) => Err(e),
    }
}

/// The access token an IMAP login of this mailbox uses (refreshed when it is about to expire), or
/// `None` for a password mailbox.
pub async fn access_token(app: &App, item: &Item) -> Result<Option<String>, PollError> {
    let Some(provider) = records::str_of(item, "oauthProvider") else { return Ok(None) };
    let err = |code: &str, message: &str| PollError { code: code.into(), message: message.into() };
    match records::str_of(item, "oauthStatus") {
        Some("connected") => {}
        Some("revoked") => {
            return Err(err(
                "oauth_revoked",
                "the provider no longer accepts this mailbox's authorization: connect it again",
            ))
        }
        _ => return Err(err("oauth_not_connected", "the mailbox's OAuth connection was not finished")),
    }
    let fresh_until = time::format(chrono::Utc::now() + chrono::Duration::seconds(REFRESH_MARGIN_SECS));
    if records::str_of(item, "oauthExpiresAt").is_some_and(|t| t > fresh_until.as_str()) {
        if let Some(token) = records::str_of(item, "oauthAccessSealed").and_then(|s| app.open_sealed(s)) {
            return Ok(Some(token));
        }
    }
    let Some(config) = Provider::parse(provider).and_then(Provider::config) else {
        return Err(err("oauth_not_configured", "this server has no OAuth client for the mailbox's provider"));
    };
    let Some(refresh) = records::str_of(item, "oauthRefreshSealed").and_then(|s| app.open_sealed(s)) else {
        return Err(err("oauth_not_connected", "the mailbox has no refresh token: connect it again"));
    };
    let (ws, id) =
        (records::str_of(item, "workspaceId").unwrap_or_default(), records::str_of(item, "id").unwrap_or_default());
    let key = crate::keys::mailbox(ws, id);
    match token_request(&config, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await {
        Ok(t) => {
            let expires = chrono::Utc::now() + chrono::Duration::seconds(t.expires_in.unwrap_or(3600));
            let mut u = Update::new()
                .set("oauthAccessSealed", app.seal(&t.access_token))
                .set("oauthExpiresAt", time::format(expires));
            // Microsoft may rotate the refresh token; keep the newest.
            if let Some(r) = &t.refresh_token {
                u = u.set("oauthRefreshSealed", app.seal(r));
            }
            if let Err(e) = app.store.update(&key, u, Some(Condition::Exists)).await {
                tracing::warn!(mailbox = id, error = %e, "a refreshed access token could not be stored");
            }
            Ok(Some(t.access_token))
        }
        Err(TokenError::Refused(code)) => {
            tracing::info!(mailbox = id, %code, "the provider refused the refresh token");
            let u = Update::new().set("oauthStatus", "revoked");
            if let Err(e) = app.store.update(&key, u, Some(Condition::Exists)).await {
                tracing::warn!(mailbox = id, error = %e, "could not mark the OAuth connection revoked");
            }
            Err(err("oauth_revoked", "the provider no longer accepts this mailbox's authorization: connect it again"))
        }
        Err(TokenError::Unavailable(m)) => Err(PollError { code: "oauth_unavailable".into(), message: m }),
    }
}
