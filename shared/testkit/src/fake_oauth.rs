//! A local OAuth 2.0 authorization server on a loopback port, speaking what Google's and
//! Microsoft's identity platforms speak for a mail client (RFC 6749 authorization code grant with
//! PKCE, RFC 7636; refresh tokens; errors as `{"error", "error_description"}`), plus RFC 7662 token
//! introspection for Dovecot's oauth2 passdb, so an IMAP server can check the access tokens it
//! issued.
//!
//! - `GET /authorize`: the consent screen, consenting at once: 302 to `redirect_uri` with `code`
//!   and `state` (or `error=access_denied` after [`FakeOAuth::deny_next`]).
//! - `POST /token`: `authorization_code` (client credentials, the code, the same `redirect_uri`
//!   and a matching `code_verifier` required) and `refresh_token` grants. Access tokens live
//!   [`FakeOAuth::set_access_ttl`] seconds (3600 by default).
//! - `POST /introspect`: `token` → `{"active": true, "email": <user>}` while it is valid.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Inner {
    client_id: String,
    client_secret: String,
    /// The account that consents.
    user: String,
    access_ttl: u64,
    deny_next: bool,
    /// code → (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    refresh: HashMap<String, bool>,
    access: HashMap<String, Instant>,
    /// Every request: (path, grant_type or query).
    calls: Vec<(String, String)>,
    counter: u64,
}

#[derive(Clone)]
pub struct FakeOAuth {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({ "error": error, "error_description": description }))).into_response()
}

fn pkce_s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl FakeOAuth {
    pub async fn start(client_id: &str, client_secret: &str, user: &str) -> FakeOAuth {
        let inner = Arc::new(Mutex::new(Inner {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            user: user.into(),
            access_ttl: 3600,
            ..Inner::default()
        }));
        let router = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/introspect", post(introspect))
            .with_state(inner.clone());
        let base = crate::http::serve(router).await;
        FakeOAuth { base, inner }
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base)
    }
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.base)
    }

    /// Access tokens issued from now on live this many seconds.
    pub fn set_access_ttl(&self, secs: u64) {
        self.inner.lock().unwrap().access_ttl = secs;
    }

    /// The next consent is refused (`error=access_denied`).
    pub fn deny_next(&self) {
        self.inner.lock().unwrap().deny_next = true;
    }

    /// The user revokes the app: every refresh and access token stops working.
    pub fn revoke_all(&self) {
        let mut i = self.inner.lock().unwrap();
        i.refresh.clear();
        i.access.clear();
    }

    /// How many token requests used this grant type.
    pub fn grants(&self, grant_type: &str) -> usize {
        self.inner.lock().unwrap().calls.iter().filter(|(p, g)| p == "/token" && g == grant_type).count()
    }
}

async fn authorize(State(inner): State<Arc<Mutex<Inner>>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut i = inner.lock().unwrap();
    i.calls.push(("/authorize".into(), serde_json::to_string(&q).unwrap_or_default()));
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != i.client_id || get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "invalid_request: unknown client or response_type").into_response();
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return (StatusCode::BAD_REQUEST, "invalid_request: PKCE S256 required").into_response();
    }
    let redirect = get("redirect_uri");
    let state = get("state");
    let enc = |s: &str| url_encode(s);
    if std::mem::take(&mut i.deny_next) {
        return Redirect::to(&format!("{redirect}?error=access_denied&state={}", enc(&state))).into_response();
    }
    i.counter += 1;
    let code = format!("code-{}", i.counter);
    i.codes.insert(code.clone(), (redirect.clone(), get("code_challenge")));
    Redirect::to(&format!("{redirect}?code={code}&state={}&scope={}", enc(&state), enc(&get("scope")))).into_response()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn token(State(inner): State<Arc<Mutex<Inner>>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut i = inner.lock().unwrap();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    i.calls.push(("/token".into(), get("grant_type")));
    if get("client_id") != i.client_id || get("client_secret") != i.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found.");
    }
    let issue = |i: &mut Inner, refresh: Option<String>| -> Response {
        i.counter += 1;
        let access = format!("access-{}", i.counter);
        i.access.insert(access.clone(), Instant::now() + Duration::from_secs(i.access_ttl));
        let mut body = json!({ "access_token": access, "expires_in": i.access_ttl, "token_type": "Bearer",
                               "scope": "https://mail.google.com/" });
        if let Some(r) = refresh {
            body["refresh_token"] = json!(r);
        }
        Json(body).into_response()
    };
    match get("grant_type").as_str() {
        "authorization_code" => {
            let Some((redirect, challenge)) = i.codes.remove(&get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Malformed auth code.");
            };
            if redirect != get("redirect_uri") {
                return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request");
            }
            if pkce_s256(&get("code_verifier")) != challenge {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid code verifier.");
            }
            i.counter += 1;
            let refresh = format!("refresh-{}", i.counter);
            i.refresh.insert(refresh.clone(), true);
            issue(&mut i, Some(refresh))
        }
        "refresh_token" => {
            if !i.refresh.contains_key(&get("refresh_token")) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked.");
            }
            issue(&mut i, None)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type"),
    }
}

async fn introspect(State(inner): State<Arc<Mutex<Inner>>>, Form(f): Form<HashMap<String, String>>) -> Json<Value> {
    let mut i = inner.lock().unwrap();
    i.calls.push(("/introspect".into(), String::new()));
    let token = f.get("token").cloned().unwrap_or_default();
    let active = i.access.get(&token).is_some_and(|until| *until > Instant::now());
    if active {
        Json(json!({ "active": true, "email": i.user, "scope": "https://mail.google.com/" }))
    } else {
        Json(json!({ "active": false }))
    }
}
